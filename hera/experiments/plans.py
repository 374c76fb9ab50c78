"""``policy/plans.json`` → what the serving experiments deploy on the real node.

``hera policy evaluate`` (:mod:`hera.policy_cli`) writes::

    {"node": {"cores": C, "llc_ways": W | null}, "models": [...],
     "plans": {policy: [{"tenants": [{"model", "cores", "llc_ways", "capacity_qps"}, ...], "emu"}, ...]}}

Core counts in a plan are *counts*; :func:`assign_cpus` maps them onto the study's core plan
(:func:`hera.topology.study_plan`: one thread per physical core, harness cores left out) tenant after tenant, and
refuses (:class:`~hera.errors.ResourceError`) a node that needs more CPUs than the study has.

Which node of a plan an experiment serves (:func:`reference_pair`, :func:`choose_group`):

- the *reference pair* is the first co-located node of Hera's plan (else the oracle's, else the first plan with
  a co-located node), so that every policy is measured on the same two models where it can be;
- a co-locating policy serves its node holding the reference pair (with its own split), or, if it never puts
  those two models together, its own first co-located node (stated in the ``note``);
- ``single_tenant`` (and a policy without a co-located node) serves each model of the reference pair alone on
  its plan node (its best worker count, whole LLC), one after the other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from hera.errors import ConfigError, HeraError
from hera.paths import read_json

if TYPE_CHECKING:
    from hera.topology import CorePlan

#: Policies whose plan defines the reference pair, in order of preference.
REFERENCE_POLICIES = ("hera", "oracle")


class PlanError(HeraError):
    """The plans file is missing, malformed, or has no plan a command needs."""


@dataclass(frozen=True)
class TenantDeploy:
    """One tenant of a planned node: model, core count, LLC ways (None = shared) and planned QPS*."""

    model: str
    cores: int
    llc_ways: int | None
    capacity_qps: float


@dataclass(frozen=True)
class NodeDeploy:
    """One planned node (one or two tenants) and its planned EMU."""

    tenants: tuple[TenantDeploy, ...]
    emu: float

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(t.model for t in self.tenants)

    @property
    def group(self) -> str:
        """The node's tenants joined by ``+`` (the ``group`` / ``tenants`` column of result tables)."""
        return "+".join(self.models)

    @property
    def cores(self) -> int:
        return sum(t.cores for t in self.tenants)

    @property
    def colocated(self) -> bool:
        return len(self.tenants) >= 2


@dataclass(frozen=True)
class Plans:
    """The parsed plans file."""

    path: Path
    node_cores: int | None
    llc_ways: int | None
    models: tuple[str, ...]
    plans: dict[str, tuple[NodeDeploy, ...]]

    def plan(self, policy: str) -> tuple[NodeDeploy, ...]:
        """The plan of ``policy``; :class:`PlanError` naming the policies the file has otherwise."""
        if policy not in self.plans:
            raise PlanError(f"plans file {self.path} has no plan for policy '{policy}'; it has: "
                            f"{', '.join(self.plans) or '(none)'} (rerun hera policy evaluate with this config)")
        return self.plans[policy]


def _num(v: Any, what: str, path: Path, integer: bool = False, minimum: float = 0.0) -> Any:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= minimum
    if ok and integer:
        ok = float(v).is_integer()
    if not ok:
        kind = "an integer" if integer else "a number"
        raise PlanError(f"plans file {path}: {what} must be {kind} >= {minimum:g}, got {v!r}")
    return int(v) if integer else float(v)


def _tenant(d: Any, where: str, path: Path) -> TenantDeploy:
    if not isinstance(d, dict) or not {"model", "cores", "capacity_qps"} <= set(d):
        raise PlanError(f"plans file {path}: {where} must have model, cores, llc_ways and capacity_qps")
    ways = d.get("llc_ways")
    return TenantDeploy(str(d["model"]), _num(d["cores"], f"{where}.cores", path, True, 1),
                        None if ways is None else _num(ways, f"{where}.llc_ways", path, True, 1),
                        _num(d["capacity_qps"], f"{where}.capacity_qps", path))


def load_plans(path: str | Path) -> Plans:
    """Read and validate ``policy/plans.json`` (also accepts a bare ``{policy: [node, ...]}`` mapping)."""
    path = Path(path)
    doc = read_json(path, "plans file", PlanError, "run hera policy evaluate first")
    if not isinstance(doc, dict):
        raise PlanError(f"plans file {path} must hold a JSON object")
    raw = doc["plans"] if "plans" in doc else doc
    node = doc.get("node", {}) if isinstance(doc.get("node", {}), dict) else {}
    if not isinstance(raw, dict) or not raw:
        raise PlanError(f"plans file {path} holds no plans")
    plans: dict[str, tuple[NodeDeploy, ...]] = {}
    for policy, nodes in raw.items():
        if not isinstance(nodes, list) or not nodes:
            raise PlanError(f"plans file {path}: the plan of policy '{policy}' must be a non-empty list of nodes")
        out = []
        for i, n in enumerate(nodes):
            where = f"plans.{policy}[{i}]"
            if not isinstance(n, dict) or not isinstance(n.get("tenants"), list) or not n["tenants"]:
                raise PlanError(f"plans file {path}: {where} must have a non-empty tenants list")
            tenants = tuple(_tenant(t, f"{where}.tenants[{j}]", path) for j, t in enumerate(n["tenants"]))
            if len({t.model for t in tenants}) != len(tenants):
                raise PlanError(f"plans file {path}: {where} serves the same model twice")
            out.append(NodeDeploy(tenants, float(n.get("emu", math.nan))))
        plans[str(policy)] = tuple(out)
    cores = node.get("cores")
    ways = node.get("llc_ways")
    models = doc.get("models") or sorted({m for p in plans.values() for n in p for m in n.models})
    return Plans(path, None if cores is None else _num(cores, "node.cores", path, True, 1),
                 None if ways is None else _num(ways, "node.llc_ways", path, True, 1), tuple(models), plans)


def check_policies(plans: Plans, policies: list[str]) -> None:
    """Every configured policy has a plan (PlanError naming the first that has none)."""
    if not policies:
        raise ConfigError("the study config lists no policies")
    for p in policies:
        plans.plan(p)


def reference_pair(plans: Plans, policies: list[str] | None = None) -> tuple[str, ...]:
    """The models every policy is measured on: Hera's first co-located node (else the oracle's, else the first
    co-located node of any plan, else the first two models)."""
    order = [p for p in REFERENCE_POLICIES if p in plans.plans] + [p for p in (policies or plans.plans)
                                                                   if p in plans.plans]
    for p in order:
        for n in plans.plans[p]:
            if n.colocated:
                return n.models
    models = [m for n in plans.plans[order[0]] for m in n.models] if order else list(plans.models)
    return tuple(models[:2])


@dataclass(frozen=True)
class Group:
    """One node an experiment deploys: the planned node and why it was chosen (the ``note``)."""

    node: NodeDeploy
    note: str


def alone_node(plan: tuple[NodeDeploy, ...], model: str, policy: str, path: Path) -> NodeDeploy:
    """The single-tenant node of ``model`` in ``plan`` (PlanError if the model has none)."""
    for n in plan:
        if n.models == (model,):
            return n
    for n in plan:  # the model is co-located here: serve it alone with its planned share
        for t in n.tenants:
            if t.model == model:
                return NodeDeploy((t,), math.nan)
    raise PlanError(f"plans file {path}: the plan of policy '{policy}' does not place model '{model}'")


def choose_groups(plans: Plans, policy: str, pair: tuple[str, ...]) -> list[Group]:
    """The node(s) to serve for ``policy`` in the latency-vs-load experiment (see the module docstring)."""
    plan = plans.plan(policy)
    want = set(pair)
    for n in plan:
        if n.colocated and set(n.models) == want:
            return [Group(n, f"reference pair {'+'.join(pair)} as placed and split by {policy}")]
    for n in plan:
        if n.colocated:
            return [Group(n, f"{policy} does not co-locate {'+'.join(pair)}; its first co-located node "
                             f"{n.group} is served instead")]
    why = "one model per node" if policy == "single_tenant" else f"{policy} co-locates no models"
    return [Group(alone_node(plan, m, policy, plans.path),
                  f"{why}: {m} alone at its planned worker count, the models of {'+'.join(pair)} one after "
                  "the other") for m in pair]


def assign_cpus(node: NodeDeploy, cpus: "Sequence[int] | CorePlan", what: str) -> list[tuple[int, ...]]:
    """CPUs per tenant from the study's core plan (:meth:`hera.topology.CorePlan.node`): the first tenant gets
    the plan's first ``cores`` worker CPUs, and so on (a plain list is taken as already in plan order)."""
    from hera.topology import CorePlan

    plan = cpus if isinstance(cpus, CorePlan) else CorePlan.from_cpus(cpus)
    return plan.node([t.cores for t in node.tenants], f"{what}: node {node.group}")
