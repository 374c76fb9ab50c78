"""Worker processes: the loop that runs in each one, and the node-side handle of a worker.

Protocol on one ``multiprocessing`` duplex pipe per worker (pickled tuples, no tensors on the library path):

- worker → node, once: ``("ready", pid, affinity, info)`` or ``("error", message)`` (then it exits);
- node → worker: ``(query_id, sub_index, sample_start, n, arrays|None, want_scores)``, or ``None`` = exit;
- worker → node, per sub-batch: ``(query_id, sub_index, t_start_ns, t_end_ns, scores|None, error|None)``.

A worker pins itself (``os.sched_setaffinity``) before importing its model, sets
``torch.set_num_threads(len(cores))``, ignores SIGINT (the node shuts it down), and exits when its pipe
closes, so it never outlives the node.
"""

from __future__ import annotations

import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from hera.server.runner import RunnerSpec

# worker states (node side)
STARTING, IDLE, BUSY, RETIRING, EXITING, DEAD = "starting", "idle", "busy", "retiring", "exiting", "dead"


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def worker_main(conn: Connection, spec: RunnerSpec, cores: tuple[int, ...]) -> None:
    """Entry point of a worker process (runs until told to exit or its pipe closes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.sched_setaffinity(0, cores)
        import torch

        torch.set_num_threads(len(cores))
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:
            pass
        from hera.server.runner import build_runner

        runner = build_runner(spec)
        conn.send(("ready", os.getpid(), sorted(os.sched_getaffinity(0)), runner.info()))
    except BaseException as exc:  # noqa: BLE001 - reported to the node, which raises WorkerStartError
        try:
            conn.send(("error", _message(exc)))
        except (BrokenPipeError, OSError):
            pass
        return
    _serve(conn, runner)


def _serve(conn: Connection, runner: Any) -> None:
    clock = time.monotonic_ns
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        qid, sub, start, n, arrays, want_scores = msg
        t0 = clock()
        try:
            scores = runner.run_samples(start, n) if arrays is None else runner.run_arrays(*arrays)
            err = None
        except Exception as exc:  # noqa: BLE001 - a model error fails only this query
            scores, err = None, _message(exc)
        t1 = clock()
        try:
            conn.send((qid, sub, t0, t1, scores if want_scores else None, err))
        except (BrokenPipeError, OSError):
            return


@dataclass(eq=False)
class WorkerHandle:
    """The node's view of one worker process."""

    worker_id: int
    cores: tuple[int, ...]
    process: Any
    conn: Connection
    state: str = STARTING
    pid: int | None = None
    tasks: deque = field(default_factory=deque)  # SubBatches sent to it, oldest (running) first
    busy_ns: int = 0
    started_ns: int = field(default_factory=time.monotonic_ns)
    info: dict[str, Any] | None = None

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def send_exit(self) -> None:
        """Ask the worker to exit after its current sub-batch (it reads the pipe only when idle)."""
        self.state = EXITING
        try:
            self.conn.send(None)
        except (BrokenPipeError, OSError):
            pass


def start_worker(ctx: Any, worker_id: int, spec: RunnerSpec, cores: tuple[int, ...]) -> WorkerHandle:
    """Start a worker process on ``cores``; it reports ``ready`` on its pipe once its model is loaded."""
    parent, child = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=worker_main, args=(child, spec, cores), name=f"hera-worker-{worker_id}",
                       daemon=True)
    proc.start()
    child.close()
    return WorkerHandle(worker_id, tuple(cores), proc, parent, pid=proc.pid)


_CONTEXTS: dict[str, Any] = {}


def mp_context(kind: str, preload_zoo: bool = False) -> Any:
    """The multiprocessing context for workers (``forkserver`` preloads torch once; ``spawn`` is plain)."""
    import multiprocessing

    if kind not in _CONTEXTS:
        ctx = multiprocessing.get_context(kind)
        if kind == "forkserver":
            mods = ["torch", "hera.server.runner", "hera.server.worker"]
            if preload_zoo:
                mods += ["torchrec", "hera.zoo.load", "hera.workload.library"]
            ctx.set_forkserver_preload(mods)
        _CONTEXTS[kind] = ctx
    return _CONTEXTS[kind]
