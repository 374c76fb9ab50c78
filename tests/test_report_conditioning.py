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
