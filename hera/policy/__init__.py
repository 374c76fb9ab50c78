"""Policies on profile tables: one interface, a registry, prediction accuracy.

Adding a policy = one module defining a :class:`Policy` subclass that calls :func:`register`, plus one import
line below. No torch, zoo or server imports here: policies work on tidy profile tables only.
"""

# one line per policy module (each registers itself in POLICIES)
from hera.policy import greedy, hera_policy, oracle, parties, random_pairs, single_tenant  # noqa: F401,E402
from hera.policy.base import (  # noqa: F401
    EVALUATIONS,
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
from hera.policy.profiles import NodeSize, ProfiledSplit, Profiles, emu, point_for_demand  # noqa: F401
