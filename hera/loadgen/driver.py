"""The open-loop driver: pre-computed schedule, precise issue timer, per-query tidy rows and a summary.

1. :func:`build_schedule` draws every tenant's whole stream from its seeds before the run — arrival
   times (``hera.workload.arrivals``), query sizes (``hera.workload.sizes``) and sample starts (uniform
   in ``[0, library_items − size]``) — and merges the streams into one time-ordered schedule.
2. :func:`run` issues each query at its scheduled time: it sleeps until about 0.5 ms before, then spins
   on ``time.monotonic_ns()`` (yielding the GIL while it spins). Issuing never waits for completions
   (open loop); a SUT whose ``issue`` blocks shows up as issue lateness, which is recorded per query.
3. Latency is ``t_end_ns − scheduled_ns``: measured from the *scheduled* arrival, so a late issue or a
   slow SUT cannot hide queueing delay (no coordinated omission).
4. After the last issue it waits (``completion_timeout_s``) for queries in flight; those that never
   complete are reported as ``timeout`` failures and later callbacks are ignored (counted as
   ``late_completions``). ``max_outstanding`` in flight for a tenant aborts the run (``not_issued`` rows).
5. Where the SUT offers a load-generator process (a local node through ``NodeSUT``), steps 2–4 run in that
   process (:mod:`hera.loadgen.process`), off the node's GIL; elsewhere in the calling thread. Either way the
   summary records the harness's CPU time and whether it saturated (:mod:`hera.loadgen.harness`).

Failed queries (``error``, ``timeout``, ``not_issued``) are excluded from latency percentiles and
counted as over the latency bound by the early-stopping rule.
"""

from __future__ import annotations

import ast
import functools
import gc
import math
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from hera.errors import ConfigError, HeraError
from hera.loadgen import harness, stats
from hera.loadgen.runstate import RunState
from hera.loadgen.settings import LoadgenSettings

SPIN_NS = 50_000  # sleep until this close to the scheduled time, then spin (short: on a small
# machine every core may run a worker, and a spinning issuer would steal its cycles)
LATENCY_PERCENTILES = (0.50, 0.90, 0.95, 0.99)


# ------------------------------------------------------------------------------------------- schedule
def stream_rng(seed: int, tenant: str) -> np.random.Generator:
    """The generator for one source of randomness of one tenant: ``default_rng([seed, crc32(tenant)])``."""
    return np.random.default_rng([int(seed), zlib.crc32(tenant.encode())])


_FORMULA_NAMES = {
    "t": None, "pi": np.pi, "e": np.e, "sin": np.sin, "cos": np.cos, "exp": np.exp, "log": np.log,
    "sqrt": np.sqrt, "abs": np.abs, "floor": np.floor, "mod": np.mod, "where": np.where,
    "minimum": np.minimum, "maximum": np.maximum, "clip": np.clip,
}
_FORMULA_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Call, ast.Name, ast.Load, ast.Constant,
                  ast.Compare, ast.operator, ast.unaryop, ast.cmpop)


def rate_function(settings: LoadgenSettings):
    """λ(t) for ``arrival='time_varying'``: a vectorised callable of seconds → queries/s."""
    if settings.arrival_formula is not None:
        src = settings.arrival_formula
        try:
            tree = ast.parse(src, mode="eval")
        except SyntaxError:
            raise ConfigError(f"arrival_formula {src!r} is not a valid expression") from None
        for node in ast.walk(tree):
            if not isinstance(node, _FORMULA_NODES):
                raise ConfigError(f"arrival_formula {src!r}: {type(node).__name__} is not allowed")
            if isinstance(node, ast.Name) and node.id not in _FORMULA_NAMES:
                raise ConfigError(
                    f"arrival_formula {src!r}: unknown name {node.id!r}; known: "
                    + ", ".join(sorted(_FORMULA_NAMES))
                )
        code = compile(tree, "<arrival_formula>", "eval")

        def fn(t):
            t = np.asarray(t, dtype=float)
            val = np.asarray(eval(code, {"__builtins__": {}}, dict(_FORMULA_NAMES, t=t)), dtype=float)
            return np.maximum(np.broadcast_to(val, t.shape), 0.0)  # a constant formula is fine too

        try:
            fn(np.linspace(0.0, settings.duration_s or 1.0, 5))
        except Exception as exc:  # noqa: BLE001 - user expression
            raise ConfigError(f"arrival_formula {src!r} cannot be evaluated: {exc}") from None
        return fn
    from hera.workload.arrivals import Trace

    return Trace.from_csv(settings.arrival_trace)  # CSV t_s,rate_qps, linear; errors name file and line


def _arrivals(settings: LoadgenSettings, tenant: str) -> np.ndarray:
    from hera.workload import arrivals

    rng_seed = settings.arrival_seed
    if settings.arrival == "time_varying":
        t = np.asarray(arrivals.time_varying(rate_function(settings), settings.duration_s,
                                             stream_rng(rng_seed, tenant)), dtype=float)
        if t.size == 0:
            raise ConfigError(f"tenant {tenant!r}: the time-varying rate produced no arrivals")
        return t
    n_min = settings.target_count() + settings.warmup_queries
    dur = settings.target_duration_s()
    mean = settings.target_qps * dur
    n = max(n_min, int(math.ceil(mean + 6 * math.sqrt(mean) + 10)) if dur > 0 else n_min, 1)
    while True:
        t = np.asarray(arrivals.poisson(settings.target_qps, n, stream_rng(rng_seed, tenant)), dtype=float)
        if t.size and t[-1] >= dur:
            break
        n *= 2
    # both conditions (MLPerf): at least n_min queries and arrivals reaching dur
    n_dur = int(np.searchsorted(t, dur, side="left")) + 1 if dur > 0 else 0
    return t[: max(n_min, n_dur)]


def tenant_schedule(settings: LoadgenSettings, library_items: int, tenant: str) -> pd.DataFrame:
    """One tenant's stream: ``scheduled_s, n_items, sample_start, seq, warmup`` (time-ordered)."""
    from hera.workload.sizes import QuerySizes

    if library_items < 1:
        raise ConfigError(f"tenant {tenant!r}: sample library has {library_items} items")
    t = _arrivals(settings, tenant)
    n = int(t.size)
    params = {k: v for k, v in settings.query_sizes.items() if k != "kind"}
    sizes = np.asarray(
        QuerySizes(settings.query_sizes["kind"], settings.max_items, **params).sample(
            n, stream_rng(settings.size_seed, tenant)),
        dtype=np.int64,
    )
    sizes = np.clip(sizes, 1, settings.max_items)
    if n and sizes.max() > library_items:
        raise ConfigError(
            f"tenant {tenant!r}: a query of {int(sizes.max())} items exceeds the sample library's "
            f"{library_items} items (lower max_items)"
        )
    starts = stream_rng(settings.sample_seed, tenant).integers(0, library_items - sizes + 1, dtype=np.int64)
    seq = np.arange(n)
    return pd.DataFrame({
        "tenant": tenant, "seq": seq, "warmup": seq < settings.warmup_queries,
        "scheduled_s": t, "n_items": sizes, "sample_start": starts,
    })


def _as_streams(streams, tenant: str) -> dict[str, LoadgenSettings]:
    if isinstance(streams, LoadgenSettings):
        return {tenant: streams}
    if isinstance(streams, Mapping) and streams and \
            all(isinstance(v, LoadgenSettings) for v in streams.values()):
        return dict(streams)
    raise ConfigError("streams must be LoadgenSettings or a non-empty mapping tenant -> LoadgenSettings")


def _library_of(library_items, tenant: str) -> int:
    if isinstance(library_items, Mapping):
        if tenant not in library_items:
            raise ConfigError(f"no sample-library size given for tenant {tenant!r}")
        return int(library_items[tenant])
    return int(library_items)


def build_schedule(streams: LoadgenSettings | Mapping[str, LoadgenSettings],
                   library_items: int | Mapping[str, int], tenant: str = "default") -> pd.DataFrame:
    """All tenants' streams merged in time order, with a global ``query_id`` (0..n−1) in that order."""
    st = _as_streams(streams, tenant)
    parts = [tenant_schedule(s, _library_of(library_items, name), name) for name, s in st.items()]
    df = pd.concat(parts, ignore_index=True)
    df = df.sort_values(["scheduled_s"], kind="mergesort").reset_index(drop=True)
    df.insert(0, "query_id", np.arange(len(df), dtype=np.int64))
    return df


# -------------------------------------------------------------------------------------------- running
@dataclass
class RunResult:
    """What a run produced: one tidy row per query, an overall summary and one summary per tenant."""

    rows: pd.DataFrame
    summary: dict[str, Any]
    tenants: dict[str, dict[str, Any]]
    settings: dict[str, LoadgenSettings] = field(default_factory=dict)

    def summary_table(self) -> pd.DataFrame:
        """One row per tenant plus ``tenant='all'``."""
        recs = [dict(tenant=k, **v) for k, v in self.tenants.items()]
        if len(self.tenants) > 1:
            recs.append(dict(tenant="all", **self.summary))
        return pd.DataFrame(recs)

    def write(self, rows_path: str | Path, summary_path: str | Path | None = None) -> Path:
        """Write the per-query rows (and optionally the summary table) with provenance sidecars."""
        from hera.provenance import write_table

        cfg = {"loadgen": {k: s.to_dict() for k, s in self.settings.items()}}
        seed = next(iter(self.settings.values())).arrival_seed if self.settings else None
        out = write_table(self.rows, rows_path, config=cfg, seed=seed)
        if summary_path is not None:
            write_table(self.summary_table(), summary_path, config=cfg, seed=seed)
        return out


def run(sut: Any, streams: LoadgenSettings | Mapping[str, LoadgenSettings],
        library_items: int | Mapping[str, int], *, tenant: str = "default",
        schedule: pd.DataFrame | None = None, abort_on_fail: bool = False,
        abort_budget_queries: int | None = None, lead_s: float = 0.005, spin_s: float = SPIN_NS / 1e9,
        disable_gc: bool = True, harness_cores: list[int] | None = None, loadgen_process: bool | None = None,
        harness_limits: harness.HarnessLimits | None = None) -> RunResult:
    """Drive ``sut`` open loop through the merged schedule of ``streams`` and measure every query.

    ``streams``: one :class:`LoadgenSettings` (for the tenant named ``tenant``) or ``{tenant: settings}``.
    ``library_items``: items in each tenant's sample library (an int for all, or a mapping).
    ``abort_on_fail``: stop issuing as soon as the early-stopping rule can no longer pass for some tenant
    (needs ``latency_bound_ms``; used by the QPS* search to cut overloaded trials short): once more queries
    missed the bound than a run of ``abort_budget_queries`` (default: this run's length) could absorb.
    ``lead_s``: delay between the start of the run and the schedule's time 0. ``spin_s``: how long
    before a scheduled time the issuer stops sleeping and spins (more: less lateness, more CPU).
    ``disable_gc``: no cyclic garbage collection while issuing (its pauses would show up as lateness).
    ``loadgen_process``: issue from a load-generator process (:mod:`hera.loadgen.process`) when the SUT offers
    one (``sut.loadgen_process``; a local node's ``NodeSUT`` does); None = whenever offered, False = never.
    ``harness_cores``: CPUs for the load generator (its process, or the issuing thread during the run);
    default: the SUT's. The summary records the harness's CPU use and whether it saturated
    (:mod:`hera.loadgen.harness`, limits ``harness_limits``).
    """
    check_sut(sut)
    st = _as_streams(streams, tenant)
    sch = build_schedule(st, library_items) if schedule is None else schedule
    names = list(st)
    code_of = {name: k for k, name in enumerate(names)}
    n = len(sch)
    tenant_code = sch["tenant"].map(code_of).to_numpy(np.int64)
    sched_rel = np.round(sch["scheduled_s"].to_numpy(float) * 1e9).astype(np.int64)
    measured = ~sch["warmup"].to_numpy(bool)
    sizes = sch["n_items"].to_numpy(np.int64)
    starts = sch["sample_start"].to_numpy(np.int64)
    bound_ns = np.array([int((st[x].latency_bound_ms or 0) * 1e6) for x in names], np.int64)
    max_over = np.full(len(names), -1, np.int64)
    if abort_on_fail:
        for k, x in enumerate(names):
            if st[x].latency_bound_ms is None:
                raise ConfigError(f"tenant {x!r}: abort_on_fail needs latency_bound_ms")
            n_meas = int(((tenant_code == k) & measured).sum())
            if abort_budget_queries is not None:
                n_meas = max(n_meas, int(abort_budget_queries))
            m = stats.early_stopping_max_overlatency(n_meas, st[x].percentile)
            max_over[k] = m if m >= 0 else n_meas  # too short to ever pass: never abort on it
    max_out = np.array([st[x].max_outstanding for x in names], np.int64)
    timeout_s = max(st[x].completion_timeout_s for x in names)
    if harness_cores is None:
        harness_cores = getattr(sut, "harness_cores", None)
    harness_cores = list(harness_cores) if harness_cores else None

    lg = _loadgen_process(sut, names, loadgen_process, harness_cores)
    meter = harness.CpuMeter().start()
    if lg is not None:
        from hera.loadgen.process import TrialPlan

        link_index = {name: k for k, name in enumerate(lg.tenants)}
        plan = TrialPlan(names, np.array([link_index[x] for x in names], np.int64)[tenant_code], tenant_code,
                         sched_rel, starts, sizes, measured, bound_ns, max_over, max_out, float(timeout_s),
                         int(lead_s * 1e9), int(spin_s * 1e9), disable_gc)
        out = lg.run(plan)
        t0 = out.t0_ns
        sched_abs = sched_rel + t0
        state = RunState(n, tenant_code, sched_abs, measured, len(names), bound_ns, max_over)
        for key, value in out.state.items():
            setattr(state, key, value)
        wall_s, drain_s = out.wall_s, out.drain_s
        usage = meter.stop(getattr(lg, "mode", "process"), harness_cores, {"load-generator process": out.cpu_s})
    else:
        before = harness.pin_current_thread(harness_cores)
        try:
            t0, sched_abs, state, wall_s, drain_s = _issue_in_process(
                sut, sch, names, tenant_code, sched_rel, measured, sizes, starts, bound_ns, max_over, max_out,
                timeout_s, lead_s, spin_s, disable_gc)
        finally:
            if before is not None:
                os.sched_setaffinity(0, before)
        usage = meter.stop("in-process", harness_cores)

    rows = _rows(sch, state, sched_abs, t0)
    tenants = {x: _summarise(rows[rows["tenant"] == x], st[x]) for x in names}
    overall = _summarise(rows, next(iter(st.values())) if len(st) == 1 else None)
    overall.update(
        wall_s=wall_s, drain_s=drain_s, aborted=state.abort_reason is not None,
        abort_reason=state.abort_reason, late_completions=state.late_completions, n_tenants=len(names),
    )
    limits = harness_limits or harness.HarnessLimits()
    overall.update(harness.fields(usage, overall["issue_lateness_us_p99"], overall["completion_lag_ms_p99"], limits))
    for x in names:
        tenants[x].update(aborted=overall["aborted"], abort_reason=state.abort_reason)
        tenants[x].update(harness.fields(usage, tenants[x]["issue_lateness_us_p99"],
                                         tenants[x]["completion_lag_ms_p99"], limits))
    if len(names) > 1 and all("passed" in tenants[x] for x in names):
        overall["passed"] = all(tenants[x]["passed"] for x in names)
    return RunResult(rows, overall, tenants, st)


def _loadgen_process(sut: Any, names: list[str], wanted: bool | None, harness_cores: list[int] | None):
    """The SUT's load-generator process for this run, or None (in-process issuing)."""
    if wanted is False:
        return None
    factory = getattr(sut, "loadgen_process", None)
    if not callable(factory):
        if wanted:
            raise ConfigError(f"{type(sut).__name__} offers no load-generator process (loadgen_process=True)")
        return None
    lg = factory(harness_cores)
    if lg is None or not set(names) <= set(lg.tenants):
        if wanted:
            raise ConfigError(f"{type(sut).__name__}: no load-generator process for tenants {names}")
        return None
    return lg


def _issue_in_process(sut, sch, names, tenant_code, sched_rel, measured, sizes, starts, bound_ns, max_over,
                      max_out, timeout_s, lead_s, spin_s, disable_gc):
    """The issue loop in the calling thread; completions arrive on the SUT's threads."""
    n = len(sch)
    spin_ns = int(spin_s * 1e9)
    t0 = time.monotonic_ns() + int(lead_s * 1e9)
    sched_abs = sched_rel + t0
    state = RunState(n, tenant_code, sched_abs, measured, len(names), bound_ns, max_over)
    on_done = state.on_done
    tenant_arr = sch["tenant"].to_numpy(object)
    mono, sleep, yield_gil = time.monotonic_ns, time.sleep, os.sched_yield
    gc_was = gc.isenabled()
    if disable_gc:
        gc.disable()
    wall0 = time.monotonic()
    try:
        for i in range(n):
            k = tenant_code[i]
            if not state.may_issue(k, names, max_out):
                break
            target = sched_abs[i]
            rem = target - mono()
            if rem > spin_ns:
                sleep((rem - spin_ns) / 1e9)
            while mono() < target:
                yield_gil()
            state.mark_issued(i, k)
            try:
                sut.issue(tenant_arr[i], int(starts[i]), int(sizes[i]), functools.partial(on_done, i))
            except Exception as exc:  # noqa: BLE001 - a raising SUT fails this query, not the run
                state.issue_failed(i, f"issue raised {type(exc).__name__}: {exc}")
        with state.lock:
            state.issuing_finished = True
            if state.n_done >= state.n_issued:
                state.all_done.set()
        last_issue = time.monotonic()
        state.all_done.wait(timeout=timeout_s)
        state.close(timeout_s)
    finally:
        if disable_gc and gc_was:
            gc.enable()
    wall_s = time.monotonic() - wall0
    return t0, sched_abs, state, wall_s, time.monotonic() - last_issue


def _rows(sch: pd.DataFrame, s: RunState, sched_abs: np.ndarray, t0: int) -> pd.DataFrame:
    issued = s.issued_ns > 0
    with_end = np.isin(s.status, ["ok", "error"]) & (s.t_end > 0)
    lat = np.where(with_end, (s.t_end - sched_abs) / 1e6, np.nan)
    lateness = np.where(issued, (s.issued_ns - sched_abs) / 1e3, np.nan)
    svc = np.where(with_end & (s.t_start > 0), (s.t_end - s.t_start) / 1e6, np.nan)
    wait = np.where(with_end & (s.t_start > 0), (s.t_start - sched_abs) / 1e6, np.nan)
    return pd.DataFrame({
        "tenant": sch["tenant"].to_numpy(object),
        "query_id": sch["query_id"].to_numpy(np.int64),
        "seq": sch["seq"].to_numpy(np.int64),
        "warmup": sch["warmup"].to_numpy(bool),
        "n_items": sch["n_items"].to_numpy(np.int64),
        "sample_start": sch["sample_start"].to_numpy(np.int64),
        "scheduled_s": (sched_abs - t0) / 1e9,
        "scheduled_ns": sched_abs,
        "issued_ns": s.issued_ns,
        "t_submit_ns": s.t_submit,
        "t_start_ns": s.t_start,
        "t_end_ns": s.t_end,
        "done_ns": s.done_ns,
        "issue_lateness_us": lateness,
        "wait_ms": wait,
        "service_ms": svc,
        "latency_ms": lat,
        "workers": s.workers,
        "status": s.status.astype(str),
        "ok": s.status == "ok",
        "error": s.error,
    })


def _summarise(rows: pd.DataFrame, settings: LoadgenSettings | None) -> dict[str, Any]:
    """Summary statistics over the measured (non-warmup) rows."""
    m = rows[~rows["warmup"]]
    ok = m[m["ok"]]
    lat = ok["latency_ms"].to_numpy(float)
    sched = m["scheduled_s"].to_numpy(float)
    n = len(m)
    out: dict[str, Any] = {
        "n_scheduled": int(len(rows)), "n_measured": n, "n_warmup": int(rows["warmup"].sum()),
        "n_ok": int(len(ok)), "n_error": int((m["status"] == "error").sum()),
        "n_timeout": int((m["status"] == "timeout").sum()),
        "n_not_issued": int((m["status"] == "not_issued").sum()),
    }
    out["n_failed"] = n - out["n_ok"]
    span = float(sched.max() - sched.min()) if n > 1 else 0.0
    out["duration_s"] = span
    out["offered_qps"] = (n - 1) / span if span > 0 else math.nan
    if settings is not None:
        out["target_qps"] = float(settings.target_qps)
    if len(ok):
        end_s = (ok["t_end_ns"].to_numpy(np.int64).max() - m["scheduled_ns"].to_numpy(np.int64).min()) / 1e9
        out["achieved_qps"] = len(ok) / end_s if end_s > 0 else math.nan
    else:
        out["achieved_qps"] = 0.0
    out["latency_ms_mean"] = float(lat.mean()) if lat.size else math.nan
    for p in LATENCY_PERCENTILES:
        out[f"latency_ms_p{round(p * 100)}"] = stats.percentile(lat, p)
    out["latency_ms_max"] = float(lat.max()) if lat.size else math.nan
    late = m["issue_lateness_us"].dropna().to_numpy(float)
    out["issue_lateness_us_p50"] = stats.percentile(late, 0.5)
    out["issue_lateness_us_p99"] = stats.percentile(late, 0.99)
    out["issue_lateness_us_max"] = float(late.max()) if late.size else math.nan
    lag = ((ok["done_ns"] - ok["t_end_ns"]).to_numpy(float) / 1e6) if len(ok) else np.zeros(0)
    out["completion_lag_ms_p99"] = stats.percentile(lag, 0.99)
    if settings is not None:
        p = settings.percentile
        est = stats.percentile_ci(lat, p, 0.95)
        tag = f"p{p * 100:g}".replace(".", "_")
        out["percentile"] = p
        out[f"latency_ms_{tag}"] = est.value
        out[f"latency_ms_{tag}_lo"] = est.lo
        out[f"latency_ms_{tag}_hi"] = est.hi
        if settings.latency_bound_ms is not None:
            bound = settings.latency_bound_ms
            # issued queries that failed or missed the bound; queries never issued (an aborted run)
            # make the run incomplete, hence a fail
            n_done = n - out["n_not_issued"]
            n_over = int(out["n_error"] + out["n_timeout"] + (lat > bound).sum())
            v = stats.early_stopping(n_done, n_over, p) if n_done else None
            verdict = "fail" if out["n_not_issued"] else (v.verdict if v else "undecided")
            out.update(
                latency_bound_ms=bound, n_over_bound=n_over,
                early_stopping_needed=v.needed if v else math.nan,
                early_stopping_verdict=verdict, passed=verdict == "pass",
            )
    return out


def check_sut(sut: Any) -> None:
    """Raise :class:`HeraError` if ``sut`` lacks the SUT protocol's ``issue`` method."""
    if not callable(getattr(sut, "issue", None)):
        raise HeraError(f"{type(sut).__name__} is not a SUT: it has no "
                        "issue(tenant, sample_start, n_items, on_done)")
