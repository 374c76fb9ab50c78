"""``hera bench build``, ``serving`` and ``loadgen-agreement``: what building costs, what the server costs
against the same work done in-process, and our load generator's tail against MLPerf LoadGen's."""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from hera.bench.common import library_items, require_built, require_t1_sla, tenant_node


def bench_build(scale: str, models: list[str], items: int | None) -> dict[str, Any]:
    """Build every model and its sample library into a scratch directory; report seconds."""
    from hera.workload.cli import build_libraries
    from hera.workload.library import default_items
    from hera.zoo.build import build_model_files

    with tempfile.TemporaryDirectory(prefix="hera-bench-build-") as tmp:
        per: dict[str, dict[str, float]] = {}
        t0 = time.perf_counter()
        for m in models:
            t = time.perf_counter()
            build_model_files(m, scale, out_root=Path(tmp) / "models")
            per[m] = {"model_s": round(time.perf_counter() - t, 3)}
        t_models = time.perf_counter() - t0
        t1 = time.perf_counter()
        for m in models:
            t = time.perf_counter()
            build_libraries(scale, [m], items or default_items(scale), out_root=Path(tmp) / "datasets")
            per[m]["library_s"] = round(time.perf_counter() - t, 3)
        t_libs = time.perf_counter() - t1
    return {"scale": scale, "models": len(models), "models_s": round(t_models, 2),
            "libraries_s": round(t_libs, 2), "total_s": round(t_models + t_libs, 2), "per_model": per}


# ------------------------------------------------------------------------------------------ serving
def _inprocess_worker(model: str, scale: str, core: int, batch_size: int, duration_s: float, start_at: float,
                      queue) -> None:
    """One pinned process doing the server's work without the server: production-size queries from the
    sample library, each split into sub-batches of ``batch_size`` run back to back, through the same runner
    the workers use. Reports items/s."""
    import numpy as np
    import torch

    from hera.server.runner import build_runner
    from hera.workload.sizes import QuerySizes

    os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    runner = build_runner(_runner_spec(model, scale, batch_size))
    n_lib = runner.info()["library_items"]
    rng = np.random.default_rng(core)
    sizes = QuerySizes("production", 1024).sample(100_000, rng)
    while time.time() < start_at:
        time.sleep(0.001)
    items, i, t0 = 0, 0, time.perf_counter()
    while time.perf_counter() - t0 < duration_s:
        n = int(sizes[i % sizes.size])
        start = int(rng.integers(0, n_lib - n))
        for lo in range(0, n, batch_size):
            runner.run_samples(start + lo, min(batch_size, n - lo))
        items, i = items + n, i + 1
    queue.put(items / (time.perf_counter() - t0))


def _runner_spec(model: str, scale: str, batch_size: int):
    from hera.paths import build_dir, datasets_dir
    from hera.server.runner import RunnerSpec

    return RunnerSpec(kind="zoo", model=model, scale=scale, models_root=str(build_dir(scale)),
                      library_dir=str(datasets_dir(scale) / model), batch_size=batch_size)


def inprocess_items_per_s(model: str, scale: str, cores: list[int], batch_size: int, duration_s: float) -> float:
    """Aggregate items/s of one process per core, each running the server's work back to back (full load)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 8.0  # all processes load first, then run together
    procs = [ctx.Process(target=_inprocess_worker, args=(model, scale, c, batch_size, duration_s, start_at, q))
             for c in cores]
    for p in procs:
        p.start()
    rates = [q.get(timeout=120 + duration_s) for _ in procs]
    for p in procs:
        p.join()
    return float(sum(rates))


def _saturated_items_per_s(sut, tenant: str, lib: int, offered_qps: float, duration_s: float, warmup: int):
    """Items/s the SUT completes under an open-loop overload (queries of the production law, Poisson arrivals
    at ``offered_qps`` for ``duration_s``): completed items over first arrival → last end. When the SUT kept
    up (completed ≥ 90% of the offered rate) it was not saturated: the offered rate doubles, up to 2 times."""
    from hera.loadgen import driver
    from hera.loadgen.settings import LoadgenSettings

    for attempt in range(3):
        over = driver.run(sut, LoadgenSettings(target_qps=offered_qps, query_sizes={"kind": "production"},
                                               duration_s=duration_s, warmup_queries=warmup,
                                               completion_timeout_s=120), lib, tenant=tenant)
        rows = over.rows[over.rows["ok"] & ~over.rows["warmup"]]
        span_s = (rows["t_end_ns"].max() - rows["scheduled_ns"].min()) / 1e9
        if over.summary["achieved_qps"] < 0.9 * offered_qps or attempt == 2:
            break
        offered_qps *= 2
    return float(rows["n_items"].sum()) / span_s, over.summary, offered_qps


def bench_serving(model: str, scale: str, cores: list[int], batch_size: int, duration_s: float,
                  search: dict[str, Any], sla_ms: float | None = None) -> dict[str, Any]:
    """The server against the same work done in-process on the same cores, at saturation and under the SLA.

    - ``saturation_efficiency``: items/s the server completes under overload (no SLA; Poisson arrivals at 1.5x
      the in-process rate, more if it kept up) / items/s of one pinned process per core running production
      queries back to back through the same runner: the serving overhead without queueing.
    - ``efficiency``: the server's QPS* / the QPS* of an in-process open-loop FCFS run of the same query stream
      on the same cores (:class:`hera.loadgen.inprocess.InProcessFCFS`: pinned processes taking sub-batches in
      arrival order from a shared counter, no server), both under the model's SLA, with the same search,
      schedules and early-stopping rule. (Dividing a tail-bound QPS* by an unbounded throughput, as a first
      version did, mixes queueing into the overhead: RMC1 came out 0.0.)
    """
    import functools

    import numpy as np

    from hera.loadgen.inprocess import InProcessFCFS
    from hera.loadgen.search import find_qps_star
    from hera.loadgen.settings import LoadgenSettings
    from hera.loadgen.sut import NodeSUT
    from hera.server.runner import build_runner
    from hera.workload.sizes import QuerySizes

    require_built(model, scale)
    sla = float(sla_ms) if sla_ms else require_t1_sla(model, scale)
    sizes = {"kind": "production"}
    mean_items = float(np.mean(QuerySizes("production", 1024).sample(200_000, np.random.default_rng(0))))
    items_s = inprocess_items_per_s(model, scale, cores, batch_size, duration_s)
    qps_in = items_s / mean_items
    warmup = 20
    base = LoadgenSettings(target_qps=0.5 * qps_in, latency_bound_ms=sla, query_sizes=sizes,
                           min_queries=search["min_queries"], min_duration_s=search["min_duration_s"],
                           warmup_queries=warmup)
    kw = {"sla_ms": sla, "rel_tol": search["rel_tolerance"], "repeats": search["repeats"],
          "max_queries": search["max_queries"], "tenant": model, "max_qps": 4 * qps_in}
    pool = InProcessFCFS(functools.partial(build_runner, _runner_spec(model, scale, batch_size)), cores,
                         batch_size, model)
    try:
        res_in = find_qps_star(pool, base, library_items(model, scale), **kw)
    finally:
        pool.close()
    node = tenant_node(model, scale, cores, batch_size, sla_ms=sla)
    try:
        sut = NodeSUT(node)
        lib = node.library_size(model)
        res = find_qps_star(sut, base, lib, **kw)
        sat_items_s, sm, offered = _saturated_items_per_s(sut, model, lib, 1.5 * qps_in, duration_s, warmup)
        sut.close()
    finally:
        node.stop(drain=False)
    trials = res.trials
    return {"model": model, "scale": scale, "cores": cores, "batch_size": batch_size, "sla_ms": round(sla, 3),
            "qps_server": round(res.qps_star, 2), "qps_inprocess_sla": round(res_in.qps_star, 2),
            "efficiency": round(res.qps_star / res_in.qps_star, 3) if res_in.qps_star > 0 else None,
            "qps_inprocess": round(qps_in, 2), "inprocess_items_per_s": round(items_s, 1),
            "server_saturated_items_per_s": round(sat_items_s, 1),
            "qps_server_saturated": round(sat_items_s / mean_items, 2),
            "saturation_efficiency": round(sat_items_s / items_s, 3), "saturation_offered_qps": round(offered, 2),
            "saturation_harness_cpu_util": sm["harness_cpu_util"],
            "saturation_harness_saturated": sm["harness_saturated"],
            "saturation_harness_saturation_reason": sm["harness_saturation_reason"],
            "search_trials": len(trials),
            "search_trials_harness_saturated": int(trials["harness_saturated"].fillna(False).astype(bool).sum()),
            "mean_query_items": round(mean_items, 1), "search_note": res.note, "inprocess_search_note": res_in.note}


def bench_loadgen_agreement(model: str, scale: str, cores: list[int], load_frac: float, duration_s: float,
                            log_dir: Path) -> dict[str, Any]:
    """Same node, same rate, same query-size law: our driver's p95 vs MLPerf LoadGen's (Server scenario)."""
    import numpy as np

    from hera.loadgen.mlperf import compare
    from hera.loadgen.settings import LoadgenSettings
    from hera.loadgen.sut import NodeSUT
    from hera.workload.sizes import QuerySizes

    require_built(model, scale)
    mean_items = float(np.mean(QuerySizes("production", 1024).sample(100_000, np.random.default_rng(0))))
    items_s = inprocess_items_per_s(model, scale, cores, 64, 2.0)
    rate = load_frac * items_s / mean_items
    node = tenant_node(model, scale, cores, 64)
    try:
        lib = node.library_size(model)
        settings = LoadgenSettings(target_qps=rate, duration_s=duration_s, min_duration_s=duration_s,
                                   min_queries=int(rate * duration_s * 0.9), query_sizes={"kind": "production"},
                                   latency_bound_ms=1e4, warmup_queries=0)
        df = compare(lambda: NodeSUT(node), settings, lib, log_dir, tenant=model)
    finally:
        node.stop()
    ours = df[df["harness"] == "hera"].iloc[0]
    theirs = df[df["harness"] == "mlperf_loadgen"].iloc[0]
    rel = abs(ours["latency_ms_p95"] - theirs["latency_ms_p95"]) / theirs["latency_ms_p95"]
    return {"model": model, "scale": scale, "target_qps": round(rate, 2), "load_frac": load_frac,
            "p95_ms_hera": round(float(ours["latency_ms_p95"]), 3),
            "p95_ms_mlperf": round(float(theirs["latency_ms_p95"]), 3),
            "p50_ms_hera": round(float(ours["latency_ms_p50"]), 3),
            "p50_ms_mlperf": round(float(theirs["latency_ms_p50"]), 3),
            "queries_hera": int(ours["n_queries"]), "queries_mlperf": int(theirs["n_queries"]),
            "p95_rel_diff": round(float(rel), 4) if math.isfinite(rel) else None}
