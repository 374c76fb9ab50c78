"""Oracle: exhaustive search over every grouping (pairs and singles) and every measured co-location point — an
upper bound on what any pairing policy can reach on these measurements (mean EMU per node; ties: first found).

Only measured co-location points are used (never a prediction); each pair runs at its best measured point for
the node's load (:func:`hera.policy.profiles.point_for_demand`, the rule every planner uses); at most
:data:`MAX_MODELS` models (12 → 140,152 groupings). Cluster provisioning treats the oracle specially: any mix
of singles and measured pair points (an ILP).
"""

from __future__ import annotations

from hera.errors import ConfigError
from hera.policy.base import (
    Plan,
    Policy,
    check_demand,
    decide_pair,
    pair_load,
    pair_node,
    register,
    single_node,
)
from hera.policy.grouping import all_groupings

MAX_MODELS = 12


class Oracle(Policy):
    name = "oracle"
    adaptive_split = True
    cluster_exhaustive = True

    def plan(self, models, profiles, demand_qps=None, rng=None) -> Plan:
        models = profiles.check_models(models)
        demand = check_demand(models, demand_qps)
        if len(models) > MAX_MODELS:
            raise ConfigError(
                f"oracle searches exhaustively and takes at most {MAX_MODELS} models, got {len(models)}"
            )
        best_pair = {}
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                s = decide_pair(a, b, profiles, pair_load(a, b, profiles, demand), "measured")
                if s is not None:
                    best_pair[(a, b)] = s
        best, best_value = None, -1.0
        for grouping in all_groupings(models):
            if any(len(g) == 2 and g not in best_pair for g in grouping):
                continue
            value = sum(best_pair[g].emu if len(g) == 2 else 1.0 for g in grouping) / len(grouping)
            if value > best_value + 1e-12:
                best, best_value = grouping, value
        return [
            pair_node(*g, best_pair[g], profiles) if len(g) == 2 else single_node(g[0], profiles)
            for g in best
        ]


register(Oracle)
