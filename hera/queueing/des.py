"""Discrete-event simulation of one tenant on a node, vectorised over *lanes*.

What it simulates is exactly what the node does (docs/DESIGN.md, "Queueing model of the node"):

1. query ``i`` arrives at ``arrivals_s[i]`` (Poisson, a trace, anything) with ``items[i]`` items;
2. it reaches the dispatcher after a dispatch delay (drawn from the measured ``dispatch_ms``);
3. it is cut into sub-batches of at most ``batch_size`` items, appended in order to one FIFO queue;
4. ``workers`` workers take sub-batches first come, first served: the next sub-batch goes to the worker that
   is free first, and starts at ``max(ready, worker free)``; a worker is busy for the sub-batch's service time
   plus the gap between back-to-back sub-batches (``gap_ms``);
5. a sub-batch's service time is drawn from the measured samples of its size, in the ``saturated`` regime when
   its query arrived while the node was still busy with earlier queries, else ``light``; when its worker had
   idled before it (for longer than the gap between back-to-back sub-batches), the law's idle penalty for that
   idle time is added (:meth:`hera.queueing.service.ServiceLaw.idle_extra`);
6. the query is done when its last sub-batch ends; latency = end − arrival.

A lane is one independent copy of the node (one rate, one bootstrap replicate of the service samples, one
arrival seed). Lanes share the query sizes and the random numbers of a replicate (common random numbers), which
keeps latency-vs-rate curves smooth. The event loop (:func:`_lanes`, one pass over the sub-batches per lane) is
compiled with Numba (cached on disk after a process's first call): the simulation runs inside every measured
trial as its control variate and at every model solve, and a loop in the interpreter, even one vectorised over
lanes, cost about a tenth of each measurement stage's time (``hera bench des`` prints what it costs now).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from hera.errors import ConfigError
from hera.queueing.service import ServiceLaw


@dataclass(frozen=True)
class SubBatchPlan:
    """The sub-batches of a query sequence in dispatch order."""

    query: np.ndarray  # int64[M]: the query each sub-batch belongs to
    size: np.ndarray   # int64[M]: items in the sub-batch
    first: np.ndarray  # bool[M]: first sub-batch of its query
    last: np.ndarray   # bool[M]: last sub-batch of its query

    @classmethod
    def of(cls, items: np.ndarray, batch_size: int) -> "SubBatchPlan":
        items = np.asarray(items, dtype=np.int64)
        if items.ndim != 1 or items.size == 0 or (items < 1).any():
            raise ConfigError("queue model: query sizes must be a non-empty 1-D array of positive item counts")
        n_sub = -(-items // int(batch_size))
        query = np.repeat(np.arange(items.size), n_sub)
        starts = np.concatenate([[0], np.cumsum(n_sub)[:-1]])
        index = np.arange(query.size) - np.repeat(starts, n_sub)
        size = np.minimum(items[query] - index * int(batch_size), int(batch_size))
        first = index == 0
        last = index == n_sub[query] - 1
        return cls(query, size, first, last)


class Pools:
    """Per-lane service-time pools: for each distinct sub-batch size and regime, a ``[replicates, n]`` array
    (row r = bootstrap replicate r, or the measured samples themselves when not bootstrapped)."""

    def __init__(self, law: ServiceLaw, sizes: np.ndarray, replicates: int, rng: np.random.Generator | None,
                 bootstrap: bool):
        self.sizes = sorted({int(s) for s in np.asarray(sizes).ravel()})
        self.code = {s: i for i, s in enumerate(self.sizes)}
        self.light, self.saturated = [], []
        for s in self.sizes:
            for regime, out in (("light", self.light), ("saturated", self.saturated)):
                base = law.pool(s, regime)
                if bootstrap:
                    idx = rng.integers(0, base.size, size=(replicates, base.size))
                    out.append(base[idx])
                else:
                    out.append(np.broadcast_to(base, (replicates, base.size)))
        base = law.dispatch_ms
        if bootstrap:
            self.dispatch = base[rng.integers(0, base.size, size=(replicates, base.size))]
        else:
            self.dispatch = np.broadcast_to(base, (replicates, base.size))

    @functools.cached_property
    def flat(self) -> tuple[np.ndarray, ...]:
        """The pools as the compiled loop reads them: per regime a ``[replicates, Σ n]`` array with every size's
        samples side by side, the offset of each size's block and its length (light, then saturated)."""
        out: list[np.ndarray] = []
        for pools in (self.light, self.saturated):
            n = np.array([p.shape[1] for p in pools], np.int64)
            out += [np.ascontiguousarray(np.concatenate([np.asarray(p, float) for p in pools], axis=1)),
                    np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64), n]
        return tuple(out)


def simulate(law: ServiceLaw, arrivals_s: np.ndarray, items: np.ndarray, *, replicate: np.ndarray | None = None,
             pools: Pools | None = None, rng: np.random.Generator | None = None,
             spans: bool = False, compiled: bool = True) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Latency (ms) of every query in every lane.

    ``arrivals_s``: ``float[N]`` (one lane) or ``float[N, L]`` arrival times in seconds (increasing along N);
    ``items``: ``int[N]`` items per query (shared by all lanes); ``replicate``: ``int[L]``, the row of ``pools``
    each lane draws from (default: all 0); ``pools``: from :class:`Pools` (default: the law's own samples).
    Returns ``float[N, L]`` (``float[N]`` for a 1-D ``arrivals_s``); with ``spans`` also each query's *span*
    (ms, same shape): from the start of its first sub-batch to the end of its last — what the node reports as
    a query's ``t_end − t_start``, so a measured trial's spans can be set against the model's for the very same
    arrivals and sizes (:meth:`hera.queueing.qps.TailModel.realised`). ``compiled=False`` runs the same event
    loop in the interpreter (a check of the compiled one; 10-40 times slower).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    arr = np.asarray(arrivals_s, dtype=float)
    one = arr.ndim == 1
    if one:
        arr = arr[:, None]
    n, lanes = arr.shape
    items = np.asarray(items, dtype=np.int64)
    if items.shape != (n,):
        raise ConfigError(f"queue model: {items.size} query sizes for {n} arrivals")
    plan = SubBatchPlan.of(items, law.batch_size)
    if pools is None:
        pools = Pools(law, plan.size, 1, None, bootstrap=False)
    rep = np.zeros(lanes, np.int64) if replicate is None else np.asarray(replicate, np.int64)
    if rep.shape != (lanes,):
        raise ConfigError("queue model: one replicate index per lane is needed")
    n_rep = int(rep.max()) + 1
    # random numbers are drawn per replicate, not per lane: lanes of one replicate (different rates) see the
    # same dispatch delays and service draws at the same sub-batch (common random numbers). Dispatch delays and
    # service draws come from two streams of their own, so the draw at a query or sub-batch does not depend on how
    # many queries the call simulates: two calls with the same seed (a grid and its refinement) share them too.
    d_rng, u_rng = rng.spawn(2)
    nd = pools.dispatch.shape[1]
    d_idx = (d_rng.random((n, n_rep)) * nd).astype(np.int64)[:, rep]
    ready = arr + pools.dispatch[rep[None, :], d_idx] / 1e3
    u = u_rng.random((plan.query.size, n_rep))
    size_code = np.array([pools.code[int(s)] for s in plan.size], np.int64)
    end = np.empty((n, lanes))
    first_start = np.empty((n, lanes) if spans else (1, 1))
    loop = _kernel() if compiled else _lanes
    loop(np.ascontiguousarray(arr), ready, np.ascontiguousarray(rep), plan.query, plan.first, plan.last, size_code, u,
         *pools.flat, int(law.workers), float(law.gap_ms) / 1e3, np.ascontiguousarray(law.idle_ms / 1e3),
         np.ascontiguousarray(law.idle_extra_ms / 1e3), bool(spans), end, first_start)
    lat_ms = (end - arr) * 1e3
    if not spans:
        return lat_ms[:, 0] if one else lat_ms
    span_ms = (end - first_start) * 1e3
    return (lat_ms[:, 0], span_ms[:, 0]) if one else (lat_ms, span_ms)


def _lanes(arr, ready, rep, query, first, last, size_code, u, light, light_off, light_n, sat, sat_off, sat_n,
           workers, gap_s, idle_x, idle_y, spans, end, first_start):
    """The event loop of :func:`simulate` for every lane (steps 3-6 of the module doc); writes ``end`` (s) and,
    with ``spans``, ``first_start`` (s) of each query. ``u[j, r]`` is the uniform that picks sub-batch j's
    service sample in replicate r; a worker's ``free`` time starts at 0 and the first free worker (lowest
    index on ties) takes the next sub-batch. ``idle_x`` / ``idle_y`` (s): the idle penalty's curve (one point:
    none), read at the time since the end of the worker's previous sub-batch."""
    lanes = arr.shape[1]
    m = query.size
    n_idle = idle_x.size
    free = np.zeros(workers)
    for lane in range(lanes):
        r = rep[lane]
        free[:] = 0.0
        q_end = 0.0
        loaded = False
        for j in range(m):
            q = query[j]
            if first[j]:
                busy = free[0]
                for k in range(1, workers):
                    busy = max(busy, free[k])
                loaded = busy > arr[q, lane]
            code = size_code[j]
            if loaded:
                s = sat[r, sat_off[code] + np.int64(u[j, r] * sat_n[code])] / 1e3
            else:
                s = light[r, light_off[code] + np.int64(u[j, r] * light_n[code])] / 1e3
            k_free, t_free = 0, free[0]
            for k in range(1, workers):
                if free[k] < t_free:
                    k_free, t_free = k, free[k]
            start = max(ready[q, lane], t_free)
            if n_idle > 1:
                idle = start - t_free + gap_s  # since the end of this worker's previous sub-batch
                if idle >= idle_x[n_idle - 1]:
                    s += idle_y[n_idle - 1]
                elif idle > idle_x[0]:
                    i = 1
                    while idle_x[i] < idle:
                        i += 1
                    w = (idle - idle_x[i - 1]) / (idle_x[i] - idle_x[i - 1])
                    s += idle_y[i - 1] + (idle_y[i] - idle_y[i - 1]) * w
            fin = start + s
            free[k_free] = fin + gap_s
            q_end = fin if first[j] else max(q_end, fin)
            if spans and first[j]:
                first_start[q, lane] = start
            if last[j]:
                end[q, lane] = q_end


@functools.cache
def _kernel():
    """:func:`_lanes` compiled by Numba (imported here, so that importing this module stays cheap)."""
    import numba

    return numba.njit(cache=True)(_lanes)


def poisson_unit_arrivals(n: int, lanes: int, rng: np.random.Generator) -> np.ndarray:
    """``float[n, lanes]`` arrival times of unit-rate Poisson processes (divide by a rate to get seconds)."""
    return np.cumsum(rng.exponential(1.0, size=(n, lanes)), axis=0)
