"""Cluster provisioning: how many nodes each policy needs to serve a model mix within SLAs (figure F8).

A policy's plan fixes which models share a node and how (its *node templates*). A template node with
tenants i serves up to ``capacity_i`` qps of each; demand beyond what copies of the template serve goes to
single-tenant nodes at the model's best configuration (``QPS*_alone``). For a pair template (a, b) with
capacities (c_a, c_b) and demands (D_a, D_b) the node count is

    min over n ≥ 0 of   n + ⌈(D_a − n·c_a)⁺ / A_a⌉ + ⌈(D_b − n·c_b)⁺ / A_b⌉        (exact, by enumeration)

so every policy is provisioned by the same rule and differs only in its groups and splits.

- policies with ``adaptive_split`` (Hera: the node manager re-splits each node for its load) may run each copy
  at any point of its pair that the policy decides from (Hera: the predicted points): an integer programme
  ``min Σ_s n_s + s_a + s_b`` s.t. ``Σ_s n_s·c_{i,s} + s_i·A_i ≥ D_i`` (``scipy.optimize.milp``; the best
  single split above is the fallback). A plan decided on predictions is then *evaluated* on measurements: each
  chosen point becomes the measured point of its split that best serves the point's predicted rates
  (:func:`hera.policy.hera_policy.evaluate_on_measurements`), and what the copies then fall short of is served
  by single-tenant nodes; ``servers`` counts that, ``servers_planned`` what the predictions promised;
- the oracle (``cluster_exhaustive``) solves the same programme over *all* singles and all measured pair
  points at once (models may share nodes with different partners) — a lower bound for pairings.

Standard mixes (:data:`STANDARD_MIXES`, YAML-able) give each model's load as a multiple of its own
single-node capacity ``QPS*_alone``, by measured class (embedding- vs MLP-dominated) or by rank (skewed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from hera.errors import ConfigError, ResourceError
from hera.policy.base import EVALUATIONS, NodePlan, Policy, check_demand, get_policy, pair_node, single_node
from hera.policy.hera_policy import evaluate_on_measurements
from hera.policy.profiles import Profiles, memory_class

#: Loads as multiples of each model's single-node capacity. ``embedding``/``mlp``: per class; ``rank``: the
#: i-th model of the mix (in the order given) gets ``rank[i]`` (the last value repeats).
STANDARD_MIXES: dict[str, dict] = {
    "balanced": {"embedding": 2.5, "mlp": 2.5},
    "embedding_heavy": {"embedding": 4.5, "mlp": 1.5},
    "mlp_heavy": {"embedding": 1.5, "mlp": 4.5},
    "skewed": {"rank": [6.0, 3.0, 2.0, 1.5, 1.2, 1.0, 0.8, 0.5]},
}

_TOL = 1e-9


def classify(
    profiles: Profiles, models: Sequence[str], classes: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Model class, "embedding" or "mlp": from ``classes`` (e.g. T1's ``class`` column; names containing
    "emb"/"mem" or "mlp"/"comp"), else from scalability: efficiency ``QPS*_alone / (cores · QPS*(1))`` below
    the median of the mix → embedding (poor worker scalability, docs/METHOD.md §8, claim C1)."""
    out = {}
    if classes is not None:
        for m in models:
            c = memory_class(classes.get(m, ""))
            if c is None:
                raise ConfigError(f"model '{m}' has no embedding/mlp class (got {classes.get(m)!r})")
            out[m] = "embedding" if c == "memory" else "mlp"
        return out
    eff = {
        m: profiles.qps_alone(m) / max(profiles.node.cores * profiles.qps_alone(m, 1), _TOL) for m in models
    }
    med = float(np.median(list(eff.values())))
    return {m: "embedding" if eff[m] < med or (eff[m] == med and len(models) == 1) else "mlp" for m in models}


def mix_loads(
    mix: Mapping, models: Sequence[str], profiles: Profiles, classes: Mapping[str, str] | None = None
) -> dict[str, float]:
    """Offered load (qps) per model for a mix spec (see :data:`STANDARD_MIXES`)."""
    models = profiles.check_models(models)
    if "rank" in mix:
        r = list(mix["rank"])
        if not r:
            raise ConfigError("mix 'rank' list is empty")
        mult = {m: float(r[min(i, len(r) - 1)]) for i, m in enumerate(models)}
    else:
        unknown = set(mix) - {"embedding", "mlp"}
        if unknown:
            raise ConfigError(
                f"mix has unknown key(s) {', '.join(sorted(unknown))}; use embedding, mlp or rank"
            )
        cls = classify(profiles, models, classes)
        mult = {m: float(mix.get(cls[m], 0.0)) for m in models}
    return {m: mult[m] * profiles.qps_alone(m) for m in models}


def _ceil(x: float) -> int:
    return max(0, math.ceil(x - _TOL))


def cover_fixed(
    caps: Mapping[str, float], alone: Mapping[str, float], demand: Mapping[str, float]
) -> tuple[int, dict]:
    """Fewest nodes: ``n`` copies of a template with ``caps`` plus single-tenant nodes for the rest.
    Returns (n, {model: singles})."""
    n_max = max([_ceil(demand[m] / c) for m, c in caps.items() if c > 0] or [0])
    best = None
    for n in range(n_max + 1):
        singles = {m: _ceil(max(0.0, demand[m] - n * caps[m]) / alone[m]) for m in caps}
        total = n + sum(singles.values())
        if best is None or total < best[0]:
            best = (total, n, singles)
    return best[1], best[2]


def _milp(
    columns: list[dict[str, float]], models: list[str], demand: Mapping[str, float]
) -> np.ndarray | None:
    """Integer counts x ≥ 0 minimising Σx with Σ_k x_k·columns[k][m] ≥ demand[m]; None if the solver fails."""
    a = np.array([[col.get(m, 0.0) for col in columns] for m in models])
    res = milp(
        np.ones(len(columns)),
        constraints=LinearConstraint(a, lb=[demand[m] - 1e-6 for m in models]),
        integrality=np.ones(len(columns)),
        bounds=Bounds(0, np.inf),
        options={"time_limit": 30},
    )
    return None if res.x is None or res.status not in (0, 1) else np.round(res.x).astype(int)


def _pareto(splits):
    """Drop splits that another split beats on both tenants (they never help a covering)."""
    s = sorted((x for x in splits if x.qps_a > 0 or x.qps_b > 0), key=lambda x: (-x.qps_a, -x.qps_b))
    out, best_b = [], -1.0
    for x in s:
        if x.qps_b > best_b + _TOL:
            out.append(x)
            best_b = x.qps_b
    return out


@dataclass(frozen=True)
class Provisioned:
    """A policy's cluster for one mix: node plans with their copy counts (capacities as evaluated), what the
    decision was taken on, and — for a plan decided on predictions — how many servers the predictions
    promised (``servers_planned``; otherwise the same count)."""

    nodes: list[tuple[NodePlan, int]]
    decided_on: str = "measured"
    servers_planned: int | None = None

    @property
    def servers(self) -> int:
        return int(sum(k for _, k in self.nodes))

    @property
    def evaluated_on(self) -> str:
        """The worst :data:`~hera.policy.base.EVALUATIONS` entry among the cluster's pair nodes."""
        seen = {n.evaluated_on for n, _ in self.nodes if len(n.tenants) == 2} or {"measured"}
        return max(seen, key=EVALUATIONS.index)


def _singles_for(need: Mapping[str, float], alone: Mapping[str, float], singles: dict) -> list:
    return [(singles[m], _ceil(need[m] / alone[m])) for m in need if _ceil(need[m] / alone[m])]


def provision_plan(
    policy: Policy | str,
    models: Sequence[str],
    profiles: Profiles,
    loads_qps: Mapping[str, float],
    rng: np.random.Generator | None = None,
) -> Provisioned:
    """Node plans and how many copies of each the policy needs for ``loads_qps`` (see module docstring)."""
    policy = get_policy(policy) if isinstance(policy, str) else policy
    models = profiles.check_models(models)
    demand = check_demand(models, loads_qps)
    alone = {m: profiles.qps_alone(m) for m in models}
    for m in models:
        if demand[m] > 0 and not alone[m] > 0:
            raise ResourceError(f"model '{m}' cannot serve any load within its SLA on one node (QPS* = 0)")
    singles = {m: single_node(m, profiles) for m in models}
    if getattr(policy, "cluster_exhaustive", False):
        nodes = [singles[m] for m in models]
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                nodes += [pair_node(a, b, s, profiles) for s in _pareto(profiles.splits(a, b, "measured"))]
        x = _milp([{t.model: t.capacity_qps for t in n.tenants} for n in nodes], models, demand)
        if x is None:
            raise ResourceError("the oracle's integer programme found no covering")
        return Provisioned([(n, int(k)) for n, k in zip(nodes, x) if k > 0])
    source = getattr(policy, "source", "measured") if policy.adaptive_split else "measured"
    out: list[tuple[NodePlan, int]] = []
    need, planned_need, planned = dict(demand), dict(demand), 0
    for node in policy.plan(models, profiles, demand, rng):
        if len(node.tenants) == 1:
            continue
        a, b = node.models
        sub = {a: demand[a], b: demand[b]}
        if policy.adaptive_split:
            points = _pareto(profiles.splits(a, b, source))
            x = _milp(
                [{a: s.qps_a, b: s.qps_b} for s in points] + [{a: alone[a]}, {b: alone[b]}], [a, b], sub
            )
            if x is not None:
                for s, k in zip(points, x):
                    if k <= 0:
                        continue
                    planned += int(k)
                    planned_need[a] = max(0.0, planned_need[a] - k * s.qps_a)
                    planned_need[b] = max(0.0, planned_need[b] - k * s.qps_b)
                    n = (
                        evaluate_on_measurements(a, b, s, profiles, (s.qps_a, s.qps_b))
                        if source == "predicted"
                        else pair_node(a, b, s, profiles)
                    )
                    out.append((n, int(k)))
                    need[a] = max(0.0, need[a] - k * n.tenants[0].capacity_qps)
                    need[b] = max(0.0, need[b] - k * n.tenants[1].capacity_qps)
                continue
        n, _ = cover_fixed({t.model: t.capacity_qps for t in node.tenants}, alone, sub)
        if n:
            out.append((node, n))
            planned += n
            for t in node.tenants:
                need[t.model] = planned_need[t.model] = max(0.0, demand[t.model] - n * t.capacity_qps)
    out += _singles_for(need, alone, singles)
    planned += sum(k for _, k in _singles_for(planned_need, alone, singles))
    return Provisioned(out, source, planned)


def provision(
    policy: Policy | str,
    models: Sequence[str],
    profiles: Profiles,
    loads_qps: Mapping[str, float],
    rng: np.random.Generator | None = None,
) -> list[tuple[NodePlan, int]]:
    """Node plans and their copy counts (:func:`provision_plan`'s nodes)."""
    return provision_plan(policy, models, profiles, loads_qps, rng).nodes


def _assignment(nodes: list[tuple[NodePlan, int]]) -> str:
    return json.dumps(
        [
            {
                "count": k,
                "emu": round(n.emu, 4),
                "evaluated_on": n.evaluated_on,
                **({} if n.predicted_emu is None else {"predicted_emu": round(n.predicted_emu, 4)}),
                "tenants": [
                    {
                        "model": t.model,
                        "cores": t.cores,
                        "llc_ways": t.llc_ways,
                        "capacity_qps": round(t.capacity_qps, 3),
                    }
                    for t in n.tenants
                ],
            }
            for n, k in nodes
        ]
    )


#: Columns of ``cluster/servers.csv``.
SERVERS_COLUMNS = [
    "mix",
    "policy",
    "servers",
    "assignment",
    "loads",
    "decided_on",
    "evaluated_on",
    "servers_planned",
]


def servers_table(
    profiles: Profiles,
    models: Sequence[str] | None = None,
    mixes: Mapping[str, Mapping] | Sequence[str] | None = None,
    policies: Sequence[str] = ("single_tenant", "random", "greedy", "parties", "hera", "oracle"),
    seed: int = 0,
    classes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """``cluster/servers.csv``: one row per (mix, policy): servers (capacities as evaluated), assignment (JSON
    list of node plans with their copy counts), the offered loads (JSON, qps), what the policy decided on
    (measured | predicted), where its pair nodes' capacities come from (the worst of
    :data:`~hera.policy.base.EVALUATIONS`) and the servers its decision data promised (``servers_planned``).
    ``mixes``: names from :data:`STANDARD_MIXES` or a {name: spec} dict. Every policy draws from its own ``numpy`` generator seeded with ``seed``."""
    models = profiles.check_models(models if models is not None else profiles.models)
    if mixes is None:
        mixes = STANDARD_MIXES
    elif not isinstance(mixes, Mapping):
        unknown = [m for m in mixes if m not in STANDARD_MIXES]
        if unknown:
            raise ConfigError(f"unknown mix '{unknown[0]}'; known: {', '.join(STANDARD_MIXES)}")
        mixes = {m: STANDARD_MIXES[m] for m in mixes}
    rows = []
    for mix, spec in mixes.items():
        loads = mix_loads(spec, models, profiles, classes)
        for name in policies:
            res = provision_plan(name, models, profiles, loads, np.random.default_rng(seed))
            rows.append(
                {
                    "mix": mix,
                    "policy": name,
                    "servers": res.servers,
                    "assignment": _assignment(res.nodes),
                    "loads": json.dumps({m: round(v, 3) for m, v in loads.items()}),
                    "decided_on": res.decided_on,
                    "evaluated_on": res.evaluated_on,
                    "servers_planned": res.servers if res.servers_planned is None else res.servers_planned,
                }
            )
    return pd.DataFrame(rows, columns=SERVERS_COLUMNS)


def served(nodes: list[tuple[NodePlan, int]]) -> dict[str, float]:
    """Total capacity (qps) per model of a provisioned cluster (a check: ≥ the offered load)."""
    out: dict[str, float] = {}
    for n, k in nodes:
        for t in n.tenants:
            out[t.model] = out.get(t.model, 0.0) + k * t.capacity_qps
    return out


__all__ = [
    "STANDARD_MIXES",
    "Provisioned",
    "classify",
    "cover_fixed",
    "mix_loads",
    "provision",
    "provision_plan",
    "served",
    "servers_table",
]
