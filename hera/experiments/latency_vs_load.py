"""F6: tail latency vs offered load for each policy's node, on the real server.

Method (``hera experiment latency-vs-load``):

1. every configured policy serves the node of its plan chosen by :func:`hera.experiments.plans.choose_groups`:
   the *reference pair* (the first pair Hera co-locates) with the policy's own core/LLC split where the policy
   co-locates those two models, else its own first co-located node; ``single_tenant`` serves each model of the
   reference pair alone on its planned worker count, one after the other. The split is static for the whole
   experiment (the live node managers are F7's subject);
2. *capacity* of a tenant = the plan's ``capacity_qps``: its QPS* (highest Poisson rate meeting its SLA at
   ``sla.percentile``) under that split, measured by co-location profiling (F4) or, alone, by the scalability
   profile (F2). At each ``serving.load_fracs`` fraction f every tenant of the node is offered Poisson load at
   ``f × capacity`` at once (one merged open-loop schedule) for ``serving.trial_s`` seconds;
3. one row per (policy, tenant, load fraction): p95/p99 latency from each query's *scheduled* arrival,
   achieved QPS, the SLA (T1), query counts and the early-stopping verdict against the SLA.

Arrival streams depend on the tenant, the load fraction and the study seed only, so two policies offering the
same rate see the same arrivals. Two policies that deploy the *same node* — the same tenants on the same CPUs
with the same LLC ways and planned capacities, hence the same offered loads and arrivals — are served once: the
second policy's rows are the first's measurement, with ``measured_with`` naming the policy whose run they come
from (a policy's own run: its own name). Measuring an identical node twice would only sample the machine's
noise and draw it as a difference between the policies (on a 2-core node every policy that keeps the models
alone deploys the same nodes). A tenant whose planned capacity is 0 (no rate met its SLA under that split)
gets rows with ``offered_qps = 0`` and no latency, and a note.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from hera.experiments.serving import poisson_stream, tenant_plans
from hera import harness
from hera.experiments import plans as plansmod
from hera.topology import CorePlan

COLUMNS = ["policy", "group", "tenant", "load_frac", "offered_qps", "achieved_qps", "p95_ms", "sla_ms", "n_queries",
           "p50_ms", "p99_ms", "latency_ms_at_percentile", "percentile", "n_failed", "verdict", "capacity_qps",
           "offered_qps_realised", "cores", "cpus", "llc_ways", "trial_s", "llc_partitioning", "runner", "scale",
           "note", "measured_with"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def plan_groups(config: dict[str, Any], plans: plansmod.Plans,
                cpus: CorePlan | list[int]) -> tuple[tuple[str, ...], dict]:
    """The reference pair and ``{policy: [Group, ...]}``; fails (before anything runs) on a policy without a plan
    or a node that needs more CPUs than the study has."""
    policies = list(config["policies"])
    plansmod.check_policies(plans, policies)
    pair = plansmod.reference_pair(plans, policies)
    groups = {p: plansmod.choose_groups(plans, p, pair) for p in policies}
    for p, gs in groups.items():
        for g in gs:
            plansmod.assign_cpus(g.node, cpus, f"policy '{p}'")
    return pair, groups


def _row(policy: str, group: plansmod.Group, t: plansmod.TenantDeploy, cpus: tuple[int, ...], frac: float,
         rate: float, summary: dict[str, Any] | None, sla_ms: float, config: dict[str, Any], partitioning: str,
         runner: str, note: str) -> dict[str, Any]:
    pct = float(config["sla"]["percentile"])
    tag = harness.percentile_tag(pct)
    s = summary or {}
    return {
        "policy": policy, "group": group.node.group, "tenant": t.model, "load_frac": float(frac),
        "offered_qps": rate, "achieved_qps": float(s.get("achieved_qps", 0.0) or 0.0),
        "p95_ms": s.get("latency_ms_p95", math.nan), "sla_ms": sla_ms, "n_queries": int(s.get("n_measured", 0)),
        "p50_ms": s.get("latency_ms_p50", math.nan), "p99_ms": s.get("latency_ms_p99", math.nan),
        "latency_ms_at_percentile": s.get(f"latency_ms_{tag}", math.nan), "percentile": pct,
        "n_failed": int(s.get("n_failed", 0)), "verdict": s.get("early_stopping_verdict", "not run"),
        "capacity_qps": t.capacity_qps, "offered_qps_realised": s.get("offered_qps", math.nan),
        "cores": t.cores, "cpus": " ".join(map(str, cpus)), "llc_ways": t.llc_ways,
        "trial_s": float(config["serving"]["trial_s"]), "llc_partitioning": partitioning, "runner": runner,
        "scale": config["scale"], "note": note, "measured_with": policy,
    }


def node_key(node: plansmod.NodeDeploy, cpu_sets: list[tuple[int, ...]]) -> tuple:
    """What F6 deploys and offers for a node: each tenant's model, CPUs, LLC ways and planned capacity (the
    offered rates and, by the streams' seeds, the arrivals follow from them)."""
    return tuple((t.model, tuple(c), t.llc_ways, float(t.capacity_qps)) for t, c in zip(node.tenants, cpu_sets))


def shared_rows(measured: list[dict[str, Any]], first: str, first_note: str, policy: str, group: plansmod.Group
                ) -> list[dict[str, Any]]:
    """``policy``'s rows for a node that policy ``first`` (its group's note ``first_note``) served identically:
    ``first``'s measurement under ``policy``'s name and note (what the run added to a row's note, such as a
    tenant not driven, kept), ``measured_with`` = ``first``."""
    out = []
    for r in measured:
        added = str(r["note"])[len(first_note):] if str(r["note"]).startswith(first_note) else ""
        note = "; ".join(x for x in (group.note + added, f"the same node as policy '{first}': its measurement") if x)
        out.append(dict(r, policy=policy, measured_with=first, note=note.lstrip("; ")))
    return out


def serve_group(config: dict[str, Any], policy: str, group: plansmod.Group, cpu_sets: list[tuple[int, ...]],
                sla: dict[str, dict[str, Any]], opts: harness.NodeOptions) -> list[dict[str, Any]]:
    """Start the group's node on ``cpu_sets`` (one per tenant, :func:`hera.experiments.plans.assign_cpus`), run
    every load fraction on it, stop it; one row per (tenant, fraction)."""
    from hera.loadgen import driver
    from hera.loadgen.sut import NodeSUT

    node_plan = group.node
    trial_s = float(config["serving"]["trial_s"])
    rows: list[dict[str, Any]] = []
    _log(f"[latency-vs-load] {policy}: {node_plan.group} on cores "
         + " | ".join(f"{t.model}:{list(c)}" for t, c in zip(node_plan.tenants, cpu_sets)))
    with harness.start_node(config, tenant_plans(config, node_plan, cpu_sets), opts) as node:
        sut = NodeSUT(node)
        lib = {t.model: node.library_size(t.model) for t in node_plan.tenants}
        for frac in config["serving"]["load_fracs"]:
            rates = {t.model: float(frac) * t.capacity_qps for t in node_plan.tenants}
            active = {m: r for m, r in rates.items() if r > 0}
            res = None
            if active:
                streams = {m: poisson_stream(config, sla[m]["sla_ms"], r, trial_s, f"serving/{m}/{frac:g}")
                           for m, r in active.items()}
                if hasattr(sut, "wait_idle"):  # an overloaded previous load step must not leak into this one
                    sut.wait_idle()
                res = driver.run(sut, streams, {m: lib[m] for m in active})
            for t, c in zip(node_plan.tenants, cpu_sets):
                note = group.note
                if t.model not in active:
                    note += f"; {t.model} has planned capacity 0 (no rate met its SLA under this split): not driven"
                summary = res.tenants.get(t.model) if res is not None else None
                rows.append(_row(policy, group, t, c, frac, rates[t.model], summary, sla[t.model]["sla_ms"],
                                 config, node.llc_partitioning, opts.runner, note))
                if summary:
                    _log(f"  {t.model} @ {frac:g} x {t.capacity_qps:.1f} qps: p95 "
                         f"{summary.get('latency_ms_p95', math.nan):.2f} ms (SLA {sla[t.model]['sla_ms']:.2f}), "
                         f"{summary.get('n_measured', 0)} queries")
    return rows


def run(config: dict[str, Any], plans_path: str | Path, t1: str | Path, out: str | Path | None,
        opts: harness.NodeOptions | None = None) -> pd.DataFrame:
    """Run F6 for every configured policy; write ``out`` (with provenance) when given; return the rows."""
    opts = opts or harness.NodeOptions()
    plans = plansmod.load_plans(plans_path)
    cpus = harness.study_plan(config)
    pair, groups = plan_groups(config, plans, cpus)
    models = sorted({m for gs in groups.values() for g in gs for m in g.node.models})
    sla = harness.read_t1(t1, models)
    _log(f"[latency-vs-load] reference pair {'+'.join(pair)}; policies {', '.join(groups)}; "
         f"load fractions {config['serving']['load_fracs']} x {config['serving']['trial_s']} s")
    rows: list[dict[str, Any]] = []
    served: dict[tuple, tuple[str, str, list[dict[str, Any]]]] = {}   # node key -> (policy, its note, its rows)
    for policy, gs in groups.items():
        for g in gs:
            cpu_sets = plansmod.assign_cpus(g.node, cpus, f"policy '{policy}'")
            key = node_key(g.node, cpu_sets)
            if key in served:
                first, first_note, measured = served[key]
                _log(f"[latency-vs-load] {policy}: {g.node.group} is the node {first} served (same CPUs, LLC ways "
                     "and planned capacities): its measurement, not run again")
                rows.extend(shared_rows(measured, first, first_note, policy, g))
                continue
            own = serve_group(config, policy, g, cpu_sets, sla, opts)
            served[key] = (policy, g.note, own)
            rows.extend(own)
    df = pd.DataFrame(rows, columns=COLUMNS)
    if out is not None:
        from hera.provenance import write_table

        write_table(df, out, config=config, seed=config["seed"])
    return df
