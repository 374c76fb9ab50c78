"""Service profiles through the serving path: what a worker takes to run each sub-batch of a model's queries,
for every worker count, measured on the real node (pinned workers, dispatcher, sample-library ids).

For each worker count w (one worker per core, the first w cores of the study, grown with the node's run-time
``resize``):

1. **light load**: one query in flight at a time. For a discrete query-size law (``production``, ``fixed``)
   the queries are *stratified*: ``service.light_queries_per_size`` queries of every distinct size, in a seeded
   random order, and mix statistics weight each size by its probability (so the 700-item queries that set the
   tail are measured as often as the 200-item ones); for a continuous law ``service.light_queries`` queries
   are drawn from it. Gives the unloaded latency of the query mix (the SLA's base, :mod:`hera.profile.sla`) and
   light-regime sub-batch service times; then ``service.dispatch_probes`` one-item queries, one at a time, give
   the dispatch delay (submission → first sub-batch start on an idle node: the platform's own jitter);
2. **saturation**: a closed loop keeps ``depth_per_worker · w + 1`` queries of the mix in flight for
   ``service.saturation_s`` seconds (after ``service.warmup_s``), so every worker is always busy. Gives
   saturated-regime service times, the gap between back-to-back sub-batches of a worker, and the throughput;
3. **after idling** (regime ``idle``): ``service.idle_queries_per_gap`` queries of ``w · batch_size`` items (one
   full sub-batch per worker) for each gap of ``service.idle_gaps_ms`` and for none, in a seeded random order,
   one at a time, each submitted that long after the previous one finished. A worker's first sub-batch after it
   idled is slower the longer it idled (its caches and the vCPU went cold: docs/DESIGN.md, "A worker that idled
   is slower"); :func:`idle_penalty` turns these samples into the extra service time per idle time that the
   node model adds (:class:`hera.queueing.service.ServiceLaw`).

Threads of this process (the node's dispatch and collection) are pinned to the study's cores that run no
worker of this w where there are such cores; the rows record which (``harness_cores``, "shared" otherwise).

Outputs: ``<out>.parquet``, one row per sub-batch (raw samples, with their query's fields), and ``<out>.csv``, a
tidy table of quantiles (``statistic`` ∈ :data:`STATISTICS`) — both with provenance.
:func:`service_law` turns the raw samples of one w into a :class:`hera.queueing.service.ServiceLaw`.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.errors import ConfigError, HeraError
from hera.profile import common

STATISTICS = ("sub_batch_service", "query_latency", "mix_latency", "mix_latency_size_medians", "dispatch_delay",
              "worker_gap", "saturation_throughput", "idle_penalty")
#: a size needs this many light queries for its median to enter ``mix_latency_size_medians`` (stratified laws)
MIN_QUERIES_PER_SIZE = 3
QUANTILES = (0.5, 0.9, 0.95, 0.99)
SUMMARY_COLUMNS = ["model", "workers", "statistic", "regime", "items", "n", "mean_ms", "p50_ms", "p90_ms",
                   "p95_ms", "p99_ms", "max_ms", "value", "unit", "cores", "harness_cores", "batch_size",
                   "scale", "note"]
SAMPLE_COLUMNS = ["model", "workers", "regime", "query", "query_items", "weight", "sub_index", "items", "worker",
                  "t_submit_ns", "t_start_ns", "t_end_ns", "service_ms", "query_latency_ms", "dispatch_ms",
                  "idle_gap_ms"]
#: columns a profile written before they existed may lack (read as NaN: no ``idle`` samples, no idle penalty)
OPTIONAL_SAMPLE_COLUMNS = ("idle_gap_ms",)
GAP_TRIM_QUANTILE = 0.99  # gaps above this quantile (a worker starved by the closed loop) are left out


class ServiceProfileError(HeraError):
    """A service profile is missing, incomplete or malformed for what was asked of it."""


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def profiled_workers(config: dict[str, Any], n_cores: int) -> tuple[int, ...]:
    """The worker counts the study profiles (config ``profile.workers``: every count 1..n by default)."""
    from hera.topology import worker_counts

    return worker_counts(config["profile"].get("workers"), n_cores)


# ------------------------------------------------------------------------------------------ query sizes
def light_sizes(config: dict[str, Any], seed: int) -> tuple[np.ndarray, dict[int, float]]:
    """The light-load query sizes (in order) and each size's weight (probability / share in the sample)."""
    from hera.workload.sizes import QuerySizes

    qs = QuerySizes.from_dict({**common.query_sizes(config), "max_items": int(config["queries"]["max_items"])})
    rng = np.random.default_rng(seed)
    support = qs.support()
    svc = config["service"]
    if support is None:
        sizes = qs.sample(int(svc["light_queries"]), rng)
        return sizes, {int(s): 1.0 for s in np.unique(sizes)}
    values, probs = support
    per = int(svc["light_queries_per_size"])
    sizes = rng.permutation(np.repeat(values, per))
    return sizes, {int(v): float(p) / per * len(sizes) for v, p in zip(values, probs)}


def mix_sizes(config: dict[str, Any], n: int, seed: int) -> np.ndarray:
    """``n`` query sizes drawn from the study's query-size law."""
    from hera.workload.sizes import QuerySizes

    qs = QuerySizes.from_dict({**common.query_sizes(config), "max_items": int(config["queries"]["max_items"])})
    return qs.sample(int(n), np.random.default_rng(seed))


# ------------------------------------------------------------------------------------------ measuring
def _allocator(node: Any, tenant: str) -> str:
    """What the tenant's workers report of their heap (:mod:`hera.zoo.allocator`), "unknown" otherwise."""
    from hera.server.errors import UnknownTenantError

    try:
        return str(node.tenant_info(tenant).get("allocator", "unknown"))
    except UnknownTenantError:
        return "unknown"


def sample_rows(results: list[Any], model: str, w: int, regime: str, weights: dict[int, float] | None,
                gaps_ms: list[float] | None = None) -> list[dict]:
    """One row per sub-batch (:data:`SAMPLE_COLUMNS`) of the QueryResults ``results`` measured with ``w`` workers
    in ``regime``; ``weights``: each query size's weight (light load), else 1; ``gaps_ms``: each query's designed
    idle gap before it (regime ``idle``), else NaN."""
    out = []
    for k, res in enumerate(results):
        gap = float(gaps_ms[k]) if gaps_ms is not None else math.nan
        if not res.ok:
            raise ServiceProfileError(f"model {model!r}, {w} worker(s): a {res.n_items}-item query failed while "
                                      f"profiling service times: {res.error}")
        times = list(res.sub_batch_times)
        if not times:
            raise ServiceProfileError(f"model {model!r}: the node returned no sub-batch times (node too old?)")
        first = min(t[2] for t in times)
        for i, (items, worker, t0, t1) in enumerate(times):
            out.append({
                "model": model, "workers": w, "regime": regime, "query": k, "query_items": int(res.n_items),
                "weight": float(weights.get(int(res.n_items), 1.0)) if weights else 1.0, "sub_index": i,
                "items": int(items), "worker": int(worker), "t_submit_ns": int(res.t_submit_ns),
                "t_start_ns": int(t0), "t_end_ns": int(t1), "service_ms": (t1 - t0) / 1e6,
                "query_latency_ms": (res.t_end_ns - res.t_submit_ns) / 1e6, "dispatch_ms": (first - res.t_submit_ns) / 1e6,
                "idle_gap_ms": gap,
            })
    return out


def light_load(node: Any, tenant: str, sizes: np.ndarray, seed: int, warmup: int = 2) -> list[Any]:
    """One query at a time (closed loop, no queueing): the QueryResults of ``sizes`` (after ``warmup``)."""
    lib = node.library_size(tenant)
    rng = np.random.default_rng(seed)
    out = []
    for i, n in enumerate(list(sizes[:warmup]) + list(sizes)):
        start = int(rng.integers(0, max(1, lib - int(n) + 1)))
        res = node.submit(tenant, start, int(n)).result()
        if i >= warmup:
            out.append(res)
    return out


def saturate(node: Any, tenant: str, sizes: np.ndarray, depth: int, warmup_s: float, duration_s: float,
             seed: int) -> tuple[list[Any], float]:
    """Closed loop with ``depth`` queries in flight (sizes cycled from ``sizes``): the QueryResults of queries
    that completed within the ``duration_s`` seconds after ``warmup_s``, and the measured seconds."""
    lib = node.library_size(tenant)
    rng = np.random.default_rng(seed)
    slots = threading.Semaphore(depth)
    lock = threading.Lock()
    results: list[Any] = []
    errors: list[str] = []

    def done(res: Any) -> None:
        with lock:
            results.append(res)
            if not res.ok and len(errors) < 3:
                errors.append(str(res.error))
        slots.release()

    t0 = time.monotonic_ns()
    t_meas = t0 + int(warmup_s * 1e9)
    t_stop = t_meas + int(duration_s * 1e9)
    k = 0
    while time.monotonic_ns() < t_stop:
        if not slots.acquire(timeout=0.5):
            continue
        n = int(sizes[k % len(sizes)])
        k += 1
        node.submit(tenant, int(rng.integers(0, max(1, lib - n + 1))), n, on_done=done)
    for _ in range(depth):  # wait for the queries in flight
        slots.acquire(timeout=60)
    if errors:
        raise ServiceProfileError(f"tenant {tenant!r}: queries failed at saturation: {errors[0]}")
    measured = [r for r in results if t_meas <= r.t_end_ns <= t_stop]
    return measured, duration_s


def idle_load(node: Any, tenant: str, gaps_ms: list[float], per_gap: int, items: int,
              seed: int) -> tuple[list[Any], list[float]]:
    """``per_gap`` queries of ``items`` items for no gap and for each gap of ``gaps_ms``, in a seeded random order,
    one at a time, each submitted that many ms after the previous one finished: (their QueryResults, each one's
    gap)."""
    lib = node.library_size(tenant)
    rng = np.random.default_rng(seed)
    order = rng.permutation(np.repeat(np.asarray([0.0, *sorted({float(g) for g in gaps_ms if g > 0})]), per_gap))
    out = []
    for g in order:
        if g > 0:
            time.sleep(g / 1e3)
        out.append(node.submit(tenant, int(rng.integers(0, max(1, lib - items + 1))), int(items)).result())
    return out, [float(g) for g in order]


def idle_before_ms(samples: pd.DataFrame) -> pd.Series:
    """How long each sub-batch's worker had been idle before it started (ms: its start − the end of that worker's
    previous sub-batch; NaN for a worker's first), for the samples of one worker count."""
    s = samples.sort_values(["worker", "t_start_ns"])
    prev_end = s.groupby("worker")["t_end_ns"].shift(1)
    return ((s["t_start_ns"] - prev_end) / 1e6).reindex(samples.index)


def idle_penalty(samples: pd.DataFrame, batch_size: int) -> pd.DataFrame:
    """What idling costs a worker, from the ``idle`` samples of one worker count: one row per designed gap (no gap
    first) with the median idle time the workers really had before those sub-batches (``idle_ms``), the median
    service time of those full sub-batches (``service_ms``), how many (``n``), and the extra over no gap
    (``extra_ms``: ≥ 0 and non-decreasing in the gap, so that noise between two gaps never makes a longer idle
    cheaper). The curve is read at the real idle time, so its knots must increase in it: a gap whose workers really
    idled no longer (median) than after the shorter gap before it is pooled with that one, samples and all (on a
    busy machine the round trip of a no-gap query can outlast a 2 ms sleep); ``gap_ms`` is then the shortest
    designed gap of the pool and ``gaps_pooled`` how many it holds. Empty without ``idle`` samples (a profile taken
    without them, or ``service.idle_gaps_ms: []``)."""
    cols = ["gap_ms", "idle_ms", "service_ms", "n", "extra_ms", "gaps_pooled"]
    if "idle_gap_ms" not in samples.columns:
        return pd.DataFrame(columns=cols)
    before = idle_before_ms(samples)
    idle = samples[(samples["regime"] == "idle") & (samples["items"] == int(batch_size)) & before.notna()
                   & samples["idle_gap_ms"].notna()]
    if idle.empty:
        return pd.DataFrame(columns=cols)
    idle = idle.assign(idle_ms=before[idle.index])
    if float(idle["idle_gap_ms"].min()) != 0.0:
        raise ServiceProfileError("idle samples without the no-gap queries they are compared with")
    pools: list[tuple[list[float], pd.DataFrame]] = []
    for gap, frame in idle.groupby("idle_gap_ms", sort=True):
        pools.append(([float(gap)], frame))
        while len(pools) > 1 and pools[-1][1]["idle_ms"].median() <= pools[-2][1]["idle_ms"].median():
            gaps, frame = pools.pop()
            pools[-1] = (pools[-1][0] + gaps, pd.concat([pools[-1][1], frame]))
    g = pd.DataFrame([{"gap_ms": gaps[0], "idle_ms": float(f["idle_ms"].median()),
                       "service_ms": float(f["service_ms"].median()), "n": len(f), "gaps_pooled": len(gaps)}
                      for gaps, f in pools])
    base = float(g["service_ms"].iloc[0])
    g["extra_ms"] = np.maximum.accumulate(np.maximum(g["service_ms"].to_numpy(float) - base, 0.0))
    return g[cols].reset_index(drop=True)


def worker_gaps_ms(samples: pd.DataFrame) -> np.ndarray:
    """Idle time of each worker between consecutive sub-batches (ms), from saturated-regime samples."""
    sat = samples[samples["regime"] == "saturated"].sort_values(["worker", "t_start_ns"])
    gaps = []
    for _, g in sat.groupby("worker"):
        s, e = g["t_start_ns"].to_numpy(np.int64), g["t_end_ns"].to_numpy(np.int64)
        if s.size > 1:
            gaps.append((s[1:] - e[:-1]) / 1e6)
    return np.concatenate(gaps) if gaps else np.zeros(0)


# ----------------------------------------------------------------------------------------- statistics
def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    order = np.argsort(values, kind="mergesort")
    v, w = values[order], weights[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return [float(np.interp(q, cdf, v)) for q in qs]


def _qrow(values: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    values = np.asarray(values, float)
    if values.size == 0:
        return {"n": 0, "mean_ms": math.nan, **{f"p{round(q * 100)}_ms": math.nan for q in QUANTILES},
                "max_ms": math.nan}
    if weights is None:
        qv = [float(np.quantile(values, q)) for q in QUANTILES]
        mean = float(values.mean())
    else:
        qv = _weighted_quantiles(values, np.asarray(weights, float), QUANTILES)
        mean = float(np.average(values, weights=weights))
    return {"n": int(values.size), "mean_ms": mean, **{f"p{round(q * 100)}_ms": v for q, v in zip(QUANTILES, qv)},
            "max_ms": float(values.max())}


def size_medians(light: pd.DataFrame) -> pd.DataFrame | None:
    """Each query size's median unloaded latency and its weight in the mix (columns ``median_ms``, ``weight``),
    from the light-load queries (one row per query); None unless every size was measured at least
    :data:`MIN_QUERIES_PER_SIZE` times (a stratified discrete law, not a continuous one).

    The quantiles of the mix over these medians keep what makes the unloaded tail — the large queries — and
    drop what a shared VM adds to single queries: a stall of tens of ms in one of the 16 queries of a size
    moves the pooled p99 of the mix by up to 2× (docs/DESIGN.md, "SLA rule")."""
    if light.empty:
        return None
    g = light.groupby("query_items").agg(median_ms=("query_latency_ms", "median"), weight=("weight", "sum"),
                                         n=("query_latency_ms", "size"))
    if int(g["n"].min()) < MIN_QUERIES_PER_SIZE:
        return None
    return g[["median_ms", "weight"]]


def mix_quantiles(light: pd.DataFrame) -> tuple[dict[str, float], dict[str, float] | None]:
    """The unloaded quantiles of the query mix from light-load queries (one row per query, with ``weight``):
    pooled over every query, and over each size's median (None where :func:`size_medians` gives none)."""
    pooled = _qrow(light["query_latency_ms"].to_numpy(), light["weight"].to_numpy())
    med = size_medians(light)
    return pooled, (None if med is None else _qrow(med["median_ms"].to_numpy(), med["weight"].to_numpy()))


def summarise(samples: pd.DataFrame, throughput: dict[int, float], meta: dict[int, dict[str, Any]]) -> pd.DataFrame:
    """The tidy quantile table (``SUMMARY_COLUMNS``) of raw samples."""
    rows = []
    for w, g in samples.groupby("workers"):
        base = {"model": g["model"].iloc[0], "workers": int(w), **meta[int(w)]}
        for (regime, items), s in g[g["regime"].isin(("light", "saturated"))].groupby(["regime", "items"]):
            rows.append({**base, "statistic": "sub_batch_service", "regime": regime, "items": int(items),
                         **_qrow(s["service_ms"].to_numpy())})
        queries = g.drop_duplicates(["regime", "query"])
        light = queries[queries["regime"] == "light"]
        for items, s in light.groupby("query_items"):
            rows.append({**base, "statistic": "query_latency", "regime": "light", "items": int(items),
                         **_qrow(s["query_latency_ms"].to_numpy())})
        pooled, by_size = mix_quantiles(light)
        rows.append({**base, "statistic": "mix_latency", "regime": "light", **pooled})
        if by_size is not None:
            rows.append({**base, "statistic": "mix_latency_size_medians", "regime": "light", **by_size})
        probes = queries[queries["regime"] == "probe"]
        delay = probes if len(probes) else light
        rows.append({**base, "statistic": "dispatch_delay", "regime": "probe" if len(probes) else "light",
                     **_qrow(delay["dispatch_ms"].to_numpy())})
        gaps = worker_gaps_ms(g)
        rows.append({**base, "statistic": "worker_gap", "regime": "saturated", **_qrow(gaps)})
        for _, p in idle_penalty(g, int(base["batch_size"])).iterrows():
            rows.append({**base, "statistic": "idle_penalty", "regime": "idle", "items": int(base["batch_size"]),
                         "n": int(p["n"]), "p50_ms": float(p["service_ms"]), "value": float(p["extra_ms"]),
                         "unit": "ms", "note": f"{base['note']}; designed gap {p['gap_ms']:g} ms"
                                                + (f" (pooled with the {int(p['gaps_pooled']) - 1} next: no longer "
                                                   f"idle)" if int(p["gaps_pooled"]) > 1 else "")
                                                + f", workers idle {p['idle_ms']:.3f} ms (median) before"})
        rows.append({**base, "statistic": "saturation_throughput", "regime": "saturated", "n": int(
            (queries["regime"] == "saturated").sum()), "value": throughput[int(w)], "unit": "queries/s"})
    return pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)


# ------------------------------------------------------------------------------------------- the stage
@dataclass(frozen=True)
class ServiceOutputs:
    samples: Path
    summary: Path


def outputs(out: str | Path) -> ServiceOutputs:
    """``<stem>.parquet`` (raw sub-batch samples) and ``<stem>.csv`` (quantiles) for ``out`` (either name)."""
    out = Path(out)
    return ServiceOutputs(out.with_suffix(".parquet"), out.with_suffix(".csv"))


def measure(config: dict[str, Any], model: str, workers: list[int] | None = None,
            opts: common.NodeOptions | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Raw samples and the quantile table of ``model`` for each worker count (default 1..study cores)."""
    opts = opts or common.NodeOptions()
    common.check_model(model, opts.runner)
    cores = common.study_cores(config)
    if workers is None:
        workers = list(profiled_workers(config, len(cores)))
    ws = list(workers)
    common.require_cores(cores, max(ws), f"a service profile with {max(ws)} workers")
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    plan = common.TenantPlan(model, model, tuple(cores[:ws[0]]), batch_size=batch, max_items=max_items)
    with common.start_node(config, [plan], opts) as node:
        return measure_on(node, config, model, model, ws, cores)


def measure_on(node: Any, config: dict[str, Any], model: str, tenant: str, workers: list[int], cores: list[int],
               stream: str = "") -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`measure` on a running node whose tenant ``tenant`` serves ``model``; it is resized to the first
    w of ``cores`` for each w of ``workers``. ``stream`` makes the seeds differ between determinations."""
    batch = int(config["batch_size"])
    svc, seed = config["service"], int(config["seed"])
    rows: list[dict] = []
    throughput: dict[int, float] = {}
    meta: dict[int, dict[str, Any]] = {}
    gaps = idle_gaps_ms(config)  # checked before anything is measured
    for w in workers:
        if tuple(node.stats()[tenant].cores) != tuple(cores[:w]):
            node.resize(tenant, list(cores[:w]))
        pin, harness = common.harness_off_workers(config, cores[:w])
        key = (model, str(w), stream)
        with pin:
            # Saturation first: its warm-up faults in the tables' hot rows and the workers' lazy state, which
            # otherwise put 40-50 ms stalls into the first light queries of a freshly started worker.
            mix = mix_sizes(config, 4096, common.derived_seed(seed, "service-mix", *key))
            depth = int(svc["depth_per_worker"]) * w + 1
            t0 = time.perf_counter()
            sat, dur = saturate(node, tenant, mix, depth, float(svc["warmup_s"]), float(svc["saturation_s"]),
                                common.derived_seed(seed, "service-sat", *key))
            t1 = time.perf_counter()
            sizes, weights = light_sizes(config, common.derived_seed(seed, "service-light", *key))
            light = light_load(node, tenant, sizes, common.derived_seed(seed, "service-starts", *key))
            probes = light_load(node, tenant, np.ones(int(svc["dispatch_probes"]), np.int64),
                                common.derived_seed(seed, "service-probes", *key))
            idle, idle_gaps = idle_load(node, tenant, gaps, int(svc.get("idle_queries_per_gap", 16)), w * batch,
                                        common.derived_seed(seed, "service-idle", *key)) if gaps else ([], [])
            t2 = time.perf_counter()
        if not sat:
            raise ServiceProfileError(f"model {model!r}, {w} worker(s): no query completed within "
                                      f"{svc['saturation_s']} s at saturation (raise service.saturation_s)")
        rows += sample_rows(light, model, w, "light", weights)
        rows += sample_rows(probes, model, w, "probe", None)
        rows += sample_rows(sat, model, w, "saturated", None)
        rows += sample_rows(idle, model, w, "idle", None, idle_gaps)
        throughput[w] = len(sat) / dur
        meta[w] = {"cores": " ".join(map(str, cores[:w])),
                   "harness_cores": harness,
                   "batch_size": batch, "scale": config["scale"],
                   "note": f"saturation depth {depth}, {len(sat)} queries in {dur:g} s (+{svc['warmup_s']:g} s "
                           f"warm-up), {t1 - t0:.1f} s in all; then light {len(light)} and after idling "
                           f"{len(idle)} queries in {t2 - t1:.1f} s; "
                           f"allocator: {_allocator(node, tenant)}"}
        _log(f"[service] {model}: {w} worker(s): {len(light)} light queries ({t2 - t1:.1f} s), saturation "
             f"{throughput[w]:.1f} queries/s")
    samples = pd.DataFrame(rows).reindex(columns=SAMPLE_COLUMNS)
    return samples, summarise(samples, throughput, meta)


def idle_gaps_ms(config: dict[str, Any]) -> list[float]:
    """``service.idle_gaps_ms``: the idle gaps (ms, each > 0) whose cost a service profile measures ([]: none)."""
    gaps = [float(g) for g in config["service"].get("idle_gaps_ms", [])]
    if not all(math.isfinite(g) and g > 0 for g in gaps):
        raise ConfigError(f"service.idle_gaps_ms: every gap must be a number of ms > 0, not {gaps}")
    return gaps


def refresh_config(config: dict[str, Any]) -> dict[str, Any]:
    """The study config with the service settings of a *refreshed* profile (``service.refresh_*``): fewer light
    queries, a quarter of the dispatch probes and a shorter saturation, taken just before a confirmation on the
    confirming node."""
    svc = config["service"]
    return {**config, "service": {**svc, "light_queries_per_size": int(svc["refresh_light_queries_per_size"]),
                                  "light_queries": max(20, int(svc["light_queries"]) // 2),
                                  "dispatch_probes": max(20, int(svc["dispatch_probes"]) // 4),
                                  "saturation_s": float(svc["refresh_saturation_s"])}}


def refreshed(node: Any, config: dict[str, Any], model: str, tenant: str, workers: int, cores: list[int],
              stream: str) -> pd.DataFrame:
    """Raw samples of a refreshed profile (:func:`refresh_config`) of ``tenant`` with ``workers`` workers."""
    samples, _ = measure_on(node, refresh_config(config), model, tenant, [int(workers)], cores,
                            stream=f"refresh/{stream}")
    return samples


def run(config: dict[str, Any], model: str, out: str | Path, opts: common.NodeOptions | None = None,
        workers: list[int] | None = None) -> pd.DataFrame:
    """Measure and write both outputs (see :func:`outputs`) with provenance; return the quantile table."""
    from hera.provenance import write_table

    samples, summary = measure(config, model, workers, opts)
    paths = outputs(out)
    write_table(samples, paths.samples, config=config, seed=config["seed"])
    write_table(summary, paths.summary, config=config, seed=config["seed"])
    return summary


def speed_ratio(new: pd.DataFrame, old: pd.DataFrame, workers: int) -> float:
    """How much slower (> 1) or faster (< 1) the profile ``new`` served than ``old`` — raw samples of one model,
    e.g. the profile refreshed before a confirmation and the service stage's: the geometric mean, over the
    (regime, sub-batch size) cells of the light and saturated regimes that both have for ``workers`` workers, of
    the ratio of their median service times. NaN without a common cell. A ratio far from 1 says the stage's
    profile described another machine than the confirmation met (docs/DESIGN.md, "The model's service profile is
    taken on the confirming node")."""

    def medians(df: pd.DataFrame) -> pd.Series:
        ms = pd.to_numeric(df["service_ms"], errors="coerce")
        keep = (df["workers"] == int(workers)) & df["regime"].isin(("light", "saturated")) & (ms > 0)
        return ms[keep].groupby([df.loc[keep, "regime"], df.loc[keep, "items"]]).median()

    a, b = medians(new), medians(old)
    both = a.index.intersection(b.index)
    if len(both) == 0:
        return math.nan
    return float(np.exp(np.mean(np.log(a[both].to_numpy(float) / b[both].to_numpy(float)))))


# ------------------------------------------------------------------------------------------- reading
def read_samples(path: str | Path, model: str | None = None) -> pd.DataFrame:
    """The raw samples of a service profile (``.parquet``; the ``.csv`` name is accepted too)."""
    p = outputs(path).samples
    if not p.is_file():
        raise ServiceProfileError(f"service profile {p} does not exist (run `hera profile service` first)")
    df = pd.read_parquet(p)
    for col in OPTIONAL_SAMPLE_COLUMNS:
        if col not in df.columns:
            df[col] = math.nan
    missing = sorted(set(SAMPLE_COLUMNS) - set(df.columns))
    if missing:
        raise ServiceProfileError(f"service profile {p} lacks column {missing[0]!r}")
    if model is not None:
        df = df[df["model"] == model]
        if df.empty:
            raise ServiceProfileError(f"service profile {p} has no samples of model {model!r}")
    return df


def service_law(samples: pd.DataFrame, workers: int, batch_size: int, *, source: str = "service profile"):
    """The :class:`hera.queueing.service.ServiceLaw` of one worker count from raw samples."""
    from hera.queueing.service import ServiceLaw

    g = samples[samples["workers"] == int(workers)]
    if g.empty:
        have = sorted(int(x) for x in samples["workers"].unique())
        model = samples["model"].iloc[0] if len(samples) else "?"
        raise ServiceProfileError(f"{source}: no samples of model {model!r} with {workers} worker(s) "
                                  f"(profiled: {have or 'none'})")
    pools = {}
    for regime in ("light", "saturated"):
        r = g[g["regime"] == regime]
        if r.empty:
            raise ServiceProfileError(f"{source}: no {regime} samples with {workers} worker(s)")
        pools[regime] = {int(k): s["service_ms"].to_numpy(float) for k, s in r.groupby("items")}
    light_q = g[g["regime"] == "probe"].drop_duplicates("query")
    if light_q.empty:  # profiles made before the dispatch probes
        light_q = g[g["regime"] == "light"].drop_duplicates("query")
    gaps = worker_gaps_ms(g)
    if gaps.size:
        gaps = gaps[gaps <= np.quantile(gaps, GAP_TRIM_QUANTILE)]
    pen = idle_penalty(g, int(batch_size))
    idle = ((0.0,), (0.0,)) if pen.empty else (tuple(pen["idle_ms"]), tuple(pen["extra_ms"]))
    return ServiceLaw(int(workers), int(batch_size), pools["light"], pools["saturated"],
                      light_q["dispatch_ms"].to_numpy(float), float(gaps.mean()) if gaps.size else 0.0,
                      np.asarray(idle[0], float), np.asarray(idle[1], float))


def mix_latency(summary: pd.DataFrame, model: str, workers: int = 1,
                statistic: str = "mix_latency") -> pd.Series:
    """The ``statistic`` row (``mix_latency``: unloaded latency quantiles of the query mix;
    ``mix_latency_size_medians``: the same over each size's median) of ``model`` with ``workers``."""
    rows = summary[(summary["model"] == model) & (summary["workers"] == workers)
                   & (summary["statistic"] == statistic)]
    if rows.empty:
        what = "unloaded mix latency" if statistic == "mix_latency" else f"{statistic} row"
        raise ServiceProfileError(f"service profile has no {what} of model {model!r} with {workers} worker(s)")
    return rows.iloc[0]
