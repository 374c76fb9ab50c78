"""F4: guided co-location of a model pair — the measured boundary of the two tenants' feasible region at the
splits the prediction says matter, with the prediction beside every measured value.

O(N) profiles predict every split of every pair (:mod:`hera.profile.pair_prediction`, ``colocation/predicted.csv``);
this stage measures only (docs/DESIGN.md, "Co-location"):

- the predicted-best split (cores and LLC option), its neighbour core splits (one core more or less for tenant a,
  same LLC option), when the best split partitions the LLC the shared-LLC case of its cores, and the even split
  with a shared LLC (the baselines' split, so they are scored on measurements too);
- on each, three points of the boundary of the feasible region: the rays ``t × (s · QPS*_a(c_a), (1 − s) ·
  QPS*_b(c_b))`` for s in ``colocation.rays`` (default 0.5, 0.75, 0.25: balanced, a favoured, b favoured), ``QPS*_i(c_i)`` the tenant's measured alone QPS* on its cores (F2). Both tenants are always loaded.
- each point with the confirmation procedure of QPS* (:func:`hera.loadgen.confirm.confirm_point`: repeats of
  joint open-loop trials bracketing the predicted scale, the normalised tail max_i tail_i / SLA_i interpolated
  to 1, the node model inflated by the predicted interference as each tenant's control variate).

Each row is one measured point: both tenants' co-located QPS* there (median over repeats with an interval), its
EMU ``Σ_i λ_i / QPS*_i(alone, whole node)``, and the predicted values beside. ``best`` marks the row with the
highest measured EMU. One node serves the pair; splits are applied at run time (``resize``, ``set_llc_ways``).
Rows are appended to ``<out stem>.partial.csv`` as each point finishes; a rerun resumes.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from hera.config import point_repeats, visit_repeats  # noqa: F401  (re-exported)
from hera.profile import common
from hera.profile.splits import Split, plan_splits, way_splits  # noqa: F401  (re-exported)

COLUMNS = ["model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "llc", "share_a", "qps_star_a",
           "qps_star_a_lo", "qps_star_a_hi", "qps_star_b", "qps_star_b_lo", "qps_star_b_hi", "emu", "emu_lo",
           "emu_hi", "ci_level", "best", "ray_scale", "ray_scale_raw", "per_repeat", "predicted_qps_star_a",
           "predicted_qps_star_b", "predicted_emu", "predicted_emu_lo", "predicted_emu_hi", "predicted_scale",
           "predicted_best", "selected_as", "qps_alone_a", "qps_alone_b", "qps_whole_a", "qps_whole_b", "sla_ms_a",
           "sla_ms_b", "percentile", "repeats", "retested", "n_trials", "trial_seconds", "wall_seconds", "cpus_a",
           "cpus_b", "llc_partitioning", "service_drift_a", "service_drift_b", "predicted_served_qps_star_a",
           "predicted_served_qps_star_b", "predicted_served_emu", "anchor_a", "anchor_b", "anchor_seconds",
           "anchored_scale", "anchored_qps_star_a", "anchored_qps_star_b", "anchored_emu", "anchored_emu_lo",
           "anchored_emu_hi", "scale", "note"]
TRIAL_COLUMNS = ["model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "share_a", "repeat", "attempt",
                 "trial", "scale", "tenant", "rate_qps", "chunks", "warmup_queries", "verdict", "passed",
                 "latency_ms_pct", "latency_ms_pct_adjusted", "control_variate_factor", "service_drift", "sla_ms", "n_measured",
                 "n_over_sla", "miss_lo", "miss_hi", "duration_s", "wall_s", "issue_lateness_us_p99",
                 "harness_saturated", "problem"]
KEY = ["cores_a", "cores_b", "ways_a", "ways_b", "share_a"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- running
class _PairNode:
    """The pair's node, started lazily on the first split and re-split in place afterwards."""

    def __init__(self, config: dict[str, Any], names: tuple[str, str], models: tuple[str, str],
                 opts: common.NodeOptions):
        self.config, self.names, self.models, self.opts = config, names, models, opts
        self._cm = None
        self.node = None

    def apply(self, split: Split) -> Any:
        batch, max_items = int(self.config["batch_size"]), int(self.config["queries"]["max_items"])
        na, nb = self.names
        if self.node is None:
            plans = [common.TenantPlan(na, self.models[0], split.cpus_a, batch, max_items, split.ways_a),
                     common.TenantPlan(nb, self.models[1], split.cpus_b, batch, max_items, split.ways_b)]
            self._cm = common.start_node(self.config, plans, self.opts)
            self.node = self._cm.__enter__()
            return self.node
        node = self.node
        cur_a = tuple(node.stats()[na].cores)
        if cur_a != split.cpus_a:  # shrink first so that the two core sets never overlap
            if len(split.cpus_a) > len(cur_a):
                node.resize(nb, list(split.cpus_b))
                node.resize(na, list(split.cpus_a))
            else:
                node.resize(na, list(split.cpus_a))
                node.resize(nb, list(split.cpus_b))
        if split.ways_a is None:  # the shared LLC (after a way split: back to the shared block)
            node.set_llc_ways(na, None)
            node.set_llc_ways(nb, None)
        else:
            cur = node.stats()[na].llc_ways_requested
            if cur is not None and split.ways_a > cur:
                node.set_llc_ways(nb, split.ways_b)
                node.set_llc_ways(na, split.ways_a)
            else:
                node.set_llc_ways(na, split.ways_a)
                node.set_llc_ways(nb, split.ways_b)
        return node

    def close(self) -> None:
        if self._cm is not None:
            self._cm.__exit__(None, None, None)
            self._cm = self.node = None


#: Policies that run a pair on the even split with a shared LLC (measured for them when they are configured).
EVEN_SPLIT_POLICIES = ("random", "greedy", "parties")


def select_splits(pred: pd.DataFrame, neighbours: bool = True, even: bool = True
                  ) -> list[tuple[int, int, Any, Any, str]]:
    """``(cores_a, cores_b, ways_a, ways_b, why)`` of the splits to measure, from one pair's prediction rows: the
    predicted best, its neighbour core splits with the same LLC option (``neighbours``), the shared LLC of the
    best cores, and the even split with a shared LLC (``even``: what the random, greedy and PARTIES baselines run,
    measured so they are scored on measurements too)."""
    def ways(v: Any) -> Any:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else int(v)

    best = pred[pred["best"].astype(bool)]
    if best.empty:
        return []  # no split loads both tenants (a tenant meets no rate alone on its cores): nothing to measure
    b = best.iloc[0]
    ca, cb, wa, wb = int(b["cores_a"]), int(b["cores_b"]), ways(b["ways_a"]), ways(b["ways_b"])
    chosen = [(ca, cb, wa, wb, "predicted best")]
    have = {(int(r.cores_a), int(r.cores_b), ways(r.ways_a), ways(r.ways_b)) for r in pred.itertuples()}
    for d in (-1, 1) if neighbours else ():
        n = (ca + d, cb - d, wa, wb)
        if n in have:
            chosen.append((*n, "neighbour of the best"))
    if wa is not None and (ca, cb, None, None) in have:
        chosen.append((ca, cb, None, None, "shared LLC of the best cores"))
    half = (ca + cb) // 2
    even_split = (half, ca + cb - half, None, None)
    if even and even_split in have and even_split not in [c[:4] for c in chosen]:
        chosen.append((*even_split, "even split, shared LLC (the baselines' split)"))
    return chosen


@dataclass(frozen=True)
class TenantModel:
    """A tenant's node model at a co-location point: its service law (the profile on ``workers`` workers, every
    service time multiplied by the point's predicted inflation and calibration), query mix and model settings."""

    law: Any
    mix: np.ndarray
    settings: Any
    percentile: float
    seed: int

    def tail_model(self):
        """The control variate of the tenant's trials (:class:`hera.queueing.qps.TailModel`)."""
        from hera.queueing.qps import TailModel

        return TailModel(self.law, self.mix, self.percentile, seed=self.seed)

    def served_qps(self, sla_ms: float, drift: float) -> float:
        """Its modelled QPS* with the service times as the trials served them (the law x the measured drift,
        :func:`hera.profile.scalability.served_model_qps`)."""
        from hera.profile.scalability import served_model_qps

        return served_model_qps(self.law, self.mix, sla_ms, self.percentile, self.settings, drift)

    def guide(self, sla_ms: float):
        """:meth:`served_qps` as a cached function of the drift (:func:`hera.profile.scalability.served_guide`)."""
        from hera.profile.scalability import served_guide

        return served_guide(self.law, self.mix, sla_ms, self.percentile, self.settings)


def tenant_model(config: dict[str, Any], samples: pd.DataFrame, workers: int, inflation: float,
                 stream: str) -> TenantModel:
    """The :class:`TenantModel` of a tenant on ``workers`` workers whose service times the prediction inflates by
    ``inflation``."""
    from hera.profile.scalability import model_settings
    from hera.profile.service import mix_sizes, service_law

    law = service_law(samples, workers, int(config["batch_size"])).scaled(inflation)
    ms = model_settings(config, stream)
    mix = mix_sizes(config, ms.n_queries, common.derived_seed(int(config["seed"]), "model-sizes", stream))
    return TenantModel(law, mix, ms, float(config["sla"]["percentile"]),
                       common.derived_seed(int(config["seed"]), "tail-model", stream))


def ray_settings(config: dict[str, Any], visits: int = 1):
    """The confirmation settings of a ray point in one of ``visits`` visits: ``confirm``'s, with the point's
    repeats (``colocation.repeats`` where set) split over the visits (:func:`visit_repeats`)."""
    import dataclasses

    from hera.loadgen.confirm import ConfirmSettings

    return dataclasses.replace(ConfirmSettings.from_config(config), repeats=visit_repeats(config, visits),
                               visits=visits)


def pair_stream(ma: str, mb: str, visit: int = 1) -> str:
    """The seed stream of a pair's points and anchors: visit 1 (and a single visit) keeps the stream of one
    sitting; later visits draw their own arrival and query seeds."""
    return f"colocation/{ma}__{mb}" + ("" if visit == 1 else f"/visit{visit}")


def served_scale(direction: dict[str, float], qps: dict[str, float], trial_sd: dict[str, float] | None = None,
                 iterations: int = 60) -> float:
    """The ray's scale where the first tenant reaches its SLA when each tenant's service times are fixed at what
    was served (``qps[t]``: its modelled QPS* so, :meth:`TenantModel.served_qps`): ``min_t qps[t] / direction[t]``;
    with ``trial_sd`` (each tenant's trial noise in log rate, as the prediction has it; None, NaN or 0: taken as
    exact) where a joint trial passes half the time (:func:`hera.profile.pair_prediction.joint_pass_probability`),
    as the prediction puts its boundary. NaN when a tenant's is unknown."""
    from hera.profile.pair_prediction import pass_probability

    vals = {t: qps[t] / direction[t] for t in direction}
    if not all(math.isfinite(v) for v in vals.values()):
        return math.nan
    first = float(min(vals.values()))
    sd = {t: float((trial_sd or {}).get(t) or 0.0) for t in direction}  # NaN stays NaN: exact, as 0
    if first <= 0 or not any(v > 0 for v in sd.values()):
        return first

    def passes(scale: float) -> bool:
        p = 1.0
        for t in direction:
            p *= float(pass_probability(np.array([scale]), np.array([vals[t]]), sd[t])[0])
        return p >= 0.5

    lo, hi = first * 0.25, first  # every tenant passes at most half the time at the first one's QPS*
    while not passes(lo) and lo > first * 1e-6:
        lo /= 2
    for _ in range(iterations):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if passes(mid) else (lo, mid)
    return lo


@dataclass(frozen=True)
class Anchor:
    """Each tenant's speed alone on its cores of a split, measured right before the split's rays, against the
    speed F2's trials served it at (:func:`hera.profile.pair_prediction.served_speed`): ``factor[t]`` > 1 — the
    machine serves t that much slower now than when its alone QPS* was measured (1: not anchored, ``why`` says
    so). ``drifts[t]``: each probe chunk's factor, in order; ``seconds``: the probes' wall time."""

    factor: dict[str, float]
    drifts: dict[str, tuple[float, ...]]
    seconds: float
    why: str = ""


def anchor_split(node: Any, config: dict[str, Any], split: Split, names: tuple[str, str], models: tuple[str, str],
                 alone: dict[str, float], sla: dict[str, dict[str, Any]], scal: pd.DataFrame,
                 samples: dict[str, pd.DataFrame], stream: str) -> Anchor:
    """One operating-point probe per tenant *alone* (its partner idle) on its cores of ``split``, at its measured
    alone QPS* there, against its service profile × F2's served speed on that many workers: how much faster or
    slower the machine serves it now than when F2 measured it (docs/DESIGN.md, "The prediction anchored to the
    machine").
    A probe like F2's (:func:`hera.loadgen.confirm.probe_service_drift`: one chunk, two more and the median when
    outside ``service.operating_recheck``). No pair information enters: each tenant runs alone."""
    import time

    from hera.loadgen.confirm import ConfirmSettings, probe_service_drift
    from hera.loadgen.sut import NodeSUT
    from hera.profile.pair_prediction import served_speed
    from hera.profile.scalability import confirm_settings, operating_recheck

    t0 = time.perf_counter()
    factor, drifts, why = {}, {}, []
    cores = {names[0]: len(split.cpus_a), names[1]: len(split.cpus_b)}
    for t, m in zip(names, models):
        speed = served_speed(scal, m, cores[t])
        rate = float(alone.get(t, math.nan))
        if not (math.isfinite(speed) and speed > 0 and math.isfinite(rate) and rate > 0):
            factor[t], drifts[t] = 1.0, ()
            why.append(f"{t} not anchored (" + ("no F2 service speed in the scalability table"
                                                 if not (math.isfinite(speed) and speed > 0)
                                                 else "no alone QPS* on its cores") + ")")
            continue
        tm = tenant_model(config, samples[m], cores[t], speed, f"{stream}/anchor/{t}")
        seed = common.derived_seed(int(config["seed"]), "anchor", f"{stream}/{t}")
        probe = probe_service_drift(NodeSUT(node), confirm_settings(config, sla[m]["sla_ms"], rate, f"{stream}/{t}"),
                                    node.library_size(t), rate_qps=rate, sla_ms=sla[m]["sla_ms"],
                                    percentile=float(config["sla"]["percentile"]), model=tm.tail_model(),
                                    settings=ConfirmSettings.from_config(config), chunks=1, seed=seed, tenant=t,
                                    recheck_band=operating_recheck(config))
        ok = math.isfinite(probe.drift) and probe.drift > 0
        factor[t], drifts[t] = (float(probe.drift) if ok else 1.0), tuple(probe.chunk_drifts)
        if not ok:
            why.append(f"{t} not anchored (its probe measured no service span)")
    return Anchor(factor, drifts, time.perf_counter() - t0, "; ".join(why))


def anchored_predictions(config: dict[str, Any], models: tuple[str, str], split: Split, anchor: Anchor,
                         names: tuple[str, str], scal: pd.DataFrame, services: dict[str, str | Path],
                         sla: dict[str, dict[str, Any]], interference: Any, resctrl_root: str | None = None
                         ) -> pd.DataFrame:
    """The pair's prediction on ``split`` (every measured ray) with each tenant's calibrated curve rescaled by its
    anchor: what the O(N) profiles predict on the machine as it serves now. Factors of 1 give the stage's
    prediction exactly (the curves are built as ``predict-pairs`` builds them)."""
    from hera.profile.pair_prediction import MEASURED_SHARES, node_splits, pair_curves, predict_pair

    ma, mb = models
    (ca, cb) = (len(split.cpus_a), len(split.cpus_b))
    psplit = next((p for p in node_splits(config, resctrl_root)[0]
                   if (p.cores_a, p.cores_b, p.ways_a, p.ways_b) == (ca, cb, split.ways_a, split.ways_b)), None)
    if psplit is None:
        raise common.ProfileError(f"split {ca}+{cb} cores, LLC {split.ways_a}/{split.ways_b} is not one of this "
                                  "node's splits")
    curves, alone, _, _ = pair_curves(config, [ma, mb], sla, scal,
                                      {m: str(services[m]) for m in models}, sorted({ca, cb}))
    by_model = {ma: anchor.factor[names[0]], mb: anchor.factor[names[1]]}
    curves = {k: c.rescaled(by_model[k[0]]) for k, c in curves.items()}
    whole = {m: common.qps_whole_node(scal, m) for m in models}
    rays = tuple(float(x) for x in config["colocation"].get("rays") or MEASURED_SHARES)
    return predict_pair(curves, ma, mb, [psplit], alone, whole, interference, float(config["model"]["confidence"]),
                        rays, rays)


def measure_point(node: Any, split: Split, share_a: float, names: tuple[str, str], models: tuple[str, str],
                  pred: pd.Series, sla: dict[str, dict[str, Any]], scal: pd.DataFrame,
                  samples: dict[str, pd.DataFrame], config: dict[str, Any], anchored: pd.Series | None = None,
                  anchor: Anchor | None = None, visit: int = 1, visits: int = 1) -> tuple[dict[str, Any], pd.DataFrame]:
    """One row (and its trials): the measured boundary point of the ray ``share_a`` under ``split``, confirmed from
    the stage's prediction ``pred`` (its scale the first bracket's centre, its inflated and calibrated node models
    the control variates); ``anchored`` (the ray's prediction on the machine as it serves now,
    :func:`anchored_predictions`) and ``anchor`` are recorded beside, never used by the measurement. ``visit`` of
    ``visits``: the point takes its share of the repeats, on the visit's own seeds (:mod:`hera.profile.visits`)."""
    import time

    from hera.loadgen.confirm import confirm_point
    from hera.loadgen.sut import NodeSUT
    from hera.profile.scalability import confirm_settings, drift_summary, guided

    (na, nb), (ma, mb) = names, models
    ca, cb = len(split.cpus_a), len(split.cpus_b)
    # the ray's alone QPS* and EMU's denominators: as the prediction took them (measured where profiled)
    alone = {na: float(pred["qps_alone_a"]), nb: float(pred["qps_alone_b"])}
    whole = {na: float(pred["qps_whole_a"]), nb: float(pred["qps_whole_b"])}
    direction = {na: share_a * alone[na], nb: (1 - share_a) * alone[nb]}
    stream = f"{pair_stream(ma, mb, visit)}/{ca}+{cb}/{split.ways_a}/{share_a:g}"
    bases = {t: confirm_settings(config, sla[m]["sla_ms"], direction[t], f"{stream}/{t}") for t, m in zip(names, models)}
    def scale(side: str) -> float:  # the prediction's interference inflation and its calibration of the profile
        k = pred.get(f"service_scale_{side}", 1.0)
        return float(pred[f"inflation_{side}"]) * (float(k) if pd.notna(k) else 1.0)

    tms = {na: tenant_model(config, samples[ma], ca, scale("a"), f"{stream}/a"),
           nb: tenant_model(config, samples[mb], cb, scale("b"), f"{stream}/b")}
    tails = {t: m.tail_model() for t, m in tms.items()}
    noise = {na: pred.get("trial_sd_a"), nb: pred.get("trial_sd_b")}
    guides = {t: tms[t].guide(sla[m]["sla_ms"]) for t, m in zip(names, models)}

    def guide(drift: dict[str, float]) -> float:  # the ray's scale with each tenant's service as served
        return served_scale(direction, {t: guides[t](drift[t]) for t in names}, noise)

    t0 = time.perf_counter()
    res = confirm_point(NodeSUT(node), bases, {t: node.library_size(t) for t in names}, direction=direction,
                        modelled=float(pred["ray_scale"]), sla_ms={t: sla[m]["sla_ms"] for t, m in zip(names, models)},
                        percentile=float(config["sla"]["percentile"]), settings=ray_settings(config, visits),
                        models=tails, guide=guide if guided(config) else None, log=_log)
    wall = time.perf_counter() - t0
    w_a, w_b = share_a * alone[na] / whole[na], (1 - share_a) * alone[nb] / whole[nb]
    drift = {t: drift_summary(res.trials[res.trials["tenant"] == t])["service_drift"] for t in names}
    # the prediction's boundary model on the service times as served (each tenant's law x its measured drift):
    # what is left of the error once the interference prediction's miss (the drift) is taken out; the boundary
    # read as the prediction reads it (each tenant's trial noise, where the prediction has it)
    served = served_scale(direction, {t: tms[t].served_qps(sla[m]["sla_ms"], drift[t]) for t, m in zip(names, models)},
                          noise)
    row = {
        "model_a": ma, "model_b": mb, **split.key(), "llc": "shared" if split.ways_a is None
        else f"{split.ways_a}/{split.ways_b}", "share_a": float(share_a),
        "qps_star_a": res.value * direction[na], "qps_star_a_lo": res.value_ci_lo * direction[na],
        "qps_star_a_hi": res.value_ci_hi * direction[na], "qps_star_b": res.value * direction[nb],
        "qps_star_b_lo": res.value_ci_lo * direction[nb], "qps_star_b_hi": res.value_ci_hi * direction[nb],
        "emu": res.value * (w_a + w_b), "emu_lo": res.value_ci_lo * (w_a + w_b),
        "emu_hi": res.value_ci_hi * (w_a + w_b), "ci_level": res.value_ci_level, "best": False,
        "ray_scale": res.value, "ray_scale_raw": res.value_raw,
        "per_repeat": ";".join(f"{x:.6g}" for x in res.per_repeat),
        "predicted_qps_star_a": float(pred["qps_star_a"]), "predicted_qps_star_b": float(pred["qps_star_b"]),
        "predicted_emu": float(pred["emu"]), "predicted_emu_lo": float(pred["emu_lo"]),
        "predicted_emu_hi": float(pred["emu_hi"]), "predicted_scale": float(pred["ray_scale"]),
        "predicted_best": bool(pred["best"]), "qps_alone_a": alone[na], "qps_alone_b": alone[nb],
        "qps_whole_a": whole[na], "qps_whole_b": whole[nb], "sla_ms_a": sla[ma]["sla_ms"],
        "sla_ms_b": sla[mb]["sla_ms"], "percentile": float(config["sla"]["percentile"]), "repeats": res.repeats,
        "retested": res.retested, "n_trials": res.n_trials, "trial_seconds": res.trial_seconds,
        "wall_seconds": wall, "cpus_a": " ".join(map(str, split.cpus_a)),
        "cpus_b": " ".join(map(str, split.cpus_b)), "llc_partitioning": node.llc_partitioning,
        "scale": config["scale"], "note": res.note,
        # measured over predicted query span of each tenant in the trials (predicted: its profile x the predicted
        # inflation x the profile's calibration): how far the predicted service times were off, machine included
        "service_drift_a": drift[na], "service_drift_b": drift[nb],
        "predicted_served_qps_star_a": served * direction[na], "predicted_served_qps_star_b": served * direction[nb],
        "predicted_served_emu": served * (w_a + w_b),
        # the prediction anchored to each tenant's speed alone right before this split (NaN: not anchored)
        **anchored_fields(anchored, anchor, names),
    }
    trials = res.trials.assign(model_a=ma, model_b=mb, **split.key(), share_a=float(share_a))
    return row, trials


def _anchor(node: Any, config: dict[str, Any], split: Split, names: tuple[str, str], models: tuple[str, str],
            first: pd.Series, sla: dict[str, dict[str, Any]], scal: pd.DataFrame, samples: dict[str, pd.DataFrame],
            services: dict[str, str | Path], interference: Any, resctrl_root: str | None, visit: int = 1
            ) -> tuple[Anchor, pd.DataFrame]:
    """The split's anchor (:func:`anchor_split`, at the tenants' alone QPS* of its prediction row ``first``) and
    its anchored prediction (:func:`anchored_predictions`), logged."""
    (na, nb), (ma, mb) = names, models
    anchor = anchor_split(node, config, split, names, models,
                          {na: float(first["qps_alone_a"]), nb: float(first["qps_alone_b"])}, sla, scal, samples,
                          f"{pair_stream(ma, mb, visit)}/{len(split.cpus_a)}+{len(split.cpus_b)}/{split.ways_a}")
    _log(f"[colocation] anchor: {na} x{anchor.factor[na]:.3f}, {nb} x{anchor.factor[nb]:.3f} against F2's service "
         f"speed ({anchor.seconds:.1f} s)" + (f"; {anchor.why}" if anchor.why else ""))
    return anchor, anchored_predictions(config, models, split, anchor, names, scal, services, sla, interference,
                                        resctrl_root)


def anchored_fields(anchored: pd.Series | None, anchor: Anchor | None, names: tuple[str, str]) -> dict[str, float]:
    """The row's ``anchor_*`` and ``anchored_*`` columns (NaN where the point was not anchored)."""
    nan = math.nan
    out = {"anchor_a": nan, "anchor_b": nan, "anchor_seconds": nan, "anchored_scale": nan,
           "anchored_qps_star_a": nan, "anchored_qps_star_b": nan, "anchored_emu": nan, "anchored_emu_lo": nan,
           "anchored_emu_hi": nan}
    if anchor is not None:
        out.update(anchor_a=anchor.factor[names[0]], anchor_b=anchor.factor[names[1]], anchor_seconds=anchor.seconds)
    if anchored is not None:
        out.update(anchored_scale=float(anchored["ray_scale"]), anchored_qps_star_a=float(anchored["qps_star_a"]),
                   anchored_qps_star_b=float(anchored["qps_star_b"]), anchored_emu=float(anchored["emu"]),
                   anchored_emu_lo=float(anchored["emu_lo"]), anchored_emu_hi=float(anchored["emu_hi"]))
    return out


def pair_predictions(predicted: str | Path, ma: str, mb: str) -> pd.DataFrame:
    """The prediction rows of one pair (``colocation/predicted.csv``)."""
    from hera.harness import read_csv_table

    df = read_csv_table(predicted, "pair predictions")
    rows = df[(df["model_a"] == ma) & (df["model_b"] == mb)]
    if rows.empty:
        raise common.ProfileError(f"pair predictions {predicted} have no rows for {ma} + {mb}")
    return rows


def run(config: dict[str, Any], pair: str, t1: str | Path, scalability: str | Path, predicted: str | Path,
        services: dict[str, str | Path], out: str | Path, opts: common.NodeOptions | None = None,
        on_point: Callable[[dict[str, Any]], None] | None = None, interference: Any = None, visit: int = 1,
        visits: int = 1) -> pd.DataFrame:
    """Measure the selected points of ``pair`` (``"a__b"``), resumably; write ``out`` (and ``<stem>.trials.csv``);
    return its rows. ``services[m]``: the service profile of each model. ``on_point(row)`` is called after each
    point is on disk (tests interrupt through it). ``interference``: the interference profiles the stage's
    prediction used (none: the tenants assumed not to interfere), for the anchored prediction
    (``colocation.anchor``, :func:`anchor_split`). ``visit`` of ``visits`` (``colocation.visits``): this sitting
    takes its share of each point's repeats on its own seeds; :func:`hera.profile.visits.pool` pools the visits."""
    from hera.machine import resctrl_info
    from hera.profile.service import read_samples

    from hera.errors import ConfigError

    opts = opts or common.NodeOptions()
    if not 1 <= visit <= visits:
        raise ConfigError(f"visit {visit} of {visits}: a visit is numbered 1 to colocation.visits")
    visit_repeats(config, visits)
    ma, mb = common.parse_pair(pair, opts.runner)
    sla = common.read_t1(t1, [ma, mb])
    scal = common.read_scalability(scalability, [ma, mb])
    pred = pair_predictions(predicted, ma, mb)
    samples = {m: read_samples(services[m], m) for m in (ma, mb)}
    cores = common.study_cores(config)
    resctrl = resctrl_info(Path(opts.resctrl_root or "/sys/fs/resctrl"))
    splits, partitioning = plan_splits(cores, resctrl, bool(config["colocation"]["llc_splits"]))
    by_key = {(len(sp.cpus_a), len(sp.cpus_b), sp.ways_a, sp.ways_b): sp for sp in splits}
    chosen = []
    selected = select_splits(pred, bool(config["colocation"].get("neighbours", True)),
                             any(p in config.get("policies", EVEN_SPLIT_POLICIES) for p in EVEN_SPLIT_POLICIES))
    if not selected:
        why = "; ".join(sorted(set(str(n).split("; predicted")[0] for n in pred.get("note", pd.Series(dtype=str))
                                   if str(n).startswith("not predicted"))))
        _log(f"[colocation] {ma} + {mb}: nothing to measure, no split loads both tenants ({why or 'no best split'})")
    for ca, cb, wa, wb, why in selected:
        if (ca, cb, wa, wb) not in by_key:
            raise common.ProfileError(f"predicted split {ca}+{cb} cores, LLC {wa}/{wb} does not fit this node "
                                      f"({len(cores)} study cores, LLC partitioning {partitioning})")
        chosen.append((by_key[(ca, cb, wa, wb)], why))
    names = (common.tenant_name(ma, mb, "a"), common.tenant_name(mb, ma, "b"))
    scal_fp = scal[["model", "workers", "qps_star"]].sort_values(["model", "workers"]).to_dict("records")
    fp = common.fingerprint("colocation-v6", ma, mb, config, sla, scal_fp, cores, opts.runner, partitioning,
                            *(() if visits == 1 else (visit, visits)),
                            pred[["cores_a", "cores_b", "llc", "share_a", "ray_scale"]].to_dict("records"))
    table = common.ResumableTable(out, COLUMNS, KEY, fp)
    trials_t = common.ResumableTable(Path(out).with_name(Path(out).stem + ".trials.csv"), TRIAL_COLUMNS, KEY, fp)
    shares = [float(x) for x in config["colocation"].get("rays") or (0.5, 0.75, 0.25)]
    todo = [(sp, why, s) for sp, why in chosen for s in shares
            if not table.done(**sp.key(), share_a=float(s))]
    anchoring = bool(config["colocation"].get("anchor", True))
    if interference is None:
        from hera.profile.pair_prediction import NoInterference

        interference = NoInterference()
    anchors: dict[Any, tuple[Anchor, pd.DataFrame]] = {}
    if todo:
        pn = _PairNode(config, names, (ma, mb), opts)
        try:
            for sp, why, s in todo:
                p = pred[(pred["cores_a"] == len(sp.cpus_a)) & (pred["cores_b"] == len(sp.cpus_b))
                         & (pred["llc"] == ("shared" if sp.ways_a is None else f"{sp.ways_a}/{sp.ways_b}"))
                         & np.isclose(pred["share_a"].astype(float), s)]
                if p.empty:
                    raise common.ProfileError(f"pair predictions lack the ray s = {s:g} of split {sp.key()}")
                _log(f"[colocation] {ma} on cores {list(sp.cpus_a)} + {mb} on cores {list(sp.cpus_b)}"
                     + (f", LLC ways {sp.ways_a}/{sp.ways_b}" if sp.ways_a is not None else "")
                     + f" ({why}" + (f", visit {visit} of {visits}" if visits > 1 else "")
                     + f"), ray s = {s:g}: predicted scale {float(p['ray_scale'].iloc[0]):.3f}, "
                       f"EMU {float(p['emu'].iloc[0]):.3f}")
                node = pn.apply(sp)
                anchor, anchored = None, None
                if anchoring:
                    key = tuple(sp.key().items())
                    if key not in anchors:  # once per split, right before its first ray is measured
                        anchors[key] = _anchor(node, config, sp, names, (ma, mb), p.iloc[0], sla, scal, samples,
                                               services, interference, opts.resctrl_root, visit)
                    anchor, ap = anchors[key]
                    hit = ap[np.isclose(ap["share_a"].astype(float), s)]
                    anchored = hit.iloc[0] if len(hit) else None
                    if anchored is not None:
                        _log(f"[colocation] anchored prediction: scale {float(anchored['ray_scale']):.3f}, "
                             f"EMU {float(anchored['emu']):.3f}")
                row, trials = measure_point(node, sp, s, names, (ma, mb), p.iloc[0], sla, scal, samples, config,
                                            anchored, anchor, visit, visits)
                row["selected_as"] = why
                if anchor is not None and anchor.why:
                    row["note"] += f"; {anchor.why}"
                if partitioning == "unavailable":
                    row["llc_partitioning"] = "unavailable"
                    reason = resctrl.get("reason") or "colocation.llc_splits is off"
                    row["note"] += f"; LLC ways not split: {reason}"
                trials_t.append(trials.to_dict("records"))
                table.append([row])
                _log(f"[colocation] measured EMU {row['emu']:.3f} (predicted {row['predicted_emu']:.3f})")
                if on_point is not None:
                    on_point(row)
        finally:
            pn.close()
    df = table.frame()
    if len(df):
        emu = pd.to_numeric(df["emu"], errors="coerce")
        df["best"] = False
        df.loc[emu.idxmax(), "best"] = True
    trials_t.finish(trials_t.frame(), config, config["seed"])
    table.finish(df, config, config["seed"])
    return df
