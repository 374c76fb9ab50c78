"""The node's network front end: KServe v2 / Open Inference Protocol over HTTP, metrics and a control API.

Endpoints (``make_app(node)``; wire format in :mod:`hera.server.kserve`):

==========================================  ==================================================================
``GET  /v2/health/live``                    200 while the process serves HTTP
``GET  /v2/health/ready``                   200 when every tenant has a ready worker, else 503
``GET  /v2``                                server metadata (name, version, extensions)
``GET  /v2/models/{name}``                  model metadata: inputs ``dense``/``sparse_ids``, output ``scores``
``GET  /v2/models/{name}/ready``            200 when the tenant has a ready worker, else 503
``POST /v2/models/{name}/infer``            inference (JSON, or the binary tensor extension)
``GET  /metrics``                           Prometheus text of ``node.stats()`` and HTTP counters
``GET  /hera/v1/stats``                     ``node.stats()`` as JSON
``POST /hera/v1/tenants/{name}/resize``     body ``{"cores": [..]}`` → ``node.resize``
``POST /hera/v1/tenants/{name}/llc``        body ``{"ways": k}`` → ``node.set_llc_ways``
``POST /hera/v1/tenants/{name}/membw``      body ``{"percent": p}`` → ``node.set_mem_bw``
==========================================  ==================================================================

``/v2/models/{name}/versions/1/...`` are accepted as aliases (the only version is ``1``).
Every error is ``{"error": "<one line>"}`` with 400 (bad request), 404 (unknown model or path), 405, 413 (body
too large), 503 (queue full / node stopped / not ready) or 500 (the query failed in a worker).

Requests are checked completely here (:func:`hera.server.kserve.validate_request`) before anything reaches the
node, so a bad request never touches a worker or another tenant. The event loop never blocks on a query: the
node's ``concurrent.futures.Future`` is awaited through :func:`asyncio.wrap_future`.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable

import numpy as np
from aiohttp import web

import hera
from hera.errors import ConfigError, HeraError, ResourceError
from hera.server import kserve
from hera.server.errors import BadRequestError, NodeStoppedError, QueueFull, UnknownTenantError
from hera.server.kserve import ModelNotFoundError, ProtocolError, SampleQuery, TensorQuery

log = logging.getLogger(__name__)

NODE_KEY = web.AppKey("hera_node", object)
STATE_KEY = web.AppKey("hera_http_state", object)

#: Largest request body accepted (a JSON query of 1024 RMC3 items is about 54 MB).
MAX_BODY_BYTES = 256 * 1024 * 1024
#: Bodies above this size are decoded in a thread so that the event loop keeps serving other tenants.
_DECODE_IN_THREAD_BYTES = 256 * 1024
_HEADER_LENGTH = "Inference-Header-Content-Length"


class HttpControlError(HeraError):
    """A remote server answered a control or infer call with an error (message from its ``error`` field)."""


# ----------------------------------------------------------------------------------------------------------
# Errors and bookkeeping
# ----------------------------------------------------------------------------------------------------------


def error_status(exc: BaseException) -> int:
    """HTTP status for an exception raised by the protocol layer or the node."""
    if isinstance(exc, ProtocolError):
        return exc.status
    if isinstance(exc, UnknownTenantError):
        return 404
    if isinstance(exc, (QueueFull, NodeStoppedError)):
        return 503
    if isinstance(exc, ResourceError):
        return 409
    if isinstance(exc, (BadRequestError, ConfigError, HeraError)):
        return 400
    return 500


def _one_line(msg: Any) -> str:
    text = " ".join(str(msg).split())
    return text or "error"


def json_error(status: int, message: Any) -> web.Response:
    """``{"error": "<one line>"}`` with the given status."""
    return web.json_response({"error": _one_line(message)}, status=status)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    if hasattr(obj, "__dataclass_fields__"):
        return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    return str(obj)


def _finite(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by None (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray)):
        return _finite(obj.tolist())
    return obj


def _dumps(obj: Any) -> str:
    try:
        return json.dumps(obj, default=_json_default, allow_nan=False)
    except ValueError:  # NaN or infinity somewhere: send null (strict JSON)
        return json.dumps(_finite(obj), default=_json_default, allow_nan=False)


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=_dumps)


class _State:
    """Front-end counters (exported on ``/metrics``)."""

    def __init__(self) -> None:
        self.requests: collections.Counter[tuple[str, int]] = collections.Counter()
        self.infer_latency_s_sum: collections.Counter[str] = collections.Counter()
        self.infer_count: collections.Counter[str] = collections.Counter()
        self.in_flight = 0
        self.started_s = time.time()
        self.models: dict[str, tuple[tuple, kserve.ModelInfo]] = {}  # tenant → (tenant_info key, ModelInfo)


def _route_name(request: web.Request) -> str:
    info = request.match_info
    resource = getattr(getattr(info, "route", None), "resource", None)
    if resource is None or getattr(info, "http_exception", None) is not None:
        return "unmatched"
    return resource.canonical


def _http_exc_message(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404 and _route_name(request) == "unmatched":
        return f"no endpoint {request.method} {request.path}"
    if exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        return f"method {request.method} is not allowed on {request.path} (allowed: {allowed})"
    text = (exc.text or "").strip()
    prefix = f"{exc.status}: "
    if not text or text.startswith(prefix):
        return f"{exc.reason}: {exc.__class__.__name__}" if not text else text[len(prefix):]
    return text


@web.middleware
async def _errors_and_counts(request: web.Request, handler: Callable) -> web.StreamResponse:
    state: _State = request.app[STATE_KEY]
    state.in_flight += 1
    try:
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = json_error(exc.status, _http_exc_message(request, exc))
            if exc.status == 405:
                resp.headers["Allow"] = exc.headers.get("Allow", "")
        except (HeraError, ProtocolError) as exc:
            resp = json_error(error_status(exc), exc)
        except Exception as exc:  # a bug: keep the server up, say what happened
            log.exception("unhandled error in %s %s", request.method, request.path)
            resp = json_error(500, f"internal error: {type(exc).__name__}: {exc}")
        state.requests[(_route_name(request), resp.status)] += 1
        return resp
    finally:
        state.in_flight -= 1


# ----------------------------------------------------------------------------------------------------------
# Node access
# ----------------------------------------------------------------------------------------------------------


def _tenant_names(node: Any) -> list[str]:
    names = getattr(node, "tenant_names", None)
    if names is None:
        names = list(node.tenants)
    return list(names() if callable(names) else names)


def _unknown(node: Any, name: str, what: str = "model") -> ModelNotFoundError:
    served = ", ".join(_tenant_names(node)) or "(none)"
    return ModelNotFoundError(f"unknown {what} {name!r}; served: {served}")


def _model(request: web.Request) -> kserve.ModelInfo:
    """The :class:`ModelInfo` of the URL's model (404 unknown model or version, 503 no ready worker yet)."""
    name = request.match_info["name"]
    version = request.match_info.get("version")
    node = request.app[NODE_KEY]
    if name not in _tenant_names(node):
        raise _unknown(node, name)
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


def _readiness(node: Any, stats: dict[str, Any]) -> dict[str, bool]:
    """Tenant → has at least one ready worker (and the node is running)."""
    running = getattr(node, "state", "running") == "running"
    return {n: running and bool((stats.get(n) or {}).get("workers")) for n in _tenant_names(node)}


async def _read_json_object(request: web.Request, what: str) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise ProtocolError(f"empty body: {what} needs a JSON object")
    body = kserve._parse_json(raw, "request body")
    if not isinstance(body, dict):
        raise ProtocolError(f"{what} body must be a JSON object")
    return body


# ----------------------------------------------------------------------------------------------------------
# KServe v2 handlers
# ----------------------------------------------------------------------------------------------------------


async def _live(request: web.Request) -> web.Response:
    return _json({"live": True})


async def _ready(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    ready = _readiness(node, await asyncio.to_thread(node.stats))
    not_ready = sorted(n for n, ok in ready.items() if not ok)
    if not ready or not_ready:
        why = (f"tenants without a ready worker: {', '.join(not_ready)}" if ready
               else "the node serves no tenant")
        if getattr(node, "state", "running") != "running":
            why = f"node is {node.state}"
        return _json({"ready": False, "error": why}, status=503)
    return _json({"ready": True})


async def _server_metadata(request: web.Request) -> web.Response:
    return _json(kserve.server_metadata(hera.__version__))


async def _model_metadata(request: web.Request) -> web.Response:
    return _json(_model(request).metadata())


async def _model_ready(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    node = request.app[NODE_KEY]
    if name not in _tenant_names(node):
        raise _unknown(node, name)
    if request.match_info.get("version", kserve.MODEL_VERSION) != kserve.MODEL_VERSION:
        raise ModelNotFoundError(f"model {name!r} has no version {request.match_info['version']!r}")
    if not _readiness(node, await asyncio.to_thread(node.stats)).get(name):
        return _json({"name": name, "ready": False, "error": f"model {name!r} has no ready worker"},
                     status=503)
    return _json({"name": name, "ready": True})


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
    state: _State = request.app[STATE_KEY]
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


# ----------------------------------------------------------------------------------------------------------
# Control API and metrics
# ----------------------------------------------------------------------------------------------------------


def _tenant_name(request: web.Request) -> str:
    name = request.match_info["name"]
    node = request.app[NODE_KEY]
    if name not in _tenant_names(node):
        raise _unknown(node, name, "tenant")
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
    node = request.app[NODE_KEY]
    return _json(await asyncio.to_thread(node.stats))


async def _resize(request: web.Request) -> web.Response:
    name = _tenant_name(request)
    body = await _read_json_object(request, "resize")
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
    return _json(out)


async def _llc(request: web.Request) -> web.Response:
    name = _tenant_name(request)
    body = await _read_json_object(request, "llc")
    _only_keys(body, {"ways"}, "llc")
    ways = body["ways"]
    if not _is_int(ways) or ways < 1:
        raise ProtocolError(f"llc: 'ways' must be an integer >= 1, got {ways!r}")
    node = request.app[NODE_KEY]
    ret = await asyncio.to_thread(node.set_llc_ways, name, ways)
    out: dict[str, Any] = {"tenant": name, "ways": ways}
    if ret is not None:
        out["result"] = ret
    return _json(out)


async def _membw(request: web.Request) -> web.Response:
    name = _tenant_name(request)
    body = await _read_json_object(request, "membw")
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
    return _json(out)


_METRIC_RE = re.compile(r"[^a-zA-Z0-9_]")
_QUANTILE_RE = re.compile(r"^(?:latency_)?(?:ms_)?p(\d+(?:\.\d+)?)(?:_ms)?$")


def _metric_name(*parts: str) -> str:
    name = "_".join(_METRIC_RE.sub("_", p) for p in parts if p)
    return re.sub(r"_+", "_", name).strip("_")


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


class _Samples:
    """Collects samples by metric name so that each metric's HELP/TYPE precede all its samples."""

    def __init__(self) -> None:
        self.by_name: dict[str, list[str]] = {}
        self.types: dict[str, str] = {}
        self.helps: dict[str, str] = {}

    def add(self, name: str, labels: dict[str, Any], value: float, kind: str = "gauge",
            help: str = "") -> None:
        lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        sample = f"{name}{{{lab}}} {_fmt(value)}" if lab else f"{name} {_fmt(value)}"
        self.by_name.setdefault(name, []).append(sample)
        self.types.setdefault(name, kind)
        self.helps.setdefault(name, help or name.replace("_", " "))

    def text(self) -> str:
        lines = []
        for name, samples in self.by_name.items():
            lines.append(f"# HELP {name} {self.helps[name]}")
            lines.append(f"# TYPE {name} {self.types[name]}")
            lines.extend(samples)
        return "\n".join(lines) + "\n"


def _flatten(out: _Samples, prefix: str, labels: dict[str, Any], stats: Any, info: dict[str, str],
             path: str = "") -> None:
    for key, value in stats.items():
        key = str(key)
        full = f"{path}_{key}" if path else key
        if isinstance(value, dict):
            _flatten(out, prefix, labels, value, info, full)
        elif isinstance(value, (bool, np.bool_)):
            out.add(_metric_name(prefix, full), labels, float(value))
        elif isinstance(value, (int, float, np.integer, np.floating)):
            m = _QUANTILE_RE.match(key)
            if m:
                q = float(m.group(1)) / 100
                out.add(_metric_name(prefix, path, "latency_ms"), {**labels, "quantile": _fmt(q)},
                        float(value), "summary", "query latency quantiles in milliseconds")
            else:
                kind = "counter" if key.endswith("_total") else "gauge"
                out.add(_metric_name(prefix, full), labels, float(value), kind)
        elif isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
            items = list(value)
            numeric = (int, float, np.integer, np.floating)
            if all(isinstance(v, numeric) and not isinstance(v, bool) for v in items):
                out.add(_metric_name(prefix, full, "count"), labels, float(len(items)), "gauge",
                        f"number of entries of {full}")
        elif isinstance(value, str):
            info[_metric_name(full)] = value
        # None and other types carry no sample


def generic_prometheus(node_stats: dict[str, Any]) -> str:
    """Prometheus text of any ``node.stats()``-shaped dict (fallback without ``hera.server.stats``).

    Per tenant (label ``tenant``): every numeric field as ``hera_tenant_<field>`` (nested dicts joined by
    ``_``; fields ending ``_total`` are counters, the rest gauges), latency quantile fields (``p95_ms``,
    ``latency_ms_p95`` …) as ``hera_tenant_latency_ms{quantile="0.95"}``, numeric lists (``cores``) as
    ``hera_tenant_<field>_count``, and string fields as labels of ``hera_tenant_info``. Non-dict top-level
    fields become ``hera_node_<field>``.
    """
    out = _Samples()
    node_info: dict[str, str] = {}
    node_level: dict[str, Any] = {}
    for tenant, tstats in node_stats.items():
        if isinstance(tstats, dict):
            info: dict[str, str] = {}
            _flatten(out, "hera_tenant", {"tenant": tenant}, tstats, info)
            out.add("hera_tenant_info", {"tenant": tenant, **info}, 1.0, "gauge",
                    "tenant description (labels)")
        else:
            node_level[str(tenant)] = tstats
    if node_level:
        _flatten(out, "hera_node", {}, node_level, node_info)
        if node_info:
            out.add("hera_node_info", node_info, 1.0, "gauge", "node description (labels)")
    return out.text() if out.by_name else ""


def _http_prometheus(state: _State) -> str:
    out = _Samples()
    for (route, code), n in sorted(state.requests.items()):
        out.add("hera_http_requests_total", {"route": route, "code": code}, n, "counter",
                "HTTP requests served")
    for tenant in sorted(state.infer_count):
        out.add("hera_http_infer_seconds_sum", {"tenant": tenant}, state.infer_latency_s_sum[tenant],
                "counter", "time spent in successful infer requests (front-end view)")
        out.add("hera_http_infer_seconds_count", {"tenant": tenant}, state.infer_count[tenant], "counter",
                "successful infer requests")
    out.add("hera_http_in_flight_requests", {}, state.in_flight, "gauge", "HTTP requests being served")
    return out.text()


def _node_renderer() -> Callable[[dict[str, Any]], str]:
    """``hera.server.stats.render_prometheus`` (the runtime's renderer), else :func:`generic_prometheus`."""
    try:
        from hera.server.stats import render_prometheus
    except ImportError:
        return generic_prometheus
    return render_prometheus


def render_metrics(node_stats: dict[str, Any], state: _State | None = None) -> str:
    """The ``/metrics`` page: the node's per-tenant metrics, then the front end's HTTP counters."""
    text = _node_renderer()(node_stats)
    return text + (_http_prometheus(state) if state is not None else "")


async def _metrics(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    stats = await asyncio.to_thread(node.stats)
    text = render_metrics(stats, request.app[STATE_KEY])
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Prometheus-Format": "0.0.4"})


# ----------------------------------------------------------------------------------------------------------
# App, server, client
# ----------------------------------------------------------------------------------------------------------


def make_app(node: Any, *, max_body_bytes: int = MAX_BODY_BYTES) -> web.Application:
    """The aiohttp application serving ``node`` (see the module docstring for the endpoints)."""
    app = web.Application(middlewares=[_errors_and_counts], client_max_size=max_body_bytes)
    app[NODE_KEY] = node
    app[STATE_KEY] = _State()
    r = app.router
    r.add_get("/v2/health/live", _live)
    r.add_get("/v2/health/ready", _ready)
    r.add_get("/v2", _server_metadata)
    for base in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        r.add_get(base, _model_metadata)
        r.add_get(base + "/ready", _model_ready)
        r.add_post(base + "/infer", _infer)
    r.add_get("/metrics", _metrics)
    r.add_get("/hera/v1/stats", _stats)
    r.add_post("/hera/v1/tenants/{name}/resize", _resize)
    r.add_post("/hera/v1/tenants/{name}/llc", _llc)
    r.add_post("/hera/v1/tenants/{name}/membw", _membw)
    return app


async def _start(node: Any, host: str, port: int, **app_kw: Any) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(make_app(node, **app_kw), access_log=None, shutdown_timeout=10.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, int(bound)


def run_http(node: Any, host: str = "127.0.0.1", port: int = 8000, *,
             on_ready: Callable[[str], None] | None = None, **app_kw: Any) -> None:
    """Serve ``node`` on ``host:port`` until SIGINT or SIGTERM, then shut down cleanly and return.

    In-flight requests finish before this returns (up to 10 s); stopping the node is the caller's job, after
    this returns. ``on_ready(url)`` is called once the socket listens (``port=0`` picks a free port);
    without it one line ``hera: serving KServe v2 on <url>`` is printed.
    """
    async def serve() -> None:
        runner, bound = await _start(node, host, port, **app_kw)
        url = f"http://{host}:{bound}"
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            if on_ready is not None:
                on_ready(url)
            else:
                print(f"hera: serving KServe v2 on {url}", flush=True)
            await stop.wait()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            await runner.cleanup()

    asyncio.run(serve())


class BackgroundServer:
    """Serve a node on a private event loop in a daemon thread (tests, notebooks, in-process benchmarks).

    ``with BackgroundServer(node) as srv: requests to srv.url`` — ``port=0`` picks a free port on ``host``.
    """

    def __init__(self, node: Any, host: str = "127.0.0.1", port: int = 0, **app_kw: Any):
        self.node, self.host, self.port = node, host, port
        self._app_kw = app_kw
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "BackgroundServer":
        self._thread = threading.Thread(target=self._run, name="hera-http", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise ResourceError(f"HTTP server could not listen on {self.host}:{self.port}: {self._error}")
        return self

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            started = _start(self.node, self.host, self.port, **self._app_kw)
            self._runner, self.port = loop.run_until_complete(started)
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self._error = exc
            self._started.set()
            loop.close()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=15)

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class RemoteNode:
    """The control side of a node reached over HTTP (what the node manager uses for a remote server).

    Mirrors the Node's control methods: ``stats()``, ``resize(tenant, cores)``,
    ``set_llc_ways(tenant, ways)``, ``set_mem_bw(tenant, percent)``; plus ``ready()``. Errors raise
    :class:`HttpControlError` with the server's one-line message. Standard library only (urllib), so it can
    run anywhere.
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

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/hera/v1/stats")

    def resize(self, tenant: str, cores: list[int]) -> dict[str, Any]:
        return self._call("POST", f"/hera/v1/tenants/{tenant}/resize", {"cores": [int(c) for c in cores]})

    def set_llc_ways(self, tenant: str, ways: int) -> dict[str, Any]:
        return self._call("POST", f"/hera/v1/tenants/{tenant}/llc", {"ways": int(ways)})

    def set_mem_bw(self, tenant: str, percent: int) -> dict[str, Any]:
        return self._call("POST", f"/hera/v1/tenants/{tenant}/membw", {"percent": int(percent)})
