"""Measured confirmation of a modelled QPS* (hera.loadgen.confirm) on queues with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hera.errors import ConfigError
from hera.loadgen import sut as sutmod
from hera.loadgen.confirm import (
    ConfirmSettings,
    _Confirmer,
    _Trial,
    bracket_centre,
    confirm_point,
    confirm_qps_star,
    crossing,
    median_ci,
    miss_interval,
    probe_service_drift,
    retest_centre,
    service_drift,
    tail_quantile,
    warmup_queries,
)
from hera.loadgen.settings import LoadgenSettings
from hera.queueing import closed_forms as cf
from hera.queueing.qps import TailModel
from hera.queueing.service import ServiceLaw

D_S = 0.01  # M/D/1 service time
SLA_MS = 50.0


def base(seed: int = 0) -> LoadgenSettings:
    return LoadgenSettings(target_qps=10, n_queries=100, query_sizes={"kind": "fixed", "items": 10},
                           max_items=100, warmup_queries=10, latency_bound_ms=SLA_MS, arrival_seed=seed)


def md1_qps_star() -> float:
    return cf.qps_at_latency(lambda r: cf.md1_sojourn_quantile_s(0.95, r, D_S), SLA_MS / 1e3, 1 / D_S, 1e-4)


def test_crossing_is_exact_for_a_tail_like_one_over_mu_minus_lambda():
    def tail(r):
        return 1000.0 / (100.0 - r)
    sla = tail(70.0)
    assert crossing(60.0, tail(60.0), 80.0, tail(80.0), sla) == pytest.approx(70.0)
    assert crossing(60.0, tail(60.0), 80.0, math.inf, sla) == 60.0  # failing tail unmeasured: the passing rate


def test_median_interval_levels_from_order_statistics():
    lo, hi, level = median_ci([3.0, 1.0, 2.0], 0.95)
    assert (lo, hi) == (1.0, 3.0) and level == pytest.approx(0.75)
    lo, hi, level = median_ci(list(range(10)), 0.9)
    assert level >= 0.9 and lo > 0 and hi < 9


def test_miss_interval_brackets_the_share():
    lo, hi = miss_interval(5, 100, 0.95)
    assert lo < 0.05 < hi
    assert miss_interval(0, 100, 0.95)[0] == 0.0 and miss_interval(100, 100, 0.95)[1] == 1.0


@pytest.mark.parametrize("kw, match", [(dict(repeats=2), "repeats must be an integer >= 3"),
                                       (dict(confidence=0.3), "confidence must be in"),
                                       (dict(confidence=1.0), "confidence must be in"),
                                       (dict(step=0.0), "step"), (dict(min_queries=5), "min_queries")])
def test_settings_out_of_range_are_refused(kw, match):
    with pytest.raises(ConfigError, match=match):
        ConfirmSettings(**kw)


@pytest.mark.timing
@pytest.mark.slow
def test_confirmation_finds_the_md1_rate_from_a_wrong_model():
    """The model says 20% too much; three repeats of bracketing trials still land on the M/D/1 answer."""
    law = ServiceLaw(1, 1024, {10: np.array([D_S * 1e3])}, {10: np.array([D_S * 1e3])}, dispatch_ms=np.zeros(1))
    exact = md1_qps_star()
    s = ConfirmSettings(trial_s=1.0, min_queries=100, max_chunks=2, step=0.1)
    lines: list[str] = []
    res = confirm_qps_star(sutmod.SleepSUT(sutmod.deterministic(D_S), 1), base(3), 1000, modelled_qps=1.2 * exact,
                           sla_ms=SLA_MS, percentile=0.95, settings=s, tenant="default",
                           model=TailModel(law, np.full(10, 10), 0.95), log=lines.append)
    # trials of ~100 queries from an empty queue: a few % above the steady-state answer
    assert res.value == pytest.approx(exact, rel=0.12)
    assert res.repeats == 3 and len(res.per_repeat) == 3 and res.value_ci_level == pytest.approx(0.75)
    assert res.value_ci_lo <= res.value <= res.value_ci_hi and res.control_variate
    t = res.trials
    assert {"rate_qps", "verdict", "latency_ms_pct", "latency_ms_pct_adjusted", "miss_lo", "miss_hi"} <= set(t.columns)
    assert set(t["tenant"]) == {"default"} and (t["scale"] == t["rate_qps"]).all()
    for r in range(3):  # every repeat bracketed: a rate within the SLA and one above it
        adj = t[t["repeat"] == r]["latency_ms_pct_adjusted"]
        assert (adj <= SLA_MS).any() and (adj > SLA_MS).any()
    # the first repeat starts from the (wrong) model, the later ones from the median measured before them
    # the log names each trial's miss test and, after the arrow, the side the bracket used (the adjusted tail's)
    trial_lines = [x for x in lines if x.lstrip().startswith("repeat ")]
    assert len(trial_lines) == len(t)
    for line, adj, verdict in zip(trial_lines, t["latency_ms_pct_adjusted"], t["verdict"]):
        assert f"misses {verdict}" in line and line.split(" → ")[1].split()[0] == ("pass" if adj <= SLA_MS else "fail")
    first = t[t["attempt"] == 0].groupby("repeat")["rate_qps"].first()
    assert first[0] == pytest.approx(1.2 * exact * (1 - s.step))
    assert first[1] == pytest.approx(res.per_repeat[0] * (1 - s.step))
    assert first[2] == pytest.approx(float(np.median(res.per_repeat[:2])) * (1 - s.step))


def _bracketing(true_scale: float, centre: float, step: float = 0.1, guide=None, drift: float = math.nan,
                tail=None) -> list[float]:
    """The scales one repeat visits when every trial's normalised tail is ``tail(scale)`` (default ``scale /
    true_scale``; no node) and its measured service drift ``drift``, with the bracketing ``guide``."""
    c = object.__new__(_Confirmer)
    c.s = ConfirmSettings(step=step)
    c.guide, c.tenants = guide, ["default"]
    seen: list[float] = []
    tail = tail or (lambda x: x / true_scale)

    def trial(repeat, attempt, scale, seed):
        seen.append(scale)
        tau = tail(scale)
        return _Trial(scale, tau, tau, tau <= 1.0, None, {"default": drift})

    c.trial = trial
    c.repeat(0, 0, centre, 1)
    return seen


def test_a_failing_lower_trial_sends_the_next_one_down():
    """Above the crossing the first trial fails and the second goes below it (a trial above a failing one would
    fail too); below it the first passes and the second goes above. Either way the crossing ends bracketed."""
    down = _bracketing(true_scale=50.0, centre=100.0)
    assert down[0] == pytest.approx(90.0) and down[1] < down[0]
    assert all(s < 100.0 for s in down) and min(down) <= 50.0 < max(down)
    up = _bracketing(true_scale=120.0, centre=100.0)
    assert up[:2] == pytest.approx([90.0, 110.0]) and max(up) > 120.0
    near = _bracketing(true_scale=85.0, centre=100.0)  # just below the first trial: one step down brackets it
    assert len(near) == 2 and near[1] < 85.0


def test_a_guide_at_the_served_speed_lengthens_a_step_but_never_shortens_one():
    """The node served 2x slower than modelled and its tail hardly moves with the rate (a VM that slowed down:
    secants of flat tails say nothing). Without a guide the steps widen geometrically from 15%; the node model at the served
    speed (value 40 for drift 2) sends the second trial a factor 2 down (its cap: 85 / 40 x 1.05 > 2) and the
    third just below 42: the repeat ends there. A guide that says the value is above the failing trials (the
    node served as profiled) changes nothing, nor does one without a measured drift."""
    def tail(x):
        return 1.3 if x > 40.0 else 0.9

    alone = _bracketing(40.0, 100.0, step=0.15, tail=tail)
    guided = _bracketing(40.0, 100.0, step=0.15, tail=tail, drift=2.0, guide=lambda d: 80.0 / d["default"])
    assert alone == pytest.approx([85.0, 85.0 / 1.15, 85.0 / 1.15**2, 85.0 / 1.15**4, 85.0 / 1.15**7])
    assert guided == pytest.approx([85.0, 42.5, 42.5 / 1.15])
    assert guided[-1] <= 40.0 < guided[-2]
    above = _bracketing(40.0, 100.0, step=0.15, tail=tail, drift=1.0, guide=lambda d: 100.0)
    blind = _bracketing(40.0, 100.0, step=0.15, tail=tail, guide=lambda d: 40.0)  # no drift measured
    assert above == alone and blind == alone


def test_a_guide_speeds_an_ascent_where_the_node_served_faster():
    up = _bracketing(200.0, 100.0, step=0.1)
    guided = _bracketing(200.0, 100.0, step=0.1, drift=0.5, guide=lambda d: 100.0 / d["default"])
    assert guided[:2] == up[:2] == pytest.approx([90.0, 110.0])
    assert guided[2] == pytest.approx(210.0) and len(guided) == 3 < len(up)


def test_a_retest_starts_where_its_first_attempt_left_off():
    failing = [_Trial(s, 2.0, 2.0, False, None) for s in (125.0, 108.0, 94.0, 54.0)]
    assert retest_centre(147.0, 0.0, failing) == 54.0  # no scale passed: below the lowest one tried
    assert retest_centre(147.0, 60.0, failing) == 60.0  # re-tested for failed queries: where it found the value
    assert retest_centre(147.0, 0.0, []) == 147.0


def test_service_drift_is_measured_over_modelled_span():
    assert service_drift(np.array([12.0, 24.0]), np.array([10.0, 20.0])) == pytest.approx(1.2)
    assert service_drift(np.array([np.nan, 24.0]), np.array([10.0, 20.0])) == pytest.approx(1.2)  # no span: left out
    assert math.isnan(service_drift(np.array([np.nan]), np.array([10.0])))
    with pytest.raises(ConfigError, match="2 measured spans for 1 modelled"):
        service_drift(np.array([1.0, 2.0]), np.array([1.0]))


@pytest.mark.timing
@pytest.mark.slow
def test_a_node_slower_than_its_profile_shows_as_drift():
    """The SUT serves in 10 ms; the model's profile said 8 (or 10): every trial's drift says 1.25 (or 1)."""
    s = ConfirmSettings(trial_s=0.5, min_queries=40, max_chunks=1, step=0.15, max_steps=2)
    for profiled_ms, want in ((8.0, 1.25), (10.0, 1.0)):
        law = ServiceLaw(1, 1024, {10: np.array([profiled_ms])}, {10: np.array([profiled_ms])},
                         dispatch_ms=np.zeros(1))
        res = confirm_qps_star(sutmod.SleepSUT(sutmod.deterministic(D_S), 1), base(11), 1000,
                               modelled_qps=0.6 / D_S, sla_ms=SLA_MS, percentile=0.95, settings=s,
                               model=TailModel(law, np.full(10, 10), 0.95))
        drift = res.trials["service_drift"].dropna()
        assert len(drift) >= 3 and drift.median() == pytest.approx(want, rel=0.08)


@pytest.mark.slow
@pytest.mark.timing
def test_the_operating_probe_measures_how_fast_the_node_served():
    """The SUT serves in 10 ms; a profile of 8 (or 10) ms: two chunks at 50 q/s measure the drift 1.25 (or 1)."""
    s = ConfirmSettings(trial_s=0.3, min_queries=40, max_chunks=1)
    for profiled_ms, want in ((8.0, 1.25), (10.0, 1.0)):
        law = ServiceLaw(1, 1024, {10: np.array([profiled_ms])}, {10: np.array([profiled_ms])},
                         dispatch_ms=np.zeros(1))
        probe = probe_service_drift(sutmod.SleepSUT(sutmod.deterministic(D_S), 1), base(13), 1000, rate_qps=50.0,
                                    sla_ms=SLA_MS, percentile=0.95, model=TailModel(law, np.full(10, 10), 0.95),
                                    settings=s, chunks=2, seed=5)
        assert probe.queries == 80 and probe.rate_qps == 50.0 and probe.seconds > 0
        assert probe.drift == pytest.approx(want, rel=0.08)


@pytest.mark.parametrize("kw, match", [({"rate_qps": 0.0}, "positive number of queries/s"),
                                       ({"rate_qps": float("nan")}, "positive number of queries/s"),
                                       ({"chunks": 0}, "chunks must be an integer >= 1")])
def test_a_bad_operating_probe_is_refused(kw, match):
    law = ServiceLaw(1, 1024, {10: np.array([1.0])}, {10: np.array([1.0])}, dispatch_ms=np.zeros(1))
    args = {"rate_qps": 10.0, "sla_ms": SLA_MS, "percentile": 0.95, "model": TailModel(law, np.full(10, 10), 0.95),
            **kw}
    with pytest.raises(ConfigError, match=match):
        probe_service_drift(sutmod.NullSUT(), base(), 1000, **args)


class _ScriptedProbe:
    """Chunks whose service drift follows a script (``_replayed`` patched): the recheck logic without a node."""

    def __init__(self, monkeypatch, drifts):
        import pandas as pd

        from hera.loadgen import confirm

        self.calls = 0
        script = list(drifts)

        def chunk(_self, scale, seed):
            self.calls += 1
            return type("R", (), {"rows": pd.DataFrame({"tenant": ["default"] * 3})})()

        def replayed(model, chunks):
            return 0.0, script.pop(0), [40]

        monkeypatch.setattr(confirm._Confirmer, "_chunk", chunk)
        monkeypatch.setattr(confirm, "_replayed", replayed)

    def probe(self, **kw):
        law = ServiceLaw(1, 1024, {10: np.array([1.0])}, {10: np.array([1.0])}, dispatch_ms=np.zeros(1))
        return probe_service_drift(sutmod.NullSUT(), base(), 1000, rate_qps=10.0, sla_ms=SLA_MS, percentile=0.95,
                                   model=TailModel(law, np.full(10, 10), 0.95), **kw)


@pytest.mark.parametrize("drifts, band, want, chunks", [
    ([2.11, 0.85, 0.80], 1.15, 0.85, 3),   # a wild first chunk: two more, the median of three
    ([0.80, 0.78, 0.83], 1.15, 0.80, 3),   # a node slower than profiled: confirmed, the median
    ([1.10], 1.15, 1.10, 1),               # inside the band: one chunk is enough
    ([0.87], 1.15, 0.87, 1),
    ([2.11], 0.0, 2.11, 1),                # no recheck
    ([float("nan"), 1.0, 1.2], 1.15, 1.1, 3),  # nothing measured: rechecked, the median of what was
])
def test_an_operating_probe_off_the_profile_is_rechecked_with_the_median_of_three(monkeypatch, drifts, band, want,
                                                                                  chunks):
    sp = _ScriptedProbe(monkeypatch, drifts)
    probe = sp.probe(recheck_band=band)
    assert sp.calls == chunks and len(probe.chunk_drifts) == chunks and probe.queries == 40 * chunks
    assert probe.rechecked == (chunks > 1)
    assert probe.drift == pytest.approx(want)


@pytest.mark.parametrize("kw", [{"recheck_band": 0.5}, {"recheck_band": -1.0}, {"recheck_chunks": -1}])
def test_a_bad_recheck_is_refused(monkeypatch, kw):
    with pytest.raises(ConfigError, match="recheck"):
        _ScriptedProbe(monkeypatch, [1.0]).probe(**kw)


def test_the_recheck_band_and_the_chunks_after_of_the_config_are_checked():
    from hera.profile.scalability import operating_after, operating_recheck

    assert operating_recheck({"service": {"operating_recheck": 1.15}}) == 1.15
    assert operating_recheck({"service": {}}) == 0.0
    with pytest.raises(ConfigError, match="service.operating_recheck: 0.5"):
        operating_recheck({"service": {"operating_recheck": 0.5}})
    assert operating_after({"service": {"operating_after": 2}}) == 2 and operating_after({"service": {}}) == 0
    with pytest.raises(ConfigError, match=r"service.operating_after: -1 is not a number of chunks >= 0"):
        operating_after({"service": {"operating_after": -1}})


def test_later_repeats_are_centred_on_what_was_measured():
    assert bracket_centre(100.0, []) == 100.0
    assert bracket_centre(100.0, [0.0]) == 100.0  # a zero (to be re-tested) is no evidence of where to look
    assert bracket_centre(100.0, [70.0]) == 70.0
    assert bracket_centre(100.0, [70.0, 80.0]) == 75.0


@pytest.mark.timing
@pytest.mark.slow
def test_without_a_model_tails_are_used_raw():
    exact = md1_qps_star()
    s = ConfirmSettings(trial_s=0.5, min_queries=60, max_chunks=2, step=0.15)
    res = confirm_qps_star(sutmod.SleepSUT(sutmod.deterministic(D_S), 1), base(5), 1000, modelled_qps=exact,
                           sla_ms=SLA_MS, percentile=0.95, settings=s)
    assert not res.control_variate and res.value == pytest.approx(res.value_raw)
    assert 0.5 * exact < res.value < 1.5 * exact


def test_the_tail_is_numpys_quantile_and_infinite_where_it_leans_on_a_failed_query():
    """Finite latencies: numpy's linear quantile. Failed queries (+inf): inf as soon as the interpolation puts any
    weight on one (4 failed of 80 at p95: position 75.05 leans 5% on the first failed query), the plain quantile
    when they lie beyond both order statistics."""
    rng = np.random.default_rng(0)
    for n in (1, 2, 40, 80, 81, 200):
        x = rng.exponential(10.0, n)
        for p in (0.5, 0.95, 0.99):
            assert tail_quantile(x, p) == pytest.approx(float(np.quantile(x, p)), rel=1e-12)
    ok = rng.exponential(10.0, 76)
    assert tail_quantile(np.concatenate([ok, np.full(4, np.inf)]), 0.95) == math.inf
    one_failed = np.concatenate([ok, ok[:3], [np.inf]])  # 80 queries, the p95 uses order statistics 75 and 76
    assert tail_quantile(one_failed, 0.95) == pytest.approx(float(np.quantile(one_failed[:-1], 75.05 / 78)))
    assert tail_quantile(np.zeros(0), 0.95) == math.inf and tail_quantile(np.array([np.inf]), 0.5) == math.inf


@pytest.mark.slow
def test_a_runaway_trial_fails_with_its_tail_unmeasured():
    """Offered 3x what the node can serve, the backlog reaches half the trial's queries and issuing stops: the
    trial fails and its tail is not a number to interpolate to (the bracket bisects towards the pass below it)."""
    s = ConfirmSettings(trial_s=0.5, min_queries=40, max_chunks=2, step=0.15)
    c = _Confirmer(sutmod.SleepSUT(sutmod.deterministic(D_S), 1), {"default": base(13)}, {"default": 1000},
                   {"default": 1.0}, {"default": 10 * SLA_MS}, 0.95, s, None, {})
    tr = c.trial(0, 0, 3.0 / D_S, 17)
    row = c.rows[-1]
    assert row["aborted"] and not tr.passed and row["verdict"] == "fail"
    assert tr.tail == math.inf and tr.raw_tail == math.inf and math.isnan(row["latency_ms_pct"])
    assert row["n_ok"] < row["n_measured"]  # the queries never issued count as failed


def test_an_aborted_trial_whose_issued_queries_all_returned_is_still_unmeasured():
    """A run stopped by its backlog just before its last arrival: every issued query returned (the p95 of them is
    a finite 2x the SLA), yet the queue had no steady state, so the trial fails with no tail to interpolate to."""
    import pandas as pd

    from hera.loadgen.driver import RunResult

    n = 80
    lat = np.r_[np.full(70, 0.5 * SLA_MS), np.full(10, 2 * SLA_MS)]
    rows = pd.DataFrame({"tenant": "default", "warmup": False, "ok": True, "latency_ms": lat,
                         "issue_lateness_us": 10.0})
    run = RunResult(rows, {"aborted": True, "wall_s": 1.0},
                    {"default": {"duration_s": 1.0, "n_error": 0, "achieved_qps": 40.0}})
    c = _Confirmer(sutmod.NullSUT(), {"default": base()}, {"default": 1000}, {"default": 1.0},
                   {"default": SLA_MS}, 0.95, ConfirmSettings(), None, {})
    c._chunk = lambda scale, seed: run
    tr = c.trial(0, 0, 40.0, 1)
    assert tail_quantile(lat, 0.95) == pytest.approx(2 * SLA_MS) and len(lat) == n
    assert not tr.passed and tr.raw_tail == math.inf and c.rows[-1]["verdict"] == "fail"
    assert math.isnan(c.rows[-1]["latency_ms_pct"]) and c.rows[-1]["chunks"] == 1  # no second chunk after an abort


def test_a_service_time_bound_needs_a_halving_of_measured_flat_tails():
    """The descent gives up (value 0) only when its three lowest trials span at least a halving of the scale, every
    tail measured, none lower than the one above it by FLAT_TAIL_GAIN: two 15-20% steps on a noisy VM, or a runaway
    trial, say nothing about a service-time bound."""
    def trials(scales, tails):
        return [_Trial(s, t, t, False, None) for s, t in zip(scales, tails)]

    assert _Confirmer._flat(trials([1.0, 0.6, 0.4], [1.3, 1.3, 1.3]))
    assert not _Confirmer._flat(trials([1.6, 1.333, 1.111], [0.85, 1.89, 2.55]))  # CI 2026-12-03: noise
    assert not _Confirmer._flat(trials([1.0, 0.6, 0.4], [1.3, math.inf, 1.3]))  # a runaway trial
    assert not _Confirmer._flat(trials([1.0, 0.6, 0.4], [2.0, 1.6, 1.25]))  # the tail falls: keep descending
    assert not _Confirmer._flat(trials([1.0, 0.6], [1.3, 1.3]))


@pytest.mark.slow
def test_a_zero_repeat_is_retested_not_averaged_in():
    """Service 6 ms > SLA 5 ms: no rate passes (the descent stops once lower rates leave the tail flat); every
    repeat is re-tested once and the note says so."""
    s = ConfirmSettings(trial_s=0.1, min_queries=20, max_chunks=1, step=0.5, max_steps=3)
    res = confirm_qps_star(sutmod.SleepSUT(sutmod.deterministic(0.006), 1), base(7), 1000, modelled_qps=120.0,
                           sla_ms=5.0, percentile=0.95, settings=s)
    assert res.value == 0.0 and res.retested == 3
    assert res.note.count("re-tested (value 0)") == 3
    assert set(res.trials["attempt"]) == {0, 1}


def test_a_bad_modelled_rate_is_refused():
    with pytest.raises(ConfigError, match="positive modelled value"):
        confirm_qps_star(sutmod.NullSUT(), base(), 1000, modelled_qps=0.0, sla_ms=SLA_MS, percentile=0.95)


@pytest.mark.timing
@pytest.mark.slow
def test_a_joint_point_is_bounded_by_the_first_tenant_to_reach_its_sla():
    """Two independent M/D/1 tenants at rates t x (1, 0.5): t* is where tenant a (the busier) reaches its SLA."""
    exact = md1_qps_star()
    s = ConfirmSettings(trial_s=0.5, min_queries=60, max_chunks=2, step=0.15)
    sut = sutmod.SleepSUT(sutmod.deterministic(D_S), 2)  # 2 servers shared: light second tenant
    res = confirm_point(sut, {"a": base(11), "b": base(12)}, {"a": 1000, "b": 1000}, direction={"a": 1.0, "b": 0.25},
                        modelled=exact, sla_ms={"a": SLA_MS, "b": 10 * SLA_MS}, percentile=0.95, settings=s)
    assert set(res.trials["tenant"]) == {"a", "b"} and res.rates()["b"] == pytest.approx(0.25 * res.value)
    # the partner warms up for the busiest stream's warm-up time, not for its own 10 queries (4x as long)
    warm = res.trials.groupby("tenant")["warmup_queries"].unique()
    assert set(warm["a"]) == {10} and set(warm["b"]) <= {3}
    assert res.value > exact  # two servers: more than one M/D/1 tenant could take
    with pytest.raises(ConfigError, match="same tenants"):
        confirm_point(sut, {"a": base()}, {"a": 10}, direction={"a": 1.0, "b": 1.0}, modelled=1.0,
                      sla_ms={"a": 1.0, "b": 1.0}, percentile=0.95)


def test_intervals_equal_scipy_stats():
    """Clopper–Pearson from scipy.special.betaincinv and the median's order-statistic level from bdtr are the
    scipy.stats.beta / binom values they replace."""
    from scipy.stats import beta, binom

    for n, k in [(40, 0), (40, 3), (80, 1), (200, 17), (1200, 60), (7, 7)]:
        lo, hi = miss_interval(k, n, 0.95)
        assert lo == pytest.approx(0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1), rel=1e-12)
        assert hi == pytest.approx(1.0 if k == n else beta.ppf(0.975, k + 1, n - k), rel=1e-12)
    for n in (3, 5, 9, 20):
        _, _, level = median_ci(list(range(n)), 0.75)
        levels = [1 - 2 * binom.cdf(k - 1, n, 0.5) for k in range(1, n // 2 + 1)]
        assert level == pytest.approx(min([v for v in levels if v >= 0.75], default=levels[0]), rel=1e-12)


def test_a_partner_warms_up_for_the_busiest_streams_time():
    assert warmup_queries(10, 4.0, 10 / 60.0) == 1       # 4 q/s beside 60 q/s: 0.17 s of warm-up, one query
    assert warmup_queries(10, 30.0, 10 / 60.0) == 5
    assert warmup_queries(10, 60.0, 10 / 60.0) == 10     # the busiest stream keeps its own
    assert warmup_queries(10, 600.0, 10 / 60.0) == 10    # never more than the configured count
    assert warmup_queries(0, 30.0, 1.0) == 0             # none configured: none


def test_probe_rule_errors_score_one_chunk_the_median_of_three_and_the_recheck():
    from hera.bench.qps import probe_rule_errors

    steady = probe_rule_errors([1.0] * 12, 1.15)
    assert steady["starts"] == 4 and steady["rechecked"] == 0
    assert steady["abs_log_error_one_chunk"] == {"mean": 0.0, "max": 0.0}
    # one wild second at the start, the node otherwise as profiled: one chunk is off by ln 2 there, the median of
    # three and the recheck (which sees it outside the band) are not
    wild = probe_rule_errors([2.0] + [1.0] * 11, 1.15)
    assert wild["abs_log_error_one_chunk"]["max"] == pytest.approx(math.log(2), abs=1e-4)
    assert wild["abs_log_error_median_of_three"]["max"] == 0.0
    assert wild["abs_log_error_recheck"]["max"] == 0.0 and wild["rechecked"] == 1
    # without a band the recheck is one chunk
    assert probe_rule_errors([2.0] + [1.0] * 11, 0.0)["abs_log_error_recheck"] == wild["abs_log_error_one_chunk"]


@pytest.mark.parametrize("drifts", [[1.0] * 8, [1.0] * 11 + [float("nan")]])
def test_probe_rule_errors_refuse_too_few_or_unmeasured_chunks(drifts):
    from hera.bench.qps import probe_rule_errors
    from hera.errors import HeraError

    with pytest.raises(HeraError, match="need 9 finite chunk drifts"):
        probe_rule_errors(drifts, 1.15)


def test_the_probe_drift_bench_refuses_too_few_chunks():
    from hera.bench.qps import bench_probe_drift
    from hera.errors import HeraError

    with pytest.raises(HeraError, match="--chunks must be at least 9"):
        bench_probe_drift("ncf", "ci", 1, 5, 1.15, {})


def test_drift_rate_fit_reads_the_load_s_effect_within_blocks():
    """Drifts that fall as the load rises (slope −0.2 in log-log) on top of a machine whose speed moves from block
    to block: the fit recovers the slope, the ratio at the lowest against the highest fraction, and its interval."""
    from hera.bench.qps import drift_rate_fit

    g = np.random.default_rng(1)  # (the interval covers the true slope in 96% of seeds; this is one of them)
    fr = [0.4, 0.6, 0.8, 1.0] * 5
    blocks = [i // 4 for i in range(20)]
    drifts = np.exp(-0.2 * np.log(fr) + 0.15 * np.array(blocks) + g.normal(0, 0.01, 20))
    fit = drift_rate_fit(fr, blocks, list(drifts))
    assert fit["slope_log_drift_per_log_rate"] == pytest.approx(-0.2, abs=0.03)
    assert fit["slope_ci95"][0] < -0.2 < fit["slope_ci95"][1] and fit["degrees_of_freedom"] == 14
    assert fit["drift_ratio_lowest_to_highest"] == pytest.approx(0.4 ** -0.2, rel=0.03)
    lo, hi = fit["drift_ratio_ci95"]
    assert 1.0 < lo < fit["drift_ratio_lowest_to_highest"] < hi
    flat = drift_rate_fit(fr, blocks, list(np.exp(0.15 * np.array(blocks) + g.normal(0, 0.01, 20))))
    assert flat["drift_ratio_ci95"][0] < 1.0 < flat["drift_ratio_ci95"][1]  # no effect: 1 inside the interval


@pytest.mark.parametrize("fr, blocks, drifts, match", [
    ([0.5, 1.0], [0, 1], [1.0, 1.0], "no degree of freedom"),
    ([1.0, 1.0, 1.0], [0, 0, 0], [1.0, 1.1, 0.9], "no degree of freedom"),
    ([0.5, 1.0, 0.5, 1.0], [0, 0, 1, 1], [1.0, 0.0, 1.0, 1.0], "finite positive drift"),
])
def test_drift_rate_fit_refuses_what_it_cannot_fit(fr, blocks, drifts, match):
    from hera.bench.qps import drift_rate_fit
    from hera.errors import HeraError

    with pytest.raises(HeraError, match=match):
        drift_rate_fit(fr, blocks, drifts)


def test_the_drift_vs_rate_bench_refuses_bad_fractions_and_blocks(capsys):
    from hera.bench.qps import bench_drift_vs_rate, check_fractions
    from hera.cli import main
    from hera.errors import HeraError

    assert check_fractions([1.0, 0.4, 0.4]) == [0.4, 1.0]
    for bad in ([1.0], [0.0, 1.0], [0.5, 3.0]):
        with pytest.raises(HeraError, match="at least two distinct fractions"):
            check_fractions(bad)
    with pytest.raises(HeraError, match="--blocks must be an integer >= 2"):
        bench_drift_vs_rate("ncf", "ci", 1, [0.5, 1.0], 1, {"seed": 1})
    assert main(["bench", "drift-vs-rate", "--fractions", "half,1"]) != 0
    assert "--fractions must be comma-separated numbers" in capsys.readouterr().err
