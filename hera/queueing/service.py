"""The measured service law of one tenant: what a worker takes to run a sub-batch, under light load and at
saturation, and the node's own delays around it.

Two *regimes* (:data:`REGIMES`) are kept apart because a sub-batch is slower when the node is loaded (the other
workers of the tenant compete for memory bandwidth and LLC; the node's and load generator's threads compete
for cores):

- ``light``: sub-batches of queries that reached an idle node (one query in flight at a time);
- ``saturated``: sub-batches run while every worker was kept busy (a closed loop with a backlog).

The simulation draws a query's sub-batches from ``saturated`` when the query arrived while the node was still
busy with earlier queries, else from ``light`` (:func:`hera.queueing.des.simulate`), and adds the *idle penalty*
to a sub-batch whose worker had idled before it: a worker that idled for τ ms runs its next sub-batch slower by
an amount that grows with τ (measured by the service profile's ``idle`` queries, :func:`hera.profile.service.
idle_penalty`; docs/DESIGN.md, "A worker that idled is slower").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from hera.errors import ConfigError

REGIMES = ("light", "saturated")


def _samples(name: str, values) -> np.ndarray:
    arr = np.asarray(values, dtype=float).ravel()
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        raise ConfigError(f"service law: no finite samples for {name}")
    if (arr < 0).any():
        raise ConfigError(f"service law: negative service time in {name}")
    return arr


@dataclass(frozen=True)
class ServiceLaw:
    """Measured service times (ms) of one tenant with ``workers`` workers.

    ``light`` / ``saturated``: sub-batch size (items) → service-time samples (ms) measured inside the worker
    (model inputs + forward). ``dispatch_ms``: samples of the delay from a query's submission to the start of
    its first sub-batch on an idle node. ``gap_ms``: the mean time a worker is idle between two back-to-back
    sub-batches (result sent, next one received). A size without samples in a regime is served by the nearest
    measured size, scaled by a linear fit of the mean service time in items (:meth:`pool`). ``idle_ms`` /
    ``idle_extra_ms``: the idle penalty, a piecewise-linear curve (increasing idle times, ms, and the extra service
    time, ms, at each; 0 before the first point, the last value after the last) of how much longer a sub-batch
    takes when its worker had been idle that long since the end of its previous one; one point (the default):
    none.
    """

    workers: int
    batch_size: int
    light: dict[int, np.ndarray]
    saturated: dict[int, np.ndarray]
    dispatch_ms: np.ndarray = field(default_factory=lambda: np.zeros(1))
    gap_ms: float = 0.0
    idle_ms: np.ndarray = field(default_factory=lambda: np.zeros(1))
    idle_extra_ms: np.ndarray = field(default_factory=lambda: np.zeros(1))

    def __post_init__(self) -> None:
        if int(self.workers) < 1:
            raise ConfigError(f"service law: workers must be >= 1, got {self.workers}")
        if int(self.batch_size) < 1:
            raise ConfigError(f"service law: batch_size must be >= 1, got {self.batch_size}")
        for regime in REGIMES:
            table = getattr(self, regime)
            if not table:
                raise ConfigError(f"service law ({self.workers} worker(s)): no {regime} samples")
            clean = {int(k): _samples(f"{regime} sub-batches of {k} items", v) for k, v in table.items()}
            object.__setattr__(self, regime, clean)
        object.__setattr__(self, "dispatch_ms", _samples("dispatch delay", self.dispatch_ms))
        if not np.isfinite(self.gap_ms) or self.gap_ms < 0:
            raise ConfigError(f"service law: gap_ms must be a number >= 0, got {self.gap_ms}")
        x = np.asarray(self.idle_ms, float).ravel()
        y = np.asarray(self.idle_extra_ms, float).ravel()
        if (x.size < 1 or x.size != y.size or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y)))
                or np.any(np.diff(x) <= 0) or np.any(x < 0) or np.any(y < 0)):
            raise ConfigError(f"service law: the idle penalty needs as many extra times (>= 0) as idle times "
                              f"(>= 0, increasing), got {x.tolist()} and {y.tolist()}")
        object.__setattr__(self, "idle_ms", x)
        object.__setattr__(self, "idle_extra_ms", y)

    # ----------------------------------------------------------------------------------------- queries
    def sizes(self, regime: str) -> list[int]:
        return sorted(getattr(self, regime))

    def _fit(self, regime: str) -> tuple[float, float]:
        """``(a, b)`` of mean service ms ≈ a + b · items over the measured sizes (b = 0 with one size)."""
        table = getattr(self, regime)
        x = np.array(sorted(table), float)
        y = np.array([table[int(k)].mean() for k in x])
        if x.size < 2:
            return float(y[0]), 0.0
        b, a = np.polyfit(x, y, 1)
        return float(a), float(max(b, 0.0))

    def pool(self, size: int, regime: str) -> np.ndarray:
        """Service-time samples (ms) for a sub-batch of ``size`` items in ``regime``."""
        if regime not in REGIMES:
            raise ConfigError(f"unknown service regime {regime!r}; known: {', '.join(REGIMES)}")
        table = getattr(self, regime)
        size = int(size)
        if size in table:
            return table[size]
        near = min(table, key=lambda k: (abs(k - size), k))
        a, b = self._fit(regime)
        lo = max(a + b * near, 1e-9)
        return table[near] * (max(a + b * size, 1e-9) / lo)

    def mean_ms(self, size: int, regime: str) -> float:
        return float(self.pool(size, regime).mean())

    def query_work_ms(self, items: np.ndarray, regime: str = "saturated") -> float:
        """Mean worker time (service + gap, ms) of a query drawn from ``items`` (sizes of a sample of queries)."""
        items = np.asarray(items, dtype=np.int64)
        full, rest = np.divmod(items, self.batch_size)
        means = {}
        total = 0.0
        for n_full, r in zip(full, rest):
            if n_full:
                if self.batch_size not in means:
                    means[self.batch_size] = self.mean_ms(self.batch_size, regime)
                total += n_full * (means[self.batch_size] + self.gap_ms)
            if r:
                if r not in means:
                    means[int(r)] = self.mean_ms(int(r), regime)
                total += means[int(r)] + self.gap_ms
        return total / max(len(items), 1)

    def capacity_qps(self, items: np.ndarray) -> float:
        """Saturation throughput of ``workers`` workers (queries/s) for queries like ``items``."""
        return self.workers * 1000.0 / max(self.query_work_ms(items, "saturated"), 1e-12)

    def with_workers(self, workers: int) -> "ServiceLaw":
        """The same service times on another number of workers (a worker count that was not profiled)."""
        return replace(self, workers=int(workers))

    def without_idle_penalty(self) -> "ServiceLaw":
        """The same law without the idle penalty (what the node model was before it; an ablation)."""
        return replace(self, idle_ms=np.zeros(1), idle_extra_ms=np.zeros(1))

    def idle_extra(self, idle_ms: np.ndarray | float) -> np.ndarray:
        """The idle penalty (ms) after ``idle_ms`` of idling (the curve of :attr:`idle_ms`, :attr:`idle_extra_ms`)."""
        if self.idle_ms.size < 2:
            return np.zeros_like(np.asarray(idle_ms, float))
        return np.interp(np.asarray(idle_ms, float), self.idle_ms, self.idle_extra_ms, left=0.0)

    def scaled(self, factor_light: float, factor_saturated: float | None = None) -> "ServiceLaw":
        """The same law with every service time multiplied (interference: a co-runner inflates them)."""
        fs = factor_light if factor_saturated is None else factor_saturated
        return replace(self, light={k: v * factor_light for k, v in self.light.items()},
                       saturated={k: v * fs for k, v in self.saturated.items()},
                       idle_extra_ms=self.idle_extra_ms * factor_light)
