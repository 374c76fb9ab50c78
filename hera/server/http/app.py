"""The front end's lifecycle: the aiohttp application, serving until a signal (:func:`run_http`), and serving
from a background thread (:class:`BackgroundServer`)."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any, Callable

from aiohttp import web

from hera.errors import ResourceError
from hera.server.http import control_api, kserve_api, metrics
from hera.server.http.common import MAX_BODY_BYTES, NODE_KEY, STATE_KEY, HttpState, errors_and_counts


def make_app(node: Any, *, max_body_bytes: int = MAX_BODY_BYTES) -> web.Application:
    """The aiohttp application serving ``node`` (endpoints: :mod:`hera.server.http`)."""
    app = web.Application(middlewares=[errors_and_counts], client_max_size=max_body_bytes)
    app[NODE_KEY] = node
    app[STATE_KEY] = HttpState()
    kserve_api.add_routes(app.router)
    metrics.add_routes(app.router)
    control_api.add_routes(app.router)
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

