"""Node controllers: turn per-interval observations of a node into resource moves, and apply them.

- :mod:`~hera.control.moves` — what a controller reads of a tenant's
  :class:`~hera.server.control.TenantSnapshot` (:func:`slack`, :func:`units`) and :class:`Move` (one unit of a
  resource between tenants or the free pool);
- :mod:`~hera.control.parties` — :class:`PartiesController`, reactive and model-free (PARTIES);
- :mod:`~hera.control.profile_guided` — :class:`HeraManager`, Hera's profile-guided node manager;
- :mod:`~hera.control.loop` — :class:`NodeManagerLoop`, which polls any :class:`hera.server.control.NodeControl`
  and applies moves;
- :mod:`~hera.control.simulated` — :class:`SimulatedNode`, a profile-driven stand-in node (no server);
- :mod:`~hera.control.capacity` — the capacity lookups the controllers need, as a ``Protocol``.

The controllers read nodes only through the server's typed control interface (:mod:`hera.server.control`).
This layer sits below the policies and the experiments and never imports them: a controller that needs
measured profiles is handed an object with the :class:`~hera.control.capacity.CapacityProfiles` methods.
"""

from hera.control.capacity import CapacityProfiles
from hera.control.loop import Controller, NodeManagerLoop
from hera.control.moves import RESOURCES, Move, slack, units
from hera.control.parties import PartiesConfig, PartiesController
from hera.control.profile_guided import HeraConfig, HeraManager
from hera.control.simulated import SimulatedNode, tail_ratio

__all__ = ["RESOURCES", "CapacityProfiles", "Controller", "HeraConfig", "HeraManager", "Move", "NodeManagerLoop",
           "PartiesConfig", "PartiesController", "SimulatedNode", "slack", "tail_ratio", "units"]
