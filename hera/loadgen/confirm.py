"""Measured confirmation of a modelled operating point: the ground truth, found quickly because the model says
where to look.

The point is a *scale* t along a direction of rates: every tenant i is offered Poisson load at ``t × direction_i``
queries/s at once (one tenant with direction 1: t is its rate, and the point is its QPS*; two tenants: a point
on the boundary of their feasible region along a ray, :mod:`hera.profile.colocation`). A trial's *normalised
tail* is ``max_i tail_i / SLA_i``: it crosses 1 exactly where the first tenant reaches its SLA, so one procedure
serves both. For each of ``repeats`` independent repeats (their own arrival, size and sample seeds):

1. **Trials** are fixed-length open-loop Poisson runs: a *chunk* gives the tenant with the highest rate at least
   ``min_queries`` measured queries and ``trial_s`` seconds of arrivals (after warm-up queries that are not
   measured); the other tenants' streams span the same time (a lightly loaded tenant then has fewer queries: its
   tail is far from its SLA or the sequential test keeps the trial going). After each chunk a **sequential test** asks, per
   tenant, whether the share of its queries over its SLA is below or above ``1 − percentile`` (exact
   Clopper–Pearson interval at ``confidence``; failed queries count as over): the trial *passes* when every
   tenant's whole interval is below, *fails* when one tenant's is above; otherwise it goes on with another chunk
   (new seeds, pooled) up to ``max_chunks``, after which each tenant's side is decided by its pooled tail
   latency against its SLA and the trial is marked ``undecided``. This test decides how many chunks a trial
   takes and is each tenant's ``verdict``; with a node model (2.) the trial's *side* comes from the adjusted
   tails instead, so a trial whose raw misses failed the test can still lie below the crossing (the log shows
   both: ``misses fail → pass``). Trials are not cut short when they start to miss (the tail above the SLA is
   measured too, for the interpolation below), except a runaway one whose backlog reaches half its queries:
   it fails with its tail unmeasured.
2. **Control variate**: with a node model per tenant (:class:`hera.queueing.qps.TailModel`) each tail is
   adjusted for the luck of its own arrivals and sizes; sides and estimates then use the adjusted tails (raw
   ones are kept beside).
3. **Bracketing**: the first trial runs at ``centre × (1 − step)``, the centre being the modelled value in
   the first repeat and the median of the values measured so far in the others (:func:`bracket_centre`); if it
   passes the second runs at ``centre × (1 + step)``, if it fails the crossing is below it and the second
   already moves down (a trial above a failing one would fail too and is never used by the estimate);
   further scales move down until one passes or up until one fails (a secant on the reciprocal normalised
   tail, at least one ``step`` and at most a factor 2; with a *guide*, the node model on the service times as
   this repeat's trials served them may lengthen the step, never shorten it: :meth:`_Confirmer._guided`), at
   most ``max_steps`` more; a failing scale whose tail could not be measured (cut short) is bisected
   towards the passing one; descending stops when lower scales stop lowering the tail over at least a halving
   of the scale, every tail measured (service-time bound: :meth:`_Confirmer._flat`) or
   would go below ``min_fraction`` of the modelled value (the value is then 0, and re-tested).
4. **Estimate**: the repeat's value is where the normalised tail crosses 1 between the highest passing and the
   lowest failing scale (:func:`crossing`) — a continuous quantity, not one bit per trial.
5. **Re-test**: a repeat that found no passing scale (value 0), or had a trial with failed queries, is run once
   more with new seeds, its bracket starting where the first attempt left off (:func:`retest_centre`); the row says so (``retested``), nothing is averaged in silently. A trial whose harness
   saturated (:mod:`hera.loadgen.harness`) says so in its row (``harness_saturated`` and the reason); on a machine
   whose every core runs a worker that is the normal state, so it is recorded, not re-tested.

Result (:class:`Confirmation`): the median over repeats, a distribution-free confidence interval for it from
order statistics (its level depends on the number of repeats and is reported: [min, max] of 3 repeats is a 75%
interval), the mean, standard deviation and coefficient of variation, and every trial and tenant as a tidy row.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.special import bdtr, betaincinv  # not scipy.stats: ~1 s of import per command

from hera.errors import ConfigError
from hera.loadgen import driver
from hera.loadgen.settings import LoadgenSettings

#: A trial whose backlog reaches this share of its queries (at least RUNAWAY_MIN_OUTSTANDING queries in flight) is
#: overloaded far beyond QPS*: it stops issuing (the driver's ``max_outstanding``) and fails with its tail unmeasured.
RUNAWAY_BACKLOG_SHARE = 0.5
RUNAWAY_MIN_OUTSTANDING = 20
#: A tenant whose tail is below this fraction of its SLA needs no more evidence (a lightly loaded partner in a
#: joint trial has too few queries for the test to decide, and is not what limits the point).
FAR_BELOW = 0.5
#: In a joint trial every other stream spans the busiest one's time, with at least this many queries.
MIN_QUERIES_PER_STREAM = 10
#: The descent of a repeat that finds no passing scale stops as service-time bound only when its lowest trials span
#: at least this factor in scale with no gain in tail (a halving, as in the standalone search).
FLAT_MIN_SPAN = 2.0
#: Chunks an operating-point probe adds when its first chunks' drift is outside the recheck band: with one first
#: chunk, the probe's drift is then the median of three (:func:`probe_service_drift`).
RECHECK_CHUNKS = 2
#: A bracketing step aims this factor beyond where the secant (or the guide) puts the crossing, so that the next
#: trial lands on the far side of it and closes the bracket.
AIM_BEYOND = 1.05


@dataclass(frozen=True)
class ConfirmSettings:
    """How a modelled QPS* is confirmed (config section ``confirm``). ``visits``: how many independent sittings
    share the point (F4's ``colocation.visits``; each takes ``repeats`` of it, pooled afterwards): the point
    needs at least 3 repeats over all of them."""

    repeats: int = 3
    confidence: float = 0.95
    trial_s: float = 2.0
    min_queries: int = 120
    max_chunks: int = 3
    step: float = 0.1
    max_steps: int = 8
    min_fraction: float = 0.125
    visits: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.visits, int) or self.visits < 1:
            raise ConfigError(f"confirmation: visits must be an integer >= 1, got {self.visits!r}")
        if not isinstance(self.repeats, int) or self.repeats < 1 or self.repeats * self.visits < 3:
            raise ConfigError(f"confirmation: repeats must be an integer >= 3 over all visits, got {self.repeats!r}"
                              + (f" in each of {self.visits} visits" if self.visits > 1 else ""))
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(f"confirmation: confidence must be in [0.5, 1), got {self.confidence!r}")
        if not self.trial_s > 0 or self.min_queries < 20 or self.max_chunks < 1:
            raise ConfigError("confirmation: need trial_s > 0, min_queries >= 20, max_chunks >= 1")
        if not 0 < self.step <= 1 or self.max_steps < 1:
            raise ConfigError("confirmation: need 0 < step <= 1 and max_steps >= 1")
        if not 0 < self.min_fraction < 1:
            raise ConfigError(f"confirmation: min_fraction must be in (0, 1), got {self.min_fraction!r}")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ConfirmSettings":
        c = config["confirm"]
        return cls(repeats=int(c["repeats"]), confidence=float(c["confidence"]), trial_s=float(c["trial_s"]),
                   min_queries=int(c["min_queries"]), max_chunks=int(c["max_chunks"]), step=float(c["step"]),
                   max_steps=int(c["max_steps"]), min_fraction=float(c["min_fraction"]))


def miss_interval(n_over: int, n: int, confidence: float) -> tuple[float, float]:
    """Clopper–Pearson interval of the share of queries over the bound."""
    if n <= 0:
        return 0.0, 1.0
    a = 1 - confidence
    lo = 0.0 if n_over == 0 else float(betaincinv(n_over, n - n_over + 1, a / 2))
    hi = 1.0 if n_over == n else float(betaincinv(n_over + 1, n - n_over, 1 - a / 2))
    return lo, hi


def tail_quantile(latency_ms: np.ndarray, p: float) -> float:
    """The p-quantile of latencies where failed queries are +inf: numpy's default (linear) interpolation between
    the two order statistics around position ``(n − 1)·p``, and inf when either one that carries weight is a
    failed query — interpolating towards +inf gives +inf, not a large finite number (a stand-in latency of
    1e12 ms once gave a "measured" tail of 5e10 ms at 4 failed queries in 80, which then bent an interpolation)."""
    x = np.sort(np.asarray(latency_ms, float))
    if x.size == 0:
        return math.inf
    h = (x.size - 1) * float(p)
    lo = math.floor(h)
    hi = min(lo + 1, x.size - 1)
    w = h - lo
    if not np.isfinite(x[lo]) or (w > 0 and not np.isfinite(x[hi])):
        return math.inf
    return float(x[lo] + w * (x[hi] - x[lo])) if w > 0 else float(x[lo])


def crossing(r_lo: float, t_lo: float, r_hi: float, t_hi: float, sla_ms: float) -> float:
    """The rate between ``r_lo`` (tail ``t_lo`` ≤ SLA) and ``r_hi`` (tail ``t_hi`` > SLA) where the tail reaches the
    SLA, interpolating the *reciprocal* tail linearly in the rate: near saturation a queue's tail grows like
    ``1 / (μ − λ)``, whose reciprocal is linear in λ, so this is exact there and close to linear interpolation
    further down. ``r_lo`` when ``t_hi`` is not finite (the failing tail was not measured)."""
    if not (np.isfinite(t_hi) and np.isfinite(t_lo)) or t_hi <= t_lo or t_lo <= 0:
        return float(r_lo)
    frac = (1 / t_lo - 1 / sla_ms) / (1 / t_lo - 1 / t_hi)
    return float(r_lo + min(max(frac, 0.0), 1.0) * (r_hi - r_lo))


def median_ci(values: list[float], confidence: float) -> tuple[float, float, float]:
    """Distribution-free interval for the median: ``(lo, hi, level)`` with ``[X_(k), X_(n−k+1)]`` for the largest
    k whose level ``1 − 2·P[Bin(n, ½) ≤ k−1]`` is at least ``confidence``, else the widest one ([min, max])."""
    x = np.sort(np.asarray(values, float))
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan
    best = (1, 1 - 2 * float(bdtr(0, n, 0.5)))
    for k in range(1, n // 2 + 1):
        level = 1 - 2 * float(bdtr(k - 1, n, 0.5))
        if level >= confidence:
            best = (k, level)
    k, level = best
    return float(x[k - 1]), float(x[n - k]), float(level)


@dataclass
class Confirmation:
    """A confirmed (measured) operating point — a tenant's QPS*, or the scale of a joint point — and how it was
    obtained. ``value*`` are rates (queries/s) for one tenant with direction 1, else scales of ``direction``."""

    value: float
    value_ci_lo: float
    value_ci_hi: float
    value_ci_level: float
    value_mean: float
    value_std: float
    value_cov: float
    value_raw: float
    per_repeat: list[float]
    per_repeat_raw: list[float]
    direction: dict[str, float]
    control_variate: bool
    repeats: int
    retested: int
    n_trials: int
    trial_seconds: float
    modelled: float
    sla_ms: dict[str, float]
    percentile: float
    note: str
    trials: pd.DataFrame = field(repr=False)

    def rates(self, which: str = "value") -> dict[str, float]:
        """Each tenant's rate at the point (``which``: value, value_ci_lo, value_ci_hi, value_raw, modelled)."""
        return {t: getattr(self, which) * d for t, d in self.direction.items()}


@dataclass
class _Trial:
    """One joint trial (its full per-tenant rows go to the trial table)."""

    scale: float
    tail: float       # normalised tail max_i tail_i / SLA_i: control-variate adjusted with models, else raw
    raw_tail: float   # the same from raw tails (inf where a tail was not measured)
    passed: bool      # tail <= 1
    problem: str | None  # failed queries / harness saturated
    drift: dict[str, float] = field(default_factory=dict)  # each tenant's service drift in it (NaN: none measured)


class _Confirmer:
    def __init__(self, sut: Any, bases: dict[str, LoadgenSettings], library: dict[str, int],
                 direction: dict[str, float], sla_ms: dict[str, float], percentile: float, s: ConfirmSettings,
                 log: Callable[[str], None] | None, models: dict[str, Any],
                 guide: Callable[[dict[str, float]], float] | None = None):
        self.sut, self.bases, self.library, self.direction = sut, bases, library, direction
        self.sla, self.p, self.s, self.log, self.models = sla_ms, percentile, s, log, models
        self.guide = guide
        self.tenants = list(direction)
        self.rows: list[dict[str, Any]] = []
        self.n_trials = 0

    def _chunk(self, scale: float, seed_base: int):
        """One chunk of a joint trial: every tenant's stream over the same span; ``RunResult``."""
        rates = {t: scale * self.direction[t] for t in self.tenants}
        pace = max(rates, key=rates.get)  # the busiest stream sets the length: min_queries of its own queries
        n_pace = max(self.s.min_queries, int(math.ceil(rates[pace] * self.s.trial_s)))
        span = n_pace / rates[pace]
        warm_s = self.bases[pace].warmup_queries / rates[pace]  # warm-up is the busiest stream's, in time
        idle = getattr(self.sut, "wait_idle", None)
        if idle is not None:  # a previous overloaded trial's backlog must not leak into this one
            idle()
        streams = {}
        for k, t in enumerate(self.tenants):
            n = n_pace if t == pace else max(MIN_QUERIES_PER_STREAM, int(math.ceil(rates[t] * span)))
            sb = seed_base + 31 * k
            streams[t] = self.bases[t].replace(
                warmup_queries=warmup_queries(self.bases[t].warmup_queries, rates[t], warm_s),
                target_qps=float(rates[t]), n_queries=n, duration_s=None, min_queries=0, min_duration_s=0.0,
                latency_bound_ms=float(self.sla[t]), percentile=self.p, arrival="poisson", arrival_trace=None,
                arrival_formula=None, arrival_seed=sb % (2**31 - 1), size_seed=(sb + 1) % (2**31 - 1),
                sample_seed=(sb + 2) % (2**31 - 1),
                max_outstanding=max(RUNAWAY_MIN_OUTSTANDING, int(n * RUNAWAY_BACKLOG_SHARE)))
        return driver.run(self.sut, streams, self.library)

    def _adjusted(self, tenant: str, rate: float, chunks: list[pd.DataFrame], raw_tail: float,
                  warmup: int) -> tuple[float, float, float]:
        """(control-variate adjusted tail, correction factor, service drift) of one tenant in a trial whose chunks
        each began with ``warmup`` unmeasured queries of it; the raw tail (and no drift) without a model."""
        model = self.models.get(tenant)
        if model is None or not np.isfinite(raw_tail):
            return raw_tail, 1.0, math.nan
        realised, drift, measured = _replayed(model, chunks)
        expected = model.expected_log_tail(rate, measured, warmup)
        factor = float(np.exp(expected - realised))
        return raw_tail * factor, factor, drift

    def trial(self, repeat: int, attempt: int, scale: float, seed: int) -> _Trial:
        runs = []
        problems: list[str] = []  # failed queries: the repeat is re-tested
        decided: dict[str, str] = {}
        while len(runs) < self.s.max_chunks:
            res = self._chunk(scale, seed + 7919 * len(runs))
            runs.append(res)
            decided = {}
            for t in self.tenants:
                lat = self._latencies(runs, t)
                n_over = int((lat > self.sla[t]).sum())
                lo, hi = miss_interval(n_over, lat.size, self.s.confidence)
                decided[t] = ("fail" if lo > 1 - self.p else "pass" if hi < 1 - self.p
                              or tail_quantile(lat, self.p) <= FAR_BELOW * self.sla[t] else "undecided")
            if res.summary.get("aborted") or "fail" in decided.values() or all(
                    v == "pass" for v in decided.values()):
                break
        for t in self.tenants:
            n_err = sum(int(r.tenants[t].get("n_error", 0)) + int(r.tenants[t].get("n_timeout", 0)) for r in runs)
            if n_err:
                problems.append(f"{t}: {n_err} failed queries")
        aborted = any(r.summary.get("aborted") for r in runs)
        self.n_trials += 1
        norm, norm_raw = [], []
        drifts: dict[str, float] = {}
        for t in self.tenants:
            lat = self._latencies(runs, t)
            n_over = int((lat > self.sla[t]).sum())
            lo, hi = miss_interval(n_over, lat.size, self.s.confidence)
            # a runaway trial stopped issuing: what its issued queries saw is not a steady-state tail (the
            # queue had no steady state), so it is unmeasured, and the bracket bisects towards the pass below
            raw = math.inf if aborted else tail_quantile(lat, self.p)
            verdict = decided.get(t, "undecided")
            if aborted and verdict != "pass":
                verdict = "fail"
            if verdict == "undecided":
                verdict = "undecided-pass" if raw <= self.sla[t] else "undecided-fail"
            rate = scale * self.direction[t]
            chunks = [r.rows[r.rows["tenant"] == t] for r in runs]
            warmup = int(chunks[0]["warmup"].sum())  # this tenant's, as _chunk set it
            tail, factor, drift = self._adjusted(t, rate, chunks, raw, warmup)
            drifts[t] = drift
            norm.append(tail / self.sla[t])
            norm_raw.append(raw / self.sla[t])
            measured = pd.concat([c[~c["warmup"]] for c in chunks])
            ok = measured["ok"].to_numpy(bool)
            late = measured["issue_lateness_us"].dropna()
            self.rows.append({
                "repeat": repeat, "attempt": attempt, "trial": self.n_trials, "scale": float(scale), "tenant": t,
                "rate_qps": float(rate), "chunks": len(runs), "warmup_queries": warmup,
                "n_measured": int(lat.size), "n_ok": int(ok.sum()),
                "n_over_sla": n_over, "miss_fraction": n_over / max(lat.size, 1), "miss_lo": lo, "miss_hi": hi,
                "verdict": verdict, "passed": bool(tail <= self.sla[t]) if self.models.get(t) is not None
                else verdict in ("pass", "undecided-pass"), "aborted": aborted,
                "latency_ms_pct": raw if np.isfinite(raw) else math.nan,
                "latency_ms_pct_adjusted": tail if np.isfinite(tail) else math.nan,
                "control_variate_factor": factor, "service_drift": drift, "sla_ms": self.sla[t], "percentile": self.p,
                "latency_ms_p50": float(np.median(measured.loc[measured["ok"], "latency_ms"])) if ok.any()
                else math.nan,
                "duration_s": float(sum(r.tenants[t].get("duration_s", math.nan) for r in runs)),
                "wall_s": float(sum(r.summary.get("wall_s", math.nan) for r in runs)),
                "achieved_qps": float(np.nanmean([r.tenants[t].get("achieved_qps", math.nan) for r in runs])),
                "issue_lateness_us_p99": float(late.quantile(0.99)) if len(late) else math.nan,
                "harness_cpu_s": float(sum(r.summary.get("harness_cpu_s", math.nan) for r in runs)),
                "harness_saturated": any(bool(r.summary.get("harness_saturated")) for r in runs),
                "harness_saturation_reason": next((str(r.summary.get("harness_saturation_reason"))
                                                   for r in runs if r.summary.get("harness_saturated")), None),
                "problem": "; ".join(problems) or None, "arrival_seed": int(seed),
            })
        tail_n, raw_n = max(norm), max(norm_raw)
        passed = tail_n <= 1.0
        saturated = any(bool(r.summary.get("harness_saturated")) for r in runs)
        if self.log:
            parts = [f"{r['tenant']} {r['rate_qps']:.2f} qps p{self.p * 100:g}={r['latency_ms_pct']:.2f}"
                     + (f" (adj {r['latency_ms_pct_adjusted']:.2f})" if self.models.get(r["tenant"]) is not None
                        else "") + f"/{r['sla_ms']:.3g} ms, misses {r['verdict']}"
                     for r in self.rows[-len(self.tenants):]]
            self.log(f"  repeat {repeat}{'+' if attempt else ''} x{scale:.4g}: " + "; ".join(parts)
                     + f" → {'pass' if passed else 'fail'}"
                     + (f"  [{'; '.join(problems)}]" if problems else "") + ("  (harness saturated)" if saturated else ""))
        return _Trial(scale, tail_n, raw_n, passed, "; ".join(problems) or None, drifts)

    def _latencies(self, runs: list[Any], tenant: str) -> np.ndarray:
        """Pooled measured latencies of ``tenant`` over the chunks so far; failed queries are +inf."""
        parts = []
        for r in runs:
            x = r.rows[(r.rows["tenant"] == tenant) & ~r.rows["warmup"]]
            parts.append(np.where(x["ok"], x["latency_ms"], np.inf))
        return np.concatenate(parts) if parts else np.zeros(0)

    def _jump(self, done: list[_Trial], edge: _Trial, down: bool) -> float:
        """Factor from ``edge`` (the highest pass when ``not down``, the lowest fail when ``down``) to the next
        scale: the secant of the two trials nearest the crossing on the reciprocal normalised tail (+/- 5%), at
        least one ``step`` and at most a factor 2; without a usable secant, ``(1 + step)`` raised to the number
        of trials already on that side (the bracket widens geometrically when the model was far off)."""
        s = self.s
        near = sorted((t for t in done if t is not edge), key=lambda t: abs(math.log(t.scale / edge.scale)))
        target = _secant(edge, near[0]) if near else math.nan
        lo_f, hi_f = 1 + s.step, 2.0
        if math.isfinite(target) and target > 0:
            f = (edge.scale / target if down else target / edge.scale) * AIM_BEYOND
            f = min(max(f, lo_f), hi_f)
        else:
            same_side = sum(1 for t in done if t.passed != down)  # passes when going up, fails when going down
            f = min(lo_f ** max(1, same_side - 1), hi_f)
        guided = self._guided(done, edge, down)
        if math.isfinite(guided):
            f = max(f, min(guided, hi_f))  # the model at the served speed only ever lengthens the step
        return 1 / f if down else f

    def _guided(self, done: list[_Trial], edge: _Trial, down: bool) -> float:
        """Factor from ``edge`` to where the node model puts the value for the node *as it served* this repeat's
        trials (``guide`` of each tenant's median :func:`service_drift` over them), 5% beyond it as the secant
        aims; NaN without a guide or a measured drift, or when that value is not beyond ``edge`` in the direction
        of travel (the node served as profiled and the tail failed anyway: the secant decides)."""
        if self.guide is None:
            return math.nan
        drift = {t: _median_drift([x.drift.get(t, math.nan) for x in done]) for t in self.tenants}
        if not all(math.isfinite(d) for d in drift.values()):
            return math.nan
        value = float(self.guide(drift))
        if not (math.isfinite(value) and value > 0):
            return math.nan
        f = (edge.scale / value if down else value / edge.scale) * AIM_BEYOND
        return f if f > 1.0 else math.nan

    @staticmethod
    def _flat(done: list[_Trial]) -> bool:
        """Did the last two steps down (by scale) leave the raw normalised tail above 1 and less than
        ``FLAT_TAIL_GAIN`` lower each time (:func:`hera.loadgen.search.tail_flat`), over at least a halving of the
        scale (``FLAT_MIN_SPAN``) and with every one of those tails measured? The rule was made for the standalone
        search, whose steps are halvings; the confirmation steps down by 15% or so, and over two such steps one
        trial's tail on a shared VM moves by more than the queue's gain (CI, 2026-12-03: a synthetic pair's
        tails 0.85, 1.89, 2.55 × its SLA at scales 1.6, 1.33, 1.11 were read as a service-time bound, the value
        0). A runaway trial's tail is not measured: the load was above capacity, so a lower one will lower it."""
        from hera.loadgen.search import FLAT_TAIL_HALVINGS, tail_flat

        by_scale = sorted(done, key=lambda t: t.scale)[:FLAT_TAIL_HALVINGS + 1]
        if len(by_scale) < FLAT_TAIL_HALVINGS + 1:
            return False
        if by_scale[-1].scale < FLAT_MIN_SPAN * by_scale[0].scale:
            return False
        if not all(np.isfinite(t.raw_tail) for t in by_scale):
            return False
        return all(tail_flat(hi.raw_tail, lo.raw_tail, 1.0) for lo, hi in zip(by_scale, by_scale[1:]))

    def repeat(self, repeat: int, attempt: int, modelled: float, seed: int,
               centre: float | None = None) -> list[_Trial]:
        """The trials of one repeat: bracket the crossing starting from ``centre × (1 − step)``, then
        ``centre × (1 + step)`` if that passed (``centre``: the modelled value, or the median of the repeats
        measured so far, :func:`bracket_centre`)."""
        s = self.s
        done: list[_Trial] = []
        centre = modelled if centre is None else centre

        def run(scale: float) -> None:
            done.append(self.trial(repeat, attempt, scale, seed + 104729 * len(done)))

        run(centre * (1 - s.step))
        if done[0].passed:  # a failing lower trial already says the crossing is below it: go down at once
            run(centre * (1 + s.step))
        for _ in range(s.max_steps):
            passes = [t for t in done if t.passed]
            if not passes:
                lowest = min(done, key=lambda t: t.scale)
                if self._flat(done):
                    break  # lower scales stopped lowering the tail: service-time bound, none will pass
                nxt = lowest.scale * self._jump(done, lowest, down=True)
                if nxt < modelled * s.min_fraction:
                    break  # far below the model: the value is 0 (re-tested, noted); trials would only get longer
                run(nxt)
                continue
            lo = max(passes, key=lambda t: t.scale)
            above = [t for t in done if not t.passed and t.scale > lo.scale]
            if not above:
                run(lo.scale * self._jump(done, lo, down=False))
                continue
            hi = min(above, key=lambda t: t.scale)
            if not np.isfinite(hi.tail) and hi.scale / lo.scale > 1 + s.step / 2:
                run(math.sqrt(hi.scale * lo.scale))  # the failing tail was not measured: bisect
                continue
            break
        return done


def service_drift(measured_span_ms: np.ndarray, modelled_span_ms: np.ndarray) -> float:
    """How much slower (> 1) or faster (< 1) the node served a trial's queries than the node model says it would
    have, for the very same arrivals and sizes: the mean measured span (first sub-batch start to last end, as
    the node reports it) over the mean modelled span, over the queries with a measured span. The model's service
    times are the profile taken before the confirmation, so a drift far from 1 says the machine changed speed
    between the profile and the trial (a shared VM does, by 10-40% within minutes) — a model error it cannot
    be blamed for. NaN without spans."""
    m = np.asarray(measured_span_ms, float)
    s = np.asarray(modelled_span_ms, float)
    if m.shape != s.shape:
        raise ConfigError(f"service drift: {m.size} measured spans for {s.size} modelled ones")
    ok = np.isfinite(m) & np.isfinite(s)
    if not ok.any() or s[ok].mean() <= 0:
        return math.nan
    return float(m[ok].mean() / s[ok].mean())


def _replayed(model: Any, chunks: list[pd.DataFrame]) -> tuple[float, float, list[int]]:
    """One tenant's chunks (rows of :func:`hera.loadgen.driver.run`) replayed through its node ``model`` (a
    :class:`hera.queueing.qps.TailModel`): the model's log tail for these very arrivals and sizes, the
    :func:`service_drift` of the measured spans against the modelled ones, and each chunk's measured queries."""
    parts = [(c["scheduled_s"].to_numpy(float), c["n_items"].to_numpy(np.int64), ~c["warmup"].to_numpy(bool))
             for c in chunks]
    realised, spans = model.realised(parts)
    measured = np.concatenate([c.loc[~c["warmup"], "service_ms"].to_numpy(float) for c in chunks])
    return realised, service_drift(measured, spans), [int(m.sum()) for _, _, m in parts]


def warmup_queries(base: int, rate_qps: float, warmup_s: float) -> int:
    """Unmeasured queries in front of one stream of a joint trial: as many as arrive at ``rate_qps`` during the
    busiest stream's warm-up (``warmup_s``), at least one and at most ``base``. A stream counted in queries
    would warm up for ``base / rate`` seconds — 2.5 s for a partner at 4 queries/s beside 0.2 s for the busiest
    stream — and every chunk would last that much longer; the node is warmed by the whole load, not by one
    stream's count."""
    return int(min(int(base), max(1, math.ceil(float(rate_qps) * float(warmup_s) - 1e-9))))


def _secant(a: _Trial, b: _Trial) -> float:
    """The scale where the line through ``(scale, 1/tail)`` of two trials reaches 1 (NaN if undefined)."""
    if not (np.isfinite(a.tail) and np.isfinite(b.tail)) or a.scale == b.scale:
        return math.nan
    slope = (1 / b.tail - 1 / a.tail) / (b.scale - a.scale)
    if slope >= 0:
        return math.nan
    return a.scale + (1 - 1 / a.tail) / slope


def bracket_centre(modelled: float, measured: list[float]) -> float:
    """Where a repeat's first two trials go: the modelled value for the first repeat, then the median of the
    positive values measured so far — the model says where to look, the measurement where it was found (a
    model off by 30% costs the first repeat extra trials, not every repeat). The repeats stay independent
    measurements (own seeds; each value is its own crossing), only their starting bracket is shared."""
    found = [v for v in measured if v > 0 and math.isfinite(v)]
    return float(np.median(found)) if found else float(modelled)


def retest_centre(centre: float, value: float, trials: list[_Trial]) -> float:
    """Where a re-tested repeat's bracket starts: the value its first attempt found (re-tested for failed
    queries), else — no scale passed — the lowest scale that attempt tried: its trials above that already failed,
    and starting again from ``centre`` would walk the same way down (run 40, 2026-12-03: NCF's re-test repeated
    four failing trials from 125 to 71 queries/s before passing at 47)."""
    if value > 0 and math.isfinite(value):
        return float(value)
    tried = [t.scale for t in trials if t.scale > 0]
    return float(min(tried)) if tried else float(centre)


def estimate(trials: list[_Trial], adjusted: bool = True) -> tuple[float, str]:
    """The value of one repeat from its trials: where the normalised tail crosses 1 between the highest scale
    whose tail is within it and the lowest scale above that whose tail is not (``adjusted``: control-variate
    tails, else raw ones)."""
    tail = (lambda t: t.tail) if adjusted else (lambda t: t.raw_tail)
    passes = [t for t in trials if tail(t) <= 1.0]
    if not passes:
        return 0.0, f"no scale down to {min(t.scale for t in trials):.4g} met the SLA"
    lo = max(passes, key=lambda t: t.scale)
    above = [t for t in trials if not tail(t) <= 1.0 and t.scale > lo.scale]
    if not above:
        return lo.scale, f"every scale up to {lo.scale:.4g} met the SLA (the value is at least that)"
    hi = min(above, key=lambda t: t.scale)
    note = "" if np.isfinite(tail(hi)) else "tail of the failing scale not measured: highest passing scale"
    return crossing(lo.scale, tail(lo), hi.scale, tail(hi), 1.0), note


def confirm_point(sut: Any, bases: dict[str, LoadgenSettings], library: dict[str, int], *,
                  direction: dict[str, float], modelled: float, sla_ms: dict[str, float], percentile: float,
                  settings: ConfirmSettings | None = None, models: dict[str, Any] | None = None,
                  guide: Callable[[dict[str, float]], float] | None = None,
                  log: Callable[[str], None] | None = None) -> Confirmation:
    """Measure the scale t at which the first tenant offered ``t × direction_i`` reaches its SLA (module doc),
    starting from ``modelled``. ``bases[i]`` gives tenant i's query sizes, warm-up and root seeds; ``models[i]``
    (a :class:`hera.queueing.qps.TailModel`) its control variate (raw tails without); ``guide`` (optional) the
    modelled value for given service drifts of the tenants against those models (the node model on the service
    times as served), which may lengthen a bracketing step (step 3 of the module doc)."""
    s = settings or ConfirmSettings()
    models = dict(models or {})
    tenants = list(direction)
    if not tenants or set(tenants) != set(bases) or not set(tenants) <= set(library) or set(tenants) != set(sla_ms):
        raise ConfigError("confirmation needs the same tenants in direction, bases, library and sla_ms")
    if not (modelled > 0 and math.isfinite(modelled)):
        raise ConfigError(f"confirmation needs a positive modelled value, got {modelled!r} "
                          f"(tenants {', '.join(tenants)})")
    if not all(d > 0 for d in direction.values()):
        raise ConfigError(f"confirmation: every tenant needs a positive rate direction, got {direction}")
    if not all(v > 0 for v in sla_ms.values()) or not 0 < percentile < 1:
        raise ConfigError("confirmation needs positive SLAs and a percentile in (0, 1)")
    c = _Confirmer(sut, bases, library, direction, {t: float(v) for t, v in sla_ms.items()}, float(percentile),
                   s, log, models, guide)
    cv = any(models.get(t) is not None for t in tenants)
    per: list[float] = []
    per_raw: list[float] = []
    notes: list[str] = []
    retested = 0
    root = bases[tenants[0]].arrival_seed
    for r in range(s.repeats):
        seed = root + 1_000_003 * (r + 1)
        centre = bracket_centre(modelled, per)
        trials = c.repeat(r, 0, modelled, seed, centre)
        q, note = estimate(trials, adjusted=cv)
        problem = next((t.problem for t in trials if t.problem), None)
        if q <= 0 or problem:
            retested += 1
            trials = c.repeat(r, 1, modelled, seed + 500_009, retest_centre(centre, q, trials))
            q2, note = estimate(trials, adjusted=cv)
            notes.append(f"repeat {r} re-tested ({'value 0' if q <= 0 else problem}): {q:.4g} -> {q2:.4g}")
            q = q2
        if note:
            notes.append(f"repeat {r}: {note}")
        per.append(q)
        per_raw.append(estimate(trials, adjusted=False)[0])
    trials_df = pd.DataFrame(c.rows)
    arr = np.asarray(per, float)
    lo, hi, level = median_ci(per, s.confidence)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    notes.insert(0, f"{s.repeats} repeats of fixed-length open-loop trials ({s.min_queries}+ queries and "
                    f"{s.trial_s:g}+ s per chunk, up to {s.max_chunks} chunks) bracketing the modelled {modelled:.4g} "
                    f"(later repeats: the median measured so far); "
                    f"sequential Clopper-Pearson test at {s.confidence:g} on the share over the SLA (nominal: "
                    f"latencies of a queue are correlated); a repeat interpolates the measured p{percentile * 100:g}"
                    + (" adjusted by the node model as a control variate (raw values beside)" if cv else ""))
    dur = trials_df.drop_duplicates("trial")["duration_s"].sum() if len(trials_df) else 0.0
    return Confirmation(
        value=float(np.median(arr)), value_ci_lo=lo, value_ci_hi=hi, value_ci_level=level, value_mean=mean,
        value_std=std, value_cov=std / mean if mean > 0 else math.nan, value_raw=float(np.median(per_raw)),
        per_repeat=[float(x) for x in per], per_repeat_raw=[float(x) for x in per_raw],
        direction={t: float(d) for t, d in direction.items()}, control_variate=cv, repeats=s.repeats,
        retested=retested, n_trials=c.n_trials, trial_seconds=float(dur), modelled=float(modelled),
        sla_ms={t: float(v) for t, v in sla_ms.items()}, percentile=float(percentile), note="; ".join(notes),
        trials=trials_df,
    )


@dataclass(frozen=True)
class OperatingProbe:
    """The service as served at an operating point, measured before a confirmation: ``drift`` is the median over
    its chunks of each chunk's :func:`service_drift` (``chunk_drifts``, in order; NaN when no chunk had a span),
    ``queries`` the measured queries of all chunks offered open-loop at ``rate_qps``, ``seconds`` the wall time
    it took; ``rechecked``: the first chunks' drift was outside the recheck band, so more chunks were taken."""

    rate_qps: float
    queries: int
    drift: float
    seconds: float
    chunk_drifts: tuple[float, ...] = ()
    rechecked: bool = False


def probe_service_drift(sut: Any, base: LoadgenSettings, library_items: int, *, rate_qps: float, sla_ms: float,
                        percentile: float, model: Any, settings: ConfirmSettings | None = None, chunks: int = 1,
                        seed: int = 0, tenant: str = "default", recheck_band: float = 0.0,
                        recheck_chunks: int = RECHECK_CHUNKS) -> OperatingProbe:
    """Offer ``chunks`` chunks of open-loop Poisson load at ``rate_qps``, each exactly like a confirmation trial's
    (``settings.min_queries`` measured queries and ``settings.trial_s`` seconds of arrivals after the warm-up of
    ``base``), and measure only how fast the node served them against ``model`` (a
    :class:`hera.queueing.qps.TailModel`): the service drift, not a latency. Its seeds are its own (``seed``), so
    the trials of a confirmation that follows are independent of it.

    ``recheck_band`` (≥ 1; 0: never): when the median drift of those chunks is further than this factor from 1
    — the node does not serve as profiled, or one second of the VM was unlike the next — ``recheck_chunks``
    more chunks follow and the probe's drift is the median over all of them (one chunk's drift moves by ±10–40%
    from one second to the next on a shared VM; the median of three follows the trials' speed about twice as
    closely, docs/DESIGN.md "Operating-point probe")."""
    if not (math.isfinite(rate_qps) and rate_qps > 0):
        raise ConfigError(f"operating probe: the rate must be a positive number of queries/s, not {rate_qps!r}")
    if int(chunks) < 1:
        raise ConfigError(f"operating probe: chunks must be an integer >= 1, not {chunks!r}")
    band = float(recheck_band)
    if not (band == 0.0 or band >= 1.0) or int(recheck_chunks) < 0:
        raise ConfigError(f"operating probe: the recheck band must be 0 (never) or a factor >= 1, not "
                          f"{recheck_band!r}, and the recheck chunks >= 0, not {recheck_chunks!r}")
    s = settings or ConfirmSettings()
    run = _Confirmer(sut, {tenant: base}, {tenant: int(library_items)}, {tenant: 1.0}, {tenant: float(sla_ms)},
                     float(percentile), s, None, {tenant: model})
    t0 = time.perf_counter()
    drifts: list[float] = []
    queries = 0

    def take(k: int) -> None:
        nonlocal queries
        rows = run._chunk(float(rate_qps), int(seed) + 7919 * k).rows
        _, drift, measured = _replayed(model, [rows[rows["tenant"] == tenant]])
        drifts.append(float(drift))
        queries += sum(measured)

    for k in range(int(chunks)):
        take(k)
    rechecked = band >= 1.0 and outside_band(_median_drift(drifts), band) and int(recheck_chunks) > 0
    if rechecked:
        for k in range(int(chunks), int(chunks) + int(recheck_chunks)):
            take(k)
    return OperatingProbe(float(rate_qps), queries, _median_drift(drifts), time.perf_counter() - t0,
                          tuple(drifts), rechecked)


def chunk_drifts(sut: Any, base: LoadgenSettings, library_items: int, *, rate_qps: float, sla_ms: float,
                 percentile: float, models: list[Any], settings: ConfirmSettings | None = None, seed: int = 0,
                 tenant: str = "default") -> list[float]:
    """One operating-probe chunk at ``rate_qps`` (as :func:`probe_service_drift` offers it) and its service drift
    against each of ``models`` (:class:`hera.queueing.qps.TailModel`, e.g. one law with and without a term): the
    same measured seconds, replayed through every model."""
    if not (math.isfinite(rate_qps) and rate_qps > 0) or not models:
        raise ConfigError(f"chunk drifts: need a positive rate and at least one model, not {rate_qps!r}, {models!r}")
    run = _Confirmer(sut, {tenant: base}, {tenant: int(library_items)}, {tenant: 1.0}, {tenant: float(sla_ms)},
                     float(percentile), settings or ConfirmSettings(), None, {tenant: models[0]})
    rows = run._chunk(float(rate_qps), int(seed)).rows
    mine = [rows[rows["tenant"] == tenant]]
    return [float(_replayed(m, mine)[1]) for m in models]


def outside_band(drift: float, band: float) -> bool:
    """Is ``drift`` further than the factor ``band`` (≥ 1) from 1 (a NaN drift is: nothing was measured)?"""
    return not (math.isfinite(drift) and drift > 0) or abs(math.log(drift)) > math.log(band) + 1e-12


def _median_drift(drifts: list[float]) -> float:
    """The median of the finite drifts (NaN without any)."""
    ok = [d for d in drifts if math.isfinite(d) and d > 0]
    return float(np.median(ok)) if ok else math.nan


def confirm_qps_star(sut: Any, base: LoadgenSettings, library_items: int, *, modelled_qps: float, sla_ms: float,
                     percentile: float, settings: ConfirmSettings | None = None, tenant: str = "default",
                     model: Any = None, guide: Callable[[float], float] | None = None,
                     log: Callable[[str], None] | None = None) -> Confirmation:
    """Measure QPS* of one tenant of ``sut`` around ``modelled_qps`` (:func:`confirm_point` with direction 1:
    ``value`` is the rate); ``model`` (a :class:`hera.queueing.qps.TailModel`) adds the control variate,
    ``guide`` (modelled QPS* for a service drift against it) may lengthen a bracketing step."""
    joint = None if guide is None else (lambda drift: guide(drift[tenant]))
    return confirm_point(sut, {tenant: base}, {tenant: int(library_items)}, direction={tenant: 1.0},
                         modelled=modelled_qps, sla_ms={tenant: sla_ms}, percentile=percentile, settings=settings,
                         models={tenant: model}, guide=joint, log=log)
