"""Real input arrays of tensor-path queries (HTTP), handed to workers through shared-memory files.

A task record has room for indices only, and any idle worker may read it, so the arrays of a tensor query are
written once to ``<dir>/<token>`` (``dense`` float32 rows, then ``ids`` int64 rows) in a per-node directory on
``/dev/shm`` (tmpfs; the system temporary directory where that is missing). A worker reads just its
sub-batch's rows with ``pread``. The node removes the file when the query finishes and the directory when it
stops.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np


def _base_dir() -> str | None:
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


class PayloadStore:
    """The node side: one file per tensor query (``put`` → token, ``drop`` when the query is finished)."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="hera-payload-", dir=_base_dir())

    def path(self, token: int) -> str:
        return os.path.join(self.dir, str(int(token)))

    def put(self, token: int, dense: np.ndarray, ids: np.ndarray) -> None:
        """Store a query's arrays (``dense[n, dense_in]`` float32, ``ids[n, L]`` int64) under ``token``."""
        fd = os.open(self.path(token), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for a in (np.ascontiguousarray(dense, np.float32), np.ascontiguousarray(ids, np.int64)):
                view = memoryview(a.reshape(-1).view(np.uint8))
                while view:
                    view = view[os.write(fd, view):]
        finally:
            os.close(fd)

    def drop(self, token: int) -> None:
        try:
            os.unlink(self.path(token))
        except FileNotFoundError:
            pass

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def read_rows(directory: str, token: int, row_offset: int, n: int, total_rows: int, dense_in: int,
              n_ids: int) -> tuple[np.ndarray, np.ndarray]:
    """The worker side: rows ``row_offset .. row_offset+n-1`` of the arrays stored under ``token``."""
    fd = os.open(str(Path(directory) / str(int(token))), os.O_RDONLY)
    try:
        dense = np.empty((n, dense_in), np.float32)
        ids = np.empty((n, n_ids), np.int64)
        got_d = os.preadv(fd, [dense], row_offset * dense_in * 4) if dense.size else 0
        got_i = os.preadv(fd, [ids], total_rows * dense_in * 4 + row_offset * n_ids * 8) if ids.size else 0
    finally:
        os.close(fd)
    if got_d != dense.nbytes or got_i != ids.nbytes:
        raise OSError(f"tensor payload {token} is shorter than its query ({n} rows from row {row_offset})")
    return dense, ids
