"""``hera bench dispatch-ceiling`` runs end to end with null workers and reports its figure; bad input is one line.
(Speed is what the benchmark measures; the test asserts only the shape of its output.)"""

from __future__ import annotations

import json
import os

import pytest

from hera.cli import main

USABLE = sorted(os.sched_getaffinity(0))


@pytest.mark.slow
def test_dispatch_ceiling_prints_and_writes_its_figure(tmp_path, capsys):
    out = tmp_path / "dc.json"
    workers = [1, 2 * len(USABLE[:2])]
    rc = main(["bench", "dispatch-ceiling", "--workers", ",".join(map(str, workers)), "--duration-s", "0.3",
               "--cores", ",".join(map(str, USABLE[:2])), "--open-loop-sub-batches-per-s", "2000",
               "--out", str(out)])
    assert rc == 0
    lines = capsys.readouterr().out.strip().splitlines()
    fig = json.loads(lines[-1])
    assert set(fig["sub_batches_per_s"]) == {str(w) for w in workers}
    assert all(v > 0 for v in fig["sub_batches_per_s"].values())
    assert fig["harness"] == "process" and fig["open_loop"]["workers"] == workers[-1]
    assert fig["open_loop"]["achieved_qps"] > 0 and isinstance(fig["open_loop"]["harness_saturated"], bool)
    assert any("null workers:" in x for x in lines[:-1])
    saved = json.loads(out.read_text())
    assert saved["bench"] == "dispatch-ceiling" and saved["figure"] == fig and "git_commit" in json.dumps(saved)


def test_dispatch_ceiling_bad_worker_counts_are_one_line_errors(tmp_path, capsys):
    assert main(["bench", "dispatch-ceiling", "--workers", "1,x", "--out", str(tmp_path / "a.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--workers '1,x'" in err
    if len(USABLE) >= 2:
        assert main(["bench", "dispatch-ceiling", "--workers", "3", "--cores", f"{USABLE[0]},{USABLE[1]}",
                     "--out", str(tmp_path / "b.json")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "3 workers do not spread evenly over 2 cores" in err
    assert not (tmp_path / "a.json").exists()
