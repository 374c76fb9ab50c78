"""The node's typed control interface: one statistics record per tenant, and the Protocol of a controllable node.

Every node implements :class:`NodeControl` — the server's :class:`hera.server.node.Node`, the HTTP client
:class:`hera.server.http.client.RemoteNode` and the profile-driven :class:`hera.control.simulated.SimulatedNode`
— and reports each tenant as a :class:`TenantSnapshot`. Metrics (Prometheus text, the rich table), the HTTP
JSON stats, the controllers, the experiments and the load generator read only this record, so every quantity
has one name and one meaning (units in the names):

- *offered* load (``offered_qps``: queries submitted, accepted or rejected) and *completed* load
  (``completed_qps``) are two fields, never one ``qps`` whose meaning depends on who filled it;
- ``queued_queries`` (a sub-batch no worker has taken yet) and ``in_flight_queries`` (accepted, not
  finished) are counts *now*; ``*_queries`` counters without ``window`` count since the node started;
- rates and percentiles cover the last ``window_s`` seconds; a percentile is ``None`` when no query completed
  in the window.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from hera.errors import HeraError


class StatsRecordError(HeraError):
    """A statistics record could not be read (a field is unknown, missing or of the wrong type)."""


@dataclass(frozen=True, kw_only=True)
class TenantSnapshot:
    """One tenant of a node at one moment: its resources, workers, queue, counters and windowed statistics.

    Only ``tenant`` is required; a node that cannot know a quantity (a simulated node has no worker pids)
    leaves its default.
    """

    tenant: str
    model: str = ""
    # resources
    cores: tuple[int, ...] = ()
    llc_ways: int | None = None  # LLC ways the tenant holds; None = shared LLC (or no resctrl)
    llc_ways_requested: int | None = None  # last LLC-way count asked for (recorded even without resctrl)
    llc_mask: str | None = None  # the tenant's resctrl capacity bit mask (hex), when partitioned
    llc_partitioning: str = "unavailable"  # "available" | "unavailable" (resctrl on this machine)
    mem_bw_percent: int | None = None  # memory-bandwidth cap in force (resctrl MBA); None = uncapped
    mem_bw_percent_requested: int | None = None
    mem_bw_value: int | None = None  # the value written to the tenant's MB: schemata entries, in mem_bw_unit
    mem_bw_unit: str | None = None  # "percent" (Intel) | "eighth_gbps" (AMD, 1/8 GB/s) | "mbps"; None: no MBA
    # workers
    workers_ready: int = 0
    workers_starting: int = 0
    worker_pids: tuple[int, ...] = ()
    worker_cores: tuple[tuple[int, ...], ...] = ()
    worker_errors: tuple[str, ...] = ()
    # configuration
    sla_ms: float | None = None  # the tail-latency target; None when the node was given none
    batch_size_items: int | None = None
    max_items: int | None = None
    queue_limit_queries: int | None = None
    library_items: int | None = None
    # queue, now
    queued_queries: int = 0  # queries with a sub-batch no worker has taken yet
    in_flight_queries: int = 0  # queries accepted and not finished (queued or running)
    # counters since the node started
    completed_queries: int = 0
    failed_queries: int = 0
    rejected_queries: int = 0  # turned away by the queue limit
    sub_batches_rerun: int = 0  # sub-batches re-run after the worker running them died
    # over the last window_s seconds
    window_s: float = 0.0
    window_completed_queries: int = 0
    offered_qps: float = 0.0  # queries submitted per second (accepted or rejected)
    completed_qps: float = 0.0  # queries completed per second
    latency_ms_p50: float | None = None  # submit → end of the last sub-batch; None without completions
    latency_ms_p95: float | None = None
    latency_ms_p99: float | None = None
    worker_utilisation: float = 0.0  # worker busy time / (wall time × ready workers), 0..1

    @property
    def n_cores(self) -> int:
        return len(self.cores)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able fields (tuples as lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TenantSnapshot:
        """The record of :meth:`to_dict`'s output (e.g. parsed from the HTTP JSON stats); strict: an unknown or
        missing field raises :class:`StatsRecordError` naming it."""
        if not isinstance(d, Mapping):
            raise StatsRecordError(f"a tenant's stats must be a JSON object, got {type(d).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise StatsRecordError(f"unknown stats field {unknown[0]!r} (tenant {d.get('tenant')!r})")
        if "tenant" not in d:
            raise StatsRecordError("stats record lacks field 'tenant'")
        kw = dict(d)
        for name in ("cores", "worker_pids", "worker_errors"):
            if name in kw:
                kw[name] = tuple(kw[name])
        if "worker_cores" in kw:
            kw["worker_cores"] = tuple(tuple(c) for c in kw["worker_cores"])
        return cls(**kw)


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


@runtime_checkable
class NodeControl(Protocol):
    """What a node manager needs from a node: per-tenant statistics and the run-time resource moves."""

    def stats(self, window_s: float | None = None) -> Mapping[str, TenantSnapshot]:
        """Every tenant's snapshot; rates and percentiles over the last ``window_s`` (None: the node's window)."""

    def resize(self, tenant: str, cores: Sequence[int]) -> None:
        """Give ``tenant`` exactly ``cores`` while serving (no query lost)."""

    def set_llc_ways(self, tenant: str, ways: int | None) -> None:
        """Give ``tenant`` ``ways`` LLC ways, or (``None``) the shared block (recorded only where resctrl is absent)."""


def stats_json(stats: Mapping[str, TenantSnapshot]) -> dict[str, dict[str, Any]]:
    """``{tenant: snapshot.to_dict()}``: the node's statistics as plain JSON."""
    return {t: s.to_dict() for t, s in stats.items()}


def stats_from_json(doc: Any) -> dict[str, TenantSnapshot]:
    """The inverse of :func:`stats_json`; :class:`StatsRecordError` for anything else."""
    if not isinstance(doc, Mapping):
        raise StatsRecordError(f"node stats must be a JSON object of tenants, got {type(doc).__name__}")
    return {str(t): TenantSnapshot.from_dict(s) for t, s in doc.items()}
