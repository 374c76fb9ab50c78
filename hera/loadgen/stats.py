"""Latency statistics: percentiles with distribution-free confidence intervals, and MLPerf's early stopping.

**Percentile CI.** For the p-quantile ξ of any continuous distribution and n independent samples, the
number of samples below ξ is Binomial(n, p), so the order statistics ``X_(l) ≤ ξ ≤ X_(u)`` bracket it
with a probability computed from the binomial CDF alone (no distribution assumed).

**Early stopping (MLPerf LoadGen, Server scenario).** A run of ``q`` queries of which ``t`` exceeded the
latency bound supports the claim "the p-th percentile latency is within the bound" at confidence ``c``
(0.99) when ``q ≥ h + t``, where ``h`` is the smallest count of within-bound queries such that, were
the true fraction of within-bound queries only ``p``, seeing ``t`` or fewer misses among ``h + t``
queries would have probability below ``1 − c``::

    P[Binomial(h + t, 1 − p) ≤ t] < 1 − c

(LoadGen's ``MinPassingQueriesFinder`` with tolerance 0 evaluates the same quantity as a regularised
incomplete beta function, ``I_p(h, t + 1)``; here it is ``scipy.special.bdtr``.) LoadGen's own
messages give the check values reproduced in the tests: 64 queries for a p90 claim and 662 for a p99
claim once one query has missed (``h(1) + 1``).

Caveat, stated with every result: the binomial model assumes independent queries, while latencies of
consecutive queries in a queue are correlated, so the stated confidence is nominal (as in MLPerf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import bdtr, bdtrc  # the binomial CDF alone: scipy.stats costs ~1 s of import

from hera.errors import ConfigError

#: MLPerf LoadGen's early-stopping confidence.
EARLY_STOPPING_CONFIDENCE = 0.99


def binom_cdf(k: float, n: int, p: float) -> float:
    """``P[Bin(n, p) ≤ k]`` (``scipy.stats.binom.cdf`` for integer n, from ``scipy.special`` alone)."""
    k = math.floor(k)
    return 0.0 if k < 0 else 1.0 if k >= n else float(bdtr(k, n, p))


def binom_sf(k: float, n: int, p: float) -> float:
    """``P[Bin(n, p) > k]`` (``scipy.stats.binom.sf``)."""
    k = math.floor(k)
    return 1.0 if k < 0 else 0.0 if k >= n else float(bdtrc(k, n, p))


def binom_ppf(q: float, n: int, p: float) -> int:
    """The smallest k in [0, n] with ``P[Bin(n, p) ≤ k] ≥ q`` (``scipy.stats.binom.ppf`` for 0 < q ≤ 1; a CDF
    within a few ulp (1e-15 relative) of q counts as equal: the two libraries' CDFs differ in the last bits at
    exact ties)."""
    if q >= 1.0:
        return int(n)
    cdf = bdtr(np.arange(int(n) + 1), int(n), p)
    cdf[-1] = 1.0
    return int(min(np.searchsorted(cdf, q * (1 - 1e-15), side="left"), int(n)))


def _check_p(p: float) -> None:
    if not 0.0 < p < 1.0:
        raise ConfigError(f"percentile must be in (0, 1), got {p}")


def percentile(values, p: float) -> float:
    """The p-quantile (``0 < p < 1``) of ``values`` (numpy's linear interpolation); NaN when empty."""
    _check_p(p)
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return math.nan
    return float(np.quantile(v, p))


def order_statistic_ci(n: int, p: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """1-based ranks ``(l, u)`` with ``P(X_(l) ≤ ξ_p ≤ X_(u)) ≥ confidence`` for n samples.

    A rank is ``None`` when n is too small for that side of the interval (the bound is then ±∞).
    Equal-tailed: each side misses with probability at most ``(1 − confidence) / 2``.
    """
    _check_p(p)
    if n <= 0:
        return None, None
    a = (1.0 - confidence) / 2.0
    # P(X_(k) > ξ) = P(Bin(n, p) < k) = cdf(k - 1); largest k with cdf(k - 1) <= a.
    k = int(binom_ppf(a, n, p))  # smallest k with cdf(k) >= a
    if binom_cdf(k, n, p) > a:
        k -= 1
    lo_rank = k + 1 if k >= 0 else None
    if lo_rank is not None and binom_cdf(lo_rank - 1, n, p) > a:
        lo_rank = None
    # P(X_(u) < ξ) = P(Bin(n, p) >= u) = sf(u - 1); smallest u with sf(u - 1) <= a.
    u = int(binom_ppf(1.0 - a, n, p)) + 1
    while u <= n and binom_sf(u - 1, n, p) > a:
        u += 1
    hi_rank = u if u <= n else None
    return lo_rank, hi_rank


@dataclass(frozen=True)
class PercentileEstimate:
    """A percentile with its distribution-free confidence interval (NaN/inf when n is too small)."""

    p: float
    n: int
    value: float
    lo: float
    hi: float
    confidence: float


def percentile_ci(values, p: float, confidence: float = 0.95) -> PercentileEstimate:
    """Point estimate and order-statistic confidence interval of the p-quantile of ``values``."""
    v = np.sort(np.asarray(values, dtype=float))
    n = int(v.size)
    if n == 0:
        return PercentileEstimate(p, 0, math.nan, math.nan, math.nan, confidence)
    lr, hr = order_statistic_ci(n, p, confidence)
    lo = float(v[lr - 1]) if lr is not None else -math.inf
    hi = float(v[hr - 1]) if hr is not None else math.inf
    return PercentileEstimate(p, n, float(np.quantile(v, p)), lo, hi, confidence)


# --------------------------------------------------------------------------------------- early stopping
def _odds(h: int, t: int, p: float, d: float) -> float:
    """P[at most t misses among h + t queries | within-bound probability p − d]."""
    return float(binom_cdf(t, h + t, 1.0 - (p - d)))


def early_stopping_min_passing(t: int, p: float, confidence: float = EARLY_STOPPING_CONFIDENCE,
                               tolerance: float = 0.0) -> int:
    """LoadGen's ``find_min_passing``: the least within-bound count h with ``odds(h, t) < 1 − confidence``."""
    _check_p(p)
    if t < 0:
        raise ConfigError(f"overlatency count must be >= 0, got {t}")
    target = 1.0 - confidence
    hi = max(1, math.ceil(math.log(target) / math.log(p - tolerance)))
    while _odds(hi, t, p, tolerance) >= target:
        hi *= 2
    lo = 0
    while lo < hi:  # smallest h in [lo, hi] with odds < target (odds decreases in h)
        mid = (lo + hi) // 2
        if _odds(mid, t, p, tolerance) < target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def early_stopping_min_queries(t: int, p: float, confidence: float = EARLY_STOPPING_CONFIDENCE) -> int:
    """Total queries needed (``h + t``) for a claim on the p-th percentile after t over-bound queries."""
    return early_stopping_min_passing(t, p, confidence) + t


def early_stopping_max_overlatency(n: int, p: float, confidence: float = EARLY_STOPPING_CONFIDENCE) -> int:
    """The largest over-bound count t that n queries can absorb and still pass; −1 if none."""
    if n < early_stopping_min_queries(0, p, confidence):
        return -1
    lo, hi = 0, n  # invariant: lo passes
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if early_stopping_min_queries(mid, p, confidence) <= n:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class EarlyStoppingVerdict:
    """Outcome of the early-stopping rule for q queries, t of them over the bound.

    ``verdict``: ``pass`` (q ≥ needed), ``fail`` (the data reject the claim at the same confidence:
    ``P[Binomial(q, 1 − p) ≥ t] < 1 − confidence``) or ``undecided`` (run more queries).
    ``more_needed``: queries still to run if every further one were within the bound.
    """

    n_queries: int
    n_over: int
    percentile: float
    confidence: float
    needed: int
    verdict: str

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def more_needed(self) -> int:
        return max(0, self.needed - self.n_queries)


def early_stopping(n_queries: int, n_over: int, p: float,
                   confidence: float = EARLY_STOPPING_CONFIDENCE) -> EarlyStoppingVerdict:
    """Apply MLPerf's Server-scenario early-stopping rule (see module docstring)."""
    if n_over < 0 or n_over > n_queries:
        raise ConfigError(f"early stopping needs 0 <= n_over <= n_queries, got {n_over} of {n_queries}")
    needed = early_stopping_min_queries(n_over, p, confidence)
    if n_queries >= needed:
        verdict = "pass"
    elif n_over > 0 and binom_sf(n_over - 1, n_queries, 1.0 - p) < 1.0 - confidence:
        verdict = "fail"
    else:
        verdict = "undecided"
    return EarlyStoppingVerdict(n_queries, n_over, p, confidence, needed, verdict)


def early_stopping_percentile(latencies, p: float, confidence: float = EARLY_STOPPING_CONFIDENCE) -> float:
    """LoadGen's early-stopping percentile *estimate* (its Single/MultiStream rule).

    The largest t such that n ≥ h(t) + t is found, the t − 1 highest latencies are discarded and the
    next one is returned: with the given confidence the true p-th percentile is at most this value.
    NaN when n is too small for any claim (n < h(1) + 1).
    """
    v = np.sort(np.asarray(latencies, dtype=float))
    n = int(v.size)
    if n < early_stopping_min_passing(1, p, confidence) + 1:
        return math.nan
    t = 1
    lo, hi = 1, n  # largest t with h(t) + t <= n (h(t) + t increases with t)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if early_stopping_min_passing(mid, p, confidence) + mid <= n:
            lo = mid
        else:
            hi = mid - 1
    t = lo
    return float(v[n - t])
