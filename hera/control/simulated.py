"""A profile-driven stand-in for a node: tenants' tail latency follows a queueing-shaped curve on the
profiled capacities. Implements the control API for tests and for simulating controllers on profile tables
(no server involved)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hera.control.capacity import CapacityProfiles
from hera.server.control import TenantSnapshot
from hera.errors import ConfigError


def tail_ratio(rho: float, floor: float = 0.2) -> float:
    """Tail latency / SLA at utilisation ``rho = load / QPS*`` (M/M/1-shaped):
    ``g(ρ) = g0 / (1 − (1 − g0) ρ)``
    with ``g(0) = g0`` (the low-load latency, SLA = latency / g0, i.e. ``sla.multiplier`` = 1/g0) and
    ``g(1) = 1`` (QPS* is by definition the rate at which the tail reaches the SLA); capped at 20 × SLA."""
    denom = 1.0 - (1.0 - floor) * rho
    return floor / denom if denom > floor / 20 else 20.0


@dataclass
class SimulatedNode:
    """A node whose tenants' tail latency follows :func:`tail_ratio` on the profiled capacities; a
    :class:`hera.server.control.NodeControl` for tests and for simulating controllers on profile tables (no
    server involved).

    Capacity of tenant a with ``c_a`` cores (``w_a`` ways) next to b: of the profiled split where a has ``c_a``
    (and ``w_a``), the most a sustains while b carries its offered load (``CapacityProfiles.capacity`` with
    its load); b's is looked up from b's side the same way, so a transient free pool is handled.
    """

    profiles: CapacityProfiles
    tenant_models: dict[str, str]
    cores: dict[str, list[int]]
    llc_ways: dict[str, int | None]
    load_qps: dict[str, float]
    sla_multiplier: float = 5.0
    noise: float = 0.0
    seed: int = 0
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self):
        if len(self.tenant_models) not in (1, 2):
            raise ConfigError(f"a simulated node holds one or two tenants, got {len(self.tenant_models)}")
        self._rng = np.random.default_rng(self.seed)

    def capacity(self, tenant: str) -> float:
        m = self.tenant_models[tenant]
        if len(self.tenant_models) == 1:
            return self.profiles.qps_alone(m, len(self.cores[tenant]))
        other = next(t for t in self.tenant_models if t != tenant)
        ways = self.llc_ways[tenant]
        load = (self.load_qps[tenant], self.load_qps[other])
        return self.profiles.capacity(m, self.tenant_models[other], len(self.cores[tenant]), ways, load)[0]

    def stats(self, window_s: float | None = None) -> dict[str, TenantSnapshot]:
        """Every tenant's snapshot: offered load, completed load (at most the capacity), p95 from
        :func:`tail_ratio`, queued queries of an M/M/1 queue at that utilisation (100 when overloaded)."""
        out = {}
        for t, m in self.tenant_models.items():
            sla = self.profiles.sla_ms(m)
            cap = self.capacity(t)
            rho = self.load_qps[t] / cap if cap > 0 else math.inf
            p95 = sla * tail_ratio(rho, 1.0 / self.sla_multiplier)
            if self.noise:
                p95 *= max(0.1, 1.0 + self.noise * self._rng.standard_normal())
            out[t] = TenantSnapshot(
                tenant=t, model=m, cores=tuple(self.cores[t]), llc_ways=self.llc_ways[t],
                llc_ways_requested=self.llc_ways[t], sla_ms=sla, offered_qps=self.load_qps[t],
                completed_qps=min(self.load_qps[t], cap), latency_ms_p95=p95,
                queued_queries=int(round(rho / (1 - rho))) if rho < 1 else 100,
            )
        return out

    def resize(self, tenant: str, cores: Sequence[int]) -> None:
        if not cores:
            raise ConfigError(f"tenant '{tenant}' needs at least one core")
        self.cores[tenant] = list(cores)
    def set_llc_ways(self, tenant: str, ways: int) -> None:
        if ways < 1:
            raise ConfigError(f"tenant '{tenant}' needs at least one LLC way")
        self.llc_ways[tenant] = int(ways)
