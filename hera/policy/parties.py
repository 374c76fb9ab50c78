"""PARTIES-style reactive partitioning as a planning policy.

Pairs come from the greedy packer (default) or at random; the split is the *steady state* the PARTIES
controller (:class:`hera.control.PartiesController`) reaches when simulated on the profile tables
(:class:`hera.control.SimulatedNode`): start from an even split (even LLC ways when the pair was profiled
with partitioned ways), offer the node's planned load (:func:`hera.policy.base.node_load`), run
``intervals`` control intervals and take the most frequent allocation of the last quarter; units left in the
free pool go to the tenant with less slack. The live controller is in :mod:`hera.control`.
"""

from __future__ import annotations

from collections import Counter

from hera.errors import ConfigError
from hera.policy.base import (
    DEFAULT_LOAD_FRAC,
    Plan,
    Policy,
    check_demand,
    node_load,
    pair_node,
    register,
    single_node,
)
from hera.policy.greedy import demanded_cores, first_fit_decreasing
from hera.policy.profiles import Profiles, ProfiledSplit
from hera.policy.random_pairs import random_pairs


def parties_steady_split(
    a: str, b: str, profiles: Profiles, load_qps: dict[str, float], intervals: int = 200
) -> ProfiledSplit:
    """The split PARTIES settles at for tenants a, b under ``load_qps`` (simulated on the profiles)."""
    from hera.control import NodeManagerLoop, PartiesConfig, PartiesController, SimulatedNode

    C, W = profiles.node.cores, profiles.node.llc_ways
    partitioned = W is not None and any(s.ways_a is not None for s in profiles.splits(a, b))
    ca = (C + 1) // 2
    ways = {a: (W + 1) // 2, b: W - (W + 1) // 2} if partitioned else {a: None, b: None}
    node = SimulatedNode(
        profiles, {a: a, b: b}, {a: list(range(ca)), b: list(range(ca, C))}, ways, dict(load_qps)
    )
    ctl = PartiesController(PartiesConfig(resources=("core", "llc_way") if partitioned else ("core",)))
    loop = NodeManagerLoop(
        ctl, node, sleep=lambda s: None, node_cores=list(range(C)), llc_ways=W if partitioned else None
    )
    seen = Counter()
    for i in range(intervals):
        loop.step()
        if i >= intervals * 3 // 4:
            seen[(len(node.cores[a]), len(node.cores[b]), node.llc_ways[a], node.llc_ways[b])] += 1
    c_a, c_b, w_a, w_b = seen.most_common(1)[0][0]
    slack = {t: o.sla_ms - o.latency_ms_p95 for t, o in node.stats().items()}
    if C - c_a - c_b > 0 and slack[a] < slack[b]:
        c_a = C - c_b
    if partitioned and W - w_a - w_b > 0 and slack[a] < slack[b]:
        w_a = W - w_b
    return profiles.nearest_split(a, b, c_a, w_a, (load_qps[a], load_qps[b]))


class Parties(Policy):
    name = "parties"

    def __init__(self, pairing: str = "greedy", intervals: int = 200):
        if pairing not in ("greedy", "random"):
            raise ConfigError(f"parties pairing must be greedy or random, got {pairing!r}")
        self.pairing, self.intervals = pairing, intervals

    def plan(self, models, profiles, demand_qps=None, rng=None) -> Plan:
        models = profiles.check_models(models)
        demand = check_demand(models, demand_qps)
        if self.pairing == "random":
            groups = random_pairs(models, rng)
        else:
            d = demand or {m: DEFAULT_LOAD_FRAC * profiles.qps_alone(m) for m in models}
            groups = first_fit_decreasing(
                {m: demanded_cores(m, d[m], profiles) for m in models}, profiles.node.cores
            )
        plan = []
        for g in groups:
            if len(g) == 1:
                plan.append(single_node(g[0], profiles))
            else:
                load = node_load(list(g), profiles, demand)
                plan.append(pair_node(*g, parties_steady_split(*g, profiles, load, self.intervals), profiles))
        return plan


register(Parties)
