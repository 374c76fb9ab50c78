"""Measured confirmation of a modelled QPS*: the ground truth, found quickly because the model says where to look.

For each of ``repeats`` independent repeats (their own arrival, size and sample seeds):

1. **Trials** are fixed-length open-loop Poisson runs: a *chunk* has at least ``min_queries`` measured queries
   and ``trial_s`` seconds of arrivals (after warm-up queries that are not measured). After each chunk a
   **sequential test** asks whether the share of queries over the SLA is below or above ``1 − percentile``
   (exact Clopper–Pearson interval at ``confidence``; failed queries count as over): *pass* if the whole
   interval is below, *fail* if it is above; otherwise the trial goes on with another chunk (new seeds, pooled)
   up to ``max_chunks``, after which its side is decided by the pooled tail latency against the SLA and the
   trial is marked ``undecided``. Trials are not cut short when they start to miss (the tail above the SLA is
   measured too, for the interpolation below), except a runaway one whose backlog reaches half its queries:
   it fails with its tail unmeasured.
2. **Bracketing**: the first two trials run at ``modelled × (1 ∓ step)``; further rates step down
   (``÷ (1 + step)``) until one passes or up (``× (1 + step)``) until one fails, at most ``max_steps`` more; a
   failing rate whose tail could not be measured (cut short) is bisected towards the passing one.
3. **Estimate**: QPS* of the repeat is where the measured tail latency crosses the SLA between the highest
   passing and the lowest failing rate (:func:`crossing`) — a continuous quantity, not one bit per trial.
4. **Re-test**: a repeat that found no passing rate (QPS* = 0), or had a trial with failed queries or a saturated
   harness, is run once more with new seeds; the row says so (``retested``), nothing is averaged in silently.

Result: the median over repeats, a distribution-free confidence interval for it from order statistics (its
level depends on the number of repeats and is reported: [min, max] of 3 repeats is a 75% interval), the mean,
standard deviation and coefficient of variation, and every trial as a tidy row.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.stats import beta, binom

from hera.errors import ConfigError
from hera.loadgen import driver
from hera.loadgen.settings import LoadgenSettings

#: A trial whose backlog reaches this share of its queries (at least RUNAWAY_MIN_OUTSTANDING queries in flight) is
#: overloaded far beyond QPS*: it stops issuing (the driver's ``max_outstanding``) and fails with its tail unmeasured.
RUNAWAY_BACKLOG_SHARE = 0.5
RUNAWAY_MIN_OUTSTANDING = 20


@dataclass(frozen=True)
class ConfirmSettings:
    """How a modelled QPS* is confirmed (config section ``confirm``)."""

    repeats: int = 3
    confidence: float = 0.95
    trial_s: float = 2.0
    min_queries: int = 120
    max_chunks: int = 3
    step: float = 0.1
    max_steps: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.repeats, int) or self.repeats < 3:
            raise ConfigError(f"confirmation: repeats must be an integer >= 3, got {self.repeats!r}")
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(f"confirmation: confidence must be in [0.5, 1), got {self.confidence!r}")
        if not self.trial_s > 0 or self.min_queries < 20 or self.max_chunks < 1:
            raise ConfigError("confirmation: need trial_s > 0, min_queries >= 20, max_chunks >= 1")
        if not 0 < self.step <= 1 or self.max_steps < 1:
            raise ConfigError("confirmation: need 0 < step <= 1 and max_steps >= 1")

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ConfirmSettings":
        c = config["confirm"]
        return cls(repeats=int(c["repeats"]), confidence=float(c["confidence"]), trial_s=float(c["trial_s"]),
                   min_queries=int(c["min_queries"]), max_chunks=int(c["max_chunks"]), step=float(c["step"]),
                   max_steps=int(c["max_steps"]))


def miss_interval(n_over: int, n: int, confidence: float) -> tuple[float, float]:
    """Clopper–Pearson interval of the share of queries over the bound."""
    if n <= 0:
        return 0.0, 1.0
    a = 1 - confidence
    lo = 0.0 if n_over == 0 else float(beta.ppf(a / 2, n_over, n - n_over + 1))
    hi = 1.0 if n_over == n else float(beta.ppf(1 - a / 2, n_over + 1, n - n_over))
    return lo, hi


UNMEASURED_MS = 1e12  # stands in for a failed query's latency (+inf) inside a quantile


def tail_quantile(latency_ms: np.ndarray, p: float) -> float:
    """The p-quantile of latencies where failed queries are +inf (inf when it falls on one of them)."""
    if latency_ms.size == 0:
        return math.inf
    q = float(np.quantile(np.minimum(latency_ms, UNMEASURED_MS), p))
    return math.inf if q >= UNMEASURED_MS / 10 else q


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
    best = (1, 1 - 2 * binom.cdf(0, n, 0.5))
    for k in range(1, n // 2 + 1):
        level = 1 - 2 * binom.cdf(k - 1, n, 0.5)
        if level >= confidence:
            best = (k, level)
    k, level = best
    return float(x[k - 1]), float(x[n - k]), float(level)


@dataclass
class ConfirmResult:
    """A confirmed (measured) QPS* and how it was obtained."""

    qps_star: float
    qps_star_ci_lo: float
    qps_star_ci_hi: float
    qps_star_ci_level: float
    qps_star_mean: float
    qps_star_std: float
    qps_star_cov: float
    qps_star_raw: float
    per_repeat: list[float]
    per_repeat_raw: list[float]
    control_variate: bool
    repeats: int
    retested: int
    n_trials: int
    trial_seconds: float
    modelled_qps: float
    sla_ms: float
    percentile: float
    note: str
    trials: pd.DataFrame = field(repr=False)

    def to_row(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("trials", "per_repeat", "per_repeat_raw")}
        d["per_repeat"] = ";".join(f"{x:.6g}" for x in self.per_repeat)
        d["per_repeat_raw"] = ";".join(f"{x:.6g}" for x in self.per_repeat_raw)
        return d


@dataclass
class _Trial:
    """One trial's outcome (its full row goes to the trial table)."""

    rate_qps: float
    verdict: str        # pass | fail | undecided-pass | undecided-fail (sequential test on the raw share over)
    tail_ms: float      # the tail used for bracketing: control-variate adjusted when a model is given, else raw
    raw_tail_ms: float  # pooled measured latency quantile (inf when the tail was not measured)
    passed: bool        # tail_ms <= SLA
    sla_ms: float
    problem: str | None  # failed queries / harness saturated


class _Confirmer:
    def __init__(self, sut: Any, base: LoadgenSettings, library_items: int, tenant: str, sla_ms: float,
                 percentile: float, s: ConfirmSettings, log: Callable[[str], None] | None, model: Any = None):
        self.sut, self.base, self.library_items, self.tenant = sut, base, library_items, tenant
        self.sla_ms, self.p, self.s, self.log, self.model = sla_ms, percentile, s, log, model
        self.rows: list[dict[str, Any]] = []

    def _chunk(self, rate: float, seed_base: int) -> pd.DataFrame:
        n = max(self.s.min_queries, int(math.ceil(rate * self.s.trial_s)))
        idle = getattr(self.sut, "wait_idle", None)
        if idle is not None:  # a previous overloaded trial's backlog must not leak into this one
            idle()
        st = self.base.replace(target_qps=float(rate), n_queries=n, duration_s=None, min_queries=0,
                               min_duration_s=0.0, latency_bound_ms=float(self.sla_ms), percentile=self.p,
                               arrival="poisson", arrival_trace=None, arrival_formula=None,
                               arrival_seed=seed_base % (2**31 - 1), size_seed=(seed_base + 1) % (2**31 - 1),
                               sample_seed=(seed_base + 2) % (2**31 - 1),
                               max_outstanding=max(RUNAWAY_MIN_OUTSTANDING, int(n * RUNAWAY_BACKLOG_SHARE)))
        res = driver.run(self.sut, st, self.library_items, tenant=self.tenant)
        rows = res.rows
        rows.attrs["summary"] = res.summary
        rows.attrs["tenant"] = res.tenants[self.tenant]
        return rows

    def _adjusted(self, rate: float, chunks: list[pd.DataFrame], raw_tail: float) -> tuple[float, float]:
        """(control-variate adjusted tail, correction factor) of a trial; the raw tail without a model."""
        if self.model is None or not np.isfinite(raw_tail):
            return raw_tail, 1.0
        parts = [(c["scheduled_s"].to_numpy(float), c["n_items"].to_numpy(np.int64), ~c["warmup"].to_numpy(bool))
                 for c in chunks]
        realised = self.model.realised_log_tail(parts)
        expected = self.model.expected_log_tail(rate, [int(m.sum()) for _, _, m in parts],
                                                int(self.base.warmup_queries))
        factor = float(np.exp(expected - realised))
        return raw_tail * factor, factor

    def trial(self, repeat: int, attempt: int, rate: float, seed: int) -> _Trial:
        chunks: list[pd.DataFrame] = []
        verdict = "undecided"
        aborted = False
        problems: list[str] = []
        while len(chunks) < self.s.max_chunks:
            c = self._chunk(rate, seed + 7919 * len(chunks))
            chunks.append(c)
            summ, ten = c.attrs["summary"], c.attrs["tenant"]
            c = c[~c["warmup"]]
            if summ.get("aborted"):
                aborted = True
            n_err = int((c["status"] == "error").sum() + (c["status"] == "timeout").sum())
            if n_err:
                problems.append(f"{n_err} failed queries")
            if summ.get("harness_saturated") or ten.get("harness_saturated"):
                problems.append("harness saturated")
            lat = np.concatenate([np.where(x["ok"], x["latency_ms"], np.inf) for x in (y[~y["warmup"]] for y in chunks)])
            n_over = int((lat > self.sla_ms).sum())
            lo, hi = miss_interval(n_over, lat.size, self.s.confidence)
            if aborted or lo > 1 - self.p:
                verdict = "fail"
                break
            if hi < 1 - self.p:
                verdict = "pass"
                break
        raw = tail_quantile(lat, self.p)
        if verdict == "undecided":
            verdict = "undecided-pass" if raw <= self.sla_ms else "undecided-fail"
        tail, factor = self._adjusted(rate, chunks, raw)
        passed = bool(tail <= self.sla_ms) if self.model is not None else verdict in ("pass", "undecided-pass")
        all_rows = pd.concat([x[~x["warmup"]] for x in chunks])
        ok = all_rows["ok"].to_numpy(bool)
        self.rows.append({
            "repeat": repeat, "attempt": attempt, "rate_qps": float(rate), "chunks": len(chunks),
            "n_measured": int(lat.size), "n_ok": int(ok.sum()), "n_over_sla": n_over,
            "miss_fraction": n_over / max(lat.size, 1), "miss_lo": lo, "miss_hi": hi,
            "verdict": verdict, "passed": passed, "aborted": aborted,
            "latency_ms_pct": raw if np.isfinite(raw) else math.nan,
            "latency_ms_pct_adjusted": tail if np.isfinite(tail) else math.nan, "control_variate_factor": factor,
            "sla_ms": self.sla_ms, "percentile": self.p,
            "latency_ms_p50": float(np.median(all_rows.loc[all_rows["ok"], "latency_ms"])) if ok.any() else math.nan,
            "duration_s": float(sum(x.attrs["tenant"].get("duration_s", math.nan) for x in chunks)),
            "wall_s": float(sum(x.attrs["summary"].get("wall_s", math.nan) for x in chunks)),
            "achieved_qps": float(np.nanmean([x.attrs["tenant"].get("achieved_qps", math.nan) for x in chunks])),
            "issue_lateness_us_p99": float(np.nanquantile(all_rows["issue_lateness_us"], 0.99))
            if all_rows["issue_lateness_us"].notna().any() else math.nan,
            "problem": "; ".join(problems) or None, "arrival_seed": int(seed),
        })
        if self.log:
            self.log(f"  repeat {repeat}{'+' if attempt else ''} {rate:9.2f} qps  n={lat.size:5d}  "
                     f"p{self.p * 100:g}={raw:.2f} ms" + (f" (adjusted {tail:.2f})" if self.model is not None else "")
                     + f"  sla {self.sla_ms:.3g}  over={n_over / max(lat.size, 1):.3f}  {verdict}"
                     + (f"  [{'; '.join(problems)}]" if problems else ""))
        return _Trial(rate, verdict, tail, raw, passed, self.sla_ms, "; ".join(problems) or None)

    def _jump(self, done: list[_Trial], edge: _Trial, down: bool) -> float:
        """Factor from ``edge`` (the highest pass when ``not down``, the lowest fail when ``down``) to the next
        rate: the secant of the two trials nearest the crossing on ``1/tail`` (+/- 5%), at least one ``step``
        and at most a factor 2; without a usable secant, ``(1 + step)`` raised to the number of steps already
        taken in that direction (the bracket widens geometrically when the model was far off)."""
        s = self.s
        near = sorted((t for t in done if t is not edge), key=lambda t: abs(math.log(t.rate_qps / edge.rate_qps)))
        target = _secant(edge, near[0], self.sla_ms) if near else math.nan
        lo_f, hi_f = 1 + s.step, 2.0
        if math.isfinite(target) and target > 0:
            f = (edge.rate_qps / target) * 1.05 if down else (target / edge.rate_qps) * 1.05
            f = min(max(f, lo_f), hi_f)
        else:
            same_side = sum(1 for t in done if t.passed != down)  # passes when going up, fails when going down
            f = min(lo_f ** max(1, same_side - 1), hi_f)
        return 1 / f if down else f

    @staticmethod
    def _flat(done: list[_Trial]) -> bool:
        """Did the last two steps down (by rate) leave the raw tail above the SLA and less than ``FLAT_TAIL_GAIN``
        lower each time (:func:`hera.loadgen.search.tail_flat`)?"""
        from hera.loadgen.search import FLAT_TAIL_HALVINGS, tail_flat

        by_rate = sorted(done, key=lambda t: t.rate_qps)[:FLAT_TAIL_HALVINGS + 1]
        if len(by_rate) < FLAT_TAIL_HALVINGS + 1:
            return False
        return all(tail_flat(hi.raw_tail_ms, lo.raw_tail_ms, lo.sla_ms)
                   for lo, hi in zip(by_rate, by_rate[1:]))

    def repeat(self, repeat: int, attempt: int, modelled: float, seed: int) -> list[_Trial]:
        """The trials of one repeat: bracket the SLA crossing starting from ``modelled × (1 ∓ step)``."""
        s = self.s
        up, down = 1 + s.step, 1 / (1 + s.step)
        done: list[_Trial] = []

        def run(rate: float) -> None:
            done.append(self.trial(repeat, attempt, rate, seed + 104729 * len(done)))

        run(modelled * (1 - s.step))
        run(modelled * (1 + s.step))
        for _ in range(s.max_steps):
            passes = [t for t in done if t.passed]
            if not passes:
                lowest = min(done, key=lambda t: t.rate_qps)
                if self._flat(done):
                    break  # lower rates stopped lowering the tail: service-time bound, no rate will pass
                run(lowest.rate_qps * self._jump(done, lowest, down=True))
                continue
            lo = max(passes, key=lambda t: t.rate_qps)
            above = [t for t in done if not t.passed and t.rate_qps > lo.rate_qps]
            if not above:
                run(lo.rate_qps * self._jump(done, lo, down=False))
                continue
            hi = min(above, key=lambda t: t.rate_qps)
            if not np.isfinite(hi.tail_ms) and hi.rate_qps / lo.rate_qps > 1 + s.step / 2:
                run(math.sqrt(hi.rate_qps * lo.rate_qps))  # the failing tail was not measured: bisect
                continue
            break
        return done


def _secant(a: "_Trial", b: "_Trial", sla_ms: float) -> float:
    """The rate where the line through ``(rate, 1/tail)`` of two trials reaches ``1/sla_ms`` (NaN if undefined)."""
    if not (np.isfinite(a.tail_ms) and np.isfinite(b.tail_ms)) or a.rate_qps == b.rate_qps:
        return math.nan
    slope = (1 / b.tail_ms - 1 / a.tail_ms) / (b.rate_qps - a.rate_qps)
    if slope >= 0:
        return math.nan
    return a.rate_qps + (1 / sla_ms - 1 / a.tail_ms) / slope


def estimate(trials: list[_Trial], sla_ms: float, adjusted: bool = True) -> tuple[float, str]:
    """QPS* of one repeat from its trials: the SLA crossing between the highest rate whose tail is within the SLA
    and the lowest rate above it whose tail is not (``adjusted``: control-variate tails, else raw ones)."""
    tail = (lambda t: t.tail_ms) if adjusted else (lambda t: t.raw_tail_ms)
    passes = [t for t in trials if tail(t) <= sla_ms]
    if not passes:
        return 0.0, f"no rate down to {min(t.rate_qps for t in trials):.3g} queries/s met the SLA"
    lo = max(passes, key=lambda t: t.rate_qps)
    above = [t for t in trials if not tail(t) <= sla_ms and t.rate_qps > lo.rate_qps]
    if not above:
        return lo.rate_qps, f"every rate up to {lo.rate_qps:.3g} queries/s met the SLA (QPS* at least that)"
    hi = min(above, key=lambda t: t.rate_qps)
    note = "" if np.isfinite(tail(hi)) else "tail of the failing rate not measured: highest passing rate"
    return crossing(lo.rate_qps, tail(lo), hi.rate_qps, tail(hi), sla_ms), note


def confirm_qps_star(sut: Any, base: LoadgenSettings, library_items: int, *, modelled_qps: float, sla_ms: float,
                     percentile: float, settings: ConfirmSettings | None = None, tenant: str = "default",
                     model: Any = None, log: Callable[[str], None] | None = None) -> ConfirmResult:
    """Measure QPS* of ``sut`` around ``modelled_qps`` (module doc). ``base`` gives query sizes, warm-up and
    the seeds every repeat's seeds derive from; ``model`` (a :class:`hera.queueing.qps.TailModel`) adds the
    control variate, without it tails are used raw."""
    s = settings or ConfirmSettings()
    if not (modelled_qps > 0 and math.isfinite(modelled_qps)):
        raise ConfigError(f"confirmation needs a positive modelled QPS*, got {modelled_qps!r} (tenant {tenant!r})")
    if not sla_ms > 0 or not 0 < percentile < 1:
        raise ConfigError("confirmation needs a positive sla_ms and a percentile in (0, 1)")
    c = _Confirmer(sut, base, library_items, tenant, float(sla_ms), float(percentile), s, log, model)
    per: list[float] = []
    per_raw: list[float] = []
    notes: list[str] = []
    retested = 0
    for r in range(s.repeats):
        seed = base.arrival_seed + 1_000_003 * (r + 1)
        trials = c.repeat(r, 0, modelled_qps, seed)
        q, note = estimate(trials, sla_ms, adjusted=model is not None)
        problem = next((t.problem for t in trials if t.problem), None)
        if q <= 0 or problem:
            retested += 1
            trials = c.repeat(r, 1, modelled_qps, seed + 500_009)
            q2, note = estimate(trials, sla_ms, adjusted=model is not None)
            notes.append(f"repeat {r} re-tested ({'QPS* = 0' if q <= 0 else problem}): {q:.4g} -> {q2:.4g} queries/s")
            q = q2
        if note:
            notes.append(f"repeat {r}: {note}")
        per.append(q)
        per_raw.append(estimate(trials, sla_ms, adjusted=False)[0])
    trials_df = pd.DataFrame(c.rows)
    arr = np.asarray(per, float)
    lo, hi, level = median_ci(per, s.confidence)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    notes.insert(0, f"{s.repeats} repeats of fixed-length open-loop trials ({s.min_queries}+ queries and "
                    f"{s.trial_s:g}+ s per chunk, up to {s.max_chunks} chunks) bracketing the modelled "
                    f"{modelled_qps:.4g} queries/s; sequential Clopper-Pearson test at {s.confidence:g} on the share "
                    f"over the SLA (nominal: latencies of a queue are correlated); QPS* of a repeat interpolates "
                    f"the measured p{percentile * 100:g}"
                    + (" adjusted by the node model as a control variate (raw values beside)" if model is not None
                       else ""))
    return ConfirmResult(
        qps_star=float(np.median(arr)), qps_star_ci_lo=lo, qps_star_ci_hi=hi, qps_star_ci_level=level,
        qps_star_mean=mean, qps_star_std=std, qps_star_cov=std / mean if mean > 0 else math.nan,
        qps_star_raw=float(np.median(per_raw)), per_repeat=[float(x) for x in per],
        per_repeat_raw=[float(x) for x in per_raw], control_variate=model is not None, repeats=s.repeats,
        retested=retested, n_trials=len(trials_df),
        trial_seconds=float(trials_df["duration_s"].sum()) if len(trials_df) else 0.0,
        modelled_qps=float(modelled_qps), sla_ms=float(sla_ms), percentile=float(percentile),
        note="; ".join(notes), trials=trials_df,
    )
