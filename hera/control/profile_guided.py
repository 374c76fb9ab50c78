"""Hera's node manager: profile-guided re-splitting of a two-tenant node as its loads change.

It smooths offered loads, asks the profiles for the split with most headroom
``h(split) = min_i QPS*_i(split) / load_i`` and moves there, with hysteresis: a dead band (the target must beat
the current split's headroom by ``min_gain``), then only after the target lies in the same direction for
``hold_intervals`` intervals, then a ``cooldown_intervals`` pause, and no move in the opposite direction within
``reverse_block_intervals``. If a tenant keeps violating its SLA at the target, its load estimate is scaled up by
``correction`` (profile error feedback). ``step(obs, t_s, free) -> list[Move]``: no I/O, deterministic.

The profiles are passed in (:class:`hera.control.capacity.CapacityProfiles`, e.g.
:class:`hera.policy.profiles.Profiles`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from hera.control.capacity import CapacityProfiles
from hera.control.moves import Move, free_units, slack, units
from hera.errors import ConfigError
from hera.server.control import TenantSnapshot

@dataclass
class HeraConfig:
    interval_s: float = 0.5
    hold_intervals: int = 3
    cooldown_intervals: int = 4
    reverse_block_intervals: int = 8
    load_alpha: float = 0.5  # EWMA weight of the newest offered-load sample
    max_units_per_step: int | None = None
    violation_intervals: int = 3
    correction: float = 1.15
    max_correction: float = 4.0
    slack_high: float = 0.2  # slack above which a corrected tenant is "comfortable" (undo a correction)
    min_gain: float = 0.10  # dead band: move only if the target's headroom beats the current one by 10%


class HeraManager:
    """Profile-guided re-splitting of a two-tenant node as its loads change (see module docstring)."""

    def __init__(
        self, profiles: CapacityProfiles, tenant_models: Mapping[str, str], config: HeraConfig | None = None
    ):
        if len(tenant_models) != 2:
            raise ConfigError(f"HeraManager splits a node between two tenants, got {len(tenant_models)}")
        self.config = config or HeraConfig()
        self.interval_s = self.config.interval_s
        self.profiles = profiles
        self.tenants = tuple(tenant_models)
        self.models = tuple(tenant_models[t] for t in self.tenants)
        profiles.splits(*self.models)  # fail early if the pair has no profile
        self._load: dict[str, float] = {}
        self._scale = {t: 1.0 for t in self.tenants}
        self._violations = defaultdict(int)
        self._dir: tuple[int, int] | None = None
        self._hold = 0
        self._cooldown = 0
        self._last_dir: tuple[int, int] = (0, 0)
        self._since_move = 10**9

    def loads(self) -> dict[str, float]:
        """Smoothed offered loads times their correction factors (what the target is computed for)."""
        return {t: self._load.get(t, 0.0) * self._scale[t] for t in self.tenants}

    def target(self, obs: Mapping[str, TenantSnapshot]) -> tuple[int, int | None]:
        """(cores, ways) for the first tenant: most headroom for the current loads, near the current split."""
        a, b = self.tenants
        partitioned = obs[a].llc_ways is not None and self.profiles.node.llc_ways is not None
        ways = (
            "partitioned"
            if partitioned and any(s.ways_a is not None for s in self.profiles.splits(*self.models))
            else "shared"
        )
        ld = self.loads()
        cur = (len(obs[a].cores), obs[a].llc_ways if ways == "partitioned" else None)
        s = self.profiles.split_for_load(*self.models, ld[a], ld[b], ways=ways, near=cur)
        if (
            len(obs[a].cores) + len(obs[b].cores) == self.profiles.node.cores
        ):  # dead band around the current split
            here = [p for p in self.profiles.splits(*self.models) if (p.cores_a, p.ways_a) == cur]
            # the current split's best point for these loads (a split may have several points, one per ray)
            now = max(here, key=lambda p: self._headroom(p, ld)) if here else \
                self.profiles.nearest_split(*self.models, *cur)
            if (now.cores_a, now.ways_a) == cur and self._headroom(s, ld) <= self._headroom(now, ld) * (
                1 + self.config.min_gain
            ):
                s = now
        return s.cores_a, (s.ways_a if ways == "partitioned" else None)

    def _headroom(self, s, loads) -> float:
        a, b = self.tenants
        return min(s.qps_a / max(loads[a], 1e-9), s.qps_b / max(loads[b], 1e-9))

    def step(
        self, obs: Mapping[str, TenantSnapshot], t_s: float = 0.0, free: Mapping[str, int] | None = None
    ) -> list[Move]:
        cfg = self.config
        a, b = self.tenants
        for t in self.tenants:  # the offered load (submitted queries, accepted or rejected), not completions
            q = obs[t].offered_qps
            self._load[t] = (
                q if t not in self._load else cfg.load_alpha * q + (1 - cfg.load_alpha) * self._load[t]
            )
        self._since_move += 1
        if self._cooldown > 0:
            self._cooldown -= 1
            return []
        tc, tw = self.target(obs)
        cur_c, cur_w = len(obs[a].cores), obs[a].llc_ways
        pool = free_units(obs, free)
        direction = (
            int(np.sign(tc - cur_c)),
            int(np.sign((tw or 0) - (cur_w or 0))) if tw is not None else 0,
        )
        if direction == (0, 0) and pool["core"] == 0 and (tw is None or pool["llc_way"] == 0):
            self._hold, self._dir = 0, None
            self._feedback(obs)
            return []
        self._hold = self._hold + 1 if direction == self._dir else 1
        self._dir = direction
        if self._hold < cfg.hold_intervals:
            return []
        back = any(d != 0 and d == -ld for d, ld in zip(direction, self._last_dir))
        if back and self._since_move <= cfg.reverse_block_intervals:
            return []
        node = self.profiles.node
        moves = self._moves_to(
            obs,
            "core",
            {a: tc, b: node.cores - tc},
            pool["core"],
            f"profile target {a}:{tc}/{b}:{node.cores - tc} cores for loads "
            + ", ".join(f"{t}={v:.1f}qps" for t, v in self.loads().items()),
        )
        if tw is not None:
            moves += self._moves_to(
                obs,
                "llc_way",
                {a: tw, b: node.llc_ways - tw},
                pool["llc_way"],
                f"profile target {a}:{tw}/{b}:{node.llc_ways - tw} LLC ways",
            )
        if cfg.max_units_per_step is not None:
            moves = moves[: cfg.max_units_per_step]
        if moves:
            self._cooldown, self._hold, self._since_move = cfg.cooldown_intervals, 0, 0
            self._last_dir = tuple(d if d else ld for d, ld in zip(direction, self._last_dir))
        return moves

    def _moves_to(self, obs, kind: str, want: dict[str, int], pool: int, reason: str) -> list[Move]:
        need = {t: want[t] - units(obs[t], kind) for t in self.tenants}
        givers = [t for t in self.tenants if need[t] < 0 for _ in range(-need[t])] + [None] * pool
        moves = []
        for t in self.tenants:
            for _ in range(max(need[t], 0)):
                if givers:
                    moves.append(Move(givers.pop(0), t, kind, reason))
        moves += [Move(g, None, kind, reason) for g in givers if g is not None]
        return moves

    def _feedback(self, obs) -> None:
        """At the target but still violating for k intervals: the profile under-estimates that need."""
        cfg = self.config
        for t in self.tenants:
            s = slack(obs[t])
            self._violations[t] = (
                self._violations[t] + 1
                if s < 0
                else (self._violations[t] - 1 if s > cfg.slack_high and self._violations[t] < 0 else 0)
            )
            if s > cfg.slack_high and self._scale[t] > 1.0 and self._violations[t] == 0:
                self._violations[t] = -1  # start counting comfortable intervals
            if self._violations[t] >= cfg.violation_intervals:
                self._scale[t] = min(self._scale[t] * cfg.correction, cfg.max_correction)
                self._violations[t] = 0
            elif self._violations[t] <= -cfg.violation_intervals:  # comfortable again: undo one correction
                self._scale[t] = max(1.0, self._scale[t] / cfg.correction)
                self._violations[t] = 0

