"""Shared plumbing of the serving experiments: nodes from plans, load streams, and the manager's control API.

- :func:`tenant_plans`: a planned node (:class:`~hera.experiments.plans.NodeDeploy`) → the measurement harness's
  :class:`~hera.harness.TenantPlan` list, so nodes start through :func:`hera.harness.start_node` (same runner
  options, directories and resctrl root as profiling);
- :func:`poisson_stream` / :func:`varying_stream`: one tenant's open-loop stream from the study config;
- :class:`CountingSUT`: the node's SUT adapter that also counts issued queries, so the controller sees the
  *offered* load (what Hera's manager plans for) rather than completions;
- :class:`NodeControl`: the control API of :mod:`hera.control` (``stats``/``resize``/``set_llc_ways``) over a
  running :class:`hera.server.Node`: p95 over the last control interval, the tenant's SLA from T1, offered QPS.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import Any, Mapping

from hera.experiments.plans import NodeDeploy
from hera import harness


def tenant_plans(config: dict[str, Any], node: NodeDeploy, cpu_sets: list[tuple[int, ...]]) -> list:
    """One :class:`~hera.harness.TenantPlan` per tenant (tenant name = model id; models on a node are
    distinct), pinned to ``cpu_sets`` with the plan's LLC ways."""
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    return [harness.TenantPlan(t.model, t.model, tuple(c), batch, max_items, t.llc_ways)
            for t, c in zip(node.tenants, cpu_sets)]


def poisson_stream(config: dict[str, Any], sla_ms: float, rate_qps: float, duration_s: float, stream: str):
    """Poisson arrivals at ``rate_qps`` for ``duration_s`` seconds (no minimum query count); a warm-up of at
    most 10% of the expected queries is excluded from the statistics. Seeds derive from the study seed and
    ``stream`` only, so policies offered the same rate get the same arrivals (common random numbers)."""
    base = harness.loadgen_settings(config, sla_ms, rate_qps, stream=stream)
    warm = int(min(base.warmup_queries, 0.1 * rate_qps * duration_s))
    return base.replace(duration_s=float(duration_s), n_queries=None, min_queries=0, min_duration_s=0.0,
                        warmup_queries=warm)


def varying_stream(config: dict[str, Any], sla_ms: float, formula: str, nominal_qps: float, duration_s: float,
                   stream: str):
    """Time-varying Poisson arrivals λ(t) = ``formula`` (numpy expression in ``t`` seconds) for ``duration_s``."""
    base = harness.loadgen_settings(config, sla_ms, max(nominal_qps, 1e-6), stream=stream)
    return base.replace(arrival="time_varying", arrival_formula=formula, duration_s=float(duration_s),
                        n_queries=None, min_queries=0, min_duration_s=0.0, warmup_queries=0)


class CountingSUT:
    """Wraps a SUT and keeps the issue times of the last ``horizon_s`` seconds per tenant."""

    def __init__(self, sut: Any, horizon_s: float = 60.0):
        self.sut = sut
        self.horizon_ns = int(horizon_s * 1e9)
        self._issued: dict[str, deque[int]] = {}
        self._lock = threading.Lock()

    def issue(self, tenant: str, sample_start: int, n_items: int, on_done) -> None:
        now = time.monotonic_ns()
        with self._lock:
            q = self._issued.setdefault(tenant, deque())
            q.append(now)
            while q and q[0] < now - self.horizon_ns:
                q.popleft()
        self.sut.issue(tenant, sample_start, n_items, on_done)

    def offered_qps(self, tenant: str, window_s: float) -> float:
        """Queries issued for ``tenant`` in the last ``window_s`` seconds, per second."""
        now = time.monotonic_ns()
        cut = now - int(window_s * 1e9)
        with self._lock:
            n = sum(1 for t in self._issued.get(tenant, ()) if t >= cut)
        return n / window_s


class NodeControl:
    """The manager's control API over a running node (see :mod:`hera.control`).

    ``stats()`` → ``{tenant: {p95_ms, sla_ms, queue_len, qps, cores, llc_ways}}`` where ``p95_ms`` is the
    node's p95 (submit → last sub-batch) over the last ``window_s`` (None without completions), ``qps`` the
    offered rate counted by ``counter`` over the same window (the node's own completion rate when no counter is
    given), and ``llc_ways`` None unless resctrl partitions the LLC.
    """

    def __init__(self, node: Any, sla_ms: Mapping[str, float], window_s: float, counter: CountingSUT | None = None):
        self.node, self.sla_ms, self.window_s, self.counter = node, dict(sla_ms), float(window_s), counter

    def stats(self) -> dict[str, dict[str, Any]]:
        raw = self.node.stats(window_s=self.window_s)
        out = {}
        for t, s in raw.items():
            p95 = s.get("latency_ms_p95")
            qps = self.counter.offered_qps(t, self.window_s) if self.counter is not None else s.get("qps", 0.0)
            out[t] = {"p95_ms": None if p95 is None or not math.isfinite(p95) else float(p95),
                      "sla_ms": float(self.sla_ms[t]), "queue_len": s.get("queue_length", 0), "qps": qps,
                      "cores": list(s["cores"]), "llc_ways": s.get("llc_ways")}
        return out

    def resize(self, tenant: str, cores: list[int]) -> None:
        self.node.resize(tenant, list(cores))

    def set_llc_ways(self, tenant: str, ways: int) -> None:
        self.node.set_llc_ways(tenant, int(ways))
