"""The controllers' vocabulary: one tenant's observation per control interval, and a resource move.

A :class:`Move` transfers one unit (a core or an LLC way) from ``tenant_from`` to ``tenant_to``; ``None`` on
either side is the node's free pool (unassigned cores / ways).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from hera.errors import ConfigError

RESOURCES = ("core", "llc_way")


@dataclass(frozen=True)
class TenantObs:
    """One tenant's observation for one control interval."""

    p95_ms: float
    sla_ms: float
    queue_len: float
    qps: float
    cores: tuple[int, ...]
    llc_ways: int | None
    qps_is_offered: bool = True  # False: ``qps`` counts completions (the server), not the offered rate

    @property
    def slack(self) -> float:
        """``(SLA − p95) / SLA``; < 0 = violating. No p95 (nothing completed in the window) counts as idle
        (1) with an empty queue and as violating (−1) with queries waiting."""
        if not math.isfinite(self.p95_ms):
            return -1.0 if self.queue_len > 0 else 1.0
        return (self.sla_ms - self.p95_ms) / self.sla_ms

    def units(self, resource: str) -> int | None:
        return len(self.cores) if resource == "core" else self.llc_ways

    @classmethod
    def from_stats(cls, d: Mapping, tenant: str = "?") -> TenantObs:
        """From one tenant's ``stats()`` entry. Accepts the documented keys (``p95_ms``, ``queue_len``,
        ``qps`` = offered) and the server's (``latency_ms_p95``, ``queue_length``, ``qps`` = completed;
        ``offered_qps`` wins when present)."""

        def pick(*keys, default=KeyError):
            for k in keys:
                if k in d:
                    return d[k]
            if default is KeyError:
                raise ConfigError(f"control API stats of tenant '{tenant}' lack field {keys[0]!r}")
            return default

        sla = pick("sla_ms")
        if sla is None or not float(sla) > 0:
            raise ConfigError(f"tenant '{tenant}' has no SLA (sla_ms) for the node manager to keep")
        p95 = pick("p95_ms", "latency_ms_p95")
        ways = pick("llc_ways", default=None)
        return cls(
            math.nan if p95 is None else float(p95),
            float(sla),
            float(pick("queue_len", "queue_length", default=0) or 0),
            float(pick("offered_qps", "qps", default=0) or 0),
            tuple(int(c) for c in pick("cores")),
            None if ways is None else int(ways),
            "offered_qps" in d or "p95_ms" in d,
        )


@dataclass(frozen=True)
class Move:
    """One unit of ``resource`` ("core" | "llc_way") from ``tenant_from`` to ``tenant_to``; None = pool."""

    tenant_from: str | None
    tenant_to: str | None
    resource: str
    reason: str

    def reverted(self, reason: str) -> Move:
        return Move(self.tenant_to, self.tenant_from, self.resource, reason)


def free_units(obs: Mapping[str, TenantObs], free: Mapping[str, int] | None) -> dict[str, int]:
    free = dict(free or {})
    return {r: int(free.get(r, 0)) for r in RESOURCES}

