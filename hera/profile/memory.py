"""Memory behaviour of a model — sensitivity to antagonists, pressure on a probe, hardware counters.

The older F3 profile: the pipeline now draws F3 from :mod:`hera.profile.interference` (service-time inflation
through the serving path, pressure as a calibrated equivalent intensity); ``hera profile memory`` remains for its
hardware counters where ``perf`` can count.

Method (Bubble-Up, Mars et al. MICRO 2011, with the antagonists of :mod:`hera.profile.antagonist`):

Cores come from the study's core plan (:meth:`hera.topology.CorePlan.memory`): the worker, the antagonists and
the probe sit in one L3 domain, each on a physical core of its own (SMT siblings idle), and the profiler itself
(node dispatch, load loop) on the harness cores where the plan has them, else on the worker cores.

(a) **sensitivity**: one worker of the model pinned to the plan's first worker core serves one query of
    ``batch_size`` items at a time (service-time loop, at least ``profile.latency_repeats`` queries and
    ``search.min_duration_s`` seconds per point) while an antagonist of each kind in ``profile.antagonists`` runs
    at each intensity of ``profile.intensities`` on the other cores of its L3 domain.
    ``slowdown = p50 latency / p50 latency alone``
    (the alone baseline is measured before and after the antagonist points and pooled).
(b) **pressure** (the "bubble score"): the model at full load on every core of that L3 domain but the last
    (closed loop keeping two queries per worker in flight) while a *probe* — an antagonist of each kind at a
    reference intensity (:data:`PROBE_INTENSITY`) — runs on the last core and measures its own throughput in alternating windows
    (alone, with the model, alone, … :data:`PRESSURE_CYCLES` times, ``search.min_duration_s`` each).
    ``pressure = 1 − median throughput with the model / median throughput alone``;
    the model's own throughput with the probe is recorded as ``model_items_per_s`` with its slowdown against a
    full-load window without the probe taken just before.
(c) **hardware counters** with ``perf stat`` on the workers during a full-load window, only where
    ``hera.machine.describe()["perf"]["available"]``; otherwise one row ``metric = counters`` whose note says why.

Needs two usable cores; with one core the antagonist rows are written with ``value`` empty and a note saying
they are not observable on this machine (the alone latency is still measured). Nothing is ever made up.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.profile import common
from hera.profile.antagonist import Antagonist

COLUMNS = ["model", "antagonist", "intensity", "metric", "value", "slowdown", "unit", "n_samples",
           "worker_cores", "antagonist_cores", "antagonist_gbps", "note", "scale"]
#: Reference intensity of each probe for the pressure measurement (cache: half the LLC, so the probe fits in
#: the cache when alone and loses throughput as soon as a co-runner evicts it; bandwidth: streaming all the time).
PROBE_INTENSITY = {"bandwidth": 1.0, "cache": 0.5}
#: Alternations of (probe with the model at full load, probe alone) per probe.
PRESSURE_CYCLES = 3
PERF_EVENTS = ("LLC-loads", "LLC-load-misses", "cache-references", "cache-misses", "instructions", "cycles")


def _cores_str(cores) -> str:
    return " ".join(str(c) for c in cores)


def _row(model: str, antagonist: str, intensity: float, metric: str, value: float | None, slowdown: float | None,
         unit: str, n: int | None = None, worker_cores=(), antagonist_cores=(), antagonist_gbps: float | None = None,
         note: str = "", scale: str = "") -> dict[str, Any]:
    return {"model": model, "antagonist": antagonist, "intensity": float(intensity), "metric": metric,
            "value": value, "slowdown": slowdown, "unit": unit, "n_samples": n,
            "worker_cores": _cores_str(worker_cores), "antagonist_cores": _cores_str(antagonist_cores),
            "antagonist_gbps": antagonist_gbps, "note": note, "scale": scale}


# ------------------------------------------------------------------------------------------------- perf
def parse_perf_csv(text: str) -> dict[str, float | None]:
    """Parse ``perf stat -x,`` output (stderr) into ``{event: count}``; None for not counted/supported."""
    out: dict[str, float | None] = {}
    for line in text.splitlines():
        parts = line.strip().split(",")
        if len(parts) < 3 or line.startswith("#"):
            continue
        value, event = parts[0], parts[2]
        if not event:
            continue
        try:
            out[event] = float(value)
        except ValueError:  # "<not counted>", "<not supported>"
            out[event] = None
    return out


def perf_counters(pids: list[int], duration_s: float, events=PERF_EVENTS) -> tuple[dict[str, float | None], str]:
    """Count ``events`` on ``pids`` for ``duration_s`` with ``perf stat``; returns (counts, note)."""
    exe = shutil.which("perf")
    if exe is None:
        return {}, "counters: unavailable (perf is not installed)"
    cmd = [exe, "stat", "-x,", "-e", ",".join(events), "-p", ",".join(str(p) for p in pids),
           "--", "sleep", f"{duration_s:g}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {}, f"counters: unavailable (perf stat failed: {exc})"
    counts = parse_perf_csv(proc.stderr)
    if proc.returncode != 0 or not any(v is not None for v in counts.values()):
        first = (proc.stderr.strip().splitlines() or ["no output"])[0]
        return counts, f"counters: unavailable (perf stat exit {proc.returncode}: {first})"
    return counts, ""


def counter_rows(model: str, counts: dict[str, float | None], duration_s: float, note: str,
                 base: dict[str, Any]) -> list[dict[str, Any]]:
    """Tidy rows from perf counts: ``<event>_per_s`` and derived LLC miss ratio / DRAM bytes estimate."""
    if note:
        return [_row(model, "none", 0.0, "counters", None, None, "", note=note, **base)]
    rows = []
    for ev, v in counts.items():
        rows.append(_row(model, "none", 0.0, f"{ev}_per_s", None if v is None else v / duration_s, None, "1/s",
                         note="" if v is not None else f"{ev}: not counted", **base))
    loads, misses = counts.get("LLC-loads"), counts.get("LLC-load-misses")
    if loads and misses is not None:
        rows.append(_row(model, "none", 0.0, "llc_miss_ratio", misses / loads, None, "fraction", **base))
    if misses is not None:
        rows.append(_row(model, "none", 0.0, "mem_bytes_per_s", misses * 64 / duration_s, None, "B/s",
                         note="estimate: LLC load misses x 64 B (reads only)", **base))
    return rows


# ----------------------------------------------------------------------------------------------- measure
def _latency_point(node, model: str, config: dict[str, Any], batch: int, tag: str) -> dict[str, np.ndarray]:
    prof, search = config["profile"], config["search"]
    return common.service_latencies(node, model, batch, int(prof["latency_repeats"]), warmup=2,
                                    seed=common.derived_seed(config["seed"], "memory", model, tag),
                                    min_duration_s=float(search["min_duration_s"]))


def _saturated_rate(node, model: str, batch: int, depth: int, duration_s: float, seed: int) -> tuple[float, int]:
    """Items/s the model completes at full load over ``duration_s`` (after a short settle)."""
    with common.Saturator(node, model, batch, depth, seed=seed) as sat:
        time.sleep(min(0.2, duration_s))
        c0, t0 = sat.counts()[0], time.perf_counter()
        time.sleep(duration_s)
        c1, t1 = sat.counts()[0], time.perf_counter()
        if sat.failed:
            raise common.ProfileError(f"tenant {model!r} failed queries at full load: {sat.errors[:1]}")
    return (c1 - c0) * batch / (t1 - t0), c1 - c0


def measure(config: dict[str, Any], model: str, opts: common.NodeOptions | None = None) -> pd.DataFrame:
    """The F3 rows of ``model`` (see the module docstring for the method)."""
    from hera.machine import describe

    opts = opts or common.NodeOptions()
    common.check_model(model, opts.runner)
    cplan = common.study_plan(config)
    mem = cplan.memory()
    prof = config["profile"]
    batch = int(config["batch_size"])
    window_s = max(float(config["search"]["min_duration_s"]), 0.2)
    seed = int(config["seed"])
    scale = config["scale"]
    kinds = list(prof["antagonists"])
    intensities = [float(x) for x in prof["intensities"]]
    rows: list[dict[str, Any]] = []

    if not mem.antagonists:
        note, cores = mem.note, list(mem.worker)
        plan = common.TenantPlan(model, model, (cores[0],), batch_size=batch, max_items=batch)
        with common.start_node(config, [plan], opts) as node:
            lat = _latency_point(node, model, config, batch, "alone")["latency_ms"]
        rows.append(_row(model, "none", 0.0, "latency_ms", float(np.median(lat)), 1.0, "ms", lat.size,
                         worker_cores=cores[:1], scale=scale))
        for kind in kinds:
            for x in intensities:
                rows.append(_row(model, kind, x, "latency_ms", None, None, "ms", worker_cores=cores[:1],
                                 note=note, scale=scale))
            rows.append(_row(model, kind, PROBE_INTENSITY[kind], "pressure", None, None, "fraction",
                             worker_cores=cores[:1], note=note, scale=scale))
        perf = describe()["perf"]
        reason = perf.get("reason") if not perf.get("available") else "needs a full-load window next to a probe"
        rows.append(_row(model, "none", 0.0, "counters", None, None, "", worker_cores=cores[:1],
                         note=f"counters: unavailable ({reason})", scale=scale))
        return pd.DataFrame(rows, columns=COLUMNS)

    # (a) sensitivity: one worker, antagonists on the other cores of its L3 domain
    w_cores, a_cores = list(mem.worker), list(mem.antagonists)
    plan = common.TenantPlan(model, model, tuple(w_cores), batch_size=batch, max_items=batch)
    with common.pinned(cplan.harness_cpus or w_cores), common.start_node(config, [plan], opts) as node:
        before = _latency_point(node, model, config, batch, "alone-before")["latency_ms"]
        points = []
        for kind in kinds:
            for x in intensities:
                with Antagonist(kind, x, a_cores, seed=common.derived_seed(seed, "antagonist", kind)) as ant:
                    time.sleep(0.05)
                    c0, t0 = ant.counters(), time.perf_counter()
                    lat = _latency_point(node, model, config, batch, f"{kind}-{x:g}")["latency_ms"]
                    gbps = (ant.counters()["bytes"] - c0["bytes"]) / (time.perf_counter() - t0) / 1e9
                points.append((kind, x, lat, gbps))
        after = _latency_point(node, model, config, batch, "alone-after")["latency_ms"]
    alone = np.concatenate([before, after])
    base = float(np.median(alone))
    base_p95 = float(np.percentile(alone, 95))
    rows.append(_row(model, "none", 0.0, "latency_ms", base, 1.0, "ms", alone.size, worker_cores=w_cores,
                     note=f"alone: p50 before {np.median(before):.4g} ms, after {np.median(after):.4g} ms",
                     scale=scale))
    rows.append(_row(model, "none", 0.0, "latency_ms_p95", base_p95, 1.0, "ms", alone.size, worker_cores=w_cores,
                     scale=scale))
    for kind, x, lat, gbps in points:
        p50, p95 = float(np.median(lat)), float(np.percentile(lat, 95))
        rows.append(_row(model, kind, x, "latency_ms", p50, p50 / base, "ms", lat.size, w_cores, a_cores,
                         gbps, scale=scale))
        rows.append(_row(model, kind, x, "latency_ms_p95", p95, p95 / base_p95, "ms", lat.size, w_cores, a_cores,
                         gbps, scale=scale))

    # (b) pressure: the model at full load on the domain's cores but the last; a probe on the last core
    w_cores, p_cores = list(mem.pressure_workers), list(mem.probe)
    depth = 2 * len(w_cores)
    plan = common.TenantPlan(model, model, tuple(w_cores), batch_size=batch, max_items=batch)
    sat_seed = common.derived_seed(seed, "saturate", model)
    with common.pinned(cplan.harness_cpus or w_cores), common.start_node(config, [plan], opts) as node:
        rate_alone, n_alone = _saturated_rate(node, model, batch, depth, window_s, sat_seed)
        rows.append(_row(model, "none", 0.0, "model_items_per_s", rate_alone, 1.0, "items/s", n_alone, w_cores,
                         note="full load, no probe", scale=scale))
        # (c) counters during a full-load window without a probe
        perf = describe()["perf"]
        if perf.get("available"):
            with common.Saturator(node, model, batch, depth, seed=sat_seed):
                time.sleep(0.1)
                counts, note = perf_counters(common.worker_pids(node, model), window_s)
        else:
            counts, note = {}, f"counters: unavailable ({perf.get('reason')})"
        rows.extend(counter_rows(model, counts, window_s, note, {"worker_cores": w_cores, "scale": scale}))
        for kind in kinds:
            x = PROBE_INTENSITY[kind]
            base_rate, _ = _saturated_rate(node, model, batch, depth, window_s, sat_seed)  # adjacent baseline
            with Antagonist(kind, x, p_cores, seed=common.derived_seed(seed, "probe", kind)) as probe:
                time.sleep(0.1)
                alone_w = [probe.measure(window_s)]
                loaded_w, items, secs = [], 0, 0.0
                for _ in range(PRESSURE_CYCLES):  # alternate: alone, loaded, alone, … (drift cancels out)
                    with common.Saturator(node, model, batch, depth, seed=sat_seed) as sat:
                        time.sleep(min(0.2, window_s))
                        c0, t0 = sat.counts()[0], time.perf_counter()
                        loaded_w.append(probe.measure(window_s))
                        c1, t1 = sat.counts()[0], time.perf_counter()
                    items, secs = items + (c1 - c0) * batch, secs + (t1 - t0)
                    alone_w.append(probe.measure(window_s))
            alone_bps = float(np.median([w.bytes_per_s for w in alone_w]))
            loaded_bps = float(np.median([w.bytes_per_s for w in loaded_w]))
            pressure = 1.0 - loaded_bps / alone_bps if alone_bps > 0 else math.nan
            rate = items / secs
            note = (f"probe alone {', '.join(f'{w.gbps:.3g}' for w in alone_w)} GB/s, with the model "
                    f"{', '.join(f'{w.gbps:.3g}' for w in loaded_w)} GB/s (alternating windows of {window_s:g} s; "
                    "medians)" + (f"; {mem.note}" if mem.note else ""))
            rows.append(_row(model, kind, x, "pressure", pressure,
                             alone_bps / loaded_bps if loaded_bps > 0 else math.nan, "fraction",
                             len(loaded_w), w_cores, p_cores, loaded_bps / 1e9, note=note, scale=scale))
            rows.append(_row(model, kind, x, "probe_gbps_alone", alone_bps / 1e9, 1.0, "GB/s", len(alone_w), w_cores,
                             p_cores, alone_bps / 1e9, scale=scale))
            rows.append(_row(model, kind, x, "model_items_per_s", rate, base_rate / rate if rate > 0 else math.nan,
                             "items/s", items // batch, w_cores, p_cores, loaded_bps / 1e9,
                             note=f"full load, probe running; slowdown vs {base_rate:.6g} items/s without it "
                                  "measured just before", scale=scale))
    return pd.DataFrame(rows, columns=COLUMNS)


def run(config: dict[str, Any], model: str, out: str | Path, opts: common.NodeOptions | None = None) -> pd.DataFrame:
    """Measure and write ``out`` (with provenance)."""
    from hera.provenance import write_table

    df = measure(config, model, opts)
    write_table(df, out, config=config, seed=config["seed"])
    return df
