"""Query sample libraries: pre-generated model inputs that workers memory-map, as MLPerf LoadGen's QSL.

A library of ``N`` items for one model lives in ``datasets/<scale>/<model_id>/``:

- ``dense.npy``  float32 ``[N, dense_in]`` (standard normal; ``dense_in`` may be 0)
- ``ids.npy``    int64 ``[N, L]``, ``L = sum(table.lookups)``, columns grouped by table in spec order,
  ids of table ``t`` drawn from ``[0, t.rows)`` by the configured sparse-id generator, one sampler per
  table so that a table's row popularity is fixed across the library
- ``library.json`` model id, scale, sizes, tables, sparse config, seed, creation info

Queries carry ``(sample_start, n_items)``; :meth:`SampleLibrary.slice` returns views of the memory maps
(no copy), so N workers share one copy in the page cache. A query of up to 1024 items slices a contiguous
window at a random start; libraries are larger than the largest query.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from hera.errors import HeraError, NotBuiltError
from hera.workload.sparse import SparseConfig, make_generator

#: Items per library by scale (the study config's ``library.items`` overrides it).
DEFAULT_ITEMS = {"ci": 4096, "default": 65536, "paper": 262144}
#: Rows written per chunk (bounds memory while writing large libraries).
CHUNK_ITEMS = 8192
FORMAT_VERSION = 1


def default_items(scale: str) -> int:
    """Default library size of a scale."""
    return DEFAULT_ITEMS.get(scale, DEFAULT_ITEMS["default"])


def _table_layout(spec: Any) -> list[tuple[str, int, int]]:
    return [(str(t.name), int(t.rows), int(t.lookups)) for t in spec.tables]


def build_library(spec: Any, n_items: int, sparse_cfg: SparseConfig | dict | str, seed: int,
                  out_dir: str | Path) -> Path:
    """Write a sample library for ``spec`` (anything with ``model_id``, ``dense_in`` and ``tables`` whose
    entries have ``name``, ``rows``, ``lookups``) into ``out_dir``; return the path of ``library.json``.

    Arrays are written chunk by chunk into ``.npy`` memory maps, then ``library.json`` last, so an
    interrupted build never looks complete.
    """
    if int(n_items) < 1:
        raise HeraError(f"sample library needs at least one item, got {n_items}")
    cfg = SparseConfig.from_dict(sparse_cfg)
    gen = make_generator(cfg.kind, **({"alpha": cfg.alpha} if cfg.kind == "zipf" else {}))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "library.json"
    meta_path.unlink(missing_ok=True)
    layout = _table_layout(spec)
    n_cols = sum(lk for _, _, lk in layout)
    dense_in = int(spec.dense_in)
    t0 = time.perf_counter()
    ss = np.random.SeedSequence([int(seed), 0x51B])
    dense_seq, *table_seqs = ss.spawn(1 + len(layout))
    dense_rng = np.random.default_rng(dense_seq)
    table_rngs = [np.random.default_rng(s) for s in table_seqs]
    samplers = [gen.sampler(rows, rng) for (_, rows, _), rng in zip(layout, table_rngs)]
    dense = np.lib.format.open_memmap(out / "dense.npy", mode="w+", dtype=np.float32, shape=(n_items, dense_in))
    ids = np.lib.format.open_memmap(out / "ids.npy", mode="w+", dtype=np.int64, shape=(n_items, n_cols))
    for lo in range(0, n_items, CHUNK_ITEMS):
        hi = min(n_items, lo + CHUNK_ITEMS)
        if dense_in:
            dense[lo:hi] = dense_rng.standard_normal((hi - lo, dense_in), dtype=np.float32)
        col = 0
        for (_, _, lookups), sampler, rng in zip(layout, samplers, table_rngs):
            ids[lo:hi, col:col + lookups] = sampler.draw((hi - lo) * lookups, rng).reshape(hi - lo, lookups)
            col += lookups
    dense.flush()
    ids.flush()
    del dense, ids
    meta = {
        "format_version": FORMAT_VERSION,
        "model_id": str(spec.model_id),
        "scale": getattr(spec, "scale", None),
        "n_items": int(n_items),
        "dense_in": dense_in,
        "lookups_per_item": n_cols,
        "tables": [{"name": n, "rows": r, "lookups": lk} for n, r, lk in layout],
        "sparse": {"kind": cfg.kind, **({"alpha": cfg.alpha} if cfg.kind == "zipf" else {})},
        "seed": int(seed),
        "build_seconds": round(time.perf_counter() - t0, 3),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return meta_path


class SampleLibrary:
    """A built library, memory-mapped read-only. ``dense`` float32 ``[N, dense_in]``, ``ids`` int64 ``[N, L]``."""

    def __init__(self, directory: Path, meta: dict[str, Any], dense: np.ndarray, ids: np.ndarray):
        self.directory = directory
        self.meta = meta
        self.dense = dense
        self.ids = ids

    @classmethod
    def open(cls, directory: str | Path) -> "SampleLibrary":
        """Map a library; a missing or inconsistent one raises a one-line error naming the problem."""
        d = Path(directory)
        meta_path = d / "library.json"
        if not meta_path.is_file():
            raise NotBuiltError(f"no sample library at {d} (library.json missing): build it with "
                                "`hera workload library`")
        try:
            meta = json.loads(meta_path.read_text())
            dense = np.load(d / "dense.npy", mmap_mode="r")
            ids = np.load(d / "ids.npy", mmap_mode="r")
        except (OSError, ValueError, json.JSONDecodeError) as exc:
            raise HeraError(f"sample library at {d} is unreadable: {str(exc).splitlines()[0]}") from None
        n = int(meta.get("n_items", -1))
        if dense.shape != (n, int(meta.get("dense_in", -1))) or ids.shape != (n, int(meta.get("lookups_per_item", -1))):
            raise HeraError(f"sample library at {d} is inconsistent: dense {dense.shape}, ids {ids.shape}, "
                            f"library.json says {n} items")
        if dense.dtype != np.float32 or ids.dtype != np.int64:
            raise HeraError(f"sample library at {d} has dtypes {dense.dtype}/{ids.dtype}, expected float32/int64")
        return cls(d, meta, dense, ids)

    @property
    def n_items(self) -> int:
        return int(self.meta["n_items"])

    def slice(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items ``start .. start+n-1`` as views ``(dense[n, dense_in], ids[n, L])`` (no copy)."""
        if not (0 <= int(start) and 1 <= int(n) and int(start) + int(n) <= self.n_items):
            raise HeraError(f"sample library {self.meta.get('model_id')}: slice [{start}, {start}+{n}) is outside "
                            f"0..{self.n_items}")
        return self.dense[start:start + n], self.ids[start:start + n]
