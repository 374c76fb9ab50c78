"""Latency statistics: MLPerf early stopping, order-statistic percentile CIs, queueing reference formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hera.errors import ConfigError
from hera.loadgen import stats
from hera.loadgen import sut as q


# ----------------------------------------------------------------------------------- early stopping
def test_mlperf_published_minimum_query_counts():
    # LoadGen's "Need to process at least N queries for early stopping" (h_min(t=1) + 1):
    # 64 for the p90 (SingleStream) claim, 662 for the p99 (MultiStream) claim.
    assert stats.early_stopping_min_passing(1, 0.90) + 1 == 64
    assert stats.early_stopping_min_passing(1, 0.99) + 1 == 662


def test_zero_misses_matches_closed_form():
    # with t = 0 the rule is p^h < 1 - c  →  h = ceil(log(0.01) / log(p)) (strict, as LoadGen)
    for p in (0.5, 0.9, 0.95, 0.99):
        h = stats.early_stopping_min_passing(0, p)
        assert p ** h < 0.01 <= p ** (h - 1)
    assert stats.early_stopping_min_queries(0, 0.95) == 90


def test_hand_computed_case():
    # p = 0.9, t = 1: need P[Bin(h+1, 0.1) <= 1] = 0.9^(h+1) + (h+1)·0.1·0.9^h < 0.01
    def odds(h):
        n = h + 1
        return 0.9 ** n + n * 0.1 * 0.9 ** (n - 1)

    h = stats.early_stopping_min_passing(1, 0.9)
    assert odds(h) < 0.01 <= odds(h - 1)


def test_needed_queries_monotone():
    for p in (0.9, 0.95, 0.99):
        needed = [stats.early_stopping_min_queries(t, p) for t in range(0, 60, 3)]
        assert all(b > a for a, b in zip(needed, needed[1:]))
        # the miss rate the rule tolerates stays below 1 - p and approaches it
        rates = [t / stats.early_stopping_min_queries(t, p) for t in (1, 10, 100, 1000)]
        assert all(r < 1 - p for r in rates) and rates == sorted(rates)
    for t in (0, 5, 50):
        assert stats.early_stopping_min_queries(t, 0.9) < stats.early_stopping_min_queries(t, 0.95) \
            < stats.early_stopping_min_queries(t, 0.99)
    # more confidence, more queries
    assert stats.early_stopping_min_queries(5, 0.95, 0.9) < stats.early_stopping_min_queries(5, 0.95, 0.99)


def test_max_overlatency_inverts_min_queries():
    for n in (50, 90, 200, 1000, 5000):
        t = stats.early_stopping_max_overlatency(n, 0.95)
        if t < 0:
            assert n < stats.early_stopping_min_queries(0, 0.95)
            continue
        assert stats.early_stopping_min_queries(t, 0.95) <= n < stats.early_stopping_min_queries(t + 1, 0.95)


def test_verdicts():
    v = stats.early_stopping(1000, 10, 0.95)
    assert v.verdict == "pass" and v.passed and v.more_needed == 0
    v = stats.early_stopping(1000, 200, 0.95)  # 20% misses: the p95 claim is clearly false
    assert v.verdict == "fail" and not v.passed
    v = stats.early_stopping(100, 4, 0.95)  # 4% misses but too few queries to claim 5%
    assert v.verdict == "undecided" and v.more_needed == v.needed - 100 > 0
    v = stats.early_stopping(50, 0, 0.95)
    assert v.verdict == "undecided" and v.needed == 90
    with pytest.raises(ConfigError, match="n_over"):
        stats.early_stopping(10, 11, 0.95)
    with pytest.raises(ConfigError, match="percentile"):
        stats.early_stopping_min_queries(0, 1.0)


def test_early_stopping_percentile_estimate_is_conservative():
    rng = np.random.default_rng(0)
    x = rng.exponential(1.0, 2000)
    est = stats.early_stopping_percentile(x, 0.9)
    assert np.quantile(x, 0.9) <= est <= x.max()
    assert math.isnan(stats.early_stopping_percentile(x[:50], 0.9))  # below 64 queries: no claim


# ----------------------------------------------------------------------------------- percentile CI
def test_percentile_ci_brackets_and_covers():
    rng = np.random.default_rng(1)
    true_p95 = -math.log(0.05)  # Exp(1)
    covered = 0
    reps = 400
    for _ in range(reps):
        e = stats.percentile_ci(rng.exponential(1.0, 300), 0.95, 0.95)
        assert e.lo <= e.value <= e.hi
        covered += e.lo <= true_p95 <= e.hi
    assert covered / reps >= 0.92  # nominal 95% (order-statistic CIs are conservative)


def test_percentile_ci_small_n_is_unbounded():
    lo_rank, hi_rank = stats.order_statistic_ci(10, 0.95, 0.95)
    assert hi_rank is None  # 10 samples cannot bound the p95 from above
    e = stats.percentile_ci(np.arange(10.0), 0.95)
    assert e.hi == math.inf
    assert math.isnan(stats.percentile_ci([], 0.5).value)


# ------------------------------------------------------------------------------ queueing references
def test_md1_formulas_against_recursion():
    d = 0.01
    for lam in (30.0, 70.0):
        exact = q.md1_sojourn_quantile_s(0.95, lam, d)
        sim = q.mdc_sojourn_quantile_sim_s(0.95, lam, d, 1, n=200_000)
        assert exact == pytest.approx(sim, rel=0.03)
    assert q.md1_mean_sojourn_s(50, d) == pytest.approx(d + 0.5 * d / (2 * 0.5))
    assert q.md1_wait_cdf(0.0, 50, d) == pytest.approx(0.5)  # P(W = 0) = 1 - ρ
    assert math.isinf(q.md1_mean_sojourn_s(100, d))
    with pytest.raises(ConfigError, match="n_servers"):
        q.SleepSUT(q.deterministic(d), n_servers=0)


def test_mmc_formulas():
    assert q.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # M/M/1 sojourn is Exp(μ − λ)
    assert q.mmc_sojourn_quantile_s(0.95, 50, 0.01, 1) == pytest.approx(-math.log(0.05) / 50, rel=1e-6)
    assert q.mmc_mean_sojourn_s(50, 0.01, 1) == pytest.approx(1 / 50)
    # more servers at the same per-server load: shorter waits
    assert q.mmc_sojourn_quantile_s(0.95, 100, 0.01, 2) < q.mmc_sojourn_quantile_s(0.95, 50, 0.01, 1)
    lam = q.qps_at_latency(lambda r: q.mmc_sojourn_quantile_s(0.95, r, 0.01, 1), 0.1, 100.0)
    assert q.mmc_sojourn_quantile_s(0.95, lam, 0.01, 1) == pytest.approx(0.1, rel=1e-4)


def test_binomial_helpers_equal_scipy_stats():
    """The scipy.special-only binomial CDF, SF and quantile (scipy.stats costs a second of import per command)
    agree with scipy.stats.binom, including k outside [0, n] and every rank the order-statistic CI uses."""
    from scipy.stats import binom

    for n in (1, 7, 40, 200, 1201):
        for p in (0.01, 0.5, 0.95, 0.99):
            for k in (-3, -1, 0, 1, n // 3, n - 1, n, n + 2):
                assert stats.binom_cdf(k, n, p) == pytest.approx(binom.cdf(k, n, p), rel=1e-12, abs=1e-300)
                assert stats.binom_sf(k, n, p) == pytest.approx(binom.sf(k, n, p), rel=1e-12, abs=1e-300)
            for level in (1e-9, 0.005, 0.025, 0.5, 0.975, 0.995, 1.0):
                assert stats.binom_ppf(level, n, p) == int(binom.ppf(level, n, p)), (level, n, p)
