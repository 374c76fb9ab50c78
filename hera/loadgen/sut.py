"""Systems under test (SUTs) as the load generator sees them, plus queueing formulas to check them by.

The protocol (DESIGN.md, "Server API")::

    sut.issue(tenant, sample_start, n_items, on_done)   # returns at once; later on_done(QueryResult)

``on_done`` may be called from any thread, including inside ``issue`` itself. A SUT may raise from
``issue`` (the driver records the query as failed) or report ``ok=False`` in the result.

- :class:`NodeSUT` adapts ``hera.server.node.Node`` (its ``submit(...) -> Future[QueryResult]``).
- :class:`NullSUT` completes every query immediately: what is left is the harness's own overhead.
- :class:`SleepSUT` is an FCFS queue with ``n_servers`` parallel servers and a given service-time law.
  In ``mode="virtual"`` (default) each query's start and end are computed exactly from the real
  submit time (``start = max(submit, earliest free server)``, ``end = start + service``) and the result
  is delivered at ``end`` by one timer thread, so its latency-vs-load curve is exactly that of the
  queueing model (M/D/1, M/M/c, ...) fed with the arrivals the harness really produced. In
  ``mode="threads"`` ``n_servers`` threads really sleep for the service time (adds OS jitter).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, Callable, Protocol

import numpy as np

from hera.errors import ConfigError, HeraError
from hera.queueing.closed_forms import (  # noqa: F401 - re-exported: the load generator's queueing references
    erlang_c, md1_mean_sojourn_s, md1_sojourn_quantile_s, md1_wait_cdf, mdc_sojourn_quantile_sim_s,
    mmc_mean_sojourn_s, mmc_sojourn_quantile_s, mmc_sojourn_sf, qps_at_latency,
)
from hera.server.control import TenantSnapshot

OnDone = Callable[[Any], None]
log = logging.getLogger("hera.loadgen")


@dataclass
class QueryResult:
    """The result fields the load generator reads (same names as ``hera.server``'s QueryResult)."""

    query_id: int
    tenant: str
    n_items: int
    t_submit_ns: int
    t_start_ns: int
    t_end_ns: int
    workers: list[int] = field(default_factory=list)
    ok: bool = True
    error: str | None = None


class SUT(Protocol):
    """What the load generator drives."""

    def issue(self, tenant: str, sample_start: int, n_items: int, on_done: OnDone) -> None: ...


# ------------------------------------------------------------------------------------------- NodeSUT
class NodeSUT:
    """Adapter: ``hera.server.node.Node`` → SUT protocol.

    Uses the node's own ``issue`` when it has one (it reports overload — a full queue, a stopping node —
    as a failed result); otherwise ``submit(...) -> Future[QueryResult]``, where a future that fails
    with an exception becomes a ``QueryResult`` with ``ok=False`` and the exception as ``error``.

    When the node can open a link (a local ``Node``: ``node.open_link()``), :meth:`loadgen_process` gives the
    driver a load-generator process bound to it (started on first use, reused by later runs, pinned to
    ``harness_cores``, default the node's), so that issuing and completion bookkeeping leave the node's
    process. ``process=False`` keeps the load generator in the caller's thread.
    """

    def __init__(self, node: Any, harness_cores: list[int] | None = None, process: bool = True):
        self.node = node
        self._ids = itertools.count()
        self._native = callable(getattr(node, "issue", None))
        cores = harness_cores if harness_cores is not None else getattr(node, "harness_cores", None)
        self.harness_cores = list(cores) if cores else None
        self._process_ok = process and callable(getattr(node, "open_link", None))
        self._lg: Any = None
        self._link: Any = None
        self._lg_cores: list[int] | None = None
        self._finalizer = weakref.finalize(self, _close_loadgen, self.__dict__)

    def loadgen_process(self, harness_cores: list[int] | None = None) -> Any:
        """The load-generator process bound to this node (None where the node offers no link)."""
        if not self._process_ok:
            return None
        cores = list(harness_cores) if harness_cores else self.harness_cores
        if self._lg is not None and (self._lg_cores != cores or getattr(self._link, "closed", False)
                                     or not self._lg.process.is_alive()):
            _close_loadgen(self.__dict__)
        if self._lg is None:
            from hera.loadgen.process import LoadgenProcess

            try:
                self._link = self.node.open_link()
            except HeraError as exc:  # a node that is not running: issue in-process, where queries fail clearly
                log.debug("no link to the node (%s); issuing in-process", exc)
                return None
            self._lg = LoadgenProcess(self._link.client, cores)
            self._lg_cores = cores
            adopt = getattr(self.node, "add_harness_process", None)
            if callable(adopt):  # the node's harness resctrl group, with its collectors
                adopt(self._lg.pid)
        return self._lg

    def library_items(self, tenant: str) -> int:
        """Items in the tenant's sample library (``node.library_size``)."""
        return int(self.node.library_size(tenant))

    def issue(self, tenant: str, sample_start: int, n_items: int, on_done: OnDone) -> None:
        if self._native:
            self.node.issue(tenant, int(sample_start), int(n_items), on_done)
            return
        t_submit = time.monotonic_ns()
        fut = self.node.submit(tenant, int(sample_start), int(n_items))
        qid = next(self._ids)

        def _done(f) -> None:
            exc = f.exception()
            if exc is None:
                on_done(f.result())
            else:
                now = time.monotonic_ns()
                on_done(QueryResult(qid, tenant, int(n_items), t_submit, 0, now, [], False,
                                    f"{type(exc).__name__}: {exc}"))

        fut.add_done_callback(_done)

    def wait_idle(self, timeout_s: float = 120.0) -> bool:
        """Wait until no tenant has queued or running queries (so a trial never starts behind the backlog
        of an overloaded previous one); True if idle within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            stats: Mapping[str, TenantSnapshot] = self.node.stats()
            if all(t.queued_queries == 0 and t.in_flight_queries == 0 for t in stats.values()):
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        """Stop the load-generator process and close its link (the node's lifetime belongs to its owner)."""
        _close_loadgen(self.__dict__)


def _close_loadgen(d: dict[str, Any]) -> None:
    lg, link = d.get("_lg"), d.get("_link")
    d["_lg"] = d["_link"] = None
    if lg is not None:
        lg.close()
    if link is not None:
        link.close()


# ------------------------------------------------------------------------------------------- NullSUT
class NullSUT:
    """Completes each query at once, from the issuing thread (``n_threads=0``) or a small thread pool."""

    def __init__(self, n_threads: int = 0):
        self._ids = itertools.count()
        self._pool = ThreadPoolExecutor(n_threads, thread_name_prefix="null-sut") if n_threads else None

    def _complete(self, qid: int, tenant: str, n_items: int, t_submit: int, on_done: OnDone) -> None:
        now = time.monotonic_ns()
        on_done(QueryResult(qid, tenant, n_items, t_submit, now, now, [0], True, None))

    def issue(self, tenant: str, sample_start: int, n_items: int, on_done: OnDone) -> None:
        t = time.monotonic_ns()
        qid = next(self._ids)
        if self._pool is None:
            self._complete(qid, tenant, n_items, t, on_done)
        else:
            self._pool.submit(self._complete, qid, tenant, n_items, t, on_done)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)


# ------------------------------------------------------------------------------------------ SleepSUT
ServiceTimeFn = Callable[[int, np.random.Generator], float]


def deterministic(service_s: float) -> ServiceTimeFn:
    """Every query takes ``service_s`` seconds (M/D/c)."""
    return lambda n_items, rng: service_s


def exponential(mean_s: float) -> ServiceTimeFn:
    """Exponential service times with mean ``mean_s`` (M/M/c)."""
    return lambda n_items, rng: float(rng.exponential(mean_s))


def linear(base_s: float, per_item_s: float) -> ServiceTimeFn:
    """``base_s + per_item_s * n_items``: a size-dependent deterministic law."""
    return lambda n_items, rng: base_s + per_item_s * n_items


class SleepSUT:
    """A simulated FCFS queue: ``n_servers`` parallel servers, service time ``service_time_fn(n, rng)``.

    ``fail_every``: make every k-th query fail (``ok=False``) to exercise failure paths;
    ``raise_every``: make every k-th ``issue`` raise ``RuntimeError``; ``drop_every``: never answer
    every k-th query (a SUT that hangs).
    """

    def __init__(self, service_time_fn: ServiceTimeFn, n_servers: int = 1, *, seed: int = 0,
                 mode: str = "virtual", fail_every: int = 0, raise_every: int = 0, drop_every: int = 0):
        if n_servers < 1:
            raise ConfigError(f"SleepSUT: n_servers must be >= 1, got {n_servers}")
        if mode not in ("virtual", "threads"):
            raise ConfigError(f"SleepSUT: unknown mode {mode!r}; known: virtual, threads")
        self.service_time_fn = service_time_fn
        self.n_servers = n_servers
        self.mode = mode
        self.fail_every, self.raise_every, self.drop_every = fail_every, raise_every, drop_every
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self._count = 0
        self._stop = False
        if mode == "virtual":
            self._free = [(0, i) for i in range(n_servers)]  # (free-at ns, server id)
            self._due: list[tuple[int, int, Any]] = []  # (t_end, seq, (result, on_done))
            self._cv = threading.Condition(self._lock)
            self._timer = threading.Thread(target=self._deliver, name="sleep-sut-timer", daemon=True)
            self._timer.start()
        else:
            self._q: queue.Queue = queue.Queue()
            self._threads = [threading.Thread(target=self._serve, args=(i,), daemon=True,
                                              name=f"sleep-sut-{i}") for i in range(n_servers)]
            for th in self._threads:
                th.start()

    def issue(self, tenant: str, sample_start: int, n_items: int, on_done: OnDone) -> None:
        t_submit = time.monotonic_ns()
        with self._lock:
            self._count += 1
            k = self._count
            if self.raise_every and k % self.raise_every == 0:
                raise RuntimeError(f"SleepSUT: injected failure on query {k}")
            service_ns = int(round(self.service_time_fn(int(n_items), self._rng) * 1e9))
            if self.mode == "virtual":
                free_at, server = heapq.heappop(self._free)
                start = max(t_submit, free_at)
                end = start + service_ns
                heapq.heappush(self._free, (end, server))
                if self.drop_every and k % self.drop_every == 0:
                    return
                ok = not (self.fail_every and k % self.fail_every == 0)
                res = QueryResult(k, tenant, int(n_items), t_submit, start, end, [server], ok,
                                  None if ok else "SleepSUT: injected error")
                heapq.heappush(self._due, (end, k, (res, on_done)))
                self._cv.notify()
                return
        self._q.put((k, tenant, int(n_items), t_submit, service_ns, on_done))

    # virtual mode: one thread delivers results at their end times (sleeping, not spinning: the
    # timestamps in the results are exact; only the callback may come ~0.1 ms late)
    def _deliver(self) -> None:
        while True:
            with self._cv:
                while not self._stop and (not self._due or self._due[0][0] > time.monotonic_ns()):
                    wait_ns = self._due[0][0] - time.monotonic_ns() if self._due else None
                    self._cv.wait(timeout=None if wait_ns is None else max(wait_ns, 0) / 1e9)
                if self._stop:
                    return
                ready = []
                now = time.monotonic_ns()
                while self._due and self._due[0][0] <= now:
                    ready.append(heapq.heappop(self._due)[2])
            for res, on_done in ready:
                on_done(res)

    # threads mode: each server thread sleeps for the service time
    def _serve(self, server: int) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            k, tenant, n_items, t_submit, service_ns, on_done = item
            start = time.monotonic_ns()
            time.sleep(service_ns / 1e9)
            end = time.monotonic_ns()
            if self.drop_every and k % self.drop_every == 0:
                continue
            ok = not (self.fail_every and k % self.fail_every == 0)
            on_done(QueryResult(k, tenant, n_items, t_submit, start, end, [server], ok,
                                None if ok else "SleepSUT: injected error"))

    def close(self) -> None:
        """Stop the helper threads (queries not yet delivered are dropped)."""
        if self.mode == "virtual":
            with self._cv:
                self._stop = True
                self._cv.notify_all()
            self._timer.join(timeout=5)
        else:
            for _ in self._threads:
                self._q.put(None)
            for th in self._threads:
                th.join(timeout=5)

