"""QPS* search: bracketing/bisection/repeat logic on a fake driver, then a real search on a SleepSUT queue."""

from __future__ import annotations

import math

import pytest

from hera.errors import ConfigError
from hera.loadgen import search
from hera.loadgen import sut as q
from hera.loadgen.driver import RunResult
from hera.loadgen.settings import LoadgenSettings

FIXED1 = {"kind": "fixed", "items": 1}  # one item per query

BASE = LoadgenSettings(target_qps=50.0, n_queries=100, query_sizes=FIXED1, max_items=1, percentile=0.95,
                       latency_bound_ms=30.0)


class FakeRun:
    """Replaces driver.run: a trial passes below ``threshold`` qps; in [undecided_lo, threshold) it is
    undecided until it has ``undecided_needs`` queries."""

    def __init__(self, threshold, undecided_lo=math.inf, undecided_needs=10**9):
        self.threshold, self.undecided_lo, self.undecided_needs = threshold, undecided_lo, undecided_needs
        self.calls = []

    def __call__(self, sut, s, library_items, *, tenant="default", **kw):
        self.calls.append((s.target_qps, s.n_queries, s.arrival_seed, kw.get("abort_budget_queries")))
        if s.target_qps > self.threshold:
            verdict = "fail"
        elif s.target_qps >= self.undecided_lo and s.n_queries < self.undecided_needs:
            verdict = "undecided"
        else:
            verdict = "pass"
        tag = "p95"
        sm = {"n_measured": s.n_queries, "n_ok": s.n_queries, "n_failed": 0, "n_not_issued": 0,
              "duration_s": s.n_queries / s.target_qps, "achieved_qps": s.target_qps, "latency_ms_p50": 1.0,
              f"latency_ms_{tag}": 2.0, f"latency_ms_{tag}_lo": 1.5, f"latency_ms_{tag}_hi": 2.5,
              "n_over_bound": 0, "early_stopping_needed": 90, "early_stopping_verdict": verdict,
              "issue_lateness_us_p99": 10.0}
        overall = {"aborted": False, "abort_reason": None, "wall_s": 0.1}
        return RunResult(None, overall, {tenant: sm}, {tenant: s})


def test_bracket_bisect_and_repeats(monkeypatch):
    fake = FakeRun(123.4)
    monkeypatch.setattr(search.driver, "run", fake)
    r = search.find_qps_star(q.NullSUT(), BASE, 1, start_qps=10.0, rel_tol=0.02, repeats=3, min_queries=200)
    assert r.repeats == 3 and len(r.per_repeat) == 3
    for x in r.per_repeat:
        assert x <= 123.4 and (123.4 - x) / x <= 0.021
    assert r.qps_star_lo <= r.qps_star <= r.qps_star_hi
    assert r.qps_star_ci95_lo <= r.qps_star <= r.qps_star_ci95_hi
    t = r.trials
    assert set(t["repeat"]) == {0, 1, 2} and set(t["phase"]) == {"bracket", "bisect"}
    assert list(t.loc[t["repeat"] == 0, "rate_qps"].iloc[:5]) == [10.0, 20.0, 40.0, 80.0, 160.0]  # doubling
    assert set(t["arrival_seed"]) == {0, 1000, 2000}  # a different arrival seed per repeat
    assert (t["n_queries"] == 200).all() and r.n_trials == len(t)
    assert {"rate_qps", "n_queries", "latency_ms_pct", "passed", "verdict", "sla_ms"} <= set(t.columns)
    # later repeats re-bracket around the first answer instead of doubling from the start rate
    assert len(t[t["repeat"] == 1]) < len(t[t["repeat"] == 0])
    assert "600 s" in r.note and r.to_row()["per_repeat"].count(";") == 2
    assert all(c[3] == 4 * 200 for c in fake.calls)  # abort budget = the query cap


def test_halving_when_start_fails_and_no_rate_passes(monkeypatch):
    monkeypatch.setattr(search.driver, "run", FakeRun(30.0))
    r = search.find_qps_star(q.NullSUT(), BASE, 1, start_qps=100.0, rel_tol=0.05, repeats=1)
    assert 28.0 <= r.qps_star <= 30.0
    assert list(r.trials["rate_qps"].iloc[:3]) == [100.0, 50.0, 25.0]
    monkeypatch.setattr(search.driver, "run", FakeRun(1.0))
    r = search.find_qps_star(q.NullSUT(), BASE, 1, start_qps=100.0, min_qps=10.0, repeats=1)
    assert r.qps_star == 0.0 and "no rate down to 10 qps met the SLA" in r.note


class TailRun(FakeRun):
    """FakeRun whose tail latency is ``tail(rate)`` and whose verdict is tail <= SLA (30 ms)."""

    def __init__(self, tail):
        super().__init__(threshold=math.inf)
        self.tail = tail

    def __call__(self, sut, s, library_items, *, tenant="default", **kw):
        res = super().__call__(sut, s, library_items, tenant=tenant, **kw)
        sm = res.tenants[tenant]
        sm["latency_ms_p95"] = self.tail(s.target_qps)
        sm["early_stopping_verdict"] = "pass" if sm["latency_ms_p95"] <= 30.0 else "fail"
        return res


def test_descent_stops_when_the_tail_no_longer_falls_with_the_rate(monkeypatch):
    # service-time bound: the tail is 40 ms at any rate below 50 qps (> SLA 30 ms): stop after two flat halvings
    fake = TailRun(lambda r: 40.0 + max(0.0, r - 50.0))
    monkeypatch.setattr(search.driver, "run", fake)
    r = search.find_qps_star(q.NullSUT(), BASE, 1, start_qps=200.0, repeats=1)
    assert r.qps_star == 0.0 and list(r.trials["rate_qps"]) == [200.0, 100.0, 50.0, 25.0, 12.5]
    assert "SLA not met at low load" in r.note and "12.5 qps" in r.note
    # one flat halving (a spike) is not enough: the descent goes on and finds the passing rate
    spiky = {200.0: 190.0, 100.0: 90.0, 50.0: 95.0, 25.0: 28.0}
    monkeypatch.setattr(search.driver, "run", TailRun(lambda r: spiky.get(r, 28.0 if r < 50 else 95.0)))
    r = search.find_qps_star(q.NullSUT(), BASE, 1, start_qps=200.0, rel_tol=0.05, repeats=1)
    assert 25.0 <= r.qps_star < 50.0 and "SLA not met" not in r.note
    # a tail that keeps falling with the rate is searched down to where it passes
    monkeypatch.setattr(search.driver, "run", TailRun(lambda r: 25.0 + r / 4.0))
    r = search.find_qps_star(q.NullSUT(), BASE, 1, start_qps=200.0, rel_tol=0.05, repeats=1)
    assert 19.0 <= r.qps_star <= 20.0


def test_undecided_runs_more_queries_up_to_cap(monkeypatch):
    fake = FakeRun(100.0, undecided_lo=60.0, undecided_needs=400)
    monkeypatch.setattr(search.driver, "run", fake)
    r = search.find_qps_star(q.NullSUT(), BASE, 1, start_qps=64.0, rel_tol=0.05, repeats=1, min_queries=100,
                             max_queries=400)
    t = r.trials
    first = t[t["rate_qps"] == 64.0]
    assert list(first["n_queries"]) == [100, 200, 400]
    assert list(first["verdict"]) == ["undecided"] * 2 + ["pass"]
    assert 95.0 <= r.qps_star <= 100.0
    # a cap too low to decide: undecided counts as a fail
    monkeypatch.setattr(search.driver, "run", FakeRun(100.0, undecided_lo=60.0, undecided_needs=10**6))
    r = search.find_qps_star(q.NullSUT(), BASE, 1, start_qps=64.0, rel_tol=0.05, repeats=1, min_queries=100,
                             max_queries=200)
    assert 57.0 <= r.qps_star < 60.0


def test_max_qps_caps_the_search(monkeypatch):
    monkeypatch.setattr(search.driver, "run", FakeRun(1e9))
    r = search.find_qps_star(q.NullSUT(), BASE, 1, start_qps=10.0, max_qps=70.0, repeats=1)
    assert r.qps_star == 70.0 and r.trials["rate_qps"].max() == 70.0


def test_bad_search_settings():
    with pytest.raises(ConfigError, match="sla_ms"):
        search.find_qps_star(q.NullSUT(), BASE.replace(latency_bound_ms=None), 1)
    with pytest.raises(ConfigError, match="rel_tol"):
        search.find_qps_star(q.NullSUT(), BASE, 1, rel_tol=0)
    with pytest.raises(ConfigError, match="neither a SUT"):
        search.find_qps_star(42, BASE, 1)


@pytest.mark.timing
@pytest.mark.slow
def test_search_on_md2_queue_finds_the_analytical_rate():
    """SleepSUT: 2 servers, deterministic 10 ms service, SLA p95 <= 30 ms.

    Reference: exact Kiefer-Wolfowitz recursion over 2e5 Poisson arrivals (sut.mdc_sojourn_quantile_sim_s):
    p95 = 30 ms at λ95 ≈ 140 qps; p99 = 30 ms at λ99 ≈ 115 qps. A trial passes only when the early-stopping
    rule proves the p95 claim at 99% confidence with at most 600 queries, which needs a miss rate clearly
    below 5%, so QPS* should land between about λ99 and λ95. Tolerance: [0.6·λ99, 1.1·λ95] — wide because
    trials are short (150-600 queries), queueing latencies are correlated, rel_tol is 10% and this shared
    2-core machine adds issue lateness of up to tens of ms at the 99th percentile.
    """
    d, c, bound = 0.010, 2, 0.030
    def lam_at(p):
        def quantile(rate):
            return q.mdc_sojourn_quantile_sim_s(p, rate, d, c, n=200_000)

        return q.qps_at_latency(quantile, bound, c / d, 1e-3)

    lam95, lam99 = lam_at(0.95), lam_at(0.99)
    assert 130 < lam95 < 150 and 105 < lam99 < 125
    r = search.find_qps_star(lambda: q.SleepSUT(q.deterministic(d), n_servers=c), BASE, 1, sla_ms=bound * 1e3,
                             start_qps=60.0, rel_tol=0.1, repeats=1, min_queries=150, max_queries=600)
    print(f"QPS* = {r.qps_star:.1f} qps (λ99 {lam99:.1f}, λ95 {lam95:.1f}); {r.n_trials} trials")
    assert 0.6 * lam99 <= r.qps_star <= 1.1 * lam95
    assert r.trials["passed"].any() and not r.trials["passed"].all()
