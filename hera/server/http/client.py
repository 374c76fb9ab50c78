"""The control side of a node reached over HTTP (standard library only, so it runs anywhere)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from hera.errors import HeraError
from hera.server.control import StatsRecordError, TenantSnapshot, stats_from_json


class HttpControlError(HeraError):
    """A remote server answered a control or infer call with an error (message from its ``error`` field)."""


class RemoteNode:
    """The control side of a node reached over HTTP (what the node manager uses for a remote server): a
    :class:`hera.server.control.NodeControl`.

    Mirrors the Node's control methods: ``stats()``, ``resize(tenant, cores)``,
    ``set_llc_ways(tenant, ways)``, ``set_mem_bw(tenant, percent)``; plus ``ready()``. Errors raise
    :class:`HttpControlError` with the server's one-line message. Requests go through ``urllib``.
    """

    def __init__(self, url: str, timeout_s: float = 30.0):
        self.url = url.rstrip("/")
        if "://" not in self.url:
            self.url = "http://" + self.url
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                msg = json.loads(exc.read()).get("error", exc.reason)
            except (ValueError, AttributeError):
                msg = exc.reason
            raise HttpControlError(f"{method} {self.url}{path} failed with HTTP {exc.code}: {msg}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HttpControlError(f"{method} {self.url}{path} failed: {reason}") from None

    def ready(self) -> bool:
        try:
            self._call("GET", "/v2/health/ready")
        except HttpControlError:
            return False
        return True

    def stats(self, window_s: float | None = None) -> dict[str, TenantSnapshot]:
        """Every tenant's :class:`~hera.server.control.TenantSnapshot` (rates over ``window_s`` when given)."""
        query = "" if window_s is None else "?" + urllib.parse.urlencode({"window_s": repr(float(window_s))})
        doc = self._call("GET", "/hera/v1/stats" + query)
        try:
            return stats_from_json(doc)
        except StatsRecordError as exc:
            raise HttpControlError(f"GET {self.url}/hera/v1/stats: {exc}") from None

    def resize(self, tenant: str, cores: Sequence[int]) -> None:
        self._call("POST", f"/hera/v1/tenants/{_quote(tenant)}/resize", {"cores": [int(c) for c in cores]})

    def set_llc_ways(self, tenant: str, ways: int) -> None:
        self._call("POST", f"/hera/v1/tenants/{_quote(tenant)}/llc", {"ways": int(ways)})

    def set_mem_bw(self, tenant: str, percent: int) -> None:
        self._call("POST", f"/hera/v1/tenants/{_quote(tenant)}/membw", {"percent": int(percent)})


def _quote(tenant: str) -> str:
    return urllib.parse.quote(str(tenant), safe="")
