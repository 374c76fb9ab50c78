"""QPS*: the highest Poisson arrival rate at which a tail-latency percentile stays within the SLA.

Search (per repeat):

1. **Bracket** from ``start_qps``: double while trials pass (or halve while they fail) until one rate
   passes and the next fails.
2. **Bisect** the bracket until ``(hi − lo) / lo ≤ rel_tol``; QPS* of the repeat is the highest passing rate.
3. **Repeat** ``repeats`` times with different arrival seeds (``arrival_seed + 1000·r``): repeat 0 searches
   from ``start_qps``; later repeats re-bracket around repeat 0's answer (the bracket widened by
   ``2·rel_tol``, then extended by halving/doubling if it does not hold) and bisect again. The result
   reports the mean, min/max, standard deviation and a Student-t 95% interval of the per-repeat QPS*.

A **trial** at rate λ runs ``max(min_queries, λ·min_duration_s)`` measured queries and applies MLPerf's
early-stopping rule (``stats.early_stopping``, 99% confidence, failed queries count as over the bound):
``pass``; ``fail`` (the data reject the claim, or the run was cut short because more queries missed the
bound than even ``max_queries`` could absorb, or ``max_outstanding`` was hit); ``undecided`` → the trial
is run again with twice the queries, up to ``max_queries``, after which it counts as a fail (not proven).
Each trial row also carries the harness's CPU use and whether it saturated (``HARNESS_COLUMNS``,
:mod:`hera.loadgen.harness`); the verdict does not depend on them.

Trials here last seconds, far below MLPerf's 600 s minimum run; every result says so in ``note``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.special import stdtrit  # Student's t quantile without importing scipy.stats

from hera.errors import ConfigError
from hera.loadgen import driver
from hera.loadgen.settings import LoadgenSettings

MLPERF_MIN_DURATION_S = 600.0
# Halving the rate must lower the failing tail latency by at least this fraction; when it did not, FLAT_TAIL_HALVINGS
# times in a row, the descent stops (lo = 0): at low load the tail is the service time of the large queries and
# no lower rate brings it under the SLA. Two in a row, because one trial's tail can spike on a shared VM.
FLAT_TAIL_GAIN = 0.05
FLAT_TAIL_HALVINGS = 2
# the harness's cost and verdict in every trial row (hera.loadgen.harness)
HARNESS_COLUMNS = ("harness", "harness_cores", "harness_cpu_s", "harness_cpu_util", "harness_thread_util_max",
                   "harness_busiest", "completion_lag_ms_p99", "harness_saturated", "harness_saturation_reason")


def tail_flat(pct_before: float, pct_after: float, sla_ms: float) -> bool:
    """After halving the load: is the tail (``pct_after``, ms) still above the SLA and not ``FLAT_TAIL_GAIN``
    lower than before (``pct_before``)? NaN on either side counts as not flat."""
    return pct_after > sla_ms and pct_after >= (1.0 - FLAT_TAIL_GAIN) * pct_before


@dataclass
class SearchResult:
    """QPS* over ``repeats`` searches, with every trial as a tidy row (``trials``)."""

    qps_star: float
    qps_star_lo: float
    qps_star_hi: float
    qps_star_std: float
    qps_star_ci95_lo: float
    qps_star_ci95_hi: float
    repeats: int
    per_repeat: list[float]
    queries_per_trial: int
    max_queries_per_trial: int
    sla_ms: float
    percentile: float
    rel_tol: float
    n_trials: int
    trial_seconds_median: float
    note: str
    trials: pd.DataFrame = field(repr=False)

    def to_row(self) -> dict[str, Any]:
        """The scalar fields (for ``profile/scalability.csv``-like tables)."""
        d = {k: v for k, v in asdict(self).items() if k not in ("trials", "per_repeat")}
        d["per_repeat"] = ";".join(f"{x:.6g}" for x in self.per_repeat)
        return d

    def write(self, trials_path: str | Path, config: dict[str, Any] | None = None) -> Path:
        """Write the trial rows (one per trial) with provenance; the summary goes into the sidecar config."""
        from hera.provenance import write_table

        cfg = dict(config or {})
        cfg["qps_star"] = self.to_row()
        return write_table(self.trials, trials_path, config=cfg)


class _Searcher:
    def __init__(self, sut, base: LoadgenSettings, library_items, tenant: str, sla_ms: float,
                 percentile: float, min_queries: int, min_duration_s: float, max_queries: int,
                 max_trials: int, log):
        self.sut, self.base, self.library_items, self.tenant = sut, base, library_items, tenant
        self.sla_ms, self.percentile = sla_ms, percentile
        self.min_queries, self.min_duration_s, self.max_queries = min_queries, min_duration_s, max_queries
        self.max_trials, self.log = max_trials, log
        self.rows: list[dict[str, Any]] = []
        self.flat_tail: tuple[float, float] | None = None  # (rate, tail ms) where halving stopped helping

    def _sut(self):
        if hasattr(self.sut, "issue"):
            return self.sut, False
        return self.sut(), True

    def trial(self, rate: float, repeat: int, seed: int, phase: str) -> bool:
        if len(self.rows) >= self.max_trials:
            raise ConfigError(f"QPS* search: more than max_trials={self.max_trials} trials; loosen rel_tol")
        n = max(self.min_queries, int(math.ceil(rate * self.min_duration_s)))
        n = min(n, self.max_queries) if self.max_queries >= self.min_queries else n
        attempt = 0
        while True:
            idle = getattr(self.sut, "wait_idle", None)
            if idle is not None:  # the previous (possibly overloaded) trial's backlog must not leak in
                idle()
            s = self.base.replace(target_qps=float(rate), n_queries=int(n), duration_s=None, min_queries=0,
                                  min_duration_s=0.0, latency_bound_ms=float(self.sla_ms),
                                  percentile=self.percentile, arrival="poisson", arrival_trace=None,
                                  arrival_formula=None, arrival_seed=int(seed))
            sut, owned = self._sut()
            try:
                res = driver.run(sut, s, self.library_items, tenant=self.tenant, abort_on_fail=True,
                                 abort_budget_queries=self.max_queries)
            finally:
                if owned and hasattr(sut, "close"):
                    sut.close()
            sm = res.tenants[self.tenant]
            verdict = "fail" if res.summary["aborted"] else sm["early_stopping_verdict"]
            tag = f"p{self.percentile * 100:g}".replace(".", "_")
            row = {
                "repeat": repeat, "arrival_seed": seed, "phase": phase, "attempt": attempt,
                "rate_qps": float(rate), "n_queries": int(n), "n_measured": sm["n_measured"],
                "n_ok": sm["n_ok"], "n_failed": sm["n_failed"], "n_not_issued": sm["n_not_issued"],
                "duration_s": sm["duration_s"],
                "achieved_qps": sm["achieved_qps"], "latency_ms_p50": sm["latency_ms_p50"],
                "percentile": self.percentile, "latency_ms_pct": sm[f"latency_ms_{tag}"],
                "latency_ms_pct_lo": sm[f"latency_ms_{tag}_lo"],
                "latency_ms_pct_hi": sm[f"latency_ms_{tag}_hi"],
                "sla_ms": self.sla_ms, "n_over_bound": sm["n_over_bound"],
                "early_stopping_needed": sm["early_stopping_needed"], "verdict": verdict,
                "passed": verdict == "pass", "aborted": res.summary["aborted"],
                "abort_reason": res.summary["abort_reason"],
                "issue_lateness_us_p99": sm["issue_lateness_us_p99"], "wall_s": res.summary["wall_s"],
                "shorter_than_mlperf_min": sm["duration_s"] < MLPERF_MIN_DURATION_S,
                **{k: sm.get(k) for k in HARNESS_COLUMNS},
            }
            self.rows.append(row)
            if self.log:
                self.log(
                    f"repeat {repeat} {phase:7s} {rate:10.2f} qps  n={n:5d}  "
                    f"p{self.percentile * 100:g}={row['latency_ms_pct']:.2f} ms (sla {self.sla_ms:g})  "
                    f"over={row['n_over_bound']}  {verdict}"
                )
            if verdict == "undecided" and n < self.max_queries:
                n = min(2 * n, self.max_queries)
                attempt += 1
                continue
            return verdict == "pass"

    def up(self, lo: float, repeat: int, seed: int, max_qps: float) -> tuple[float, float]:
        """``lo`` passed: double until a rate fails (or ``max_qps`` passes: hi = inf)."""
        while True:
            if lo >= max_qps:
                return lo, math.inf
            r2 = min(2 * lo, max_qps)
            if self.trial(r2, repeat, seed, "bracket"):
                lo = r2
            else:
                return lo, r2

    def last_pct(self) -> float:
        """The tail latency (ms) of the last trial's last attempt (NaN before any)."""
        return float(self.rows[-1]["latency_ms_pct"]) if self.rows else math.nan

    def down(self, hi: float, repeat: int, seed: int, min_qps: float) -> tuple[float, float]:
        """``hi`` failed: halve until a rate passes (or falls below ``min_qps``: lo = 0).

        Also lo = 0 when halving the rate, ``FLAT_TAIL_HALVINGS`` times in a row, left the tail latency above
        the SLA and did not lower it by ``FLAT_TAIL_GAIN``: the tail is then set by service times, not by
        queueing, and lower rates would only make every trial longer (``self.flat_tail`` records it)."""
        pct_hi = self.last_pct() if self.rows and self.rows[-1]["rate_qps"] == hi else math.nan
        flat = 0
        while True:
            r2 = hi / 2
            if r2 < min_qps:
                return 0.0, hi
            if self.trial(r2, repeat, seed, "bracket"):
                return r2, hi
            pct = self.last_pct()
            flat = flat + 1 if tail_flat(pct_hi, pct, self.sla_ms) else 0
            if flat >= FLAT_TAIL_HALVINGS:
                self.flat_tail = (r2, pct)
                return 0.0, r2
            hi, pct_hi = r2, pct

    def bracket_from(self, start: float, repeat: int, seed: int, min_qps: float, max_qps: float):
        """(lo, hi): lo passes (0.0 if nothing down to min_qps did), hi fails (inf if max_qps passed)."""
        if self.trial(start, repeat, seed, "bracket"):
            return self.up(start, repeat, seed, max_qps)
        return self.down(start, repeat, seed, min_qps)

    def bisect(self, lo: float, hi: float, rel_tol: float, repeat: int, seed: int) -> float:
        while lo > 0 and math.isfinite(hi) and (hi - lo) / lo > rel_tol:
            mid = (lo + hi) / 2
            if self.trial(mid, repeat, seed, "bisect"):
                lo = mid
            else:
                hi = mid
        return lo

    def rebracket(self, lo0: float, hi0: float, w: float, repeat: int, seed: int, min_qps: float,
                  max_qps: float) -> tuple[float, float]:
        """A bracket for a later repeat around an earlier one's ``(lo0, hi0)``, widened by ``w``."""
        lo, hi = lo0 / (1 + w), min(hi0 * (1 + w), max_qps)
        if not self.trial(lo, repeat, seed, "bracket"):
            return self.down(lo, repeat, seed, min_qps)
        if hi > lo and self.trial(hi, repeat, seed, "bracket"):
            return self.up(hi, repeat, seed, max_qps)
        return lo, hi


def find_qps_star(sut: Any, base: LoadgenSettings, library_items: int, *, sla_ms: float | None = None,
                  percentile: float | None = None, start_qps: float | None = None, rel_tol: float = 0.05,
                  repeats: int = 3, min_queries: int | None = None, min_duration_s: float | None = None,
                  max_queries: int | None = None, min_qps: float | None = None, max_qps: float = math.inf,
                  max_trials: int = 200, tenant: str = "default",
                  log: Callable[[str], None] | None = None) -> SearchResult:
    """Search QPS* of ``sut``: a SUT, or a zero-argument factory that makes a fresh one per trial.

    ``base`` supplies query sizes, seeds, warmup, ``max_outstanding`` and defaults: ``sla_ms`` ←
    ``base.latency_bound_ms``, ``percentile`` ← ``base.percentile``, ``start_qps`` ← ``base.target_qps``,
    ``min_queries`` ← ``base.min_queries`` (at least the early-stopping minimum for zero misses),
    ``min_duration_s`` ← ``base.min_duration_s``; ``max_queries`` defaults to 4 × ``min_queries``.
    """
    sla = sla_ms if sla_ms is not None else base.latency_bound_ms
    if sla is None or not sla > 0:
        raise ConfigError("QPS* search needs a positive sla_ms (or latency_bound_ms in the settings)")
    p = base.percentile if percentile is None else percentile
    if not 0 < p < 1:
        raise ConfigError(f"QPS* search: percentile must be in (0, 1), got {p}")
    from hera.loadgen.stats import early_stopping_min_queries

    floor_q = early_stopping_min_queries(0, p)
    mq = max(min_queries if min_queries is not None else base.min_queries, floor_q)
    md = base.min_duration_s if min_duration_s is None else float(min_duration_s)
    cap = max(max_queries if max_queries is not None else 4 * mq, mq)
    start = float(start_qps if start_qps is not None else base.target_qps)
    lo_lim = float(min_qps) if min_qps is not None else start / 1024
    if not (start > 0 and rel_tol > 0 and repeats >= 1 and lo_lim > 0 and max_qps >= start):
        raise ConfigError("QPS* search: need start_qps > 0, rel_tol > 0, repeats >= 1, 0 < min_qps, "
                          "max_qps >= start_qps")
    if not hasattr(sut, "issue") and not callable(sut):
        raise ConfigError(f"{type(sut).__name__} is neither a SUT nor a SUT factory")

    s = _Searcher(sut, base, library_items, tenant, float(sla), float(p), mq, md, cap, max_trials, log)
    per: list[float] = []
    lo0 = hi0 = None
    for r in range(repeats):
        seed = base.arrival_seed + 1000 * r
        if r == 0:
            lo, hi = s.bracket_from(start, r, seed, lo_lim, max_qps)
            lo0, hi0 = lo, hi
        elif lo0 and math.isfinite(hi0):
            lo, hi = s.rebracket(lo0, hi0, 2 * rel_tol, r, seed, lo_lim, max_qps)
        else:  # repeat 0 found no finite bracket: search from scratch
            lo, hi = s.bracket_from(start, r, seed, lo_lim, max_qps)
        per.append(s.bisect(lo, hi, rel_tol, r, seed))

    trials = pd.DataFrame(s.rows)
    arr = np.asarray(per, float)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if arr.size > 1 else math.nan
    if arr.size > 1:
        half = float(stdtrit(arr.size - 1, 0.975)) * std / math.sqrt(arr.size)
        ci = (mean - half, mean + half)
    else:
        ci = (math.nan, math.nan)
    med_s = float(trials["duration_s"].median()) if len(trials) else math.nan
    note = (
        f"trials of {mq}-{cap} queries (median {med_s:.2f} s of arrivals) are far shorter than MLPerf's "
        f"{MLPERF_MIN_DURATION_S:.0f} s minimum run; pass/fail is MLPerf's early-stopping rule at 99% "
        f"nominal confidence (binomial; queueing latencies are correlated); QPS* is the highest passing "
        f"rate within rel_tol={rel_tol:g}, over {repeats} repeat(s) with different arrival seeds"
    )
    if mean == 0.0 and s.flat_tail is not None:
        r0, p0 = s.flat_tail
        note += (f"; SLA not met at low load: the tail stayed at {p0:.2f} ms > SLA {sla:g} ms when the rate was "
                 f"halved to {r0:g} qps (service-time bound, lower rates not tried)")
    elif mean == 0.0:
        note += f"; no rate down to {lo_lim:g} qps met the SLA"
    return SearchResult(
        qps_star=mean, qps_star_lo=float(arr.min()), qps_star_hi=float(arr.max()), qps_star_std=std,
        qps_star_ci95_lo=ci[0], qps_star_ci95_hi=ci[1], repeats=repeats, per_repeat=[float(x) for x in per],
        queries_per_trial=mq, max_queries_per_trial=cap, sla_ms=float(sla), percentile=float(p),
        rel_tol=rel_tol, n_trials=len(trials), trial_seconds_median=med_s, note=note, trials=trials,
    )
