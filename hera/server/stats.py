"""Per-tenant statistics over a sliding window, and their renderings (Prometheus text, a rich table).

:class:`TenantStats` is fed by the node (one call per finished query / sub-batch / rejection) and
:meth:`TenantStats.snapshot` returns the counters since start and, over the last ``window_s`` seconds, the
offered and completed rates, latency percentiles (submit → end of last sub-batch) and worker utilisation
(busy time / wall time), as the fields of :class:`hera.server.control.TenantSnapshot` that it fills. The
renderings read only that record.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

from hera.server.control import TenantSnapshot

QUANTILES = (0.5, 0.95, 0.99)


class TenantStats:
    """Counters and windowed samples of one tenant (thread-safe)."""

    def __init__(self, window_s: float = 10.0):
        self.window_ns = int(window_s * 1e9)
        self.started_ns = time.monotonic_ns()
        self.completed = self.failed = self.rejected = 0
        self._lat: deque[tuple[int, int]] = deque()   # (t_done_ns, latency_ns) of completed queries
        self._busy: deque[tuple[int, int]] = deque()  # (t1_ns, t0_ns) of finished sub-batches
        self._arrivals: deque[int] = deque()  # submit times of every query offered (accepted or rejected)
        self._lock = threading.Lock()

    def reset_clock(self) -> None:
        """Start the wall clock of rates and utilisation now (called when the node starts serving)."""
        with self._lock:
            self.started_ns = time.monotonic_ns()

    def _prune(self, now: int) -> None:
        cut = now - self.window_ns
        while self._lat and self._lat[0][0] < cut:
            self._lat.popleft()
        while self._busy and self._busy[0][0] < cut:
            self._busy.popleft()
        while self._arrivals and self._arrivals[0] < cut:
            self._arrivals.popleft()

    def record_query(self, ok: bool, t_submit_ns: int, t_end_ns: int, t_done_ns: int) -> None:
        with self._lock:
            if ok:
                self.completed += 1
                self._lat.append((t_done_ns, t_end_ns - t_submit_ns))
            else:
                self.failed += 1
            self._prune(t_done_ns)

    def record_busy(self, t0_ns: int, t1_ns: int) -> None:
        with self._lock:
            self._busy.append((t1_ns, t0_ns))

    def record_arrival(self, t_ns: int, rejected: bool = False) -> None:
        """A query was offered at ``t_ns`` (``rejected``: turned away by the queue limit)."""
        with self._lock:
            self._arrivals.append(t_ns)
            if rejected:
                self.rejected += 1

    def snapshot(self, n_workers: int, window_s: float | None = None, now_ns: int | None = None) -> dict[str, Any]:
        """The :class:`~hera.server.control.TenantSnapshot` fields these statistics own: counters since start
        (``completed_queries``, ``failed_queries``, ``rejected_queries``) and, over the window, ``offered_qps``
        (submitted, incl. rejected), ``completed_qps``, ``latency_ms_p50/p95/p99`` (None without data),
        ``worker_utilisation`` of ``n_workers`` workers, ``window_s``, ``window_completed_queries``."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        win = self.window_ns if window_s is None else int(window_s * 1e9)
        with self._lock:
            self._prune(now)
            cut = now - win
            lat = np.fromiter((lt for t, lt in self._lat if t >= cut), dtype=np.int64)
            busy = sum(t1 - max(t0, cut) for t1, t0 in self._busy if t1 >= cut)
            offered = sum(1 for t in self._arrivals if t >= cut)
            counts = (self.completed, self.failed, self.rejected)
        span_ns = max(1, min(win, now - self.started_ns))
        out: dict[str, Any] = {"completed_queries": counts[0], "failed_queries": counts[1],
                               "rejected_queries": counts[2], "window_s": span_ns / 1e9,
                               "completed_qps": lat.size / (span_ns / 1e9), "offered_qps": offered / (span_ns / 1e9),
                               "window_completed_queries": int(lat.size)}
        pct = np.percentile(lat, [q * 100 for q in QUANTILES]) / 1e6 if lat.size else [None] * len(QUANTILES)
        for q, v in zip(QUANTILES, pct):
            out[f"latency_ms_p{round(q * 100)}"] = None if v is None else float(v)
        out["worker_utilisation"] = busy / (span_ns * n_workers) if n_workers else 0.0
        return out


# -------------------------------------------------------------------------------------- renderings
#: (record field, metric, help) of the per-tenant gauges. Metric names are the server's public monitoring API.
_GAUGES = [
    ("completed_qps", "hera_tenant_qps", "Completed queries per second over the stats window."),
    ("offered_qps", "hera_tenant_offered_qps", "Submitted queries per second (accepted or rejected)."),
    ("queued_queries", "hera_tenant_queue_length", "Queries waiting for a worker."),
    ("in_flight_queries", "hera_tenant_in_flight", "Queries accepted and not yet finished."),
    ("worker_utilisation", "hera_tenant_worker_utilisation", "Worker busy time / wall time over the window."),
    ("workers_ready", "hera_tenant_workers", "Worker processes ready to serve."),
    ("n_cores", "hera_tenant_cores", "Cores given to the tenant."),
    ("llc_ways", "hera_tenant_llc_ways", "LLC ways given to the tenant (resctrl)."),
    ("mem_bw_percent", "hera_tenant_mem_bw_percent", "Memory-bandwidth share (resctrl MBA)."),
    ("sla_ms", "hera_tenant_sla_ms", "Configured tail-latency target."),
]
_COUNTERS = (("completed", "completed_queries"), ("failed", "failed_queries"), ("rejected", "rejected_queries"))


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NaN"
    if isinstance(v, float) and math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v)) if isinstance(v, float) else str(int(v))


def metric_family(name: str, kind: str, help_text: str,
                  samples: list[tuple[str, dict[str, Any], Any]]) -> list[str]:
    """Prometheus text lines of one metric family: HELP, TYPE, then ``(sample name, labels, value)`` samples
    (a summary's ``_count`` sample has its own sample name). The one writer of exposition lines."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for sample, labels, value in samples:
        lab = ",".join(f'{k}="{_label(str(v))}"' for k, v in labels.items())
        lines.append(f"{sample}{{{lab}}} {_num(value)}" if lab else f"{sample} {_num(value)}")
    return lines


def render_prometheus(stats: Mapping[str, TenantSnapshot]) -> str:
    """Render ``node.stats()`` in the Prometheus text exposition format (for ``GET /metrics``)."""
    lat = []
    for name, t in stats.items():
        lat += [("hera_tenant_latency_ms", {"tenant": name, "quantile": q}, getattr(t, f"latency_ms_p{round(q * 100)}"))
                for q in QUANTILES]
        lat.append(("hera_tenant_latency_ms_count", {"tenant": name}, t.completed_queries))
    lines = metric_family("hera_tenant_latency_ms", "summary",
                          "Query latency (submit to last sub-batch end) over the stats window.", lat)
    lines += metric_family("hera_tenant_queries_total", "counter", "Queries by outcome since the node started.",
                           [("hera_tenant_queries_total", {"tenant": name, "status": status}, getattr(t, field))
                            for name, t in stats.items() for status, field in _COUNTERS])
    for field, metric, help_text in _GAUGES:
        lines += metric_family(metric, "gauge", help_text,
                               [(metric, {"tenant": name}, getattr(t, field)) for name, t in stats.items()])
    return "\n".join(lines) + "\n"


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def stats_table(stats: Mapping[str, TenantSnapshot], title: str = "hera node"):
    """A ``rich`` table of ``node.stats()`` (one row per tenant)."""
    from rich.table import Table

    table = Table(title=title)
    cols = [("model", "model"), ("cores", "cores"), ("workers", "workers_ready"), ("llc ways", "llc_ways"),
            ("offered qps", "offered_qps"), ("done qps", "completed_qps"), ("p50 ms", "latency_ms_p50"),
            ("p95 ms", "latency_ms_p95"), ("p99 ms", "latency_ms_p99"), ("sla ms", "sla_ms"),
            ("queue", "queued_queries"), ("util", "worker_utilisation"), ("done", "completed_queries"),
            ("failed", "failed_queries"), ("rejected", "rejected_queries")]
    table.add_column("tenant", justify="left")
    for head, _ in cols:
        table.add_column(head, justify="left" if head in ("model", "cores") else "right")
    for name, s in stats.items():
        row = [name]
        for _, key in cols:
            v = getattr(s, key)
            row.append(",".join(map(str, v)) if isinstance(v, tuple) else _fmt(v))
        table.add_row(*row)
    return table
