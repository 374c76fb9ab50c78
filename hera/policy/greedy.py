"""Greedy, heterogeneity-unaware packing by load alone (first-fit decreasing on demanded cores).

Each model's *demanded cores* ``k_m`` = fewest workers whose isolated QPS* covers its residual load
``r_m = d_m − ⌊d_m / QPS*_alone⌋ · QPS*_alone`` (the part that does not fill whole nodes; without demand
``r_m = 0.5 · QPS*_alone``; an exact multiple needs whole nodes only, ``k_m = cores``). Models are sorted by
``k_m`` (descending) and put on the first node with room (≤ 2 tenants, ``Σ k ≤ cores``); a pair node gives
each tenant its demanded cores and splits the spare cores evenly, LLC shared. Memory behaviour is ignored.
The node's capacities are those of the nearest measured split, at its point for the node's load.
"""

from __future__ import annotations

import math

from hera.policy.base import (
    DEFAULT_LOAD_FRAC,
    Plan,
    Policy,
    check_demand,
    pair_load,
    pair_node,
    register,
    single_node,
)
from hera.policy.profiles import Profiles


def demanded_cores(model: str, load_qps: float, profiles: Profiles) -> int:
    alone = profiles.qps_alone(model)
    if load_qps > 0:
        whole = math.floor(load_qps / alone + 1e-9)
        load_qps -= whole * alone
        if load_qps <= 1e-9 * alone:
            return profiles.node.cores
    for w in range(1, profiles.node.cores + 1):
        if profiles.qps_alone(model, w) >= load_qps:
            return w
    return profiles.node.cores


def first_fit_decreasing(size: dict[str, int], capacity: int, per_bin: int = 2) -> list[list[str]]:
    bins: list[list[str]] = []
    used: list[int] = []
    for m in sorted(size, key=lambda x: (-size[x], x)):
        for i, b in enumerate(bins):
            if len(b) < per_bin and used[i] + size[m] <= capacity:
                b.append(m)
                used[i] += size[m]
                break
        else:
            bins.append([m])
            used.append(size[m])
    return bins


class Greedy(Policy):
    name = "greedy"

    def plan(self, models, profiles, demand_qps=None, rng=None) -> Plan:
        models = profiles.check_models(models)
        given = check_demand(models, demand_qps)
        demand = given or {m: DEFAULT_LOAD_FRAC * profiles.qps_alone(m) for m in models}
        k = {m: demanded_cores(m, demand[m], profiles) for m in models}
        plan = []
        for group in first_fit_decreasing(k, profiles.node.cores):
            if len(group) == 1:
                plan.append(single_node(group[0], profiles))
                continue
            a, b = group
            spare = profiles.node.cores - k[a] - k[b]
            ca = k[a] + (spare + 1) // 2
            load = pair_load(a, b, profiles, given)
            plan.append(pair_node(a, b, profiles.nearest_split(a, b, ca, None, load), profiles))
        return plan


register(Greedy)
