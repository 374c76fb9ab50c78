"""``GET /metrics``: the node's per-tenant metrics (:func:`hera.server.stats.render_prometheus`, the one renderer)
followed by the front end's own HTTP counters, in the Prometheus text exposition format."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from hera.server.http.common import NODE_KEY, STATE_KEY, HttpState
from hera.server.stats import metric_family, render_prometheus


def http_prometheus(state: HttpState) -> str:
    """The front end's counters: requests by route and status, infer time and count per tenant, in flight."""
    requests = [("hera_http_requests_total", {"route": route, "code": code}, n)
                for (route, code), n in sorted(state.requests.items())]
    tenants = sorted(state.infer_count)
    lines = metric_family("hera_http_requests_total", "counter", "HTTP requests served", requests)
    lines += metric_family("hera_http_infer_seconds_sum", "counter",
                           "time spent in successful infer requests (front-end view)",
                           [("hera_http_infer_seconds_sum", {"tenant": t}, state.infer_latency_s_sum[t])
                            for t in tenants])
    lines += metric_family("hera_http_infer_seconds_count", "counter", "successful infer requests",
                           [("hera_http_infer_seconds_count", {"tenant": t}, state.infer_count[t]) for t in tenants])
    lines += metric_family("hera_http_in_flight_requests", "gauge", "HTTP requests being served",
                           [("hera_http_in_flight_requests", {}, state.in_flight)])
    return "\n".join(lines) + "\n"


def render_metrics(node_stats: Any, state: HttpState | None = None) -> str:
    """The ``/metrics`` page: the node's per-tenant metrics, then the front end's HTTP counters."""
    return render_prometheus(node_stats) + (http_prometheus(state) if state is not None else "")


async def _metrics(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    stats = await asyncio.to_thread(node.stats)
    text = render_metrics(stats, request.app[STATE_KEY])
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Prometheus-Format": "0.0.4"})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/metrics", _metrics)
