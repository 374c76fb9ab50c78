"""The harness's own cost in a trial, and whether it limited the trial (saturated).

The *harness* is everything on the load side of the workers: the load generator (its issuing loop and
completion bookkeeping, in this process or in its own), and the node's threads (one collector per tenant) when
the node lives in this process, as it does in every experiment. Worker processes are not the harness.

:class:`CpuMeter` reads CPU time with ``psutil`` (per thread) around a trial; :func:`verdict` says whether the
harness, not the system under test, may have set the result, and why:

- a harness thread was busy for ``thread_util`` (90%) of the wall time or more: that thread (a single issuer
  or one tenant's collector) was the bottleneck;
- the harness used ``cores_util`` (90%) of its pinned cores or more;
- issue lateness p99 above ``lateness_us_p99`` (1 ms): queries left later than scheduled;
- completion lag p99 above ``completion_lag_ms_p99`` (10 ms): completions reached the load generator late
  (lag = when the load generator recorded a completion − the end of the query's last sub-batch).

Latencies are measured from worker timestamps and scheduled times, so a saturated harness does not hide
queueing; it may still have offered less load or stolen the workers' cores. The flag lets an analysis drop or
mark such trials; the search does not change its verdicts.
"""

from __future__ import annotations

import math
import os
import resource
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class HarnessLimits:
    """Thresholds of :func:`verdict`."""

    thread_util: float = 0.9
    cores_util: float = 0.9
    lateness_us_p99: float = 1000.0
    completion_lag_ms_p99: float = 10.0


@dataclass
class HarnessUsage:
    """CPU the harness used during a trial. ``cpu_s``: all its threads and processes; ``thread_util_max``: the
    busiest single thread (or single-threaded load-generator process), as a fraction of ``wall_s``."""

    mode: str
    wall_s: float
    cpu_s: float
    thread_util_max: float
    busiest: str
    harness_cores: list[int] | None = None
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def cpu_util(self) -> float:
        """Harness CPU in cores (CPU seconds per wall second)."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else math.nan


def _threads() -> dict[int, float]:
    import psutil

    try:
        return {t.id: t.user_time + t.system_time for t in psutil.Process().threads()}
    except (psutil.Error, OSError):
        return {}


def _thread_names() -> dict[int, str]:
    import threading

    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


def process_cpu_s() -> float:
    """CPU seconds (user + system) of this process so far, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class CpuMeter:
    """CPU time of this process and of each of its threads between :meth:`start` and :meth:`stop`."""

    def __init__(self) -> None:
        self.wall0 = self.cpu0 = 0.0
        self.threads0: dict[int, float] = {}

    def start(self) -> "CpuMeter":
        self.threads0 = _threads()
        self.cpu0 = process_cpu_s()
        self.wall0 = time.monotonic()
        return self

    def stop(self, mode: str, harness_cores: list[int] | None = None,
             extra_processes: dict[str, float] | None = None) -> HarnessUsage:
        """``extra_processes``: CPU seconds of single-threaded harness processes (e.g. the load generator's)
        over the same interval."""
        wall = time.monotonic() - self.wall0
        cpu = process_cpu_s() - self.cpu0
        after = _threads()
        deltas = {tid: t - self.threads0.get(tid, 0.0) for tid, t in after.items()}
        names = _thread_names()
        busiest, top = "", 0.0
        for tid, d in deltas.items():
            if d > top:
                busiest, top = names.get(tid, f"thread {tid}"), d
        parts = {"this process": cpu}
        for name, s in (extra_processes or {}).items():
            parts[name] = s
            cpu += s
            if s > top:
                busiest, top = name, s
        return HarnessUsage(mode, wall, cpu, top / wall if wall > 0 else math.nan, busiest,
                            list(harness_cores) if harness_cores else None, parts)


def verdict(usage: HarnessUsage, lateness_us_p99: float, completion_lag_ms_p99: float,
            limits: HarnessLimits = HarnessLimits()) -> tuple[bool, str]:
    """(saturated, reason): every limit the trial crossed, joined by '; ' ('' when none)."""
    reasons = []
    if usage.thread_util_max >= limits.thread_util:
        reasons.append(f"harness thread {usage.busiest!r} busy {usage.thread_util_max:.0%} of the run "
                       f"(limit {limits.thread_util:.0%})")
    if usage.harness_cores and usage.cpu_util >= limits.cores_util * len(usage.harness_cores):
        reasons.append(f"harness used {usage.cpu_util:.2f} of its {len(usage.harness_cores)} pinned core(s)")
    if np.isfinite(lateness_us_p99) and lateness_us_p99 > limits.lateness_us_p99:
        reasons.append(f"issue lateness p99 {lateness_us_p99:.0f} us > {limits.lateness_us_p99:.0f} us")
    if np.isfinite(completion_lag_ms_p99) and completion_lag_ms_p99 > limits.completion_lag_ms_p99:
        reasons.append(f"completion lag p99 {completion_lag_ms_p99:.1f} ms > {limits.completion_lag_ms_p99:.0f} ms")
    return bool(reasons), "; ".join(reasons)


def fields(usage: HarnessUsage, lateness_us_p99: float, completion_lag_ms_p99: float,
           limits: HarnessLimits = HarnessLimits()) -> dict[str, Any]:
    """The harness columns of a run summary (and of a QPS* trial row)."""
    saturated, reason = verdict(usage, lateness_us_p99, completion_lag_ms_p99, limits)
    return {"harness": usage.mode,
            "harness_cores": ",".join(map(str, usage.harness_cores)) if usage.harness_cores else "",
            "harness_cpu_s": round(usage.cpu_s, 4), "harness_cpu_util": round(usage.cpu_util, 4),
            "harness_thread_util_max": round(usage.thread_util_max, 4), "harness_busiest": usage.busiest,
            "completion_lag_ms_p99": completion_lag_ms_p99,
            "harness_saturated": saturated, "harness_saturation_reason": reason}


def pin_current_thread(cores: list[int] | None) -> set[int] | None:
    """Pin the calling thread to ``cores``; returns its previous affinity (None when not pinned)."""
    if not cores:
        return None
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cores)
    return before
