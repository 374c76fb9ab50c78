"""An in-process open-loop FCFS baseline: the same query stream on the same cores with no server at all.

:class:`InProcessFCFS` keeps one pinned process per core, each with its own runner (any object with
``run_samples(start, n)``, built in the process by ``make_runner``). A run's queries are cut into sub-batches of
``batch_size`` like the node does, and the processes take the sub-batches in arrival order from one shared
counter: a process that takes sub-batch ``j`` waits until ``j``'s query arrives, runs it and stamps its start and
end (``time.monotonic_ns``). That is FCFS onto ``w`` servers, open loop, with nothing between the arrival
and the model call but a shared counter: what a server at zero overhead would do on the same cores.

It plugs into :func:`hera.loadgen.driver.run` (and so :func:`hera.loadgen.search.find_qps_star`) as a SUT that
runs whole schedules (``loadgen_process()`` returns the pool; ``run(plan)`` runs one trial): latencies come
from the same schedule, early-stopping rule and summaries as the server's trials. It does not cut
overloaded trials short.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np

from hera.loadgen.process import TrialOutcome, TrialPlan


def _worker(make_runner: Callable[[], Any], core: int, conn: Any, counter: Any, t0s: Any, t1s: Any) -> None:
    os.sched_setaffinity(0, {core})
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    runner = make_runner()
    conn.send(("ready", core))
    clock, sleep = time.monotonic_ns, time.sleep
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        avail, starts, sizes = job
        n = avail.size
        while True:
            with counter.get_lock():
                j = counter.value
                counter.value = j + 1
            if j >= n:
                break
            rem = int(avail[j]) - clock()
            if rem > 100_000:
                sleep((rem - 50_000) / 1e9)
            while clock() < avail[j]:
                pass
            a = clock()
            runner.run_samples(int(starts[j]), int(sizes[j]))
            t0s[j], t1s[j] = a, clock()
        conn.send(("done", core))


class InProcessFCFS:
    """``len(cores)`` pinned processes serving schedules FCFS at sub-batch granularity (see module doc)."""

    mode = "none (in-process baseline)"

    def __init__(self, make_runner: Callable[[], Any], cores: list[int], batch_size: int, tenant: str,
                 max_sub_batches: int = 1 << 18, start_timeout_s: float = 300.0):
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.tenants = [tenant]
        self.harness_cores = None
        self.batch_size = int(batch_size)
        self._counter = ctx.Value("q", 0)
        self._t0s = ctx.RawArray("q", max_sub_batches)
        self._t1s = ctx.RawArray("q", max_sub_batches)
        self._max = max_sub_batches
        self._conns, self._procs = [], []
        for c in cores:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(make_runner, c, child, self._counter, self._t0s, self._t1s),
                            name=f"hera-inprocess-{c}", daemon=True)
            p.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(p)
        for conn in self._conns:
            if not conn.poll(start_timeout_s):
                self.close()
                raise RuntimeError(f"in-process baseline: a process did not load its model within {start_timeout_s} s")
            conn.recv()

    # the SUT side seen by the driver
    def issue(self, tenant: str, sample_start: int, n_items: int, on_done: Any) -> None:
        raise RuntimeError("InProcessFCFS runs whole schedules (driver.run uses loadgen_process)")

    def loadgen_process(self, harness_cores: list[int] | None = None) -> "InProcessFCFS":
        return self

    def run(self, plan: TrialPlan) -> TrialOutcome:
        """Serve one schedule; every query completes (no early abort)."""
        from hera.loadgen.runstate import RunState

        b = self.batch_size
        n_q = int(plan.sched_rel_ns.size)
        n_sub = np.maximum(1, -(-plan.sizes // b)).astype(np.int64)
        q_of = np.repeat(np.arange(n_q), n_sub)
        k_of = np.arange(q_of.size) - np.repeat(np.cumsum(n_sub) - n_sub, n_sub)
        if q_of.size > self._max:
            raise RuntimeError(f"in-process baseline: {q_of.size} sub-batches exceed {self._max}")
        starts = plan.starts[q_of] + k_of * b
        sizes = np.minimum(b, plan.sizes[q_of] - k_of * b)
        t0 = time.monotonic_ns() + max(plan.lead_ns, 50_000_000)  # every process is waiting before time 0
        sched_abs = plan.sched_rel_ns + t0
        with self._counter.get_lock():
            self._counter.value = 0
        wall0 = time.monotonic()
        for conn in self._conns:
            conn.send((sched_abs[q_of], starts, sizes))
        for conn in self._conns:
            conn.recv()
        t0s = np.frombuffer(self._t0s, np.int64, q_of.size)
        t1s = np.frombuffer(self._t1s, np.int64, q_of.size)
        state = RunState(n_q, plan.tenant_code, sched_abs, plan.measured, int(plan.bound_ns.size), plan.bound_ns,
                         plan.max_over)
        first = np.cumsum(n_sub) - n_sub
        state.t_start = np.minimum.reduceat(t0s, first)
        state.t_end = np.maximum.reduceat(t1s, first)
        state.issued_ns = sched_abs.copy()
        state.t_submit = sched_abs.copy()
        state.done_ns = state.t_end.copy()
        state.status[:] = "ok"
        out = {f: getattr(state, f) for f in ("issued_ns", "done_ns", "t_submit", "t_start", "t_end", "status",
                                              "error", "workers", "late_completions", "abort_reason")}
        return TrialOutcome(t0, out, time.monotonic() - wall0, 0.0, 0.0)

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for p in self._procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join(timeout=5)
        for conn in self._conns:
            conn.close()
