"""The control API over HTTP: ``GET /hera/v1/stats`` and ``POST /hera/v1/tenants/{name}/resize|llc|membw``
(what :class:`hera.server.http.client.RemoteNode` calls)."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiohttp import web

from hera.server.control import stats_json
from hera.server.http.common import NODE_KEY, json_response, read_json_object, tenant_names, unknown_name
from hera.server.kserve import ProtocolError


def _tenant_name(request: web.Request) -> str:
    name = request.match_info["name"]
    node = request.app[NODE_KEY]
    if name not in tenant_names(node):
        raise unknown_name(node, name, "tenant")
    return name


def _only_keys(body: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ProtocolError(f"{what}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    missing = sorted(allowed - set(body))
    if missing:
        raise ProtocolError(f"{what}: missing key {missing[0]!r}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


async def _stats(request: web.Request) -> web.Response:
    """``{tenant: TenantSnapshot fields}``; ``?window_s=S`` (> 0) sets the window of rates and percentiles."""
    node = request.app[NODE_KEY]
    raw = request.query.get("window_s")
    window_s = None
    if raw is not None:
        try:
            window_s = float(raw)
        except ValueError:
            window_s = math.nan
        if not math.isfinite(window_s) or window_s <= 0:
            raise ProtocolError(f"stats: window_s must be a number of seconds > 0, got {raw!r}")
    stats = await asyncio.to_thread(node.stats, window_s)
    return json_response(stats_json(stats))


async def _resize(request: web.Request) -> web.Response:
    name = _tenant_name(request)
    body = await read_json_object(request, "resize")
    _only_keys(body, {"cores"}, "resize")
    cores = body["cores"]
    if not isinstance(cores, list) or not cores or not all(_is_int(c) and c >= 0 for c in cores):
        raise ProtocolError(f"resize: 'cores' must be a non-empty list of CPU ids (integers >= 0), "
                            f"got {cores!r}")
    if len(set(cores)) != len(cores):
        raise ProtocolError(f"resize: 'cores' lists a CPU twice: {cores}")
    node = request.app[NODE_KEY]
    ret = await asyncio.to_thread(node.resize, name, list(cores))
    out: dict[str, Any] = {"tenant": name, "cores": sorted(cores)}
    if ret is not None:
        out["result"] = ret
    return json_response(out)


async def _llc(request: web.Request) -> web.Response:
    name = _tenant_name(request)
    body = await read_json_object(request, "llc")
    _only_keys(body, {"ways"}, "llc")
    ways = body["ways"]
    if not _is_int(ways) or ways < 1:
        raise ProtocolError(f"llc: 'ways' must be an integer >= 1, got {ways!r}")
    node = request.app[NODE_KEY]
    ret = await asyncio.to_thread(node.set_llc_ways, name, ways)
    out: dict[str, Any] = {"tenant": name, "ways": ways}
    if ret is not None:
        out["result"] = ret
    return json_response(out)


async def _membw(request: web.Request) -> web.Response:
    name = _tenant_name(request)
    body = await read_json_object(request, "membw")
    _only_keys(body, {"percent"}, "membw")
    pct = body["percent"]
    if not _is_int(pct) or not 1 <= pct <= 100:
        raise ProtocolError(f"membw: 'percent' must be an integer in 1..100, got {pct!r}")
    node = request.app[NODE_KEY]
    if not hasattr(node, "set_mem_bw"):
        raise ProtocolError("this node cannot set memory bandwidth", status=501)
    ret = await asyncio.to_thread(node.set_mem_bw, name, pct)
    out: dict[str, Any] = {"tenant": name, "percent": pct}
    if ret is not None:
        out["result"] = ret
    return json_response(out)



def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/hera/v1/stats", _stats)
    router.add_post("/hera/v1/tenants/{name}/resize", _resize)
    router.add_post("/hera/v1/tenants/{name}/llc", _llc)
    router.add_post("/hera/v1/tenants/{name}/membw", _membw)
