"""``hera bench``: benchmark commands that print their figure (last line: one JSON object) and write it to
``results/<scale>/bench/<name>.json`` with provenance. Benchmarks measure; tests never assert wall time.

- ``build``: time to build every model and its sample library at a scale (fresh, into a scratch dir).
- ``serving``: the server vs the same model called in-process on the same cores, at saturation and as QPS*
  under the SLA (against an ideal FCFS server replaying in-process service times).
- ``dispatch``: added latency of the in-node path for a 1-item query (round trip minus model time).
- ``dispatch-ceiling``: completed sub-batches/s of the whole harness (load generator, node, dispatch) with
  null workers, for several worker counts.
- ``memory``: RSS/PSS of N workers of one model: one copy of the tables plus a per-worker overhead.
- ``loadgen-agreement``: p95 from our open-loop driver vs MLPerf LoadGen at the same arrival rate.
- ``qps-repeatability``: the coefficient of variation of QPS* over independent complete determinations
  (service profile, model, confirmation), each with its own seeds.
- ``model-agreement``: modelled vs confirmed-measured QPS* for every model at 1 and 2 workers.
- ``pair-prediction``: predicted vs measured co-located QPS* per tenant, and EMU, over measured pairs (and the
  mean signed EMU error of each measured ray).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hera.errors import HeraError, NotBuiltError


# ------------------------------------------------------------------------------------------ helpers
def _emit(name: str, scale: str, figure: dict[str, Any], out: Path | None, config: dict[str, Any]) -> int:
    """Write the figure with provenance and print it as the last line. ``out`` is a file, or a folder that gets
    ``<name>.json``; the figure is printed even when the file cannot be written (a measurement is never lost)."""
    from hera.paths import results_dir
    from hera.provenance import provenance

    path = out or results_dir(scale) / "bench" / f"{name}.json"
    if path.is_dir():
        path = path / f"{name}.json"
    line = json.dumps(figure, sort_keys=True, default=float)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"bench": name, "figure": figure, **provenance(config)}, indent=2,
                                   sort_keys=True, default=str) + "\n")
    except OSError as e:
        print(f"hera bench: error: cannot write {path}: {e.strerror or e}", file=sys.stderr)
        print(line)
        return 1
    print(line)
    return 0


def _plan(arg: str | None):
    """The core plan (:mod:`hera.topology`) over ``--cores`` ('all' or a comma-separated CPU list): worker
    cores one per physical core, harness cores (load generator, node) reserved where the plan has them."""
    from hera.errors import ConfigError
    from hera.topology import study_plan

    try:
        cores = "auto" if arg in (None, "all") else [int(x) for x in arg.split(",")]
    except ValueError:
        raise ConfigError(f"--cores must be 'all' or comma-separated CPU ids, not {arg!r}") from None
    return study_plan({"cores": cores})


def _cores(arg: str | None) -> list[int]:
    return list(_plan(arg).worker_cpus)


@contextlib.contextmanager
def _on_harness(arg: str | None) -> Iterator[None]:
    """Run this process (node dispatch, load generator) on the plan's harness cores, if it has any."""
    harness = _plan(arg).harness_cpus
    if not harness:
        yield
        return
    from hera.topology import pinned

    with pinned(harness):
        yield


def _require_built(model: str, scale: str) -> None:
    from hera.paths import build_dir, datasets_dir

    if not (build_dir(scale) / model / "meta.json").is_file():
        raise NotBuiltError(f"model {model!r} is not built at scale {scale!r}: run `hera models build --scale "
                            f"{scale} --models {model}`")
    if not (datasets_dir(scale) / model / "library.json").is_file():
        raise NotBuiltError(f"sample library of {model!r} at scale {scale!r} is missing: run `hera workload "
                            f"library --scale {scale} --models {model}`")


def _node(model: str, scale: str, cores: list[int], batch_size: int, *, sla_ms: float | None = None,
          share: bool = False, queue_limit: int = 100_000):
    from hera.server.node import Node

    return Node({"scale": scale, "allow_core_sharing": share, "tenants": [
        {"name": model, "model": model, "cores": list(cores), "batch_size": batch_size,
         "queue_limit": queue_limit, "sla_ms": sla_ms}]}).start()


def _sla_ms(model: str, scale: str, batch_size: int) -> float:
    """The model's SLA by the study's rule (T1: 5 x one-worker latency of a median-size query)."""
    import pandas as pd

    from hera.paths import results_dir

    t1 = results_dir(scale) / "tables" / "T1.csv"
    if t1.is_file():
        df = pd.read_csv(t1)
        row = df[df["model"] == model]
        if len(row):
            return float(row["sla_ms"].iloc[0])
    raise NotBuiltError(f"no SLA for {model!r} at scale {scale!r}: {t1} has no row for it; run `hera table t1 "
                        f"--scale {scale}` first")


# -------------------------------------------------------------------------------------------- build
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

    _require_built(model, scale)
    sla = float(sla_ms) if sla_ms else _sla_ms(model, scale, batch_size)
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
        res_in = find_qps_star(pool, base, _library_items(model, scale), **kw)
    finally:
        pool.close()
    node = _node(model, scale, cores, batch_size, sla_ms=sla)
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


def _service_once(model: str, config: Path, mode: str, tmp: Path, i: int) -> dict[str, float]:
    """One fresh ``hera profile service --workers 1`` (the pipeline's own path: node, forkserver, pinned
    worker) under allocator ``mode``: its light-load median of full sub-batches and its saturation rate."""
    import subprocess

    import pandas as pd

    from hera.zoo.allocator import ENV

    out = tmp / f"{mode}-{i}.csv"
    env = {**os.environ, ENV: mode}
    cmd = [sys.executable, "-m", "hera", "profile", "service", "--config", str(config), "--model", model,
           "--workers", "1", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise HeraError(f"allocator: `{' '.join(cmd[2:])}` failed: {tail}")
    df = pd.read_csv(out)
    light = df[(df["statistic"] == "sub_batch_service") & (df["regime"] == "light")]
    full = light[light["items"] == light["items"].max()]
    sat = df[df["statistic"] == "saturation_throughput"]
    return {"sub_batch_p50_ms": float(full["p50_ms"].iloc[0]), "saturation_qps": float(sat["value"].iloc[0])}


def bench_allocator(model: str, scale: str, config: Path, processes: int) -> dict[str, Any]:
    """The one-worker service profile of ``model`` measured ``processes`` times under glibc's default heap and
    under the steady heap of :mod:`hera.zoo.allocator`, each in a fresh process, the modes interleaved so that
    drift of the machine hits both alike. Spread between processes is what the allocator is about."""
    import tempfile

    import numpy as np

    from hera.zoo.allocator import MODES

    _require_built(model, scale)
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(processes):
            for mode in ("default", "steady"):
                runs[mode].append(_service_once(model, config, mode, Path(tmp), i))
                print(f"[allocator] {model} {mode} #{i + 1}: {runs[mode][-1]}", file=sys.stderr, flush=True)
    fig: dict[str, Any] = {"model": model, "scale": scale, "processes": processes, "workers": 1}
    for mode, rows in runs.items():
        sub = np.array([r["sub_batch_p50_ms"] for r in rows])
        sat = np.array([r["saturation_qps"] for r in rows])
        fig[mode] = {"sub_batch_p50_ms": [round(float(x), 3) for x in sub],
                     "saturation_qps": [round(float(x), 2) for x in sat],
                     "sub_batch_cov": round(float(sub.std(ddof=1) / sub.mean()), 4),
                     "saturation_cov": round(float(sat.std(ddof=1) / sat.mean()), 4),
                     "sub_batch_max_over_min": round(float(sub.max() / sub.min()), 3)}
    return fig


def _library_items(model: str, scale: str) -> int:
    """Items in the model's sample library (read from its memory-mapped files)."""
    from hera.paths import datasets_dir
    from hera.workload.library import SampleLibrary

    return int(SampleLibrary.open(datasets_dir(scale) / model).n_items)


# ----------------------------------------------------------------------------------------- dispatch
def bench_dispatch(model: str, scale: str, core: int, n: int) -> dict[str, Any]:
    """Round trip of 1-item queries through the node minus the worker's model time (closed loop, one at a
    time, so no queueing)."""
    import numpy as np

    _require_built(model, scale)
    node = _node(model, scale, [core], batch_size=64)
    try:
        lib = node.library_size(model)
        overhead, model_ms = [], []
        for i in range(n + 50):
            t0 = time.monotonic_ns()
            r = node.submit(model, i % lib, 1).result(timeout=30)
            t1 = time.monotonic_ns()
            if not r.ok:
                raise HeraError(f"dispatch benchmark query failed: {r.error}")
            if i >= 50:  # warm-up
                service = r.t_end_ns - r.t_start_ns
                overhead.append((t1 - t0 - service) / 1e6)
                model_ms.append(service / 1e6)
    finally:
        node.stop()
    o = np.asarray(overhead)
    return {"model": model, "scale": scale, "queries": n, "overhead_ms_p50": round(float(np.median(o)), 4),
            "overhead_ms_p99": round(float(np.percentile(o, 99)), 4),
            "model_ms_p50": round(float(np.median(model_ms)), 4)}


# --------------------------------------------------------------------------------- dispatch ceiling
def _null_node(cores: list[int], workers: int, batch_size: int, harness_cores: list[int] | None):
    """A node with one tenant of ``workers`` null workers (sub-batches that do no work) spread over ``cores``."""
    from hera.server.node import Node

    k = min(workers, len(cores))
    if workers % k:
        raise HeraError(f"dispatch-ceiling: {workers} workers do not spread evenly over {k} cores {cores[:k]}; "
                        "use a multiple of the core count")
    return Node({"runner": "synthetic", "allow_core_sharing": True,
                 "harness_cores": list(harness_cores) if harness_cores else None,
                 "tenants": [{"name": "null", "model": "null", "cores": cores[:k], "batch_size": batch_size,
                              "workers_per_core_set": workers // k, "queue_limit": 10_000_000,
                              "options": {"null": True}}]}).start()


def _burst(sut, n: int, sizes: dict[str, Any], lib: int, batch_size: int, process: bool):
    """``n`` queries all scheduled at time 0 (MLPerf's offline scenario): the harness runs flat out."""
    import numpy as np

    from hera.loadgen import driver
    from hera.loadgen.settings import LoadgenSettings

    s = LoadgenSettings(target_qps=1.0, n_queries=n, query_sizes=sizes, warmup_queries=0,
                        max_outstanding=10 * n + 10, completion_timeout_s=300)
    sch = driver.build_schedule(s, lib, tenant="null")
    sch["scheduled_s"] = 0.0
    res = driver.run(sut, s, lib, tenant="null", schedule=sch, loadgen_process=process)
    rows = res.rows[res.rows["ok"]]
    span_s = (rows["t_end_ns"].max() - rows["scheduled_ns"].min()) / 1e9
    subs = int(np.ceil(rows["n_items"].to_numpy() / batch_size).sum())
    return subs / span_s, len(rows) / span_s, res.summary, int(res.summary["n_failed"])



def bench_dispatch_ceiling(workers: list[int], cores: list[int], batch_size: int, duration_s: float,
                           harness_cores: list[int] | None, process: bool, open_loop_sub_batches_per_s: float
                           ) -> dict[str, Any]:
    """Completed sub-batches/s with null workers, through the same path a QPS* trial takes (load generator →
    node → shared task queue → workers → collector → load generator), for each worker count.

    Each point is a burst of production-size queries all due at once, sized to last about ``duration_s`` from
    a first 1,000-query burst; the rate is sub-batches of completed queries over first arrival → last end.
    At the largest worker count an open-loop Poisson run at ``open_loop_sub_batches_per_s`` shows whether the
    harness keeps up with a steady load of that size (issue lateness, harness CPU, saturation verdict).
    """
    import numpy as np

    from hera.loadgen import driver
    from hera.loadgen.settings import LoadgenSettings
    from hera.loadgen.sut import NodeSUT
    from hera.workload.sizes import QuerySizes

    sizes = {"kind": "production"}
    mean_subs = float(np.mean(np.ceil(QuerySizes("production", 1024).sample(
        200_000, np.random.default_rng(0)) / batch_size)))
    out: dict[str, Any] = {"sub_batches_per_s": {}, "queries_per_s": {}, "harness_cpu_util": {}}
    open_loop = None
    for w in workers:
        node = _null_node(cores, w, batch_size, harness_cores)
        sut = NodeSUT(node, harness_cores=harness_cores, process=process)
        try:
            lib = node.library_size("null")
            rate, _, _, _ = _burst(sut, 1000, sizes, lib, batch_size, process)
            n = int(min(max(2000, rate * duration_s / mean_subs), 400_000))
            sub_s, q_s, summary, failed = _burst(sut, n, sizes, lib, batch_size, process)
            if failed:
                raise HeraError(f"dispatch-ceiling: {failed} of {n} null queries failed with {w} workers")
            out["sub_batches_per_s"][str(w)] = round(sub_s)
            out["queries_per_s"][str(w)] = round(q_s)
            out["harness_cpu_util"][str(w)] = summary["harness_cpu_util"]
            print(f"{w:3d} null workers: {sub_s:10,.0f} sub-batches/s ({q_s:,.0f} queries/s, {n} queries), "
                  f"harness {summary['harness']} using {summary['harness_cpu_util']:.2f} cores", flush=True)
            if w == max(workers) and open_loop_sub_batches_per_s > 0:
                qps = open_loop_sub_batches_per_s / mean_subs
                s = LoadgenSettings(target_qps=qps, duration_s=duration_s, query_sizes=sizes, warmup_queries=0,
                                    max_outstanding=1_000_000)
                sm = driver.run(sut, s, lib, tenant="null", loadgen_process=process).summary
                open_loop = {"workers": w, "offered_sub_batches_per_s": open_loop_sub_batches_per_s,
                             "offered_qps": round(qps, 1), "achieved_qps": round(sm["achieved_qps"], 1),
                             "issue_lateness_us_p99": round(sm["issue_lateness_us_p99"], 1),
                             "completion_lag_ms_p99": round(sm["completion_lag_ms_p99"], 3),
                             "harness_cpu_util": sm["harness_cpu_util"],
                             "harness_saturated": sm["harness_saturated"],
                             "harness_saturation_reason": sm["harness_saturation_reason"]}
                print(f"    open loop at {open_loop_sub_batches_per_s:,.0f} sub-batches/s ({qps:,.0f} queries/s): "
                      f"achieved {sm['achieved_qps']:,.0f} queries/s, issue lateness p99 "
                      f"{sm['issue_lateness_us_p99']:.0f} us, saturated: {sm['harness_saturated']} "
                      f"{sm['harness_saturation_reason']}", flush=True)
        finally:
            sut.close()
            node.stop(drain=False)
    out.update(batch_size=batch_size, mean_sub_batches_per_query=round(mean_subs, 3), cores=cores,
               harness_cores=harness_cores, harness="process" if process else "in-process",
               open_loop=open_loop, machine_cpus=os.cpu_count(),
               note="null workers return zeros without computing; on a machine with fewer cores than workers "
                    "the workers time-share the cores with the harness; the machine may be shared")
    return out


# ------------------------------------------------------------------------------------------- memory
def _smaps_rollup(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, val = line.split(":", 1)
        out[key.strip()] = int(val.split()[0]) * 1024
    return out


def _worker_pids(node) -> list[int]:
    return [pid for t in node.stats().values() for pid in t.worker_pids]


def _touch_all(node, model: str, lib: int, batch: int) -> None:
    """Query the whole library once so every worker has gathered rows from the tables."""
    futs = [node.submit(model, s, min(batch, lib - s)) for s in range(0, lib, batch)]
    for f in futs:
        f.result(timeout=120)


def _memory_once(model: str, scale: str, workers: int, cores: list[int]) -> dict[str, Any]:
    from hera.paths import build_dir

    files = sorted(p for p in (build_dir(scale) / model).iterdir() if p.suffix != ".json")
    node_cores = [cores[i % len(cores)] for i in range(workers)]
    # one worker per listed core; with more workers than cores, list a core several times via sharing
    node = _node_multi(model, scale, node_cores)
    try:
        lib = node.library_size(model)
        for _ in range(2):
            _touch_all(node, model, lib, 64)
        pids = _worker_pids(node)
        roll = [_smaps_rollup(p) for p in pids]
        weights = [_weights_memory(p, files) for p in pids]
    finally:
        node.stop()
    return {"workers": len(pids), "rss_bytes": sum(r["Rss"] for r in roll), "pss_bytes": sum(r["Pss"] for r in roll),
            "weights_rss_bytes": sum(w["rss_bytes"] for w in weights),
            "weights_pss_bytes": sum(w["pss_bytes"] for w in weights)}


def _weights_memory(pid: int, files: list[Path]) -> dict[str, int]:
    """RSS and PSS of the model's weight files mapped into ``pid``."""
    from hera.zoo.load import mapped_file_memory

    parts = [mapped_file_memory(pid, f) for f in files]
    return {k: sum(p[k] for p in parts) for k in ("rss_bytes", "pss_bytes")}


def _node_multi(model: str, scale: str, cores: list[int]):
    """A node whose tenant runs one worker per entry of ``cores`` (entries may repeat: workers share)."""
    from hera.server.node import Node

    uniq = sorted(set(cores))
    per = len(cores) // len(uniq)
    tenants = [{"name": model if i == 0 else f"{model}-{i}", "model": model, "cores": uniq, "batch_size": 64}
               for i in range(per)]
    return Node({"scale": scale, "allow_core_sharing": per > 1, "tenants": tenants}).start()


def bench_memory(model: str, scale: str, workers: int, cores: list[int]) -> dict[str, Any]:
    import json as _json

    from hera.paths import build_dir

    _require_built(model, scale)
    meta = _json.loads((build_dir(scale) / model / "meta.json").read_text())
    table = int(meta["embedding_bytes"])
    one = _memory_once(model, scale, 1, cores[:1])
    many = _memory_once(model, scale, workers, cores)
    extra = (many["pss_bytes"] - one["pss_bytes"]) / max(1, many["workers"] - 1)
    return {"model": model, "scale": scale, "workers": many["workers"], "table_mb": round(table / 1e6, 1),
            "weights_pss_mb_1": round(one["weights_pss_bytes"] / 1e6, 1),
            "weights_pss_mb_n": round(many["weights_pss_bytes"] / 1e6, 1),
            "weights_rss_mb_n": round(many["weights_rss_bytes"] / 1e6, 1),
            "pss_mb_1": round(one["pss_bytes"] / 1e6, 1), "pss_mb_n": round(many["pss_bytes"] / 1e6, 1),
            "rss_mb_n": round(many["rss_bytes"] / 1e6, 1),
            "table_copies_n": round(many["weights_pss_bytes"] / table, 3),
            "mb_per_extra_worker": round(extra / 1e6, 1)}


# -------------------------------------------------------------------------------- loadgen agreement
def bench_loadgen_agreement(model: str, scale: str, cores: list[int], load_frac: float, duration_s: float,
                            log_dir: Path) -> dict[str, Any]:
    """Same node, same rate, same query-size law: our driver's p95 vs MLPerf LoadGen's (Server scenario)."""
    import numpy as np

    from hera.loadgen.mlperf import compare
    from hera.loadgen.settings import LoadgenSettings
    from hera.loadgen.sut import NodeSUT
    from hera.workload.sizes import QuerySizes

    _require_built(model, scale)
    mean_items = float(np.mean(QuerySizes("production", 1024).sample(100_000, np.random.default_rng(0))))
    items_s = inprocess_items_per_s(model, scale, cores, 64, 2.0)
    rate = load_frac * items_s / mean_items
    node = _node(model, scale, cores, 64)
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


# ---------------------------------------------------------------------------------------------- CLI
def register(sub: argparse._SubParsersAction) -> None:
    from hera.zoo.spec import list_models

    p = sub.add_parser("bench", help="benchmarks that print their figure (last line: JSON)")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH", required=True)

    def common(q: argparse.ArgumentParser, model: bool = True) -> None:
        if model:
            q.add_argument("--model", default="dlrm_rmc1", choices=list_models())
        q.add_argument("--scale", default="ci", choices=["ci", "default", "paper"])
        q.add_argument("--out", type=Path, help="where to write the JSON (default results/<scale>/bench/)")

    b = bsub.add_parser("build", help="time to build all models and sample libraries at a scale")
    common(b, model=False)
    b.add_argument("--models", help="comma-separated model ids (default: every model of models/*.yaml)")
    b.add_argument("--items", type=int, help="items per sample library (default: the scale's)")
    b.set_defaults(func=_cmd_build)

    s = bsub.add_parser("serving", help="QPS* through the server vs in-process throughput")
    common(s)
    s.add_argument("--cores", default="all", help="'all' or a comma-separated CPU list (workers: one thread per "
                                                  "physical core; harness cores reserved on >= 8 cores)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--duration-s", type=float, default=5.0, help="in-process / saturation run length")
    s.add_argument("--config", type=Path, help="study config for the search settings (default: the scale's)")
    s.add_argument("--sla-ms", type=float, help="SLA in ms (default: the model's row of T1)")
    s.set_defaults(func=_cmd_serving)

    d = bsub.add_parser("dispatch", help="added latency of the in-node path for 1-item queries")
    common(d)
    d.add_argument("--core", type=int, default=None, help="worker CPU (default: the core plan's first)")
    d.add_argument("--queries", type=int, default=2000)
    d.set_defaults(func=_cmd_dispatch)

    c = bsub.add_parser("dispatch-ceiling", help="completed sub-batches/s of the harness with null workers")
    c.add_argument("--workers", default="1,2,4,8,16", help="comma-separated worker counts")
    c.add_argument("--cores", default="all", help="cores the workers share: 'all' or a comma-separated list")
    c.add_argument("--harness-cores", help="comma-separated CPUs for the load generator and the node's threads "
                   "(default: the core plan's harness cores, if it has any)")
    c.add_argument("--batch-size", type=int, default=64)
    c.add_argument("--duration-s", type=float, default=3.0, help="about how long each point runs")
    c.add_argument("--harness", choices=["process", "in-process"], default="process",
                   help="load generator in its own process (default) or in the node's process")
    c.add_argument("--open-loop-sub-batches-per-s", type=float, default=14_000.0,
                   help="steady Poisson load at the largest worker count (0: skip); 14,000 is what 16 RMC1 "
                        "workers at default scale need")
    c.add_argument("--out", type=Path, help="where to write the JSON (default results/bench/dispatch-ceiling.json)")
    c.set_defaults(func=_cmd_dispatch_ceiling)

    m = bsub.add_parser("memory", help="RSS/PSS of N workers of one model")
    common(m)
    m.add_argument("--workers", type=int, default=2)
    m.add_argument("--cores", default="all")
    m.set_defaults(func=_cmd_memory)

    a = bsub.add_parser("loadgen-agreement", help="p95 of our load generator vs MLPerf LoadGen")
    common(a)
    a.add_argument("--cores", default="all")
    a.add_argument("--load-frac", type=float, default=0.5, help="offered load as a fraction of capacity")
    a.add_argument("--duration-s", type=float, default=20.0)
    a.set_defaults(func=_cmd_agreement)


    al = bsub.add_parser("allocator", help="one-worker service profile in fresh processes: glibc default "
                                            "heap vs the steady heap the workers use")
    common(al)
    al.add_argument("--processes", type=int, default=6, help="fresh service profiles per mode (default 6)")
    al.add_argument("--config", type=Path, help="study config (default: the scale's)")
    al.set_defaults(func=_cmd_allocator)

    r = bsub.add_parser("qps-repeatability", help="spread of QPS* over independent complete determinations")
    common(r)
    r.add_argument("--runs", type=int, default=3, help="independent determinations (seeds) (default 3)")
    r.add_argument("--workers", type=int, default=1, help="worker count (default 1)")
    r.add_argument("--config", type=Path, help="study config (default: the scale's)")
    r.set_defaults(func=_cmd_repeatability)

    g = bsub.add_parser("model-agreement", help="modelled vs confirmed-measured QPS* of every model")
    common(g, model=False)
    g.add_argument("--models", help="comma-separated model ids (default: the study's)")
    g.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    g.add_argument("--config", type=Path, help="study config (default: the scale's)")
    g.add_argument("--from-results", type=Path, metavar="DIR",
                   help="compute from the scalability table of a pipeline run (DIR/profile/scalability.csv) "
                        "instead of measuring")
    g.set_defaults(func=_cmd_model_agreement)


    pp = bsub.add_parser("pair-prediction", help="predicted vs measured co-location of model pairs")
    common(pp, model=False)
    pp.add_argument("--models", help="comma-separated model ids whose pairs are measured (default: the study's "
                                     "colocation.models, else all its models)")
    pp.add_argument("--min-pairs", type=int, default=12, help="refuse to report over fewer pairs (default 12)")
    pp.add_argument("--config", type=Path, help="study config (default: the scale's)")
    pp.add_argument("--from-results", type=Path, metavar="DIR",
                    help="compute from the co-location table of a pipeline run (DIR/colocation/pairs.csv) instead of "
                         "measuring")
    pp.set_defaults(func=_cmd_pair_prediction)

    ds = bsub.add_parser("des", help="cost of the node model where the pipeline calls it (compiled event loop)")
    common(ds, model=False)
    ds.add_argument("--workers", type=int, default=1, help="worker count of the modelled node (default 1)")
    ds.add_argument("--service", type=Path, help="a service profile (results/<scale>/profile/service/M.parquet; "
                                                 "default: a synthetic law of the same shape)")
    ds.add_argument("--repeats", type=int, default=3, help="timed calls, the shortest reported (default 3)")
    ds.add_argument("--config", type=Path, help="study config (default: the scale's)")
    ds.set_defaults(func=_cmd_des)

    rs = bsub.add_parser("runs", help="headline numbers of several complete pipeline runs and their spread")
    rs.add_argument("--from-results", type=Path, metavar="DIR", nargs="+", required=True,
                    help="two or more results folders of complete runs (results/<scale> of each clone, or "
                         "results/reference)")
    rs.add_argument("--labels", help="comma-separated names of the runs, in order (default: their folders)")
    rs.add_argument("--scale", default="default", choices=["ci", "default", "paper"])
    rs.add_argument("--out", type=Path, help="where to write the JSON (default results/<scale>/bench/runs.json)")
    rs.set_defaults(func=_cmd_runs)

    sv = bsub.add_parser("service-source", help="F2 points of finished runs re-modelled from the stage's or the "
                                                "refreshed service profile, with and without the probe")
    sv.add_argument("--from-results", type=Path, metavar="DIR", nargs="+", required=True,
                    help="results folders of complete runs that kept their service samples (results/<scale>)")
    sv.add_argument("--labels", help="comma-separated names of the runs, in order (default: their folders)")
    sv.add_argument("--scale", default="default", choices=["ci", "default", "paper"])
    sv.add_argument("--out", type=Path, help="where to write the JSON (default results/<scale>/bench/"
                                             "service-source.json)")
    sv.set_defaults(func=_cmd_service_source)


def _synthetic_law(workers: int, batch_size: int, seed: int):
    """A service law shaped like a measured one (gamma samples, 1 ms + 0.1 ms per item, 200 per size and
    regime): what a simulation step costs does not depend on the values."""
    import numpy as np

    from hera.queueing.service import ServiceLaw

    g = np.random.default_rng(seed)
    sizes = sorted({1, 2, 4, 8, 16, 32, batch_size} | {int(x) for x in g.integers(1, batch_size, 8)})
    pools = {r: {s: g.gamma(4.0, (f + 0.1 * f * s) / 4.0, 200) for s in sizes}
             for r, f in (("light", 1.0), ("saturated", 1.2))}
    return ServiceLaw(workers, batch_size, pools["light"], pools["saturated"], g.gamma(2.0, 0.05, 200), 0.02)


def _best_of(fn, repeats: int) -> float:
    """Shortest wall time (s) of ``repeats`` calls (the least disturbed by the rest of the machine)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_des(study: dict[str, Any], workers: int, service: Path | None, repeats: int) -> dict[str, Any]:
    """What the node model costs where the pipeline calls it: one F2 model solve (the study's ``model``
    settings), one trial's control variate for one tenant (its replay through the model plus the expected tail
    at a new rate), and the compiled event loop against the same loop run by the interpreter (their outputs
    must be identical)."""
    import numpy as np

    from hera.profile.scalability import confirm_warmup, model_settings
    from hera.profile.service import mix_sizes, read_samples, service_law
    from hera.queueing.des import simulate
    from hera.queueing.qps import TailModel, modelled_qps_star, unloaded_quantiles

    batch, pct, warm = int(study["batch_size"]), float(study["sla"]["percentile"]), confirm_warmup(study)
    law = (service_law(read_samples(service), workers, batch, source=str(service)) if service
           else _synthetic_law(workers, batch, int(study["seed"])))
    settings = model_settings(study, "bench-des")
    mix = mix_sizes(study, max(settings.n_queries, 4000), int(study["seed"]))
    t0 = time.perf_counter()
    simulate(law, np.arange(4.0), mix[:4])  # compiles the loop, or loads it from its on-disk cache
    first_call_s = time.perf_counter() - t0
    sla_ms = 3.0 * unloaded_quantiles(law, mix[:2000], (0.99,))[0.99]  # the study's SLA rule, on this law
    solved = []
    solve_s = _best_of(lambda: solved.append(modelled_qps_star(law, mix, sla_ms, pct, settings)), repeats)
    rate = solved[-1].qps_star if solved[-1].qps_star > 0 else 0.5 * law.capacity_qps(mix)
    n = int(study["confirm"]["min_queries"]) + warm
    g = np.random.default_rng(1)
    chunks = [(np.cumsum(g.exponential(1 / rate, n)), mix[g.integers(0, mix.size, n)], np.arange(n) >= warm)
              for _ in range(2)]
    tm = TailModel(law, mix, pct, seed=1)
    new_rate = iter(rate * (1 + 1e-6 * np.arange(1, repeats + 1)))  # a new rate each time: nothing cached
    replay_s = _best_of(lambda: (tm.realised(chunks), tm.expected_log_tail(next(new_rate), [n - warm] * 2, warm)),
                        repeats)
    arrivals = np.cumsum(g.exponential(1 / rate, (200, 8)), axis=0)
    out = {}
    times = {c: _best_of(lambda c=c: out.__setitem__(c, simulate(law, arrivals, mix[:200],
                                                                 rng=np.random.default_rng(3), compiled=c)),
                         1 if not c else repeats) for c in (False, True)}
    return {"workers": workers, "service": str(service) if service else "synthetic", "sla_ms": round(sla_ms, 3),
            "modelled_qps_star": round(solved[-1].qps_star, 3), "first_call_s": round(first_call_s, 3),
            "model_solve_s": round(solve_s, 4), "control_variate_per_trial_ms": round(1e3 * replay_s, 2),
            "loop_interpreted_s": round(times[False], 4), "loop_compiled_s": round(times[True], 5),
            "compiled_speedup": round(times[False] / times[True], 1),
            "identical": bool(np.array_equal(out[False], out[True])), "repeats": repeats}


def _study(scale: str, path: Path | None) -> dict[str, Any]:
    from hera import config as cfg
    from hera.paths import repo_root

    study = cfg.load(path or repo_root() / "workflow" / "config" / f"{scale}.yaml")
    if study["scale"] != scale:
        raise HeraError(f"--scale {scale} does not match the config's scale {study['scale']}")
    return study


def _t1_path(scale: str) -> Path:
    """The study's T1 table, whose SLAs the benchmarks use when it exists."""
    from hera.paths import results_dir

    return results_dir(scale) / "tables" / "T1.csv"


def _t1_sla(model: str, scale: str) -> float | None:
    """The model's SLA from the study's T1 table when there is one (benchmarks then use the study's SLA)."""
    import pandas as pd

    t1 = _t1_path(scale)
    if t1.is_file():
        df = pd.read_csv(t1)
        row = df[df["model"] == model]
        if len(row) and "headroom" in df.columns:
            return float(row["sla_ms"].iloc[0])
    return None


def _t1_source(scale: str) -> str:
    """Where :func:`_t1_sla` takes an SLA from: the study's T1 table and when it was written (its provenance
    sidecar), so a benchmark says which stage's measurement set its SLA."""
    import json

    t1 = _t1_path(scale)
    meta = t1.with_name(t1.name + ".meta.json")
    try:
        created = json.loads(meta.read_text()).get("created_utc", "") if meta.is_file() else ""
    except (OSError, ValueError):
        created = ""
    return str(t1) + (f" (written {created})" if created else "")


def bench_repeatability(model: str, scale: str, runs: int, workers: int, study: dict[str, Any]) -> dict[str, Any]:
    """QPS* of ``model`` with ``workers`` workers over ``runs`` complete determinations with different seeds."""
    from hera.profile.scalability import determine

    if runs < 2:
        raise HeraError(f"--runs must be at least 2 for a spread, not {runs}")
    _require_built(model, scale)
    sla = _t1_sla(model, scale)
    source = _t1_source(scale) if sla is not None else "the first determination's SLA rule (no T1 table)"
    out = []
    for k in range(runs):
        cfg = dict(study, seed=int(study["seed"]) + 1000 * (k + 1))
        row = determine(cfg, model, [workers], sla_ms=sla, stream=f"run{k}").iloc[0]
        sla = float(row["sla_ms"]) if sla is None else sla  # every run against the same SLA
        out.append(row)
        print(f"run {k}: measured QPS* {row['qps_star']:.2f} (repeats {row['per_repeat']}), modelled "
              f"{row['qps_star_model']:.2f}, {row['seconds']:.0f} s", flush=True)
    return {**repeatability_figure(model, workers, sla, out), "sla_source": source}


def _cov(x: Any) -> float | None:
    """Sample coefficient of variation; None where it is undefined (no positive mean, or a missing value)."""
    import numpy as np

    return float(x.std(ddof=1) / x.mean()) if x.size > 1 and np.isfinite(x).all() and x.mean() > 0 else None


def repeatability_figure(model: str, workers: int, sla_ms: float | None, rows: list[Any]) -> dict[str, Any]:
    """The spread of complete determinations (``rows``: :func:`hera.profile.scalability.determine` rows). Beside
    the confirmed QPS* (``cov``, the bar), what tells a method's noise from the machine's: each determination's
    own repeat spread (``repeat_cov``), the measured service drift (served over modelled query span) and the
    node model on the service times as served (``qps_star_model_served``) — when that spreads as much as the
    measurement, the machine's speed moved between determinations, not the confirmation."""
    import numpy as np

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) if name in r and r[name] is not None else math.nan for r in rows], float)

    def listed(x: np.ndarray) -> list[float | None]:
        return [round(float(v), 3) if np.isfinite(v) else None for v in x]

    q, m, raw = col("qps_star"), col("qps_star_model"), col("qps_star_raw")
    served, drift, within = col("qps_star_model_served"), col("service_drift"), col("qps_star_cov")
    return {"model": model, "workers": workers, "runs": len(rows), "sla_ms": sla_ms, "qps_star": listed(q),
            "cov": _cov(q), "qps_star_raw": listed(raw), "cov_raw": _cov(raw),
            "qps_star_model": listed(m), "cov_model": _cov(m),
            "qps_star_model_served": listed(served), "cov_model_served": _cov(served),
            "service_drift": listed(drift), "cov_service_drift": _cov(drift), "repeat_cov": listed(within),
            "seconds_per_run": [round(float(r["seconds"]), 1) for r in rows],
            "trials_per_run": [int(r["n_trials"]) for r in rows]}


def bench_model_agreement(scale: str, models: list[str], workers: list[int], study: dict[str, Any],
                          from_results: Path | None) -> dict[str, Any]:
    """Modelled vs confirmed-measured QPS* per (model, workers)."""
    import pandas as pd

    from hera.profile.scalability import determine
    from hera.report.claims import model_agreement, model_errors

    if from_results is not None:
        path = Path(from_results) / "profile" / "scalability.csv"
        if not path.is_file():
            raise HeraError(f"{path} does not exist")
        df = pd.read_csv(path)
        df = df[df["model"].isin(models) & df["workers"].isin(workers)]
    else:
        parts = []
        for m in models:
            _require_built(m, scale)
            parts.append(determine(study, m, workers, sla_ms=_t1_sla(m, scale), stream="agreement"))
            r = parts[-1]
            print("  ".join(f"{m} w={int(w)}: model {a:.2f} measured {b:.2f}" for w, a, b in
                            zip(r["workers"], r["qps_star_model"], r["qps_star"])), flush=True)
        df = pd.concat(parts, ignore_index=True)
    err = model_errors(df)
    fig = model_agreement(df)
    fig["points"] = [{"model": r["model"], "workers": int(r["workers"]), "qps_star_model": round(r["qps_star_model"], 3),
                      "qps_star": round(r["qps_star"], 3), "error": round(r["error"], 4),
                      "relative": bool(r["relative"]),
                      "service_drift": round(float(r["service_drift"]), 3)
                      if pd.notna(r.get("service_drift")) else None,
                      "qps_star_model_served": round(float(r["qps_star_model_served"]), 3)
                      if pd.notna(r.get("qps_star_model_served")) else None,
                      "qps_star_model_profile": round(float(r["qps_star_model_profile"]), 3)
                      if pd.notna(r.get("qps_star_model_profile")) else None,
                      "operating_drift": round(float(r["operating_drift"]), 3)
                      if pd.notna(r.get("operating_drift")) else None} for _, r in err.iterrows()]
    if "qps_star_model_steady" in df.columns and df["qps_star_model_steady"].notna().any():
        steady = model_agreement(df.assign(qps_star_model=df["qps_star_model_steady"]))
        fig["steady_state_model"] = {k: steady[k] for k in ("median_abs_rel_error", "max_abs_rel_error")}
    if "seconds" in df.columns:
        fig["seconds_per_point"] = {f"{r['model']}/{int(r['workers'])}": round(float(r["seconds"]), 1)
                                    for _, r in df.iterrows()}
    return fig


def bench_pair_prediction(scale: str, models: list[str], study: dict[str, Any], from_results: Path | None,
                          min_pairs: int) -> dict[str, Any]:
    """Prediction errors over the measured points of every pair of ``models`` (:mod:`hera.policy.accuracy`)."""
    import itertools

    import pandas as pd

    from hera.paths import results_dir
    from hera.policy.accuracy import prediction_errors, prediction_summary

    pairs = [f"{a}__{b}" for a, b in itertools.combinations(models, 2)]
    if len(pairs) < min_pairs:
        raise HeraError(f"{len(models)} models give {len(pairs)} pairs, fewer than --min-pairs {min_pairs}")
    if from_results is not None:
        path = Path(from_results) / "colocation" / "pairs.csv"
        if not path.is_file():
            raise HeraError(f"{path} does not exist")
        df = pd.read_csv(path)
        keys = {tuple(k) for k in df[["model_a", "model_b"]].to_numpy()}
        df = df[[(a, b) in keys and f"{a}__{b}" in pairs for a, b in zip(df["model_a"], df["model_b"])]]
    else:
        from hera.profile import colocation

        res = results_dir(scale)
        need = [res / "tables" / "T1.csv", res / "profile" / "scalability.csv", res / "colocation" / "predicted.csv"]
        need += [res / "profile" / "service" / f"{m}.parquet" for m in models]
        absent = [p for p in need if not p.is_file()]
        if absent:
            raise HeraError(f"{absent[0]} does not exist: run the pipeline's profiles first (`snakemake --cores all "
                            f"{res}/colocation/predicted.csv`)")
        parts = []
        for pair in pairs:
            a, b = pair.split("__")
            out = res / "bench" / "pairs" / f"{pair}.csv"
            services = {m: str(res / "profile" / "service" / f"{m}.parquet") for m in (a, b)}
            parts.append(colocation.run(study, pair, need[0], need[1], need[2], services, out))
            print(f"{pair}: " + ", ".join(f"s={r.share_a:g} EMU {r.emu:.3f} (predicted {r.predicted_emu:.3f})"
                                          for r in parts[-1].itertuples()), flush=True)
        df = pd.concat(parts, ignore_index=True)
    err = prediction_errors(df)
    fig = prediction_summary(err)
    n = int(df[["model_a", "model_b"]].drop_duplicates().shape[0])
    if n < min_pairs:
        raise HeraError(f"only {n} measured pairs, fewer than --min-pairs {min_pairs}")
    fig["splits"] = sorted({f"{int(r.cores_a)}+{int(r.cores_b)} {r.llc}" for r in df.itertuples()})
    # where the error sits: the mean signed EMU error (predicted − measured) of each measured ray
    by_ray = err.groupby(pd.to_numeric(err["share_a"]).round(3))["emu_error"].mean()
    fig["mean_emu_error_by_ray"] = {f"{s:g}": round(float(v), 4) for s, v in by_ray.items()}
    def num(x: Any) -> float | None:
        return round(float(x), 4) if pd.notna(x) else None

    fig["point_errors"] = [{"pair": f"{r.model_a}__{r.model_b}", "share_a": r.share_a, "error_a": num(r.error_a),
                            "error_b": num(r.error_b), "emu": num(r.emu), "predicted_emu": num(r.predicted_emu),
                            "predicted_served_emu": num(r.predicted_served_emu)} for r in err.itertuples()]
    return fig


def _cmd_pair_prediction(args) -> int:
    study = _study(args.scale, args.config)
    models = ([m.strip() for m in args.models.split(",") if m.strip()] if args.models
              else list(study["colocation"].get("models") or study["models"]))
    fig = bench_pair_prediction(args.scale, models, study, args.from_results, args.min_pairs)
    return _emit("pair-prediction", args.scale, fig, args.out, vars_of(args))


def _run_labels(args) -> list[str]:
    """The names of the ``--from-results`` runs: ``--labels`` (one per run), else their folders."""
    labels = [x.strip() for x in args.labels.split(",")] if args.labels else [str(d) for d in args.from_results]
    if len(labels) != len(args.from_results):
        raise HeraError(f"--labels names {len(labels)} runs, --from-results gives {len(args.from_results)}")
    return labels


def _cmd_runs(args) -> int:
    from hera.report.runs import compare, headline

    labels = _run_labels(args)
    runs = [headline(d, label) for d, label in zip(args.from_results, labels)]
    def pct(x: float) -> str:
        return f"{x:.1%}" if math.isfinite(x) else "n/a"

    def emu(x: float) -> str:
        return f"{x:.3f}" if math.isfinite(x) else "n/a"

    def factor(x: float) -> str:
        return f"x{x:.2f}" if math.isfinite(x) else "n/a"

    for r in runs:
        print(f"{r.path} ({', '.join(r.commits)}): F2 {r.f2_stage_s / 60:.1f} min; model agreement "
              f"{pct(r.model_median_abs_rel_error)} / {pct(r.model_max_abs_rel_error)} (profile alone "
              f"{pct(r.model_profile_median_abs_rel_error)} / {pct(r.model_profile_max_abs_rel_error)}); pair prediction "
              f"{pct(r.pair_median_abs_rel_error)} / EMU {emu(r.pair_mean_abs_emu_error)}; C5 "
              f"{pct(r.c5_violation_frac)}; as served: model {pct(r.model_served_median_abs_rel_error)} / "
              f"{pct(r.model_served_max_abs_rel_error)}, pairs {pct(r.pair_served_median_abs_rel_error)} / EMU "
              f"{emu(r.pair_served_mean_abs_emu_error)}; the stage's profile off at the operating point by "
              f"{factor(r.stage_drift_median)} (median)", flush=True)
    out = compare(runs)
    corr = out["pair_drift_between_run_correlation"]
    if corr is not None:
        print("co-location service drift per (victim, partner), between-run correlation of its log: "
              + ", ".join(f"{k} {v:+.2f}" for k, v in corr["pairs_of_runs"].items())
              + " (near 0: the machine's speed at the time, not a pair's interference)", flush=True)
    return _emit("runs", args.scale, out, args.out, vars_of(args))


def _cmd_service_source(args) -> int:
    import pandas as pd

    from hera.report.service_source import VARIANTS, remodel, summary

    labels = _run_labels(args)
    frames = []
    for d, label in zip(args.from_results, labels):
        df = remodel(d).assign(run=label)
        frames.append(df)
        print(df[["model", "workers", "measured", *VARIANTS]].round(2).to_string(index=False), flush=True)
        print(f"{label}: " + "; ".join(f"{k} {v['median_abs_rel_error']:.1%} / {v['max_abs_rel_error']:.1%}"
                                       for k, v in summary(df).items() if v["points"]), flush=True)
    both = pd.concat(frames, ignore_index=True)
    fig = {"runs": {label: summary(df) for label, df in zip(labels, frames)}, "pooled": summary(both)}
    return _emit("service-source", args.scale, fig, args.out, vars_of(args))


def _cmd_repeatability(args) -> int:
    study = _study(args.scale, args.config)
    fig = bench_repeatability(args.model, args.scale, args.runs, args.workers, study)
    return _emit(f"qps-repeatability-{args.model}-w{args.workers}", args.scale, fig, args.out, vars_of(args))


def _cmd_model_agreement(args) -> int:
    study = _study(args.scale, args.config)
    models = [m.strip() for m in args.models.split(",")] if args.models else list(study["models"])
    try:
        workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    except ValueError:
        raise HeraError(f"--workers must be comma-separated integers, not {args.workers!r}") from None
    fig = bench_model_agreement(args.scale, models, workers, study, args.from_results)
    return _emit("model-agreement", args.scale, fig, args.out, vars_of(args))


def _cmd_allocator(args) -> int:
    from hera.paths import repo_root

    if args.processes < 2:
        raise HeraError(f"allocator: --processes must be >= 2 (a spread needs two), not {args.processes}")
    config = args.config or repo_root() / "workflow" / "config" / f"{args.scale}.yaml"
    fig = bench_allocator(args.model, args.scale, config, args.processes)
    return _emit(f"allocator-{args.model}", args.scale, fig, args.out, vars_of(args))


def _cmd_build(args) -> int:
    from hera.zoo.spec import list_models

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list_models()
    fig = bench_build(args.scale, models, args.items)
    print(f"built {fig['models']} models in {fig['models_s']} s and their libraries in {fig['libraries_s']} s")
    return _emit("build", args.scale, fig, args.out, vars_of(args))


def _cmd_serving(args) -> int:
    from hera import config as cfg
    from hera.paths import repo_root

    study = cfg.load(args.config or repo_root() / "workflow" / "config" / f"{args.scale}.yaml")
    with _on_harness(args.cores):
        fig = bench_serving(args.model, args.scale, _cores(args.cores), args.batch_size, args.duration_s,
                            study["search"], args.sla_ms)
    return _emit(f"serving-{args.model}", args.scale, fig, args.out, vars_of(args))


def _cmd_des(args) -> int:
    if args.workers < 1 or args.repeats < 1:
        raise HeraError(f"bench des: --workers and --repeats must be >= 1, got {args.workers} and {args.repeats}")
    if args.service is not None and not args.service.is_file():
        raise HeraError(f"bench des: no service profile at {args.service}")
    fig = bench_des(_study(args.scale, args.config), args.workers, args.service, args.repeats)
    return _emit(f"des-{args.workers}", args.scale, fig, args.out, vars_of(args))


def _cmd_dispatch(args) -> int:
    core = _cores("all")[0] if args.core is None else args.core
    with _on_harness("all"):
        fig = bench_dispatch(args.model, args.scale, core, args.queries)
    return _emit("dispatch", args.scale, fig, args.out, vars_of(args))


def _cmd_dispatch_ceiling(args) -> int:
    try:
        workers = [int(x) for x in args.workers.split(",") if x.strip()]
        harness_cores = [int(x) for x in args.harness_cores.split(",")] if args.harness_cores else None
    except ValueError:
        raise HeraError(f"dispatch-ceiling: --workers {args.workers!r} / --harness-cores must be comma-separated "
                        "integers") from None
    if not workers or min(workers) < 1:
        raise HeraError(f"dispatch-ceiling: --workers {args.workers!r} must list worker counts >= 1")
    plan = _plan(args.cores)
    if harness_cores is None and plan.harness_cpus:
        harness_cores = list(plan.harness_cpus)
    fig = bench_dispatch_ceiling(workers, list(plan.worker_cpus), args.batch_size, args.duration_s, harness_cores,
                                 args.harness == "process", args.open_loop_sub_batches_per_s)
    from hera.paths import repo_root

    out = args.out or repo_root() / "results" / "bench" / "dispatch-ceiling.json"  # no model, no scale
    return _emit("dispatch-ceiling", "ci", fig, out, vars_of(args))


def _cmd_memory(args) -> int:
    with _on_harness(args.cores):
        fig = bench_memory(args.model, args.scale, args.workers, _cores(args.cores))
    return _emit(f"memory-{args.model}", args.scale, fig, args.out, vars_of(args))


def _cmd_agreement(args) -> int:
    from hera.paths import results_dir

    log_dir = results_dir(args.scale) / "bench" / "mlperf_logs"
    with _on_harness(args.cores):
        fig = bench_loadgen_agreement(args.model, args.scale, _cores(args.cores), args.load_frac,
                                      args.duration_s, log_dir)
    return _emit(f"loadgen-agreement-{args.model}", args.scale, fig, args.out, vars_of(args))


def vars_of(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
