"""KServe v2 / Open Inference Protocol handlers: health, server and model metadata, model readiness, infer.

Requests are checked completely (:func:`hera.server.kserve.validate_request`) before anything reaches the node,
so a bad request never touches a worker or another tenant. The event loop never blocks on a query: the node's
``concurrent.futures.Future`` is awaited through :func:`asyncio.wrap_future`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
from aiohttp import web

import hera
from hera.errors import HeraError
from hera.server import kserve
from hera.server.control import TenantSnapshot
from hera.server.http.common import NODE_KEY, STATE_KEY, HttpState, json_response, tenant_names, unknown_name
from hera.server.kserve import ModelNotFoundError, ProtocolError, SampleQuery, TensorQuery

#: Bodies above this size are decoded in a thread so that the event loop keeps serving other tenants.
_DECODE_IN_THREAD_BYTES = 256 * 1024
_HEADER_LENGTH = "Inference-Header-Content-Length"


def _model(request: web.Request) -> kserve.ModelInfo:
    """The :class:`ModelInfo` of the URL's model (404 unknown model or version, 503 no ready worker yet)."""
    name = request.match_info["name"]
    version = request.match_info.get("version")
    node = request.app[NODE_KEY]
    if name not in tenant_names(node):
        raise unknown_name(node, name)
    if version is not None and version != kserve.MODEL_VERSION:
        raise ModelNotFoundError(f"model {name!r} has no version {version!r}; "
                                 f"versions: {kserve.MODEL_VERSION}")
    info = node.tenant_info(name)
    key = tuple(info.get(k) for k in ("model", "scale", "dense_in", "n_ids", "n_outputs", "max_items",
                                      "library_items"))
    cache: dict[str, tuple[tuple, kserve.ModelInfo]] = request.app[STATE_KEY].models
    hit = cache.get(name)
    if hit is None or hit[0] != key:
        hit = cache[name] = (key, kserve.model_info(name, info))
    return hit[1]


def _readiness(node: Any, stats: Mapping[str, TenantSnapshot]) -> dict[str, bool]:
    """Tenant → has at least one ready worker (and the node is running)."""
    running = getattr(node, "state", "running") == "running"
    return {n: running and n in stats and stats[n].workers_ready > 0 for n in tenant_names(node)}


async def _live(request: web.Request) -> web.Response:
    return json_response({"live": True})


async def _ready(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    ready = _readiness(node, await asyncio.to_thread(node.stats))
    not_ready = sorted(n for n, ok in ready.items() if not ok)
    if not ready or not_ready:
        why = (f"tenants without a ready worker: {', '.join(not_ready)}" if ready
               else "the node serves no tenant")
        if getattr(node, "state", "running") != "running":
            why = f"node is {node.state}"
        return json_response({"ready": False, "error": why}, status=503)
    return json_response({"ready": True})


async def _server_metadata(request: web.Request) -> web.Response:
    return json_response(kserve.server_metadata(hera.__version__))


async def _model_metadata(request: web.Request) -> web.Response:
    return json_response(_model(request).metadata())


async def _model_ready(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    node = request.app[NODE_KEY]
    if name not in tenant_names(node):
        raise unknown_name(node, name)
    if request.match_info.get("version", kserve.MODEL_VERSION) != kserve.MODEL_VERSION:
        raise ModelNotFoundError(f"model {name!r} has no version {request.match_info['version']!r}")
    if not _readiness(node, await asyncio.to_thread(node.stats)).get(name):
        return json_response({"name": name, "ready": False, "error": f"model {name!r} has no ready worker"},
                     status=503)
    return json_response({"name": name, "ready": True})


def _header_length(request: web.Request) -> int | None:
    raw = request.headers.get(_HEADER_LENGTH)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ProtocolError(f"{_HEADER_LENGTH} must be an integer, got {raw!r}") from None


def _submit(node: Any, tenant: str, query: TensorQuery | SampleQuery):
    if isinstance(query, SampleQuery):
        return node.submit(tenant, query.sample_start, query.n_items, want_scores=True)
    return node.submit_tensors(tenant, query.dense, query.ids)


def _consume(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # mark retrieved: a client that went away must not log "exception never retrieved"


async def _infer(request: web.Request) -> web.Response:
    t0 = time.perf_counter()
    info = _model(request)
    header_length = _header_length(request)
    body = await request.read()
    if len(body) > _DECODE_IN_THREAD_BYTES:
        loop = asyncio.get_running_loop()
        req, query = await loop.run_in_executor(None, _decode_and_validate, info, body, header_length)
    else:
        req, query = _decode_and_validate(info, body, header_length)

    node = request.app[NODE_KEY]
    if isinstance(query, TensorQuery) and query.dense.nbytes + query.ids.nbytes > _DECODE_IN_THREAD_BYTES:
        # the node pickles the arrays onto a worker pipe inside submit: keep big copies off the event loop
        cfut = await asyncio.get_running_loop().run_in_executor(None, _submit, node, info.name, query)
    else:
        cfut = _submit(node, info.name, query)
    fut = asyncio.wrap_future(cfut)
    fut.add_done_callback(_consume)
    try:
        # shield: a client that disconnects must not cancel the node's Future under the node's feet
        result = await asyncio.shield(fut)
    except (HeraError, ProtocolError):
        raise
    except Exception as exc:
        raise ProtocolError(f"query failed: {type(exc).__name__}: {exc}", status=500) from None
    if not result.ok:
        raise ProtocolError(f"query failed: {result.error or 'unknown worker error'}", status=500)
    if result.scores is None:
        raise ProtocolError("query failed: the node returned no scores", status=500)
    scores = np.asarray(result.scores, dtype=np.float32)
    if scores.ndim == 1:
        scores = scores.reshape(-1, 1)
    if scores.shape[0] != query.n_items:
        raise ProtocolError(f"query failed: the node returned {scores.shape[0]} score rows for "
                            f"{query.n_items} items", status=500)
    params = _timing(result)
    out, hlen = kserve.encode_infer_response(info.name, scores, request_id=req.id, binary=req.binary_output,
                                             parameters=params)
    ctype = "application/octet-stream" if hlen is not None else "application/json"
    resp = web.Response(body=out, content_type=ctype)
    if hlen is not None:
        resp.headers[_HEADER_LENGTH] = str(hlen)
    accept = request.headers.get("Accept-Encoding", "")
    if "gzip" in accept or "deflate" in accept:
        resp.enable_compression()
    state: HttpState = request.app[STATE_KEY]
    state.infer_count[info.name] += 1
    state.infer_latency_s_sum[info.name] += time.perf_counter() - t0
    return resp


def _decode_and_validate(info: kserve.ModelInfo, body: bytes, header_length: int | None):
    req = kserve.decode_infer_request(body, header_length)
    return req, kserve.validate_request(info, req)


def _timing(result: Any) -> dict[str, Any]:
    """Per-query timing returned in the response's ``parameters`` (milliseconds; queue = submit → start)."""
    try:
        t_sub, t_start, t_end = int(result.t_submit_ns), int(result.t_start_ns), int(result.t_end_ns)
    except (AttributeError, TypeError, ValueError):
        return {}
    if not (t_sub and t_start and t_end):
        return {}
    return {"queue_ms": round((t_start - t_sub) / 1e6, 4), "service_ms": round((t_end - t_start) / 1e6, 4),
            "latency_ms": round((t_end - t_sub) / 1e6, 4),
            "workers": list(getattr(result, "workers", []) or [])}


def add_routes(router: web.UrlDispatcher) -> None:
    """The KServe v2 endpoints (``/v2/models/{name}/versions/1/...`` are aliases of ``/v2/models/{name}/...``)."""
    router.add_get("/v2/health/live", _live)
    router.add_get("/v2/health/ready", _ready)
    router.add_get("/v2", _server_metadata)
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        router.add_get(base, _model_metadata)
        router.add_get(base + "/ready", _model_ready)
        router.add_post(base + "/infer", _infer)
