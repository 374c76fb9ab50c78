"""The load generator in its own process: issuing and completion bookkeeping off the node's GIL.

A SUT that offers a *link* (``sut.open_link()`` → a picklable client with ``tenants``, ``issue_query(k, tag,
sample_start, n_items)``, ``done_fds()`` and ``read_done(k)``; :class:`hera.loadgen.sut.NodeSUT` over a local
node does, through ``hera.server.link``) is driven by a :class:`LoadgenProcess`: a child process, pinned to
the harness cores when given, that runs the same open-loop schedule as the in-process driver with one thread
and no lock contention. Between issues it waits in ``select`` on the completion pipes, so completions are
recorded while it waits; it spins only the last ``spin_s`` before each scheduled time. The parent (the caller
of :func:`hera.loadgen.driver.run`) only sends the plan and receives the per-query arrays, so the node's
threads in the parent have its GIL to themselves.

The child is started once per SUT and serves trial after trial; it exits when told to, or when the parent goes.
"""

from __future__ import annotations

import gc
import os
import select
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class TrialPlan:
    """One run's schedule and limits, as the in-process driver has them (see :func:`hera.loadgen.driver.run`)."""

    names: list[str]           # the run's tenants
    tenant_index: np.ndarray   # per query: index into the link's tenants
    tenant_code: np.ndarray    # per query: index into the run's tenants (for the per-tenant limits)
    sched_rel_ns: np.ndarray
    starts: np.ndarray
    sizes: np.ndarray
    measured: np.ndarray
    bound_ns: np.ndarray
    max_over: np.ndarray
    max_out: np.ndarray
    timeout_s: float
    lead_ns: int
    spin_ns: int
    disable_gc: bool


@dataclass
class TrialOutcome:
    """What the child measured: the driver's per-query state arrays, and its own CPU time."""

    t0_ns: int
    state: dict[str, Any]
    wall_s: float
    drain_s: float
    cpu_s: float


_STATE_FIELDS = ("issued_ns", "done_ns", "t_submit", "t_start", "t_end", "status", "error", "workers",
                 "late_completions", "abort_reason")


def _drain(client: Any, fds: list[int], k_of_fd: dict[int, int], state: Any, base: int, timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for completions and record every one that arrived."""
    try:
        ready, _, _ = select.select(fds, [], [], max(0.0, timeout_s))
    except InterruptedError:
        return
    now = time.monotonic_ns()
    for fd in ready:
        for tag, ok, workers, error, ts, t0, t1 in client.read_done(k_of_fd[fd]):
            i = tag - base
            if not 0 <= i < state.n:  # from an earlier trial
                state.late_completions += 1
                continue
            state.record(i, now, ok, ts, t0, t1, ",".join(map(str, workers)), error)


def run_trial(client: Any, plan: TrialPlan, trial_id: int) -> TrialOutcome:
    """Run one trial against ``client`` in this process (the child's work; also usable in-process)."""
    from hera.loadgen.runstate import RunState
    from hera.loadgen.harness import process_cpu_s

    n = int(plan.sched_rel_ns.size)
    fds = client.done_fds()
    k_of_fd = {fd: k for k, fd in enumerate(fds)}
    for k in range(len(fds)):  # completions of an earlier trial that arrived after it closed
        client.read_done(k)
    base = trial_id << 32
    cpu0 = process_cpu_s()
    t0 = time.monotonic_ns() + plan.lead_ns
    sched_abs = plan.sched_rel_ns + t0
    state = RunState(n, plan.tenant_code, sched_abs, plan.measured, int(plan.bound_ns.size), plan.bound_ns,
                   plan.max_over)
    state.n = n
    mono, spin_ns = time.monotonic_ns, plan.spin_ns
    issue = client.issue_query
    tidx, code = plan.tenant_index, plan.tenant_code
    starts, sizes, max_out = plan.starts, plan.sizes, plan.max_out
    gc_was = gc.isenabled()
    if plan.disable_gc:
        gc.disable()
    wall0 = time.monotonic()
    try:
        for i in range(n):
            k = code[i]
            if not state.may_issue(k, plan.names, max_out):
                break
            target = int(sched_abs[i])
            while True:
                rem = target - mono()
                if rem <= spin_ns:
                    break
                _drain(client, fds, k_of_fd, state, base, (rem - spin_ns) / 1e9)
            while mono() < target:
                pass
            state.mark_issued(i, k)
            try:
                issue(int(tidx[i]), base + i, int(starts[i]), int(sizes[i]))
            except OSError as exc:
                state.issue_failed(i, f"issue failed: {exc}")
            if i % 64 == 63:
                _drain(client, fds, k_of_fd, state, base, 0.0)
        state.issuing_finished = True
        last_issue = time.monotonic()
        deadline = last_issue + plan.timeout_s
        while state.n_done < state.n_issued and time.monotonic() < deadline:
            _drain(client, fds, k_of_fd, state, base, min(0.1, deadline - time.monotonic()))
        state.close(plan.timeout_s)
    finally:
        if plan.disable_gc and gc_was:
            gc.enable()
    wall_s = time.monotonic() - wall0
    return TrialOutcome(t0, {f: getattr(state, f) for f in _STATE_FIELDS}, wall_s, time.monotonic() - last_issue,
                        process_cpu_s() - cpu0)


def precise_timers() -> bool:
    """Make this process's timed waits wake on time: Linux delays them by up to the *timer slack* (50 us by
    default) to batch wake-ups; 1 us lets the issuer spin for a shorter time before each query."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(29, 1000, 0, 0, 0) == 0  # PR_SET_TIMERSLACK, in ns
    except (OSError, AttributeError):
        return False


def _child_main(conn: Any, client: Any, harness_cores: list[int] | None) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    precise_timers()
    if harness_cores:
        os.sched_setaffinity(0, harness_cores)
    conn.send(("ready", os.getpid(), sorted(os.sched_getaffinity(0))))
    trial_id = 0
    while True:
        try:
            plan = conn.recv()
        except (EOFError, OSError):
            return
        if plan is None:
            return
        trial_id += 1
        try:
            conn.send(("ok", run_trial(client, plan, trial_id)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class LoadgenProcess:
    """The parent's handle of a load-generator child process bound to one link (see module doc)."""

    mode = "process"

    def __init__(self, client: Any, harness_cores: list[int] | None = None, ctx: Any = None):
        import multiprocessing

        ctx = ctx or multiprocessing.get_context("forkserver")
        self.tenants: list[str] = list(client.tenants)
        self.harness_cores = list(harness_cores) if harness_cores else None
        self._conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_child_main, args=(child, client, self.harness_cores),
                                   name="hera-loadgen", daemon=True)
        self.process.start()
        child.close()
        if not self._conn.poll(120):
            self.close()
            raise RuntimeError("the load-generator process did not start within 120 s")
        _, self.pid, self.affinity = self._conn.recv()

    def run(self, plan: TrialPlan) -> TrialOutcome:
        """Run one trial in the child; blocks until it is over."""
        self._conn.send(plan)
        try:
            kind, payload = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the load-generator process (pid {self.pid}) died during a run") from None
        if kind != "ok":
            raise RuntimeError(f"the load-generator process failed: {payload}")
        return payload

    def close(self) -> None:
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self._conn.close()
