"""F2 points re-modelled from the stage's or the refreshed service profile (hera.report.service_source,
`hera bench service-source`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hera import config as cfgmod
from hera.cli import main
from hera.errors import HeraError
from hera.paths import repo_root
from hera.profile import common
from hera.profile import scalability as sc
from hera.profile.service import SAMPLE_COLUMNS, mix_sizes, service_law
from hera.queueing.qps import modelled_qps_star
from hera.report.service_source import VARIANTS, remodel, summary, translated_drift

SIZES = (8, 36, 64)  # the sub-batches of the ci query sizes (100, 200, 256 items at batch 64)


def _samples(scale: float, workers: int = 1, n: int = 12) -> pd.DataFrame:
    """Raw samples of a profile whose sub-batch of k items takes ``scale × (0.2 + 0.02 k)`` ms."""
    rows, t = [], 0
    for regime in ("light", "saturated", "probe"):
        for k in (1,) if regime == "probe" else SIZES:
            for i in range(n):
                ms = scale * (0.2 + 0.02 * k) * (1 + 0.05 * (i % 3))
                start, end = t, t + int(ms * 1e6)
                t = end  # no idle gap between a worker's sub-batches: the law is then one factor of another
                rows.append({"model": "x", "workers": workers, "regime": regime, "query": len(rows),
                             "query_items": k, "weight": 1.0, "sub_index": 0, "items": k, "worker": 0,
                             "t_submit_ns": start, "t_start_ns": start, "t_end_ns": end, "service_ms": ms,
                             "query_latency_ms": ms + 0.05, "dispatch_ms": 0.05})
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS)


@pytest.fixture()
def config():
    return cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=["model.queries=600", "model.replicates=4"])


def _mix(config, stream: str) -> np.ndarray:
    ms = sc.model_settings(config, stream)
    return mix_sizes(config, ms.n_queries, common.derived_seed(int(config["seed"]), "model-sizes", stream))


def test_a_drift_carries_over_exactly_between_profiles_one_factor_apart(config):
    law = service_law(_samples(1.0), 1, 64)
    mix = _mix(config, "t")
    # at a light load every query's span is its own service: twice as slow a profile halves the drift
    assert translated_drift(1.2, law, law.scaled(2.0), mix, 2.0, 0.95, seed=1) == pytest.approx(0.6, rel=1e-6)
    assert translated_drift(1.2, law, law, mix, 2.0, 0.95, seed=1) == pytest.approx(1.2)
    assert math.isnan(translated_drift(math.nan, law, law, mix, 2.0, 0.95, seed=1))
    assert math.isnan(translated_drift(1.2, law, law, mix, 0.0, 0.95, seed=1))


def _run(root: Path, config, source: str, stage_scale: float, fresh_scale: float | None, drift: float) -> Path:
    res = root / "results" / "ci"
    (res / "profile" / "service").mkdir(parents=True)
    (res / "profile" / "scalability").mkdir()
    (res / "config.json").write_text(json.dumps(config, default=str))
    _samples(stage_scale).to_parquet(res / "profile" / "service" / "x.parquet")
    if fresh_scale is not None:
        _samples(fresh_scale).to_parquet(res / "profile" / "scalability" / "x.service.parquet")
    pd.DataFrame([{"model": "x", "workers": 1, "batch_size": 64, "qps_star": 100.0, "qps_star_model": 110.0,
                   "qps_star_model_profile": 120.0, "sla_ms": 30.0, "percentile": 0.95, "operating_drift": drift,
                   "operating_rate_qps": 2.0, "service_source": source}]).to_csv(
        res / "profile" / "scalability.csv", index=False)
    return res


def test_a_refresh_run_gets_the_stage_variants_from_its_kept_samples(config, tmp_path):
    # the stage's profile served twice as slow as the refreshed one; the probe said 1.1x the refreshed one
    res = _run(tmp_path, config, "refresh", 2.0, 1.0, 1.1)
    df = remodel(res)
    row = df.iloc[0]
    assert row["refresh_probe"] == 110.0 and row["refresh_alone"] == 120.0  # what the run did, from its row
    ms = sc.model_settings(config, "scalability/x/1")
    mix = _mix(config, "scalability/x/1")
    fresh = service_law(_samples(1.0), 1, 64)
    same = modelled_qps_star(fresh.scaled(1.1), mix, 30.0, 0.95, ms).qps_star  # the probe's law, from either start
    assert row["stage_probe"] == pytest.approx(same, rel=0.03)
    stage = modelled_qps_star(service_law(_samples(2.0), 1, 64), mix, 30.0, 0.95, ms).qps_star
    assert row["stage_alone"] == pytest.approx(stage)
    assert row["err_refresh_probe"] == pytest.approx(0.10) and row["err_stage_alone"] == pytest.approx(stage / 100 - 1)
    s = summary(df)
    assert set(s) == set(VARIANTS) and s["refresh_alone"] == {"median_abs_rel_error": pytest.approx(0.2),
                                                              "max_abs_rel_error": pytest.approx(0.2), "points": 1}


def test_a_stage_run_has_no_refresh_variants(config, tmp_path):
    df = remodel(_run(tmp_path, config, "stage", 1.0, None, 1.1))
    row = df.iloc[0]
    assert row["stage_probe"] == 110.0 and row["stage_alone"] == 120.0
    assert math.isnan(row["refresh_probe"]) and math.isnan(row["refresh_alone"])
    assert summary(df)["refresh_probe"] == {"median_abs_rel_error": None, "max_abs_rel_error": None, "points": 0}


def test_bad_folders_are_named(config, tmp_path, capsys):
    with pytest.raises(HeraError, match="not a run's results folder"):
        remodel(tmp_path)
    res = _run(tmp_path / "a", config, "refresh", 2.0, 1.0, 1.1)
    (res / "profile" / "service" / "x.parquet").unlink()
    with pytest.raises(HeraError, match="service profile .* was not kept"):
        remodel(res)
    assert main(["bench", "service-source", "--from-results", str(res), "--labels", "a,b"]) != 0
    assert "--labels names 2 runs" in capsys.readouterr().err


def test_the_bench_prints_each_run_and_the_pooled_errors(config, tmp_path, capsys):
    a = _run(tmp_path / "a", config, "refresh", 2.0, 1.0, 1.1)
    b = _run(tmp_path / "b", config, "stage", 1.0, None, 1.0)
    out = tmp_path / "ss.json"
    assert main(["bench", "service-source", "--from-results", str(a), str(b), "--labels", "a,b", "--scale", "ci",
                 "--out", str(out)]) == 0
    fig = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(fig["runs"]) == {"a", "b"} and fig["pooled"]["stage_probe"]["points"] == 2
    assert fig["pooled"]["refresh_probe"]["points"] == 1
    assert json.loads(out.read_text())["bench"] == "service-source"
