"""``hera bench allocator``, ``dispatch``, ``dispatch-ceiling`` and ``memory``: the node's own costs (heap,
dispatch latency, the harness's ceiling with null workers, the memory of N workers of one model)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from hera.bench.common import require_built, tenant_node
from hera.errors import HeraError


# ---------------------------------------------------------------------------------------- allocator
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

    require_built(model, scale)
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


# ----------------------------------------------------------------------------------------- dispatch
def bench_dispatch(model: str, scale: str, core: int, n: int) -> dict[str, Any]:
    """Round trip of 1-item queries through the node minus the worker's model time (closed loop, one at a
    time, so no queueing)."""
    import numpy as np

    require_built(model, scale)
    node = tenant_node(model, scale, [core], batch_size=64)
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

    require_built(model, scale)
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


