"""F7 / claim C5: a two-tenant node under changing load, with Hera's node manager, PARTIES, and no manager.

Method (``hera experiment load-change``):

1. the node is Hera's first co-located node of ``policy/plans.json`` (two tenants A, B, Hera's initial core and
   LLC-way split). Each manager run starts a fresh node at that same split, so runs differ only in the manager:
   ``hera`` (:class:`hera.control.HeraManager` on the measured profiles), ``parties``
   (:class:`hera.control.PartiesController`) and ``static`` (no manager);
2. both tenants get time-varying Poisson load for ``load_change.duration_s`` seconds, relative to their planned
   capacities ``c_A, c_B`` (QPS* under the initial split) — :class:`TraceShape`:

   - ``step``: A at ``base·c_A`` then, from ``duration/2``, at ``base·(1+swing)·c_A``; B at ``base·c_B`` then
     ``base·(1−swing)·c_B`` (with the defaults A steps from 0.6 to 1.08 of its capacity, beyond what the initial
     split serves, while B drops to 0.12: a core should move from B to A);
   - ``diurnal``: ``λ_A(t) = base·c_A·(1 + swing·sin(2πt/D))``, ``λ_B(t) = base·c_B·(1 − swing·sin(2πt/D))``;
3. a :class:`hera.control.NodeManagerLoop` polls the node every ``load_change.interval_s`` (PARTIES too; its
   paper interval is 0.1 s) through its typed control interface (:class:`hera.server.control.NodeControl`) —
   p95 over the last interval, the offered rate, the SLA from T1 — and applies the controller's moves with the
   node's run-time ``resize`` / ``set_llc_ways``;
4. ``load_change.csv``: per manager, tenant and interval window (by scheduled arrival): offered QPS, p95/p99 from
   the scheduled arrival, SLA, ``violations`` (queries over the SLA or failed) and ``window_violated``
   (p95 > SLA), the tenant's cores and LLC ways at the end of the window; ``moves.csv``: every move
   (t_s on the same clock as the windows).

On a node with fewer than 3 cores every core split is 1+1, so no core can move, and without resctrl no LLC way
can: the experiment still runs (its latency timeline is real) and says so in the ``note`` column.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from hera.errors import ConfigError
from hera.experiments.serving import tenant_plans, varying_stream
from hera import harness
from hera.experiments import plans as plansmod

MANAGERS = ("hera", "parties", "static")
TIMELINE_COLUMNS = ["policy", "manager", "t_s", "tenant", "offered_qps", "p95_ms", "sla_ms", "violations",
                    "window_violated", "rate_qps", "n_queries", "n_ok", "p99_ms", "cores", "llc_ways", "trace",
                    "interval_s", "llc_partitioning", "runner", "scale", "note"]
MOVE_COLUMNS = ["policy", "manager", "t_s", "tenant", "resource", "delta", "reason"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class TraceShape:
    """Load levels relative to each tenant's planned capacity (see the module docstring)."""

    base_frac: float = 0.6
    swing: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.base_frac or not 0 <= self.swing < 1:
            raise ConfigError(f"trace shape needs base_frac > 0 and 0 <= swing < 1, got {self}")


def rate_formulas(trace: str, duration_s: float, cap: dict[str, float], shape: TraceShape = TraceShape()
                  ) -> dict[str, str]:
    """λ(t) per tenant (first tenant = A, steps/swings up; second = B, down) as loadgen formulas."""
    (a, ca), (b, cb) = cap.items()
    lo_a, lo_b = shape.base_frac * ca, shape.base_frac * cb
    half = duration_s / 2
    if trace == "step":
        return {a: f"where(t < {half!r}, {lo_a!r}, {lo_a * (1 + shape.swing)!r})",
                b: f"where(t < {half!r}, {lo_b!r}, {lo_b * (1 - shape.swing)!r})"}
    if trace == "diurnal":
        wave = f"sin(2*pi*t/{float(duration_s)!r})"
        return {a: f"{lo_a!r}*(1 + {shape.swing!r}*{wave})", b: f"{lo_b!r}*(1 - {shape.swing!r}*{wave})"}
    raise ConfigError(f"unknown load-change trace {trace!r}; known: step, diurnal")


def movability_note(n_cores: int, llc_partitioning: str, has_ways: bool) -> str:
    """Why the managers cannot move resources on this node ('' when they can)."""
    parts = []
    if n_cores < 3:
        parts.append(f"needs >= 3 cores to move a core (this node has {n_cores}: the only split is 1+1)")
    if llc_partitioning != "available":
        parts.append("no resctrl -> no LLC moves")
    elif not has_ways:
        parts.append("the plan shares the LLC (no LLC ways to move)")
    return "; ".join(parts)


def load_change_node(plans: plansmod.Plans) -> plansmod.NodeDeploy:
    """Hera's first co-located node of the reference pair (else that pair's node in the first plan that has one).
    A node that plans a capacity of 0 for a tenant — its pair was measured with no load within the SLA, as at
    `ci` scale with a tight SLA — is passed over for the first co-located node whose tenants all have one; where
    none has, the reference pair's node stays (:func:`capacities` then derives its loads)."""
    pair = plansmod.reference_pair(plans)
    order = ["hera"] + [p for p in plans.plans if p != "hera"]
    nodes = [n for p in order for n in plans.plans.get(p, ()) if n.colocated]
    if not nodes:
        raise plansmod.PlanError(f"plans file {plans.path}: no plan co-locates two models; the load-change "
                                 "experiment needs a two-tenant node")
    pool = [n for n in nodes if min(t.capacity_qps for t in n.tenants) > 0] or nodes
    best = next((n for n in pool if set(n.models) == set(pair)), pool[0])
    if set(best.models) != set(pair):
        _log(f"[load-change] the reference pair {'+'.join(pair)} plans a capacity of 0 for a tenant; "
             f"{best.group} instead")
    return best


def capacities(node_plan: plansmod.NodeDeploy, scalability: str | Path) -> tuple[dict[str, float], str | None]:
    """Each tenant's planned capacity, the base of its load; a capacity of 0 (no co-located load met the SLA) is
    replaced by the tenant's alone QPS* on as many cores (``scalability``), and the note says so. A tenant with
    neither is a one-line error."""
    caps = {t.model: float(t.capacity_qps) for t in node_plan.tenants}
    zero = [t for t in node_plan.tenants if not caps[t.model] > 0]
    if not zero:
        return caps, None
    scal = pd.read_csv(scalability)
    for t in zero:
        q = scal.loc[(scal["model"] == t.model) & (scal["workers"] == t.cores), "qps_star"]
        if not (len(q) and float(q.iloc[0]) > 0):
            raise plansmod.PlanError(f"node {node_plan.group} plans a capacity of 0 for {t.model} and {scalability} "
                                     f"has no positive alone QPS* on {t.cores} core(s); no load can be derived")
        caps[t.model] = float(q.iloc[0])
    names = ", ".join(t.model for t in zero)
    return caps, (f"{node_plan.group} plans a capacity of 0 for {names} (no co-located load met the SLA): "
                  f"loads follow the alone QPS* on the same cores")


def _controller(manager: str, profiles, tenant_models: dict[str, str], interval_s: float):
    from hera.control import HeraConfig, HeraManager, PartiesConfig, PartiesController

    if manager == "hera":
        return HeraManager(profiles, tenant_models, HeraConfig(interval_s=interval_s))
    if manager == "parties":
        return PartiesController(PartiesConfig(interval_s=interval_s))
    raise ConfigError(f"unknown manager {manager!r}; known: {', '.join(MANAGERS)}")


def windows(rows: pd.DataFrame, tenants: dict[str, dict[str, Any]], duration_s: float, interval_s: float,
            rate_fns: dict[str, Callable], alloc: Callable[[str, float], tuple[int, int | None]]) -> pd.DataFrame:
    """Per tenant and window ``[k·interval, (k+1)·interval)`` of scheduled arrivals: offered QPS, p95/p99 (from
    the scheduled arrival, completed queries), violations (late or failed queries), the resources held at the
    window's end (``alloc(tenant, t_end)``)."""
    from hera.loadgen.stats import percentile

    n_win = max(1, int(math.ceil(duration_s / interval_s - 1e-9)))
    out = []
    for t, info in tenants.items():
        r = rows[(rows["tenant"] == t) & ~rows["warmup"]]
        k = np.floor(r["scheduled_s"].to_numpy(float) / interval_s).astype(int)
        for w in range(n_win):
            sel = r[k == w]
            ok = sel[sel["ok"]]
            lat = ok["latency_ms"].to_numpy(float)
            sla = info["sla_ms"]
            p95 = percentile(lat, 0.95)
            t0, t1 = w * interval_s, min((w + 1) * interval_s, duration_s)
            cores, ways = alloc(t, t1)
            out.append({"t_s": round(t0, 6), "tenant": t, "offered_qps": len(sel) / (t1 - t0), "p95_ms": p95,
                        "sla_ms": sla, "violations": int((~sel["ok"]).sum() + (lat > sla).sum()),
                        "window_violated": bool(p95 > sla) if math.isfinite(p95) else False,
                        "rate_qps": float(rate_fns[t](np.array([(t0 + t1) / 2]))[0]),
                        "n_queries": int(len(sel)), "n_ok": int(len(ok)), "p99_ms": percentile(lat, 0.99),
                        "cores": cores, "llc_ways": ways})
    return pd.DataFrame(out)


def allocation_timeline(initial: dict[str, tuple[int, int | None]], moves: pd.DataFrame):
    """``alloc(tenant, t_s) -> (cores, llc_ways)`` from the initial allocation and the logged moves."""
    def alloc(tenant: str, t_s: float) -> tuple[int, int | None]:
        cores, ways = initial[tenant]
        if len(moves):
            m = moves[(moves["tenant"] == tenant) & (moves["t_s"] <= t_s)]
            cores += int(m.loc[m["resource"] == "core", "delta"].sum())
            if ways is not None:
                ways += int(m.loc[m["resource"] == "llc_way", "delta"].sum())
        return cores, ways
    return alloc


def run_manager(manager: str, config: dict[str, Any], node_plan: plansmod.NodeDeploy,
                cpu_sets: list[tuple[int, ...]], sla: dict[str, float], formulas: dict[str, str], profiles,
                opts: harness.NodeOptions) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """One run: fresh node at the planned split, time-varying load, the manager's loop (none for ``static``)."""
    from hera.loadgen import driver
    from hera.loadgen.sut import NodeSUT
    from hera.control import NodeManagerLoop

    lc = config["load_change"]
    duration_s, interval_s = float(lc["duration_s"]), float(lc["interval_s"])
    names = [t.model for t in node_plan.tenants]
    streams = {m: varying_stream(config, sla[m], formulas[m], node_plan.tenants[i].capacity_qps, duration_s,
                                 f"load_change/{lc['trace']}/{m}") for i, m in enumerate(names)}
    rate_fns = {m: driver.rate_function(s) for m, s in streams.items()}
    with harness.start_node(config, tenant_plans(config, node_plan, cpu_sets, sla), opts) as node:
        partitioning = node.llc_partitioning
        lib = {m: node.library_size(m) for m in names}
        schedule = driver.build_schedule(streams, lib)
        loop = None
        if manager != "static":  # the manager reads the node's own stats: offered load, p95 per interval, SLA
            ctl = _controller(manager, profiles, {m: m for m in names}, interval_s)
            loop = NodeManagerLoop(ctl, node, interval_s, node_cores=sorted(c for cs in cpu_sets for c in cs))
        _log(f"[load-change] {manager}: {node_plan.group} for {duration_s:g} s ({lc['trace']} trace), "
             f"control interval {interval_s:g} s")
        sut = NodeSUT(node)
        sut.loadgen_process()  # start the load-generator process before the manager's clock starts
        if loop is not None:
            loop.start()
        try:
            res = driver.run(sut, streams, lib, schedule=schedule)
        finally:
            if loop is not None:
                loop.stop()
            sut.close()
        rows = res.rows
        t0_ns = float(rows["scheduled_ns"].iloc[0]) - float(rows["scheduled_s"].iloc[0]) * 1e9
        moves = pd.DataFrame(loop.moves if loop is not None else [], columns=MOVE_COLUMNS[2:])
        if loop is not None and len(moves):
            offset_s = float(getattr(loop, "_t0")) - t0_ns / 1e9   # the loop's clock → the schedule's clock
            moves["t_s"] = (moves["t_s"] + offset_s).round(6)
    initial = {t.model: (t.cores, t.llc_ways if partitioning == "available" else None) for t in node_plan.tenants}
    tl = windows(rows, {m: {"sla_ms": sla[m]} for m in names}, duration_s, interval_s, rate_fns,
                 allocation_timeline(initial, moves))
    return tl, moves, partitioning


def run(config: dict[str, Any], plans_path: str | Path, pairs: str | Path, scalability: str | Path,
        t1: str | Path, out_dir: str | Path | None, opts: harness.NodeOptions | None = None,
        managers: tuple[str, ...] = MANAGERS, shape: TraceShape = TraceShape()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run F7 for every manager; write ``out_dir/load_change.csv`` and ``out_dir/moves.csv`` when given."""
    from hera.policy import Profiles

    opts = opts or harness.NodeOptions()
    for m in managers:
        if m not in MANAGERS:
            raise ConfigError(f"unknown manager {m!r}; known: {', '.join(MANAGERS)}")
    plans = plansmod.load_plans(plans_path)
    node_plan = load_change_node(plans)
    cpus = harness.study_plan(config)
    cpu_sets = plansmod.assign_cpus(node_plan, cpus, "load-change")
    profiles = Profiles.from_files(scalability, pairs)
    if "hera" in managers:
        if profiles.node.cores != node_plan.cores:
            raise plansmod.PlanError(f"plans file {plans.path} splits a {node_plan.cores}-core node but the "
                                     f"profiles describe a {profiles.node.cores}-core node; re-plan from them")
        profiles.splits(*node_plan.models)   # ConfigError now if the pair has no co-location profile
    caps, caps_note = capacities(node_plan, scalability)
    if caps_note:
        _log(f"[load-change] {caps_note}")
    sla = {m: v["sla_ms"] for m, v in harness.read_t1(t1, list(node_plan.models)).items()}
    lc = config["load_change"]
    formulas = rate_formulas(lc["trace"], float(lc["duration_s"]), caps, shape)
    timelines, all_moves, partitioning = [], [], "unavailable"
    for manager in managers:
        tl, mv, partitioning = run_manager(manager, config, node_plan, cpu_sets, sla, formulas, profiles, opts)
        tl.insert(0, "manager", manager)
        tl.insert(0, "policy", manager)
        mv.insert(0, "manager", manager)
        mv.insert(0, "policy", manager)
        timelines.append(tl)
        all_moves.append(mv)
        viol = int(tl["window_violated"].sum())
        _log(f"[load-change] {manager}: {viol} of {len(tl)} tenant-windows over the SLA, {len(mv)} move rows")
    note = movability_note(node_plan.cores, partitioning, any(t.llc_ways is not None for t in node_plan.tenants))
    note = "; ".join(x for x in (note, caps_note) if x)
    timeline = pd.concat(timelines, ignore_index=True)
    timeline = timeline.assign(trace=lc["trace"], interval_s=float(lc["interval_s"]), llc_partitioning=partitioning,
                               runner=opts.runner, scale=config["scale"], note=note)[TIMELINE_COLUMNS]
    moves = pd.concat(all_moves, ignore_index=True)[MOVE_COLUMNS] if all_moves else pd.DataFrame(columns=MOVE_COLUMNS)
    if out_dir is not None:
        from hera.provenance import write_table

        out_dir = Path(out_dir)
        meta = dict(config, load_change_shape={"base_frac": shape.base_frac, "swing": shape.swing},
                    load_change_formulas=formulas, load_change_node=node_plan.group)
        write_table(timeline, out_dir / "load_change.csv", config=meta, seed=config["seed"])
        write_table(moves, out_dir / "moves.csv", config=meta, seed=config["seed"])
    return timeline, moves
