"""F4's joint trials against their own control variates, tenant by tenant (``hera bench pair-trials``): where a
pair prediction loses, read from a finished run's trial rows.

Every joint trial of a co-location point (:mod:`hera.profile.colocation`) measures each tenant's tail and adjusts
it by a control variate: the tenant's node model with the point's predicted interference inflation and
calibration (:class:`hera.profile.colocation.TenantModel`), replayed on the trial's own arrivals. The adjusted
tail is therefore the measured system's expected tail at the trial's rate, and

    residual = ln(adjusted tail) − ln(the model's expected tail at that rate and trial length)

is how far the tenant's tail lay above (> 0) or below the prediction's own model of it, with no extrapolation and
no selection on the outcome. The model is rebuilt here exactly as the stage built it (same profile, inflation,
calibration and seed); a trial's chunks are taken as equal (the rows keep only their total), which changes the
expected tail by the short-run bias of a chunk length only.

Grouped by the tenant's *own share* of its ray (``share_a`` for tenant a, ``1 − share_a`` for b: 0.75 favoured,
its partner light; 0.5 balanced; 0.25 light, its partner near its own QPS*), the residuals separate the two
readings of the balanced ray's over-prediction (docs/DESIGN.md): a partner that raises the tenant's tail beyond
the interference model shows as a residual that grows with the partner's load (``partner_load_effect``); a joint
trial noisier than F2's one-tenant trials as a larger scatter of the residuals within a point
(``crossing_sd``: that scatter over the tenant's F2 tail slope, in log rate like F2's ``trial_crossing_sd``).
The first moment of the same effect, on the service times alone, is ``service_drift_gradient``
(:func:`drift_gradient`), by partner model and by tenant model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.errors import HeraError
from hera.profile.joint_trials import (  # noqa: F401  (node_profile, NODE_SHARES, saturated_capacity: this API too)
    NODE_SHARES,
    POINT,
    RESIDUAL_COLUMNS,
    cell_gradients,
    need,
    node_profile,
    saturated_capacity,
    trial_residuals,
)

#: Bootstrap replicates (over pairs) of the partner-load effect's interval.
BOOTSTRAP = 2000


def check_uncalibrated(results: str | Path) -> None:
    """:class:`HeraError` if the run's own prediction had a neighbour channel: its service drift is net of it."""
    c = json.loads(need(Path(results) / "config.json").read_text())
    coloc = c.get("colocation") or {}
    if ((c.get("interference") or {}).get("neighbour") or {}).get("enabled") or coloc.get("node_profile") \
            or coloc.get("node_calibration"):
        raise HeraError(f"{results} predicted its pairs with a neighbour channel (interference.neighbour, "
                        f"colocation.node_profile or colocation.node_calibration): its service drift is net of it; "
                        f"a node profile reads runs predicted without one")


def residuals(results: str | Path) -> pd.DataFrame:
    """One row per (joint trial, tenant) of the run in ``results`` (:data:`RESIDUAL_COLUMNS`); a trial whose
    tenant has no finite adjusted tail (an aborted trial) is left out."""
    res = Path(results)
    config = json.loads(need(res / "config.json").read_text())
    files = sorted((res / "colocation" / "pairs").glob("*.trials.csv"))
    if not files:
        raise HeraError(f"{res / 'colocation' / 'pairs'} holds no *.trials.csv: the run measured no pair")
    return trial_residuals(config, need(res / "colocation" / "predicted.csv"),
                           need(res / "profile" / "scalability.csv"), files,
                           lambda m: need(res / "profile" / "service" / f"{m}.parquet"))


def _centred(df: pd.DataFrame) -> pd.Series:
    """Each residual minus the mean of its (run, point, tenant): the scatter between a point's trials."""
    keys = [k for k in ["run", *POINT, "tenant"] if k in df.columns]
    return df["residual"] - df.groupby(keys)["residual"].transform("mean")


def _effect(df: pd.DataFrame, own: float, ref: float, rng: np.random.Generator, confidence: float
            ) -> dict[str, float | None]:
    """Mean residual at own share ``own`` minus at ``ref``, with a bootstrap interval over (run, pair)
    clusters (the trials of one pair are not independent)."""
    keys = [k for k in ("run", "model_a", "model_b") if k in df.columns]
    cl = df.assign(own=df["own_share"].round(3)).groupby(keys + ["own"])["residual"].agg(["sum", "count"])
    table = cl.unstack("own")
    if own not in table["sum"].columns or ref not in table["sum"].columns:
        return {"value": None, "lo": None, "hi": None, "clusters": 0}
    sums, counts = table["sum"].fillna(0.0), table["count"].fillna(0.0)

    def diff(idx: np.ndarray) -> float:
        s, c = sums.iloc[idx].sum(), counts.iloc[idx].sum()
        return float(s[own] / c[own] - s[ref] / c[ref]) if c[own] > 0 and c[ref] > 0 else math.nan

    n = len(sums)
    point = diff(np.arange(n))
    boot = np.array([diff(rng.integers(0, n, n)) for _ in range(BOOTSTRAP)])
    boot = boot[np.isfinite(boot)]
    a = (1 - confidence) / 2
    lo, hi = (float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a))) if boot.size else (math.nan, math.nan)
    return {"value": round(point, 4), "lo": round(lo, 4), "hi": round(hi, 4), "clusters": int(n)}


def summary(df: pd.DataFrame, confidence: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """The figure of :func:`residuals` rows (one run, or several with a ``run`` column)."""
    if df.empty:
        raise HeraError("no joint trial with a finite adjusted tail: nothing to compare")
    d = df.assign(own=df["own_share"].round(3), centred=_centred(df))
    by_own: dict[str, Any] = {}
    for own, g in d.groupby("own"):
        crossing = (g["centred"] / g["tail_log_slope"]).replace([np.inf, -np.inf], np.nan).dropna()
        by_own[f"{own:g}"] = {
            "trials": int(len(g)),
            "mean_residual": round(float(g["residual"].mean()), 4),
            "median_residual_ms": round(float(g["residual_ms"].median()), 3),
            "residual_sd_within_point": round(float(g["centred"].std(ddof=1)), 4) if len(g) > 1 else None,
            "crossing_sd": round(float(crossing.std(ddof=1)), 4) if len(crossing) > 1 else None,
            "f2_trial_crossing_sd": round(float(g["f2_trial_crossing_sd"].mean()), 4),
            "median_service_drift": round(float(g["service_drift"].median()), 4),
        }
    rng = np.random.default_rng(seed)
    tenants = (d.groupby(["tenant", "own"])["residual"].mean().unstack("own").round(4))
    return {
        "trials": int(len(d)),
        "pairs": int(d[["model_a", "model_b"]].drop_duplicates().shape[0]),
        "by_own_share": by_own,
        # how much higher a tenant's tail lies against the prediction when its partner is loaded: balanced (0.5)
        # and light (0.25, the partner near its QPS*) against favoured (0.75, the partner light)
        "partner_load_effect": {"balanced_vs_favoured": _effect(d, 0.5, 0.75, rng, confidence),
                                "light_vs_favoured": _effect(d, 0.25, 0.75, rng, confidence),
                                "confidence": confidence},
        "by_tenant": {t: {f"{k:g}": (None if pd.isna(v) else float(v)) for k, v in row.items()}
                      for t, row in tenants.iterrows()},
        "service_drift_gradient": drift_gradient(d),
    }


def drift_gradient(df: pd.DataFrame) -> dict[str, Any]:
    """How much slower a tenant's service ran as its partner's load rose: per (run, tenant, partner) the median
    log service drift of its trials at its own share 0.5 and 0.25 minus at 0.75 (its partner light), averaged by
    partner model and by tenant model (``by_partner``, ``by_tenant``). The prediction's interference inflation is
    in the drift's denominator, so a gradient above 0 is slowdown next to a loaded partner that the interference
    profiles did not predict; ``served_by_partner`` adds back the gradient of that predicted inflation (log
    inflation + log drift: how much slower the tenant served, predicted or not). On a ray the tenant's own load
    falls as its partner's rises, so the two are not separated here."""
    d = df[np.isfinite(df["service_drift"]) & (df["service_drift"] > 0)]
    keys = [k for k in ("run", "tenant", "partner") if k in d.columns]
    empty = {"by_partner": {}, "by_tenant": {}, "served_by_partner": {}, "cells": 0}
    if d.empty or "partner" not in d.columns:
        return empty
    d = d.assign(own=d["own_share"].round(3), log_drift=np.log(d["service_drift"]))
    if "inflation" in d.columns:
        d = d.assign(log_served=d["log_drift"] + np.log(d["inflation"].where(d["inflation"] > 0)))
    grads = {}
    for col in ("log_drift", "log_served"):
        if col not in d.columns:
            continue
        g = cell_gradients(d, keys, col)
        if g is None:
            return empty
        grads[col] = g.rename(columns={0.5: "0.5", 0.25: "0.25"})
    grad = grads["log_drift"]
    shares = [c for c in ("0.5", "0.25") if c in grad.columns]

    def by(g: pd.DataFrame, col: str) -> dict[str, Any]:
        return {str(k): {**{c: (None if pd.isna(v) else round(float(v), 4)) for c, v in x[shares].mean().items()},
                         "cells": int(len(x))} for k, x in g.groupby(col)}

    out = {"by_partner": by(grad, "partner"), "by_tenant": by(grad, "tenant"),
           "mean": {c: round(float(grad[c].mean()), 4) for c in shares}, "cells": int(len(grad))}
    served = grads.get("log_served")
    out["served_by_partner"] = by(served, "partner") if served is not None else {}
    if served is not None:
        out["served_mean"] = {c: round(float(served[c].mean()), 4) for c in shares if c in served.columns}
    return out


