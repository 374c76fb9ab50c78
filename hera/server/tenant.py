"""One tenant: its worker pool, bounded queue, dispatch and result collection.

Dispatch has no thread of its own: ``submit`` (any thread) and the collector both call :meth:`Tenant._pump`
under the tenant lock, which hands waiting sub-batches to idle workers over their pipes. One collector thread
per tenant waits (epoll, through :mod:`selectors`) on every worker's pipe *and* process sentinel, so a result,
a ready message or a worker's death is seen at once. Futures are resolved outside the lock.

A worker that dies fails the queries of the sub-batch it was running and is replaced on the same cores;
``resize`` retires workers on removed cores after their current sub-batch and starts workers on added cores,
which receive work only once they report ready.
"""

from __future__ import annotations

import itertools
import logging
import math
import selectors
import threading
import time
from collections import deque
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from hera.server.config import TenantConfig
from hera.server.control import TenantSnapshot
from hera.server.errors import BadRequestError, NodeStoppedError, QueueFull, WorkerStartError
from hera.server.query import QueryResult, QueryState, SubBatch, check_arrays, split
from hera.server.resctrl import Resctrl
from hera.server.runner import RunnerSpec
from hera.server.stats import TenantStats
from hera.server.worker import BUSY, EXITING, IDLE, STARTING, WorkerHandle, start_worker

#: Sub-batches a worker may hold at once (running + queued in its pipe); see :meth:`Tenant._pump`.
PIPELINE_DEPTH = 2

log = logging.getLogger("hera.server")
MAX_START_FAILURES = 3


def worker_core_sets(cores: tuple[int, ...], cores_per_worker: int) -> list[tuple[int, ...]]:
    """One worker per ``cores_per_worker`` cores (the last worker takes what is left)."""
    cores = tuple(sorted(cores))
    return [cores[i:i + cores_per_worker] for i in range(0, len(cores), cores_per_worker)]


class Tenant:
    """A model served on the node with its workers, queue and statistics."""

    def __init__(self, cfg: TenantConfig, spec: RunnerSpec, ctx: Any, resctrl: Resctrl,
                 worker_ids: itertools.count, window_s: float = 10.0):
        self.cfg, self.name, self.runner_spec, self.ctx = cfg, cfg.name, spec, ctx
        self.resctrl = resctrl
        self.cores: tuple[int, ...] = tuple(sorted(cfg.cores))
        self._layout = worker_core_sets(self.cores, cfg.cores_per_worker)
        self._ids = worker_ids
        self.workers: dict[int, WorkerHandle] = {}
        self.idle: deque[WorkerHandle] = deque()
        self.pending: deque[SubBatch] = deque()
        self.queries: dict[int, QueryState] = {}
        self.n_waiting = 0  # queries with sub-batches not yet handed to a worker
        self.info: dict[str, Any] | None = None  # runner info (library size, input shapes)
        self.stats = TenantStats(window_s)
        self.errors: deque[str] = deque(maxlen=10)
        self._start_failures: dict[tuple[int, ...], int] = {}  # consecutive failed starts per core set
        self._failed_starts: dict[int, str] = {}  # worker id → why it failed to start
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.stopping = self.closing = False
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = ctx.Pipe(duplex=False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._collector = threading.Thread(target=self._collect, name=f"hera-collector-{self.name}", daemon=True)
        self._collector.start()

    # ------------------------------------------------- description (read by the HTTP front end, kserve.model_info)
    @property
    def model_id(self) -> str:
        return self.cfg.model

    @property
    def scale(self) -> str:
        return self.runner_spec.scale

    @property
    def max_items(self) -> int:
        return self.cfg.max_items

    @property
    def library_items(self) -> int | None:
        return (self.info or {}).get("library_items")

    @property
    def ready(self) -> int:
        """Number of workers ready to serve (0 before start or when all are gone)."""
        return sum(w.state in (IDLE, BUSY) for w in list(self.workers.values()))

    @property
    def spec(self) -> SimpleNamespace | None:
        """The model's input description as the workers report it: ``dense_in``, ``n_outputs``,
        ``tables`` (each ``name, rows, lookups``; ids columns are grouped by table in this order)."""
        if self.info is None:
            return None
        return SimpleNamespace(model_id=self.cfg.model, dense_in=self.info["dense_in"],
                               n_outputs=self.info["n_outputs"],
                               tables=[SimpleNamespace(**t) for t in self.info.get("tables", [])])

    # ------------------------------------------------------------------------------------- workers
    def spawn_all(self) -> list[int]:
        return [self._spawn(cs) for cs in self._layout]

    def _spawn(self, cores: tuple[int, ...]) -> int:
        w = start_worker(self.ctx, next(self._ids), self.runner_spec, cores)
        with self.lock:
            self.workers[w.worker_id] = w
            self._sel.register(w.conn, selectors.EVENT_READ, ("conn", w))
            self._sel.register(w.sentinel, selectors.EVENT_READ, ("exit", w))
            if self.closing:
                w.send_exit()
        return w.worker_id

    def wait_ready(self, worker_ids: list[int], timeout_s: float) -> None:
        """Block until the given workers are ready; WorkerStartError if one failed or time ran out."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while True:
                starting = [self.workers[i] for i in worker_ids
                            if i in self.workers and self.workers[i].state == STARTING]
                failed = [e for i, e in self._failed_starts.items() if i in worker_ids]
                if failed:
                    raise WorkerStartError(f"tenant {self.name!r}: a worker failed to start: {failed[0]}")
                if not starting:
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkerStartError(f"tenant {self.name!r}: {len(starting)} worker(s) not ready after "
                                           f"{timeout_s:.0f} s (cores {[w.cores for w in starting]})")
                self.changed.wait(min(left, 1.0))

    def resize(self, cores: tuple[int, ...]) -> list[int]:
        """Change the tenant's cores; returns the ids of workers started on added cores."""
        layout = worker_core_sets(cores, self.cfg.cores_per_worker)
        with self.lock:
            if self.stopping:
                raise NodeStoppedError(f"tenant {self.name!r} is stopping; resize refused")
            live = [w for w in self.workers.values() if w.state in (STARTING, IDLE, BUSY)]
            for w in live:
                if w.cores not in layout:
                    self._retire(w)
            have = {w.cores for w in live if w.cores in layout}
            self.cores, self._layout = tuple(sorted(cores)), layout
        return [self._spawn(cs) for cs in layout if cs not in have]

    def _retire(self, w: WorkerHandle) -> None:
        if w in self.idle:
            self.idle.remove(w)
        w.send_exit()  # a busy worker reads this only after sending its current result

    # ---------------------------------------------------------------------------------------- queries
    def validate(self, n_items: int) -> None:
        if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) \
                or not 1 <= n_items <= self.cfg.max_items:
            raise BadRequestError(f"tenant {self.name!r}: query size {n_items!r} is outside 1..{self.cfg.max_items}")
        if self.info is None:
            raise NodeStoppedError(f"tenant {self.name!r} has no ready worker yet (start the node first)")

    def check_arrays(self, dense: Any, ids: Any) -> tuple[np.ndarray, np.ndarray]:
        """Validate real input arrays against the model (see :func:`hera.server.query.check_arrays`)."""
        return check_arrays(self.name, self.info or {}, dense, ids)

    def submit(self, query_id: int, start: int, n_items: int, arrays: tuple[np.ndarray, np.ndarray] | None,
               want_scores: bool, on_done: Callable[[QueryResult], None] | None) -> Future:
        """Queue a query (already validated); raises QueueFull when ``queue_limit`` queries wait."""
        fut: Future = Future()
        if on_done is not None:
            fut.add_done_callback(lambda f: on_done(f.result()))
        q = QueryState(query_id, self.name, int(n_items), math.ceil(n_items / self.cfg.batch_size),
                       want_scores, fut)
        subs = split(q, int(start), self.cfg.batch_size, self.info["library_items"], arrays)
        with self.lock:
            if self.stopping:
                raise NodeStoppedError(f"tenant {self.name!r} is shutting down")
            if self.n_waiting >= self.cfg.queue_limit:
                self.stats.record_arrival(q.t_submit_ns, rejected=True)
                raise QueueFull(f"tenant {self.name!r}: queue full ({self.cfg.queue_limit} queries waiting)")
            self.stats.record_arrival(q.t_submit_ns)
            self.queries[query_id] = q
            self.n_waiting += 1
            self.pending.extend(subs)
            self._pump()
        return fut

    def _pump(self) -> None:
        """Hand waiting sub-batches to workers with a free slot (lock held).

        Each worker holds up to :data:`PIPELINE_DEPTH` sub-batches: the one it runs and the next one, already
        in its pipe, so it never waits for this (unpinned) process to be scheduled between sub-batches —
        on a machine whose every core runs a worker, that wait would otherwise idle the workers.
        ``self.idle`` holds workers with a free slot, least loaded first.
        """
        while self.pending and self.idle:
            sb = self.pending[0]
            if sb.query.done:
                self.pending.popleft()
                continue
            w = self.idle.popleft()
            try:
                w.conn.send(sb.wire())
            except (BrokenPipeError, OSError):
                continue  # dead: its sentinel reports it and it is replaced
            self.pending.popleft()
            w.state = BUSY
            w.tasks.append(sb)
            if len(w.tasks) < PIPELINE_DEPTH:
                self.idle.append(w)
            q = sb.query
            q.undispatched -= 1
            if q.undispatched == 0:
                self.n_waiting -= 1

    def _close(self, q: QueryState, error: str | None, done: list[QueryState]) -> None:
        """Mark a query finished (lock held); its future is resolved later, outside the lock."""
        if q.done:
            return
        q.done, q.error = True, error
        if q.undispatched > 0:
            self.n_waiting -= 1
            q.undispatched = 0
        self.queries.pop(q.query_id, None)
        done.append(q)
        if not self.queries:
            self.changed.notify_all()

    def _finish(self, done: list[QueryState]) -> None:
        status = self.resctrl.status
        for q in done:
            res = q.result(status)
            self.stats.record_query(res.ok, res.t_submit_ns, res.t_end_ns, res.t_done_ns)
            q.future.set_result(res)

    # -------------------------------------------------------------------------------------- collector
    def _collect(self) -> None:
        while True:
            done: list[QueryState] = []
            try:
                for key, _ in self._sel.select(timeout=1.0):
                    kind, w = key.data
                    if kind == "wake":
                        while self._wake_r.poll():
                            self._wake_r.recv_bytes()
                    elif kind == "conn":
                        self._on_message(w, done)
                    else:
                        self._on_exit(w, done)
            except Exception:  # noqa: BLE001 - a bug here must not stop result collection
                log.exception("tenant %s: collector error", self.name)
            self._finish(done)
            with self.lock:
                if self.closing and not self.workers:
                    return

    def _on_message(self, w: WorkerHandle, done: list[QueryState]) -> None:
        try:
            msg = w.conn.recv()
        except (EOFError, OSError):
            self._on_exit(w, done)
            return
        if isinstance(msg[0], str):
            self._on_control(w, msg)
        else:
            self._on_result(w, msg, done)

    def _on_result(self, w: WorkerHandle, msg: tuple, done: list[QueryState], alive: bool = True) -> None:
        _qid, index, t0, t1, scores, err = msg
        self.stats.record_busy(t0, t1)
        with self.lock:
            sb = w.tasks.popleft() if w.tasks else None
            w.busy_ns += t1 - t0
            if alive and w.state == BUSY:
                if w in self.idle:
                    self.idle.remove(w)
                if w.tasks:
                    self.idle.append(w)
                else:  # fully idle workers first: a sub-batch never waits behind another needlessly
                    w.state = IDLE
                    self.idle.appendleft(w)
            q = sb.query if sb is not None else None
            if q is not None and not q.done:
                if err is not None:
                    self._close(q, f"sub-batch {index} failed in worker {w.worker_id}: {err}", done)
                elif q.record(index, w.worker_id, t0, t1, scores, sb.n):
                    self._close(q, None, done)
            if alive:
                self._pump()

    def _on_control(self, w: WorkerHandle, msg: tuple) -> None:
        if msg[0] == "error":
            with self.lock:
                self._note_start_failure(w, msg[1])
            return
        _, pid, affinity, info = msg
        self.resctrl.assign(self.name, [pid])  # into the tenant's resource group before it gets work
        with self.lock:
            w.pid, w.info = pid, dict(info, affinity=affinity)
            if self.info is None:
                self.info = info
            self._start_failures.pop(w.cores, None)
            if w.state == STARTING:
                w.state = IDLE
                self.idle.append(w)
                self._pump()
            self.changed.notify_all()

    def _note_start_failure(self, w: WorkerHandle, message: str) -> None:
        self._failed_starts[w.worker_id] = message
        self._start_failures[w.cores] = self._start_failures.get(w.cores, 0) + 1
        self.errors.append(f"worker {w.worker_id} on cores {list(w.cores)}: {message}")
        log.error("tenant %s: worker %d on cores %s failed to start: %s", self.name, w.worker_id, w.cores, message)
        self.changed.notify_all()

    def _on_exit(self, w: WorkerHandle, done: list[QueryState]) -> None:
        # a result or an error message may still sit in the pipe
        try:
            while w.conn.poll():
                msg = w.conn.recv()
                if isinstance(msg[0], str):
                    self._on_control(w, msg)
                else:
                    self._on_result(w, msg, done, alive=False)
        except (EOFError, OSError):
            pass
        w.process.join(timeout=1.0)
        code = w.process.exitcode
        respawn = None
        with self.lock:
            if w.worker_id not in self.workers:
                return
            for obj in (w.conn, w.sentinel):
                try:
                    self._sel.unregister(obj)
                except (KeyError, ValueError):
                    pass
            w.conn.close()
            del self.workers[w.worker_id]
            if w in self.idle:
                self.idle.remove(w)
            unexpected = w.state != EXITING
            if w.state == STARTING and w.worker_id not in self._failed_starts:
                self._note_start_failure(w, f"exited with code {code} before it was ready")
            for sb in w.tasks:
                if not sb.query.done:
                    self._close(sb.query, f"worker {w.worker_id} (pid {w.pid}, cores {list(w.cores)}) died with "
                                          f"exit code {code} while running sub-batch {sb.index} of the query", done)
            w.tasks.clear()
            if unexpected:
                log.warning("tenant %s: worker %d (pid %s) exited with code %s", self.name, w.worker_id, w.pid, code)
                live = {x.cores for x in self.workers.values() if x.state in (STARTING, IDLE, BUSY)}
                if (not self.closing and w.cores in self._layout and w.cores not in live
                        and self._start_failures.get(w.cores, 0) < MAX_START_FAILURES):
                    respawn = w.cores
            if respawn is None and not any(x.state in (STARTING, IDLE, BUSY) for x in self.workers.values()):
                for q in list(self.queries.values()):
                    self._close(q, f"tenant {self.name!r} has no worker left to run the query", done)
            self.changed.notify_all()
        if respawn is not None:
            self._spawn(respawn)

    # ------------------------------------------------------------------------------------- shutdown
    def begin_stop(self) -> None:
        with self.lock:
            self.stopping = True

    def drain(self, timeout_s: float) -> bool:
        """Wait until every accepted query has finished; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while self.queries:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.5))
        return True

    def fail_all(self, reason: str, queued_only: bool = False) -> None:
        """Fail every unfinished query (``queued_only``: those with a sub-batch not yet given to a worker)."""
        done: list[QueryState] = []
        with self.lock:
            for q in list(self.queries.values()):
                if not queued_only or q.undispatched > 0:
                    self._close(q, reason, done)
            self.pending = deque(sb for sb in self.pending if not sb.query.done)
        self._finish(done)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Stop every worker (after its current sub-batch), then the collector."""
        with self.lock:
            self.closing = True
            workers = list(self.workers.values())
            for w in workers:
                if w.state != EXITING:
                    if w in self.idle:
                        self.idle.remove(w)
                    w.send_exit()
        deadline = time.monotonic() + timeout_s
        for w in workers:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                log.warning("tenant %s: worker %d did not exit; killing it", self.name, w.worker_id)
                w.process.kill()
                w.process.join(timeout=2.0)
        self._wake_w.send_bytes(b"x")
        self._collector.join(timeout=5.0)
        self.fail_all(f"tenant {self.name!r} shut down")
        for c in (self._wake_r, self._wake_w):
            c.close()
        self._sel.close()

    # ----------------------------------------------------------------------------------------- stats
    def snapshot(self, window_s: float | None = None) -> TenantSnapshot:
        """This tenant's :class:`~hera.server.control.TenantSnapshot` (rates over ``window_s``, or the node's)."""
        with self.lock:
            ready = [w for w in self.workers.values() if w.state in (IDLE, BUSY)]
            starting = sum(w.state == STARTING for w in self.workers.values())
            state = {"tenant": self.name, "model": self.cfg.model, "cores": tuple(self.cores),
                     "workers_ready": len(ready), "workers_starting": starting,
                     "worker_pids": tuple(w.pid for w in ready), "worker_cores": tuple(tuple(w.cores) for w in ready),
                     "queued_queries": self.n_waiting, "in_flight_queries": len(self.queries),
                     "batch_size_items": self.cfg.batch_size, "queue_limit_queries": self.cfg.queue_limit,
                     "max_items": self.cfg.max_items, "sla_ms": self.cfg.sla_ms,
                     "library_items": (self.info or {}).get("library_items"),
                     "worker_errors": tuple(self.errors)}
        return TenantSnapshot(**self.stats.snapshot(len(ready), window_s), **state,
                              **self.resctrl.tenant_state(self.name))
