"""Pair prediction from O(N) profiles (pure: node-model curves and interference tables, no node)."""

from __future__ import annotations

import numpy as np
import pytest

from hera.profile.pair_prediction import (
    NoInterference, PairSplit, PredictionError, boundary, predict_pair, tenant_curve,
)
from hera.queueing.qps import ModelSettings, modelled_qps_star
from hera.queueing.service import ServiceLaw

SETTINGS = ModelSettings(n_queries=3000, warmup_queries=300, replicates=6, seed=4)
ITEMS = np.random.default_rng(0).choice([100, 200, 200, 300, 700], 3000)


def law(ms_per_64: float, workers: int = 1) -> ServiceLaw:
    rng = np.random.default_rng(1)
    pools = {n: rng.gamma(20, ms_per_64 * n / 64 / 20, 400) for n in (64, 36, 8, 44, 60)}
    return ServiceLaw(workers, 64, pools, pools, dispatch_ms=np.full(10, 0.1), gap_ms=0.05)


class Constant:
    """Every tenant's service times grow by ``f`` next to any partner (pressure irrelevant)."""

    def __init__(self, f: float):
        self.f = f

    def inflation(self, model, kind, intensity):
        return self.f if kind == "bandwidth" else 1.0

    def pressure(self, model, kind, workers, load_frac):
        return load_frac


def test_uniform_inflation_is_read_off_the_uninflated_curve():
    """QPS* with every service time x1.3 from the curve equals the node model run on the scaled law."""
    base = law(4.0)
    curve = tenant_curve(base, ITEMS, 120.0, 0.95, SETTINGS)
    direct = modelled_qps_star(base.scaled(1.3), ITEMS, 120.0, 0.95, SETTINGS).qps_star
    assert float(np.median(curve.qps_star(1.3))) == pytest.approx(direct, rel=0.05)
    assert np.all(curve.qps_star(1.3) < curve.qps_star(1.0))


def test_without_interference_each_tenant_keeps_its_alone_qps_star():
    ca, cb = (tenant_curve(law(ms), ITEMS, 120.0, 0.95, SETTINGS, model=m) for ms, m in ((4.0, "a"), (6.0, "b")))
    qa, qb = float(np.median(ca.qps_star())), float(np.median(cb.qps_star()))
    p = boundary(ca, cb, PairSplit(1, 1), qa, qb, 0.5, NoInterference())
    # balanced ray: both reach their alone QPS* at t = 2 (each on its own core)
    assert float(np.median(p.scale)) == pytest.approx(2.0, rel=0.08)
    slow = boundary(ca, cb, PairSplit(1, 1), qa, qb, 0.5, Constant(1.5))
    assert float(np.median(slow.scale)) < 0.8 * float(np.median(p.scale))
    assert np.all(slow.inflation_a == 1.5) and slow.binding in ("a", "b")


def test_predict_pair_rows_best_and_a_tenant_that_meets_no_rate():
    curves = {(m, 1): tenant_curve(law(ms), ITEMS, 120.0, 0.95, SETTINGS, model=m) for m, ms in (("a", 4.0), ("b", 6.0))}
    alone = {("a", 1): float(np.median(curves[("a", 1)].qps_star())), ("b", 1): float(np.median(curves[("b", 1)].qps_star()))}
    df = predict_pair(curves, "a", "b", [PairSplit(1, 1)], alone, {"a": 2 * alone[("a", 1)], "b": 2 * alone[("b", 1)]},
                      NoInterference(), shares=(0.25, 0.5, 0.75))
    assert len(df) == 3 and df["best"].all()
    # each tenant alone on its core with whole-node QPS* twice that: the balanced ray reaches EMU 1, the skewed
    # ones stop where the favoured tenant reaches its own QPS* (EMU 1/2 + 1/6)
    emu = dict(zip(df["share_a"], df["emu"]))
    assert emu[0.5] == pytest.approx(1.0, rel=0.08) and emu[0.25] == pytest.approx(2 / 3, rel=0.08)
    assert (df["qps_star_a_lo"] <= df["qps_star_a"]).all() and (df["qps_star_a"] <= df["qps_star_a_hi"]).all()
    none = predict_pair(curves, "a", "b", [PairSplit(1, 1)], {("a", 1): alone[("a", 1)], ("b", 1): 0.0},
                        {"a": 1.0, "b": 1.0}, NoInterference())
    assert len(none) == 1 and not none["best"].any() and "b meets no rate alone" in none["note"].iloc[0]
    with pytest.raises(PredictionError, match="no modelled latency curve of 'a' on 2 worker"):
        predict_pair(curves, "a", "b", [PairSplit(2, 1)], alone, {"a": 1.0, "b": 1.0}, NoInterference())
    with pytest.raises(PredictionError, match="share must be in"):
        boundary(curves[("a", 1)], curves[("b", 1)], PairSplit(1, 1), 1.0, 1.0, 1.0, NoInterference())


def test_a_way_split_replaces_the_partners_cache_pressure():
    sp = PairSplit(1, 1, 3, 9)
    assert sp.llc == "3/9" and sp.cache_intensity_on("a") == pytest.approx(0.75)
    assert sp.cache_intensity_on("b") == pytest.approx(0.25) and PairSplit(1, 1).cache_intensity_on("a") is None


def test_calibration_makes_the_alone_qps_star_the_measured_one_and_keeps_the_interference():
    """A curve calibrated to a measured alone QPS* 20% below its own gives that value at f = 1 (per replicate),
    a service-time scale above 1, and a balanced ray without interference at t = 2 of the measured values."""
    c = tenant_curve(law(4.0), ITEMS, 120.0, 0.95, SETTINGS, model="a")
    own = float(np.median(c.qps_star()))
    cal = c.calibrated(0.8 * own)
    assert np.allclose(cal.qps_star(), 0.8 * own, rtol=1e-3)
    assert np.all(cal.service_scale > 1.0) and np.all(cal.effective_capacity < c.capacity_qps)
    # the interference still acts on top: x1.3 lowers the calibrated QPS* as it lowers the uncalibrated one
    assert float(np.median(cal.qps_star(1.3))) < 0.8 * own
    p = boundary(cal, cal, PairSplit(1, 1), 0.8 * own, 0.8 * own, 0.5, NoInterference())
    assert float(np.median(p.scale)) == pytest.approx(2.0, rel=0.02)
    assert c.calibrated(0.0) is c  # a tenant that meets no rate alone is left as it is


def test_calibration_to_the_served_speed_takes_f2s_measured_drift_as_the_scale():
    """``calibrate_to: served``: κ is F2's probe drift x trial drift at the nearest profiled worker count (the
    model's own QPS* level kept); ``qps`` matches the measured QPS*; a table without the drifts, or an unknown
    target, is a one-line error naming it."""
    import pandas as pd

    from hera.profile.pair_prediction import calibrate_curves, served_speed

    c = tenant_curve(law(4.0), ITEMS, 120.0, 0.95, SETTINGS, model="a")
    own = float(np.median(c.qps_star()))
    scal = pd.DataFrame({"model": ["a", "a"], "workers": [1, 2], "qps_star": [0.8 * own, 1.5 * own],
                         "operating_drift": [1.1, 0.9], "service_drift": [1.2, 1.0]})
    assert served_speed(scal, "a", 1) == pytest.approx(1.32) and served_speed(scal, "a", 3) == pytest.approx(0.9)
    served = calibrate_curves({("a", 1): c}, {("a", 1): 0.8 * own}, scal, "served")[("a", 1)]
    assert np.allclose(served.service_scale, 1.32) and np.all(served.qps_star() < c.qps_star())
    qps = calibrate_curves({("a", 1): c}, {("a", 1): 0.8 * own}, scal, "qps")[("a", 1)]
    assert np.allclose(qps.qps_star(), 0.8 * own, rtol=1e-3)
    with pytest.raises(PredictionError, match="served needs F2's operating_drift and service_drift for model 'a'"):
        calibrate_curves({("a", 1): c}, {("a", 1): own}, scal.drop(columns="operating_drift"), "served")
    with pytest.raises(PredictionError, match="calibrate_to must be one of qps, served, got 'both'"):
        calibrate_curves({("a", 1): c}, {("a", 1): own}, scal, "both")


def test_the_harness_takes_cpu_from_the_workers_only_where_it_has_no_core_of_its_own():
    """h ms of harness CPU per query, both tenants at λ: service times grow by 1 / (1 − Σ h λ / 1000 / cores) on a
    split with no harness core, not at all on one with; the balanced ray's boundary moves in accordingly."""
    from hera.profile.pair_prediction import MAX_HARNESS_STEAL, harness_steal

    c = tenant_curve(law(4.0), ITEMS, 120.0, 0.95, SETTINGS, model="a")
    h = c.with_harness(2.0)
    assert h.harness_ms_per_query == 2.0 and c.with_harness(float("nan")).harness_ms_per_query == 0.0
    lam = np.array([50.0, 100.0])
    assert np.allclose(harness_steal(h, h, PairSplit(1, 1), lam, lam), 1.0)
    shared = PairSplit(1, 1, harness_shared=True)
    assert np.allclose(harness_steal(h, h, shared, lam, lam), 1 / (1 - 2.0 * 2 * lam / 1e3 / 2))
    assert np.allclose(harness_steal(h, h, shared, lam * 100, lam * 100), 1 / (1 - MAX_HARNESS_STEAL))
    assert np.allclose(harness_steal(c, c, shared, lam, lam), 1.0)  # no harness cost known: none counted
    q = float(np.median(c.qps_star()))
    free = boundary(h, h, PairSplit(1, 1), q, q, 0.5, NoInterference())
    busy = boundary(h, h, shared, q, q, 0.5, NoInterference())
    assert float(np.median(busy.scale)) < 0.97 * float(np.median(free.scale))
    assert np.all(busy.inflation_a > 1.0) and np.allclose(free.inflation_a, 1.0)
    assert h.calibrated(0.9 * q).harness_ms_per_query == 2.0  # calibration keeps it


def test_harness_cost_is_read_from_the_fewest_worker_row():
    import pandas as pd

    from hera.profile.pair_prediction import harness_ms_per_query

    scal = pd.DataFrame({"model": ["a", "a", "b"], "workers": [2, 1, 1],
                         "harness_cpu_ms_per_query": [0.9, 0.3, float("nan")]})
    assert harness_ms_per_query(scal, "a") == pytest.approx(0.3)
    assert np.isnan(harness_ms_per_query(scal, "b"))
    assert np.isnan(harness_ms_per_query(scal.drop(columns="harness_cpu_ms_per_query"), "a"))


@pytest.mark.parametrize("machine, shared", [("2-core-vm.json", True), ("16-core-1-socket-smt-resctrl.json", False)])
def test_splits_say_whether_the_harness_shares_the_workers_cores(tmp_path, machine, shared):
    """On a machine with no harness core (2 cores: both run workers) every split shares; where the core plan
    reserves one, none does."""
    from pathlib import Path

    from hera.profile.pair_prediction import node_splits

    path = Path(__file__).resolve().parents[1] / "workflow" / "machines" / machine
    config = {"cores": "auto", "machine": str(path), "colocation": {"llc_splits": False}}
    splits, _ = node_splits(config, resctrl_root=str(tmp_path / "no-resctrl"))
    assert splits and all(s.harness_shared is shared for s in splits)


def test_by_load_sensitivity_mixes_light_and_saturated_by_the_victims_own_load():
    """``colocation.sensitivity: by_load``: an idle victim takes the light-load inflation, a busy one the
    saturated, in between the mix; pressures come from the saturated profiles; a bad mode is one line."""
    from hera.profile.pair_prediction import ByLoadInterference, inflation, interference_from_files

    both = ByLoadInterference(Constant(1.6), Constant(1.2))
    own = np.array([0.0, 0.5, 1.0])
    got = inflation("a", "b", 1, np.full(3, 0.7), None, both, own_load=own)
    assert got == pytest.approx([1.6, 1.4, 1.2])
    assert inflation("a", "b", 1, np.full(3, 0.7), None, both) == pytest.approx([1.2] * 3)  # no load: saturated
    assert both.pressure("b", "bandwidth", 1, 0.3) == pytest.approx(0.3)
    # in a pair: the lightly loaded tenant (share 0.25 of the ray) is inflated more than with saturated only
    a, b = tenant_curve(law(5.0), ITEMS, 60.0, 0.95, SETTINGS), tenant_curve(law(5.0), ITEMS, 60.0, 0.95, SETTINGS)
    split = PairSplit(1, 1)
    alone = float(np.median(a.qps_star()))
    sat = boundary(a, b, split, alone, alone, 0.25, Constant(1.2))
    mixed = boundary(a, b, split, alone, alone, 0.25, both)
    assert np.median(mixed.inflation_a) > np.median(sat.inflation_a) >= 1.2 - 1e-9
    assert np.median(mixed.scale) <= np.median(sat.scale)
    with pytest.raises(PredictionError, match="colocation.sensitivity must be one of saturated, by_load"):
        interference_from_files([], None, "guess")


class BusyCore(Constant):
    """:class:`Constant` with a busy-core sensitivity ``1 + k × u`` for the models in ``busy``."""

    def __init__(self, f: float, k: float, busy: set[str]):
        super().__init__(f)
        self.k, self.busy = k, busy

    def inflation(self, model, kind, intensity):
        return 1.0 + self.k * intensity if kind == "cpu" else super().inflation(model, kind, intensity)

    def has_kind(self, model, kind):
        return kind != "cpu" or model in self.busy


def test_a_partners_utilisation_is_a_busy_core_for_a_victim_profiled_next_to_one():
    """The busy-core factor is the victim's sensitivity at the partner's utilisation; a victim without a busy-core
    profile, or profiles that cannot tell (no ``has_kind``), get the memory kinds only."""
    from hera.profile.pair_prediction import GridInterference, has_kind, inflation, interference_options

    busy = BusyCore(1.1, 0.5, {"a"})
    u = np.array([0.0, 0.4, 1.0])
    assert inflation("a", "b", 1, u, None, busy) == pytest.approx(1.1 * (1 + 0.5 * u))
    assert inflation("b", "a", 1, u, None, busy) == pytest.approx([1.1] * 3)
    assert not has_kind(Constant(1.1), "a", "cpu") and not has_kind(NoInterference(), "a", "cpu")
    grid = GridInterference(busy)
    assert grid.has_kind("a", "cpu") and not grid.has_kind("b", "cpu")
    assert inflation("a", "b", 1, u, None, grid) == pytest.approx(1.1 * (1 + 0.5 * u), rel=1e-6)
    # in a pair, the busy core lowers the boundary where both tenants are loaded
    a, b = (tenant_curve(law(5.0), ITEMS, 150.0, 0.95, SETTINGS, model="a"),
            tenant_curve(law(5.0), ITEMS, 150.0, 0.95, SETTINGS, model="b"))
    alone = float(np.median(a.qps_star()))
    plain = boundary(a, b, PairSplit(1, 1), alone, alone, 0.5, Constant(1.1))
    with_busy = boundary(a, b, PairSplit(1, 1), alone, alone, 0.5, BusyCore(1.1, 0.5, {"a", "b"}))
    assert 0 < np.median(with_busy.scale) < np.median(plain.scale)
    assert interference_options("p95")["statistic"] == "p95"
    with pytest.raises(PredictionError, match="colocation.statistic must be one of mean, p95"):
        interference_options("p99")


def test_a_sensitivity_mode_the_schema_does_not_know_is_refused():
    from hera import config as cfgmod
    from hera.errors import ConfigError
    from hera.paths import repo_root

    path = repo_root() / "workflow" / "config" / "default.yaml"
    assert cfgmod.load(path)["colocation"]["sensitivity"] == "saturated"
    with pytest.raises(ConfigError, match="sensitivity"):
        cfgmod.load(path, overrides=["colocation.sensitivity=guess"])


def test_a_joint_trial_passes_when_both_tenants_do():
    """One tenant passes half its trials at its QPS*; with noise σ its chance is Φ(ln(Q/λ)/σ); a joint trial
    passes with the product; σ = 0 is the step of the noiseless boundary."""
    from scipy.stats import norm

    from hera.profile.pair_prediction import joint_pass_probability, pass_probability

    lam = np.array([50.0, 100.0, 200.0])
    assert np.array_equal(pass_probability(lam, np.full(3, 100.0), 0.0), [1.0, 1.0, 0.0])
    p = pass_probability(lam, np.full(3, 100.0), 0.2)
    assert p[1] == pytest.approx(0.5) and p[0] == pytest.approx(norm.cdf(np.log(2) / 0.2))
    assert pass_probability(np.array([1.0]), np.array([0.0]), 0.2)[0] == 0.0  # meets no rate: never passes
    both = joint_pass_probability(lam, np.full(3, 100.0), 0.2, lam, np.full(3, 100.0), 0.2)
    assert np.allclose(both, p * p)


def test_two_tenants_binding_together_are_measured_below_both_boundaries():
    """Identical tenants on the balanced ray reach their QPS* at t = 2 together; with trial noise σ the boundary
    is where each passes with probability √½: t = 2·exp(−Φ⁻¹(√½)·σ). On a ray where one tenant binds long before
    the other, the other's noise does not move it."""
    import dataclasses

    from scipy.stats import norm

    c = tenant_curve(law(4.0), ITEMS, 120.0, 0.95, SETTINGS, model="a")
    q = float(np.median(c.qps_star()))
    c = c.calibrated(q)  # every replicate's QPS* exactly q
    exact = boundary(c, c, PairSplit(1, 1), q, q, 0.5, NoInterference())
    noisy_c = c.with_trial_sd(0.2)
    assert noisy_c.trial_sd == 0.2 and c.with_trial_sd(float("nan")).trial_sd == 0.0
    noisy = boundary(noisy_c, noisy_c, PairSplit(1, 1), q, q, 0.5, NoInterference())
    assert float(np.median(exact.scale)) == pytest.approx(2.0, rel=1e-3)
    assert float(np.median(noisy.scale)) == pytest.approx(2.0 * np.exp(-norm.ppf(np.sqrt(0.5)) * 0.2), rel=1e-3)
    # s = 0.9: a reaches its QPS* at t = 1/0.9, b at t = 10; b's noise (however large) leaves a's boundary
    quiet_a = dataclasses.replace(noisy_c, trial_sd=0.0)
    skew = boundary(quiet_a, noisy_c, PairSplit(1, 1), q, q, 0.9, NoInterference())
    assert float(np.median(skew.scale)) == pytest.approx(1 / 0.9, rel=1e-3)
    assert noisy_c.calibrated(0.9 * q).trial_sd == 0.2  # calibration keeps it


def test_trial_noise_is_read_from_the_scalability_table_at_the_nearest_worker_count():
    import pandas as pd

    from hera.profile.pair_prediction import trial_sd

    scal = pd.DataFrame({"model": ["a", "a", "b"], "workers": [1, 4, 1], "trial_crossing_sd": [0.1, 0.3, float("nan")]})
    assert trial_sd(scal, "a", 1) == pytest.approx(0.1) and trial_sd(scal, "a", 3) == pytest.approx(0.3)
    assert np.isnan(trial_sd(scal, "b", 1)) and np.isnan(trial_sd(scal.drop(columns="trial_crossing_sd"), "a", 1))
