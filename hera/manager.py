"""Online node manager: pure controllers that turn per-interval observations into resource moves, and a loop
that applies them to a node through its control API.

Control API (the server's ``Node`` provides exactly these; :class:`SimulatedNode` is a profile-driven
stand-in)::

    stats() -> {tenant: {"p95_ms", "sla_ms", "queue_len", "qps", "cores": [...], "llc_ways": int | None}}
    resize(tenant, cores: list[int]);  set_llc_ways(tenant, ways: int)

A :class:`Move` transfers one unit (a core or an LLC way) from ``tenant_from`` to ``tenant_to``; ``None`` on
either side is the node's free pool (unassigned cores / ways).

Controllers (``step(obs, t_s, free) -> list[Move]``, no I/O, deterministic):

- :class:`PartiesController` — SPEC §6 / PARTIES (ASPLOS'19): slack = (SLA − p95) / SLA; upsize a tenant whose
  slack < ``slack_low`` for ``intervals_low`` intervals (a unit from the pool, else from the tenant with most
  slack), downsize one whose slack > ``slack_high`` for ``intervals_high`` intervals (a unit to the pool), one
  unit per interval, resource kind cycling per tenant, and a move that did not help is reverted next interval
  (upsize: the receiver's p95 did not fall; downsize: the donor's slack fell below ``slack_low``).
- :class:`HeraManager` — profile-guided: smooths offered loads, asks the profiles for the split with most
  headroom ``h(split) = min_i QPS*_i(split) / load_i`` and moves there, with hysteresis: a dead band (the
  target must beat the current split's headroom by ``min_gain``), then only after the target
  lies in the same direction for ``hold_intervals`` intervals, then a ``cooldown_intervals`` pause, and no
  move in the opposite direction within ``reverse_block_intervals``. If a tenant keeps violating its SLA at
  the target, its load estimate is scaled up by ``correction`` (profile error feedback).
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from hera.errors import ConfigError
from hera.policy.profiles import Profiles

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


def _free(obs: Mapping[str, TenantObs], free: Mapping[str, int] | None) -> dict[str, int]:
    free = dict(free or {})
    return {r: int(free.get(r, 0)) for r in RESOURCES}


# ------------------------------------------------------------------------------------------ PARTIES
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
        self, obs: Mapping[str, TenantObs], t_s: float = 0.0, free: Mapping[str, int] | None = None
    ) -> list[Move]:
        c = self.config
        slack = {t: o.slack for t, o in obs.items()}
        for t in obs:
            self._low[t] = self._low[t] + 1 if slack[t] < c.slack_low else 0
            self._high[t] = self._high[t] + 1 if slack[t] > c.slack_high else 0
        if self._pending is not None:
            p, self._pending = self._pending, None
            if p.tenant in obs:
                now = obs[p.tenant]
                helped = now.p95_ms < p.p95_before if p.upsize else slack[p.tenant] >= c.slack_low
                if not helped:
                    self._next_kind(p.tenant)
                    self._low[p.tenant] = self._high[p.tenant] = 0
                    what = "p95 did not fall" if p.upsize else f"slack fell to {slack[p.tenant]:.3f}"
                    return [p.move.reverted(f"revert: {what} after {p.move.reason.split(':')[0]}")]
        pool = _free(obs, free)
        needy = [t for t in obs if self._low[t] >= c.intervals_low]
        if needy:
            t = min(needy, key=lambda x: slack[x])
            for k in range(len(c.resources)):
                kind = c.resources[(self._kind[t] + k) % len(c.resources)]
                if obs[t].units(kind) is None:
                    continue
                donor: str | None = None
                if pool[kind] <= 0:
                    donors = [
                        d
                        for d in obs
                        if d != t and (obs[d].units(kind) or 0) > c.min_units and slack[d] >= c.slack_low
                    ]
                    if not donors:
                        continue
                    donor = max(donors, key=lambda x: slack[x])
                self._kind[t] = c.resources.index(kind)
                move = Move(
                    donor,
                    t,
                    kind,
                    f"upsize: slack {slack[t]:.3f} < {c.slack_low} for {self._low[t]} intervals",
                )
                self._pending, self._low[t] = _Pending(move, t, True, obs[t].p95_ms), 0
                return [move]
            return []
        rich = [t for t in obs if self._high[t] >= c.intervals_high]
        for t in sorted(rich, key=lambda x: -slack[x]):
            for k in range(len(c.resources)):
                kind = c.resources[(self._kind[t] + k) % len(c.resources)]
                if (obs[t].units(kind) or 0) > c.min_units:
                    move = Move(
                        t,
                        None,
                        kind,
                        f"downsize: slack {slack[t]:.3f} > {c.slack_high} for {self._high[t]} intervals",
                    )
                    self._pending, self._high[t] = _Pending(move, t, False, obs[t].p95_ms), 0
                    return [move]
        return []


# ------------------------------------------------------------------------------------------ Hera
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
        self, profiles: Profiles, tenant_models: Mapping[str, str], config: HeraConfig | None = None
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
        self._queue: dict[str, float] = {}
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

    def target(self, obs: Mapping[str, TenantObs]) -> tuple[int, int | None]:
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
            now = self.profiles.nearest_split(*self.models, *cur)
            if (now.cores_a, now.ways_a) == cur and self._headroom(s, ld) <= self._headroom(now, ld) * (
                1 + self.config.min_gain
            ):
                s = now
        return s.cores_a, (s.ways_a if ways == "partitioned" else None)

    def _headroom(self, s, loads) -> float:
        a, b = self.tenants
        return min(s.qps_a / max(loads[a], 1e-9), s.qps_b / max(loads[b], 1e-9))

    def step(
        self, obs: Mapping[str, TenantObs], t_s: float = 0.0, free: Mapping[str, int] | None = None
    ) -> list[Move]:
        cfg = self.config
        a, b = self.tenants
        for t in self.tenants:  # offered ≈ completed + queue growth / interval (when qps counts completions)
            grew = obs[t].queue_len - self._queue.get(t, obs[t].queue_len)
            self._queue[t] = obs[t].queue_len
            q = obs[t].qps + (0.0 if obs[t].qps_is_offered else max(0.0, grew) / self.interval_s)
            self._load[t] = (
                q if t not in self._load else cfg.load_alpha * q + (1 - cfg.load_alpha) * self._load[t]
            )
        self._since_move += 1
        if self._cooldown > 0:
            self._cooldown -= 1
            return []
        tc, tw = self.target(obs)
        cur_c, cur_w = len(obs[a].cores), obs[a].llc_ways
        pool = _free(obs, free)
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
        need = {t: want[t] - obs[t].units(kind) for t in self.tenants}
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
            s = obs[t].slack
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


# ------------------------------------------------------------------------------------------ apply loop
class NodeManagerLoop:
    """Poll ``control_api.stats()`` every ``interval_s``, ask the controller for moves, apply them and log one
    row per tenant change (t_s, tenant, resource, delta, reason) in :attr:`moves` (``serving/moves.csv``).

    Each move is applied donor first (the unit passes through the free pool), so an interrupted or failed
    move never assigns a core or way twice; :meth:`stop` lets the interval in progress finish.
    """

    def __init__(
        self,
        controller,
        control_api,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        node_cores: list[int] | None = None,
        llc_ways: int | None = None,
    ):
        self.controller, self.api = controller, control_api
        self.interval_s = float(
            interval_s if interval_s is not None else getattr(controller, "interval_s", 0.5)
        )
        if self.interval_s <= 0:
            raise ConfigError(f"control interval must be > 0 s, got {self.interval_s}")
        self.clock, self.sleep = clock, sleep
        stats = self._stats()
        self.node_cores = sorted(
            set(node_cores) if node_cores is not None else {c for o in stats.values() for c in o.cores}
        )
        ways = [o.llc_ways for o in stats.values()]
        self.llc_ways = llc_ways if llc_ways is not None else (None if None in ways else sum(ways))
        self.moves: list[dict] = []
        self._t0 = self.clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: Exception | None = None

    def _stats(self) -> dict[str, TenantObs]:
        return {t: TenantObs.from_stats(d, t) for t, d in self.api.stats().items()}

    def free(self, obs: Mapping[str, TenantObs]) -> dict[str, int]:
        used = [c for o in obs.values() for c in o.cores]
        ways = [o.llc_ways for o in obs.values()]
        return {
            "core": len(set(self.node_cores) - set(used)),
            "llc_way": 0 if self.llc_ways is None or None in ways else self.llc_ways - sum(ways),
        }

    def step(self) -> list[Move]:
        """One control interval: observe, decide, apply. Returns the moves applied."""
        with self._lock:
            obs = self._stats()
            t_s = self.clock() - self._t0
            applied = []
            for m in self.controller.step(obs, t_s, self.free(obs)):
                if self._apply(m, obs, t_s):
                    applied.append(m)
                    obs = self._stats()
            return applied

    def _apply(self, m: Move, obs: dict[str, TenantObs], t_s: float) -> bool:
        if m.resource not in RESOURCES:
            raise ConfigError(f"unknown resource {m.resource!r}; known: {', '.join(RESOURCES)}")
        if m.resource == "core":
            if m.tenant_from is not None:
                cores = list(obs[m.tenant_from].cores)
                if len(cores) <= 1:
                    return False
                unit = cores.pop()
                self.api.resize(m.tenant_from, cores)
            else:
                spare = sorted(set(self.node_cores) - {c for o in obs.values() for c in o.cores})
                if not spare:
                    return False
                unit = spare[0]
            if m.tenant_to is not None:
                self.api.resize(m.tenant_to, sorted(obs[m.tenant_to].cores + (unit,)))
        else:
            if self.llc_ways is None:
                return False
            if m.tenant_from is not None:
                if (obs[m.tenant_from].llc_ways or 0) <= 1:
                    return False
                self.api.set_llc_ways(m.tenant_from, obs[m.tenant_from].llc_ways - 1)
            elif self.free(obs)["llc_way"] <= 0:
                return False
            if m.tenant_to is not None:
                self.api.set_llc_ways(m.tenant_to, obs[m.tenant_to].llc_ways + 1)
        for tenant, delta in ((m.tenant_from, -1), (m.tenant_to, +1)):
            if tenant is not None:
                self.moves.append(
                    {
                        "t_s": round(t_s, 6),
                        "tenant": tenant,
                        "resource": m.resource,
                        "delta": delta,
                        "reason": m.reason,
                    }
                )
        return True

    def run(self, n_intervals: int | None = None, duration_s: float | None = None) -> None:
        """Run in this thread for ``n_intervals`` intervals or ``duration_s`` s (or until :meth:`stop`)."""
        end = None if duration_s is None else self.clock() + duration_s
        i = 0
        while (
            not self._stop.is_set()
            and (n_intervals is None or i < n_intervals)
            and (end is None or self.clock() < end)
        ):
            start = self.clock()
            self.step()
            i += 1
            self.sleep(max(0.0, self.interval_s - (self.clock() - start)))

    def start(self) -> None:
        """Run in a background thread until :meth:`stop`; an exception ends the thread and is kept in
        :attr:`error` (the allocation stays consistent: moves are applied donor first)."""
        self._stop.clear()
        self.error = None

        def main():
            try:
                self.run()
            except Exception as exc:  # noqa: BLE001 - reported through .error, re-raised by stop()
                self.error = exc

        self._thread = threading.Thread(target=main, name="hera-node-manager", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, dict]:
        """Stop after the interval in progress and return the (consistent) allocation."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.error is not None:
            raise self.error
        return self.allocation()

    def allocation(self) -> dict[str, dict]:
        """{tenant: {"cores": [...], "llc_ways": n}}; error if a core is held twice or a tenant has none."""
        with self._lock:
            obs = self._stats()
        seen: dict[int, str] = {}
        for t, o in obs.items():
            if not o.cores:
                raise ConfigError(f"tenant '{t}' holds no core")
            for c in o.cores:
                if c in seen:
                    raise ConfigError(f"core {c} is held by both '{seen[c]}' and '{t}'")
                seen[c] = t
        return {t: {"cores": list(o.cores), "llc_ways": o.llc_ways} for t, o in obs.items()}


# ------------------------------------------------------------------------------------------ simulated node
def tail_ratio(rho: float, floor: float = 0.2) -> float:
    """Tail latency / SLA at utilisation ``rho = load / QPS*`` (M/M/1-shaped):
    ``g(ρ) = g0 / (1 − (1 − g0) ρ)``
    with ``g(0) = g0`` (the low-load latency, SLA = latency / g0, i.e. ``sla.multiplier`` = 1/g0) and
    ``g(1) = 1`` (QPS* is by definition the rate at which the tail reaches the SLA); capped at 20 × SLA."""
    denom = 1.0 - (1.0 - floor) * rho
    return floor / denom if denom > floor / 20 else 20.0


@dataclass
class SimulatedNode:
    """A node whose tenants' tail latency follows :func:`tail_ratio` on the profiled capacities; implements
    the
    control API for tests and for simulating controllers on profile tables (no server involved).

    Capacity of tenant a with ``c_a`` cores (``w_a`` ways) next to b: the profiled split where a has ``c_a``
    (and ``w_a``); b's is looked up from b's side the same way, so a transient free pool is handled.
    """

    profiles: Profiles
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
        return self.profiles.capacity(m, self.tenant_models[other], len(self.cores[tenant]), ways)[0]

    def stats(self) -> dict[str, dict]:
        out = {}
        for t, m in self.tenant_models.items():
            sla = self.profiles.sla_ms(m)
            cap = self.capacity(t)
            rho = self.load_qps[t] / cap if cap > 0 else math.inf
            p95 = sla * tail_ratio(rho, 1.0 / self.sla_multiplier)
            if self.noise:
                p95 *= max(0.1, 1.0 + self.noise * self._rng.standard_normal())
            out[t] = {
                "offered_qps": self.load_qps[t],
                "p95_ms": p95,
                "sla_ms": sla,
                "queue_len": rho / (1 - rho) if rho < 1 else 100.0,
                "qps": min(self.load_qps[t], cap),  # completed, as the server reports it
                "cores": list(self.cores[t]),
                "llc_ways": self.llc_ways[t],
            }
        return out

    def resize(self, tenant: str, cores: list[int]) -> None:
        if not cores:
            raise ConfigError(f"tenant '{tenant}' needs at least one core")
        self.cores[tenant] = list(cores)

    def set_llc_ways(self, tenant: str, ways: int) -> None:
        if ways < 1:
            raise ConfigError(f"tenant '{tenant}' needs at least one LLC way")
        self.llc_ways[tenant] = int(ways)
