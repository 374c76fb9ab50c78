"""Sample-library slices → model inputs (the zoo side of docs/DESIGN.md "Model inputs").

A slice of ``n`` items is ``dense: float32[n, dense_in]`` and ``ids: int64[n, L]`` with
``L = sum(t.lookups)``, the ids columns grouped by table in spec order. :func:`make_inputs` turns it
into ``(Tensor[n, dense_in], KeyedJaggedTensor)`` with one key per table (the table name), every item
having exactly ``t.lookups`` ids for table ``t``. It is on the serving hot path: no Python loop over
items (one strided copy for the ids, lengths/offsets cached per ``(spec, n)``), and the KJT is given
its per-key lengths and offsets so TorchRec does not recompute them.

:func:`random_inputs` draws uniform inputs in the same layout (profiling, tests).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from hera.errors import HeraError
from hera.zoo.spec import ModelSpec


class InputError(HeraError):
    """Model inputs whose shapes or ids do not fit the model's spec."""


@dataclass(frozen=True)
class _Plan:
    keys: list[str]
    lookups: np.ndarray        # int64[T]
    col_starts: np.ndarray     # int64[T + 1]
    width: int
    dense_in: int
    uniform: int               # common lookups per table, or 0
    limits: np.ndarray         # int64[L]: rows of each column's table


@functools.lru_cache(maxsize=64)
def _plan_cached(key: tuple) -> _Plan:
    names, lookups, rows, dense_in = key
    lk = np.asarray(lookups, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lk)]).astype(np.int64)
    uniform = int(lk[0]) if len(set(lookups)) == 1 else 0
    limits = np.repeat(np.asarray(rows, dtype=np.int64), lk)
    return _Plan(list(names), lk, starts, int(starts[-1]), dense_in, uniform, limits)


def _plan(spec: ModelSpec) -> _Plan:
    return _plan_cached((tuple(t.name for t in spec.tables), tuple(t.lookups for t in spec.tables),
                         tuple(t.rows for t in spec.tables), spec.dense_in))


@functools.lru_cache(maxsize=256)
def _lengths(plan_key: tuple, n: int):
    """Cached KJT metadata for a batch of ``n`` items: lengths, offsets, per-key lengths/offsets."""
    import torch

    lookups = np.asarray(plan_key, dtype=np.int64)
    lengths = np.repeat(lookups, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    per_key = (lookups * n).tolist()
    offset_per_key = np.concatenate([[0], np.cumsum(lookups * n)]).tolist()
    return torch.from_numpy(lengths), torch.from_numpy(offsets), per_key, offset_per_key


def table_major_ids(spec: ModelSpec, ids: np.ndarray) -> np.ndarray:
    """Reorder ``ids [n, L]`` (item-major) into KJT value order: table by table, item by item."""
    plan = _plan(spec)
    n = ids.shape[0]
    if plan.uniform:
        t = len(plan.keys)
        blocks = ids.reshape(n, t, plan.uniform).transpose(1, 0, 2)  # [T, n, l] view
        return np.ascontiguousarray(blocks, dtype=np.int64).reshape(-1)
    out = np.empty(n * plan.width, dtype=np.int64)
    for i in range(len(plan.keys)):  # loop over tables (<= 43), one strided copy each
        a, b = int(plan.col_starts[i]), int(plan.col_starts[i + 1])
        out[a * n:b * n].reshape(n, b - a)[...] = ids[:, a:b]
    return out


def make_inputs(spec: ModelSpec, dense: np.ndarray, ids: np.ndarray, check_ids: bool = False):
    """``(dense_tensor [n, dense_in] float32, KeyedJaggedTensor)`` for a sample-library slice.

    Raises :class:`InputError` when shapes do not match the spec; with ``check_ids`` also when an id
    is negative or not below its table's rows (off by default: the serving path validates at its edge).
    """
    import torch
    from torchrec import KeyedJaggedTensor

    plan = _plan(spec)
    dense = np.asarray(dense)
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.shape[1] != plan.width:
        raise InputError(f"model {spec.model_id}: ids must have shape [n, {plan.width}], "
                         f"not {list(ids.shape)}")
    n = ids.shape[0]
    if dense.ndim != 2 or dense.shape != (n, plan.dense_in):
        raise InputError(f"model {spec.model_id}: dense must have shape [{n}, {plan.dense_in}], "
                         f"not {list(dense.shape)}")
    if check_ids and n:
        bad = (ids < 0) | (ids >= plan.limits)
        if bad.any():
            item, col = map(int, np.argwhere(bad)[0])
            raise InputError(f"model {spec.model_id}: id {int(ids[item, col])} of item {item}, column {col} "
                             f"is outside table rows 0..{int(plan.limits[col]) - 1}")
    if dense.dtype != np.float32 or not dense.flags.c_contiguous or not dense.flags.writeable:
        dense = np.array(dense, dtype=np.float32, order="C")  # torch wants writable memory
    values = table_major_ids(spec, ids)
    lengths, offsets, per_key, offset_per_key = _lengths(tuple(plan.lookups.tolist()), n)
    kjt = KeyedJaggedTensor(
        keys=plan.keys, values=torch.from_numpy(values), lengths=lengths, offsets=offsets, stride=n,
        length_per_key=per_key, offset_per_key=offset_per_key,
    )
    return torch.from_numpy(dense), kjt


def random_inputs(spec: ModelSpec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform random inputs in the sample-library layout: ``dense`` U[0, 1), ``ids`` uniform per table."""
    plan = _plan(spec)
    dense = rng.random((n, spec.dense_in), dtype=np.float32)
    ids = np.floor(rng.random((n, plan.width)) * plan.limits).astype(np.int64)
    return dense, ids
