"""The serving node: several tenants, each with pinned worker processes, and the control interface
(:class:`hera.server.control.NodeControl`).

.. code-block:: python

    node = Node(NodeConfig(...)).start()            # returns when every worker is ready
    fut = node.submit("rmc1", sample_start, n_items, on_done=None)   # Future[QueryResult]
    fut = node.submit_tensors("rmc1", dense, ids)                     # real arrays (HTTP path)
    node.resize("rmc1", [0, 1]); node.set_llc_ways("rmc1", 4); node.set_mem_bw("rmc1", 50)
    node.stats()                                     # {tenant: TenantSnapshot} (hera.server.control)
    link = node.open_link()                          # queries from a load-generator process (hera.server.link)
    node.stop(drain=True)

Errors: :class:`UnknownTenantError`, :class:`BadRequestError`, :class:`QueueFull`, :class:`NodeStoppedError`
(``hera.server.errors``); resource problems raise :class:`hera.errors.ResourceError`.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hera.errors import ConfigError, NotBuiltError, ResourceError
from hera.server import config as cfgmod
from hera.server.config import NodeConfig
from hera.server.control import TenantSnapshot
from hera.server.errors import BadRequestError, NodeStoppedError, QueueFull, UnknownTenantError
from hera.server.link import NodeLink
from hera.server.payload import PayloadStore
from hera.server.query import QueryResult
from hera.server.resctrl import Resctrl
from hera.server.runner import RunnerSpec
from hera.server.tenant import Tenant
from hera.server.worker import mp_context

log = logging.getLogger("hera.server")


class Node:
    """A multi-tenant inference server on this machine (see module doc)."""

    def __init__(self, config: NodeConfig | dict | str | Path):
        if isinstance(config, (str, Path)):
            config = cfgmod.load(config)
        elif isinstance(config, dict):
            config = cfgmod.from_dict(config)
        else:  # re-validate a config built in code (cores on this machine, overlaps, sizes)
            config = cfgmod.from_dict(cfgmod.to_dict(config))
        self.config = config
        self.resctrl = Resctrl(config.resctrl_root)
        self.tenants: dict[str, Tenant] = {}
        self.state = "new"
        self._query_ids = itertools.count(1)
        self._worker_ids = itertools.count(1)
        self._control = threading.Lock()
        self._links: list[NodeLink] = []
        self._payload: PayloadStore | None = None

    # ------------------------------------------------------------------------------------ lifecycle
    def _runner_spec(self, index: int, t: cfgmod.TenantConfig) -> RunnerSpec:
        c = self.config
        return RunnerSpec(kind=c.runner, model=t.model, scale=c.scale, quantized=t.quantized,
                          models_root=str(c.resolved_models_root()), library_dir=str(c.library_dir(t)),
                          batch_size=t.batch_size, options=dict(t.options), seed=index)

    def start(self) -> "Node":
        """Start every tenant's workers; return once all are ready (WorkerStartError otherwise)."""
        if self.state != "new":
            raise NodeStoppedError(f"node is {self.state}; a node starts once")
        c = self.config
        if c.runner == "zoo":
            for t in c.tenants:
                if not c.library_dir(t).is_dir():
                    raise NotBuiltError(f"tenant {t.name!r}: sample library of {t.model!r} not found at "
                                        f"{c.library_dir(t)} (build it with the workload tools, or set "
                                        "datasets_root / the tenant's library)")
        self.resctrl.warn_once()
        ctx = mp_context(c.mp_context, preload_zoo=c.runner == "zoo")
        started: dict[str, list[int]] = {}
        self._payload = PayloadStore()
        try:
            self.resctrl.add_harness([os.getpid()])  # dispatch, collectors, load generator: their own group
            for i, t in enumerate(c.tenants):
                self.resctrl.add_tenant(t.name, t.llc_ways, t.mem_bw_percent)
                if c.runner == "zoo":
                    self._numa_local(t)
                tenant = Tenant(t, self._runner_spec(i, t), ctx, self.resctrl, self._worker_ids, c.stats_window_s,
                                payload=self._payload, harness_cores=c.harness_cores)
                self.tenants[t.name] = tenant
                started[t.name] = tenant.spawn_all()
            deadline = time.monotonic() + c.start_timeout_s
            for name, ids in started.items():
                self.tenants[name].wait_ready(ids, max(1.0, deadline - time.monotonic()))
        except BaseException:
            self.state = "running"
            self.stop(drain=False)
            raise
        for t in self.tenants.values():
            t.stats.reset_clock()
        self.state = "running"
        return self

    def _numa_local(self, t: cfgmod.TenantConfig) -> int:
        """On a machine with several NUMA nodes, drop the cached pages of the tenant's tables before its
        workers — all on one node — prefault them, so the pages land on that node (first touch). Returns the
        bytes evicted (0: one NUMA node, or the tenant spans several)."""
        from hera.topology import live_topology
        from hera.zoo.load import evict_page_cache, table_files

        topo = live_topology()
        mine = {topo.core_of(cpu).numa for cpu in t.cores if cpu in topo.online}
        if len({c.numa for c in topo.cores}) < 2 or len(mine) != 1:
            return 0
        n = evict_page_cache(table_files(t.model, self.config.scale, t.quantized,
                                         self.config.resolved_models_root()))
        log.info("tenant %s: tables (%d bytes) made NUMA-local to node %d", t.name, n, next(iter(mine)))
        return n

    def stop(self, drain: bool = True, timeout_s: float = 60.0) -> None:
        """Stop serving. ``drain``: finish every accepted query first; else fail the queued ones ("shutting
        down") and let sub-batches already running finish. Every future is resolved when this returns."""
        if self.state in ("stopped", "stopping"):
            return
        if self.state == "new":
            self.state = "stopped"
            return
        self.state = "stopping"
        for t in self.tenants.values():
            t.begin_stop()
        deadline = time.monotonic() + timeout_s
        for t in self.tenants.values():
            if not drain:
                t.fail_all("node shutting down: query not served", queued_only=True)
            elif not t.drain(max(0.0, deadline - time.monotonic())):
                t.fail_all(f"node shutting down: drain timed out after {timeout_s:.0f} s")
        for t in self.tenants.values():
            t.shutdown()
        for link in self._links:
            link.close()
        self._links.clear()
        if self._payload is not None:
            self._payload.close()
        self.resctrl.close()
        self.state = "stopped"

    def __enter__(self) -> "Node":
        return self.start() if self.state == "new" else self

    def __exit__(self, *exc: Any) -> None:
        self.stop(drain=exc[0] is None)

    # -------------------------------------------------------------------------------------- queries
    def _tenant(self, name: str) -> Tenant:
        t = self.tenants.get(name)
        if t is None:
            served = ", ".join(x.name for x in self.config.tenants)
            raise UnknownTenantError(f"unknown tenant {name!r}; served: {served}")
        if self.state != "running":
            raise NodeStoppedError(f"node is {self.state}; tenant {name!r} does not accept queries")
        return t

    def submit(self, tenant: str, sample_start: int, n_items: int,
               on_done: Callable[[QueryResult], None] | None = None, *, want_scores: bool = False) -> Future:
        """Queue ``n_items`` samples from ``sample_start`` of the tenant's library → ``Future[QueryResult]``."""
        t = self._tenant(tenant)
        self._check_library_query(t, tenant, sample_start, n_items)
        return t.submit(next(self._query_ids), int(sample_start), int(n_items), None, want_scores, on_done)

    @staticmethod
    def _check_library_query(t: Tenant, tenant: str, sample_start: Any, n_items: Any) -> None:
        t.validate(n_items)
        lib = t.info["library_items"]
        if isinstance(sample_start, bool) or not isinstance(sample_start, (int, np.integer)) \
                or not 0 <= sample_start < lib:
            raise BadRequestError(f"tenant {tenant!r}: sample_start {sample_start!r} is outside its library "
                                  f"(0..{lib - 1})")

    def submit_linked(self, tenant: str, sample_start: int, n_items: int, link: NodeLink, tag: int) -> None:
        """Queue a query issued through a load-generator link (its result goes back through ``link``)."""
        t = self._tenant(tenant)
        self._check_library_query(t, tenant, sample_start, n_items)
        t.submit(next(self._query_ids), int(sample_start), int(n_items), None, False, None, link=link, tag=tag)

    def open_link(self) -> NodeLink:
        """A link through which a load-generator process issues queries to every tenant (:mod:`hera.server.link`);
        closed with ``link.close()`` or when the node stops."""
        if self.state != "running":
            raise NodeStoppedError(f"node is {self.state}; open a link while it runs")
        link = NodeLink(self)
        self._links.append(link)
        return link

    def add_harness_process(self, pid: int) -> None:
        """Put a process that drives this node (a load generator) into the node's harness resource group, beside
        its own threads (a no-op where resctrl is unavailable)."""
        self.resctrl.add_harness([int(pid)])

    @property
    def harness_cores(self) -> list[int] | None:
        """The CPUs the node's own threads are pinned to (``NodeConfig.harness_cores``; None: unpinned)."""
        hc = self.config.harness_cores
        return list(hc) if hc else None

    def submit_tensors(self, tenant: str, dense: Any, ids: Any,
                       on_done: Callable[[QueryResult], None] | None = None, *, want_scores: bool = True) -> Future:
        """Queue a query with real inputs ``dense[n, dense_in]`` (float32) and ``ids[n, L]`` (int64)."""
        t = self._tenant(tenant)
        if t.info is None:
            t.validate(1)
        dense, ids = t.check_arrays(dense, ids)
        t.validate(int(dense.shape[0]))
        return t.submit(next(self._query_ids), 0, int(dense.shape[0]), (dense, ids), want_scores, on_done)

    def issue(self, tenant: str, sample_start: int, n_items: int, on_done: Callable[[QueryResult], None]) -> None:
        """The load generator's SUT protocol: like :meth:`submit`, but overload (QueueFull, stopping) is
        reported through ``on_done`` as a failed result instead of an exception."""
        try:
            t = self._tenant(tenant)
            self._check_library_query(t, tenant, sample_start, n_items)
            t.submit(next(self._query_ids), int(sample_start), int(n_items), None, False, on_done, future=False)
        except (QueueFull, NodeStoppedError) as exc:
            now = time.monotonic_ns()
            on_done(QueryResult(-1, tenant, int(n_items), now, 0, 0, [], False, str(exc), None, 0, now,
                                self.resctrl.status))

    # -------------------------------------------------------------------------------------- control
    def resize(self, tenant: str, cores: list[int], *, wait: bool = True, timeout_s: float | None = None) -> None:
        """Give ``tenant`` exactly ``cores`` while serving; no query is lost.

        Workers on removed cores finish their current sub-batch and exit; workers started on added cores
        get work once ready (``wait``: return only then). A tenant keeps at least one core.
        """
        with self._control:
            t = self._tenant(tenant)
            try:
                new = cfgmod.check_core_list(cores, f"resize of tenant {tenant!r}: cores")
            except ConfigError as exc:
                raise ResourceError(str(exc)) from None
            if not self.config.allow_core_sharing:
                others = {n: x.cores for n, x in self.tenants.items() if n != tenant}
                try:
                    cfgmod.check_overlap({**others, tenant: new}, f"resize of tenant {tenant!r}")
                    cfgmod.check_harness_overlap(self.config.harness_cores, {tenant: new},
                                                 f"resize of tenant {tenant!r}")
                    cfgmod.check_siblings({**others, tenant: new}, f"resize of tenant {tenant!r}")
                except ConfigError as exc:
                    raise ResourceError(str(exc)) from None
            started = t.resize(new)
        if wait and started:
            t.wait_ready(started, timeout_s or self.config.start_timeout_s)

    def set_llc_ways(self, tenant: str, ways: int | None) -> None:
        """Give ``tenant`` a contiguous, exclusive block of LLC ways, or (``None``) the shared block again
        (recorded only where resctrl is absent)."""
        with self._control:
            self._tenant(tenant)
            self.resctrl.set_llc_ways(tenant, ways)

    def set_mem_bw(self, tenant: str, percent: int) -> None:
        """Cap ``tenant``'s memory bandwidth (MBA percent; recorded only where resctrl is absent)."""
        with self._control:
            self._tenant(tenant)
            self.resctrl.set_mem_bw(tenant, percent)

    # ---------------------------------------------------------------------------------------- views
    @property
    def tenant_names(self) -> list[str]:
        return [t.name for t in self.config.tenants]

    @property
    def llc_partitioning(self) -> str:
        return self.resctrl.status

    def tenant_info(self, tenant: str) -> dict[str, Any]:
        """Model and input description of a tenant (for model metadata endpoints and load generators)."""
        t = self.tenants.get(tenant)
        if t is None:
            raise UnknownTenantError(f"unknown tenant {tenant!r}; served: {', '.join(self.tenant_names)}")
        info = dict(t.info or {})
        return {"tenant": tenant, "model": t.cfg.model, "scale": self.config.scale, "quantized": t.cfg.quantized,
                "batch_size": t.cfg.batch_size, "max_items": t.cfg.max_items, "sla_ms": t.cfg.sla_ms, **info}

    def library_size(self, tenant: str) -> int:
        """Items in the tenant's sample library (valid ``sample_start`` values are 0 .. size-1)."""
        return int(self.tenant_info(tenant)["library_items"])

    def stats(self, window_s: float | None = None) -> dict[str, TenantSnapshot]:
        """Per-tenant :class:`~hera.server.control.TenantSnapshot`, rates over the configured window or
        ``window_s`` (the node implements :class:`hera.server.control.NodeControl`)."""
        return {name: t.snapshot(window_s) for name, t in self.tenants.items()}
