"""T2 verdict logic on crafted numbers: reproduced, not reproduced, not observable on this machine."""

from __future__ import annotations

import pandas as pd
import pytest
from test_report_synthetic import write_results

from hera.report import claims
from hera.report.claims import NOT_OBSERVABLE, NOT_REPRODUCED, REPRODUCED
from hera.report.io import MachineInfo

BIG = MachineInfo(cpu_model="Xeon", usable_cores=16, resctrl=True, known=True)
SMALL = MachineInfo(cpu_model="EPYC", usable_cores=2, resctrl=False, known=True)
NO_RESCTRL = MachineInfo(cpu_model="EPYC", usable_cores=16, resctrl=False, known=True)


def t1(classes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"model": list(classes), "class": list(classes.values())})


def scalability(norm_at_max: dict[str, float], workers: int = 8) -> pd.DataFrame:
    rows = []
    for m, n in norm_at_max.items():
        for w, q in ((1, 100.0), (workers, 100.0 * workers * n)):
            rows.append({"model": m, "workers": w, "qps_star": q, "qps_star_lo": q * 0.9,
                         "qps_star_hi": q * 1.1})
    return pd.DataFrame(rows)


def pairs(emus: dict[tuple[str, str], float]) -> pd.DataFrame:
    rows = [{"model_a": a, "model_b": b, "cores_a": 4, "cores_b": 4, "emu": e, "best": True}
            for (a, b), e in emus.items()]
    # a worse, unflagged split of every pair must be ignored
    rows += [{"model_a": a, "model_b": b, "cores_a": 2, "cores_b": 6, "emu": e - 0.5, "best": False}
             for (a, b), e in emus.items()]
    return pd.DataFrame(rows)


CLASSES = {"rmc1": "memory", "rmc2": "embedding-dominated", "rmc3": "compute", "wnd": "MLP-dominated"}


def test_class_labels_are_normalised():
    assert [claims.normalise_class(c) for c in CLASSES.values()] == ["memory", "memory", "compute", "compute"]
    assert claims.normalise_class("Mixed") == "mixed"


@pytest.mark.parametrize("mem, comp, verdict", [(0.5, 0.95, REPRODUCED), (0.93, 0.95, NOT_REPRODUCED)])
def test_c1_verdicts(mem, comp, verdict):
    scal = scalability({"rmc1": mem, "rmc2": mem, "rmc3": comp, "wnd": comp})
    r = claims.c1_scalability(t1(CLASSES), scal, BIG)
    assert r.verdict == verdict
    assert f"memory-leaning {mem:.2f} (n=2) vs compute-leaning {comp:.2f} (n=2)" in r.ours and "8 workers" in r.ours


def test_c1_leaves_out_models_that_met_no_rate_with_one_worker():
    # NCF/DIEN at `default` scale on a 2-core VM: QPS*(1) = 0, QPS*(2) > 0 -- no normalised value, not inf
    scal = scalability({"rmc1": 0.5, "rmc2": 0.5, "rmc3": 0.95, "wnd": 0.95})
    scal.loc[(scal["model"] == "wnd") & (scal["workers"] == 1), ["qps_star", "qps_star_lo", "qps_star_hi"]] = 0.0
    norm = claims.normalised_scalability(scal)
    assert norm.loc[norm["model"] == "wnd", "norm"].isna().all()
    r = claims.c1_scalability(t1(CLASSES), scal, BIG)
    assert "compute-leaning 0.95 (n=1)" in r.ours and "inf" not in r.ours
    assert "left out, QPS* = 0 at 1 worker: wnd" in r.ours and r.verdict == REPRODUCED


def test_c1_not_observable_on_two_cores_or_without_contrast():
    scal = scalability({"rmc1": 0.5, "rmc3": 0.95}, workers=2)
    r = claims.c1_scalability(t1(CLASSES), scal, SMALL)
    assert r.verdict == NOT_OBSERVABLE and "only 2 usable core(s)" in r.reason and "split 1+1" in r.reason
    r = claims.c1_scalability(t1({"rmc1": "compute", "rmc3": "compute"}), scal, BIG)
    assert r.verdict == NOT_OBSERVABLE and "no memory-leaning model" in r.reason


@pytest.mark.parametrize("hetero, verdict", [(1.3, REPRODUCED), (1.01, NOT_REPRODUCED)])
def test_c2_verdicts(hetero, verdict):
    emus = {("rmc1", "rmc3"): hetero, ("rmc2", "wnd"): hetero, ("rmc1", "rmc2"): 1.0, ("rmc3", "wnd"): 1.0}
    r = claims.c2_heterogeneity(t1(CLASSES), pairs(emus), BIG)
    assert r.verdict == verdict and f"heterogeneous pairs {hetero:.2f} (n=2)" in r.ours and "measured" in r.ours
    assert claims.c2_heterogeneity(t1(CLASSES), pairs(emus), SMALL).verdict == NOT_OBSERVABLE


def test_c2_without_alike_pairs_is_not_observable():
    r = claims.c2_heterogeneity(t1(CLASSES), pairs({("rmc1", "rmc3"): 1.3}), BIG)
    assert r.verdict == NOT_OBSERVABLE and "no alike model pair" in r.reason


def emu(hera: float) -> pd.DataFrame:
    return pd.DataFrame([{"policy": p, "mix": m, "node": 0, "tenants": "", "emu": v}
                         for m in ("a", "b") for p, v in (("single_tenant", 1.0), ("hera", hera))])


def test_c3_verdicts():
    r = claims.c3_emu(emu(1.373), BIG)
    assert (r.verdict, r.paper) == (REPRODUCED, "+37.3% EMU on average")
    assert r.ours == "+37.3% EMU (mean over 2 mixes)"
    assert claims.c3_emu(emu(1.02), BIG).verdict == NOT_REPRODUCED
    assert claims.c3_emu(emu(1.373), SMALL).verdict == NOT_OBSERVABLE
    r = claims.c3_emu(emu(1.373), NO_RESCTRL)
    assert r.verdict == REPRODUCED and "LLC-way partitioning not observable (no resctrl)" in r.reason
    r = claims.c3_emu(emu(1.3).query("policy != 'hera'"), BIG)
    assert r.verdict == NOT_OBSERVABLE and "rows for both 'hera' and 'single_tenant'" in r.reason


def test_c3_uses_measured_evaluations_and_states_the_oracle_gap():
    df = pd.concat([emu(1.3).assign(decided_on="measured", evaluated_on="measured"),
                    pd.DataFrame([{"policy": "oracle", "mix": m, "node": 0, "tenants": "", "emu": 1.4,
                                   "decided_on": "measured", "evaluated_on": "measured"} for m in ("a", "b")])])
    hera = df["policy"] == "hera"
    df.loc[hera, "decided_on"] = "predicted"
    df.loc[hera, "tenants"] = "x+y"
    df.loc[hera & (df["mix"] == "b"), ["emu", "evaluated_on"]] = [2.0, "predicted"]  # a pair never measured
    r = claims.c3_emu(df, BIG)
    assert r.ours.startswith("+30.0% EMU (mean over 1 mixes); Hera vs oracle -7.1% EMU")
    assert "left out, Hera evaluated on predictions only (a pair not measured): mix(es) b" in r.ours
    assert "Hera decided from pair predictions (O(N) profiles)" in r.reason and r.verdict == REPRODUCED
    r = claims.c3_emu(df[df["mix"] == "b"], BIG)
    assert r.verdict == NOT_OBSERVABLE and "mix(es) b" in r.reason


def servers(hera: list[int], base: list[int]) -> pd.DataFrame:
    return pd.DataFrame([{"mix": f"m{i}", "policy": p, "servers": s, "assignment": ""}
                         for i, (h, b) in enumerate(zip(hera, base))
                         for p, s in (("hera", h), ("single_tenant", b))])


def test_c4_verdicts():
    r = claims.c4_servers(servers([74, 37], [100, 50]), BIG)
    assert r.verdict == REPRODUCED and r.ours.startswith("-26.0% servers (mean over 2 mixes)")
    assert claims.c4_servers(servers([10, 10], [10, 10]), BIG).verdict == NOT_REPRODUCED
    assert claims.c4_servers(servers([74], [100]), SMALL).verdict == NOT_OBSERVABLE
    with_oracle = pd.concat([servers([74, 37], [100, 50]),
                             pd.DataFrame([{"mix": "m0", "policy": "oracle", "servers": 70, "assignment": ""},
                                           {"mix": "m1", "policy": "oracle", "servers": 37, "assignment": ""}])])
    with_oracle = with_oracle.assign(decided_on="measured", evaluated_on="measured")
    with_oracle.loc[with_oracle["policy"] == "hera", "decided_on"] = "predicted"
    r = claims.c4_servers(with_oracle, BIG)
    assert "Hera vs oracle +2.9% servers" in r.ours and "Hera decided from pair predictions" in r.reason


def timeline(late: int, total: int = 40, policy: str | None = None) -> pd.DataFrame:
    df = pd.DataFrame({"t_s": [i * 0.5 for i in range(total)], "tenant": ["a", "b"] * (total // 2),
                       "p95_ms": [50.0 if i < late else 20.0 for i in range(total)], "sla_ms": 40.0,
                       "violations": 0, "offered_qps": 100.0})
    return df.assign(policy=policy) if policy else df


def test_c5_verdicts():
    assert claims.c5_sla(timeline(0), BIG).verdict == REPRODUCED
    assert claims.c5_sla(timeline(2), BIG).verdict == REPRODUCED          # 5% of windows: at the threshold
    r = claims.c5_sla(timeline(10), BIG)
    assert r.verdict == NOT_REPRODUCED and r.ours.startswith("25.0% of windows above SLA (10/40")
    # only Hera's rows count when the timeline holds several policies
    mixed = pd.concat([timeline(0, policy="hera"), timeline(30, policy="parties")])
    assert claims.c5_sla(mixed, BIG).verdict == REPRODUCED
    r = claims.c5_sla(timeline(0).assign(p95_ms=float("nan")), BIG)
    assert r.verdict == NOT_OBSERVABLE
    # 2 cores and no resctrl: nothing can move, so the windows over the SLA are the step itself, not a verdict
    r = claims.c5_sla(timeline(10), SMALL)
    assert r.verdict == NOT_OBSERVABLE and r.ours.startswith("25.0% of windows") and "no resource can move" in r.reason
    assert claims.c5_sla(timeline(10), NO_RESCTRL).verdict == NOT_REPRODUCED  # 16 cores: a core could move


def test_evaluate_synthetic_results(tmp_path):
    results = write_results(tmp_path / "ci")
    rows = claims.evaluate(results)
    assert [r.claim for r in rows] == ["C1", "C2", "C3", "C4", "C5", "M", "P"]
    assert all(r.verdict == REPRODUCED for r in rows), [(r.claim, r.reason) for r in rows]
    assert all("Synthetic Xeon 8380, 16 usable cores" in r.machine for r in rows)
    small = claims.evaluate(write_results(tmp_path / "small", cores=2, resctrl=False))
    assert [r.verdict for r in small] == [NOT_OBSERVABLE] * 5 + [REPRODUCED] * 2  # C5 too: nothing can move on 2 cores
    assert list(claims.to_frame(rows).columns) == ["claim", "statement", "paper", "ours", "verdict", "reason",
                                                   "machine"]


def test_core_gate_uses_the_study_core_list():
    meta = {"machine": {"cpu_model": "X", "usable_cpus": list(range(32))}, "config": {"cores": [0, 1, 2]}}
    m = MachineInfo.from_meta(meta)
    assert m.usable_cores == 3 and "split 1+2" in claims.core_gate(m)
    assert claims.core_gate(MachineInfo()) is None  # unknown machine: no gate


def test_model_agreement_never_divides_by_a_zero_measurement():
    scal = pd.DataFrame({"model": ["a", "a", "b"], "workers": [1, 2, 1], "qps_star": [10.0, 20.0, 0.0],
                         "qps_star_model": [11.0, 16.4, 3.0]})
    err = claims.model_errors(scal)
    assert list(err["relative"]) == [True, True, False]
    assert err["error"].tolist() == pytest.approx([0.1, -0.18, 3.0])
    a = claims.model_agreement(scal)
    assert a["median_abs_rel_error"] == pytest.approx(0.14) and a["max_abs_rel_error"] == pytest.approx(0.18)
    assert a["zero_measured"] == 1
    row = claims.m_model_agreement(scal, claims.io.MachineInfo())
    assert row.verdict == claims.REPRODUCED and "1 with measured QPS* = 0" in row.ours
    bad = scal.assign(qps_star_model=[11.0, 30.0, 3.0])
    assert claims.m_model_agreement(bad, claims.io.MachineInfo()).verdict == claims.NOT_REPRODUCED


def test_model_agreement_separates_the_machines_change_of_speed_from_the_models_error():
    scal = pd.DataFrame({"model": ["a", "a", "b", "b"], "workers": [1, 2, 1, 2],
                         "qps_star": [10.0, 20.0, 30.0, 40.0], "qps_star_model": [11.0, 19.0, 45.0, 42.0],
                         "service_drift": [1.02, 0.95, 0.6, None],
                         "qps_star_model_served": [10.8, 19.6, 33.0, None]})
    a = claims.model_agreement(scal)
    assert a["max_abs_rel_error"] == pytest.approx(0.5)  # the headline keeps every point
    assert a["served_points"] == 3 and a["served_max_abs_rel_error"] == pytest.approx(0.1)
    assert a["served_median_abs_rel_error"] == pytest.approx(0.08)
    assert a["drifted"] == ["b/1 (0.60x)"]  # no drift measured (None): not named
    row = claims.m_model_agreement(scal, claims.io.MachineInfo())
    assert row.verdict == claims.NOT_REPRODUCED  # the verdict is the headline's, drift only explains it
    assert "as served in the trials (profile x measured drift): 8.0% / 10.0%" in row.ours
    assert "off the profiled speed by > 1.15x: b/1 (0.60x)" in row.ours
    bare = claims.model_agreement(scal.drop(columns=["service_drift", "qps_star_model_served"]))
    assert "served_points" not in bare and "drifted" not in bare


def test_model_agreement_states_the_profile_alone_beside_the_probed_model():
    """With the operating-point probe the headline is the probed model; the profile's own model is stated beside,
    and only where a probe ran (older tables and ``operating_chunks: 0`` say nothing about it)."""
    scal = pd.DataFrame({"model": ["a", "a", "b", "b"], "workers": [1, 2, 1, 2],
                         "qps_star": [10.0, 20.0, 30.0, 40.0], "qps_star_model": [11.0, 19.0, 33.0, 42.0],
                         "qps_star_model_profile": [12.0, 16.0, 45.0, 40.0],
                         "operating_drift": [1.1, 0.8, 1.3, 1.0]})
    a = claims.model_agreement(scal)
    assert a["max_abs_rel_error"] == pytest.approx(0.1) and a["profile_points"] == 4
    assert a["profile_max_abs_rel_error"] == pytest.approx(0.5)
    assert a["profile_median_abs_rel_error"] == pytest.approx(0.2)
    row = claims.m_model_agreement(scal, claims.io.MachineInfo())
    assert row.verdict == claims.REPRODUCED  # the verdict is the probed model's
    assert "on the service profile alone (before the operating-point probe): 20.0% / 50.0%" in row.ours
    unprobed = scal.assign(operating_drift=float("nan"))
    assert "profile alone" not in claims.m_model_agreement(unprobed, claims.io.MachineInfo()).ours


def test_model_agreement_states_the_probe_before_the_trials_beside_the_bracketed_model():
    """With the probe after the trials the headline is the model at the bracketed speed; the model from the probe
    before them alone (which started the search) is stated beside, only where a probe ran after them."""
    scal = pd.DataFrame({"model": ["a", "a", "b", "b"], "workers": [1, 2, 1, 2],
                         "qps_star": [10.0, 20.0, 30.0, 40.0], "qps_star_model": [11.0, 19.0, 33.0, 42.0],
                         "qps_star_model_before": [14.0, 16.0, 30.0, 40.0],
                         "operating_drift": [1.1, 0.8, 1.3, 1.0], "operating_drift_after": [0.9, 1.0, 1.2, 1.1]})
    a = claims.model_agreement(scal)
    assert a["max_abs_rel_error"] == pytest.approx(0.1) and a["before_points"] == 4
    assert a["before_max_abs_rel_error"] == pytest.approx(0.4)
    assert a["before_median_abs_rel_error"] == pytest.approx(0.1)
    row = claims.m_model_agreement(scal, claims.io.MachineInfo())
    assert "at the speed of the probe before the trials alone (the model that started the search): 10.0% / 40.0%" \
        in row.ours
    assert "probe before" not in claims.m_model_agreement(scal.assign(operating_drift_after=float("nan")),
                                                          claims.io.MachineInfo()).ours


def _pairs(measured: list[float], predicted: list[float], emu: list[float], predicted_emu: list[float],
           **beside: list[float]) -> pd.DataFrame:
    """A measured co-location table: each point's two tenants at ``measured`` QPS* (both alike), predicted at
    ``predicted``."""
    n = len(measured)
    return pd.DataFrame({"model_a": ["a"] * n, "model_b": [f"b{i % 3}" for i in range(n)], "cores_a": 1, "cores_b": 1,
                         "ways_a": None, "ways_b": None, "share_a": 0.5, "qps_star_a": measured,
                         "qps_star_b": measured, "emu": emu, "predicted_qps_star_a": predicted,
                         "predicted_qps_star_b": predicted, "predicted_emu": predicted_emu, **beside})


def test_pair_prediction_row_states_the_benchs_headline_and_what_stands_beside_it():
    good = _pairs([10.0, 20.0, 30.0], [11.0, 19.0, 33.0], [0.6, 0.7, 0.8], [0.65, 0.68, 0.85])
    row = claims.p_pair_prediction(good, claims.io.MachineInfo())
    assert row.claim == "P" and row.verdict == REPRODUCED
    assert row.ours.startswith("the a-priori prediction: median |predicted - measured| / measured co-located QPS* "
                               "10.0% (per tenant), mean |EMU error| 0.040 over 3 points of 3 pairs")
    assert "anchored" not in row.ours and "as served" not in row.ours
    far = _pairs([10.0, 20.0, 30.0], [11.0, 19.0, 33.0], [0.6, 0.7, 0.8], [0.85, 0.68, 0.65],
                 anchored_qps_star_a=[10.0, 20.0, 30.0], anchored_qps_star_b=[10.0, 20.0, 30.0],
                 anchored_emu=[0.6, 0.7, 0.8])
    row = claims.p_pair_prediction(far, claims.io.MachineInfo())
    assert row.verdict == NOT_REPRODUCED and "mean |EMU error| 0.140" in row.ours  # the EMU bar alone decides
    assert "anchored (each tenant probed alone right before its pair): 0.0% / 0.000" in row.ours
    # with the refreshed prediction at every point, the bars are judged on it, the a-priori one beside
    refreshed = far.assign(refreshed_qps_star_a=[10.5, 20.0, 30.0], refreshed_qps_star_b=[10.5, 20.0, 30.0],
                           refreshed_emu=[0.62, 0.7, 0.8])
    row = claims.p_pair_prediction(refreshed, claims.io.MachineInfo())
    assert row.verdict == REPRODUCED and row.ours.startswith("the refreshed prediction (each model's speed from its "
                                                             "anchors in the pass's other sittings): median")
    assert "mean |EMU error| 0.007 over 3 points" in row.ours
    assert "a-priori (F2's speeds, before any pair ran): 10.0% / 0.140" in row.ours
    # a point without it: the a-priori prediction is the headline again
    partial = refreshed.assign(refreshed_emu=[0.62, 0.7, float("nan")])
    assert claims.p_pair_prediction(partial, claims.io.MachineInfo()).verdict == NOT_REPRODUCED
    zero = _pairs([0.0, 20.0], [3.0, 20.0], [0.0, 0.7], [0.05, 0.7])
    assert "2 tenant values with measured QPS* = 0 (absolute errors)" in claims.p_pair_prediction(
        zero, claims.io.MachineInfo()).ours
    assert claims.p_pair_prediction(good.drop(columns=["predicted_emu"]), claims.io.MachineInfo()).verdict \
        == NOT_OBSERVABLE
