"""One tenant: its worker pool, FCFS dispatch through a shared task queue, result collection and recovery.

Dispatch (docs/DESIGN.md, "Dispatch"): accepted queries are split into sub-batches that wait in ``pending``
(FCFS). Up to :data:`PIPELINE_DEPTH` sub-batches per ready worker are *handed*: written as 32-byte task records
to the tenant's shared task pipe, from which each idle worker reads the next one itself, so no dispatcher picks
workers and no worker waits for this process between sub-batches. Workers write 32-byte result records to one
shared result pipe; the tenant's collector thread reads every waiting record at once, records them, tops the
task pipe up and resolves finished queries outside the lock. The collector also waits (epoll, through
:mod:`selectors`) on each worker's private pipe and process sentinel, and on the issue pipes of load-generator
links (:mod:`hera.server.link`).

A worker that dies is seen at once (its sentinel). The sub-batches it had taken — handed, no longer in the pipe
(``FIONREAD``), not finished, and not published in a live worker's slot — are re-run once, ahead of the
queue, on its replacement (started on the same cores) or another live worker; a query fails only when a
sub-batch is lost twice, with a message naming both workers. ``resize`` retires workers on removed cores after
their current sub-batch and starts workers on added cores, which take work only once ready.
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import logging
import math
import os
import pickle
import selectors
import struct
import termios
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

from hera.server import wire
from hera.server.config import TenantConfig
from hera.server.control import TenantSnapshot
from hera.server.errors import BadRequestError, NodeStoppedError, QueueFull, WorkerStartError
from hera.server.payload import PayloadStore
from hera.server.query import QueryResult, QueryState, SubBatch, check_arrays, split
from hera.server.resctrl import Resctrl
from hera.server.runner import RunnerSpec
from hera.server.stats import TenantStats
from hera.server.worker import EXITING, READY, STARTING, WorkerHandle, start_worker

#: Sub-batches handed per ready worker (running + waiting in the shared task pipe); see :meth:`Tenant._top_up`.
PIPELINE_DEPTH = 8

#: While the tenant is saturated (sub-batches wait in ``pending``) and every worker has a next record in the task
#: pipe, the collector naps for half the time the pipe's records last (at most ``NAP_MAX_S``; none below
#: ``NAP_MIN_S``), so that it wakes once per several results and issues instead of once per record: each wake-up
#: on a machine whose every core runs a worker is taken from a worker.
NAP_MIN_S, NAP_MAX_S = 0.0002, 0.004

log = logging.getLogger("hera.server")
MAX_START_FAILURES = 3
_INT = struct.Struct("i")


def worker_core_sets(cores: tuple[int, ...], cores_per_worker: int, workers_per_core_set: int = 1
                     ) -> list[tuple[int, ...]]:
    """One worker per ``cores_per_worker`` cores (the last worker takes what is left), each core set
    ``workers_per_core_set`` times (> 1 only to measure dispatch with more workers than cores)."""
    cores = tuple(sorted(cores))
    sets = [cores[i:i + cores_per_worker] for i in range(0, len(cores), cores_per_worker)]
    return [cs for cs in sets for _ in range(workers_per_core_set)]


def _call_with_result(on_done: Callable[[QueryResult], None], fut: Future) -> None:
    on_done(fut.result())


def _pipe(size_bytes: int | None = None) -> tuple[int, int]:
    r, w = os.pipe()
    if size_bytes:
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, size_bytes)
        except (OSError, AttributeError):
            pass  # the default 64 KiB holds 2048 records
    return r, w


class Tenant:
    """A model served on the node with its workers, queue and statistics."""

    def __init__(self, cfg: TenantConfig, spec: RunnerSpec, ctx: Any, resctrl: Resctrl,
                 worker_ids: itertools.count, window_s: float = 10.0, payload: PayloadStore | None = None,
                 harness_cores: tuple[int, ...] | None = None):
        from multiprocessing.connection import Connection

        self.cfg, self.name, self.runner_spec, self.ctx = cfg, cfg.name, spec, ctx
        self.resctrl = resctrl
        self.cores: tuple[int, ...] = tuple(sorted(cfg.cores))
        self._layout = worker_core_sets(self.cores, cfg.cores_per_worker, cfg.workers_per_core_set)
        self._ids = worker_ids
        self.workers: dict[int, WorkerHandle] = {}
        self.n_ready = 0
        self.pending: deque[SubBatch] = deque()     # sub-batches not yet handed, FCFS
        self.inflight: dict[int, SubBatch] = {}     # seq → handed sub-batch (in the task pipe or running)
        self.next_seq = 1                           # seq of the next task record (0 = "idle" in a slot)
        self.queries: dict[int, QueryState] = {}
        self.n_waiting = 0  # queries with sub-batches not yet handed (see also _waiting_queries)
        self._handed: dict[int, QueryState] = {}  # fully handed queries, in order of their last seq
        self.n_reruns = 0   # sub-batches re-run after their worker died
        self.service_ns = 0.0  # moving average of sub-batch service times (for the collector's naps)
        self.info: dict[str, Any] | None = None  # runner info (library size, input shapes)
        self.stats = TenantStats(window_s)
        self.errors: deque[str] = deque(maxlen=10)
        self._start_failures: dict[tuple[int, ...], int] = {}  # consecutive failed starts per core set
        self._failed_starts: dict[int, str] = {}  # worker id → why it failed to start
        self.payload = payload if payload is not None else PayloadStore()
        self._own_payload = payload is None
        self.harness_cores = tuple(harness_cores) if harness_cores else None
        self.collector_tid: int | None = None
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.stopping = self.closing = False
        # the shared task and result pipes (the node keeps the read end of the task pipe for FIONREAD)
        self._task_r, self._task_w = _pipe()
        self._result_r, self._result_w = _pipe(1 << 20)
        os.set_blocking(self._result_r, False)
        self._task_r_conn = Connection(self._task_r, writable=False)
        self._result_w_conn = Connection(self._result_w, readable=False)
        self._links: dict[int, Any] = {}
        self._deferred: list[tuple[WorkerHandle, bytes]] = []  # control frames met while reading results
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._sel.register(self._result_r, selectors.EVENT_READ, ("results", None))
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
        return self.n_ready

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
        w = start_worker(self.ctx, next(self._ids), self.runner_spec, cores, self._task_r_conn,
                         self._result_w_conn, self.payload.dir)
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

    def _live(self) -> list[WorkerHandle]:
        return [w for w in self.workers.values() if w.state in (STARTING, READY)]

    def resize(self, cores: tuple[int, ...]) -> list[int]:
        """Change the tenant's cores; returns the ids of workers started on added cores."""
        layout = worker_core_sets(cores, self.cfg.cores_per_worker, self.cfg.workers_per_core_set)
        want = Counter(layout)
        with self.lock:
            if self.stopping:
                raise NodeStoppedError(f"tenant {self.name!r} is stopping; resize refused")
            kept: Counter = Counter()
            for w in self._live():
                if kept[w.cores] < want[w.cores]:
                    kept[w.cores] += 1
                else:
                    self._retire(w)
            self.cores, self._layout = tuple(sorted(cores)), layout
        return [self._spawn(cs) for cs, n in want.items() for _ in range(n - kept[cs])]

    def _retire(self, w: WorkerHandle) -> None:  # lock held
        if w.state == READY:
            self.n_ready -= 1
        w.send_exit()  # a busy worker exits after its current sub-batch

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
               want_scores: bool, on_done: Callable[[QueryResult], None] | None, *,
               future: bool = True, link: Any = None, tag: int = 0) -> Future | None:
        """Queue a query (already validated); raises QueueFull when ``queue_limit`` queries wait.

        ``future=False``: no Future, ``on_done(result)`` is called directly (the load generator's path);
        ``link``: the result goes back through a load-generator link with ``tag`` (no future)."""
        fut: Future | None = None
        if future and link is None:
            fut = Future()
            if on_done is not None:
                fut.add_done_callback(functools.partial(_call_with_result, on_done))
            on_done = None
        q = QueryState(query_id, self.name, int(n_items), math.ceil(n_items / self.cfg.batch_size),
                       want_scores, fut)
        q.on_done, q.link, q.link_tag = on_done, link, tag
        if arrays is not None:
            q.payload = query_id
            self.payload.put(query_id, *arrays)
        subs = split(q, int(start), self.cfg.batch_size, self.info["library_items"], arrays)
        try:
            self._accept(q, subs)
        except BaseException:
            if arrays is not None:
                self.payload.drop(query_id)
            raise
        return fut

    def _accept(self, q: QueryState, subs: list[SubBatch]) -> None:
        with self.lock:
            if self.stopping:
                raise NodeStoppedError(f"tenant {self.name!r} is shutting down")
            if self._waiting_queries() >= self.cfg.queue_limit:
                self.stats.record_arrival(q.t_submit_ns, rejected=True)
                raise QueueFull(f"tenant {self.name!r}: queue full ({self.cfg.queue_limit} queries waiting)")
            self.stats.record_arrival(q.t_submit_ns)
            self.queries[q.query_id] = q
            self.n_waiting += 1
            self.pending.extend(subs)
            self._top_up()

    def _top_up(self) -> None:
        """Hand waiting sub-batches to the shared task pipe (lock held).

        At most :data:`PIPELINE_DEPTH` sub-batches per ready worker are handed at once: every worker finds its
        next sub-batch in the pipe when it finishes one, so it never waits for this (unpinned) process to be
        scheduled between sub-batches — the collector may be late by up to seven sub-batch times before a
        worker runs dry — while the queue stays here, where queue limits, FCFS re-runs and
        ``stop(drain=False)`` can see it.
        """
        room = PIPELINE_DEPTH * self.n_ready - len(self.inflight)
        if room <= 0 or not self.pending:
            return
        out = bytearray()
        pending, inflight, pack = self.pending, self.inflight, wire.TASK.pack
        seq = self.next_seq
        while room > 0 and pending:
            sb = pending.popleft()
            q = sb.query
            if q.done:
                continue
            if q.payload is None:
                out += pack(seq, wire.KIND_LIBRARY, q.want_scores, sb.n, sb.start, 0, 0)
            else:
                out += pack(seq, wire.KIND_TENSOR, q.want_scores, sb.n, q.payload, sb.start, q.n_items)
            inflight[seq] = sb
            q.last_seq = seq
            seq += 1
            room -= 1
            q.undispatched -= 1
            if q.undispatched == 0:
                self.n_waiting -= 1
                self._handed.pop(q.query_id, None)
                self._handed[q.query_id] = q
        self.next_seq = seq
        if out:
            os.write(self._task_w, out)  # never blocks: at most PIPELINE_DEPTH records per worker are in it

    def _waiting_queries(self) -> int:
        """Queries with a sub-batch no worker has taken yet: still queued here, or handed and still in the task
        pipe (lock held). Queue limits and ``queued_queries`` count these, whatever the handed window."""
        handed = self._handed
        if handed:
            taken_below = self.next_seq - self._in_pipe()
            while handed:  # in order of last seq: drop those whose last record a worker has taken
                q = next(iter(handed.values()))
                if q.last_seq >= taken_below:
                    break
                del handed[q.query_id]
        return self.n_waiting + len(handed)

    def _requeue(self, subs: list[SubBatch]) -> None:
        """Put handed sub-batches back at the head of the queue, in order (lock held)."""
        for sb in reversed(subs):
            q = sb.query
            if q.undispatched == 0:
                self.n_waiting += 1
                self._handed.pop(q.query_id, None)
            q.undispatched += 1
            self.pending.appendleft(sb)

    def _close(self, q: QueryState, error: str | None, done: list[QueryState]) -> None:
        """Mark a query finished (lock held); its future is resolved later, outside the lock."""
        if q.done:
            return
        q.done, q.error = True, error
        if q.undispatched > 0:
            self.n_waiting -= 1
            q.undispatched = 0
        self._handed.pop(q.query_id, None)
        self.queries.pop(q.query_id, None)
        done.append(q)
        if not self.queries:
            self.changed.notify_all()

    def _finish(self, done: list[QueryState]) -> None:
        if not done:
            return
        status = self.resctrl.status
        links = set()
        for q in done:
            if q.payload is not None:
                self.payload.drop(q.payload)
            res = q.result(status)
            self.stats.record_query(res.ok, res.t_submit_ns, res.t_end_ns, res.t_done_ns)
            if q.link is not None:
                q.link.complete(q.link_tag, res)
                links.add(q.link)
            elif q.future is not None:
                q.future.set_result(res)
            elif q.on_done is not None:
                try:
                    q.on_done(res)
                except Exception:  # noqa: BLE001 - a caller's callback must not stop result collection
                    log.exception("tenant %s: on_done callback raised", self.name)
        for link in links:
            link.flush(self)

    # -------------------------------------------------------------------------------------- collector
    def _collect(self) -> None:
        self.collector_tid = threading.get_native_id()
        if self.harness_cores:
            try:
                os.sched_setaffinity(0, self.harness_cores)  # this thread only
            except OSError as exc:
                log.warning("tenant %s: collector not pinned to harness cores %s: %s", self.name,
                            list(self.harness_cores), exc)
        while True:
            done: list[QueryState] = []
            try:
                for key, _ in self._sel.select(timeout=1.0):
                    kind, obj = key.data
                    if kind == "results":
                        self._read_results(done)
                    elif kind == "wake":
                        try:
                            os.read(self._wake_r, 4096)
                        except BlockingIOError:
                            pass
                    elif kind == "conn":
                        self._on_private(obj, done)
                    elif kind == "link":
                        obj.on_issue_ready(self, done)
                    else:
                        self._on_exit(obj, done)
            except Exception:  # noqa: BLE001 - a bug here must not stop result collection
                log.exception("tenant %s: collector error", self.name)
            self._finish(done)
            for link in list(self._links.values()):
                link.flush(self)
            with self.lock:
                if self.closing and not self.workers:
                    return
            nap = self._nap_s()
            if nap:
                time.sleep(nap)

    def _nap_s(self) -> float:
        """How long the collector may sleep without any worker running dry (see :data:`NAP_MAX_S`)."""
        if not self.pending or self.closing or self.n_ready <= 0:
            return 0.0
        in_pipe = self._in_pipe()
        if in_pipe < self.n_ready:
            return 0.0
        nap = min(NAP_MAX_S, 0.5 * in_pipe / self.n_ready * self.service_ns / 1e9)
        return nap if nap >= NAP_MIN_S else 0.0

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass

    def _read_results(self, done: list[QueryState]) -> None:
        while True:
            try:
                data = os.read(self._result_r, wire.READ_CHUNK)
            except BlockingIOError:
                return
            if data:
                self._on_results(data, done)
            if len(data) < wire.READ_CHUNK:
                return

    def _on_results(self, data: bytes, done: list[QueryState]) -> None:
        record_busy = self.stats.record_busy
        with self.lock:
            inflight, workers = self.inflight, self.workers
            svc = self.service_ns
            for seq, t0, t1, wid, status in wire.RESULT.iter_unpack(data):
                record_busy(t0, t1)
                svc += 0.05 * ((t1 - t0) - svc)
                w = workers.get(wid)
                if w is not None:
                    w.busy_ns += t1 - t0
                frame = self._frame(w, seq) if status != wire.ST_OK else None
                sb = inflight.pop(seq, None)
                if sb is None:
                    continue  # a duplicate of a sub-batch re-run after a death: already recorded or requeued
                q = sb.query
                if q.done:
                    continue
                if status == wire.ST_ERROR:
                    err = wire.frame_error(frame) if frame else "its error message was lost"
                    self._close(q, f"sub-batch {sb.index} failed in worker {wid}: {err}", done)
                elif status == wire.ST_SCORES and frame is None:
                    self._close(q, f"sub-batch {sb.index}: worker {wid} sent no scores", done)
                elif q.record(sb.index, wid, t0, t1, wire.frame_scores(frame) if frame else None, sb.n):
                    self._close(q, None, done)
            self.service_ns = svc
            self._top_up()
        while self._deferred:
            self._control_frame(*self._deferred.pop(0))

    def _frame(self, w: WorkerHandle | None, seq: int) -> bytes | None:
        """The S/X frame of ``seq`` from ``w``'s private pipe (written before its result record)."""
        if w is None:
            return None
        frame = w.frames.pop(seq, None)
        try:
            while frame is None and not w.conn.closed and w.conn.poll(0):
                f = w.conn.recv_bytes()
                if f[:1] in (b"S", b"X"):
                    if wire.frame_seq(f) == seq:
                        frame = f
                    else:
                        w.frames[wire.frame_seq(f)] = f
                else:  # cannot happen (R and E come before any work); handled after the lock is released
                    self._deferred.append((w, f))
        except (EOFError, OSError):
            pass
        return frame

    def _on_private(self, w: WorkerHandle, done: list[QueryState]) -> None:
        try:
            if w.conn.closed or not w.conn.poll(0):
                return  # already read (a result record's frame is read with the record)
            f = w.conn.recv_bytes()
        except (EOFError, OSError):
            self._on_exit(w, done)
            return
        if f[:1] in (b"S", b"X"):
            with self.lock:
                w.frames[wire.frame_seq(f)] = f
        else:
            self._control_frame(w, f)

    def _control_frame(self, w: WorkerHandle, f: bytes) -> None:
        if f[:1] == b"E":
            with self.lock:
                self._note_start_failure(w, f[1:].decode("utf-8", "replace"))
            return
        if f[:1] != b"R":
            log.error("tenant %s: unknown frame %r from worker %d", self.name, f[:1], w.worker_id)
            return
        pid, affinity, info = pickle.loads(f[1:])
        self.resctrl.assign(self.name, [pid])  # into the tenant's resource group before it gets work
        with self.lock:
            w.pid, w.info = pid, dict(info, affinity=affinity)
            if self.info is None:
                self.info = info
            self._start_failures.pop(w.cores, None)
            if w.state == STARTING:
                try:
                    w.conn.send_bytes(b"G")
                except OSError:
                    return  # dead: its sentinel reports it
                w.state = READY
                self.n_ready += 1
                self._top_up()
            self.changed.notify_all()

    def _note_start_failure(self, w: WorkerHandle, message: str) -> None:
        self._failed_starts[w.worker_id] = message
        self._start_failures[w.cores] = self._start_failures.get(w.cores, 0) + 1
        self.errors.append(f"worker {w.worker_id} on cores {list(w.cores)}: {message}")
        log.error("tenant %s: worker %d on cores %s failed to start: %s", self.name, w.worker_id, w.cores, message)
        self.changed.notify_all()

    def _in_pipe(self) -> int:
        """Task records still waiting in the shared pipe (not yet read by any worker)."""
        try:
            n = _INT.unpack(fcntl.ioctl(self._task_r, termios.FIONREAD, b"\0" * _INT.size))[0]
        except OSError:
            return 0
        return n // wire.TASK.size

    def _on_exit(self, w: WorkerHandle, done: list[QueryState]) -> None:
        self._read_results(done)  # what it (and the others) finished before it died
        try:
            while not w.conn.closed and w.conn.poll(0):
                f = w.conn.recv_bytes()
                if f[:1] in (b"S", b"X"):
                    w.frames[wire.frame_seq(f)] = f
                else:
                    self._control_frame(w, f)
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
            del self.workers[w.worker_id]
            if w.state == READY:
                self.n_ready -= 1
            unexpected = w.state != EXITING
            if w.state == STARTING and w.worker_id not in self._failed_starts:
                self._note_start_failure(w, f"exited with code {code} before it was ready")
            self._recover(w, code, unexpected, done)
            w.conn.close()
            if unexpected:
                log.warning("tenant %s: worker %d (pid %s) exited with code %s", self.name, w.worker_id, w.pid, code)
                live = Counter(x.cores for x in self._live())
                if (not self.closing and live[w.cores] < self._layout.count(w.cores)
                        and self._start_failures.get(w.cores, 0) < MAX_START_FAILURES):
                    respawn = w.cores
            if respawn is None and not self._live():
                # while the node stops, the last worker retiring is the shutdown (a sub-batch it had read as the
                # exit signal came is re-queued with no one left to run it), and the query says so
                why = "shut down: " if self.closing or self.stopping else ""
                for q in list(self.queries.values()):
                    self._close(q, f"tenant {self.name!r} {why}has no worker left to run the query", done)
            self._top_up()
            self.changed.notify_all()
        if respawn is not None:
            self._spawn(respawn)

    def _recover(self, w: WorkerHandle, code: int | None, unexpected: bool, done: list[QueryState]) -> None:
        """Re-run the sub-batches ``w`` had taken and not finished (lock held; ``w`` already removed).

        Taken = handed and no longer in the pipe; a sub-batch in a live worker's slot is running there. A taken
        sub-batch in no slot belongs to ``w`` — or, rarely, to a live worker between reading it and publishing
        its slot, or finishing it after the results were read: re-running it then only duplicates idempotent
        work (the second result is ignored). A sub-batch in ``w``'s own slot was surely lost with ``w``: it is
        re-run once, and a second such loss fails its query.
        """
        taken_below = self.next_seq - self._in_pipe()
        running = {x.slot.value for x in self.workers.values()}
        own = w.slot.value
        what = (f"worker {w.worker_id} (pid {w.pid}, cores {list(w.cores)}) "
                + (f"died with exit code {code}" if unexpected else "exited"))
        rerun = []
        for seq in [s for s in self.inflight if s < taken_below and s not in running]:
            sb = self.inflight.pop(seq)
            q = sb.query
            if q.done or q.has(sb.index):
                continue
            if unexpected and seq == own:
                if sb.lost_on is not None:
                    self._close(q, f"sub-batch {sb.index} of the query was lost twice: {sb.lost_on} while running "
                                   f"it, and {what} while re-running it", done)
                    continue
                sb.lost_on = what
            rerun.append(sb)
        if rerun:
            self.n_reruns += len(rerun)
            self._requeue(rerun)
            log.warning("tenant %s: %s; re-running %d sub-batch(es) it had taken", self.name, what, len(rerun))

    # ----------------------------------------------------------------------------------- load-generator links
    def attach_link(self, link: Any, issue_fd: int) -> None:
        with self.lock:
            self._links[id(link)] = link
            self._sel.register(issue_fd, selectors.EVENT_READ, ("link", link))
        self._wake()

    def detach_link(self, link: Any, issue_fd: int) -> None:
        with self.lock:
            self._links.pop(id(link), None)
            try:
                self._sel.unregister(issue_fd)
            except (KeyError, ValueError):
                pass
        self._wake()

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
        """Fail every unfinished query (``queued_only``: those with a sub-batch no worker has taken yet)."""
        done: list[QueryState] = []
        with self.lock:
            waiting = set()
            if queued_only:
                taken_below = self.next_seq - self._in_pipe()
                waiting = {id(sb.query) for s, sb in self.inflight.items() if s >= taken_below}
            for q in list(self.queries.values()):
                if not queued_only or q.undispatched > 0 or id(q) in waiting:
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
                    self._retire(w)
        deadline = time.monotonic() + timeout_s
        for w in workers:
            w.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                log.warning("tenant %s: worker %d did not exit; killing it", self.name, w.worker_id)
                w.process.kill()
                w.process.join(timeout=2.0)
        self._wake()
        self._collector.join(timeout=5.0)
        self.fail_all(f"tenant {self.name!r} shut down")
        for link in list(self._links.values()):
            link.flush(self)
        for fd in (self._wake_r, self._wake_w, self._task_w, self._result_r):
            try:
                os.close(fd)
            except OSError:
                pass
        for conn in (self._task_r_conn, self._result_w_conn):
            conn.close()
        self._sel.close()
        if self._own_payload:
            self.payload.close()

    # ----------------------------------------------------------------------------------------- stats
    def snapshot(self, window_s: float | None = None) -> TenantSnapshot:
        """This tenant's :class:`~hera.server.control.TenantSnapshot` (rates over ``window_s``, or the node's)."""
        with self.lock:
            ready = [w for w in self.workers.values() if w.state == READY]
            starting = sum(w.state == STARTING for w in self.workers.values())
            state = {"tenant": self.name, "model": self.cfg.model, "cores": tuple(self.cores),
                     "workers_ready": len(ready), "workers_starting": starting,
                     "worker_pids": tuple(w.pid for w in ready), "worker_cores": tuple(tuple(w.cores) for w in ready),
                     "queued_queries": self._waiting_queries(), "in_flight_queries": len(self.queries),
                     "batch_size_items": self.cfg.batch_size, "queue_limit_queries": self.cfg.queue_limit,
                     "max_items": self.cfg.max_items, "sla_ms": self.cfg.sla_ms,
                     "library_items": (self.info or {}).get("library_items"),
                     "worker_errors": tuple(self.errors), "sub_batches_rerun": self.n_reruns}
        return TenantSnapshot(**self.stats.snapshot(len(ready), window_s), **state,
                              **self.resctrl.tenant_state(self.name))
