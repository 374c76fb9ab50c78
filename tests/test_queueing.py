"""The node's queueing model (hera.queueing): against closed forms and against what the node does."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from hera.errors import ConfigError
from hera.queueing import closed_forms as cf
from hera.queueing.des import SubBatchPlan, simulate
from hera.queueing.qps import (
    ModelSettings,
    TailModel,
    TrialShape,
    latency_quantiles,
    modelled_qps_star,
    unloaded_quantiles,
)
from hera.queueing.service import ServiceLaw


def law_const(ms: float, workers: int = 1, batch: int = 1024, sat_ms: float | None = None, **kw) -> ServiceLaw:
    return ServiceLaw(workers, batch, {100: np.array([ms])}, {100: np.array([sat_ms or ms])}, **kw)


def test_sub_batch_plan_splits_queries_in_order():
    plan = SubBatchPlan.of(np.array([100, 64, 10]), 64)
    assert plan.query.tolist() == [0, 0, 1, 2]
    assert plan.size.tolist() == [64, 36, 64, 10]
    assert plan.first.tolist() == [True, False, True, True]
    assert plan.last.tolist() == [False, True, True, True]
    with pytest.raises(ConfigError, match="positive item counts"):
        SubBatchPlan.of(np.array([3, 0]), 64)


def test_md1_sojourn_matches_the_closed_form():
    """One worker, one sub-batch per query, deterministic 10 ms service: the M/D/1 queue."""
    law = law_const(10.0, dispatch_ms=np.zeros(1))
    items = np.full(20000, 100)
    q = latency_quantiles(law, np.array([40.0, 70.0]), items, 0.95,
                          ModelSettings(n_queries=20000, warmup_queries=2000, replicates=4))
    for rate, got in zip((40.0, 70.0), q.mean(axis=1)):
        assert got == pytest.approx(cf.md1_sojourn_quantile_s(0.95, rate, 0.01) * 1e3, rel=0.05)
    arr = np.cumsum(np.random.default_rng(3).exponential(1 / 50.0, 40000))
    lat = simulate(law, arr, np.full(arr.size, 100))
    assert lat[4000:].mean() == pytest.approx(cf.md1_mean_sojourn_s(50.0, 0.01) * 1e3, rel=0.03)


def test_mm2_sojourn_quantile_matches_the_closed_form():
    ex = np.random.default_rng(1).exponential(10.0, 200_000)
    law = ServiceLaw(2, 1024, {100: ex}, {100: ex}, dispatch_ms=np.zeros(1))
    q = latency_quantiles(law, np.array([100.0]), np.full(20000, 100), 0.95,
                          ModelSettings(n_queries=20000, warmup_queries=2000, replicates=6))
    assert q.mean() == pytest.approx(cf.mmc_sojourn_quantile_s(0.95, 100.0, 0.01, 2) * 1e3, rel=0.07)


def test_sub_batches_run_in_parallel_on_idle_workers():
    """A 256-item query (4 sub-batches of 64) alone on 2 workers takes 2 service times; on 1 worker, 4."""
    for w, want in ((1, 4 * 5.0), (2, 2 * 5.0), (4, 5.0)):
        law = ServiceLaw(w, 64, {64: np.array([5.0])}, {64: np.array([5.0])}, dispatch_ms=np.zeros(1))
        assert simulate(law, np.array([0.0]), np.array([256]))[0] == pytest.approx(want)


def test_dispatch_delay_and_gap_are_added():
    law = ServiceLaw(1, 64, {64: np.array([5.0])}, {64: np.array([5.0])}, dispatch_ms=np.array([0.5]), gap_ms=1.0)
    # alone: dispatch + 2 sub-batches + the gap between them
    assert simulate(law, np.array([0.0]), np.array([128]))[0] == pytest.approx(0.5 + 5 + 1 + 5)


def test_spans_run_from_the_first_sub_batch_start_to_the_last_end():
    law = ServiceLaw(1, 64, {64: np.array([5.0])}, {64: np.array([5.0])}, dispatch_ms=np.array([0.5]), gap_ms=1.0)
    lat, span = simulate(law, np.array([0.0, 0.001]), np.array([128, 64]), spans=True)
    # the first query: 2 sub-batches and the gap, dispatch excluded; the second waited for it, excluded too
    assert span[0] == pytest.approx(5 + 1 + 5) and lat[0] == pytest.approx(0.5 + 11)
    assert span[1] == pytest.approx(5) and lat[1] == pytest.approx(0.5 + 11 + 1 + 5 - 1)
    two = ServiceLaw(2, 64, {64: np.array([5.0])}, {64: np.array([5.0])}, dispatch_ms=np.zeros(1))
    lat2, span2 = simulate(two, np.zeros((1, 3)), np.array([256]), spans=True)  # 4 sub-batches on 2 workers
    assert span2.shape == (1, 3) and np.allclose(span2, 10.0) and np.allclose(lat2, 10.0)
    assert np.array_equal(simulate(law, np.array([0.0, 0.001]), np.array([128, 64])), lat)  # same latencies


def test_loaded_queries_draw_saturated_service_times():
    law = ServiceLaw(1, 1024, {100: np.array([1.0])}, {100: np.array([3.0])}, dispatch_ms=np.zeros(1))
    # two queries at once: the second arrives while the node is busy -> saturated regime
    lat = simulate(law, np.array([0.0, 0.0001, 1.0]), np.array([100, 100, 100]))
    assert lat[0] == pytest.approx(1.0) and lat[1] == pytest.approx(1.0 - 0.1 + 3.0) and lat[2] == pytest.approx(1.0)


@pytest.mark.parametrize("workers", [1, 2, 3])
@pytest.mark.parametrize("spans", [False, True])
def test_compiled_event_loop_is_the_interpreted_one_bit_for_bit(workers, spans):
    """The compiled loop and the same loop run by the interpreter, on bootstrapped pools with several sizes,
    both regimes, dispatch delays and lanes of different replicates: identical latencies (and spans)."""
    from hera.queueing.des import Pools

    g = np.random.default_rng(workers)
    sizes = [1, 5, 17, 64]
    law = ServiceLaw(workers, 64, {s: g.gamma(3, 0.2 + 0.05 * s, 40) for s in sizes},
                     {s: g.gamma(3, 0.3 + 0.06 * s, 40) for s in sizes}, dispatch_ms=g.gamma(2, 0.05, 30),
                     gap_ms=0.03, idle_ms=np.array([0.1, 3.0, 30.0]), idle_extra_ms=np.array([0.0, 0.2, 0.9]))
    items = g.integers(1, 300, 120)
    arrivals = np.cumsum(g.exponential(1 / 40.0, (120, 6)), axis=0)
    rep = np.arange(6) % 3
    pools = Pools(law, SubBatchPlan.of(items, 64).size, 3, np.random.default_rng(1), bootstrap=True)
    run = [simulate(law, arrivals, items, replicate=rep, pools=pools, rng=np.random.default_rng(2), spans=spans,
                    compiled=c) for c in (True, False)]
    got, want = (run[0], run[1]) if spans else ((run[0],), (run[1],))
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    assert np.isfinite(got[0]).all() and (got[0] > 0).all()


def test_a_worker_that_idled_runs_its_next_sub_batch_slower_by_the_idle_penalty():
    """The penalty is read at the time since the end of the worker's previous sub-batch: a query on a worker idle
    for 20 ms pays the curve's 1.5 ms on its first sub-batch only; one that waited for a busy worker pays none;
    past the curve's last point its last value."""
    law = ServiceLaw(1, 64, {64: np.array([5.0])}, {64: np.array([5.0])}, dispatch_ms=np.zeros(1),
                     idle_ms=np.array([0.0, 10.0, 30.0]), idle_extra_ms=np.array([0.0, 1.0, 2.0]))
    lat = simulate(law, np.array([0.020, 0.021, 1.0]), np.array([128, 64, 64]))
    assert lat[0] == pytest.approx(1.5 + 5 + 5)               # idle 20 ms since t = 0: +1.5 on the first
    assert lat[1] == pytest.approx(11.5 - 1.0 + 5)            # queued behind it: back-to-back, no penalty
    assert lat[2] == pytest.approx(2.0 + 5)                   # idle for ~0.96 s: the last value
    assert law.idle_extra(np.array([5.0, 20.0, 99.0])).tolist() == pytest.approx([0.5, 1.5, 2.0])
    bare = law.without_idle_penalty()
    assert simulate(bare, np.array([0.020]), np.array([128]))[0] == pytest.approx(10.0)
    assert bare.idle_extra(20.0) == 0.0
    assert law.scaled(2.0).idle_extra(20.0) == pytest.approx(3.0)   # a slower machine idles dearer too
    assert law.with_workers(2).idle_extra(20.0) == pytest.approx(1.5)


def test_service_law_falls_back_to_the_nearest_size_scaled_linearly():
    law = ServiceLaw(1, 64, {16: np.array([2.0]), 64: np.array([5.0])}, {64: np.array([6.0])})
    assert law.mean_ms(32, "light") == pytest.approx(3.0)  # line through (16, 2) and (64, 5)
    assert law.mean_ms(32, "saturated") == pytest.approx(6.0)  # one size: no slope
    with pytest.raises(ConfigError, match="unknown service regime"):
        law.pool(64, "busy")


@pytest.mark.parametrize("kw, match", [
    (dict(workers=0), "workers must be >= 1"),
    (dict(light={}), "no light samples"),
    (dict(saturated={64: [np.nan]}), "no finite samples"),
    (dict(light={64: [-1.0]}), "negative service time"),
    (dict(gap_ms=-1.0), "gap_ms"),
    (dict(idle_ms=[0.0, 1.0], idle_extra_ms=[0.0]), "idle penalty"),
    (dict(idle_ms=[0.0, 3.0, 1.0], idle_extra_ms=[0.0, 1.0, 2.0]), "idle penalty"),
    (dict(idle_ms=[0.0, 3.0], idle_extra_ms=[0.0, -1.0]), "idle penalty"),
])
def test_service_law_rejects_bad_samples(kw, match):
    args = dict(workers=1, batch_size=64, light={64: [1.0]}, saturated={64: [1.0]})
    args.update(kw)
    with pytest.raises(ConfigError, match=match):
        ServiceLaw(**args)


def test_modelled_qps_star_matches_the_md1_rate_with_an_interval():
    law = law_const(10.0, dispatch_ms=np.zeros(1))
    st = ModelSettings(n_queries=6000, warmup_queries=600, replicates=16, seed=2)
    m = modelled_qps_star(law, np.full(6000, 100), 50.0, 0.95, st)
    exact = cf.qps_at_latency(lambda r: cf.md1_sojourn_quantile_s(0.95, r, 0.01), 0.05, 100.0, 1e-4)
    assert m.qps_star == pytest.approx(exact, rel=0.06)
    assert m.qps_star_lo <= m.qps_star <= m.qps_star_hi
    assert m.capacity_qps == pytest.approx(100.0)
    assert np.all(np.diff(m.rates_qps) >= 0) and m.quantile_ms.shape == (m.rates_qps.size, 16)
    assert m.latency_at(m.qps_star) == pytest.approx(50.0, rel=0.15)


def test_unreachable_sla_gives_zero_and_says_so():
    m = modelled_qps_star(law_const(10.0), np.full(1000, 100), 5.0, 0.95,
                          ModelSettings(n_queries=1000, warmup_queries=100, replicates=4))
    assert m.qps_star == 0.0 and "SLA not met" in m.note


def test_unloaded_quantiles_are_service_times_alone():
    law = ServiceLaw(1, 64, {64: np.array([2.0]), 36: np.array([1.0])}, {64: np.array([9.0])},
                     dispatch_ms=np.zeros(1))
    q = unloaded_quantiles(law, np.array([100] * 50 + [64] * 50), (0.25, 0.99))
    assert q[0.25] == pytest.approx(2.0, rel=1e-4) and q[0.99] == pytest.approx(3.0, rel=1e-4)


def test_trial_tails_match_steady_ones_at_light_load_and_are_optimistic_near_saturation():
    """Short trials from an idle node (the confirmation's) see the steady-state tail where the queue is short
    and a smaller one near saturation, where the queue has not built up within the trial."""
    law = law_const(10.0, dispatch_ms=np.zeros(1))
    items = np.full(6000, 100)
    steady = ModelSettings(n_queries=6000, warmup_queries=600, replicates=8, seed=3)
    trial = ModelSettings(n_queries=6000, warmup_queries=600, replicates=8, seed=3,
                          trial=TrialShape(min_queries=40, trial_s=1.0, warmup_queries=13))
    rates = np.array([10.0, 95.0])
    q_s = latency_quantiles(law, rates, items, 0.95, steady)
    q_t = latency_quantiles(law, rates, items, 0.95, trial)
    assert q_t.shape == q_s.shape == (2, 8)
    exact_light = cf.md1_sojourn_quantile_s(0.95, 10.0, 0.01) * 1e3
    assert np.median(q_t[0]) == pytest.approx(exact_light, rel=0.25)
    # steady state at rho 0.95 is far out; 1-s trials are not
    assert np.median(q_t[1]) < 0.8 * np.median(q_s[1])
    m_t = modelled_qps_star(law, items, 50.0, 0.95, trial)
    m_s = modelled_qps_star(law, items, 50.0, 0.95, steady)
    assert m_t.qps_star > m_s.qps_star


def test_draws_do_not_depend_on_how_many_queries_a_call_simulates():
    """FCFS: a query's latency depends on the ones before it only. Two calls with the same seed, one simulating
    a prefix of the other's arrivals, give that prefix the same latencies (the same dispatch and service draws),
    so a model's grid and its refinement share their random numbers."""
    g = np.random.default_rng(5)
    law = ServiceLaw(2, 64, {s: g.gamma(3, 0.3 + 0.05 * s, 40) for s in (10, 64)},
                     {s: g.gamma(3, 0.4 + 0.06 * s, 40) for s in (10, 64)}, dispatch_ms=g.gamma(2, 0.05, 30))
    items = g.choice([10, 100, 64], 300)
    arrivals = np.cumsum(g.exponential(1 / 150.0, (300, 4)), axis=0)
    full = simulate(law, arrivals, items, rng=np.random.default_rng(9))
    prefix = simulate(law, arrivals[:120], items[:120], rng=np.random.default_rng(9))
    assert np.array_equal(prefix, full[:120])


def test_trial_shaped_curves_do_not_fall_with_the_rate():
    """Trial lengths change with the rate (other query windows), which makes a replicate's trial-shaped tail
    wobble; the model's curves are non-decreasing in the rate, and the first SLA crossing is the raw curve's."""
    from hera.queueing.qps import non_decreasing

    g = np.random.default_rng(4)
    law = ServiceLaw(2, 64, {s: g.gamma(2, 1.0 + 0.1 * s, 60) for s in (10, 64)},
                     {s: g.gamma(2, 1.5 + 0.12 * s, 60) for s in (10, 64)}, dispatch_ms=g.gamma(2, 0.05, 30))
    items = g.choice([10, 100, 64], 3000)
    st = ModelSettings(n_queries=3000, warmup_queries=300, replicates=12, seed=1,
                       trial=TrialShape(min_queries=40, trial_s=0.5, warmup_queries=13))
    m = modelled_qps_star(law, items, 40.0, 0.95, st)
    assert (np.diff(m.quantile_ms, axis=0) >= 0).all() and m.qps_star > 0
    raw = np.array([[1.0, 2.0], [3.0, 1.5], [2.5, 4.0], [5.0, 3.0]])
    mono = non_decreasing(raw)
    assert mono.tolist() == [[1.0, 2.0], [3.0, 2.0], [3.0, 4.0], [5.0, 4.0]]
    # the first rate over a level is the same on both
    assert ((raw > 2.8).argmax(axis=0) == (mono > 2.8).argmax(axis=0)).all()


def test_trial_shape_lengths_and_bad_values():
    shape = TrialShape(min_queries=40, trial_s=1.0, warmup_queries=13, min_trials=8, measured_per_rate=1200)
    assert shape.measured(10.0) == 40 and shape.measured(400.0) == 400
    assert shape.trials(10.0) == 30 and shape.trials(400.0) == 8
    with pytest.raises(ConfigError, match="trial shape"):
        TrialShape(min_queries=0, trial_s=1.0, warmup_queries=13)


@pytest.mark.parametrize("kw, needle", [(dict(n_queries=50), "n_queries >= 100"),
                                        (dict(replicates=1), "replicates >= 2"),
                                        (dict(confidence=1.0), "confidence must be in [0.5, 1), got 1.0"),
                                        (dict(grid_lo_frac=0.0), "0 < grid_lo_frac")])
def test_model_settings_reject_out_of_range(kw, needle):
    with pytest.raises(ConfigError, match=re.escape(needle)):
        ModelSettings(**kw)


def test_tail_model_control_variate_cancels_the_arrival_realisation():
    """The same arrivals through the model show the measurement's excursion; its expectation does not."""
    law = law_const(10.0, dispatch_ms=np.zeros(1))
    tm = TailModel(law, np.full(10, 100), 0.95, seed=1)
    rng = np.random.default_rng(9)
    exp = tm.expected_log_tail(60.0, [300], 10)
    calm = np.cumsum(rng.exponential(1 / 60.0, 310))
    lat = simulate(law, calm, np.full(310, 100))
    measured = math.log(np.quantile(lat[10:], 0.95))
    realised = tm.realised_log_tail([(calm, np.full(310, 100), np.arange(310) >= 10)])
    assert realised == pytest.approx(measured, abs=1e-9)  # deterministic service: the model is exact
    assert exp == pytest.approx(math.log(cf.md1_sojourn_quantile_s(0.95, 60.0, 0.01) * 1e3), abs=0.3)
