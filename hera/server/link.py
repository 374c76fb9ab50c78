"""A load-generator link: queries issued from another process straight into a node's tenants.

``node.open_link()`` returns a :class:`NodeLink`; its picklable :attr:`NodeLink.client` goes to the
load-generator process (``hera.loadgen.process``), which issues queries and reads their completions with no
Python code of the node's process in between other than the tenant's collector thread:

- per tenant, an **issue pipe** (load generator → node) of 24-byte issue records (``tag, sample_start,
  n_items``), read by the tenant's collector thread together with its workers' results;
- per tenant, a **completion pipe** (node → load generator) of completion frames (``tag``, ok, worker ids,
  error text, ``t_submit_ns``/``t_start_ns``/``t_end_ns``), written by whichever thread finishes the query
  (normally the collector) in one write per batch.

Queue limits, validation and statistics are those of :meth:`Node.submit`; a rejected query comes back at once
as a failed completion. Layouts: :mod:`hera.server.wire`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from hera.server import wire
from hera.server.errors import BadRequestError, NodeStoppedError, QueueFull

_ISSUE_CHUNK = wire.ISSUE.size * 2730


@dataclass
class LinkClient:
    """The load generator's end of a link (picklable at process start; use it in one process only)."""

    tenants: list[str]
    issue: list[Connection]   # write ends, one per tenant
    done: list[Connection]    # read ends, one per tenant
    _bufs: list[bytearray] = field(default_factory=list, repr=False)

    def issue_query(self, k: int, tag: int, sample_start: int, n_items: int) -> None:
        """Issue a query of tenant ``k`` (index into :attr:`tenants`); its completion carries ``tag``."""
        os.write(self.issue[k].fileno(), wire.ISSUE.pack(tag, sample_start, n_items))

    def done_fds(self) -> list[int]:
        return [c.fileno() for c in self.done]

    def read_done(self, k: int) -> list[tuple]:
        """Every completion of tenant ``k`` that has arrived (non-blocking): ``[(tag, ok, workers, error,
        t_submit_ns, t_start_ns, t_end_ns)]``."""
        if not self._bufs:
            self._bufs = [bytearray() for _ in self.tenants]
            for c in self.done:
                os.set_blocking(c.fileno(), False)
        buf = self._bufs[k]
        fd = self.done[k].fileno()
        while True:
            try:
                data = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            buf += data
            if len(data) < (1 << 16):
                break
        return wire.parse_done(buf) if buf else []

    def close(self) -> None:
        for c in self.issue + self.done:
            c.close()


class NodeLink:
    """The node's end of a link (see module doc); made by ``Node.open_link``, closed by ``close`` or when the
    node stops."""

    def __init__(self, node: Any):
        self.node = node
        self.names = list(node.tenants)
        self._issue_r: dict[str, int] = {}
        self._done_w: dict[str, int] = {}
        self._out: dict[str, bytearray] = {}
        self._locks: dict[str, threading.Lock] = {}
        issue_conns, done_conns = [], []
        for name in self.names:
            ir, iw = os.pipe()
            dr, dw = os.pipe()
            try:
                import fcntl

                fcntl.fcntl(dw, fcntl.F_SETPIPE_SZ, 1 << 20)
            except (OSError, AttributeError):
                pass
            os.set_blocking(ir, False)
            os.set_blocking(dw, False)
            self._issue_r[name], self._done_w[name] = ir, dw
            self._out[name], self._locks[name] = bytearray(), threading.Lock()
            issue_conns.append(Connection(iw, readable=False))
            done_conns.append(Connection(dr, writable=False))
        self.client = LinkClient(self.names, issue_conns, done_conns)
        self.closed = False
        for name in self.names:
            node.tenants[name].attach_link(self, self._issue_r[name])

    # ------------------------------------------------------------------ called by the tenant's collector thread
    def on_issue_ready(self, tenant: Any, done: list) -> None:
        """Read every issue record waiting for ``tenant`` and submit the queries."""
        fd = self._issue_r.get(tenant.name)
        if fd is None:
            return
        try:
            data = os.read(fd, _ISSUE_CHUNK)
        except BlockingIOError:
            return
        if not data:  # the load generator closed its end
            tenant.detach_link(self, fd)
            return
        for tag, start, n in wire.ISSUE.iter_unpack(data):
            try:
                self.node.submit_linked(tenant.name, start, n, self, tag)
            except (QueueFull, NodeStoppedError, BadRequestError) as exc:
                now = time.monotonic_ns()
                self._append(tenant.name, wire.done_frame(tag, False, [], str(exc), now, 0, 0))

    # ------------------------------------------------------------------------ called where queries finish
    def complete(self, tag: int, res: Any) -> None:
        self._append(res.tenant, wire.done_frame(tag, res.ok, list(res.workers), res.error, res.t_submit_ns,
                                                 res.t_start_ns, res.t_end_ns))

    def _append(self, name: str, frame: bytes) -> None:
        with self._locks[name]:
            self._out[name] += frame

    def flush(self, tenant: Any) -> None:
        """Write the completions buffered for ``tenant`` (what the pipe cannot take now stays buffered)."""
        name = tenant.name
        with self._locks[name]:
            out = self._out[name]
            if not out or self.closed:
                return
            try:
                n = os.write(self._done_w[name], out)
            except BlockingIOError:
                return
            except OSError:  # the load generator is gone
                out.clear()
                return
            del out[:n]

    def close(self) -> None:
        if self.closed:
            return
        for name in self.names:
            t = self.node.tenants.get(name)
            if t is not None:
                t.detach_link(self, self._issue_r[name])
        self.closed = True
        for fd in list(self._issue_r.values()) + list(self._done_w.values()):
            try:
                os.close(fd)
            except OSError:
                pass
        self.client.close()
