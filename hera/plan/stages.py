"""Estimated seconds of every pipeline stage (the jobs of ``workflow/rules/*.smk``) for a config on a machine.

Each stage adds up what its jobs do, in the order the measuring code does it (module docstrings of
:mod:`hera.profile.service`, :mod:`hera.profile.scalability`, :mod:`hera.loadgen.confirm`,
:mod:`hera.profile.colocation`, the interference profiles, :mod:`hera.experiments`): processes and nodes
started, queries served one at a time, saturation windows, trials of at least ``confirm.min_queries`` queries
and ``confirm.trial_s`` seconds at the rate the model reaches (:mod:`hera.plan.rates`). Measuring jobs run one
at a time (each takes every core); the other jobs (builds, sample libraries, tables, figures) run side by side
on the machine's hardware threads.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from hera.config import point_repeats, point_visits, visit_repeats
from hera.plan.calibration import Calibration
from hera.plan.inputs import MachineInfo, ModelCost, PlanError
from hera.plan.rates import ModelRates, clamp_rate, model_rates

#: Stages in pipeline order: (id, title).
STAGES: tuple[tuple[str, str], ...] = (
    ("venv", "environment (.venv, once)"),
    ("setup", "study config, machine description, core plan"),
    ("models", "model builds and sample libraries"),
    ("t1", "T1: in-process latencies, SLAs"),
    ("latency", "F1: latency vs sub-batch"),
    ("service", "service profiles (light load + saturation per worker count)"),
    ("scalability", "F2: node model + confirmed QPS* per worker count"),
    ("interference", "F3: interference profiles"),
    ("pair_predictions", "pair predictions (every split, O(N))"),
    ("colocation", "F4: measured co-location (best split, neighbours, shared LLC, even split; colocation.rays)"),
    ("policies", "F5/F8: policies, provisioning"),
    ("serving", "F6: latency vs load per policy"),
    ("load_change", "F7: load change per manager"),
    ("report", "tables, figures, T2"),
    ("scheduling", "Snakemake: start and per-job overhead"),
)
#: Rays of the feasible region measured per split by default (config colocation.rays).
MEASURED_SHARES = (0.5, 0.75, 0.25)
#: Rates of a modelled QPS* (hera.queueing.qps.ModelSettings: coarse grid + refinement) and of a predicted curve.
MODEL_RATES = 24
CURVE_RATES = 40
#: Managers of the load-change experiment (hera.experiments.load_change.MANAGERS).
MANAGERS = 3


@dataclass(frozen=True)
class StageEstimate:
    stage: str
    title: str
    jobs: int
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class Plan:
    """The estimate of one study on one machine."""

    machine: MachineInfo
    scale: str
    models: tuple[str, ...]
    colocation_models: tuple[str, ...]
    worker_counts: tuple[int, ...]
    splits_per_pair: int
    stages: tuple[StageEstimate, ...]
    qps_star: Mapping[str, Mapping[int, float]] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return float(sum(s.seconds for s in self.stages))

    @property
    def pairs(self) -> int:
        n = len(self.colocation_models)
        return n * (n - 1) // 2

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary (``hera plan``'s last line)."""
        return {"total_s": round(self.total_s, 1),
                "stages": {s.stage: round(s.seconds, 1) for s in self.stages},
                "machine": self.machine.source, "scale": self.scale, "worker_cores": self.machine.n_workers,
                "worker_counts": list(self.worker_counts), "models": len(self.models), "pairs": self.pairs,
                "splits_per_pair": self.splits_per_pair,
                "llc_partitioning": "available" if self.machine.llc_partitioning else "unavailable"}


# ------------------------------------------------------------------------------------------------ helpers
def parallel_s(job_s: list[float], slots: int) -> float:
    """Wall time of independent jobs run side by side on ``slots`` hardware threads (makespan bound)."""
    if not job_s:
        return 0.0
    return max(max(job_s), sum(job_s) / max(1, slots))


def node_start_s(costs: list[ModelCost], cal: Calibration, first: bool = True) -> float:
    """Starting a node serving ``costs`` (workers from the forkserver, tables pre-faulted); ``first``: the job's
    first node, whose forkserver imports torch."""
    start = cal.node_start_s if first else cal.node_restart_s
    return start + sum(c.embedding_bytes for c in costs) / cal.prefault_bytes_per_s


def model_s(config: Mapping[str, Any], rates: int, cal: Calibration) -> float:
    """One run of the node model over ``rates`` rates (every bootstrap replicate)."""
    m = config["model"]
    return cal.model_s_per_lane_query * int(m["queries"]) * int(m["replicates"]) * rates


def confirmation_s(config: Mapping[str, Any], rates_qps: list[float], cal: Calibration,
                   repeats: int | None = None) -> float:
    """One confirmation (:func:`hera.loadgen.confirm.confirm_point`): repeats x trials x chunks, a chunk at
    least ``min_queries`` queries of the busiest tenant (which paces a joint trial) and ``trial_s`` seconds, plus
    its warm-up queries (a quarter of ``min_queries``, at least 10, as :mod:`hera.profile.scalability` sets them;
    a joint trial's other streams warm up for the same time, :func:`hera.loadgen.confirm.warmup_queries`);
    ``repeats``: instead of ``confirm.repeats`` (a ray's ``colocation.repeats``)."""
    c = config["confirm"]
    trials = min(cal.trials_per_repeat, 2 + int(c["max_steps"]))
    chunks = min(cal.chunks_per_trial, int(c["max_chunks"]))
    n = int(repeats or c["repeats"])
    return n * (1 + cal.retest_share) * trials * chunks * chunk_s(config, max(rates_qps), cal)


def chunk_s(config: Mapping[str, Any], rate_qps: float, cal: Calibration) -> float:
    """One chunk of a confirmation trial paced by ``rate_qps``: at least ``min_queries`` queries and ``trial_s``
    seconds, plus its warm-up queries (a quarter of ``min_queries``, at least 10) and the per-chunk overhead."""
    c = config["confirm"]
    pace = clamp_rate(rate_qps)
    n, warm = int(c["min_queries"]), max(10, int(c["min_queries"]) // 4)
    return max(float(c["trial_s"]), n / pace) + warm / pace + cal.chunk_overhead_s


def split_sizes(n_workers: int) -> tuple[int, int]:
    """Cores of tenants a and b in a balanced split (where the predicted best split usually lies)."""
    a = max(1, n_workers // 2)
    return a, max(1, n_workers - a)


def splits_measured(machine: MachineInfo, config: Mapping[str, Any]) -> int:
    """Splits measured per pair (:func:`hera.profile.colocation.select_splits`): the predicted best, its neighbour
    core splits (``colocation.neighbours``), the shared LLC of the best cores where LLC ways are split, and the
    even split with a shared LLC (the baselines' split, only when random, greedy or PARTIES is configured) unless
    it is one of those — counted whenever the node has more than one core split (the best is not always the even
    one)."""
    n_core = machine.n_workers - 1
    core = min(3 if config["colocation"].get("neighbours", True) else 1, n_core)
    shared = 1 if machine.llc_partitioning and bool(config["colocation"]["llc_splits"]) else 0
    baselines = any(p in config.get("policies", ("random",)) for p in ("random", "greedy", "parties"))
    even = 1 if n_core > 1 and baselines else 0
    return core + shared + even


# ------------------------------------------------------------------------------------------------ stages
def _venv(cal: Calibration) -> StageEstimate:
    return StageEstimate("venv", "", 0, cal.venv_s, "with-env.sh from a package index or wheelhouse")


def _setup(machine: MachineInfo, cal: Calibration) -> StageEstimate:
    return StageEstimate("setup", "", 3, 3 * cal.light_cli_s + 3.0,
                         "hera config write, hera machine --bandwidth, hera topology")


def _models(config: Mapping[str, Any], costs: Mapping[str, ModelCost], machine: MachineInfo,
            cal: Calibration) -> StageEstimate:
    items = int(config["library"]["items"])
    builds = [cal.cli_s + c.embedding_bytes / cal.build_bytes_per_s for c in costs.values()]
    libs = [cal.light_cli_s + items * (8 * c.lookups_per_item + 4 * c.dense_in) / cal.library_bytes_per_s
            for c in costs.values()]
    total_bytes = sum(c.embedding_bytes for c in costs.values())
    return StageEstimate("models", "", 2 * len(costs), parallel_s(builds + libs, machine.logical_cpus),
                         f"{total_bytes / 1e9:.2f} GB of tables, {items} library items per model, "
                         f"{machine.logical_cpus} jobs side by side")


def _t1(config: Mapping[str, Any], rates: Mapping[str, ModelRates], cal: Calibration) -> StageEstimate:
    reps = int(config["profile"]["latency_repeats"]) + 2
    s = cal.cli_s
    for r in rates.values():
        s += r.cost.embedding_bytes / cal.prefault_bytes_per_s + 1.0
        s += sum(reps * r.sub_batch_ms(b, 1, served=False) for b in (1, 64, 256)) / 1e3
    return StageEstimate("t1", "", 1, s, f"{len(rates)} models, batch sizes 1/64/256 x {reps} runs")


def _latency(config: Mapping[str, Any], rates: Mapping[str, ModelRates], cal: Calibration) -> StageEstimate:
    r_ = int(config["profile"]["latency_repeats"])
    n = max(2, r_ // 5) + r_
    sizes = [int(b) for b in config["profile"]["batch_sizes"]]
    jobs = [cal.cli_s + node_start_s([r.cost], cal)
            + sum(n * (r.sub_batch_ms(b) + cal.dispatch_ms) for b in sizes) / 1e3 for r in rates.values()]
    return StageEstimate("latency", "", len(jobs), sum(jobs), f"{len(sizes)} sub-batch sizes x {n} queries per model")


def light_queries(config: Mapping[str, Any], rates: ModelRates, section: str = "service") -> int:
    """Queries of one light-load run (stratified: every distinct size ``light_queries_per_size`` times)."""
    s = config.get(section) or {}
    if rates.mix.discrete:
        return len(rates.mix.sizes) * int(s.get("light_queries_per_size", 16))
    return int(s.get("light_queries", 150))


def service_point_s(config: Mapping[str, Any], r: ModelRates, w: int, cal: Calibration) -> float:
    """One worker count of a service profile: light load, a closed loop at saturation, and the queries after
    idling (one full sub-batch per worker after each gap of ``service.idle_gaps_ms`` and after none)."""
    svc = config["service"]
    light = (light_queries(config, r) + 2) * r.light_mean_ms(w) / 1e3
    sat = float(svc["warmup_s"]) + float(svc["saturation_s"]) + 2 * r.mean_work_ms(w) / 1e3
    gaps = [float(g) for g in svc.get("idle_gaps_ms", [])]
    per_gap = int(svc.get("idle_queries_per_gap", 16)) if gaps else 0
    idle = per_gap * (sum(gaps) / 1e3 + (len(gaps) + 1) * (r.sub_batch_ms(int(config["batch_size"]), w)
                                                           + cal.dispatch_ms) / 1e3)
    return cal.resize_s + light + sat + idle


def _service(config, rates, counts, cal) -> StageEstimate:
    jobs = [cal.cli_s + node_start_s([r.cost], cal) + sum(service_point_s(config, r, w, cal) for w in counts)
            for r in rates.values()]
    return StageEstimate("service", "", len(jobs), sum(jobs),
                         f"{len(counts)} worker count(s) x {len(rates)} models")


def operating_probe_s(config: Mapping[str, Any], rate_qps: float, cal: Calibration) -> float:
    """The operating-point probe before a confirmation (:func:`hera.profile.scalability.operating_probe`):
    ``service.operating_chunks`` chunks like a confirmation trial's (and, in ``recheck_share`` of the points, the
    recheck's two more where ``service.operating_recheck`` is set), and the profile's model (1/4 replicates) that
    places it; then ``service.operating_after`` chunks the same way after the confirmation and the final model
    again at the speed the two bracket."""
    svc = config.get("service") or {}
    chunks = int(svc.get("operating_chunks", 1))
    if chunks <= 0:
        return 0.0
    chunk, model = chunk_s(config, rate_qps, cal), model_s(config, MODEL_RATES, cal)
    after = int(svc.get("operating_after", 0))
    return (probe_chunks(config, chunks, cal) * chunk + 0.25 * model
            + (probe_chunks(config, after, cal) * chunk + model if after > 0 else 0.0))


def probe_chunks(config: Mapping[str, Any], chunks: int, cal: Calibration) -> float:
    """Chunks an operating-point probe of ``chunks`` first chunks takes on average: the recheck's two more in
    ``recheck_share`` of the probes where ``service.operating_recheck`` is set."""
    if float((config.get("service") or {}).get("operating_recheck", 0.0)) > 0:
        from hera.loadgen.confirm import RECHECK_CHUNKS

        return chunks + cal.recheck_share * RECHECK_CHUNKS
    return float(chunks)


def _scalability(config, rates, counts, cal) -> StageEstimate:
    models = 1.25 if config["model"].get("tails", "trial") == "trial" else 1  # trial-shaped + steady (1/4 replicates)
    from hera.profile.scalability import refresh_service, remeasure_zero

    refresh = refresh_service(config)
    if refresh:
        from hera.profile.service import refresh_config

        refreshed = refresh_config(config)
    # a point confirmed 0 is measured again, whole (hera.profile.scalability.remeasure_zero): its expected share
    again = 1 + (cal.remeasure_share if remeasure_zero(config) else 0.0)
    jobs = []
    for r in rates.values():
        s = cal.cli_s + node_start_s([r.cost], cal)
        for w in counts:
            point = (cal.resize_s + models * model_s(config, MODEL_RATES, cal)
                     + confirmation_s(config, [r.qps_star(w)], cal) + operating_probe_s(config, r.qps_star(w), cal))
            if refresh:  # a refreshed service profile before each confirmation
                point += service_point_s(refreshed, r, w, cal)
            s += again * point
        jobs.append(s)
    c = config["confirm"]
    return StageEstimate("scalability", "", len(jobs), sum(jobs),
                         f"{len(counts)} worker count(s) x {len(rates)} models; {c['repeats']} repeats of chunks >= "
                         f"{c['min_queries']} queries and {c['trial_s']:g} s")


# interference profiles (hera profile interference / interference-calibration): the `interference` config section;
# a config without one gets these values (its schema's defaults)
INTERFERENCE_DEFAULTS: dict[str, Any] = {
    "light_queries_per_size": 2, "light_queries": 30, "saturation_s": 0.5, "warmup_s": 0.2, "window_s": 0.5,
    "cycles": 1, "calibration_cycles": None, "load_fracs": [0.5, 1.0], "pressure_workers": None,
}


def pressure_counts(config: Mapping[str, Any], n_workers: int) -> tuple[int, ...]:
    """Worker counts of the pressure measurement on ``n_workers`` worker cores (the profile's own rule,
    :func:`hera.profile.interference.settings.pressure_counts`; none without a core beside the reporter)."""
    from hera.errors import HeraError
    from hera.profile.interference.settings import pressure_counts as counts

    if n_workers < 2:
        return ()
    st = {**INTERFERENCE_DEFAULTS, **(config.get("interference") or {})}
    try:
        return counts(st["pressure_workers"], (config.get("profile") or {}).get("workers"), n_workers)
    except HeraError as exc:
        raise PlanError(str(exc)) from None


def _interference(config, rates, machine: MachineInfo, cal) -> StageEstimate:
    st = {**INTERFERENCE_DEFAULTS, **(config.get("interference") or {})}
    kinds = list(dict.fromkeys(config["profile"]["antagonists"]))
    xs = sorted({float(x) for x in config["profile"]["intensities"] if float(x) > 0})
    sens_kinds = len(kinds) + (1 if st.get("busy_core") else 0)  # the busy core: sensitivity only
    window = float(st["window_s"])
    # calibration: per kind, alone + cycles x (antagonist at 0 and each x, each followed by an alone window)
    cal_cycles = int(st["cycles"] if st["calibration_cycles"] is None else st["calibration_cycles"])
    cal_windows = 1 + cal_cycles * 2 * (len(xs) + 1)
    calib = cal.cli_s + len(kinds) * (cal.antagonist_start_s + cal_windows * window
                                      + cal_cycles * (len(xs) + 1) * cal.antagonist_start_s)
    counts = pressure_counts(config, machine.n_workers)
    jobs = []
    for r in rates.values():
        n_light = light_queries({"service": st}, r) + 2
        point = (cal.antagonist_start_s + n_light * r.light_mean_ms(1) * cal.antagonist_slowdown / 1e3
                 + float(st["warmup_s"]) + float(st["saturation_s"]))
        points = 1 + sens_kinds * (len(xs) + 1)
        fracs = len(st["load_fracs"])
        windows = 1 + int(st["cycles"]) * 2 * fracs
        loaded = int(st["cycles"]) * fracs
        press = sum(cal.resize_s + len(kinds) * (cal.antagonist_start_s + windows * window
                                                 + loaded * float(st["warmup_s"])) for _ in counts)
        jobs.append(cal.cli_s + node_start_s([r.cost], cal) + points * point + press)
    nb = neighbour_s(config, rates, cal)
    detail = (f"sensitivity {1 + sens_kinds * (len(xs) + 1)} points, pressure at {len(counts)} worker count(s) x "
              f"{len(kinds)} kinds, per model; calibration once")
    if nb:
        detail += f"; neighbour profiles {sum(nb.values()):.0f} s ({len(nb)} models)"
    return StageEstimate("interference", "", len(jobs) + 1 + len(nb), calib + sum(jobs) + sum(nb.values()), detail)


def neighbour_s(config: Mapping[str, Any], rates: Mapping[str, ModelRates], cal) -> dict[str, float]:
    """Seconds of each model's neighbour profile (``interference.neighbour``; none when it is off): the victim's
    and the neighbour's curves, a two-tenant node, a warm-up window and ``blocks`` × ``fractions`` windows, each
    long enough for ``min_queries`` of the victim's queries at ``load`` × its one-worker QPS*."""
    from hera.profile.neighbour import WARMUP_S, NeighbourSettings

    st = NeighbourSettings.from_config(dict(config))
    if not st.enabled:
        return {}
    out = {}
    for m, r in rates.items():
        ref = rates.get(st.reference_for(m), r)
        window = st.window_s(st.load * r.qps_star(1))
        out[m] = (cal.cli_s + 2 * model_s(config, CURVE_RATES, cal) + node_start_s([r.cost, ref.cost], cal)
                  + min(window, WARMUP_S) + st.blocks * len(st.fractions) * window)
    return out


def _pair_predictions(config, rates, machine: MachineInfo, n_pairs: int, cal,
                      calibration_models: int = 0) -> StageEstimate:
    """Every pair of the study's models is predicted (``n_pairs``), not only the measured ones; with a node
    calibration measured in the run, first the pairs of its ``calibration_models`` without a channel."""
    sizes = range(1, machine.n_workers)
    jobs = []
    for n_models, pairs in ((len(rates), n_pairs), (calibration_models, math.comb(calibration_models, 2))):
        if pairs:
            jobs.append(cal.cli_s + n_models * len(sizes) * model_s(config, CURVE_RATES, cal)
                        + pairs * machine.n_workers * cal.boundary_s)
    detail = f"{len(rates) * len(sizes)} latency curves, {n_pairs} pairs"
    if len(jobs) > 1:
        detail += f"; first {math.comb(calibration_models, 2)} pairs of the node calibration's models"
    return StageEstimate("pair_predictions", "", len(jobs), sum(jobs), detail)


def ray_rates(share_a: float, qps_a: float, qps_b: float, cal: Calibration) -> list[float]:
    """Both tenants' rates near the boundary of the ray ``t × (s · QPS*_a, (1 − s) · QPS*_b)``: without
    interference the first tenant reaches its alone QPS* at ``t = min(1/s, 1/(1 − s))``; interference lowers
    that by ``colocation_slowdown``."""
    t = min(1 / share_a, 1 / (1 - share_a)) * cal.colocation_slowdown
    return [share_a * qps_a * t, (1 - share_a) * qps_b * t]


def anchor_s(config: Mapping[str, Any], rates_qps: list[float], cal: Calibration) -> float:
    """F4's anchor before a split's rays (:func:`hera.profile.colocation.anchor_split`, ``colocation.anchor``):
    one probe per tenant alone at its alone QPS* — a chunk like a confirmation trial's and, in ``recheck_share``
    of them, the recheck's two more — and the anchored prediction's latency curves (one per tenant)."""
    if not (config.get("colocation") or {}).get("anchor", True):
        return 0.0
    chunks = probe_chunks(config, 1, cal)
    return sum(chunks * chunk_s(config, r, cal) for r in rates_qps) + len(rates_qps) * model_s(config, CURVE_RATES,
                                                                                             cal)


#: Seconds to predict one split of one visit again in ``hera profile refresh`` (run 72, the 2-core VM: 17.6 s for
#: 45 with the command's start).
REFRESH_SPLIT_S = 0.35


def _colocation(config, rates, machine: MachineInfo, pairs: list[tuple[str, str]], n_splits: int,
                cal, calibration: list[tuple[str, str]] = ()) -> StageEstimate:
    ca, cb = split_sizes(machine.n_workers)
    shares = tuple(config["colocation"].get("rays") or MEASURED_SHARES)
    repeats = point_repeats(config)
    visits = point_visits(config)
    jobs = []
    # the node calibration's pairs are measured as the study's are, in one sitting; each study pair in `visits`
    # sittings of repeats / visits each, and pooled (a command start)
    for (a, b), v in [*((p, visits) for p in pairs), *((p, 1) for p in calibration)]:
        ra, rb = rates[a], rates[b]
        qa, qb = ra.qps_star(ca), rb.qps_star(cb)
        ray = sum(2 * model_s(config, 1, cal)
                  + confirmation_s(config, ray_rates(s, qa, qb, cal), cal, visit_repeats(config, v)) for s in shares)
        jobs += [cal.cli_s + node_start_s([ra.cost, rb.cost], cal)
                 + n_splits * (2 * cal.resize_s + ray + anchor_s(config, [qa, qb], cal))] * v
    jobs += [cal.cli_s] * len(pairs)
    # the table of every pair with the refreshed prediction (hera profile refresh): each visit's splits predicted
    # again from the latency curves the stage's prediction built
    jobs.append(cal.cli_s + len(pairs) * visits * n_splits * REFRESH_SPLIT_S)
    extra = f" (+ {len(calibration)} node calibration pairs)" if calibration else ""
    visited = f", {visits} visits of {repeats // visits} repeat(s)" if visits > 1 else ""
    return StageEstimate("colocation", "", len(jobs) + (1 if calibration else 0), sum(jobs),
                         f"{len(pairs)} pairs{extra} x {n_splits} splits x {len(shares)} rays, one confirmation "
                         f"each{visited}")


def _policies(cal) -> StageEstimate:
    return StageEstimate("policies", "", 2, 2 * (cal.light_cli_s + 5.0), "hera policy evaluate, hera cluster provision")


def reference_pair(rates: Mapping[str, ModelRates], colocation_models: list[str]) -> list[ModelCost]:
    """The two largest models of the co-location study (node start of a serving node, conservatively)."""
    costs = sorted((rates[m].cost for m in colocation_models), key=lambda c: -c.embedding_bytes)
    return costs[:2]


def _serving(config, rates, colocation_models, cal) -> StageEstimate:
    """Every policy's nodes served (an upper bound: F6 serves a node that two policies plan identically once,
    which only the plans, not yet made, can tell)."""
    policies = list(config["policies"])
    groups = len(policies) + (1 if "single_tenant" in policies else 0)
    fracs = list(config["serving"]["load_fracs"])
    trial = float(config["serving"]["trial_s"])
    node = node_start_s(reference_pair(rates, colocation_models), cal)
    again = node_start_s(reference_pair(rates, colocation_models), cal, first=False)
    s = cal.cli_s + node + (groups - 1) * again + groups * len(fracs) * (trial + cal.serving_overhead_s)
    return StageEstimate("serving", "", 1, s, f"at most {groups} nodes x {len(fracs)} load steps x {trial:g} s")


def _load_change(config, rates, colocation_models, cal) -> StageEstimate:
    dur = float(config["load_change"]["duration_s"])
    pair = reference_pair(rates, colocation_models)
    nodes = node_start_s(pair, cal) + (MANAGERS - 1) * node_start_s(pair, cal, first=False)
    return StageEstimate("load_change", "", 1, cal.cli_s + nodes + MANAGERS * (dur + cal.serving_overhead_s),
                         f"{MANAGERS} managers x {dur:g} s")


def _report(machine: MachineInfo, cal) -> StageEstimate:
    from hera.report.catalog import FIGURE_IDS

    jobs = len(FIGURE_IDS) + 1 + 6  # figures, T2, concatenated profile/co-location tables
    return StageEstimate("report", "", jobs, parallel_s([cal.light_cli_s + 2.0] * jobs, machine.logical_cpus),
                         f"{len(FIGURE_IDS)} figures, T2, {6} tables")


def node_calibration_pairs(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The pairs ``colocation.node_calibration`` measures before the study's (:mod:`hera.profile.
    node_calibration`); :class:`PlanError` naming a pair that cannot be one."""
    from hera.errors import HeraError
    from hera.profile.node_calibration import config_pairs

    try:
        return config_pairs(config)
    except HeraError as e:
        raise PlanError(f"colocation.node_calibration: {e}") from None


# ------------------------------------------------------------------------------------------------ the plan
def estimate(config: Mapping[str, Any], machine: MachineInfo, costs: Mapping[str, ModelCost],
             cal: Calibration | None = None, venv: bool = True) -> Plan:
    """The :class:`Plan` of a validated study ``config`` on ``machine`` (``costs``: every study model)."""
    from hera.machine import check_fits
    from hera.topology import worker_counts

    cal = cal or Calibration()
    models = list(config["models"])
    coloc = list((config.get("colocation") or {}).get("models") or models)
    missing = [m for m in set(models) | set(coloc) if m not in costs]
    if missing:
        raise PlanError(f"no model cost for {sorted(missing)[0]!r}")
    if machine.n_workers < 2:
        raise PlanError(f"co-location needs at least 2 worker cores; the core plan on {machine.source} has "
                        f"{machine.n_workers}")
    biggest = max((costs[m] for m in set(models) | set(coloc)), key=lambda c: c.embedding_bytes)
    check_fits(biggest.embedding_bytes, f"model {biggest.model} at scale {config['scale']} on {machine.source}",
               available_memory_bytes=machine.memory_bytes)
    counts = worker_counts((config.get("profile") or {}).get("workers"), machine.n_workers)
    rates = model_rates({m: costs[m] for m in dict.fromkeys(models + coloc)}, config, machine, cal)
    study = {m: rates[m] for m in models}
    pairs = list(itertools.combinations(coloc, 2))
    calibration = node_calibration_pairs(config)
    n_splits = splits_measured(machine, config)
    stages = [
        _venv(cal) if venv else StageEstimate("venv", "", 0, 0.0, "not counted (--no-venv)"),
        _setup(machine, cal),
        _models(config, {m: costs[m] for m in models}, machine, cal),
        _t1(config, study, cal),
        _latency(config, study, cal),
        _service(config, study, counts, cal),
        _scalability(config, study, counts, cal),
        _interference(config, study, machine, cal),
        _pair_predictions(config, study, machine, math.comb(len(models), 2), cal,
                          len({m for p in calibration for m in p})),
        _colocation(config, rates, machine, pairs, n_splits, cal, calibration),
        _policies(cal),
        _serving(config, rates, coloc, cal),
        _load_change(config, rates, coloc, cal),
        _report(machine, cal),
    ]
    jobs = sum(s.jobs for s in stages)
    stages.append(StageEstimate("scheduling", "", 0, cal.snakemake_start_s + jobs * cal.snakemake_job_s,
                                f"{jobs} jobs"))
    titles = dict(STAGES)
    stages = [StageEstimate(s.stage, titles[s.stage], s.jobs, s.seconds, s.detail) for s in stages]
    qps = {m: {w: round(r.qps_star(w), 2) for w in counts} for m, r in study.items()}
    return Plan(machine, str(config["scale"]), tuple(models), tuple(coloc), counts, n_splits, tuple(stages), qps)


def as_rows(plan: Plan) -> list[dict[str, Any]]:
    """One dict per stage (for tables)."""
    return [asdict(s) for s in plan.stages]


def hms(seconds: float) -> str:
    """``3725`` → ``1:02:05``."""
    s = int(math.ceil(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
