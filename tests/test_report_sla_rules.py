"""The SLA's base by rule in finished runs' service samples and its spread between runs
(hera.report.sla_rules, `hera bench sla-rules`)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hera.cli import main
from hera.errors import HeraError
from hera.report.sla_rules import between_run_cov, sla_bases

SIZES = {100: 0.9, 300: 0.08, 700: 0.02}


def _run(root, speed: float, stall_ms: float, models=("a", "b")):
    """A results folder whose light-load queries take ``speed × items / 10`` ms, one query of the common size
    stalled by ``stall_ms``; plus saturated rows that the rules must ignore."""
    folder = root / "profile" / "service"
    folder.mkdir(parents=True)
    for m in models:
        rows = []
        for n, p in SIZES.items():
            for k in range(16):
                lat = speed * n / 10 + (stall_ms if (n == 100 and k == 3) else 0.0)
                rows.append({"workers": 1, "regime": "light", "query": len(rows), "query_items": n,
                             "query_latency_ms": lat, "weight": p * 3})
                rows.append({"workers": 1, "regime": "light", "query": len(rows) - 1, "query_items": n,
                             "query_latency_ms": lat, "weight": p * 3})  # a second sub-batch of that query
        rows.append({"workers": 1, "regime": "saturated", "query": 999, "query_items": 700,
                     "query_latency_ms": 5000.0, "weight": 1.0})
        rows.append({"workers": 2, "regime": "light", "query": 0, "query_items": 700,
                     "query_latency_ms": 5000.0, "weight": 1.0})
        pd.DataFrame(rows).to_parquet(folder / f"{m}.parquet")
    return root


def test_the_sizes_medians_ignore_a_stall_that_moves_the_pooled_p99(tmp_path):
    calm, stalled = _run(tmp_path / "r1", 1.0, 0.0), _run(tmp_path / "r2", 1.0, 200.0)
    b = pd.concat([sla_bases(calm, "calm"), sla_bases(stalled, "stalled")], ignore_index=True)
    assert list(b["model"]) == ["a", "b", "a", "b"] and (b["queries"] == 48).all() and (b["sizes"] == 3).all()
    assert b["size_medians_p99_ms"].to_numpy() == pytest.approx([70.0] * 4, rel=0.01)
    pooled = b.set_index("run")["pooled_p99_ms"]
    assert pooled["stalled"].min() > 2 * pooled["calm"].max()
    cov = between_run_cov(b)
    assert cov["size_medians_p99"]["median"] == pytest.approx(0.0, abs=1e-9)
    assert cov["mix_p99"]["median"] > 0.3 and set(cov["mix_p99"]["per_model"]) == {"a", "b"}
    # a slower machine moves both rules alike
    slow = sla_bases(_run(tmp_path / "r3", 1.5, 0.0), "slow")
    both = between_run_cov(pd.concat([sla_bases(calm, "calm"), slow], ignore_index=True))
    assert both["size_medians_p99"]["median"] == pytest.approx(both["mix_p99"]["median"], rel=0.05)
    assert both["size_medians_p99"]["median"] > 0.2


def test_sla_rules_bench_writes_json_and_refuses_runs_without_samples(tmp_path, capsys):
    r1, r2 = _run(tmp_path / "r1", 1.0, 0.0), _run(tmp_path / "r2", 1.2, 150.0)
    out = tmp_path / "sla-rules.json"
    assert main(["bench", "sla-rules", "--from-results", str(r1), str(r2), "--labels", "one,two",
                 "--out", str(out)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["between_run_cov"]["size_medians_p99"]["median"] < last["between_run_cov"]["mix_p99"]["median"]
    assert json.loads(out.read_text())["figure"]["bases"][0]["run"] == "one"
    empty = tmp_path / "empty"
    (empty / "profile" / "service").mkdir(parents=True)
    with pytest.raises(HeraError, match="holds no service samples"):
        sla_bases(empty, "x")
    assert main(["bench", "sla-rules", "--from-results", str(empty)]) != 0
    err = capsys.readouterr().err.strip()
    assert "holds no service samples" in err and "\n" not in err
    with pytest.raises(HeraError, match="at least two runs"):
        between_run_cov(sla_bases(r1, "one"))
    assert np.isfinite(sla_bases(r1, "one")["pooled_p99_ms"]).all()
