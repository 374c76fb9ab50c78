"""Splits of a node between two tenants: cores (the core plan's splits) and, where resctrl is verified, LLC ways
(beside the shared LLC, which is always among them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Split:
    """One resource split of the node between tenants a and b."""

    cpus_a: tuple[int, ...]
    cpus_b: tuple[int, ...]
    ways_a: int | None = None
    ways_b: int | None = None

    def key(self) -> dict[str, Any]:
        return {"cores_a": len(self.cpus_a), "cores_b": len(self.cpus_b), "ways_a": self.ways_a,
                "ways_b": self.ways_b}


def way_splits(total_ways: int, min_bits: int = 1) -> list[tuple[int, int]]:
    """Way splits tried per core split: a quarter, half and three quarters of the ways to tenant a."""
    out = []
    for wa in (total_ways // 4, total_ways // 2, total_ways - total_ways // 4):
        wb = total_ways - wa
        if wa >= min_bits and wb >= min_bits and (wa, wb) not in out:
            out.append((wa, wb))
    return out


def plan_splits(cores: list[int], resctrl: dict[str, Any], llc_splits: bool) -> tuple[list[Split], str]:
    """Every core split of the plan (:meth:`hera.topology.CorePlan.splits`: tenant a the first k) and, where
    resctrl is verified and ``llc_splits`` asks for it, the shared LLC beside each LLC-way split of the ways
    the harness leaves (:func:`hera.server.resctrl.tenant_ways`)."""
    from hera.server.resctrl import tenant_ways
    from hera.topology import CorePlan

    core_splits = CorePlan.from_cpus(cores).splits()
    if llc_splits and resctrl.get("available") and resctrl.get("l3_ways"):
        ways = [(None, None)] + way_splits(tenant_ways(resctrl), int(resctrl.get("min_cbm_bits") or 1))
        return [Split(a, b, wa, wb) for a, b in core_splits for wa, wb in ways], "available"
    return [Split(a, b) for a, b in core_splits], "unavailable"
