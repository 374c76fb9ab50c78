"""The bookkeeping of one open-loop run (:class:`RunState`): per-query status and timestamps, in-flight counts,
the early-stopping abort, and the close-out of queries that never completed. Used by the in-process issue loop
(:func:`hera.loadgen.driver.run`) and by the load-generator process (:mod:`hera.loadgen.process`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np


class RunState:
    """Per-query bookkeeping of one run, shared by the issuing thread and the completion callbacks (or kept by
    the load-generator process alone)."""

    def __init__(self, n: int, tenant_code: np.ndarray, sched_abs: np.ndarray, measured: np.ndarray,
                 n_tenants: int, bound_ns: np.ndarray, max_over: np.ndarray):
        self.lock = threading.Lock()
        self.all_done = threading.Event()
        self.tenant_code, self.sched_abs, self.measured = tenant_code, sched_abs, measured
        self.issued_ns = np.zeros(n, np.int64)
        self.done_ns = np.zeros(n, np.int64)
        self.t_submit = np.zeros(n, np.int64)
        self.t_start = np.zeros(n, np.int64)
        self.t_end = np.zeros(n, np.int64)
        self.status = np.array(["not_issued"] * n, dtype=object)
        self.error: list[str | None] = [None] * n
        self.workers: list[str] = [""] * n
        self.outstanding = np.zeros(n_tenants, np.int64)
        self.n_over = np.zeros(n_tenants, np.int64)
        self.bound_ns, self.max_over = bound_ns, max_over
        self.n_issued = 0
        self.n_done = 0
        self.issuing_finished = False
        self.closed = False
        self.late_completions = 0
        self.abort_reason: str | None = None

    def _finish_one(self, i: int) -> None:  # lock held
        k = self.tenant_code[i]
        self.outstanding[k] -= 1
        self.n_done += 1
        if self.measured[i] and self.bound_ns[k] > 0:
            over = self.status[i] != "ok" or self.t_end[i] - self.sched_abs[i] > self.bound_ns[k]
            if over:
                self.n_over[k] += 1
                if 0 <= self.max_over[k] < self.n_over[k] and self.abort_reason is None:
                    self.abort_reason = (
                        f"early stopping: {self.n_over[k]} queries over the bound already exceed the "
                        f"{self.max_over[k]} the planned run could absorb"
                    )
        if self.issuing_finished and self.n_done >= self.n_issued:
            self.all_done.set()

    def may_issue(self, k: int, names: list[str], max_out: np.ndarray) -> bool:
        """Whether the run goes on with a query of tenant ``k`` (else ``abort_reason`` says why not)."""
        if self.abort_reason is not None:
            return False
        if self.outstanding[k] >= max_out[k]:
            with self.lock:
                self.abort_reason = f"tenant {names[k]!r}: {int(max_out[k])} queries in flight (max_outstanding)"
            return False
        return True

    def mark_issued(self, i: int, k: int) -> None:
        with self.lock:
            self.status[i] = "issued"
            self.outstanding[k] += 1
            self.n_issued += 1
        self.issued_ns[i] = time.monotonic_ns()

    def issue_failed(self, i: int, error: str) -> None:
        with self.lock:
            if self.status[i] == "issued":
                self.status[i] = "error"
                self.error[i] = error
                self.t_end[i] = self.done_ns[i] = time.monotonic_ns()
                self._finish_one(i)

    def close(self, timeout_s: float) -> None:
        """End the run: queries still in flight become ``timeout`` failures; later completions are ignored."""
        with self.lock:
            self.closed = True
            timed_out = self.status == "issued"
            self.status[timed_out] = "timeout"
            for i in np.flatnonzero(timed_out):
                self.error[i] = f"no completion within {timeout_s:g} s after the last issue"

    def on_done(self, i: int, res: Any) -> None:
        now = time.monotonic_ns()
        try:
            w = getattr(res, "workers", None)
            fields = (bool(getattr(res, "ok", True)), int(getattr(res, "t_submit_ns", 0) or 0),
                      int(getattr(res, "t_start_ns", 0) or 0), int(getattr(res, "t_end_ns", 0) or 0),
                      ",".join(str(x) for x in w) if w is not None else "",
                      None if getattr(res, "ok", True) else str(getattr(res, "error", None) or "SUT reported ok=False"))
        except Exception as exc:  # noqa: BLE001 - a malformed result is a failed query
            fields = (False, 0, 0, now, "", f"malformed result {type(res).__name__}: {exc}")
        self.record(i, now, *fields)

    def record(self, i: int, now: int, ok: bool, t_submit: int, t_start: int, t_end: int, workers: str,
               error: str | None) -> None:
        """Query ``i`` completed at ``now`` (ignored, and counted as late, after the run closed)."""
        with self.lock:
            if self.closed or self.status[i] != "issued":
                self.late_completions += 1
                return
            self.done_ns[i] = now
            self.t_submit[i], self.t_start[i] = t_submit, t_start
            self.t_end[i] = t_end if t_end > 0 else now
            self.workers[i] = workers
            self.status[i] = "ok" if ok else "error"
            if not ok:
                self.error[i] = error or "SUT reported ok=False"
            self._finish_one(i)
