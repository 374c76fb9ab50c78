"""Core plans: which CPU every worker, antagonist, probe and the harness of a study runs on.

The machine description (:mod:`hera.machine`: sockets, NUMA nodes, physical cores and their SMT siblings, L3
domains, online CPUs — of this machine, or of another one stored with ``hera machine --out FILE``) becomes one
:class:`CorePlan` per study, and every stage takes its cores from it. Rules (docs/DESIGN.md "Core plans"):

1. **one hardware thread per physical core**: a worker runs on the lowest-numbered online thread of its core;
   the core's other threads (SMT siblings) stay idle, so two tenants — or a worker and an antagonist or
   probe — never share a physical core;
2. **one socket** unless ``topology.sockets`` asks for more: the socket with the most usable physical cores
   (the lowest id on a tie), so workers and their tables stay on one NUMA node's memory;
3. **harness cores first**: ``topology.harness_cores`` physical cores (``auto``: 1 when the plan has at least
   :data:`HARNESS_MIN_CORES` usable physical cores, else 0) are taken for the load generator, the node's
   dispatch and result collection, with every online thread of those cores;
4. **order**: worker cores sorted by (socket, NUMA node, L3 domain, first thread), so w workers fill one L3
   domain before the next. Scalability with w workers = the first w (:meth:`CorePlan.workers`); a
   co-location split k + (C − k) gives tenant a the first k and tenant b the rest (:meth:`CorePlan.split`);
   a serving node places its tenants one after another (:meth:`CorePlan.node`);
5. **memory profile** (:meth:`CorePlan.memory`): the model's worker and the antagonists share one L3 domain
   (the plan's first), antagonists on the domain's other cores; the pressure probe runs on the domain's last
   core and the model's workers on the others, never on the probe's core.

Where the description comes from (:func:`description`): the config key ``machine`` (a description file), else
the environment variable :data:`MACHINE_ENV`, else this machine. Bad input raises a one-line
:class:`~hera.errors.ResourceError`: a core list naming offline CPUs (:meth:`Topology.check_online`), or
tenants given SMT siblings of one physical core (:func:`check_tenant_cores`).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Sequence

from hera.errors import ConfigError, ResourceError

#: Environment variable naming a machine description file to plan against (the config key ``machine`` wins).
MACHINE_ENV = "HERA_MACHINE"
#: With at least this many usable physical cores, ``harness_cores: auto`` reserves one core for the harness.
HARNESS_MIN_CORES = 8


def cpulist(cpus: Iterable[int]) -> str:
    """``[0, 1, 2, 5, 7, 8]`` → ``"0-2,5,7-8"`` (the kernel's cpulist notation)."""
    out, run = [], []
    for c in sorted(set(cpus)):
        if run and c == run[-1] + 1:
            run.append(c)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [c]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


# ---------------------------------------------------------------------------------------------- topology
@dataclass(frozen=True)
class PhysicalCore:
    """One physical core: its online hardware threads (lowest first), socket, NUMA node and L3 domain."""

    threads: tuple[int, ...]
    socket: int
    core_id: int
    numa: int
    l3: int

    @property
    def cpu(self) -> int:
        """The thread a worker runs on (the lowest-numbered online one)."""
        return self.threads[0]

    def key(self) -> tuple[int, int, int, int]:
        """Plan order: socket, NUMA node, L3 domain, first thread."""
        return (self.socket, self.numa, self.l3, self.cpu)

    def describe(self) -> str:
        return f"socket {self.socket}, core {self.core_id}, threads {cpulist(self.threads)}"


@dataclass(frozen=True)
class Topology:
    """The online CPUs of a machine grouped into physical cores (from a machine description)."""

    cores: tuple[PhysicalCore, ...]
    usable: frozenset[int]
    offline: frozenset[int] = frozenset()
    source: str = "this machine"

    @classmethod
    def from_description(cls, desc: Mapping[str, Any], source: str = "this machine") -> "Topology":
        """Build from ``hera.machine.describe()`` output or a stored description (older files without
        per-CPU ``numa``/``l3`` entries get them from ``numa_nodes`` and the socket)."""
        numa_of = {int(c): int(node) for node, cpus in (desc.get("numa_nodes") or {}).items() for c in cpus}
        cores: dict[frozenset[int], dict[str, Any]] = {}
        online = {int(c["cpu"]) for c in desc["topology"]}
        for c in desc["topology"]:
            cpu = int(c["cpu"])
            sibs = frozenset(int(s) for s in (c.get("siblings") or [cpu]) if int(s) in online) | {cpu}
            entry = cores.setdefault(sibs, {"socket": int(c.get("socket", 0)),
                                            "core_id": int(c.get("core_id", cpu)),
                                            "numa": int(c.get("numa", numa_of.get(cpu, 0))),
                                            "l3": int(c.get("l3", c.get("socket", 0)))})
            entry.setdefault("threads", set()).add(cpu)
        phys = tuple(sorted((PhysicalCore(tuple(sorted(e["threads"])), e["socket"], e["core_id"], e["numa"],
                                          e["l3"]) for e in cores.values()), key=PhysicalCore.key))
        usable = frozenset(int(c) for c in desc.get("usable_cpus") or online) & online
        return cls(phys, usable, frozenset(int(c) for c in desc.get("offline_cpus") or []), source)

    @property
    def online(self) -> frozenset[int]:
        return frozenset(t for c in self.cores for t in c.threads)

    def core_of(self, cpu: int) -> PhysicalCore:
        for c in self.cores:
            if cpu in c.threads:
                return c
        raise ResourceError(f"CPU {cpu} is not online on {self.source} (online: {cpulist(self.online)})")

    def check_online(self, cpus: Iterable[int], what: str) -> None:
        """:class:`ResourceError` naming the CPUs of ``cpus`` that are offline or absent, or not usable by
        this process."""
        cpus = sorted(set(int(c) for c in cpus))
        missing = [c for c in cpus if c not in self.online]
        if missing:
            off = [c for c in missing if c in self.offline]
            kind = "offline CPUs" if off == missing else "CPUs that are offline or absent"
            raise ResourceError(f"{what} names {kind} {cpulist(missing)} on {self.source} "
                                f"(online: {cpulist(self.online)})")
        unusable = [c for c in cpus if c not in self.usable]
        if unusable:
            raise ResourceError(f"{what} names CPUs {cpulist(unusable)} that this process may not use on "
                                f"{self.source} (usable: {cpulist(self.usable)})")


def check_tenant_cores(topo: Topology, assign: Mapping[str, Sequence[int]], what: str = "tenants",
                       require_online: bool = True) -> None:
    """:class:`ResourceError` when two tenants are given hardware threads of one physical core (SMT siblings
    split between tenants), naming both CPUs and tenants, or (``require_online``) a CPU that is not online."""
    owner: dict[tuple[int, ...], tuple[str, int]] = {}
    for name, cpus in assign.items():
        if require_online:
            topo.check_online(cpus, f"{what}: tenant {name!r}")
        for cpu in cpus:
            if int(cpu) not in topo.online:
                continue
            core = topo.core_of(int(cpu))
            prev = owner.get(core.threads)
            if prev is not None and prev[0] != name:
                raise ResourceError(f"{what}: CPU {prev[1]} (tenant {prev[0]!r}) and CPU {cpu} (tenant {name!r}) "
                                    f"are SMT siblings of one physical core ({core.describe()}); give each "
                                    "tenant whole cores")
            owner.setdefault(core.threads, (name, int(cpu)))


# ---------------------------------------------------------------------------------------------- plans
@dataclass(frozen=True)
class MemoryPlan:
    """Cores of the memory profile (F3): sensitivity (one worker beside antagonists) and pressure (the
    model's workers beside a probe). Empty antagonists/probe: not observable with one core."""

    worker: tuple[int, ...]
    antagonists: tuple[int, ...]
    pressure_workers: tuple[int, ...]
    probe: tuple[int, ...]
    note: str = ""


@dataclass(frozen=True)
class CorePlan:
    """The CPUs of one study (see the module docstring for the rules)."""

    worker_cpus: tuple[int, ...]
    harness_cpus: tuple[int, ...]
    idle_cpus: tuple[int, ...]
    sockets: tuple[int, ...]
    numa_nodes: tuple[int, ...]
    l3_groups: tuple[tuple[int, ...], ...]
    source: str = "this machine"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_cpus(cls, cpus: Sequence[int], source: str = "an explicit CPU list") -> "CorePlan":
        """A plan over CPUs already in plan order (no topology rules applied; for explicit lists)."""
        cpus = tuple(int(c) for c in cpus)
        return cls(cpus, (), (), (), (), (cpus,), source)

    @property
    def n_workers(self) -> int:
        return len(self.worker_cpus)

    def workers(self, w: int) -> tuple[int, ...]:
        """CPUs of ``w`` workers (scalability): the first ``w`` of the plan."""
        if not 1 <= w <= self.n_workers:
            raise ResourceError(f"{w} worker(s) asked for, but the core plan has {self.n_workers} worker core(s) "
                                f"({cpulist(self.worker_cpus)}) on {self.source}")
        return self.worker_cpus[:w]

    def split(self, k: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Co-location split k + (C − k): tenant a the first ``k`` worker cores, tenant b the rest."""
        if not 1 <= k < self.n_workers:
            raise ResourceError(f"co-location split {k} + {self.n_workers - k} needs 1 <= k < "
                                f"{self.n_workers} (worker cores {cpulist(self.worker_cpus)})")
        return self.worker_cpus[:k], self.worker_cpus[k:]

    def splits(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """Every co-location split k + (C − k), k = 1 .. C − 1 (ResourceError with fewer than 2 cores)."""
        if self.n_workers < 2:
            raise ResourceError(f"co-location needs at least 2 usable core(s); this study has {self.n_workers}: "
                                f"{list(self.worker_cpus)}")
        return [self.split(k) for k in range(1, self.n_workers)]

    def node(self, counts: Sequence[int], what: str = "node") -> list[tuple[int, ...]]:
        """CPUs of a serving node's tenants with ``counts`` cores each, placed one after another."""
        need = sum(int(c) for c in counts)
        if need > self.n_workers:
            raise ResourceError(f"{what} needs {need} cores ({'+'.join(str(c) for c in counts)}) but this study "
                                f"has {self.n_workers} usable ({', '.join(map(str, self.worker_cpus))}); re-plan "
                                "on this machine's profiles")
        out, i = [], 0
        for c in counts:
            out.append(self.worker_cpus[i:i + int(c)])
            i += int(c)
        return out

    def memory(self) -> MemoryPlan:
        """Cores of the memory profile (rule 5 of the module docstring)."""
        if self.n_workers < 2:
            return MemoryPlan(self.worker_cpus[:1], (), self.worker_cpus[:1], (),
                              f"not observable: needs >= 2 usable cores for a co-runner (this study has "
                              f"{self.n_workers}: {list(self.worker_cpus)})")
        dom = next((g for g in self.l3_groups if len(g) >= 2), None)
        note = ""
        if dom is None:  # every L3 domain holds one worker core: antagonists only share memory bandwidth
            dom = self.worker_cpus
            note = "no L3 domain holds two worker cores: antagonists and probe share memory bandwidth, not the LLC"
        return MemoryPlan(dom[:1], tuple(dom[1:]), tuple(dom[:-1]), dom[-1:], note)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary with every stage's cores (``hera topology``; ``results/<scale>/core_plan.json``)."""
        mem = self.memory()
        return {
            "machine": self.source, "sockets": list(self.sockets), "numa_nodes": list(self.numa_nodes),
            "worker_cpus": list(self.worker_cpus), "harness_cpus": list(self.harness_cpus),
            "idle_cpus": list(self.idle_cpus), "l3_groups": [list(g) for g in self.l3_groups],
            "t1_cpu": self.worker_cpus[0],
            "scalability": {str(w): list(self.workers(w)) for w in range(1, self.n_workers + 1)},
            "colocation": [{"a": list(a), "b": list(b)} for a, b in
                           (self.splits() if self.n_workers >= 2 else [])],
            "memory": {"worker": list(mem.worker), "antagonists": list(mem.antagonists),
                       "pressure_workers": list(mem.pressure_workers), "probe": list(mem.probe), "note": mem.note},
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """One line: worker and harness CPUs, sockets, idle siblings."""
        sockets, nodes = ",".join(map(str, self.sockets)), ",".join(map(str, self.numa_nodes))
        s = (f"{self.n_workers} worker core(s) on CPUs {cpulist(self.worker_cpus)} (socket {sockets}, NUMA node "
             f"{nodes}, one thread per physical core)")
        s += f"; harness on CPUs {cpulist(self.harness_cpus)}" if self.harness_cpus else "; no harness core"
        if self.idle_cpus:
            s += f"; SMT siblings {cpulist(self.idle_cpus)} idle"
        return s


def _harness_count(setting: Any, n_cores: int) -> int:
    if setting in (None, "auto"):
        return 1 if n_cores >= HARNESS_MIN_CORES else 0
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 0:
        raise ConfigError(f"config key topology.harness_cores must be 'auto' or an integer >= 0, not {setting!r}")
    return setting


def plan(topo: Topology, allowed: Iterable[int] | None = None, *, harness_cores: Any = "auto",
         sockets: Any = 1) -> CorePlan:
    """The core plan of a study on ``topo`` using the CPUs ``allowed`` (default: every usable CPU)."""
    allowed_set = set(topo.usable) if allowed is None else {int(c) for c in allowed}
    topo.check_online(allowed_set, "config key cores")
    usable = [c for c in topo.cores if any(t in allowed_set for t in c.threads)]
    if not usable:
        raise ResourceError(f"no usable CPU on {topo.source}")
    by_socket: dict[int, list[PhysicalCore]] = {}
    for c in usable:
        by_socket.setdefault(c.socket, []).append(c)
    ranked = sorted(by_socket, key=lambda s: (-len(by_socket[s]), s))
    if sockets == "all":
        chosen = sorted(ranked)
    elif isinstance(sockets, int) and not isinstance(sockets, bool) and sockets >= 1:
        chosen = sorted(ranked[:sockets])
    else:
        raise ConfigError(f"config key topology.sockets must be 'all' or an integer >= 1, not {sockets!r}")
    cores = sorted((c for s in chosen for c in by_socket[s]), key=PhysicalCore.key)
    n_harness = _harness_count(harness_cores, len(cores))
    if n_harness >= len(cores):
        raise ResourceError(f"topology.harness_cores = {n_harness} leaves no worker core: the plan has "
                            f"{len(cores)} physical core(s) on {topo.source}")
    harness, workers = cores[:n_harness], cores[n_harness:]

    def threads(c: PhysicalCore) -> list[int]:
        return [t for t in c.threads if t in allowed_set]

    worker_cpus = tuple(threads(c)[0] for c in workers)
    groups: dict[int, list[int]] = {}
    for c, cpu in zip(workers, worker_cpus):
        groups.setdefault(c.l3, []).append(cpu)
    notes = []
    if len(by_socket) > len(chosen):
        notes.append(f"socket(s) {','.join(str(s) for s in sorted(set(by_socket) - set(chosen)))} left out "
                     "(topology.sockets)")
    return CorePlan(
        worker_cpus=worker_cpus,
        harness_cpus=tuple(t for c in harness for t in threads(c)),
        idle_cpus=tuple(sorted(t for c in workers for t in threads(c)[1:])),
        sockets=tuple(chosen), numa_nodes=tuple(sorted({c.numa for c in workers})),
        l3_groups=tuple(tuple(g) for g in groups.values()), source=topo.source, notes=tuple(notes))


@contextlib.contextmanager
def pinned(cores: list[int] | tuple[int, ...]) -> Iterator[None]:
    """Run this process (every thread it has now, and so every thread or child it starts meanwhile) on
    ``cores`` only; restore each thread's affinity on exit. Puts the harness (load generator, node dispatch,
    collectors) on the plan's harness cores, or keeps an antagonist's core free of the profiler's threads."""

    tids = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc/self/task") else [0]
    saved = {}
    for tid in tids:
        try:
            saved[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, list(cores))
        except OSError:  # a thread that exited meanwhile
            pass
    try:
        yield
    finally:
        for tid, aff in saved.items():
            try:
                os.sched_setaffinity(tid, aff)
            except OSError:
                pass
        for tid in (int(t) for t in os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else []:
            if tid not in saved:  # threads started meanwhile: give them the process's original affinity
                try:
                    os.sched_setaffinity(tid, saved.get(os.getpid(), os.sched_getaffinity(0)))
                except OSError:
                    pass


# ---------------------------------------------------------------------------------------------- studies
def description(config: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """``(machine description, where it came from)``: config key ``machine``, else ``$HERA_MACHINE``, else
    this machine (:func:`hera.machine.describe`)."""
    from hera import machine

    path = (config or {}).get("machine") or os.environ.get(MACHINE_ENV)
    if path:
        return machine.load_description(path), f"machine description {path}"
    return machine.describe(), "this machine"


def topology(config: Mapping[str, Any] | None = None) -> Topology:
    desc, source = description(config)
    return Topology.from_description(desc, source)


def study_plan(config: Mapping[str, Any]) -> CorePlan:
    """The core plan of a study config: CPUs ``cores`` (``auto``: every usable one), ``topology.*`` rules."""
    topo = topology(config)
    cores = config.get("cores", "auto")
    opts = config.get("topology") or {}
    return plan(topo, None if cores == "auto" else cores, harness_cores=opts.get("harness_cores", "auto"),
                sockets=opts.get("sockets", 1))


def worker_counts(setting: Any, n_workers: int, key: str = "profile.workers") -> tuple[int, ...]:
    """The worker counts a study profiles on ``n_workers`` worker cores (config key ``profile.workers``):
    ``None`` = every count 1 .. n; an integer N = N counts spaced geometrically from 1 to n, both ends included
    (15 cores, N = 5: 1, 2, 4, 8, 15); a list = these counts. :class:`ConfigError` naming ``key`` for a count
    that does not fit the plan."""
    if n_workers < 1:
        raise ResourceError(f"no worker core to profile (config key {key})")
    if setting is None:
        return tuple(range(1, n_workers + 1))
    if isinstance(setting, bool):
        raise ConfigError(f"config key {key} must be null, an integer >= 2 or a list of worker counts, not {setting!r}")
    if isinstance(setting, int):
        if setting < 2:
            raise ConfigError(f"config key {key}: an integer asks for that many counts from 1 to the core count "
                              f"and must be >= 2, not {setting}")
        n = min(setting, n_workers)
        geo = {int(round(math.exp(math.log(n_workers) * i / max(n - 1, 1)))) for i in range(n)} | {1, n_workers}
        extra = (w for w in range(1, n_workers + 1) if w not in geo)
        while len(geo) < n:  # rounding merged neighbours at the low end: fill with the smallest missing counts
            geo.add(next(extra))
        return tuple(sorted(geo))
    counts = sorted({int(w) for w in setting})
    bad = [w for w in counts if not 1 <= w <= n_workers]
    if not counts or bad:
        raise ConfigError(f"config key {key}: {bad[0] if bad else 'an empty list'} worker(s) do not fit the core "
                          f"plan's {n_workers} worker core(s)")
    return tuple(counts)


def live_topology() -> Topology:
    """This machine's topology (for checks of explicit core lists, e.g. a server config)."""
    from hera import machine

    return Topology.from_description(machine.describe())


def cpulist_or_none(cpus: Iterable[int]) -> str:
    """:func:`cpulist`, or ``none`` for no CPU (a form that survives a shell command line)."""
    return cpulist(cpus) or "none"


def check_expected(cp: CorePlan, workers: str | None, harness: str | None) -> None:
    """:class:`ResourceError` when the plan is not the one expected (planned elsewhere, or for another machine)."""
    from hera.machine import parse_cpulist

    for what, want, have in (("worker", workers, cp.worker_cpus), ("harness", harness, cp.harness_cpus)):
        if want is None:
            continue
        if (parse_cpulist(want) if want != "none" else []) != sorted(have):
            raise ResourceError(f"the {what} CPUs planned on {cp.source} are {cpulist_or_none(have)}, not "
                                f"{want} as the workflow planned: run it on the machine it was planned for "
                                "(config key machine / $HERA_MACHINE), or plan it again here")
