"""Hera: heterogeneity-aware grouping and splits decided from O(N) profiles, evaluated on measurements.

Hera decides from what is profiled once per model — the memory class (T1), each model's sensitivity and
pressure and its scalability, which reach it through the pair predictions (``colocation/predicted.csv``,
:mod:`hera.profile.pair_prediction`: every pair, every split, several rays of the feasible region) — as the
paper's scheduler does. It never reads a measured pair to decide:

1. Affinity of each pair = EMU of the predicted point it would run at
   (:func:`hera.policy.profiles.point_for_demand` over the pair's predicted points: highest EMU with both
   tenants within their SLA and, with a demand, meeting the node's share of it).
2. Grouping that maximises mean EMU per node (= total EMU for a fixed node count): Dinkelbach over exact
   maximum-weight matchings (:func:`~hera.policy.grouping.best_mean_grouping`; exact DP up to 16 models,
   greedy + 2-swap beyond). A pair whose EMU ≤ the achievable mean stays apart (its models run alone). Among
   groupings of equal predicted EMU the one pairing more models of different memory class wins (the class is
   a tie-break, :data:`CLASS_TIE_BREAK`; the prediction decides).
3. Split of cores and LLC ways = that point's split; at run time :class:`hera.control.HeraManager` re-splits as
   loads change (hence ``adaptive_split``).

The plan is then *evaluated* on measurements (:func:`evaluate_on_measurements`): a node whose pair was measured
gets the measured capacities of the chosen split (its point for the node's load), or of the nearest measured
split when the chosen one was not measured; a pair never measured keeps its predicted capacities. Every node
says which (``NodePlan.decided_on`` / ``evaluated_on``). ``source="measured"`` decides on the measured table
instead (an ablation: the same matching on measurements, which then reduces to the oracle's).
"""

from __future__ import annotations

import numpy as np

from hera.errors import ConfigError
from hera.policy.base import (
    NodePlan,
    Plan,
    Policy,
    check_demand,
    decide_pair,
    pair_load,
    pair_node,
    register,
    single_node,
)
from hera.policy.grouping import EXACT_LIMIT, best_mean_grouping
from hera.policy.profiles import ProfiledSplit, Profiles, memory_class

SOURCES = ("predicted", "measured")
#: Weight added to a heterogeneous pair's matching weight: far below any EMU difference that a profile can
#: resolve, so the memory class only breaks ties between groupings of equal predicted EMU.
CLASS_TIE_BREAK = 1e-6


def pair_affinity(
    models: list[str], profiles: Profiles, demand: dict | None, source: str = "predicted"
) -> np.ndarray:
    """Symmetric matrix of pair EMU at the point each pair would use (NaN: no point meets both SLAs)."""
    n = len(models)
    e = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = models[i], models[j]
            s = decide_pair(a, b, profiles, pair_load(a, b, profiles, demand), source)
            if s is not None:
                e[i, j] = e[j, i] = s.emu
    return e


def class_preference(models: list[str], classes: dict[str, str] | None) -> np.ndarray:
    """1 for a pair of models of different known memory class (T1), else 0 (no classes: all 0)."""
    n = len(models)
    out = np.zeros((n, n))
    if not classes:
        return out
    cls = [memory_class(classes.get(m, "")) for m in models]
    for i in range(n):
        for j in range(i + 1, n):
            if cls[i] is not None and cls[j] is not None and cls[i] != cls[j]:
                out[i, j] = out[j, i] = 1.0
    return out


def evaluate_on_measurements(
    a: str, b: str, point: ProfiledSplit, profiles: Profiles, load: tuple[float, float] | None
) -> NodePlan:
    """The node a decision ``point`` gives, with capacities from measurements where the pair was measured: the
    measured point of the same split for ``load`` (:meth:`Profiles.nearest_split`), of the nearest measured
    split if that split was not measured, and the predicted point itself if the pair never was."""
    if point.source == "measured":
        return pair_node(a, b, point, profiles)
    if not profiles.has_pair(a, b, "measured"):
        return pair_node(a, b, point, profiles, decision=point, evaluated_on="predicted")
    m = profiles.nearest_split(a, b, point.cores_a, point.ways_a, load)
    how = "measured" if m.split == point.split else "measured, nearest split"
    return pair_node(a, b, m, profiles, decision=point, evaluated_on=how)


class HeraPolicy(Policy):
    name = "hera"
    adaptive_split = True

    def __init__(self, source: str = "predicted", exact_limit: int = EXACT_LIMIT):
        if source not in SOURCES:
            raise ConfigError(f"hera source must be one of {', '.join(SOURCES)}, got {source!r}")
        self.source, self.exact_limit = source, exact_limit

    def check_inputs(self, models: list[str], profiles: Profiles) -> None:
        """ConfigError for the first pair of the mix without points of the source Hera decides from."""
        for i, a in enumerate(models):
            for b in models[i + 1 :]:
                profiles.splits(a, b, self.source)

    def plan(self, models, profiles, demand_qps=None, rng=None) -> Plan:
        models = profiles.check_models(models)
        demand = check_demand(models, demand_qps)
        self.check_inputs(models, profiles)
        affinity = pair_affinity(models, profiles, demand, self.source)
        prefer = CLASS_TIE_BREAK * class_preference(models, profiles.classes)
        plan = []
        for g in best_mean_grouping(affinity, self.exact_limit, tie_break=prefer):
            if len(g) == 1:
                plan.append(single_node(models[g[0]], profiles, self.source))
                continue
            a, b = models[g[0]], models[g[1]]
            load = pair_load(a, b, profiles, demand)
            plan.append(
                evaluate_on_measurements(a, b, decide_pair(a, b, profiles, load, self.source), profiles, load)
            )
        return plan


register(HeraPolicy)
