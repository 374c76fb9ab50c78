"""Errors of the serving runtime; each maps to one HTTP status in the front end.

========================  ====================================================  ======
error                     when                                                  HTTP
========================  ====================================================  ======
``UnknownTenantError``    a tenant name the node does not serve                  404
``BadRequestError``       query size 0 or above ``max_items``, bad arrays …       400
``QueueFull``             the tenant's bounded queue is full (overload)          503
``NodeStoppedError``      the node is not started, or is stopping                503
``WorkerStartError``      a worker could not load its model at start-up          —
========================  ====================================================  ======
"""

from __future__ import annotations

from hera.errors import HeraError


class ServerError(HeraError):
    """Base class of the serving runtime's user-facing errors."""


class UnknownTenantError(ServerError):
    """A tenant name that the node does not serve."""


class BadRequestError(ServerError):
    """A malformed query (size out of range, wrong array shapes, sample index outside the library)."""


class QueueFull(ServerError):
    """The tenant's queue holds ``queue_limit`` waiting queries: the query is rejected (overload)."""


class NodeStoppedError(ServerError):
    """The node is not running (not started yet, or stopping)."""


class WorkerStartError(ServerError):
    """A worker process failed while loading its model or pinning its cores."""
