"""What a worker runs: a picklable :class:`RunnerSpec` → a runner with a model and a sample library.

Kinds:

- ``zoo``: ``hera.zoo.load.load_model`` (tables memory-mapped, shared by all workers of a model) and the
  model's sample library ``hera.workload.library.SampleLibrary`` (memory-mapped; requests carry indices);
  every page of both pre-faulted at start (``RunnerSpec.prefault``);
- ``synthetic``: a tiny EmbeddingBag + MLP model with a random in-memory library (tests, overhead
  measurements). Options: ``dense_in`` (16), ``n_ids`` (4), ``rows`` (1000), ``dim`` (8), ``hidden`` (32),
  ``library_items`` (4096), ``delay_ms`` (0, sleep per sub-batch), ``fail_sample`` (raise when a sub-batch
  covers this sample index), ``null`` (False: return zeros without computing).

Every runner exposes :meth:`info` (library size and input shapes, sent to the node when the worker is ready),
:meth:`run_samples` and :meth:`run_arrays`, both returning float32 scores ``[n, n_outputs]``.
This module imports torch only inside the runners, so the node process stays torch-free.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RunnerSpec:
    """Everything a worker needs to build its runner (sent once, pickled, at worker start)."""

    kind: str
    model: str
    scale: str = "ci"
    quantized: bool = False
    models_root: str | None = None
    library_dir: str | None = None
    batch_size: int = 64
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    prefault: bool = True


def _wrap_rows(arr: np.ndarray, start: int, n: int) -> np.ndarray:
    """Rows ``start .. start+n-1`` of ``arr``, wrapping at its end (a view when no wrap is needed)."""
    total = arr.shape[0]
    start %= total
    if start + n <= total:
        return arr[start:start + n]
    return np.take(arr, np.arange(start, start + n) % total, axis=0)


class SyntheticRunner:
    """A tiny recommendation-like model: ``EmbeddingBag(sum) ⊕ dense → MLP → 1 score``.

    Input shapes: dense ``[n, dense_in]`` float32, ids ``[n, n_ids]`` int64; output ``[n, 1]``.
    """

    def __init__(self, spec: RunnerSpec):
        import torch
        from torch import nn

        o = dict(spec.options)
        self.dense_in = int(o.pop("dense_in", 16))
        self.n_ids = int(o.pop("n_ids", 4))
        self.rows = int(o.pop("rows", 1000))
        dim, hidden = int(o.pop("dim", 8)), int(o.pop("hidden", 32))
        n_items = int(o.pop("library_items", 4096))
        self.delay_s = float(o.pop("delay_ms", 0)) / 1e3
        self.fail_sample = o.pop("fail_sample", None)
        self.null = bool(o.pop("null", False))
        if o:
            raise ValueError(f"unknown synthetic runner option {sorted(o)[0]!r}")
        rng = np.random.default_rng(spec.seed)
        self.dense = rng.standard_normal((n_items, self.dense_in), dtype=np.float32)
        self.ids = rng.integers(0, self.rows, size=(n_items, self.n_ids), dtype=np.int64)
        torch.manual_seed(spec.seed)
        self.emb = nn.EmbeddingBag(self.rows, dim, mode="sum")
        self.mlp = nn.Sequential(nn.Linear(self.dense_in + dim, hidden), nn.ReLU(), nn.Linear(hidden, 1)).eval()
        self._torch = torch

    def info(self) -> dict[str, Any]:
        return {"library_items": int(self.dense.shape[0]), "dense_in": self.dense_in, "n_ids": self.n_ids,
                "n_outputs": 1, "id_limits": [self.rows] * self.n_ids,
                "tables": [{"name": "t0", "rows": self.rows, "lookups": self.n_ids}]}

    def run_samples(self, start: int, n: int) -> np.ndarray:
        if self.fail_sample is not None:
            covered = (np.arange(start, start + n) % self.dense.shape[0])
            if int(self.fail_sample) in covered:
                raise ValueError(f"synthetic model failure on sample {self.fail_sample}")
        return self.run_arrays(_wrap_rows(self.dense, start, n), _wrap_rows(self.ids, start, n))

    def run_arrays(self, dense: np.ndarray, ids: np.ndarray) -> np.ndarray:
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.null:
            return np.zeros((dense.shape[0], 1), dtype=np.float32)
        torch = self._torch
        with torch.inference_mode():
            pooled = self.emb(torch.from_numpy(np.ascontiguousarray(ids)))
            x = torch.cat([torch.from_numpy(np.ascontiguousarray(dense)), pooled], dim=1)
            return self.mlp(x).numpy()


class ZooRunner:
    """A built zoo model (memory-mapped tables) with its memory-mapped sample library."""

    def __init__(self, spec: RunnerSpec):
        import torch
        from hera.workload.library import SampleLibrary
        from hera.zoo.allocator import steady_heap
        from hera.zoo.inputs import make_inputs
        from hera.zoo.load import built_spec, load_model, prefault

        # before the model allocates anything: large temporaries from a heap that stays mapped (two-speed
        # workers otherwise; hera.zoo.allocator)
        self.allocator = steady_heap()
        self._torch = torch
        self._make_inputs = make_inputs
        self.model = load_model(spec.model, spec.scale, quantized=spec.quantized, root=spec.models_root)
        self.spec = built_spec(spec.model, spec.scale, quantized=spec.quantized, root=spec.models_root)
        self.library = SampleLibrary.open(spec.library_dir)
        # every table page mapped at start (from this worker's pinned core: first touch is NUMA-local), so
        # the first trials after a reboot or a cache drop do not read cold pages
        self.prefaulted_bytes = (prefault(self.model) + self.library.prefault()) if spec.prefault else 0

    def info(self) -> dict[str, Any]:
        limits = [int(t.rows) for t in self.spec.tables for _ in range(int(t.lookups))]
        return {"library_items": int(self.library.n_items), "dense_in": int(self.spec.dense_in),
                "n_ids": len(limits), "n_outputs": int(self.spec.n_outputs), "id_limits": limits,
                "tables": [{"name": t.name, "rows": int(t.rows), "lookups": int(t.lookups)}
                           for t in self.spec.tables],
                "prefaulted_bytes": int(self.prefaulted_bytes), "allocator": self.allocator}

    def run_samples(self, start: int, n: int) -> np.ndarray:
        total = int(self.library.n_items)
        start %= total
        if start + n <= total:
            dense, ids = self.library.slice(start, n)
        else:
            dense = _wrap_rows(self.library.dense, start, n)
            ids = _wrap_rows(self.library.ids, start, n)
        return self.run_arrays(dense, ids)

    def run_arrays(self, dense: np.ndarray, ids: np.ndarray) -> np.ndarray:
        with self._torch.inference_mode():
            dense_t, kjt = self._make_inputs(self.spec, np.asarray(dense), np.asarray(ids))
            out = self.model(dense_t, kjt)
        return out.detach().float().numpy().reshape(dense.shape[0], -1)


def build_runner(spec: RunnerSpec):
    """Build the runner a spec names (in the worker process), warmed up with one batch."""
    runner = {"synthetic": SyntheticRunner, "zoo": ZooRunner}[spec.kind](spec)
    items = runner.info()["library_items"]
    for n in {1, min(spec.batch_size, items)}:
        runner.run_arrays(*_warm_inputs(runner, n))
    return runner


def _warm_inputs(runner, n: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(runner, ZooRunner):
        d, i = runner.library.slice(0, n)
        return np.asarray(d), np.asarray(i)
    return runner.dense[:n], runner.ids[:n]
