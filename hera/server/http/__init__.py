"""The node's network front end: KServe v2 / Open Inference Protocol over HTTP, metrics and a control API.

One module per job: :mod:`~hera.server.http.kserve_api` (KServe v2 handlers), :mod:`~hera.server.http.control_api`
(control API), :mod:`~hera.server.http.metrics` (``/metrics``), :mod:`~hera.server.http.common` (errors, JSON,
counters), :mod:`~hera.server.http.app` (application and lifecycle), :mod:`~hera.server.http.client`
(:class:`RemoteNode`, the control side over HTTP).

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

from hera.server.http.app import BackgroundServer, make_app, run_http
from hera.server.http.client import HttpControlError, RemoteNode
from hera.server.http.common import MAX_BODY_BYTES, error_status, json_error
from hera.server.http.metrics import render_metrics

__all__ = ["MAX_BODY_BYTES", "BackgroundServer", "HttpControlError", "RemoteNode", "error_status", "json_error",
           "make_app", "render_metrics", "run_http"]
