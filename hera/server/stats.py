"""Per-tenant statistics over a sliding window, and their renderings (Prometheus text, a rich table).

:class:`TenantStats` is fed by the node (one call per finished query / sub-batch / rejection) and
:meth:`TenantStats.snapshot` returns plain JSON-able numbers: counters since start, and QPS, latency
percentiles (submit → end of last sub-batch) and worker utilisation (busy time / wall time) over the last
``window_s`` seconds.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any

import numpy as np

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
        """Counters, and over the window: ``qps`` (completed), ``offered_qps`` (submitted, incl. rejected),
        ``latency_ms_p50/p95/p99`` (None without data) and worker ``utilisation``."""
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
        out: dict[str, Any] = {"completed": counts[0], "failed": counts[1], "rejected": counts[2],
                               "window_s": span_ns / 1e9, "qps": lat.size / (span_ns / 1e9),
                               "offered_qps": offered / (span_ns / 1e9),
                               "window_queries": int(lat.size)}
        pct = np.percentile(lat, [q * 100 for q in QUANTILES]) / 1e6 if lat.size else [None] * len(QUANTILES)
        for q, v in zip(QUANTILES, pct):
            out[f"latency_ms_p{round(q * 100)}"] = None if v is None else float(v)
        out["utilisation"] = busy / (span_ns * n_workers) if n_workers else 0.0
        return out


# -------------------------------------------------------------------------------------- renderings
_GAUGES = [
    ("qps", "hera_tenant_qps", "Completed queries per second over the stats window."),
    ("offered_qps", "hera_tenant_offered_qps", "Submitted queries per second (accepted or rejected)."),
    ("queue_length", "hera_tenant_queue_length", "Queries waiting for a worker."),
    ("in_flight", "hera_tenant_in_flight", "Queries accepted and not yet finished."),
    ("utilisation", "hera_tenant_worker_utilisation", "Worker busy time / wall time over the window."),
    ("workers", "hera_tenant_workers", "Worker processes ready to serve."),
    ("n_cores", "hera_tenant_cores", "Cores given to the tenant."),
    ("llc_ways", "hera_tenant_llc_ways", "LLC ways given to the tenant (resctrl)."),
    ("mem_bw_percent", "hera_tenant_mem_bw_percent", "Memory-bandwidth share (resctrl MBA)."),
    ("sla_ms", "hera_tenant_sla_ms", "Configured tail-latency target."),
]


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


def render_prometheus(stats: dict[str, dict[str, Any]]) -> str:
    """Render ``node.stats()`` in the Prometheus text exposition format (for ``GET /metrics``)."""
    lines = ["# HELP hera_tenant_latency_ms Query latency (submit to last sub-batch end) over the stats window.",
             "# TYPE hera_tenant_latency_ms summary"]
    for name, s in stats.items():
        t = _label(name)
        for q in QUANTILES:
            lines.append(f'hera_tenant_latency_ms{{tenant="{t}",quantile="{q}"}} '
                         f'{_num(s.get(f"latency_ms_p{round(q * 100)}"))}')
        lines.append(f'hera_tenant_latency_ms_count{{tenant="{t}"}} {_num(s.get("completed", 0))}')
    lines += ["# HELP hera_tenant_queries_total Queries by outcome since the node started.",
              "# TYPE hera_tenant_queries_total counter"]
    for name, s in stats.items():
        for status in ("completed", "failed", "rejected"):
            lines.append(f'hera_tenant_queries_total{{tenant="{_label(name)}",status="{status}"}} '
                         f'{_num(s.get(status, 0))}')
    for key, metric, help_text in _GAUGES:
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        for name, s in stats.items():
            lines.append(f'{metric}{{tenant="{_label(name)}"}} {_num(s.get(key))}')
    return "\n".join(lines) + "\n"


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def stats_table(stats: dict[str, dict[str, Any]], title: str = "hera node"):
    """A ``rich`` table of ``node.stats()`` (one row per tenant)."""
    from rich.table import Table

    table = Table(title=title)
    cols = [("tenant", None), ("model", "model"), ("cores", "cores"), ("workers", "workers"),
            ("llc ways", "llc_ways"), ("qps", "qps"), ("p50 ms", "latency_ms_p50"), ("p95 ms", "latency_ms_p95"),
            ("p99 ms", "latency_ms_p99"), ("sla ms", "sla_ms"), ("queue", "queue_length"),
            ("util", "utilisation"), ("done", "completed"), ("failed", "failed"), ("rejected", "rejected")]
    for head, _ in cols:
        table.add_column(head, justify="left" if head in ("tenant", "model", "cores") else "right")
    for name, s in stats.items():
        row = [name]
        for _, key in cols[1:]:
            v = s.get(key)
            row.append(",".join(map(str, v)) if isinstance(v, list) else _fmt(v))
        table.add_row(*row)
    return table
