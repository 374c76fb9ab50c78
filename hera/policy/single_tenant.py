"""The baseline inference server: every node serves one model at its best worker count (EMU = 1 per node)."""

from __future__ import annotations

from hera.policy.base import Plan, Policy, check_demand, register, single_node


class SingleTenant(Policy):
    name = "single_tenant"

    def plan(self, models, profiles, demand_qps=None, rng=None) -> Plan:
        models = profiles.check_models(models)
        check_demand(models, demand_qps)
        return [single_node(m, profiles) for m in models]


register(SingleTenant)
