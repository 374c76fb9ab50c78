"""Antagonists: pinned processes that exert controlled memory pressure (the Bubble-Up method).

Bubble-Up (Mars et al., "Bubble-Up: Increasing Utilization in Modern Warehouse Scale Computers via Sensible
Co-locations", MICRO 2011) characterises an application by two numbers: its *sensitivity* (how much it slows down
next to a "bubble" of tunable memory pressure) and the *pressure* it exerts itself (how much a reporter/probe
kernel of known behaviour slows down next to it). This module provides the bubbles, each a separate process per
core, pinned with ``sched_setaffinity`` and written with numpy so the work happens in compiled loops:

- ``bandwidth``: streaming copy (reads + writes) over buffers much larger than the LLC
  (default ``max(4 × LLC / processes, 32 MiB)`` per process), duty-cycled to ``intensity``: in every period
  (default 1 ms) the process copies for ``intensity × period`` and sleeps for the rest.
- ``cache``: random gathers (one 8-byte read per cache line, in a random permutation of the lines) over a working
  set of ``intensity × LLC`` bytes (split evenly over the antagonist's processes), all the time. The permutation
  (8 bytes per line) is streamed alongside, so the true footprint is ``1.125 ×`` the working set.
- ``cpu``: a *busy core* and nothing else — arithmetic on a 4 KiB array that stays in L1, duty-cycled to
  ``intensity`` like ``bandwidth``, no memory traffic beyond its core. It is what every other antagonist also is
  (a core kept busy a share of the time), so a model's sensitivity to it separates the CPU channel — the
  harness, the node's threads and the OS that must then run on the model's own cores — from the memory ones,
  and a co-located partner exerts it at its own utilisation (docs/DESIGN.md, "The busy-core channel").

``intensity = 0`` starts idle processes (the "antagonist present but doing nothing" control).
Each process publishes counters in shared memory (bytes moved, cache lines touched, active and wall seconds), so
an antagonist can also serve as a *probe* whose achieved throughput measures the pressure of a co-runner.

Termination is always clean: the context manager stops its processes on every exit path (a stop flag, then
``terminate`` and ``kill``); each process also asks the kernel to kill it when its parent dies
(``PR_SET_PDEATHSIG``) and exits by itself when it sees it has been re-parented, so no process outlives its owner.

.. code-block:: python

    with Antagonist("bandwidth", 0.5, cores=[1]) as ant:
        ...                                 # the model runs on core 0 meanwhile
        print(ant.measure(0.5))             # {'bytes_per_s': ..., 'lines_per_s': ..., 'duty': ...}
"""

from __future__ import annotations

import atexit
import ctypes
import json
import math
import multiprocessing
import os
import signal
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

from hera.errors import ConfigError, HeraError, ResourceError

KINDS = ("bandwidth", "cache", "cpu")
#: Element count of the ``cpu`` kernel's array (float64: 4 KiB, well inside any L1 data cache).
CPU_KERNEL_ELEMENTS = 512
LINE_BYTES = 64
# shared counter slots per process; ``_SEQ`` is a sequence lock (odd while the process writes its slots) so that a
# reader never pairs a new ``active_s`` with an old ``wall_s`` (a duty above 1 came from exactly that race)
_BYTES, _LINES, _ACTIVE_S, _WALL_S, _STATE, _CPU_S, _SEQ, _SLOTS = 0, 1, 2, 3, 4, 5, 6, 7
#: How long a reader waits for a consistent read: a writer preempted mid-write holds the sequence odd for a
#: scheduler tick or two (milliseconds); one killed mid-write holds it for good.
_SEQ_WAIT_S = 0.05
_READY, _FAILED = 1.0, -1.0
_PR_SET_PDEATHSIG = 1


class AntagonistError(HeraError):
    """An antagonist could not be started or measured."""


@dataclass(frozen=True)
class AntagonistSample:
    """What an antagonist achieved over one window (summed over its processes).

    ``duty``: mean fraction of wall time the processes were working (≈ intensity for ``bandwidth`` and ``cpu``).
    """

    kind: str
    intensity: float
    cores: tuple[int, ...]
    window_s: float
    bytes_per_s: float
    lines_per_s: float
    duty: float

    @property
    def gbps(self) -> float:
        return self.bytes_per_s / 1e9

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "intensity": self.intensity, "cores": list(self.cores),
                "window_s": self.window_s, "bytes_per_s": self.bytes_per_s, "gbps": self.gbps,
                "lines_per_s": self.lines_per_s, "duty": self.duty}


# ------------------------------------------------------------------------------------------ child side
def _set_pdeathsig() -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - non-glibc systems: the ppid check remains
        pass


def _antagonist_main(kind: str, intensity: float, core: int, work_bytes: int, period_s: float, seed: int,
                     counters: Any, slot: int, stop: Any, parent_pid: int) -> None:
    """Entry point of one antagonist process (pinned to ``core``); runs until ``stop[0]`` is set."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the owner decides when we stop
    _set_pdeathsig()
    base = slot * _SLOTS
    try:
        if os.getppid() != parent_pid:
            return
        os.sched_setaffinity(0, [core])
        import numpy as np

        work = _make_kernel(kind, intensity, work_bytes, seed, np)
    except BaseException:  # noqa: BLE001 - reported through the state slot; the owner raises
        counters[base + _STATE] = _FAILED
        return
    counters[base + _STATE] = _READY
    duty = duty_of(kind, intensity)
    clock = time.perf_counter
    t_begin = clock()
    n_period = 0
    while not stop[0]:
        t0, cpu0 = clock(), time.thread_time()
        moved = lines = 0
        worked = False
        if work is not None and duty > 0:
            busy_until = t0 + duty * period_s
            while True:
                b, ln = work()
                moved += b
                lines += ln
                worked = True
                if clock() >= busy_until:
                    break
        t1 = clock()
        if worked:
            counters[base + _SEQ] += 1  # odd: writing
            counters[base + _BYTES] += moved
            counters[base + _LINES] += lines
            counters[base + _ACTIVE_S] += t1 - t0
            counters[base + _CPU_S] += time.thread_time() - cpu0
            counters[base + _WALL_S] = t1 - t_begin  # wall time never lags the active time it contains
            counters[base + _SEQ] += 1  # even: consistent
            rest = t0 + period_s - t1
            if rest > 0 and duty < 1.0:
                time.sleep(rest)
        else:  # idle control: present, pinned, doing nothing
            time.sleep(0.01)
        counters[base + _SEQ] += 1
        counters[base + _WALL_S] = clock() - t_begin
        counters[base + _SEQ] += 1
        n_period += 1
        if n_period % 64 == 0 and os.getppid() != parent_pid:
            return  # owner gone (PDEATHSIG normally got here first)


def _read_slot(counters: Any, base: int) -> list[float]:
    """One process's counter slots, read consistently (sequence lock: retry while it writes or wrote meanwhile).

    A writer preempted mid-write is waited for, up to ``_SEQ_WAIT_S``; after that (a process killed mid-write
    leaves the sequence odd for good) the last read is returned: such a process is dead, and
    :meth:`Antagonist.measure` reports that before using the numbers."""
    deadline = None
    snap = list(counters[base:base + _SLOTS])
    while True:
        seq = snap[_SEQ]
        if seq % 2 == 0:
            again = list(counters[base:base + _SLOTS])
            if again[_SEQ] == seq:
                return again
            snap = again
            continue
        now = time.monotonic()
        if deadline is None:
            deadline = now + _SEQ_WAIT_S
        elif now > deadline:
            return snap
        time.sleep(0.0002)
        snap = list(counters[base:base + _SLOTS])


def duty_of(kind: str, intensity: float) -> float:
    """The share of each period an antagonist of ``kind`` at ``intensity`` keeps its core busy: ``bandwidth`` and
    ``cpu`` are duty-cycled to the intensity, ``cache`` is busy all the time (its intensity sizes the set)."""
    if kind in ("bandwidth", "cpu"):
        return float(intensity)
    return 1.0 if intensity > 0 else 0.0


def _make_kernel(kind: str, intensity: float, work_bytes: int, seed: int, np: Any):
    """A callable doing one small unit of work and returning ``(bytes, cache lines)`` moved beyond the core (None:
    idle)."""
    if intensity <= 0:
        return None
    if kind == "cpu":
        x = np.full(CPU_KERNEL_ELEMENTS, 1.0000001)

        def spin() -> tuple[int, int]:
            for _ in range(16):  # a few µs per call: a fine-grained duty cycle, nothing leaves L1
                np.multiply(x, 0.9999999, out=x)
                np.add(x, 1e-7, out=x)
            return 0, 0

        return spin
    if work_bytes <= 0:
        return None
    if kind == "bandwidth":
        chunk = 256 * 1024 // 8  # float64 elements per copy (256 KiB: ~25-50 µs, fine-grained duty cycle)
        half = max(chunk, (work_bytes // 2) // 8 // chunk * chunk)
        src = np.ones(half, dtype=np.float64)
        dst = np.zeros(half, dtype=np.float64)
        state = {"i": 0}

        def copy_chunk() -> tuple[int, int]:
            i = state["i"]
            np.copyto(dst[i:i + chunk], src[i:i + chunk])
            state["i"] = (i + chunk) % half
            return 2 * chunk * 8, 2 * chunk * 8 // LINE_BYTES

        return copy_chunk
    if kind == "cache":
        n_lines = max(1, work_bytes // LINE_BYTES)
        per_line = LINE_BYTES // 8
        buf = np.arange(n_lines * per_line, dtype=np.int64)  # touched: resident before measuring
        perm = np.random.default_rng(seed).permutation(n_lines).astype(np.intp) * per_line
        block = min(4096, n_lines)
        out = np.empty(block, dtype=np.int64)
        state = {"j": 0}

        def gather() -> tuple[int, int]:
            j = state["j"]
            idx = perm[j:j + block]
            if idx.size < block:  # wrap around the permutation
                idx = np.concatenate([idx, perm[:block - idx.size]])
            np.take(buf, idx, out=out)
            state["j"] = (j + block) % n_lines
            return block * LINE_BYTES, block

        return gather
    raise ValueError(kind)


# ------------------------------------------------------------------------------------------ owner side
_LIVE: "weakref.WeakSet[Antagonist]" = weakref.WeakSet()
_LIVE_LOCK = threading.Lock()


def _stop_all_live() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for ant in live:
        ant.stop()


atexit.register(_stop_all_live)


def _reap(procs: list[Any], stop: Any, grace_s: float) -> None:
    """Stop processes: set the flag, wait, then SIGTERM, then SIGKILL; always joins."""
    try:
        stop[0] = 1
    except Exception:  # noqa: BLE001 - shared memory already gone at interpreter exit
        pass
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(1.0)
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(5.0)


def llc_bytes_of_machine() -> int:
    """The LLC size of this machine (``hera.machine.describe()["llc_bytes"]``); 32 MiB when unknown."""
    from hera.machine import describe

    return int(describe().get("llc_bytes") or 32 * 1024**2)


class Antagonist:
    """A group of pinned processes (one per core) exerting ``kind`` pressure at ``intensity`` ∈ [0, 1].

    ``llc_bytes``: LLC size the ``cache`` working set is a fraction of (default: this machine's);
    ``buffer_bytes``: per-process buffer of ``bandwidth`` (default ``max(4 × LLC / processes, 32 MiB)``);
    ``period_ms``: duty-cycle period of ``bandwidth``. Use as a context manager, or call :meth:`start` and
    :meth:`stop` (also done at interpreter exit and when the object is collected).
    """

    def __init__(self, kind: str, intensity: float, cores: list[int] | tuple[int, ...], *,
                 llc_bytes: int | None = None, buffer_bytes: int | None = None, period_ms: float = 1.0,
                 seed: int = 0, start_timeout_s: float = 60.0, stop_grace_s: float = 2.0):
        if kind not in KINDS:
            raise ConfigError(f"unknown antagonist kind {kind!r}; known: {', '.join(KINDS)}")
        if isinstance(intensity, bool) or not isinstance(intensity, (int, float)) \
                or not math.isfinite(intensity) or not 0.0 <= float(intensity) <= 1.0:
            raise ConfigError(f"antagonist intensity must be a number in [0, 1], not {intensity!r}")
        cores = tuple(int(c) for c in cores)
        if not cores:
            raise ResourceError("an antagonist needs at least one core")
        from hera.machine import describe

        # online CPUs (this thread may be pinned narrower for the moment, see hera.profile.common.pinned)
        usable = sorted({c["cpu"] for c in describe()["topology"]} | set(os.sched_getaffinity(0)))
        missing = sorted(set(cores) - set(usable))
        if missing:
            raise ResourceError(f"antagonist cores {missing} are not on this machine (online CPUs: {usable})")
        if not period_ms > 0:
            raise ConfigError(f"antagonist period_ms must be > 0, not {period_ms!r}")
        self.kind, self.intensity, self.cores = kind, float(intensity), cores
        self.llc_bytes = int(llc_bytes or llc_bytes_of_machine())
        if kind == "bandwidth":
            # together the processes stream over >= 4 x LLC (each at least 32 MiB): far more than the LLC holds
            self.work_bytes = int(buffer_bytes or max(4 * self.llc_bytes // len(cores), 32 * 1024**2))
        elif kind == "cpu":
            self.work_bytes = CPU_KERNEL_ELEMENTS * 8
        else:
            self.work_bytes = int(self.intensity * self.llc_bytes / len(cores))
        self.period_s = period_ms / 1e3
        self.seed = int(seed)
        self.start_timeout_s, self.stop_grace_s = start_timeout_s, stop_grace_s
        self._procs: list[Any] = []
        self._counters: Any = None
        self._stop: Any = None
        self._finalizer: weakref.finalize | None = None
        self.state = "new"

    # ------------------------------------------------------------------------------------ lifecycle
    def start(self) -> "Antagonist":
        """Start one process per core; return once all have allocated their buffers."""
        if self.state != "new":
            raise AntagonistError(f"antagonist is {self.state}; an antagonist starts once")
        ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no torch, no inherited threads
        self._counters = ctx.RawArray("d", _SLOTS * len(self.cores))
        self._stop = ctx.RawArray("i", 1)
        self.state = "starting"
        self._finalizer = weakref.finalize(self, _reap, self._procs, self._stop, self.stop_grace_s)
        with _LIVE_LOCK:
            _LIVE.add(self)
        try:
            for slot, core in enumerate(self.cores):
                p = ctx.Process(target=_antagonist_main, name=f"hera-antagonist-{self.kind}-{core}", daemon=True,
                                args=(self.kind, self.intensity, core, self.work_bytes, self.period_s,
                                      self.seed + slot, self._counters, slot, self._stop, os.getpid()))
                p.start()
                self._procs.append(p)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.state = "running"
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            states = [self._counters[s * _SLOTS + _STATE] for s in range(len(self.cores))]
            for core, st, p in zip(self.cores, states, self._procs):
                if st == _FAILED or (st != _READY and not p.is_alive()):
                    raise AntagonistError(f"{self.kind} antagonist on core {core} failed to start "
                                          f"(exit code {p.exitcode})")
            if all(st == _READY for st in states):
                return
            if time.monotonic() > deadline:
                raise AntagonistError(f"{self.kind} antagonist not ready after {self.start_timeout_s:.0f} s")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop every process (flag, then SIGTERM, then SIGKILL) and wait for them; idempotent."""
        if self.state == "stopped":
            return
        if self._finalizer is not None:
            self._finalizer()  # runs _reap once
        self.state = "stopped"
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def __enter__(self) -> "Antagonist":
        return self.start() if self.state == "new" else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------------- views
    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def alive(self) -> bool:
        """True while every process runs."""
        return bool(self._procs) and all(p.is_alive() for p in self._procs)

    def counters(self) -> dict[str, float]:
        """Totals since start, summed over processes: ``bytes``, ``lines``, ``active_s`` (wall seconds spent
        working), ``wall_s``, ``cpu_s`` (CPU seconds spent working: ``active_s`` less the time the process was
        not on its core)."""
        if self._counters is None:
            return {"bytes": 0.0, "lines": 0.0, "active_s": 0.0, "wall_s": 0.0, "cpu_s": 0.0}
        slots = [_read_slot(self._counters, s * _SLOTS) for s in range(len(self.cores))]
        return {"bytes": sum(x[_BYTES] for x in slots), "lines": sum(x[_LINES] for x in slots),
                "active_s": sum(x[_ACTIVE_S] for x in slots), "wall_s": sum(x[_WALL_S] for x in slots),
                "cpu_s": sum(x[_CPU_S] for x in slots)}

    def measure(self, duration_s: float) -> AntagonistSample:
        """Sleep ``duration_s`` and return the throughput the antagonist achieved meanwhile."""
        if self.state != "running":
            raise AntagonistError(f"antagonist is {self.state}; start it before measuring")
        if not self.alive():
            raise AntagonistError(f"{self.kind} antagonist process died (cores {list(self.cores)})")
        c0, t0 = self.counters(), time.perf_counter()
        time.sleep(duration_s)
        c1, t1 = self.counters(), time.perf_counter()
        win = t1 - t0
        wall = max(c1["wall_s"] - c0["wall_s"], 1e-12)
        return AntagonistSample(self.kind, self.intensity, self.cores, win,
                                (c1["bytes"] - c0["bytes"]) / win, (c1["lines"] - c0["lines"]) / win,
                                (c1["active_s"] - c0["active_s"]) / wall)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "intensity": self.intensity, "cores": list(self.cores),
                "work_bytes": self.work_bytes, "llc_bytes": self.llc_bytes, "period_ms": self.period_s * 1e3}


def self_test(kind: str, intensity: float, cores: list[int], duration_s: float = 0.5, **kw: Any) -> dict[str, Any]:
    """Start an antagonist alone, measure its own achieved throughput, stop it (dict with ``gbps``)."""
    with Antagonist(kind, intensity, cores, **kw) as ant:
        time.sleep(min(0.1, duration_s))  # settle (first touches, page faults)
        sample = ant.measure(duration_s)
        return {**ant.describe(), **sample.to_dict()}


def main_self_test(kinds: list[str], intensities: list[float], cores: list[int], duration_s: float) -> list[dict]:
    """Self-test every kind × intensity (the ``hera profile antagonist`` command)."""
    out = []
    for kind in kinds:
        for x in intensities:
            out.append(self_test(kind, x, cores, duration_s))
            print(json.dumps({k: out[-1][k] for k in ("kind", "intensity", "gbps", "lines_per_s", "duty")}))
    return out
