"""Sensitivity: how a model's sub-batch service times inflate next to an antagonist, through the serving path.

One worker of the model on the plan's worker core; an antagonist (:class:`hera.profile.antagonist.Antagonist`)
of each kind at each non-zero intensity on the other cores of its L3 domain. At every *point* the
service-profile machinery (:mod:`hera.profile.service`) measures both regimes: light load (stratified queries,
one at a time) and saturation (closed loop, extended until ``interference.saturation_queries`` completed).
Points run in the order

    baseline, kind 1 at x1 … xn, baseline, kind 2 at x1 … xn, baseline [, cpu at x1 … xn, baseline]

(the last kind, a busy core, where ``interference.busy_core`` asks for it) where a baseline is the antagonist
present and idle (intensity 0), so each kind's points are bracketed by two
baselines: their ratio (``drift``) shows how much the machine moved meanwhile, and the pooled pair is the
reference of that kind's inflations. Every point replays the same query sizes and sample starts (a paired
design: the points differ by the antagonist only).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from hera.profile import common, service
from hera.profile.antagonist import Antagonist
from hera.profile.interference import stats
from hera.profile.interference.settings import Cores, Settings
from hera.profile.interference.table import REGIMES, SENSITIVITY_METRICS

BASELINE = "none"
BASELINE_NOTE = "intensity 0: the bracketing baselines, pooled"
#: A saturation point is extended by further windows until it has ``interference.saturation_queries`` queries,
#: at most this many windows in all (on a busy machine a slow model may complete none in one short window).
MAX_SATURATION_ROUNDS = 6


@dataclass(frozen=True)
class Point:
    """One sensitivity point: antagonist ``kind`` (``none``: a baseline) at ``intensity``."""

    index: int
    kind: str
    intensity: float

    @property
    def baseline(self) -> bool:
        return self.kind == BASELINE


def schedule(settings: Settings) -> list[Point]:
    """Baselines bracketing each kind's points (module docstring)."""
    pts = [Point(0, BASELINE, 0.0)]
    for kind in settings.sensitivity_kinds:
        pts += [Point(len(pts) + i, kind, x) for i, x in enumerate(settings.intensities)]
        pts.append(Point(len(pts), BASELINE, 0.0))
    return pts


def saturated(node: Any, tenant: str, mix: np.ndarray, depth: int, st: Settings, seed: int) -> list[Any]:
    """Closed-loop results of one point: windows of ``interference.saturation_s`` (the first with ``seed``, so
    every point replays it) until ``interference.saturation_queries`` queries completed in them."""
    out: list[Any] = []
    for r in range(MAX_SATURATION_ROUNDS):
        got, _ = service.saturate(node, tenant, mix, depth, st.warmup_s, st.saturation_s,
                                  seed if r == 0 else common.derived_seed(seed, "round", str(r)))
        out += got
        if len(out) >= st.saturation_queries:
            break
    return out


def measure(node: Any, config: dict[str, Any], st: Settings, cores: Cores, model: str,
            tenant: str) -> pd.DataFrame:
    """Raw sub-batch samples of every point (service-profile columns plus ``part, kind, intensity, point,
    antagonist_gbps``)."""
    seed = st.seed
    sizes, weights = service.light_sizes(st.service_config(config),
                                         common.derived_seed(seed, "interference-light", model))
    mix = service.mix_sizes(config, 4096, common.derived_seed(seed, "interference-mix", model))
    depth = st.depth_per_worker * len(cores.worker) + 1
    starts_seed = common.derived_seed(seed, "interference-starts", model)
    sat_seed = common.derived_seed(seed, "interference-sat", model)
    frames = []
    for p in schedule(st):
        kind = st.kinds[0] if p.baseline else p.kind  # a baseline: any kind at intensity 0 (idle processes)
        t0 = time.perf_counter()
        with Antagonist(kind, p.intensity, list(cores.antagonists),
                        seed=common.derived_seed(seed, "antagonist", kind)) as ant:
            time.sleep(0.05)
            c0, a0 = ant.counters()["bytes"], time.perf_counter()
            light = service.light_load(node, tenant, sizes, starts_seed)
            sat = saturated(node, tenant, mix, depth, st, sat_seed)
            gbps = (ant.counters()["bytes"] - c0) / (time.perf_counter() - a0) / 1e9
        if not sat:
            raise service.ServiceProfileError(
                f"model {model!r}: no query completed in {MAX_SATURATION_ROUNDS} saturation windows of "
                f"{st.saturation_s} s (raise interference.saturation_s)")
        w = len(cores.worker)
        rows = service.sample_rows(light, model, w, "light", weights) + service.sample_rows(sat, model, w,
                                                                                            "saturated", None)
        frames.append(pd.DataFrame(rows).assign(part="sensitivity", kind=p.kind, intensity=p.intensity,
                                                point=p.index, antagonist_gbps=gbps))
        what = "baseline" if p.baseline else f"{p.kind} at {p.intensity:g}"
        print(f"[interference] {model}: {what}: {len(light)} light + {len(sat)} saturated queries, "
              f"antagonist {gbps:.3g} GB/s ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    return pd.concat(frames, ignore_index=True)


def _samples(df: pd.DataFrame) -> stats.Samples:
    return stats.Samples.of(df["service_ms"], df["items"], df["query"])


def _drift_note(drift: stats.Estimate, tol: float) -> str:
    """A note when the bracketing baselines differ by more than ``tol`` beyond doubt (the whole interval)."""
    if not (drift.lo > 1 + tol or drift.hi < 1 - tol):  # NaN compares False: no note
        return ""
    return (f"baseline drifted: after/before {drift.value:.3g} [{drift.lo:.3g}, {drift.hi:.3g}], beyond the "
            f"tolerance {tol:g} (machine noise, not the antagonist)")


def summarise(samples: pd.DataFrame, st: Settings, cores: Cores, model: str,
              scale: str) -> list[dict[str, Any]]:
    """Rows of the interference table (part ``sensitivity``) from the raw samples of :func:`measure`."""
    pts = schedule(st)
    base_idx = [p.index for p in pts if p.baseline]
    fixed = {"model": model, "part": "sensitivity", "workers": len(cores.worker), "unit": "x",
             "confidence": st.confidence, "baseline_unit": "ms", "scale": scale,
             "worker_cores": " ".join(map(str, cores.worker)),
             "antagonist_cores": " ".join(map(str, cores.antagonists))}
    boot = {"replicates": st.bootstrap, "confidence": st.confidence,
            "rng": np.random.default_rng(common.derived_seed(st.seed, "interference-bootstrap", model))}
    out: list[dict[str, Any]] = []
    for k, kind in enumerate(st.sensitivity_kinds):
        for regime in REGIMES:
            reg = samples[samples["regime"] == regime]
            before = _samples(reg[reg["point"] == base_idx[k]])
            after = _samples(reg[reg["point"] == base_idx[k + 1]])
            base = before.concat(after)
            share = stats.shares(base)
            for statistic, metric in SENSITIVITY_METRICS.items():
                drift = stats.inflation(before, after, statistic, share=share, **boot)
                note = _drift_note(drift, st.drift_tolerance)
                row = {**fixed, "kind": kind, "regime": regime, "metric": metric, "drift": drift.value,
                       "baseline": stats.stratified(base, statistic, share)}
                out.append({**row, "intensity": 0.0, "value": 1.0, "n_samples": len(base),
                            "antagonist_gbps": 0.0, "note": "; ".join(n for n in (BASELINE_NOTE, note) if n)})
                for p in (p for p in pts if p.kind == kind):
                    g = reg[reg["point"] == p.index]
                    est = stats.inflation(base, _samples(g), statistic, share=share, **boot)
                    out.append({**row, "intensity": p.intensity, "value": est.value, "value_lo": est.lo,
                                "value_hi": est.hi, "n_samples": len(g),
                                "antagonist_gbps": float(g["antagonist_gbps"].max()) if len(g) else math.nan,
                                "note": "; ".join(n for n in (est.note, note) if n)})
    return out
