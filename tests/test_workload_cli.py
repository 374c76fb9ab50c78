"""``hera workload ...``: every action runs, prints JSON last, and fails with one-line errors."""

import json

import numpy as np
import pytest

from hera.cli import build_parser, main
from hera.workload import locality


def last_json(capsys):
    out = capsys.readouterr().out.strip().splitlines()
    return json.loads(out[-1]), out


def test_help_for_every_action(capsys):
    for action in ("reuse-histogram", "library", "arrivals", "sizes"):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["workload", action, "--help"])
        assert exc.value.code == 0
        assert "usage: hera workload " + action in capsys.readouterr().out


def test_reuse_histogram_last_line_is_exact_json(capsys):
    assert main(["workload", "reuse-histogram", "--generator", "production", "--batch", "4096", "--tables", "2",
                 "--rows", "262144", "--lookups", "32", "--seed", "1"]) == 0
    d, out = last_json(capsys)
    assert list(d) == ["bins", "histogram"]
    assert d["bins"] == list(locality.BIN_LABELS) and d["bins"][0] == "(0, 1]" and d["bins"][-1] == "(32768+"
    assert len(d["histogram"]) == 17 and abs(sum(d["histogram"]) - 1) < 1e-4
    assert any("TV distance (rows)" in line for line in out)


def test_reuse_histogram_uniform_and_bad_alpha(capsys):
    assert main(["workload", "reuse-histogram", "--generator", "uniform", "--batch", "100", "--tables", "1",
                 "--rows", "10", "--lookups", "1"]) == 0
    d, _ = last_json(capsys)
    assert len(d["histogram"]) == 17
    assert main(["workload", "reuse-histogram", "--generator", "uniform", "--alpha", "1.1"]) == 2
    assert capsys.readouterr().err == "hera: error: --alpha only applies to --generator zipf\n"
    assert main(["workload", "reuse-histogram", "--batch", "0"]) == 2
    assert "batch must be" in capsys.readouterr().err


def test_library_builds_and_opens(tmp_path, capsys):
    from hera.workload.library import SampleLibrary

    assert main(["workload", "library", "--scale", "ci", "--models", "ncf,din", "--items", "1200",
                 "--ids", "zipf", "--alpha", "1.2", "--seed", "3", "--root", str(tmp_path)]) == 0
    d, _ = last_json(capsys)
    assert set(d["seconds"]) == {"ncf", "din"} and d["items"] == 1200
    lib = SampleLibrary.open(tmp_path / "din", check_ids=True)
    assert lib.n_items == 1200 and lib.meta["sparse"] == {"kind": "zipf", "alpha": 1.2} and lib.meta["scale"] == "ci"
    assert main(["workload", "library", "--scale", "ci", "--models", "nope", "--root", str(tmp_path)]) == 2
    assert "nope" in capsys.readouterr().err


def test_library_from_criteo(tmp_path, capsys):
    from hera.workload.library import SampleLibrary

    rng = np.random.default_rng(0)
    lines = ["\t".join([str(int(rng.integers(0, 2)))] + [str(int(rng.integers(0, 99))) for _ in range(13)]
                       + [f"{int(rng.integers(0, 2**32)):08x}" for _ in range(26)]) for _ in range(50)]
    p = tmp_path / "day.tsv"
    p.write_text("\n".join(lines) + "\n")
    assert main(["workload", "library", "--scale", "ci", "--models", "wnd", "--criteo", str(p),
                 "--root", str(tmp_path / "ds")]) == 0
    d, _ = last_json(capsys)
    assert d["ids"] == "criteo"
    assert SampleLibrary.open(tmp_path / "ds" / "wnd").n_items == 50


def test_arrivals_and_sizes(tmp_path, capsys):
    assert main(["workload", "arrivals", "--qps", "200", "--n", "2000"]) == 0
    d, _ = last_json(capsys)
    assert d["n"] == 2000 and 180 < d["mean_rate_qps"] < 220 and "ks_pvalue_exponential" in d
    assert main(["workload", "arrivals", "--kind", "diurnal", "--rate-qps", "50", "--duration-s", "20"]) == 0
    d, out = last_json(capsys)
    assert d["config"]["kind"] == "diurnal" and any("expected_qps" in line for line in out)
    trace = tmp_path / "t.csv"
    trace.write_text("t_s,rate_qps\n0,10\n5,40\n")
    assert main(["workload", "arrivals", "--kind", "trace", "--trace", str(trace), "--duration-s", "10"]) == 0
    assert main(["workload", "arrivals", "--kind", "steps", "--steps", "0:10,2:30", "--duration-s", "4"]) == 0
    capsys.readouterr()
    assert main(["workload", "arrivals", "--kind", "steps", "--steps", "0-10", "--duration-s", "4"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert main(["workload", "arrivals", "--kind", "diurnal"]) == 2
    assert "needs --duration-s" in capsys.readouterr().err
    assert main(["workload", "sizes", "--kind", "production", "--n", "20000"]) == 0
    d, _ = last_json(capsys)
    assert abs(d["mean"] - 270) < 5 and d["max"] == 700
    assert main(["workload", "sizes", "--kind", "fixed", "--items", "64", "--n", "10"]) == 0
    d, _ = last_json(capsys)
    assert d["mean"] == 64
    assert main(["workload", "sizes", "--kind", "fixed", "--mu", "3"]) == 2
    assert "does not apply" in capsys.readouterr().err
