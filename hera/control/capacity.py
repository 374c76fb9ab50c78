"""What the controllers need to know about measured capacities, as structural types.

The controllers sit below the policy layer and never import it: whoever builds a controller passes in an
object with these methods. :class:`hera.policy.profiles.Profiles` (measured profile tables) is one; a test
may pass any other object with the same methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class NodeShape(Protocol):
    """A node's resources: ``cores`` (one worker per core) and LLC ``llc_ways`` (None without resctrl)."""

    @property
    def cores(self) -> int: ...

    @property
    def llc_ways(self) -> int | None: ...


class SplitCapacity(Protocol):
    """One way to split a node between tenants a and b, and the QPS* each then sustains."""

    @property
    def cores_a(self) -> int: ...

    @property
    def ways_a(self) -> int | None: ...

    @property
    def qps_a(self) -> float: ...

    @property
    def qps_b(self) -> float: ...


class CapacityProfiles(Protocol):
    """Capacity lookups on profile tables (isolated and co-located QPS*, SLAs)."""

    @property
    def node(self) -> NodeShape: ...

    def sla_ms(self, model: str) -> float:
        """The model's SLA in milliseconds."""

    def qps_alone(self, model: str, workers: int | None = None) -> float:
        """QPS* of the model alone with ``workers`` workers (None: its best on the whole node)."""

    def capacity(self, a: str, b: str, cores_a: int, ways_a: int | None = None,
                 load: tuple[float, float] | None = None) -> tuple[float, float]:
        """(QPS*_a, QPS*_b) of a and b sharing the node, a holding ``cores_a`` cores (``ways_a`` ways); with
        ``load`` = (load_a, load_b), each tenant's capacity while the other carries its load."""

    def splits(self, a: str, b: str) -> Sequence[SplitCapacity]:
        """Every profiled operating point of the node between a and b (``cores_a`` is a's); a split may have
        several (points of its feasible region, one per ray of the two tenants' rates)."""

    def split_for_load(self, a: str, b: str, load_a: float, load_b: float, ways: str = "any",
                       near: tuple[int, int | None] | None = None) -> SplitCapacity:
        """The split with most headroom ``min(QPS*_a / load_a, QPS*_b / load_b)`` for the offered loads."""

    def nearest_split(self, a: str, b: str, cores_a: int, ways_a: int | None = None,
                      load: tuple[float, float] | None = None) -> SplitCapacity:
        """A point of the profiled split with ``cores_a`` cores (``ways_a`` ways) for a, or of the nearest one
        (for ``load`` = (load_a, load_b) when given)."""
