"""Random co-location: models paired in a random (seeded) order, cores split evenly, LLC shared."""

from __future__ import annotations

import numpy as np

from hera.policy.base import Plan, Policy, check_demand, pair_node, register, single_node


def random_pairs(models: list[str], rng: np.random.Generator | None) -> list[tuple[str, ...]]:
    """Shuffle with ``rng`` (default seed 0) and pair neighbours; an odd model out stays alone."""
    rng = rng if rng is not None else np.random.default_rng(0)
    order = [models[i] for i in rng.permutation(len(models))]
    return [tuple(order[i : i + 2]) for i in range(0, len(order), 2)]


class RandomPairs(Policy):
    name = "random"

    def plan(self, models, profiles, demand_qps=None, rng=None) -> Plan:
        models = profiles.check_models(models)
        check_demand(models, demand_qps)
        return [
            pair_node(*g, profiles.even_split(*g), profiles) if len(g) == 2 else single_node(g[0], profiles)
            for g in random_pairs(models, rng)
        ]


register(RandomPairs)
