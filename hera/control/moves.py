"""The controllers' vocabulary: what they read of a tenant (a :class:`hera.server.control.TenantSnapshot`, the one
typed stats record every node reports) and a resource :class:`Move`.

A :class:`Move` transfers one unit (a core or an LLC way) from ``tenant_from`` to ``tenant_to``; ``None`` on
either side is the node's free pool (unassigned cores / ways).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from hera.errors import ConfigError
from hera.server.control import TenantSnapshot

RESOURCES = ("core", "llc_way")


def check_sla(s: TenantSnapshot) -> float:
    """The tenant's SLA in ms; :class:`ConfigError` when the node was given none (nothing to keep)."""
    if s.sla_ms is None or not math.isfinite(s.sla_ms) or s.sla_ms <= 0:
        raise ConfigError(f"tenant '{s.tenant}' has no SLA (sla_ms) for the node manager to keep")
    return float(s.sla_ms)


def p95_ms(s: TenantSnapshot) -> float:
    """The tenant's p95 latency over the window; NaN when no query completed in it."""
    return math.nan if s.latency_ms_p95 is None else float(s.latency_ms_p95)


def slack(s: TenantSnapshot) -> float:
    """``(SLA − p95) / SLA``; < 0 = violating. No p95 (nothing completed in the window) counts as idle (1) with
    nothing queued and as violating (−1) with queries waiting."""
    sla = check_sla(s)
    if s.latency_ms_p95 is None or not math.isfinite(s.latency_ms_p95):
        return -1.0 if s.queued_queries > 0 else 1.0
    return (sla - s.latency_ms_p95) / sla


def units(s: TenantSnapshot, resource: str) -> int | None:
    """How many units of ``resource`` the tenant holds (LLC ways: None when the LLC is not partitioned)."""
    return len(s.cores) if resource == "core" else s.llc_ways


@dataclass(frozen=True)
class Move:
    """One unit of ``resource`` ("core" | "llc_way") from ``tenant_from`` to ``tenant_to``; None = pool."""

    tenant_from: str | None
    tenant_to: str | None
    resource: str
    reason: str

    def reverted(self, reason: str) -> Move:
        return Move(self.tenant_to, self.tenant_from, self.resource, reason)


def free_units(obs: Mapping[str, TenantSnapshot], free: Mapping[str, int] | None) -> dict[str, int]:
    free = dict(free or {})
    return {r: int(free.get(r, 0)) for r in RESOURCES}

