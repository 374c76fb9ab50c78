"""Worker processes: the loop that runs in each one, and the node-side handle of a worker.

A worker has three channels (record layouts in :mod:`hera.server.wire`):

- the tenant's **shared task pipe**: an idle worker blocks reading exactly one 32-byte task record; Linux
  hands each record to one reader (readers wait exclusively), so the workers of a tenant serve one FCFS queue
  with no dispatcher choosing among them;
- the tenant's **shared result pipe**: one 32-byte result record per sub-batch (timestamps ``t0``/``t1`` are
  this worker's ``time.monotonic_ns()`` around the model call);
- its own **private pipe** (a duplex ``Connection``): ``R``/``E`` at start, ``G`` from the node when the
  worker may take work, and the ``S``/``X`` frames of sub-batches whose scores or error text do not fit a
  record.

The worker publishes the seq of the sub-batch it runs in a shared ``slot`` (0 when idle), so that the node can
tell which sub-batches a dead worker had taken. It pins itself (``os.sched_setaffinity``) before importing its
model, sets ``torch.set_num_threads(len(cores))``, ignores SIGINT (the node shuts it down) and exits on
SIGUSR1 (at once when idle, else after its current sub-batch) or when the task pipe reaches end of file (the
node is gone), so it never outlives the node.
"""

from __future__ import annotations

import os
import pickle
import signal
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from hera.server import wire
from hera.server.runner import RunnerSpec

# worker states (node side)
STARTING, READY, EXITING = "starting", "ready", "exiting"

EXIT_SIGNAL = signal.SIGUSR1


def _message(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class _Retire(BaseException):
    """Raised by the exit-signal handler while the worker waits for work."""


class _Flags:
    idle = False    # blocked waiting for work (or for the node's go): the exit signal interrupts the wait
    retire = False  # the node asked this worker to exit


def _on_exit_signal(signum: int, frame: Any) -> None:
    _Flags.retire = True
    if _Flags.idle:
        raise _Retire


@dataclass(frozen=True)
class WorkerChannels:
    """What a worker process receives at start: its channels, slot and identity (picklable at process start)."""

    worker_id: int
    conn: Connection        # private, duplex
    task_r: Connection      # shared task pipe, read end
    result_w: Connection    # shared result pipe, write end
    slot: Any               # multiprocessing RawValue('Q'): seq of the running sub-batch, 0 when idle
    payload_dir: str


def worker_main(ch: WorkerChannels, spec: RunnerSpec, cores: tuple[int, ...]) -> None:
    """Entry point of a worker process (runs until told to exit or the task pipe closes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(EXIT_SIGNAL, _on_exit_signal)
    conn = ch.conn
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
        info = runner.info()
        conn.send_bytes(b"R" + pickle.dumps((os.getpid(), sorted(os.sched_getaffinity(0)), info)))
    except BaseException as exc:  # noqa: BLE001 - reported to the node, which raises WorkerStartError
        try:
            conn.send_bytes(b"E" + _message(exc).encode("utf-8", "replace"))
        except (BrokenPipeError, OSError):
            pass
        return
    try:
        _Flags.idle = True
        try:
            if _Flags.retire or conn.recv_bytes() != b"G":
                return
        finally:
            _Flags.idle = False
        _serve(ch, runner, int(info.get("dense_in", 0)), int(info.get("n_ids", 0)))
    except (_Retire, EOFError, OSError):
        return


def _serve(ch: WorkerChannels, runner: Any, dense_in: int, n_ids: int) -> None:
    from hera.server.payload import read_rows

    clock, read, write = time.monotonic_ns, os.read, os.write
    task_fd, result_fd, conn, slot, wid = ch.task_r.fileno(), ch.result_w.fileno(), ch.conn, ch.slot, ch.worker_id
    unpack, pack, size = wire.TASK.unpack, wire.RESULT.pack, wire.TASK.size
    flags = _Flags
    while True:
        flags.idle = True
        try:
            if flags.retire:
                return
            rec = read(task_fd, size)
        finally:
            flags.idle = False
        if len(rec) != size:  # end of file: the node is gone
            return
        seq, kind, want_scores, n, start, row_offset, total_rows = unpack(rec)
        slot.value = seq
        t0 = clock()
        try:
            if kind == wire.KIND_LIBRARY:
                scores = runner.run_samples(start, n)
            else:
                scores = runner.run_arrays(*read_rows(ch.payload_dir, start, row_offset, n, total_rows,
                                                      dense_in, n_ids))
            err = None
        except Exception as exc:  # noqa: BLE001 - a model error fails only this query
            scores, err = None, _message(exc)
        t1 = clock()
        status = wire.ST_OK
        if err is not None:
            conn.send_bytes(wire.error_frame(seq, err))
            status = wire.ST_ERROR
        elif want_scores:
            conn.send_bytes(wire.scores_frame(seq, scores))
            status = wire.ST_SCORES
        write(result_fd, pack(seq, t0, t1, wid, status))
        slot.value = 0


@dataclass(eq=False)
class WorkerHandle:
    """The node's view of one worker process."""

    worker_id: int
    cores: tuple[int, ...]
    process: Any
    conn: Connection
    slot: Any
    state: str = STARTING
    pid: int | None = None
    busy_ns: int = 0
    started_ns: int = field(default_factory=time.monotonic_ns)
    info: dict[str, Any] | None = None
    frames: dict[int, bytes] = field(default_factory=dict)  # S/X frames read before their result record

    @property
    def sentinel(self) -> int:
        return self.process.sentinel

    def send_exit(self) -> None:
        """Ask the worker to exit: at once when it waits for work, else after its current sub-batch."""
        self.state = EXITING
        try:
            os.kill(self.process.pid, EXIT_SIGNAL)
        except (ProcessLookupError, TypeError):
            pass


def start_worker(ctx: Any, worker_id: int, spec: RunnerSpec, cores: tuple[int, ...], task_r: Connection,
                 result_w: Connection, payload_dir: str) -> WorkerHandle:
    """Start a worker process on ``cores``; it reports ``R`` (ready) on its private pipe once its model is
    loaded and takes work after the node's ``G``."""
    parent, child = ctx.Pipe(duplex=True)
    slot = ctx.RawValue("Q", 0)
    ch = WorkerChannels(worker_id, child, task_r, result_w, slot, payload_dir)
    proc = ctx.Process(target=worker_main, args=(ch, spec, cores), name=f"hera-worker-{worker_id}", daemon=True)
    proc.start()
    child.close()
    return WorkerHandle(worker_id, tuple(cores), proc, parent, slot, pid=proc.pid)


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
