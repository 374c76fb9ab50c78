"""The multi-tenant inference server: tenants with pinned worker processes, run-time resource control.

Public API (see ``docs/DESIGN.md``, "Server API"): :class:`Node`, :class:`NodeConfig`, :class:`TenantConfig`,
:func:`load_config`, :class:`QueryResult`, the errors of :mod:`hera.server.errors`, the typed control interface
(:class:`NodeControl`, :class:`TenantSnapshot`, :mod:`hera.server.control`) and :func:`render_prometheus` for
``/metrics``. The node process never imports torch (workers do).
"""

from hera.server.config import HttpConfig, NodeConfig, TenantConfig
from hera.server.config import from_dict as config_from_dict
from hera.server.config import load as load_config
from hera.server.control import NodeControl, TenantSnapshot
from hera.server.errors import (BadRequestError, NodeStoppedError, QueueFull, ServerError, UnknownTenantError,
                                WorkerStartError)
from hera.server.node import Node
from hera.server.query import QueryResult
from hera.server.stats import render_prometheus, stats_table

__all__ = [
    "BadRequestError", "HttpConfig", "Node", "NodeConfig", "NodeControl", "NodeStoppedError", "QueryResult", "QueueFull",
    "ServerError", "TenantConfig", "TenantSnapshot", "UnknownTenantError", "WorkerStartError", "config_from_dict", "load_config",
    "render_prometheus", "stats_table",
]
