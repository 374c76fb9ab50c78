"""The one policy interface, the plan types and the registry.

A policy turns a list of models (and optionally their offered loads) into a :data:`Plan`: which models share
a node and how the node's cores and LLC ways are split between them::

    class MyPolicy(Policy):
        name = "mine"
        def plan(self, models, profiles, demand_qps=None, rng=None) -> Plan: ...
    register(MyPolicy)          # in hera/policy/mine.py, plus one import line in hera/policy/__init__.py

Conventions shared by all policies:

- every model of ``models`` is placed on exactly one node of the plan; a node holds one or two tenants;
- ``demand_qps`` is the offered load per model. Policies use it only for its *ratios* and size relative to a
  node (see :func:`node_load`); ``None`` means "each model offers half a node of work" (``0.5 × QPS*_alone``);
- ``rng`` is a ``numpy.random.Generator`` (one seed per source of randomness); deterministic policies
  ignore it.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
import pandas as pd

from hera.errors import ConfigError
from hera.policy.profiles import ProfiledSplit, Profiles, emu, point_for_demand

#: Default planning load when no demand is given: each model offers this fraction of its alone capacity.
DEFAULT_LOAD_FRAC = 0.5


@dataclass(frozen=True)
class TenantShare:
    """One tenant of a node: its model, cores (= workers), LLC ways (None = shared / no resctrl) and the
    QPS* it sustains there within its SLA."""

    model: str
    cores: int
    llc_ways: int | None
    capacity_qps: float


#: Where a node's capacities come from (``NodePlan.evaluated_on``), from best to worst: the measured point of
#: the split the policy chose, a measured point of the nearest measured split (the chosen one was not
#: measured), or the prediction itself (the pair was never measured).
EVALUATIONS = ("measured", "measured, nearest split", "predicted")


@dataclass(frozen=True)
class NodePlan:
    """One node: its tenants, its EMU (:func:`hera.policy.profiles.emu`) on the tenants' capacities, what the
    policy decided from (``decided_on``: measured | predicted co-location points; single-tenant nodes:
    measured) and where the capacities come from (``evaluated_on``, one of :data:`EVALUATIONS`). A node
    decided on predictions carries the predicted point too: its EMU (``predicted_emu``) and ray
    (``predicted_share_a``)."""

    tenants: tuple[TenantShare, ...]
    emu: float
    decided_on: str = "measured"
    evaluated_on: str = "measured"
    predicted_emu: float | None = None
    predicted_share_a: float | None = None

    @classmethod
    def of(cls, tenants: Sequence[TenantShare], profiles: Profiles, **how) -> NodePlan:
        tenants = tuple(tenants)
        return cls(
            tenants,
            emu([t.capacity_qps for t in tenants], [profiles.qps_alone(t.model) for t in tenants]),
            **how,
        )

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(t.model for t in self.tenants)

    def to_dict(self) -> dict:
        out = {
            "tenants": [asdict(t) for t in self.tenants],
            "emu": self.emu,
            "decided_on": self.decided_on,
            "evaluated_on": self.evaluated_on,
        }
        if self.predicted_emu is not None:
            out |= {"predicted_emu": self.predicted_emu, "predicted_share_a": self.predicted_share_a}
        return out


Plan = list[NodePlan]


class Policy(ABC):
    """Place models on nodes. Subclasses set ``name`` and implement :meth:`plan`.

    ``adaptive_split`` tells cluster provisioning whether the node re-splits at run time for its load (Hera's
    node manager does), so that each copy of a node plan may use any profiled split of its pair.
    """

    name: ClassVar[str] = ""
    adaptive_split: ClassVar[bool] = False

    @abstractmethod
    def plan(
        self,
        models: Sequence[str],
        profiles: Profiles,
        demand_qps: Mapping[str, float] | None = None,
        rng: np.random.Generator | None = None,
    ) -> Plan:
        """Group ``models`` onto nodes and split each node's resources."""


#: name → policy class; each policy module registers itself with :func:`register`.
POLICIES: dict[str, type[Policy]] = {}


def register(cls: type[Policy]) -> type[Policy]:
    if not cls.name:
        raise ConfigError(f"policy class {cls.__name__} has no name")
    POLICIES[cls.name] = cls
    return cls


def get_policy(name: str, **options) -> Policy:
    """An instance of the policy called ``name``; ConfigError naming the known ones otherwise."""
    if name not in POLICIES:
        raise ConfigError(f"unknown policy '{name}'; known: {', '.join(sorted(POLICIES))}")
    return POLICIES[name](**options)


# -------------------------------------------------------------------- helpers shared by policies
def check_demand(models: Sequence[str], demand_qps: Mapping[str, float] | None) -> dict[str, float] | None:
    """Validate a demand mapping: one finite, non-negative rate per model."""
    if demand_qps is None:
        return None
    out = {}
    for m in models:
        if m not in demand_qps:
            raise ConfigError(f"demand has no load for model '{m}'")
        d = float(demand_qps[m])
        if not np.isfinite(d) or d < 0:
            raise ConfigError(f"demand for model '{m}' must be a finite rate >= 0, got {demand_qps[m]!r}")
        out[m] = d
    return out


def node_load(
    models: Sequence[str], profiles: Profiles, demand_qps: Mapping[str, float] | None
) -> dict[str, float]:
    """The load one node holding ``models`` is planned for: the demanded rates scaled so that together they
    are
    one node of isolated work, ``Σ_i d_i / QPS*_i,alone = 1`` (keeps the demanded ratio); without demand each
    model offers ``DEFAULT_LOAD_FRAC × QPS*_alone`` (one node of work for a pair)."""
    alone = {m: profiles.qps_alone(m) for m in models}
    if demand_qps is None:
        return {m: DEFAULT_LOAD_FRAC * alone[m] for m in models}
    units = sum(demand_qps[m] / alone[m] for m in models)
    if units <= 0:
        return {m: DEFAULT_LOAD_FRAC * alone[m] for m in models}
    return {m: demand_qps[m] / units for m in models}


def pair_load(a: str, b: str, profiles: Profiles, demand: dict | None) -> tuple[float, float] | None:
    """The (load_a, load_b) a node holding a and b is planned for (:func:`~hera.policy.base.node_load`)."""
    if demand is None:
        return None
    load = node_load([a, b], profiles, demand)
    return load[a], load[b]


def decide_pair(
    a: str, b: str, profiles: Profiles, load: tuple[float, float] | None, source: str = "predicted"
) -> ProfiledSplit | None:
    """The point of ``source`` the pair would run at (None: no point where both tenants meet their SLA).
    ConfigError naming what is missing when the pair has no points of ``source``."""
    points = profiles.splits(a, b, source)
    if not any(s.qps_a > 0 and s.qps_b > 0 for s in points):
        return None
    return point_for_demand(points, load)


def single_node(model: str, profiles: Profiles, decided_on: str = "measured") -> NodePlan:
    """The baseline: one model alone at its best worker count, whole LLC (EMU = 1). ``decided_on``: what the
    decision to keep it alone was taken on (its capacity is always the measured isolated QPS*)."""
    share = TenantShare(model, profiles.best_workers(model), profiles.node.llc_ways, profiles.qps_alone(model))
    return NodePlan.of([share], profiles, decided_on=decided_on)


def pair_node(
    a: str,
    b: str,
    split: ProfiledSplit,
    profiles: Profiles,
    decision: ProfiledSplit | None = None,
    evaluated_on: str | None = None,
) -> NodePlan:
    """A node of tenants a and b at the point ``split``. ``decision``: the predicted point the policy chose,
    when ``split`` is its evaluation on measurements (``evaluated_on`` says how it was found)."""
    how = {}
    if decision is not None:
        how = {
            "decided_on": decision.source,
            "predicted_emu": decision.emu,
            "predicted_share_a": decision.share_a,
            "evaluated_on": evaluated_on or ("predicted" if split.source == "predicted" else "measured"),
        }
    elif split.source != "measured":
        how = {"decided_on": split.source, "evaluated_on": split.source}
    return NodePlan.of(
        [
            TenantShare(a, split.cores_a, split.ways_a, split.qps_a),
            TenantShare(b, split.cores_b, split.ways_b, split.qps_b),
        ],
        profiles,
        **how,
    )


#: Columns of ``policy/emu.csv``.
EMU_COLUMNS = ["policy", "mix", "node", "tenants", "emu", "decided_on", "evaluated_on", "predicted_emu"]


def plan_table(plan: Plan, policy: str, mix: str = "all") -> pd.DataFrame:
    """Tidy rows for ``policy/emu.csv``: policy, mix, node, tenants ("a+b"), emu (on the capacities the node
    is evaluated on), decided_on, evaluated_on, predicted_emu (NaN unless decided on predictions)."""
    return pd.DataFrame(
        [
            {
                "policy": policy,
                "mix": mix,
                "node": i,
                "tenants": "+".join(n.models),
                "emu": n.emu,
                "decided_on": n.decided_on,
                "evaluated_on": n.evaluated_on,
                "predicted_emu": np.nan if n.predicted_emu is None else n.predicted_emu,
            }
            for i, n in enumerate(plan)
        ],
        columns=EMU_COLUMNS,
    )


def mean_emu(plan: Plan) -> float:
    """Average EMU per node (the quantity the grouping policies maximise)."""
    return float(np.mean([n.emu for n in plan])) if plan else 0.0


def plans_json(plans: Mapping[str, Plan]) -> str:
    """``policy/plans.json``: {policy: [node.to_dict(), …]}."""
    return json.dumps({k: [n.to_dict() for n in v] for k, v in plans.items()}, indent=2)
