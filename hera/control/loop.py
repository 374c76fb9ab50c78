"""The control loop: poll a node's control API, ask a controller for moves, apply them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from hera.control.moves import RESOURCES, Move, check_sla
from hera.errors import ConfigError
from hera.server.control import NodeControl, TenantSnapshot


class Controller(Protocol):
    """A controller: pure, deterministic, one call per control interval."""

    interval_s: float

    def step(self, obs: Mapping[str, TenantSnapshot], t_s: float = 0.0,
             free: Mapping[str, int] | None = None) -> list[Move]:
        """The moves to make now, given every tenant's snapshot and the free units per resource."""


class NodeManagerLoop:
    """Poll ``control_api.stats(window_s=interval_s)`` (any :class:`hera.server.control.NodeControl`: the server's
    node, a remote one, a simulated one) every ``interval_s``, ask the controller for moves, apply them and log one
    row per tenant change (t_s, tenant, resource, delta, reason) in :attr:`moves` (``serving/moves.csv``).
    Every tenant must report an SLA (``sla_ms``): it is what the controllers keep.

    Each move is applied donor first (the unit passes through the free pool), so an interrupted or failed
    move never assigns a core or way twice; :meth:`stop` lets the interval in progress finish.
    """

    def __init__(
        self,
        controller: Controller,
        control_api: NodeControl,
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

    def _stats(self) -> dict[str, TenantSnapshot]:
        stats = dict(self.api.stats(window_s=self.interval_s))
        for s in stats.values():
            check_sla(s)
        return stats

    def free(self, obs: Mapping[str, TenantSnapshot]) -> dict[str, int]:
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

    def _apply(self, m: Move, obs: dict[str, TenantSnapshot], t_s: float) -> bool:
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

