"""``hera serve --config FILE [--port P] [--duration-s S]``: run a serving node (and its HTTP front end).

Starts the node from a server config (``workflow/config/server-example.yaml``), then serves KServe v2 over
HTTP through ``hera.server.http.run_http`` (``--no-http`` to skip it), until
Ctrl-C / SIGTERM or ``--duration-s``. On a terminal a live per-tenant table is shown. On exit the node drains
its queries and the final ``node.stats()`` is printed as one JSON object (the last line of stdout).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run a multi-tenant inference node from a server config (KServe v2 HTTP)")
    p.add_argument("--config", required=True, type=Path, help="server config YAML (tenants, cores, batch sizes)")
    p.add_argument("--host", help="HTTP host (default: config http.host)")
    p.add_argument("--port", type=int, help="HTTP port (default: config http.port; 0 picks a free one)")
    p.add_argument("--duration-s", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--no-http", action="store_true", help="do not start the HTTP front end")
    p.set_defaults(func=_cmd_serve)


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _cmd_serve(args: argparse.Namespace) -> int:
    from hera.server import config as cfgmod
    from hera.server.control import stats_json
    from hera.server.http import run_http
    from hera.server.node import Node
    from hera.server.stats import stats_table

    logging.basicConfig(level=logging.INFO, format="hera: %(message)s")
    log = logging.getLogger("hera.server")
    cfg = cfgmod.load(args.config)
    http = {"host": args.host or cfg.http.host, "port": cfg.http.port if args.port is None else args.port}
    cfg = cfgmod.load(args.config, overrides={"http": http})
    node = Node(cfg)
    log.info("starting %d tenant(s): %s", len(cfg.tenants),
             ", ".join(f"{t.name}={t.model} cores {list(t.cores)}" for t in cfg.tenants))
    node.start()
    stop = threading.Event()
    timer = None
    if args.duration_s:
        # run_http stops on SIGTERM; the plain wait below stops on the event
        timer = threading.Timer(args.duration_s, lambda: (stop.set(), os.kill(os.getpid(), signal.SIGTERM)))
        timer.daemon = True
    live = None
    if sys.stdout.isatty():
        from rich.live import Live

        live = Live(get_renderable=lambda: stats_table(node.stats()), refresh_per_second=1)
        live.start()
    try:
        if not args.no_http:
            signal.signal(signal.SIGTERM, _raise_interrupt)  # until run_http installs its own handlers
            if timer:
                timer.start()
            run_http(node, http["host"], http["port"],
                     on_ready=lambda url: log.info("serving KServe v2 on %s", url))
        else:
            prev = signal.signal(signal.SIGTERM, lambda *_: stop.set())
            if timer:
                timer.start()
            try:
                while not stop.wait(0.5):
                    pass
            finally:
                signal.signal(signal.SIGTERM, prev)
    except KeyboardInterrupt:
        pass
    finally:
        if timer:
            timer.cancel()
        if live is not None:
            live.stop()
        node.stop(drain=True)
    print(json.dumps({"stats": stats_json(node.stats()), "llc_partitioning": node.llc_partitioning,
                      "config": cfgmod.to_dict(cfg)}, default=str))
    return 0
