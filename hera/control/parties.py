"""PARTIES-style reactive partitioning (PARTIES, ASPLOS'19; docs/METHOD.md §6).

slack = (SLA − p95) / SLA; upsize a tenant whose slack < ``slack_low`` for ``intervals_low`` intervals (a unit
from the pool, else from the tenant with most slack), downsize one whose slack > ``slack_high`` for
``intervals_high`` intervals (a unit to the pool), one unit per interval, resource kind cycling per tenant, and
a move that did not help is reverted next interval (upsize: the receiver's p95 did not fall; downsize: the
donor's slack fell below ``slack_low``). ``step(obs, t_s, free) -> list[Move]``: no I/O, deterministic.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from hera.control.moves import RESOURCES, Move, free_units, p95_ms, slack, units
from hera.server.control import TenantSnapshot

@dataclass
class PartiesConfig:
    interval_s: float = 0.1
    slack_low: float = 0.05
    slack_high: float = 0.2
    intervals_low: int = 2
    intervals_high: int = 2
    resources: tuple[str, ...] = RESOURCES
    min_units: int = 1


@dataclass
class _Pending:
    move: Move
    tenant: str
    upsize: bool
    p95_before: float


class PartiesController:
    """Reactive, model-free partitioning (PARTIES); see the module docstring for the rules."""

    def __init__(self, config: PartiesConfig | None = None):
        self.config = config or PartiesConfig()
        self.interval_s = self.config.interval_s
        self._low: dict[str, int] = defaultdict(int)
        self._high: dict[str, int] = defaultdict(int)
        self._kind: dict[str, int] = defaultdict(int)
        self._pending: _Pending | None = None

    def _next_kind(self, tenant: str) -> None:
        self._kind[tenant] = (self._kind[tenant] + 1) % len(self.config.resources)

    def step(
        self, obs: Mapping[str, TenantSnapshot], t_s: float = 0.0, free: Mapping[str, int] | None = None
    ) -> list[Move]:
        c = self.config
        slk = {t: slack(o) for t, o in obs.items()}
        for t in obs:
            self._low[t] = self._low[t] + 1 if slk[t] < c.slack_low else 0
            self._high[t] = self._high[t] + 1 if slk[t] > c.slack_high else 0
        if self._pending is not None:
            p, self._pending = self._pending, None
            if p.tenant in obs:
                now = obs[p.tenant]
                helped = p95_ms(now) < p.p95_before if p.upsize else slk[p.tenant] >= c.slack_low
                if not helped:
                    self._next_kind(p.tenant)
                    self._low[p.tenant] = self._high[p.tenant] = 0
                    what = "p95 did not fall" if p.upsize else f"slack fell to {slk[p.tenant]:.3f}"
                    return [p.move.reverted(f"revert: {what} after {p.move.reason.split(':')[0]}")]
        pool = free_units(obs, free)
        needy = [t for t in obs if self._low[t] >= c.intervals_low]
        if needy:
            t = min(needy, key=lambda x: slk[x])
            for k in range(len(c.resources)):
                kind = c.resources[(self._kind[t] + k) % len(c.resources)]
                if units(obs[t], kind) is None:
                    continue
                donor: str | None = None
                if pool[kind] <= 0:
                    donors = [
                        d
                        for d in obs
                        if d != t and (units(obs[d], kind) or 0) > c.min_units and slk[d] >= c.slack_low
                    ]
                    if not donors:
                        continue
                    donor = max(donors, key=lambda x: slk[x])
                self._kind[t] = c.resources.index(kind)
                move = Move(
                    donor,
                    t,
                    kind,
                    f"upsize: slack {slk[t]:.3f} < {c.slack_low} for {self._low[t]} intervals",
                )
                self._pending, self._low[t] = _Pending(move, t, True, p95_ms(obs[t])), 0
                return [move]
            return []
        rich = [t for t in obs if self._high[t] >= c.intervals_high]
        for t in sorted(rich, key=lambda x: -slk[x]):
            for k in range(len(c.resources)):
                kind = c.resources[(self._kind[t] + k) % len(c.resources)]
                if (units(obs[t], kind) or 0) > c.min_units:
                    move = Move(
                        t,
                        None,
                        kind,
                        f"downsize: slack {slk[t]:.3f} > {c.slack_high} for {self._high[t]} intervals",
                    )
                    self._pending, self._high[t] = _Pending(move, t, False, p95_ms(obs[t])), 0
                    return [move]
        return []

