"""Closed forms of simple queues (M/D/1, M/M/c) and an exact M/D/c recursion: references for the load
generator's self-test and for the node model's discrete-event simulation (:mod:`hera.queueing.des`).

All times are seconds, rates queries per second; FCFS service.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext
from typing import Callable

import numpy as np

__all__ = ["md1_mean_sojourn_s", "md1_wait_cdf", "md1_sojourn_quantile_s", "erlang_c", "mmc_mean_sojourn_s",
           "mmc_sojourn_sf", "mmc_sojourn_quantile_s", "mdc_sojourn_quantile_sim_s", "qps_at_latency"]


def md1_mean_sojourn_s(rate_qps: float, service_s: float) -> float:
    """M/D/1 mean time in system (Pollaczek–Khinchine): ``D + ρD / (2(1 − ρ))``."""
    rho = rate_qps * service_s
    if rho >= 1:
        return math.inf
    return service_s + rho * service_s / (2 * (1 - rho))


def md1_wait_cdf(x_s: float, rate_qps: float, service_s: float) -> float:
    """M/D/1 FCFS waiting-time CDF ``P(W ≤ x)`` (Erlang's formula), in 60-digit decimal arithmetic.

    ``P(W ≤ x) = (1 − ρ) Σ_{k=0}^{⌊x/D⌋} (λ(kD − x))^k / k! · e^{−λ(kD − x)}`` — an alternating
    series, hence the high precision.
    """
    rho = rate_qps * service_s
    if rho >= 1:
        return 0.0
    if x_s < 0:
        return 0.0
    with localcontext() as ctx:
        ctx.prec = 80
        lam, d, x = Decimal(rate_qps), Decimal(service_s), Decimal(x_s)
        total = Decimal(0)
        fact = Decimal(1)
        for k in range(int(math.floor(x_s / service_s + 1e-12)) + 1):
            if k:
                fact *= k
            y = lam * (k * d - x)
            total += (y ** k if k else Decimal(1)) / fact * (-y).exp()
        return float((1 - Decimal(rho)) * total)


def md1_sojourn_quantile_s(p: float, rate_qps: float, service_s: float) -> float:
    """p-quantile of the M/D/1 time in system (wait + D), by bisection on :func:`md1_wait_cdf`."""
    rho = rate_qps * service_s
    if rho >= 1:
        return math.inf
    if md1_wait_cdf(0.0, rate_qps, service_s) >= p:
        return service_s
    lo, hi = 0.0, service_s
    while md1_wait_cdf(hi, rate_qps, service_s) < p:
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if md1_wait_cdf(mid, rate_qps, service_s) < p:
            lo = mid
        else:
            hi = mid
    return hi + service_s


def erlang_c(c: int, offered: float) -> float:
    """Erlang-C probability of waiting in M/M/c with offered load ``a = λ/μ`` (< c)."""
    if offered >= c:
        return 1.0
    s = sum(offered ** k / math.factorial(k) for k in range(c))
    top = offered ** c / math.factorial(c) * c / (c - offered)
    return top / (s + top)


def mmc_mean_sojourn_s(rate_qps: float, mean_service_s: float, c: int = 1) -> float:
    """M/M/c mean time in system: ``C / (cμ − λ) + 1/μ``."""
    mu = 1.0 / mean_service_s
    if rate_qps >= c * mu:
        return math.inf
    return erlang_c(c, rate_qps / mu) / (c * mu - rate_qps) + mean_service_s


def mmc_sojourn_sf(t_s: float, rate_qps: float, mean_service_s: float, c: int = 1) -> float:
    """M/M/c FCFS ``P(T > t)``: T = W + S, ``W`` is 0 w.p. 1 − C, else Exp(cμ − λ); S ~ Exp(μ)."""
    mu = 1.0 / mean_service_s
    theta = c * mu - rate_qps
    if theta <= 0:
        return 1.0
    cw = erlang_c(c, rate_qps / mu)
    if abs(theta - mu) < 1e-12 * mu:
        conv = (1 + mu * t_s) * math.exp(-mu * t_s)
    else:
        conv = (theta * math.exp(-mu * t_s) - mu * math.exp(-theta * t_s)) / (theta - mu)
    return (1 - cw) * math.exp(-mu * t_s) + cw * conv


def mmc_sojourn_quantile_s(p: float, rate_qps: float, mean_service_s: float, c: int = 1) -> float:
    """p-quantile of the M/M/c time in system (bisection on :func:`mmc_sojourn_sf`)."""
    if rate_qps >= c / mean_service_s:
        return math.inf
    lo, hi = 0.0, mean_service_s
    while mmc_sojourn_sf(hi, rate_qps, mean_service_s, c) > 1 - p:
        lo, hi = hi, hi * 2
    for _ in range(80):
        mid = (lo + hi) / 2
        if mmc_sojourn_sf(mid, rate_qps, mean_service_s, c) > 1 - p:
            lo = mid
        else:
            hi = mid
    return hi


def mdc_sojourn_quantile_sim_s(p: float, rate_qps: float, service_s: float, c: int = 1,
                               n: int = 400_000, seed: int = 12345) -> float:
    """p-quantile of the M/D/c time in system by exact recursion over ``n`` Poisson arrivals.

    With identical deterministic service and FCFS, servers free up in the order customers started,
    so customer i starts at ``max(a_i, start_{i−c} + D)`` (Kiefer–Wolfowitz for equal service).
    A numerical reference for c > 1, where no closed form is at hand (c = 1: use the exact formula).
    """
    rng = np.random.default_rng(seed)
    a = np.cumsum(rng.exponential(1.0 / rate_qps, n))
    start = np.empty(n)
    # vectorise across the c interleaved chains: chain j holds customers j, j+c, j+2c, ...
    # start_i = max(a_i, start_{i-c} + D)  =>  per chain: s_k = max(a_k, s_{k-1} + D), a Lindley recursion
    # solved as s_k = k*D + max_{m<=k}(a_m - m*D) (running maximum).
    for j in range(c):
        idx = np.arange(j, n, c)
        k = np.arange(idx.size)
        start[idx] = k * service_s + np.maximum.accumulate(a[idx] - k * service_s)
    soj = start + service_s - a
    return float(np.quantile(soj[n // 10:], p))


def qps_at_latency(quantile_fn: Callable[[float], float], bound_s: float, hi_qps: float,
                   rel_tol: float = 1e-6) -> float:
    """The rate in (0, hi) at which ``quantile_fn(rate)`` (increasing) equals ``bound_s`` (bisection)."""
    lo, hi = 0.0, hi_qps
    if quantile_fn(hi * (1 - 1e-9)) <= bound_s:
        return hi
    while hi - lo > rel_tol * hi:
        mid = (lo + hi) / 2
        if quantile_fn(mid) <= bound_s:
            lo = mid
        else:
            hi = mid
    return lo
