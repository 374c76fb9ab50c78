"""The Criteo display-advertising TSV format mapped onto DLRM-style model inputs (docs/METHOD.md §4, real data path).

Format (Criteo Kaggle ``train.txt`` / Terabyte ``day_N``, optionally gzip-compressed): one item per line, 40
tab-separated fields — ``label`` (0/1), 13 integer dense features ``I1..I13`` and 26 categorical features
``C1..C26`` given as hexadecimal hashes (e.g. ``68fd1e64``); any dense or categorical field may be empty.

Mapping onto a model (anything with ``.dense_in`` and ``.tables`` with ``.rows``/``.lookups``, like
:class:`hera.zoo.spec.ModelSpec`), the same layout as a sample library (:mod:`hera.workload.library`):

* **dense** ``float32[n, dense_in]``: ``log(1 + max(x, 0))`` of I1..I13 (missing → 0), as DLRM's Criteo
  preprocessing; zero-padded when ``dense_in > 13``, truncated to the first ``dense_in`` when smaller.
* **ids** ``int64[n, L]``: the model's ``L = sum(lookups)`` id slots in spec order (table by table) take the
  categoricals in turn: slot ``s`` uses feature ``C[s mod 26]``; its hash value ``h`` (hex → integer,
  missing → 0) becomes row ``h mod rows`` of the slot's table. When a model has more than 26 slots, the
  ``k = s div 26``-th reuse of a feature (k ≥ 1) first mixes ``h`` with ``k`` (splitmix64 finaliser of
  ``h + k·0x9E3779B97F4A7C15``) so repeated slots do not all hit the same row while each keeps Criteo's
  value frequencies (same value → same row).

Reading is streamed in chunks of lines (pandas parses each chunk), so files larger than memory work; a
malformed line (wrong field count, bad label, non-integer dense value, non-hex categorical) raises
:class:`CriteoFormatError` naming the file and the 1-based line number.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from hera.errors import ConfigError, HeraError

N_DENSE, N_CAT = 13, 26
N_FIELDS = 1 + N_DENSE + N_CAT
COLUMNS = ["label"] + [f"I{i}" for i in range(1, N_DENSE + 1)] + [f"C{i}" for i in range(1, N_CAT + 1)]
DEFAULT_CHUNK_LINES = 65536
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

_HEX_LUT = np.full(128, -1, dtype=np.int64)
for _i, _c in enumerate("0123456789abcdef"):
    _HEX_LUT[ord(_c)] = _i
    _HEX_LUT[ord(_c.upper())] = _i


class CriteoFormatError(HeraError):
    """A line of a Criteo TSV file that does not follow the format."""


@dataclass
class CriteoChunk:
    """Consecutive items of a Criteo file mapped to model inputs; ``first_line`` is 1-based."""

    labels: np.ndarray      # int8[n]
    dense: np.ndarray       # float32[n, dense_in]
    ids: np.ndarray         # int64[n, L]
    first_line: int


def _open_text(path: Path):
    if not path.is_file():
        raise ConfigError(f"Criteo file {str(path)!r} not found")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="strict", newline="\n")
    return open(path, encoding="utf-8", errors="strict", newline="\n")


def _slot_layout(spec: Any) -> tuple[int, np.ndarray]:
    """``(dense_in, rows_per_slot int64[L])`` of a duck-typed model spec."""
    try:
        dense_in = int(spec.dense_in)
        rows = [int(t.rows) for t in spec.tables for _ in range(int(t.lookups))]
    except (AttributeError, TypeError, ValueError) as exc:
        raise ConfigError(f"Criteo mapping: the model spec lacks dense_in/tables(rows, lookups): {exc}") from None
    if dense_in < 0 or not rows or min(rows) < 1:
        raise ConfigError("Criteo mapping: the model needs dense_in >= 0 and at least one table with rows >= 1")
    return dense_in, np.asarray(rows, dtype=np.int64)


def parse_hex(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised hex → ``uint64`` for an array of strings (``''`` → 0); returns ``(values, bad_mask)``."""
    arr = np.asarray(values, dtype=str)
    n = arr.shape[0]
    lengths = np.char.str_len(arr) if n else np.zeros(0, dtype=np.int64)
    bad = lengths > 16
    width = 16
    arr16 = arr.astype(f"<U{width}")
    codes = arr16.view(np.uint32).reshape(n, width) if n else np.zeros((0, width), np.uint32)
    out = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(width):
            active = j < lengths
            if not active.any():
                break
            c = codes[:, j]
            digit = np.where(c < 128, _HEX_LUT[np.minimum(c, 127)], -1)
            bad |= active & (digit < 0)
            out = np.where(active, out * np.uint64(16) + np.maximum(digit, 0).astype(np.uint64), out)
    return out, bad


def _mix(h: np.ndarray, k: int) -> np.ndarray:
    """splitmix64 finaliser of ``h + k·golden`` (uint64, wrapping)."""
    with np.errstate(over="ignore"):
        z = h + np.uint64(k) * _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def map_fields(df: pd.DataFrame, dense_in: int, slot_rows: np.ndarray, *, path: str = "<memory>",
               first_line: int = 1) -> CriteoChunk:
    """Map parsed string fields (columns :data:`COLUMNS`) onto model inputs; errors name the line."""
    n = len(df)

    def fail(i: int, msg: str) -> CriteoFormatError:
        return CriteoFormatError(f"Criteo file {path} line {first_line + i}: {msg}")

    label = df["label"].to_numpy(dtype=str)
    bad = ~np.isin(label, ["0", "1"])
    if bad.any():
        i = int(np.argmax(bad))
        raise fail(i, f"label {str(label[i])!r} is not 0 or 1")
    dense_raw = np.zeros((n, N_DENSE), dtype=np.float64)
    for j in range(N_DENSE):
        col = df[f"I{j + 1}"]
        num = pd.to_numeric(col, errors="coerce")
        empty = (col == "").to_numpy()
        vals = num.to_numpy(dtype=np.float64, na_value=np.nan)
        badj = (~empty & ~np.isfinite(vals)) | (np.isfinite(vals) & (vals != np.round(vals)))
        if badj.any():
            i = int(np.argmax(badj))
            raise fail(i, f"dense feature I{j + 1} {col.iloc[i]!r} is not an integer")
        dense_raw[:, j] = np.where(empty, 0.0, vals)
    dense_log = np.log1p(np.maximum(dense_raw, 0.0)).astype(np.float32)
    dense = np.zeros((n, dense_in), dtype=np.float32)
    k = min(dense_in, N_DENSE)
    dense[:, :k] = dense_log[:, :k]
    hashes = np.empty((n, N_CAT), dtype=np.uint64)
    for j in range(N_CAT):
        vals, badj = parse_hex(df[f"C{j + 1}"].to_numpy(dtype=str))
        if badj.any():
            i = int(np.argmax(badj))
            raise fail(i, f"categorical feature C{j + 1} {df[f'C{j + 1}'].iloc[i]!r} is not a hexadecimal hash")
        hashes[:, j] = vals
    n_slots = slot_rows.size
    ids = np.empty((n, n_slots), dtype=np.int64)
    for s in range(n_slots):
        h = hashes[:, s % N_CAT]
        reuse = s // N_CAT
        if reuse:
            h = _mix(h, reuse)
        ids[:, s] = (h % np.uint64(slot_rows[s])).astype(np.int64)
    return CriteoChunk(label.astype(np.int8), dense, ids, first_line)


def _parse_lines(lines: list[str], path: str, first_line: int) -> pd.DataFrame:
    s = pd.Series(lines, dtype=object).str.rstrip("\r\n")
    tabs = s.str.count("\t").to_numpy()
    bad = tabs != N_FIELDS - 1
    if bad.any():
        i = int(np.argmax(bad))
        raise CriteoFormatError(f"Criteo file {path} line {first_line + i}: expected {N_FIELDS} tab-separated "
                                f"fields (label, 13 integer, 26 categorical), found {int(tabs[i]) + 1}")
    text = "\n".join(s.tolist()) + "\n"
    return pd.read_csv(io.StringIO(text), sep="\t", header=None, names=COLUMNS, dtype=str,
                       keep_default_na=False, na_filter=False, quoting=csv.QUOTE_NONE, engine="c")


def read_criteo(path: str | Path, spec: Any, *, chunk_lines: int = DEFAULT_CHUNK_LINES,
                max_lines: int | None = None) -> Iterator[CriteoChunk]:
    """Stream a Criteo TSV (plain or gzip) as :class:`CriteoChunk` s of at most ``chunk_lines`` items."""
    path = Path(path)
    dense_in, slot_rows = _slot_layout(spec)
    if chunk_lines < 1:
        raise ConfigError(f"Criteo reader: chunk_lines must be >= 1, got {chunk_lines}")
    remaining = max_lines
    line_no = 1
    try:
        with _open_text(path) as f:
            while remaining is None or remaining > 0:
                take = chunk_lines if remaining is None else min(chunk_lines, remaining)
                lines = list(itertools.islice(f, take))
                if not lines:
                    break
                df = _parse_lines(lines, str(path), line_no)
                yield map_fields(df, dense_in, slot_rows, path=str(path), first_line=line_no)
                line_no += len(lines)
                if remaining is not None:
                    remaining -= len(lines)
    except UnicodeDecodeError as exc:
        raise CriteoFormatError(f"Criteo file {path} near line {line_no}: not UTF-8 text ({exc.reason})") from None
    except (OSError, EOFError) as exc:
        raise CriteoFormatError(f"Criteo file {path} near line {line_no}: cannot be read ({exc})") from None


def load_criteo(path: str | Path, spec: Any, *, max_lines: int | None = None,
                chunk_lines: int = DEFAULT_CHUNK_LINES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole file (or its first ``max_lines``) in memory: ``(dense, ids, labels)``."""
    chunks = list(read_criteo(path, spec, chunk_lines=chunk_lines, max_lines=max_lines))
    if not chunks:
        raise CriteoFormatError(f"Criteo file {path} has no lines")
    return (np.concatenate([c.dense for c in chunks]), np.concatenate([c.ids for c in chunks]),
            np.concatenate([c.labels for c in chunks]))


def count_lines(path: str | Path) -> int:
    """Number of lines (items) in a plain or gzip file."""
    n = 0
    with _open_text(Path(path)) as f:
        for n, _ in enumerate(f, start=1):
            pass
    return n


def criteo_to_library(path: str | Path, spec: Any, out_dir: str | Path, *, max_lines: int | None = None,
                      scale: str | None = None, chunk_lines: int = DEFAULT_CHUNK_LINES) -> Path:
    """Write a sample library (same files as :func:`hera.workload.library.build_library`, plus
    ``labels.npy`` int8[N]) from a Criteo file; returns the path of ``library.json``."""
    from hera.workload.library import FORMAT, FORMAT_VERSION, _spec_tables, _table_meta, write_library_files

    path = Path(path)
    model_id, dense_in, tables = _spec_tables(spec)
    total = count_lines(path)
    n_items = total if max_lines is None else min(total, int(max_lines))
    if n_items < 1:
        raise CriteoFormatError(f"Criteo file {path} has no lines")
    n_cols = sum(t.lookups for t in tables)
    labels = np.empty(n_items, dtype=np.int8)
    stream = read_criteo(path, spec, chunk_lines=chunk_lines, max_lines=n_items)

    def fill(start: int, stop: int, dense: np.ndarray, ids: np.ndarray) -> None:
        chunk = next(stream)
        if chunk.ids.shape[0] != stop - start:
            raise CriteoFormatError(f"Criteo file {path} changed while it was read")
        dense[...] = chunk.dense
        ids[...] = chunk.ids
        labels[start:stop] = chunk.labels

    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "model_id": model_id,
        "scale": scale if scale is not None else getattr(spec, "scale", None),
        "n_items": n_items, "dense_in": dense_in, "lookups_per_item": n_cols, "tables": _table_meta(tables),
        "sparse": {"kind": "criteo", "mapping": "slot s <- C[s mod 26]; row = h mod rows (h mixed with s div 26 "
                                                "when > 0)"},
        "dense": {"distribution": "criteo log(1+max(x,0)), padded/truncated", "dtype": "float32"},
        "seed": None, "source": {"kind": "criteo", "path": str(path), "lines": n_items},
        "files": {"dense": "dense.npy", "ids": "ids.npy", "labels": "labels.npy"},
    }
    out = write_library_files(Path(out_dir), meta, fill, n_items, dense_in, n_cols, chunk_lines)
    np.save(Path(out_dir) / "labels.npy", labels)
    return out
