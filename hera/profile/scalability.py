"""F2: worker scalability — QPS*(model, w workers) for w = 1..cores, modelled and measured, raw and normalised.

Method (docs/DESIGN.md, "QPS*"), for each worker count w of ``profile.workers`` (default every count; one worker
per core, the study's first w cores, grown with the node's run-time ``resize``, so the model is loaded once):

1. **Model**: the model's service profile for w workers (:mod:`hera.profile.service`) becomes a
   :class:`hera.queueing.service.ServiceLaw`; the node model (:mod:`hera.queueing`) gives the latency quantile
   vs rate and a modelled QPS* with a bootstrap interval (``model.*`` settings) for the SLA of T1;
2. **Confirmation** (the ground truth): :func:`hera.loadgen.confirm.confirm_qps_star` measures QPS* on the real
   node around the modelled value — ``confirm.repeats`` independent repeats of fixed-length open-loop trials that
   bracket it, a sequential test per trial, the measured tail interpolated to the SLA, the node model as a
   control variate — and reports the median with a distribution-free interval. Threads of this process are
   pinned to the study cores that run no worker where there are any (``harness_cores``);
3. **A zero is measured again** (``confirm.remeasure_zero``): a point whose every repeat failed even at its
   immediate re-test is measured once more, whole — probe, model, confirmation — after the job's other points,
   so a zero from a slow minute of a shared machine is not the result; the first value stays beside it
   (``qps_star_first``, ``remeasured``) and a second zero is reported as 0.

Rows (``COLUMNS``) carry modelled and measured QPS* side by side; the trials and the modelled latency curves go
to ``<out stem>.trials.csv`` and ``<out stem>.curve.csv``. Each w is appended to partial files as it finishes,
so a rerun resumes.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.errors import ConfigError
from hera.profile import common
from hera.profile.service import SAMPLE_COLUMNS

COLUMNS = ["model", "workers", "qps_star", "qps_star_lo", "qps_star_hi", "qps_star_ci_level", "qps_star_mean",
           "qps_star_std", "qps_star_cov", "qps_star_raw", "per_repeat", "per_repeat_raw", "repeats", "retested",
           "qps_star_model", "qps_star_model_lo", "qps_star_model_hi", "capacity_qps_model", "model_rel_error",
           "model_tails", "qps_star_model_steady", "normalised", "normalised_model", "sla_ms", "percentile",
           "n_trials", "trial_seconds", "wall_seconds", "model_seconds", "service_source", "service_seconds",
           "cores", "harness_cores", "harness_cpu_ms_per_query", "service_drift", "service_drift_lo",
           "service_drift_hi", "qps_star_model_served", "model_rel_error_served", "qps_star_model_profile",
           "model_rel_error_profile", "service_refresh_ratio", "operating_drift", "operating_rate_qps",
           "operating_queries", "operating_seconds", "operating_chunk_drifts", "operating_rechecked",
           "qps_star_model_before", "model_rel_error_before", "operating_drift_after", "operating_after_seconds",
           "operating_after_chunk_drifts", "operating_drift_bracketed", "trial_crossing_sd", "tail_log_slope",
           "batch_size", "sla_rule", "llc_partitioning", "scale", "remeasured", "qps_star_first", "note"]
TRIAL_COLUMNS = ["model", "workers", "repeat", "attempt", "trial", "rate_qps", "chunks", "warmup_queries",
                 "n_measured", "n_ok", "n_over_sla", "miss_fraction", "miss_lo", "miss_hi", "verdict", "passed", "aborted",
                 "latency_ms_pct", "latency_ms_pct_adjusted", "control_variate_factor", "service_drift",
                 "latency_ms_model", "sla_ms", "percentile", "latency_ms_p50", "duration_s", "wall_s", "achieved_qps",
                 "issue_lateness_us_p99", "harness_cpu_s", "harness_saturated", "harness_saturation_reason", "problem",
                 "arrival_seed"]
CURVE_COLUMNS = ["model", "workers", "rate_qps", "latency_ms_model", "latency_ms_model_lo", "latency_ms_model_hi",
                 "percentile", "sla_ms"]


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ScalabilityOutputs:
    rows: Path
    trials: Path
    curve: Path
    service: Path  # the refreshed service samples the model used (model.service: refresh)

    def service_part(self, workers: int) -> Path:
        """Samples of one worker count, kept until the whole table is written (a rerun resumes)."""
        return self.service.with_name(f"{self.service.stem}.w{int(workers)}.partial.parquet")


def outputs(out: str | Path) -> ScalabilityOutputs:
    out = Path(out)
    return ScalabilityOutputs(out, out.with_name(out.stem + ".trials.csv"), out.with_name(out.stem + ".curve.csv"),
                              out.with_name(out.stem + ".service.parquet"))


def refresh_service(config: dict[str, Any]) -> bool:
    """Does the model use a service profile re-measured just before each confirmation (``model.service``)?"""
    return str(config["model"].get("service", "stage")) == "refresh"


#: Warm-up of a confirmation chunk: a quarter of its measured queries (at least 10), arriving at the trial's rate,
#: so that the queue has built up before measuring starts (a trial started from an idle node is optimistic near
#: saturation; the node model's trials have the same warm-up, :class:`hera.queueing.qps.TrialShape`). A third
#: (13 queries at default) costs a slow model at 20 queries/s 0.15 s more per chunk.
WARMUP_SHARE = 4


#: Highest rate of the modelled trial-tail curve, as a fraction of the modelled saturation throughput.
TRIAL_GRID_HI_FRAC = 1.4
#: The steady-state QPS* beside the trial-shaped model uses this fraction of ``model.replicates`` (at least 4).
STEADY_BESIDE_REPLICATE_DIVISOR = 4


def model_settings(config: dict[str, Any], stream: str, tails: str | None = None):
    """:class:`hera.queueing.qps.ModelSettings` from config ``model.*`` (seed derived from the study's);
    ``tails`` (``trial`` or ``steady``) overrides ``model.tails``. Trial tails take the confirmation's
    shape."""
    from hera.queueing.qps import ModelSettings, TrialShape

    m = config["model"]
    trial = None
    if (tails or m.get("tails", "trial")) == "trial":
        c = config["confirm"]
        trial = TrialShape(min_queries=int(c["min_queries"]), trial_s=float(c["trial_s"]),
                           warmup_queries=confirm_warmup(config))
    # a short trial from an idle node can meet the SLA above the saturation throughput (its backlog has no time
    # to grow): the rate grid of trial tails reaches past capacity. The steady-state value reported beside the
    # trial-shaped one (``tails="steady"`` with ``model.tails: trial``) is a point estimate: fewer replicates
    replicates = int(m["replicates"])
    if tails == "steady" and m.get("tails", "trial") == "trial":
        replicates = max(4, replicates // STEADY_BESIDE_REPLICATE_DIVISOR)
    return ModelSettings(n_queries=int(m["queries"]), warmup_queries=max(1, int(m["queries"]) // 10),
                         replicates=replicates, confidence=float(m["confidence"]),
                         grid_hi_frac=TRIAL_GRID_HI_FRAC if trial is not None else 0.995,
                         seed=common.derived_seed(int(config["seed"]), "model", stream), trial=trial)


def drift_summary(trials: pd.DataFrame) -> dict[str, float]:
    """``service_drift`` (median over the trials, :func:`hera.loadgen.confirm.service_drift`) and its range."""
    d = pd.to_numeric(trials.get("service_drift", pd.Series(dtype=float)), errors="coerce").dropna()
    if d.empty:
        return {"service_drift": math.nan, "service_drift_lo": math.nan, "service_drift_hi": math.nan}
    return {"service_drift": float(d.median()), "service_drift_lo": float(d.min()),
            "service_drift_hi": float(d.max())}


#: A trial's normalised tail further than this factor from 1 says little about where its crossing lies (the tail
#: curve is not log-linear that far out): its log is clipped to ±ln(TRIAL_TAIL_CLIP) in :func:`trial_crossing_sd`.
TRIAL_TAIL_CLIP = math.e
#: Fewer usable trials than this give no dispersion (NaN).
MIN_TRIALS_FOR_SD = 3


def tail_log_slope(rates_qps: np.ndarray, latency_ms: np.ndarray, at_qps: float) -> float:
    """``d ln(tail) / d ln(rate)`` of a modelled latency curve at ``at_qps``: the secant over the two grid points
    on each side (NaN where the curve has no positive points there or does not rise)."""
    r, lat = np.asarray(rates_qps, float), np.asarray(latency_ms, float)
    ok = np.isfinite(r) & np.isfinite(lat) & (r > 0) & (lat > 0)
    r, lat = r[ok], lat[ok]
    if r.size < 2 or not (math.isfinite(at_qps) and at_qps > 0):
        return math.nan
    order = np.argsort(r)
    lr, ll = np.log(r[order]), np.log(lat[order])
    i = int(np.clip(np.searchsorted(lr, math.log(at_qps)), 1, lr.size - 1))
    j0, j1 = max(i - 2, 0), min(i + 2, lr.size - 1)
    slope = (ll[j1] - ll[j0]) / (lr[j1] - lr[j0])
    return float(slope) if slope > 0 else math.nan


def trial_crossing_sd(rates_qps: np.ndarray, tails_norm: np.ndarray, slope: float) -> float:
    """How far, in log rate, one confirmation trial on its own would put the crossing: each trial at rate r with
    normalised tail τ (tail / SLA, control-variate adjusted) says the tail reaches the SLA at ``ln r − ln τ /
    slope`` (``slope``: :func:`tail_log_slope` of the node model there; ``ln τ`` clipped to ±1); the standard
    deviation of that over a confirmation's trials, its repeats included. It is the noise of a single trial's
    verdict — what makes a *joint* trial, which fails when either tenant's tail is over, fail below both tenants'
    boundaries (:func:`hera.profile.pair_prediction.joint_pass_probability`). NaN with fewer than
    :data:`MIN_TRIALS_FOR_SD` usable trials or no slope."""
    r, tau = np.asarray(rates_qps, float), np.asarray(tails_norm, float)
    ok = np.isfinite(r) & np.isfinite(tau) & (r > 0) & (tau > 0)
    if int(ok.sum()) < MIN_TRIALS_FOR_SD or not (math.isfinite(slope) and slope > 0):
        return math.nan
    clip = math.log(TRIAL_TAIL_CLIP)
    crossing = np.log(r[ok]) - np.clip(np.log(tau[ok]), -clip, clip) / slope
    return float(np.std(crossing, ddof=1))


def served_model_qps(law: Any, mix: np.ndarray, sla_ms: float, percentile: float, settings: Any,
                     drift: float) -> float:
    """The modelled QPS* (point estimate) of ``law`` with every service time multiplied by the measured service
    ``drift`` of the confirmation's trials (:func:`hera.loadgen.confirm.service_drift`): what the node model
    predicts for the node *as it served* during the trials. Only the trials' service spans (the model's input)
    enter, never their latencies (what is compared); NaN without a drift. The point estimate takes a quarter of
    the replicates (:data:`STEADY_BESIDE_REPLICATE_DIVISOR`), as the steady-state value beside it does."""
    from hera.queueing.qps import modelled_qps_star

    if not (math.isfinite(drift) and drift > 0):
        return math.nan
    return float(modelled_qps_star(law.scaled(drift), mix, sla_ms, percentile, fewer_replicates(settings)).qps_star)


#: A bracketing guide (:func:`served_guide`) models the served speed to this step in log drift (2%): one trial's
#: drift is noisier than that, and a repeat's steps then reuse a value instead of modelling it again.
GUIDE_LOG_DRIFT_STEP = 0.02


def served_guide(law: Any, mix: np.ndarray, sla_ms: float, percentile: float, settings: Any):
    """A confirmation's guide (:func:`hera.loadgen.confirm.confirm_qps_star`): drift -> :func:`served_model_qps`,
    the drift rounded to :data:`GUIDE_LOG_DRIFT_STEP` and each value modelled once (a fraction of a second each,
    only when a repeat takes a step beyond its first two trials)."""
    cache: dict[int, float] = {}

    def guide(drift: float) -> float:
        if not (math.isfinite(drift) and drift > 0):
            return math.nan
        k = int(round(math.log(drift) / GUIDE_LOG_DRIFT_STEP))
        if k not in cache:
            cache[k] = served_model_qps(law, mix, sla_ms, percentile, settings, math.exp(k * GUIDE_LOG_DRIFT_STEP))
        return cache[k]

    return guide


def fewer_replicates(settings: Any):
    """``settings`` (:class:`hera.queueing.qps.ModelSettings`) for a point estimate: a quarter of the replicates
    (:data:`STEADY_BESIDE_REPLICATE_DIVISOR`, at least 4)."""
    return dataclasses.replace(settings, replicates=max(4, settings.replicates // STEADY_BESIDE_REPLICATE_DIVISOR))


def guided(config: dict[str, Any]) -> bool:
    """``confirm.guided`` (default true): may the node model at the trials' served speed lengthen a bracketing
    step (:meth:`hera.loadgen.confirm._Confirmer._guided`)?"""
    return bool(config["confirm"].get("guided", True))


def confirm_warmup(config: dict[str, Any]) -> int:
    """Unmeasured queries before each confirmation chunk (see :data:`WARMUP_SHARE`)."""
    return max(10, int(config["confirm"]["min_queries"]) // WARMUP_SHARE)


def confirm_settings(config: dict[str, Any], sla_ms: float, rate_qps: float, stream: str):
    """The load generator's base settings for a confirmation (query sizes, warm-up, seeds)."""
    c = config["confirm"]
    base = common.loadgen_settings(config, sla_ms, rate_qps, stream=stream)
    return base.replace(min_queries=int(c["min_queries"]), min_duration_s=float(c["trial_s"]),
                        warmup_queries=confirm_warmup(config))


def operating_probe(node: Any, config: dict[str, Any], tenant: str, law: Any, mix: np.ndarray, sla: dict[str, Any],
                    stream: str, rate_qps: float, chunks: int):
    """``chunks`` chunks of open-loop load at the modelled QPS* ``rate_qps``, each like a confirmation trial's, on
    ``node``: how fast it serves there against ``law`` (:class:`hera.loadgen.confirm.OperatingProbe`); None when
    no rate was modelled."""
    from hera.loadgen.confirm import ConfirmSettings, probe_service_drift
    from hera.loadgen.sut import NodeSUT
    from hera.queueing.qps import TailModel

    if not (math.isfinite(rate_qps) and rate_qps > 0):
        return None
    pct = float(config["sla"]["percentile"])
    seed = common.derived_seed(int(config["seed"]), "operating-probe", stream)
    model = TailModel(law, mix, pct, seed=seed)
    return probe_service_drift(NodeSUT(node), confirm_settings(config, sla["sla_ms"], rate_qps, stream),
                               node.library_size(tenant), rate_qps=rate_qps, sla_ms=sla["sla_ms"], percentile=pct,
                               model=model, settings=ConfirmSettings.from_config(config), chunks=chunks,
                               seed=seed, tenant=tenant, recheck_band=operating_recheck(config))


def operating_after(config: dict[str, Any]) -> int:
    """``service.operating_after``: first chunks of the probe taken again after a point's confirmation (0: none,
    the model is the one from before the trials)."""
    n = int(config["service"].get("operating_after", 0))
    if n < 0:
        raise ConfigError(f"service.operating_after: {n} is not a number of chunks >= 0")
    return n


def operating_recheck(config: dict[str, Any]) -> float:
    """``service.operating_recheck``: a probe whose first drift is further than this factor from 1 takes
    :data:`hera.loadgen.confirm.RECHECK_CHUNKS` more chunks and uses their median (0: never)."""
    band = float(config["service"].get("operating_recheck", 0.0))
    if not (band == 0.0 or band >= 1.0):
        raise ConfigError(f"service.operating_recheck: {band:g} is neither 0 (never) nor a factor >= 1")
    return band


def probe_sequence(config: dict[str, Any], model: str, service: str | Path, sla_ms: float, workers: int,
                   chunks: int, opts: common.NodeOptions | None = None,
                   fractions: Sequence[float] | None = None) -> tuple[float, list[float] | list[tuple[float, float]]]:
    """``chunks`` consecutive operating-probe chunks of ``model`` on ``workers`` workers at the modelled QPS* of its
    service profile (as an F2 point places its probe): (that rate, each chunk's service drift, in order) — how
    far one second of the node says about the next ones (``hera bench probe-drift``). With ``fractions``, one
    chunk per fraction, in that order, each at that fraction of the modelled QPS* and with its own seeds
    (``chunks`` is then ignored), and each chunk's drift against the law as profiled and against the same law
    without its idle penalty, as a pair: does the node serve slower or faster than its profile at other loads,
    and does the idle penalty account for it (``hera bench drift-vs-rate``)?"""
    from hera.profile.service import mix_sizes, read_samples, service_law
    from hera.queueing.qps import modelled_qps_star

    opts = opts or common.NodeOptions()
    common.check_model(model, opts.runner)
    cores = common.study_cores(config)
    common.require_cores(cores, workers, f"{workers} workers")
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    law = service_law(read_samples(service, model), workers, batch, source=f"service profile {service}")
    stream = f"{'probe-drift' if fractions is None else 'drift-vs-rate'}/{model}/{workers}"
    ms = model_settings(config, stream)
    mix = mix_sizes(config, ms.n_queries, common.derived_seed(int(config["seed"]), "model-sizes", stream))
    pct = float(config["sla"]["percentile"])
    rate = modelled_qps_star(law, mix, float(sla_ms), pct, fewer_replicates(ms)).qps_star
    if not (math.isfinite(rate) and rate > 0):
        raise ConfigError(f"{model}: the service profile models no positive QPS* at the SLA {sla_ms:g} ms")
    plan = common.TenantPlan(model, model, tuple(cores[:workers]), batch_size=batch, max_items=max_items)
    with common.start_node(config, [plan], opts) as node:
        pin, _ = common.harness_off_workers(config, cores[:workers])
        once = {**config, "service": {**config["service"], "operating_recheck": 0.0}}
        with pin:
            if fractions is None:
                probe = operating_probe(node, once, model, law, mix, {"sla_ms": float(sla_ms)}, stream, rate,
                                        int(chunks))
                return float(rate), list(probe.chunk_drifts)
            pairs = [tuple(drifts_at(node, config, model, (law, law.without_idle_penalty()), mix, float(sla_ms),
                                     f"{stream}/{i}", rate * float(f))) for i, f in enumerate(fractions)]
    return float(rate), pairs


def drifts_at(node: Any, config: dict[str, Any], tenant: str, laws: Sequence[Any], mix: np.ndarray, sla_ms: float,
              stream: str, rate_qps: float) -> list[float]:
    """One operating-probe chunk at ``rate_qps`` on ``node`` and its service drift against each of ``laws``."""
    from hera.loadgen.confirm import ConfirmSettings, chunk_drifts
    from hera.loadgen.sut import NodeSUT
    from hera.queueing.qps import TailModel

    pct = float(config["sla"]["percentile"])
    seed = common.derived_seed(int(config["seed"]), "operating-probe", stream)
    return chunk_drifts(NodeSUT(node), confirm_settings(config, sla_ms, rate_qps, stream), node.library_size(tenant),
                        rate_qps=rate_qps, sla_ms=sla_ms, percentile=pct,
                        models=[TailModel(law, mix, pct, seed=seed) for law in laws],
                        settings=ConfirmSettings.from_config(config), seed=seed, tenant=tenant)


def steady_beside(config: dict[str, Any], stream: str, law: Any, mix: np.ndarray, sla_ms: float, percentile: float,
                  settings: Any, modelled: Any):
    """The long-run value beside ``modelled`` (the model of ``law`` for trials of the confirmation's shape): how
    optimistic the confirmation's short trials are, by the model's account; ``modelled`` itself where the model
    already is the long-run one (``model.tails: steady``)."""
    from hera.queueing.qps import modelled_qps_star

    if settings.trial is None:
        return modelled
    return modelled_qps_star(law, mix, sla_ms, percentile, model_settings(config, stream, "steady"))


def qps_star_point(node: Any, config: dict[str, Any], model: str, tenant: str, law: Any, sla: dict[str, Any],
                   stream: str) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Modelled and confirmed QPS* of ``tenant`` (serving ``model``) on ``node`` with the service law ``law``:
    (row fields, trial rows, curve rows)."""
    from hera.loadgen.confirm import ConfirmSettings, confirm_qps_star
    from hera.loadgen.sut import NodeSUT
    from hera.profile.service import mix_sizes
    from hera.queueing.qps import TailModel, modelled_qps_star

    pct = float(config["sla"]["percentile"])
    ms = model_settings(config, stream)
    mix = mix_sizes(config, ms.n_queries, common.derived_seed(int(config["seed"]), "model-sizes", stream))
    t0 = time.perf_counter()
    probe = None
    profile_law = law
    chunks = int(config["service"].get("operating_chunks", 0))
    if chunks > 0:
        # the model on the profile alone (a point estimate: it only places the probe), then the probe there
        profiled = modelled_qps_star(law, mix, sla["sla_ms"], pct, fewer_replicates(ms))
        probe = operating_probe(node, config, tenant, law, mix, sla, stream, profiled.qps_star, chunks)
        if probe is not None and math.isfinite(probe.drift) and probe.drift > 0:
            law = law.scaled(probe.drift)  # the profile as the node serves at the operating point
            again = (f" (chunks x{', x'.join(f'{d:.3f}' for d in probe.chunk_drifts)}: rechecked, the median)"
                     if probe.rechecked else "")
            _log(f"[scalability] {tenant}: {law.workers} worker(s): profile model QPS* {profiled.qps_star:.2f}; "
                 f"{probe.queries} queries there served x{probe.drift:.3f} the profile{again} ({probe.seconds:.1f} s)")
        modelled = modelled_qps_star(law, mix, sla["sla_ms"], pct, ms)
    else:
        modelled = profiled = modelled_qps_star(law, mix, sla["sla_ms"], pct, ms)
    steady = steady_beside(config, stream, law, mix, sla["sla_ms"], pct, ms, modelled)
    t_model = time.perf_counter() - t0 - (probe.seconds if probe is not None else 0.0)
    start = modelled.qps_star if modelled.qps_star > 0 else 0.05 * modelled.capacity_qps
    _log(f"[scalability] {tenant}: {law.workers} worker(s), SLA p{pct * 100:g} <= {sla['sla_ms']:.4g} ms: modelled "
         f"QPS* {modelled.qps_star:.2f} [{modelled.qps_star_lo:.2f}, {modelled.qps_star_hi:.2f}] of capacity "
         f"{modelled.capacity_qps:.1f}, steady state {steady.qps_star:.2f} ({t_model:.1f} s); confirming")
    tail_model = TailModel(law, mix, pct, seed=common.derived_seed(int(config["seed"]), "tail-model", stream))
    t1 = time.perf_counter()
    res = confirm_qps_star(NodeSUT(node), confirm_settings(config, sla["sla_ms"], start, stream),
                           node.library_size(tenant), modelled_qps=start, sla_ms=sla["sla_ms"], percentile=pct,
                           settings=ConfirmSettings.from_config(config), tenant=tenant, model=tail_model,
                           guide=served_guide(law, mix, sla["sla_ms"], pct, ms) if guided(config) else None,
                           log=_log)
    wall = time.perf_counter() - t1
    _log(f"[scalability] {tenant}: {law.workers} worker(s): measured QPS* {res.value:.2f} "
         f"[{res.value_ci_lo:.2f}, {res.value_ci_hi:.2f}] ({res.value_ci_level:.0%} interval), repeats "
         f"{', '.join(f'{x:.2f}' for x in res.per_repeat)}; {res.n_trials} trials, {wall:.1f} s")
    drift = drift_summary(res.trials)
    served = served_model_qps(law, mix, sla["sla_ms"], pct, ms, drift["service_drift"])
    # the probe after the trials: the model at the speed the probes before and after them bracket (docs/DESIGN.md,
    # "The probe after the trials": an option, off); the model before them, which started the search, stays beside it
    before, after, bracket, n_after = modelled, None, math.nan, operating_after(config)
    if probe is not None and n_after > 0 and math.isfinite(probe.drift) and probe.drift > 0:
        after = operating_probe(node, config, tenant, profile_law, mix, sla, f"{stream}/after", profiled.qps_star,
                                n_after)
        if after is not None and math.isfinite(after.drift) and after.drift > 0:
            bracket = math.sqrt(probe.drift * after.drift)
            t2 = time.perf_counter()
            bracketed = profile_law.scaled(bracket)
            modelled = modelled_qps_star(bracketed, mix, sla["sla_ms"], pct, ms)
            steady = steady_beside(config, stream, bracketed, mix, sla["sla_ms"], pct, ms, modelled)
            t_model += time.perf_counter() - t2
            _log(f"[scalability] {tenant}: {law.workers} worker(s): after the trials {after.queries} queries served "
                 f"x{after.drift:.3f} the profile ({after.seconds:.1f} s): modelled QPS* at x{bracket:.3f} "
                 f"{modelled.qps_star:.2f} (before the trials {before.qps_star:.2f})")
    rel = (modelled.qps_star - res.value) / res.value if res.value > 0 else math.nan
    issued = res.trials["rate_qps"] * res.trials["wall_s"]
    per_query = (res.trials["harness_cpu_s"] / issued.where(issued > 0)).dropna()
    row = {
        "qps_star": res.value, "qps_star_lo": res.value_ci_lo, "qps_star_hi": res.value_ci_hi,
        "qps_star_ci_level": res.value_ci_level, "qps_star_mean": res.value_mean,
        "qps_star_std": res.value_std, "qps_star_cov": res.value_cov, "qps_star_raw": res.value_raw,
        "per_repeat": ";".join(f"{x:.6g}" for x in res.per_repeat),
        "per_repeat_raw": ";".join(f"{x:.6g}" for x in res.per_repeat_raw), "repeats": res.repeats,
        "retested": res.retested, "qps_star_model": modelled.qps_star, "qps_star_model_lo": modelled.qps_star_lo,
        "qps_star_model_hi": modelled.qps_star_hi, "capacity_qps_model": modelled.capacity_qps,
        "model_rel_error": rel, "model_tails": "steady" if ms.trial is None else "trial",
        # the model on the profile alone, and the probe that rescaled it (docs/DESIGN.md "Operating-point probe")
        "qps_star_model_profile": profiled.qps_star,
        "model_rel_error_profile": (profiled.qps_star - res.value) / res.value if res.value > 0 else math.nan,
        "operating_drift": probe.drift if probe is not None else math.nan,
        "operating_rate_qps": probe.rate_qps if probe is not None else math.nan,
        "operating_queries": probe.queries if probe is not None else 0,
        "operating_seconds": probe.seconds if probe is not None else 0.0,
        "operating_chunk_drifts": ";".join(f"{d:.6g}" for d in probe.chunk_drifts) if probe is not None else "",
        "operating_rechecked": bool(probe.rechecked) if probe is not None else False,
        "qps_star_model_before": before.qps_star,
        "model_rel_error_before": (before.qps_star - res.value) / res.value if res.value > 0 else math.nan,
        "operating_drift_after": after.drift if after is not None else math.nan,
        "operating_after_seconds": after.seconds if after is not None else 0.0,
        "operating_after_chunk_drifts": ";".join(f"{d:.6g}" for d in after.chunk_drifts) if after is not None else "",
        "operating_drift_bracketed": bracket,
        "qps_star_model_steady": steady.qps_star, "sla_ms": sla["sla_ms"], "percentile": pct,
        "n_trials": res.n_trials,
        "trial_seconds": res.trial_seconds, "wall_seconds": wall, "model_seconds": t_model,
        # the harness's CPU per query (load generator and node threads; median over the trials): what a tenant's
        # traffic takes from the workers' cores where no core is left for the harness (pair prediction)
        "harness_cpu_ms_per_query": float(per_query.median() * 1e3) if len(per_query) else math.nan,
        # how fast the node served during the trials, against the profile the model used (1 = as profiled)
        **drift,
        # the node model on the service times as the trials were served (the profile x the measured drift): the
        # queueing model's own error, the machine's change of speed since the profile taken out (docs/DESIGN.md)
        "qps_star_model_served": served,
        "model_rel_error_served": (served - res.value) / res.value if res.value > 0 else math.nan,
        "note": "; ".join(x for x in (res.note, modelled.note) if x),
    }
    trials = res.trials.drop(columns=["tenant", "scale"]).assign(model=model, workers=law.workers)
    trials["latency_ms_model"] = [modelled.latency_at(r) for r in trials["rate_qps"]]
    curve = pd.DataFrame(modelled.curve(ms.confidence)).assign(model=model, workers=law.workers, percentile=pct,
                                                              sla_ms=sla["sla_ms"])
    # the noise of one trial's verdict, in log rate (pair prediction: docs/DESIGN.md, "The boundary as a joint
    # trial measures it")
    slope = tail_log_slope(curve["rate_qps"], curve["latency_ms_model"], res.value if res.value > 0 else start)
    row["tail_log_slope"] = slope
    row["trial_crossing_sd"] = trial_crossing_sd(trials["rate_qps"], trials["latency_ms_pct_adjusted"]
                                                 / float(sla["sla_ms"]), slope)
    return row, trials, curve


def measure(config: dict[str, Any], model: str, service: str | Path, t1: str | Path, out: str | Path,
            opts: common.NodeOptions | None = None, on_row=None):
    """QPS*(w) for every w; appends each w to the partial files of ``out``; returns the three tables."""
    from hera.profile.service import profiled_workers, read_samples, refreshed, service_law, speed_ratio

    opts = opts or common.NodeOptions()
    common.check_model(model, opts.runner)
    sla = common.read_t1(t1, [model])[model]
    samples = read_samples(service, model)
    refresh = refresh_service(config)
    cores = common.study_cores(config)
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    ws = list(profiled_workers(config, len(cores)))
    laws = {w: service_law(samples, w, batch, source=f"service profile {service}") for w in ws}  # fail early
    fp = common.fingerprint("scalability-v10", model, config, sla, cores, opts.runner,
                            samples["service_ms"].sum(), len(samples))
    paths = outputs(out)
    rows_t = common.ResumableTable(paths.rows, COLUMNS, ["workers"], fp)
    trials_t = common.ResumableTable(paths.trials, TRIAL_COLUMNS, ["workers"], fp)
    curve_t = common.ResumableTable(paths.curve, CURVE_COLUMNS, ["workers"], fp)
    todo = [w for w in ws if not rows_t.done(workers=w)]
    if todo:
        plan = common.TenantPlan(model, model, tuple(cores[:todo[0]]), batch_size=batch, max_items=max_items)
        with common.start_node(config, [plan], opts) as node:

            def point(w: int, stream: str) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
                if tuple(node.stats()[model].cores) != tuple(cores[:w]):
                    node.resize(model, list(cores[:w]))
                pin, harness = common.harness_off_workers(config, cores[:w])
                with pin:
                    law, t_service, ratio = laws[w], 0.0, math.nan
                    if refresh:  # the machine as it is now, on this node (docs/DESIGN.md "QPS*")
                        t0 = time.perf_counter()
                        fresh = refreshed(node, config, model, model, w, cores, stream)
                        t_service = time.perf_counter() - t0
                        paths.service.parent.mkdir(parents=True, exist_ok=True)
                        fresh.to_parquet(paths.service_part(w), index=False)
                        law = service_law(fresh, w, batch, source="service profile refreshed on this node")
                        ratio = speed_ratio(fresh, samples, w)
                    row, trials, curve = qps_star_point(node, config, model, model, law, sla, stream)
                # how much slower (> 1) the refreshed profile served than the stage's: what the refresh corrected
                row.update({"service_source": "refresh" if refresh else "stage", "service_seconds": t_service,
                            "service_refresh_ratio": ratio})
                row.update({"model": model, "workers": w, "normalised": math.nan, "normalised_model": math.nan,
                            "cores": " ".join(map(str, cores[:w])),
                            "harness_cores": harness,
                            "batch_size": batch, "sla_rule": sla["sla_rule"],
                            "llc_partitioning": node.llc_partitioning, "scale": config["scale"],
                            "remeasured": False, "qps_star_first": math.nan})
                return row, trials, curve

            def keep(row: dict[str, Any], trials: pd.DataFrame, curve: pd.DataFrame) -> None:
                trials_t.append(trials.to_dict("records"))
                curve_t.append(curve.to_dict("records"))
                rows_t.append([row])
                if on_row is not None:
                    on_row(row)

            zeros: dict[int, dict[str, Any]] = {}  # confirmed 0: measured again after the job's other points
            for w in todo:
                row, trials, curve = point(w, f"scalability/{model}/{w}")
                if remeasure_zero(config) and not row["qps_star"] > 0:
                    zeros[w] = row
                    _log(f"[scalability] {model}: {w} worker(s): confirmed QPS* 0 (interval "
                         f"[{row['qps_star_lo']:.2f}, {row['qps_star_hi']:.2f}]): measured again, whole, after the "
                         f"job's other points")
                    continue
                keep(row, trials, curve)
            for w, first in zeros.items():
                row, trials, curve = point(w, f"scalability/{model}/{w}/again")
                row.update({"remeasured": True, "qps_star_first": first["qps_star"],
                            "note": f"first measurement {first['qps_star']:.4g} [{first['qps_star_lo']:.4g}, "
                                    f"{first['qps_star_hi']:.4g}] (probe drift {first['operating_drift']:.3g}, "
                                    f"trials' drift {first['service_drift']:.3g}, {first['n_trials']} trials), "
                                    f"measured again after the job's other points; " + row["note"]})
                keep(row, trials, curve)
    df = rows_t.frame().sort_values("workers").reset_index(drop=True)
    for col, src in (("normalised", "qps_star"), ("normalised_model", "qps_star_model")):
        q1 = df.loc[df["workers"] == 1, src]
        q1 = float(q1.iloc[0]) if len(q1) else math.nan
        df[col] = [q / (w * q1) if q1 and q1 > 0 else math.nan for q, w in zip(df[src], df["workers"])]
    return df, rows_t, trials_t, curve_t


def run(config: dict[str, Any], model: str, service: str | Path, t1: str | Path, out: str | Path,
        opts: common.NodeOptions | None = None, on_row=None) -> pd.DataFrame:
    """Measure (resuming from partial files) and write the three outputs with provenance."""
    from hera.provenance import write_table

    df, rows_t, trials_t, curve_t = measure(config, model, service, t1, out, opts, on_row)
    paths = outputs(out)
    parts = [paths.service_part(int(w)) for w in df["workers"]]
    fresh = [pd.read_parquet(p) for p in parts if p.is_file()]
    write_table(pd.concat(fresh, ignore_index=True) if fresh else pd.DataFrame(columns=SAMPLE_COLUMNS),
                paths.service, config=config, seed=config["seed"])
    for p in parts:
        p.unlink(missing_ok=True)
    trials_t.finish(trials_t.frame(), config, config["seed"])
    curve_t.finish(curve_t.frame(), config, config["seed"])
    rows_t.finish(df, config, config["seed"])
    return df


def remeasure_zero(config: dict[str, Any]) -> bool:
    """``confirm.remeasure_zero`` (default true): a point confirmed at 0 is measured again after the others."""
    return bool(config["confirm"].get("remeasure_zero", True))


def rel_errors(df: pd.DataFrame) -> np.ndarray:
    """|modelled − measured| / measured per row (absolute error where the measured QPS* is 0)."""
    m, q = df["qps_star_model"].to_numpy(float), df["qps_star"].to_numpy(float)
    return np.where(q > 0, np.abs(m - q) / np.where(q > 0, q, 1.0), np.abs(m - q))


def determine(config: dict[str, Any], model: str, workers: list[int], *, sla_ms: float | None = None,
              stream: str = "", opts: common.NodeOptions | None = None) -> pd.DataFrame:
    """One complete QPS* determination of ``model`` for each worker count — service profile, SLA (``sla_ms``, else
    decided from a one-worker profile by the study's rule), model, confirmation — on one node, each w's profile
    taken just before its confirmation (refreshed settings with ``model.service: refresh``, as the pipeline);
    one row per w (the benchmarks' unit of work: ``hera bench qps-repeatability`` and ``model-agreement``)."""
    from hera.profile.service import measure_on, refresh_config, service_law
    from hera.profile.sla import decide

    opts = opts or common.NodeOptions()
    common.check_model(model, opts.runner)
    cores = common.study_cores(config)
    common.require_cores(cores, max(workers), f"{max(workers)} workers")
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    plan = common.TenantPlan(model, model, (cores[0],), batch_size=batch, max_items=max_items)
    profile_config = refresh_config(config) if refresh_service(config) else config
    rows = []
    with common.start_node(config, [plan], opts) as node:
        sla = None if sla_ms is None else {"sla_ms": float(sla_ms), "sla_rule": "given"}
        if sla is None:  # the SLA's base: the unloaded one-worker mix, with the study's service settings
            _, summary = measure_on(node, config, model, model, [1], cores, stream=f"{stream}/sla")
            dec = decide(config["sla"], model, summary)
            sla = {"sla_ms": dec.sla_ms, "sla_rule": dec.sla_rule}
        for w in workers:
            t0 = time.perf_counter()
            samples, _ = measure_on(node, profile_config, model, model, [w], cores, stream=stream)
            t_service = time.perf_counter() - t0
            pin, harness = common.harness_off_workers(config, cores[:w])
            t1 = time.perf_counter()
            with pin:
                row, _, _ = qps_star_point(node, config, model, model, service_law(samples, w, batch), sla,
                                           f"determine/{model}/{w}/{stream}")
            row.update({"model": model, "workers": w, "service_seconds": t_service,
                        "service_source": "refresh" if profile_config is not config else "full",
                        "seconds": time.perf_counter() - t1 + t_service, "harness_cores": harness})
            rows.append(row)
    return pd.DataFrame(rows)
