"""Background load on a tenant while something else is measured, and a reporter's rate samples.

- :class:`BackgroundLoad`: queries of the study's mix from a background thread, either a closed loop with a
  fixed number in flight (saturation) or an open Poisson stream at a given rate (a load fraction);
- :class:`Reporter`: an antagonist (:mod:`hera.profile.antagonist`) at a fixed low intensity on a core of its
  own, whose own throughput per CPU second it got, sampled every ``sample_s``, says how much a co-runner slows
  it (per CPU second, not per wall second: time slices taken by unrelated processes on its core are not memory
  interference, and a co-runner under test never runs on the reporter's core).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from hera.errors import HeraError
from hera.profile.antagonist import Antagonist
from hera.profile.interference.settings import InterferenceError

DRAIN_TIMEOUT_S = 60.0
#: A reporter runs this long before its first window (its first ~0.1 s ran at a few % of its rate here).
SETTLE_S = 0.3


class BackgroundLoad:
    """Load on ``tenant`` of ``node`` from a background thread, query sizes cycled from ``sizes``.

    ``rate_qps is None``: closed loop keeping ``depth`` queries in flight (every worker busy); else an open
    Poisson stream at ``rate_qps`` (exponential gaps from ``seed``). On exit it stops issuing and waits for
    the queries in flight, so the next measurement starts on an idle node; a failed query raises then."""

    def __init__(self, node: Any, tenant: str, sizes: np.ndarray, *, depth: int = 1,
                 rate_qps: float | None = None, seed: int = 0):
        if rate_qps is not None and not rate_qps > 0:
            raise InterferenceError(f"tenant {tenant!r}: an open-loop load needs a rate > 0 queries/s, "
                                    f"not {rate_qps}")
        self.node, self.tenant, self.sizes = node, tenant, np.asarray(sizes, np.int64)
        self.depth, self.rate_qps = max(1, int(depth)), rate_qps
        self._rng = np.random.default_rng(seed)
        self._lib = node.library_size(tenant)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._slots = threading.Semaphore(self.depth)
        self.in_flight = 0
        self.ends_ns: list[int] = []
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._loop, name=f"load-{tenant}", daemon=True)

    def _done(self, res: Any) -> None:
        with self._lock:
            self.in_flight -= 1
            if res.ok:
                self.ends_ns.append(int(res.t_end_ns))
            elif len(self.errors) < 3:
                self.errors.append(str(res.error))
        if self.rate_qps is None:
            self._slots.release()

    def _issue(self, k: int) -> None:
        n = int(self.sizes[k % len(self.sizes)])
        start = int(self._rng.integers(0, max(1, self._lib - n + 1)))
        with self._lock:
            self.in_flight += 1
        try:
            self.node.submit(self.tenant, start, n, on_done=self._done)
        except HeraError as exc:
            with self._lock:
                self.in_flight -= 1
                self.errors.append(str(exc))
            self._stop.set()

    def _loop(self) -> None:
        k = 0
        t_next = time.monotonic()
        while not self._stop.is_set():
            if self.rate_qps is None:
                if not self._slots.acquire(timeout=0.05):
                    continue
                if self._stop.is_set():
                    return
            else:
                t_next += float(self._rng.exponential(1.0 / self.rate_qps))
                if self._stop.wait(max(0.0, t_next - time.monotonic())):
                    return
            self._issue(k)
            k += 1

    def completed_qps(self, t0_ns: int, t1_ns: int) -> float:
        """Queries completed per second between two ``time.monotonic_ns()`` stamps."""
        with self._lock:
            n = sum(1 for t in self.ends_ns if t0_ns <= t <= t1_ns)
        return n / max((t1_ns - t0_ns) / 1e9, 1e-9)

    def __enter__(self) -> "BackgroundLoad":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5.0)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            with self._lock:
                if self.in_flight <= 0:
                    break
            time.sleep(0.005)
        if self.errors and exc[0] is None:
            raise InterferenceError(f"tenant {self.tenant!r}: queries failed under background load: "
                                    f"{self.errors[0]}")


class Reporter:
    """An antagonist of ``kind`` at ``intensity`` on ``cores`` used as a reporter: :meth:`window` samples its
    own throughput per CPU second (bytes for ``bandwidth``, cache lines for ``cache``)."""

    def __init__(self, kind: str, intensity: float, cores: tuple[int, ...] | list[int], seed: int = 0):
        self.kind, self.intensity, self.cores = kind, float(intensity), tuple(cores)
        self._ant = Antagonist(kind, intensity, list(cores), seed=seed)

    @property
    def unit(self) -> str:
        return "bytes/cpu s" if self.kind == "bandwidth" else "lines/cpu s"

    def _reading(self) -> tuple[float, float]:
        c = self._ant.counters()
        return (c["bytes"] if self.kind == "bandwidth" else c["lines"]), c["cpu_s"]

    def window(self, duration_s: float, sample_s: float) -> np.ndarray:
        """Rate samples over ``duration_s`` seconds, one per ``sample_s`` (at least one)."""
        if not self._ant.alive():
            raise InterferenceError(f"the {self.kind} reporter on core(s) {list(self.cores)} died")
        n = max(1, int(round(duration_s / sample_s)))
        step = duration_s / n
        rates = []
        v0, a0 = self._reading()
        t0 = time.perf_counter()
        for i in range(1, n + 1):
            time.sleep(max(0.0, t0 + i * step - time.perf_counter()))
            v1, a1 = self._reading()
            rates.append((v1 - v0) / (a1 - a0) if a1 > a0 else np.nan)
            v0, a0 = v1, a1
        return np.asarray(rates, float)

    def __enter__(self) -> "Reporter":
        self._ant.start()
        time.sleep(SETTLE_S)  # its first periods run slow (page faults, caches cold): not a measurement
        return self

    def __exit__(self, *exc: Any) -> None:
        self._ant.stop()
