"""Shared plumbing of the serving experiments: nodes from plans and load streams.

- :func:`tenant_plans`: a planned node (:class:`~hera.experiments.plans.NodeDeploy`) → the measurement harness's
  :class:`~hera.harness.TenantPlan` list, so nodes start through :func:`hera.harness.start_node` (same runner
  options, directories and resctrl root as profiling);
- :func:`poisson_stream` / :func:`varying_stream`: one tenant's open-loop stream from the study config.

A node manager drives the started node directly: the node is a :class:`hera.server.control.NodeControl` whose
stats carry the offered load (what Hera's manager plans for), the p95 over any window and the SLA given here.
"""

from __future__ import annotations

from typing import Any, Mapping

from hera import harness
from hera.experiments.plans import NodeDeploy


def tenant_plans(config: dict[str, Any], node: NodeDeploy, cpu_sets: list[tuple[int, ...]],
                 sla_ms: Mapping[str, float] | None = None) -> list:
    """One :class:`~hera.harness.TenantPlan` per tenant (tenant name = model id; models on a node are
    distinct), pinned to ``cpu_sets`` with the plan's LLC ways and the SLA from T1 (so that the node reports
    it to a node manager)."""
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    sla = dict(sla_ms or {})
    return [harness.TenantPlan(t.model, t.model, tuple(c), batch, max_items, t.llc_ways, sla.get(t.model))
            for t, c in zip(node.tenants, cpu_sets)]


def poisson_stream(config: dict[str, Any], sla_ms: float, rate_qps: float, duration_s: float, stream: str):
    """Poisson arrivals at ``rate_qps`` for ``duration_s`` seconds (no minimum query count); a warm-up of at
    most 10% of the expected queries is excluded from the statistics. Seeds derive from the study seed and
    ``stream`` only, so policies offered the same rate get the same arrivals (common random numbers)."""
    base = harness.loadgen_settings(config, sla_ms, rate_qps, stream=stream)
    warm = int(min(base.warmup_queries, 0.1 * rate_qps * duration_s))
    return base.replace(duration_s=float(duration_s), n_queries=None, min_queries=0, min_duration_s=0.0,
                        warmup_queries=warm)


def varying_stream(config: dict[str, Any], sla_ms: float, formula: str, nominal_qps: float, duration_s: float,
                   stream: str):
    """Time-varying Poisson arrivals λ(t) = ``formula`` (numpy expression in ``t`` seconds) for ``duration_s``."""
    base = harness.loadgen_settings(config, sla_ms, max(nominal_qps, 1e-6), stream=stream)
    return base.replace(arrival="time_varying", arrival_formula=formula, duration_s=float(duration_s),
                        n_queries=None, min_queries=0, min_duration_s=0.0, warmup_queries=0)
