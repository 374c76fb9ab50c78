"""A query's life in the node: the public :class:`QueryResult` and the dispatcher's bookkeeping.

A query of ``n_items`` is split into sub-batches of at most ``batch_size`` items; each sub-batch is one
task record on the wire (:mod:`hera.server.wire`). The query completes when its last sub-batch does, or fails
at the first sub-batch that fails (a sub-batch lost with a dead worker is re-run first).
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hera.server.errors import BadRequestError


@dataclass
class QueryResult:
    """The outcome of one query. Timestamps are ``time.monotonic_ns()`` (comparable across processes).

    ``t_start_ns``: start of the first sub-batch in a worker; ``t_end_ns``: end of the last one;
    ``t_done_ns``: when the node resolved the result. ``workers``: ids of the workers that ran it.
    ``scores``: float32 ``[n_items, n_outputs]`` when asked for, else None. On failure ``ok`` is False
    and ``error`` says why (timestamps of sub-batches that never ran are 0). ``sub_batch_times``: one
    ``(items, worker_id, t_start_ns, t_end_ns)`` per sub-batch that ran, in sub-batch order (what service-time
    profiles are made of).
    """

    query_id: int
    tenant: str
    n_items: int
    t_submit_ns: int
    t_start_ns: int
    t_end_ns: int
    workers: list[int]
    ok: bool
    error: str | None
    scores: np.ndarray | None
    sub_batches: int = 1
    t_done_ns: int = 0
    llc_partitioning: str = "unavailable"
    sub_batch_times: tuple[tuple[int, int, int, int], ...] = ()

    @property
    def latency_ms(self) -> float:
        """Submit → end of last sub-batch, in milliseconds (0 for failed queries that never ran)."""
        return max(0, self.t_end_ns - self.t_submit_ns) / 1e6

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "scores"}
        d["workers"] = list(self.workers)
        d["scores"] = None if self.scores is None else self.scores.tolist()
        return d


@dataclass
class SubBatch:
    """One unit of work for a worker: ``n`` items of query ``query``, sub-batch number ``index``.

    Library path: items ``start .. start+n-1`` of the sample library (wrapping at its end).
    Tensor path (the query has a ``payload``): rows ``start .. start+n-1`` of the query's arrays.
    ``lost_on``: the worker it was lost with, once it had to be re-run.
    """

    query: "QueryState"
    index: int
    start: int
    n: int
    lost_on: str | None = None


@dataclass
class QueryState:
    """Dispatcher-side state of a query in flight."""

    query_id: int
    tenant: str
    n_items: int
    n_subs: int
    want_scores: bool
    future: Future | None
    t_submit_ns: int = field(default_factory=time.monotonic_ns)
    remaining: int = 0
    undispatched: int = 0
    t_start_ns: int = 0
    t_end_ns: int = 0
    workers: list[int] = field(default_factory=list)
    scores: list[np.ndarray | None] | None = None
    done: bool = False
    error: str | None = None
    on_done: Any = None          # called with the result when there is no future
    payload: int | None = None   # token of the tensor-path arrays (hera.server.payload)
    link: Any = None             # the load-generator link that issued it, and its tag there
    link_tag: int = 0
    last_seq: int = 0            # seq of the last task record handed for it
    finished: bytearray = field(default_factory=bytearray)  # per sub-batch: 1 once its result is recorded
    sub_times: list[tuple[int, int, int, int] | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.remaining = self.undispatched = self.n_subs
        self.finished = bytearray(self.n_subs)
        self.sub_times = [None] * self.n_subs
        if self.want_scores:
            self.scores = [None] * self.n_subs

    def has(self, index: int) -> bool:
        """Whether sub-batch ``index`` has finished (its result is recorded)."""
        return bool(self.finished[index])

    def record(self, index: int, worker_id: int, t0: int, t1: int, scores: np.ndarray | None,
               items: int = 0) -> bool:
        """Record a finished sub-batch (of ``items`` items); True when it was the last one (a second result for it
        is ignored)."""
        if self.finished[index]:
            return False
        self.finished[index] = 1
        self.t_start_ns = t0 if not self.t_start_ns else min(self.t_start_ns, t0)
        self.t_end_ns = max(self.t_end_ns, t1)
        if 0 <= index < len(self.sub_times):
            self.sub_times[index] = (int(items), int(worker_id), int(t0), int(t1))
        if worker_id not in self.workers:
            self.workers.append(worker_id)
        if self.scores is not None:
            self.scores[index] = scores
        self.remaining -= 1
        return self.remaining == 0

    def result(self, llc_partitioning: str) -> QueryResult:
        ok = self.error is None
        scores = None
        if ok and self.scores is not None and all(s is not None for s in self.scores):
            scores = np.concatenate(self.scores, axis=0) if len(self.scores) > 1 else self.scores[0]
        return QueryResult(self.query_id, self.tenant, self.n_items, self.t_submit_ns, self.t_start_ns,
                           self.t_end_ns, list(self.workers), ok, self.error, scores, self.n_subs,
                           time.monotonic_ns(), llc_partitioning,
                           tuple(t for t in self.sub_times if t is not None))


def split(query: QueryState, start: int, batch_size: int, library_items: int | None,
          arrays: tuple[np.ndarray, np.ndarray] | None = None) -> list[SubBatch]:
    """Cut a query into sub-batches of at most ``batch_size`` items (sample indices wrap at the library end;
    with ``arrays``, sub-batch starts are row offsets into them)."""
    subs = []
    for k, off in enumerate(range(0, query.n_items, batch_size)):
        n = min(batch_size, query.n_items - off)
        if arrays is not None:
            subs.append(SubBatch(query, k, off, n))
        else:
            s = start + off
            subs.append(SubBatch(query, k, s % library_items if library_items else s, n))
    return subs


def check_arrays(tenant: str, info: dict[str, Any], dense: Any, ids: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check ``dense[n, dense_in]`` / ``ids[n, L]`` against a runner's ``info`` (shapes, dtypes, id ranges);
    return contiguous float32 / int64 arrays or raise :class:`BadRequestError`."""
    try:
        dense = np.ascontiguousarray(dense, dtype=np.float32)
        ids = np.ascontiguousarray(ids)
    except (TypeError, ValueError) as exc:
        raise BadRequestError(f"tenant {tenant!r}: inputs are not numeric arrays: {exc}") from None
    n = dense.shape[0] if dense.ndim == 2 else -1
    want_d, want_i = info.get("dense_in"), info.get("n_ids")
    if dense.ndim != 2 or dense.shape[1] != want_d:
        raise BadRequestError(f"tenant {tenant!r}: dense input must have shape [n, {want_d}], "
                              f"not {list(dense.shape)}")
    if ids.ndim != 2 or ids.shape != (n, want_i):
        raise BadRequestError(f"tenant {tenant!r}: ids must have shape [{n}, {want_i}], not {list(ids.shape)}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise BadRequestError(f"tenant {tenant!r}: ids must be integers, not {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    limits = np.asarray(info.get("id_limits", []), dtype=np.int64)
    bad = ids < 0
    if limits.size == want_i:
        bad |= ids >= limits
    if bad.any():
        col = int(np.argwhere(bad)[0][1])
        upper = f"0..{limits[col] - 1}" if limits.size == want_i else ">= 0"
        raise BadRequestError(f"tenant {tenant!r}: id column {col} must lie in {upper}")
    return dense, ids
