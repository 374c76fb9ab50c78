"""How sensitive QPS* is to the machine's speed (its *conditioning*), and how much of the node model's error the
confirmation trials' change of speed explains (``hera bench model-agreement``, ``hera bench conditioning``, T2 row
M; docs/DESIGN.md, "Conditioning of QPS*").

With every service time × s the node's clock simply runs slower: a tenant's latency curve becomes s · L(s · λ),
so at a fixed SLA its QPS* moves by the **elasticity**

    e = d ln QPS* / d ln s = −(1 + 1/b),     b = d ln(tail) / d ln(rate) at QPS*

(b: the F2 row's ``tail_log_slope``, read off the node model's curve). A tail that rises like a wall (b → ∞) gives
e = −1, QPS* proportional to the machine's speed; the flatter the tail, the larger |e|. The node model is set at
the speed the operating-point probe measured; if the trials then serve their queries ``service_drift`` times
slower, the measured QPS* moves by ``service_drift ** e`` and the model is off by ``service_drift ** −e − 1``
before any error of its own (the *drift-explained* error); what is left (``rest``) is the queueing model's. The
drift a point tolerates before the model misses the measurement by ``max_error`` on that account alone is
``(1 ± max_error) ** (1 / −e)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from hera.errors import HeraError


def service_elasticity(tail_log_slope: Any) -> np.ndarray:
    """``−(1 + 1/b)`` element-wise; NaN where the slope is not a finite positive number."""
    b = np.asarray(pd.to_numeric(pd.Series(np.ravel(tail_log_slope)), errors="coerce"), float)
    out = np.full(b.shape, np.nan)
    ok = np.isfinite(b) & (b > 0)
    out[ok] = -(1.0 + 1.0 / b[ok])
    return out


def tolerated_drift(elasticity: float, max_error: float) -> tuple[float, float]:
    """``(faster, slower)``: the trials' service drift (served time over the probe's) that alone moves the measured
    QPS* to ``max_error`` above (faster trials) or below (slower trials) the model."""
    if not (math.isfinite(elasticity) and elasticity < 0) or not 0 < max_error < 1:
        return math.nan, math.nan
    k = 1.0 / -elasticity
    return (1.0 - max_error) ** k, (1.0 + max_error) ** k


def points(scal: pd.DataFrame, max_error: float) -> pd.DataFrame:
    """Per F2 row with a tail slope, a measured QPS* > 0 and a service drift: its elasticity, the error the drift
    explains, the rest, the model's own error (log and relative) and the drift band it tolerates."""
    need = {"model", "workers", "qps_star", "qps_star_model", "tail_log_slope", "service_drift"}
    if not need <= set(scal.columns):
        return pd.DataFrame()
    df = scal[list(need)].copy()
    for c in ("qps_star", "qps_star_model", "tail_log_slope", "service_drift"):
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["elasticity"] = service_elasticity(df["tail_log_slope"])
    df = df[np.isfinite(df["elasticity"]) & (df["qps_star"] > 0) & (df["qps_star_model"] > 0)
            & (df["service_drift"] > 0)].copy()
    df["log_error"] = np.log(df["qps_star_model"] / df["qps_star"])
    df["log_explained"] = -df["elasticity"] * np.log(df["service_drift"])
    df["log_rest"] = df["log_error"] - df["log_explained"]
    df["error"] = np.expm1(df["log_error"])
    df["explained_error"] = np.expm1(df["log_explained"])
    df["rest_error"] = np.expm1(df["log_rest"])
    band = [tolerated_drift(e, max_error) for e in df["elasticity"]]
    df["tolerated_faster"] = [b[0] for b in band]
    df["tolerated_slower"] = [b[1] for b in band]
    return df.sort_values(["model", "workers"]).reset_index(drop=True)


def _spread(x: pd.Series) -> dict[str, float]:
    return {"median": round(float(x.median()), 3), "min": round(float(x.min()), 3), "max": round(float(x.max()), 3)}


def summary(scal: pd.DataFrame, max_error: float) -> dict[str, Any] | None:
    """The run's conditioning (None where its F2 rows carry no tail slope or drift, as before they did):
    elasticity by worker count, the share of the model's squared log error that drift × elasticity explains, the
    largest error without it, and the narrowest tolerated drift band."""
    return summarise(points(scal, max_error), max_error)


def summarise(df: pd.DataFrame, max_error: float) -> dict[str, Any] | None:
    """:func:`summary` of the per-point table :func:`points` already gave."""
    if df.empty:
        return None
    total = float((df["log_error"] ** 2).sum())
    tight = df.loc[(df["tolerated_slower"] / df["tolerated_faster"]).idxmin()]
    return {
        "points": int(len(df)),
        "elasticity_by_workers": {str(int(w)): _spread(g["elasticity"]) for w, g in df.groupby("workers")},
        "drift_explained_share": round(1.0 - float((df["log_rest"] ** 2).sum()) / total, 3) if total > 0 else None,
        "max_abs_error": round(float(df["error"].abs().max()), 4),
        "max_abs_error_without_drift": round(float(df["rest_error"].abs().max()), 4),
        "median_abs_error_without_drift": round(float(df["rest_error"].abs().median()), 4),
        "service_drift_log_sd": round(float(np.log(df["service_drift"]).std(ddof=1)), 4) if len(df) > 1 else None,
        "max_error": max_error,
        "narrowest_band": {"point": f"{tight['model']}/{int(tight['workers'])}",
                           "elasticity": round(float(tight["elasticity"]), 3),
                           "tolerated_faster": round(float(tight["tolerated_faster"]), 3),
                           "tolerated_slower": round(float(tight["tolerated_slower"]), 3)},
        "per_point": [{"model": r.model, "workers": int(r.workers), "elasticity": round(float(r.elasticity), 3),
                       "service_drift": round(float(r.service_drift), 3), "error": round(float(r.error), 4),
                       "explained_error": round(float(r.explained_error), 4),
                       "rest_error": round(float(r.rest_error), 4)} for r in df.itertuples()],
    }


def describe(cond: dict[str, Any] | None) -> str | None:
    """One clause for T2 row M and F9's footer from a :func:`summary` (None where it says nothing)."""
    if not cond or cond["drift_explained_share"] is None:
        return None
    e = [v for w in cond["elasticity_by_workers"].values() for v in (w["min"], w["max"])]
    return (f"QPS* moves by {-max(e):.1f}-{-min(e):.1f}% per 1% of service time (the tail's slope at QPS*), and the "
            f"trials' change of speed times that explains {cond['drift_explained_share']:.0%} of the model's squared "
            f"log error (max without it {cond['max_abs_error_without_drift']:.1%})")


def pass_rates(frames: dict[str, pd.DataFrame], max_error: float, sims: int = 20000, seed: int = 0) -> dict[str, Any]:
    """How often the max bar would be met, pooled over runs' F2 points (:func:`points` of each): a simulated run
    keeps one run's points and elasticities and draws each point's drift and rest (log) from the pooled values,
    independently (bootstrap); the counterfactuals set the drift to 1 (a machine that holds its speed between the
    probe and the trials) and the elasticity to −1 (a tail like a wall). Each is the share of simulated runs whose
    largest |error| is at most ``max_error``, beside the share of the runs themselves that met it."""
    frames = {k: v for k, v in frames.items() if not v.empty}
    if len(frames) < 2:
        raise HeraError("pass rates need the F2 points of at least two runs (with tail slopes and drifts)")
    pooled = pd.concat(frames.values(), ignore_index=True)
    log_d = np.log(pooled["service_drift"].to_numpy())
    rest = pooled["log_rest"].to_numpy()
    rng = np.random.default_rng(seed)
    bar = math.log1p(max_error), math.log1p(-max_error)
    met = {"as measured": [], "drift 1": [], "elasticity -1": []}
    for df in frames.values():
        e = df["elasticity"].to_numpy()
        n = sims // len(frames) + 1
        d = log_d[rng.integers(0, log_d.size, (n, e.size))]
        r = rest[rng.integers(0, rest.size, (n, e.size))]
        for key, err in (("as measured", -e * d + r), ("drift 1", r), ("elasticity -1", d + r)):
            met[key].append(((err <= bar[0]) & (err >= bar[1])).all(axis=1))
    out = {k: round(float(np.concatenate(v).mean()), 3) for k, v in met.items()}
    runs_met = [bool((df["error"].abs() <= max_error).all()) for df in frames.values()]
    return {"simulated_p_meets_max_bar": out["as measured"], "p_meets_max_bar_if_drift_1": out["drift 1"],
            "p_meets_max_bar_if_elasticity_1": out["elasticity -1"],
            "runs_meeting_max_bar": f"{sum(runs_met)} of {len(runs_met)}", "sims": sims,
            "pooled_points": int(len(pooled)), "pooled_service_drift_log_sd": round(float(log_d.std(ddof=1)), 4),
            "pooled_rest_log_sd": round(float(rest.std(ddof=1)), 4),
            "pooled_elasticity_by_workers": {str(int(w)): _spread(g["elasticity"])
                                             for w, g in pooled.groupby("workers")}}
