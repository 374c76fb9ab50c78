"""How far QPS* moves with the machine's speed and how much of the node model's error the trials' drift explains
(hera.report.conditioning, `hera bench conditioning`, T2 row M)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from hera.cli import main
from hera.errors import HeraError
from hera.profile.scalability import tail_log_slope
from hera.report import claims
from hera.report.conditioning import pass_rates, points, service_elasticity, summary, tolerated_drift

P95 = -math.log(0.05)  # M/M/1: the p95 sojourn is P95 / (mu - lambda)


def mm1_qps_star(service_s: float, sla_s: float) -> float:
    return 1.0 / service_s - P95 / sla_s


def test_the_elasticity_from_the_tails_slope_is_the_closed_forms():
    """M/M/1: the p95 sojourn −ln(0.05) / (μ − λ) reaches the SLA at λ* = μ − P95 / SLA; a service time × s moves λ*
    by d ln λ* / d ln s = −μ / λ*, which is what −(1 + 1/b) gives from the curve's log-slope b at λ*."""
    service_s, sla_s = 0.010, 0.100
    qps = mm1_qps_star(service_s, sla_s)
    rates = np.linspace(1.0, 99.0, 400)
    slope = tail_log_slope(rates, P95 / (1 / service_s - rates), qps)
    got = float(service_elasticity(slope)[0])
    assert got == pytest.approx(-(1 / service_s) / qps, rel=0.01)
    h = 1e-4
    numeric = (math.log(mm1_qps_star(service_s * (1 + h), sla_s)) - math.log(mm1_qps_star(service_s * (1 - h), sla_s))) \
        / (math.log(1 + h) - math.log(1 - h))
    assert got == pytest.approx(numeric, rel=0.01)
    assert got < -1  # never better than proportional to the machine's speed
    assert np.isnan(service_elasticity([0.0, -1.0, float("nan"), "x"])).all()


def test_the_tolerated_drift_is_the_band_that_alone_keeps_the_model_within_the_bar():
    faster, slower = tolerated_drift(-2.0, 0.3)
    assert faster == pytest.approx(0.7 ** 0.5) and slower == pytest.approx(1.3 ** 0.5)
    assert slower ** 2.0 - 1 == pytest.approx(0.3) and 1 - faster ** 2.0 == pytest.approx(0.3)
    assert all(math.isnan(x) for x in tolerated_drift(float("nan"), 0.3) + tolerated_drift(-1.5, 1.2))


def f2_rows(elasticity: list[float], drift: list[float], rest: list[float]) -> pd.DataFrame:
    """F2 rows whose model misses the measurement by drift ** −e × (1 + rest) exactly."""
    e, d, r = (np.asarray(x, float) for x in (elasticity, drift, rest))
    measured = np.full(e.size, 100.0)
    return pd.DataFrame({"model": [f"m{i // 2}" for i in range(e.size)], "workers": [1 + i % 2 for i in range(e.size)],
                         "qps_star": measured, "qps_star_model": measured * d ** -e * (1 + r),
                         "tail_log_slope": -1 / (1 + e), "service_drift": d})


def test_summary_splits_the_error_into_the_drifts_share_and_the_rest():
    rows = f2_rows([-2.0, -1.25, -1.5, -1.2], [1.2, 0.9, 1.0, 1.05], [0.0, 0.0, 0.0, 0.0])
    s = summary(rows, 0.3)
    assert s["points"] == 4 and s["drift_explained_share"] == pytest.approx(1.0)
    assert s["max_abs_error"] == pytest.approx(1.2 ** 2 - 1, abs=1e-4) and s["max_abs_error_without_drift"] == 0
    assert s["elasticity_by_workers"]["1"] == {"median": -1.75, "min": -2.0, "max": -1.5}
    assert s["narrowest_band"]["point"] == "m0/1" and s["narrowest_band"]["tolerated_slower"] == pytest.approx(1.14, abs=1e-3)
    noisy = summary(f2_rows([-2.0, -1.25], [1.0, 1.0], [0.2, -0.1]), 0.3)
    assert noisy["drift_explained_share"] == pytest.approx(0.0)
    assert noisy["max_abs_error_without_drift"] == pytest.approx(0.2, abs=1e-4)
    exact = summary(f2_rows([-2.0, -1.5], [1.0, 1.0], [0.0, 0.0]), 0.3)
    assert exact["drift_explained_share"] is None  # nothing to explain: no share, never a division by zero


def test_rows_without_a_slope_a_drift_or_a_measured_qps_are_left_out():
    rows = f2_rows([-2.0, -1.25, -1.5], [1.2, 0.9, 1.0], [0.0, 0.1, 0.0])
    rows.loc[0, "tail_log_slope"] = float("nan")
    rows.loc[1, "qps_star"] = 0.0
    assert len(points(rows, 0.3)) == 1
    assert summary(rows.drop(columns=["tail_log_slope"]), 0.3) is None  # a run before slopes were recorded
    assert summary(rows.iloc[:2], 0.3) is None


def test_pass_rates_counterfactuals():
    quiet = {k: points(f2_rows([-1.5, -1.3], [1.0, 1.0], [0.01, -0.02]), 0.3) for k in ("a", "b")}
    p = pass_rates(quiet, 0.3, sims=2000)
    assert p["simulated_p_meets_max_bar"] == 1.0 and p["runs_meeting_max_bar"] == "2 of 2"
    drifting = {"a": points(f2_rows([-2.0, -2.0], [1.25, 0.8], [0.0, 0.0]), 0.3),
                "b": points(f2_rows([-2.0, -2.0], [1.0, 1.0], [0.0, 0.0]), 0.3)}
    p = pass_rates(drifting, 0.3, sims=4000)
    assert p["p_meets_max_bar_if_drift_1"] == 1.0  # no drift, no rest: every simulated run meets the bar
    assert p["simulated_p_meets_max_bar"] < p["p_meets_max_bar_if_elasticity_1"] <= 1.0
    assert p["runs_meeting_max_bar"] == "1 of 2"
    with pytest.raises(HeraError, match="at least two runs"):
        pass_rates({"a": drifting["a"]}, 0.3)


def test_t2_row_m_states_the_conditioning_only_where_the_rows_carry_it():
    rows = f2_rows([-2.0, -1.25, -1.5, -1.2], [1.1, 0.95, 1.0, 1.0], [0.0, 0.02, 0.0, -0.01])
    ours = claims.m_model_agreement(rows, claims.io.MachineInfo()).ours
    assert "QPS* moves by 1.2-2.0% per 1% of service time" in ours and "max without it 2.0%" in ours
    assert "per 1% of service time" not in claims.m_model_agreement(rows.drop(columns=["service_drift"]),
                                                                     claims.io.MachineInfo()).ours


def _run(folder, rows: pd.DataFrame):
    (folder / "profile").mkdir(parents=True)
    rows.to_csv(folder / "profile" / "scalability.csv", index=False)
    return folder


def test_conditioning_bench_writes_json_and_refuses_runs_it_cannot_read(tmp_path, capsys):
    r1 = _run(tmp_path / "r1", f2_rows([-2.0, -1.25], [1.2, 0.9], [0.05, 0.0]))
    r2 = _run(tmp_path / "r2", f2_rows([-1.5, -1.2], [1.0, 1.05], [0.0, -0.05]))
    out = tmp_path / "conditioning.json"
    assert main(["bench", "conditioning", "--from-results", str(r1), str(r2), "--labels", "one,two",
                 "--out", str(out)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(last["runs"]) == {"one", "two"} and last["pooled"]["pooled_points"] == 4
    assert json.loads(out.read_text())["figure"]["runs"]["one"]["points"] == 2
    old = _run(tmp_path / "old", f2_rows([-2.0], [1.0], [0.0]).drop(columns=["tail_log_slope"]))
    for bad, says in ((tmp_path / "none", "does not exist"), (old, "no F2 row carries a tail slope")):
        assert main(["bench", "conditioning", "--from-results", str(r1), str(bad)]) != 0
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err


# ------------------------------------------------------------------------------ sla-conditioning (node model)
def _mix_samples(config, scale: float = 1.0, per_size: int = 4) -> pd.DataFrame:
    """Raw samples of a one-worker profile over the study's query-size mix: a sub-batch of k items takes
    ``scale × (0.2 + 0.02 k)`` ms (±5%), a light query its sub-batches one after another, dispatch 0.05 ms."""
    from hera.profile.service import SAMPLE_COLUMNS, light_sizes

    sizes, weights = light_sizes(config, 0)
    batch = int(config["batch_size"])
    rows, t = [], 0
    for regime, queries in (("light", sizes), ("saturated", np.repeat(np.unique(sizes), per_size))):
        for q, items in enumerate(queries):
            subs = [batch] * (int(items) // batch) + ([int(items) % batch] if int(items) % batch else [])
            start = t
            spans = []
            for j, k in enumerate(subs):
                ms = scale * (0.2 + 0.02 * k) * (1 + 0.05 * ((q + j) % 3))
                spans.append((j, k, t, t + int(ms * 1e6), ms))
                t += int(ms * 1e6)
            latency = (t - start) / 1e6 + 0.05
            for j, k, t0, t1, ms in spans:
                rows.append({"model": "x", "workers": 1, "regime": regime, "query": len(rows) if regime == "saturated"
                             else 10_000 + q, "query_items": int(items),
                             "weight": weights.get(int(items), 1.0) if regime == "light" else 1.0,
                             "sub_index": j, "items": k, "worker": 0, "t_submit_ns": start, "t_start_ns": t0,
                             "t_end_ns": t1, "service_ms": ms, "query_latency_ms": latency, "dispatch_ms": 0.05})
            t += int(5e6) if regime == "light" else 0
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS)


def _service_run(root, config, scale: float = 1.0):
    """A finished run's folder with one model's service samples (:func:`_mix_samples`), its quantile table and
    the run's config."""
    from hera.profile.service import summarise

    res = root / "results" / "ci"
    (res / "profile" / "service").mkdir(parents=True)
    (res / "config.json").write_text(json.dumps(config, default=str))
    samples = _mix_samples(config, scale)
    samples.to_parquet(res / "profile" / "service" / "x.parquet")
    summarise(samples, {1: 100.0}, {1: {"batch_size": int(config["batch_size"]), "note": "test"}}).to_csv(
        res / "profile" / "service" / "x.csv", index=False)
    return res


@pytest.fixture()
def small_config():
    from hera import config as cfgmod
    from hera.paths import repo_root

    return cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=["model.queries=600", "model.replicates=4"])


def test_a_looser_sla_conditions_qps_better_and_runs_closer_to_capacity(small_config, tmp_path, capsys):
    res = _service_run(tmp_path, small_config)
    out = tmp_path / "sla.json"
    assert main(["bench", "sla-conditioning", "--from-results", str(res), "--multipliers", "1.5,3,8",
                 "--out", str(out)]) == 0
    fig = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    at3, at8 = fig["by_multiplier"]["3"]["1"], fig["by_multiplier"]["8"]["1"]
    assert at3["elasticity_median"] < at8["elasticity_median"] < -0.9  # never much better than the speed itself
    assert at3["capacity_share_median"] < at8["capacity_share_median"]
    low = [p for p in fig["points"] if p["multiplier"] == 1.5]
    assert len(low) == 1 and "leaves no headroom" in low[0]["note"]  # a row saying why, not a crash
    assert "1.5" not in fig["by_multiplier"]
    assert json.loads(out.read_text())["figure"]["step"] == 0.05


@pytest.mark.parametrize("argv, says", [
    (["--multipliers", "3,x"], "comma-separated numbers"),
    (["--multipliers", "0"], "positive numbers"),
    (["--step", "0.7"], "--step must be in"),
])
def test_sla_conditioning_refuses_bad_arguments(small_config, tmp_path, capsys, argv, says):
    res = _service_run(tmp_path, small_config)
    assert main(["bench", "sla-conditioning", "--from-results", str(res), *argv]) != 0
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err


def test_sla_conditioning_refuses_a_folder_without_samples_or_config(small_config, tmp_path, capsys):
    res = _service_run(tmp_path, small_config)
    (res / "profile" / "service" / "x.parquet").unlink()
    (tmp_path / "bare").mkdir()
    for folder, says in ((res, "holds no service samples"), (tmp_path / "bare", "config.json does not exist")):
        assert main(["bench", "sla-conditioning", "--from-results", str(folder)]) != 0
        err = capsys.readouterr().err.strip()
        assert says in err and "\n" not in err
