"""What every HTTP handler shares: app keys, the error → status mapping, strict JSON responses, the front-end
counters and the middleware that turns every exception into ``{"error": "<one line>"}``."""

from __future__ import annotations

import collections
import json
import logging
import math
import time
from typing import Any, Callable

import numpy as np
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from hera.errors import ConfigError, HeraError, ResourceError
from hera.server import kserve
from hera.server.errors import BadRequestError, NodeStoppedError, QueueFull, UnknownTenantError
from hera.server.kserve import ModelNotFoundError, ProtocolError

log = logging.getLogger("hera.server.http")

NODE_KEY = web.AppKey("hera_node", object)
STATE_KEY = web.AppKey("hera_http_state", object)

#: Largest request body accepted (a JSON query of 1024 RMC3 items is about 54 MB).
MAX_BODY_BYTES = 256 * 1024 * 1024
#: Request ``Content-Encoding`` values whose bodies are decoded (by aiohttp) before a handler reads them.
CONTENT_ENCODINGS = ("identity", "gzip", "deflate", "br")


def check_content_encoding(request: web.Request) -> None:
    """400 for a body whose ``Content-Encoding`` is not one coding we decode (an unknown coding, or a list of
    codings, would otherwise reach the JSON parser still encoded)."""
    enc = request.headers.get("Content-Encoding")
    if enc is not None and enc.strip().lower() not in CONTENT_ENCODINGS:
        raise ProtocolError(f"unsupported Content-Encoding {enc!r}; supported: {', '.join(CONTENT_ENCODINGS)}",
                            status=400)


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


def json_response(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(obj, status=status, dumps=_dumps)


class HttpState:
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
async def errors_and_counts(request: web.Request, handler: Callable) -> web.StreamResponse:
    state: HttpState = request.app[STATE_KEY]
    state.in_flight += 1
    try:
        try:
            check_content_encoding(request)
            resp = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            resp = json_error(exc.status, _http_exc_message(request, exc))
            if exc.status == 405:
                resp.headers["Allow"] = exc.headers.get("Allow", "")
        except (HeraError, ProtocolError) as exc:
            resp = json_error(error_status(exc), exc)
        except RequestPayloadError as exc:  # a body that cannot be decoded (corrupt gzip/deflate/br)
            enc = request.headers.get("Content-Encoding", "identity")
            why = str(exc).split("message:", 1)[-1]  # aiohttp's "400, message: Can not decode ..."
            resp = json_error(400, f"request body cannot be decoded (Content-Encoding {enc!r}): {why}")
            resp.force_close()  # answer, then close: the rest of this connection's byte stream cannot be trusted
            request.content.feed_eof()  # nothing more to read from this body (aiohttp would re-raise draining it)
        except Exception as exc:  # a bug: keep the server up, say what happened
            log.exception("unhandled error in %s %s", request.method, request.path)
            resp = json_error(500, f"internal error: {type(exc).__name__}: {exc}")
        state.requests[(_route_name(request), resp.status)] += 1
        return resp
    finally:
        state.in_flight -= 1


def tenant_names(node: Any) -> list[str]:
    names = getattr(node, "tenant_names", None)
    if names is None:
        names = list(node.tenants)
    return list(names() if callable(names) else names)


def unknown_name(node: Any, name: str, what: str = "model") -> ModelNotFoundError:
    served = ", ".join(tenant_names(node)) or "(none)"
    return ModelNotFoundError(f"unknown {what} {name!r}; served: {served}")


async def read_json_object(request: web.Request, what: str) -> dict[str, Any]:
    raw = await request.read()
    if not raw:
        raise ProtocolError(f"empty body: {what} needs a JSON object")
    body = kserve._parse_json(raw, "request body")
    if not isinstance(body, dict):
        raise ProtocolError(f"{what} body must be a JSON object")
    return body


