"""Query sample libraries: pre-generated model inputs that queries index into (as MLPerf LoadGen's QSL).

A library of one model is a directory (``datasets/<scale>/<model_id>/`` by default) holding

* ``dense.npy`` — ``float32[N, dense_in]`` (standard normal by default, or uniform in [0, 1); ``dense_in``
  may be 0, e.g. NCF, stored as shape ``[N, 0]``);
* ``ids.npy`` — ``int64[N, L]``, ``L = sum(t.lookups)``, columns grouped by table in spec order, ids of
  table ``t`` in ``[0, t.rows)``, drawn by the chosen sparse generator (:mod:`hera.workload.sparse`) with
  one sampler per table, so a table's row popularity is the same across the whole library;
* ``library.json`` — model_id, scale, n_items, dense_in, tables (name, rows, lookups, first column), sparse
  config, seed, and creation info; written last, so a library without it is not built.

A query of ``n`` items is a *contiguous window* ``[start, start + n)`` at a random start
(:meth:`SampleLibrary.random_start`); the library must be larger than the largest query (``max_items``
≤ 1024), so default sizes are 4096 items at ``ci``, 65 536 at ``default`` (Meta's batch size, so the whole
library is one batch of the reuse statistics the production ids are calibrated on) and 262 144 at ``paper``
(as ``workflow/config/paper.yaml``; the study config's ``library.items`` decides). Arrays are written chunk by chunk through
``np.lib.format.open_memmap`` (memory stays small) and opened read-only with ``np.load(mmap_mode='r')``,
so all workers of a model share one copy through the page cache; :meth:`SampleLibrary.slice` returns
views (no copy).

Randomness: ``np.random.SeedSequence(seed).spawn(1 + n_tables)`` — stream 0 draws the dense features,
stream ``1 + t`` table ``t``'s ids (so each table is independent of the others).

The ``spec`` argument is duck-typed: anything with ``.model_id``, ``.dense_in`` and ``.tables`` whose items
have ``.name``, ``.rows`` and ``.lookups`` (``hera.zoo.spec.ModelSpec`` is one; this module does not import
the zoo).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from hera.errors import ConfigError, HeraError, NotBuiltError
from hera.paths import datasets_dir
from hera.workload.sparse import SparseConfig

FORMAT = "hera-sample-library"
FORMAT_VERSION = 1
META_FILE, DENSE_FILE, IDS_FILE = "library.json", "dense.npy", "ids.npy"
#: Items per library when none is given (the study config's ``library.items`` overrides it).
DEFAULT_ITEMS = {"ci": 4096, "default": 65536, "paper": 262144}
DENSE_DISTRIBUTIONS = ("normal", "uniform")
#: Bytes of arrays generated per chunk while writing.
CHUNK_BYTES = 32 * 2**20


class SliceError(HeraError, IndexError):
    """A window ``[start, start + n)`` outside the library."""


def default_items(scale: str) -> int:
    """Default library size of a scale (ci 4096, default 65 536, paper 262 144)."""
    try:
        return DEFAULT_ITEMS[scale]
    except KeyError:
        raise ConfigError(f"unknown scale {scale!r}; known: {', '.join(DEFAULT_ITEMS)}") from None


def library_dir(scale: str, model_id: str, root: str | Path | None = None) -> Path:
    """``<root or datasets/<scale>>/<model_id>``."""
    return Path(root if root is not None else datasets_dir(scale)) / model_id


@dataclass(frozen=True)
class _Table:
    name: str
    rows: int
    lookups: int


def _spec_tables(spec: Any) -> tuple[str, int, list[_Table]]:
    """Validate a duck-typed spec: ``(model_id, dense_in, tables)``."""
    try:
        model_id, dense_in, tables = spec.model_id, spec.dense_in, list(spec.tables)
        out = [_Table(str(t.name), t.rows, t.lookups) for t in tables]
    except (AttributeError, TypeError) as exc:
        raise ConfigError(f"sample library: the model spec lacks model_id/dense_in/tables(name, rows, lookups): "
                          f"{exc}") from None
    if isinstance(dense_in, bool) or not isinstance(dense_in, (int, np.integer)) or dense_in < 0:
        raise ConfigError(f"sample library: {model_id}: dense_in must be an integer >= 0, got {dense_in!r}")
    if not out:
        raise ConfigError(f"sample library: {model_id}: the spec has no tables")
    seen = set()
    for t in out:
        for key in ("rows", "lookups"):
            v = getattr(t, key)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"sample library: {model_id}: table {t.name!r} {key} must be an integer >= 1, "
                                  f"got {v!r}")
        if t.name in seen:
            raise ConfigError(f"sample library: {model_id}: duplicate table name {t.name!r}")
        seen.add(t.name)
    return str(model_id), int(dense_in), [_Table(t.name, int(t.rows), int(t.lookups)) for t in out]


def _creation_info(build_seconds: float) -> dict[str, Any]:
    from hera.provenance import git_commit

    return {"created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": git_commit(), "numpy": np.__version__, "build_seconds": round(build_seconds, 3)}


def _table_meta(tables: list[_Table]) -> list[dict[str, Any]]:
    out, col = [], 0
    for t in tables:
        out.append({"name": t.name, "rows": t.rows, "lookups": t.lookups, "column_start": col})
        col += t.lookups
    return out


def _remove_stale(out_dir: Path) -> None:
    for name in (META_FILE, DENSE_FILE, IDS_FILE, "labels.npy"):
        p = out_dir / name
        if p.exists():
            p.unlink()


def write_library_files(out_dir: Path, meta: dict[str, Any], fill, n_items: int, dense_in: int, n_cols: int,
                        chunk_items: int) -> Path:
    """Create the two arrays with ``open_memmap``, call ``fill(start, stop, dense_chunk, ids_chunk)`` per chunk
    (views into the files), then rename into place and write ``library.json`` last."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale(out_dir)
    tmp_dense, tmp_ids = out_dir / ("tmp-" + DENSE_FILE), out_dir / ("tmp-" + IDS_FILE)
    t0 = time.perf_counter()
    dense = np.lib.format.open_memmap(tmp_dense, mode="w+", dtype=np.float32, shape=(n_items, dense_in))
    ids = np.lib.format.open_memmap(tmp_ids, mode="w+", dtype=np.int64, shape=(n_items, n_cols))
    try:
        for start in range(0, n_items, chunk_items):
            stop = min(n_items, start + chunk_items)
            fill(start, stop, dense[start:stop], ids[start:stop])
        dense.flush()
        ids.flush()
    except BaseException:
        del dense, ids
        tmp_dense.unlink(missing_ok=True)
        tmp_ids.unlink(missing_ok=True)
        raise
    del dense, ids
    os.replace(tmp_dense, out_dir / DENSE_FILE)
    os.replace(tmp_ids, out_dir / IDS_FILE)
    meta = dict(meta)
    meta["created"] = _creation_info(time.perf_counter() - t0)
    tmp_meta = out_dir / ("tmp-" + META_FILE)
    tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
    os.replace(tmp_meta, out_dir / META_FILE)
    return out_dir / META_FILE


def chunk_items_for(dense_in: int, n_cols: int) -> int:
    """Items per chunk so that one chunk of both arrays is about :data:`CHUNK_BYTES`."""
    return max(1, CHUNK_BYTES // max(1, 4 * dense_in + 8 * n_cols))


def build_library(spec: Any, n_items: int, sparse_cfg: SparseConfig | Mapping[str, Any] | str, seed: int,
                  out_dir: str | Path, *, scale: str | None = None, dense_dist: str = "normal",
                  chunk_items: int | None = None) -> Path:
    """Write a sample library of ``n_items`` items for ``spec`` into ``out_dir``; returns ``library.json``'s path.

    ``sparse_cfg``: a :class:`SparseConfig`, ``{"kind": ..., "alpha": ...}`` or a generator name;
    ``dense_dist``: ``normal`` (standard normal) or ``uniform`` ([0, 1)); ``scale`` defaults to
    ``spec.scale`` if the spec has one. An existing library in ``out_dir`` is replaced.
    """
    model_id, dense_in, tables = _spec_tables(spec)
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ConfigError(f"sample library: n_items must be an integer >= 1, got {n_items!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"sample library: seed must be an integer >= 0, got {seed!r}")
    if dense_dist not in DENSE_DISTRIBUTIONS:
        raise ConfigError(f"sample library: unknown dense distribution {dense_dist!r}; "
                          f"known: {', '.join(DENSE_DISTRIBUTIONS)}")
    cfg = SparseConfig.from_dict(sparse_cfg)
    gen = cfg.generator()
    n_items, n_cols = int(n_items), sum(t.lookups for t in tables)
    chunk = int(chunk_items) if chunk_items else chunk_items_for(dense_in, n_cols)
    seqs = np.random.SeedSequence(int(seed)).spawn(1 + len(tables))
    dense_rng = np.random.default_rng(seqs[0])
    rngs = [np.random.default_rng(s) for s in seqs[1:]]
    samplers = [gen.sampler(t.rows, r) for t, r in zip(tables, rngs)]
    cols = _table_meta(tables)

    def fill(start: int, stop: int, dense: np.ndarray, ids: np.ndarray) -> None:
        n = stop - start
        if dense_in:
            if dense_dist == "normal":
                dense[...] = dense_rng.standard_normal((n, dense_in), dtype=np.float32)
            else:
                dense[...] = dense_rng.random((n, dense_in), dtype=np.float32)
        for t, c, sampler, rng in zip(tables, cols, samplers, rngs):
            ids[:, c["column_start"]:c["column_start"] + t.lookups] = sampler.draw(n * t.lookups, rng).reshape(n, t.lookups)

    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model_id": model_id,
        "scale": scale if scale is not None else getattr(spec, "scale", None),
        "n_items": n_items, "dense_in": dense_in, "lookups_per_item": n_cols, "tables": cols,
        "sparse": cfg.to_dict(), "dense": {"distribution": dense_dist, "dtype": "float32"}, "seed": int(seed),
        "source": "synthetic", "files": {"dense": DENSE_FILE, "ids": IDS_FILE},
    }
    return write_library_files(Path(out_dir), meta, fill, n_items, dense_in, n_cols, chunk)


_REQUIRED = ("format", "format_version", "model_id", "n_items", "dense_in", "tables")


class SampleLibrary:
    """A built library, memory-mapped read-only. Use :meth:`open`."""

    def __init__(self, path: Path, meta: dict[str, Any], dense: np.ndarray, ids: np.ndarray):
        self.path, self.meta, self.dense, self.ids = path, meta, dense, ids

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, path: str | Path, *, check_ids: bool = False) -> "SampleLibrary":
        """Map ``dense.npy`` and ``ids.npy`` read-only after validating them against ``library.json``.

        Missing library/files raise :class:`NotBuiltError`; corrupt or inconsistent ones :class:`HeraError`.
        ``check_ids=True`` also scans every id against its table's rows (reads the whole array).
        """
        path = Path(path)
        hint = "build it with `hera workload library`"
        if not path.is_dir():
            raise NotBuiltError(f"sample library not built: {path} does not exist ({hint})")
        meta_path = path / META_FILE
        if not meta_path.is_file():
            raise NotBuiltError(f"sample library not built: {meta_path} is missing ({hint})")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HeraError(f"corrupt sample library {path}: {META_FILE} is not valid JSON ({exc})") from None
        if not isinstance(meta, dict) or any(k not in meta for k in _REQUIRED):
            missing = [k for k in _REQUIRED if not isinstance(meta, dict) or k not in meta]
            raise HeraError(f"corrupt sample library {path}: {META_FILE} lacks {', '.join(missing)}")
        if meta["format"] != FORMAT or meta["format_version"] != FORMAT_VERSION:
            raise HeraError(f"sample library {path} has format {meta['format']!r} v{meta['format_version']}; "
                            f"this code reads {FORMAT!r} v{FORMAT_VERSION} (rebuild it)")
        try:
            n_items, dense_in = int(meta["n_items"]), int(meta["dense_in"])
            tables = [(str(t["name"]), int(t["rows"]), int(t["lookups"]), int(t["column_start"]))
                      for t in meta["tables"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise HeraError(f"corrupt sample library {path}: bad table or size entry in {META_FILE} ({exc})") from None
        n_cols = sum(t[2] for t in tables)
        arrays = {}
        for name, dtype, shape in ((DENSE_FILE, np.float32, (n_items, dense_in)), (IDS_FILE, np.int64, (n_items, n_cols))):
            f = path / name
            if not f.is_file():
                raise NotBuiltError(f"sample library {path} is incomplete: {name} is missing ({hint})")
            try:
                a = np.load(f, mmap_mode="r", allow_pickle=False)
            except (ValueError, OSError, EOFError) as exc:
                raise HeraError(f"corrupt sample library {path}: {name} cannot be mapped ({exc})") from None
            if a.dtype != dtype or a.shape != shape:
                raise HeraError(f"corrupt sample library {path}: {name} is {a.dtype}{list(a.shape)}, "
                                f"{META_FILE} says {np.dtype(dtype)}{list(shape)}")
            arrays[name] = a
        lib = cls(path, meta, arrays[DENSE_FILE], arrays[IDS_FILE])
        lib._check_id_range(full=check_ids)
        return lib

    def prefault(self) -> int:
        """Touch one byte per 4 KiB page of both arrays; return the bytes covered.

        A worker reads a query's ids and dense features from these maps; without this, every page a query
        touches for the first time is a page fault, and a freshly started worker runs at a fraction of its
        steady throughput for seconds (RMC2 at default scale, 503 MB of ids: 20 queries/s in the first second
        after start, about 60 from the fourth on).
        """
        from hera.zoo.load import touch_pages

        return sum(touch_pages(np.asarray(a).reshape(-1).view(np.uint8)) for a in (self.dense, self.ids))

    def _check_id_range(self, full: bool) -> None:
        """Ids must lie in ``[0, rows)``; checks the first and last 256 items unless ``full``."""
        n = self.n_items
        windows = [slice(0, n)] if full else [slice(0, min(n, 256)), slice(max(0, n - 256), n)]
        for name, rows, lookups, col in self._tables():
            for w in windows:
                block = self.ids[w, col:col + lookups]
                if block.size and (block.min() < 0 or block.max() >= rows):
                    raise HeraError(f"corrupt sample library {self.path}: table {name!r} has ids outside "
                                    f"[0, {rows}) in items {w.start}..{w.stop - 1}")

    def _tables(self) -> list[tuple[str, int, int, int]]:
        return [(t["name"], int(t["rows"]), int(t["lookups"]), int(t["column_start"])) for t in self.meta["tables"]]

    # ------------------------------------------------------------------ properties
    @property
    def directory(self) -> Path:
        """The library's directory (same as ``path``)."""
        return self.path

    @property
    def n_items(self) -> int:
        return int(self.meta["n_items"])

    @property
    def dense_in(self) -> int:
        return int(self.meta["dense_in"])

    @property
    def model_id(self) -> str:
        return str(self.meta["model_id"])

    @property
    def tables(self) -> list[dict[str, Any]]:
        return list(self.meta["tables"])

    # ------------------------------------------------------------------ access
    def slice(self, start: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Items ``[start, start + n)`` as ``(dense[n, dense_in], ids[n, L])`` read-only views (no copy)."""
        for name, v in (("start", start), ("n", n)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise SliceError(f"sample library {self.model_id}: {name} must be an integer, got {v!r}")
        start, n = int(start), int(n)
        if n < 1 or start < 0 or start + n > self.n_items:
            raise SliceError(f"sample library {self.model_id}: window start={start} n={n} is outside its "
                             f"{self.n_items} items")
        return self.dense[start:start + n], self.ids[start:start + n]

    def table_ids(self, table: str | int) -> np.ndarray:
        """All ids of one table, ``int64[N, lookups]`` (a view)."""
        tabs = self._tables()
        idx = table if isinstance(table, int) else next((i for i, t in enumerate(tabs) if t[0] == table), None)
        if idx is None or not 0 <= idx < len(tabs):
            raise ConfigError(f"sample library {self.model_id}: no table {table!r}")
        _, _, lookups, col = tabs[idx]
        return self.ids[:, col:col + lookups]

    def random_start(self, n: int, rng: np.random.Generator) -> int:
        """A uniformly random start of a window of ``n`` items."""
        if n < 1 or n > self.n_items:
            raise SliceError(f"sample library {self.model_id}: a query of {n} items does not fit its {self.n_items} items")
        return int(rng.integers(0, self.n_items - n + 1))

    def __repr__(self) -> str:
        return f"SampleLibrary({self.model_id!r}, n_items={self.n_items}, dense_in={self.dense_in}, " \
               f"lookups={self.ids.shape[1]}, path={str(self.path)!r})"
