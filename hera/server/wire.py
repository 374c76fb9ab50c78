"""Fixed-size records between the node, its workers and a load-generator process (``struct``, no pickle).

Per tenant (see docs/DESIGN.md, "Dispatch"):

- **task record** (node → shared task pipe → whichever idle worker reads next), :data:`TASK`, 32 bytes:
  ``seq, kind, want_scores, n, start_or_token, row_offset, total_rows``. ``kind`` is :data:`KIND_LIBRARY`
  (items ``start .. start+n-1`` of the sample library) or :data:`KIND_TENSOR` (rows ``row_offset ..
  row_offset+n-1`` of the arrays stored under ``token`` by :mod:`hera.server.payload`).
- **result record** (worker → shared result pipe → the tenant's collector), :data:`RESULT`, 32 bytes:
  ``seq, t_start_ns, t_end_ns, worker_id, status``; ``status`` :data:`ST_OK`, :data:`ST_ERROR` (the message is
  in an ``X`` frame on the worker's private pipe) or :data:`ST_SCORES` (the scores are in an ``S`` frame there).
  Frames are written before the record, so they are in the private pipe when the record is read.
- **private frames** (``Connection.send_bytes`` on the worker's own pipe): ``R`` ready (pickled ``pid,
  affinity, info``), ``E`` start error (text), ``X`` sub-batch error (seq + text), ``S`` scores (seq, rows,
  cols, float32 data), and node → worker ``G`` (go: the worker is in the tenant's resource group).

Both record sizes are powers of two and ≤ ``PIPE_BUF``, so a write of one record is atomic with several writers
and a reader asking for a multiple of the size always gets whole records.

Between a load-generator process and the node (one pair of pipes per tenant, :mod:`hera.server.link`):

- **issue record** :data:`ISSUE`, 24 bytes: ``tag, sample_start, n_items``;
- **completion frame**: :data:`DONE` header (``tag, ok, n_workers, error_len, t_submit_ns, t_start_ns,
  t_end_ns``, 40 bytes) + ``n_workers`` uint32 worker ids + ``error_len`` bytes of UTF-8 error text.
"""

from __future__ import annotations

import struct

import numpy as np

TASK = struct.Struct("<QBBxxIqII")
RESULT = struct.Struct("<QqqIB3x")
KIND_LIBRARY, KIND_TENSOR = 0, 1
ST_OK, ST_ERROR, ST_SCORES = 0, 1, 2
READ_CHUNK = 1 << 16  # a multiple of every record size

ISSUE = struct.Struct("<QqI4x")
DONE = struct.Struct("<QBxHHxxqqq")
_SEQ = struct.Struct("<Q")
_SCORES = struct.Struct("<QII")

assert TASK.size == 32 and RESULT.size == 32 and ISSUE.size == 24 and DONE.size == 40


def scores_frame(seq: int, scores: np.ndarray) -> bytes:
    """``S`` frame: the float32 scores ``[rows, cols]`` of sub-batch ``seq``."""
    a = np.ascontiguousarray(scores, dtype=np.float32)
    if a.ndim == 1:
        a = a.reshape(-1, 1)
    return b"S" + _SCORES.pack(seq, a.shape[0], a.shape[1]) + a.tobytes()


def error_frame(seq: int, message: str) -> bytes:
    """``X`` frame: why sub-batch ``seq`` failed in the model."""
    return b"X" + _SEQ.pack(seq) + message.encode("utf-8", "replace")


def frame_seq(frame: bytes) -> int:
    """The sub-batch seq of an ``S`` or ``X`` frame."""
    return _SEQ.unpack_from(frame, 1)[0]


def frame_scores(frame: bytes) -> np.ndarray:
    _, rows, cols = _SCORES.unpack_from(frame, 1)
    return np.frombuffer(frame, np.float32, rows * cols, 1 + _SCORES.size).reshape(rows, cols).copy()


def frame_error(frame: bytes) -> str:
    return frame[1 + _SEQ.size:].decode("utf-8", "replace")


def done_frame(tag: int, ok: bool, workers: list[int], error: str | None, t_submit_ns: int, t_start_ns: int,
               t_end_ns: int) -> bytes:
    """A completion frame for the load generator (error text cut to 4000 bytes)."""
    err = (error or "").encode("utf-8", "replace")[:4000]
    ws = workers[:65535]
    return (DONE.pack(tag, 1 if ok else 0, len(ws), len(err), t_submit_ns, t_start_ns, t_end_ns)
            + struct.pack(f"<{len(ws)}I", *ws) + err)


def parse_done(buf: bytearray) -> list[tuple]:
    """Parse and remove every complete completion frame from ``buf`` → ``[(tag, ok, workers, error, t_submit,
    t_start, t_end)]`` (a partial frame at the end stays in ``buf``)."""
    out = []
    pos, end = 0, len(buf)
    while end - pos >= DONE.size:
        tag, ok, nw, ne, ts, t0, t1 = DONE.unpack_from(buf, pos)
        size = DONE.size + 4 * nw + ne
        if end - pos < size:
            break
        body = pos + DONE.size
        ws = list(struct.unpack_from(f"<{nw}I", buf, body)) if nw else []
        err = bytes(buf[body + 4 * nw: pos + size]).decode("utf-8", "replace") if ne else None
        out.append((tag, bool(ok), ws, err, ts, t0, t1))
        pos += size
    del buf[:pos]
    return out
