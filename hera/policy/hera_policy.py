"""Hera: heterogeneity-aware grouping and profile-guided splits.

1. Affinity of each pair = EMU of the split it would run at (:meth:`Profiles.best_split`: highest EMU with
   every tenant meeting its SLA — QPS* > 0 — and, when a demand is given, meeting the node's share of it).
   Measured co-location profiles are used where they exist; other pairs are predicted (``source="auto"``) by
   :class:`~hera.policy.predictor.PairPredictor`, or all pairs are (``source="predicted"``, O(N) profiling).
2. Grouping that maximises mean EMU per node (= total EMU for a fixed node count): Dinkelbach over exact
   maximum-weight matchings (:func:`~hera.policy.grouping.best_mean_grouping`; exact DP up to 16 models,
   greedy + 2-swap beyond). A pair whose EMU ≤ the achievable mean stays apart (its models run alone).
3. Initial split of cores and LLC ways = that best split; at run time :class:`hera.control.HeraManager`
   re-splits as loads change (hence ``adaptive_split``).

Decisions taken on predictions are reported with the *measured* capacities of the chosen split when the
profiles have them, so Hera is always evaluated on measurements.
"""

from __future__ import annotations

import numpy as np

from hera.errors import ConfigError
from hera.policy.base import Plan, Policy, check_demand, node_load, pair_node, register, single_node
from hera.policy.grouping import EXACT_LIMIT, best_mean_grouping
from hera.policy.profiles import Profiles

SOURCES = ("auto", "measured", "predicted")


def pair_affinity(models: list[str], profiles: Profiles, demand: dict | None) -> np.ndarray:
    """Symmetric matrix of pair EMU at the split each pair would use (NaN: no split meets both SLAs)."""
    n = len(models)
    e = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = models[i], models[j]
            try:
                load = node_load([a, b], profiles, demand) if demand is not None else None
                e[i, j] = e[j, i] = profiles.best_split(a, b, load).emu
            except ConfigError:
                if not profiles.has_pair(a, b):
                    raise
    return e


class HeraPolicy(Policy):
    name = "hera"
    adaptive_split = True

    def __init__(self, source: str = "auto", exact_limit: int = EXACT_LIMIT, fit: bool = True):
        if source not in SOURCES:
            raise ConfigError(f"hera source must be one of {', '.join(SOURCES)}, got {source!r}")
        self.source, self.exact_limit, self.fit = source, exact_limit, fit
        self.predictor = None

    def decision_profiles(self, models: list[str], profiles: Profiles) -> Profiles:
        """The profiles Hera decides on: measured, measured + predicted for missing pairs, or predicted."""
        missing = [
            (a, b)
            for i, a in enumerate(models)
            for b in models[i + 1 :]
            if not profiles.has_pair(a, b, source="measured")
        ]
        if self.source == "measured" or (self.source == "auto" and not missing):
            if missing:
                raise ConfigError(f"no measured co-location profile for pair {missing[0]}; use source=auto")
            return profiles
        from hera.policy.predictor import PairPredictor

        if profiles.memory is None:
            what = (
                f"pair {missing[0]} has no measured co-location profile and"
                if missing
                else "source=predicted but"
            )
            raise ConfigError(f"{what} there is no memory (antagonist) table to predict from")
        self.predictor = PairPredictor(profiles)
        if self.fit:
            self.predictor.fit()
        return profiles.with_pairs(self.predictor.predict_pairs(models), keep_measured=self.source == "auto")

    def plan(self, models, profiles, demand_qps=None, rng=None) -> Plan:
        models = profiles.check_models(models)
        demand = check_demand(models, demand_qps)
        dec = self.decision_profiles(models, profiles)
        groups = best_mean_grouping(pair_affinity(models, dec, demand), self.exact_limit)
        plan = []
        for g in groups:
            if len(g) == 1:
                plan.append(single_node(models[g[0]], profiles))
                continue
            a, b = models[g[0]], models[g[1]]
            s = dec.best_split(a, b, node_load([a, b], dec, demand) if demand is not None else None)
            if s.source != "measured" and profiles.has_pair(a, b, source="measured"):
                s = profiles.nearest_split(a, b, s.cores_a, s.ways_a)
            plan.append(pair_node(a, b, s, profiles))
        return plan


register(HeraPolicy)
