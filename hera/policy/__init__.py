"""Policies on measured profiles (layer 5): one interface, a registry, the pair predictor.

Adding a policy = one module defining a :class:`Policy` subclass that calls :func:`register`, plus one import
line below. No torch, zoo or server imports here: policies work on tidy profile tables only.
"""

# one line per policy module (each registers itself in POLICIES)
from hera.policy import greedy, hera_policy, oracle, parties, random_pairs, single_tenant  # noqa: F401,E402
from hera.policy.base import (  # noqa: F401
    POLICIES,
    NodePlan,
    Plan,
    Policy,
    TenantShare,
    get_policy,
    mean_emu,
    node_load,
    plan_table,
    plans_json,
    register,
)
from hera.policy.profiles import NodeSize, Profiles, ProfiledSplit, emu  # noqa: F401
