"""F4's joint trials read as the prediction's model saw them, and the node's loaded-neighbour slowdown read from them.

:func:`trial_residuals` rebuilds, for every joint trial of a co-location point (:mod:`hera.profile.colocation`), the
tenant's node model with the point's predicted inflation and calibration and gives its tail residual, service drift
and the partner's utilisation; :func:`node_profile` pools the drift's gradient over the rays into a neighbour-channel
profile of every model (what ``hera profile predict-pairs --neighbour`` reads). ``hera bench pair-trials``
(:mod:`hera.report.pair_trials`) reports on them; ``hera profile node-calibration``
(:mod:`hera.profile.node_calibration`) writes the node calibration measured in the run from them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from hera.errors import HeraError

#: A point of one pair: the rows of one (split, ray) — a tenant's residuals scatter within it.
POINT = ["model_a", "model_b", "cores_a", "cores_b", "llc", "share_a"]
RESIDUAL_COLUMNS = POINT + ["tenant", "side", "partner", "own_share", "repeat", "trial", "rate_qps",
                            "capacity_qps", "partner_utilisation", "sla_ms", "latency_ms_adjusted",
                            "latency_ms_model", "residual", "residual_ms", "service_drift", "inflation", "tail_log_slope",
                            "f2_trial_crossing_sd"]
def need(path: Path, why: str = "pair-trials reads a finished run's results folder (results/<scale>)") -> Path:
    if not path.is_file():
        raise HeraError(f"{path} does not exist: {why}")
    return path


def llc_option(ways_a: Any, ways_b: Any) -> str:
    return "shared" if pd.isna(ways_a) else f"{int(ways_a)}/{int(ways_b)}"


def trial_residuals(config: dict[str, Any], predicted: str | Path, scalability: str | Path,
                    trial_files: list[str | Path], service: Callable[[str], str | Path]) -> pd.DataFrame:
    """:func:`residuals` from named files: the prediction the trials were measured against, F2's table, the
    pairs' ``*.trials.csv`` and ``service(model)``, the path of each model's service profile."""
    from hera.profile.colocation import tenant_model
    from hera.profile.service import read_samples

    pred_path = Path(predicted)
    why = "the joint trials are read against the prediction, F2's table and the service profiles they were measured with"
    pred = pd.read_csv(need(pred_path, why))
    scal = pd.read_csv(need(Path(scalability), why))
    if not trial_files:
        raise HeraError("no *.trials.csv given: no joint trial to read")
    trials = pd.concat([pd.read_csv(need(Path(f), why)) for f in trial_files], ignore_index=True)
    trials["llc"] = [llc_option(a, b) for a, b in zip(trials["ways_a"], trials["ways_b"])]
    f2 = scal.set_index(["model", "workers"])
    samples: dict[str, pd.DataFrame] = {}
    capacity: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    for key, g in trials.groupby(POINT + ["ways_a", "ways_b"], dropna=False, sort=True):
        ma, mb, ca, cb, llc, s, wa, _ = key
        p = pred[(pred["model_a"] == ma) & (pred["model_b"] == mb) & (pred["cores_a"] == ca)
                 & (pred["cores_b"] == cb) & (pred["llc"] == llc) & np.isclose(pred["share_a"].astype(float), s)]
        if p.empty:
            raise HeraError(f"{pred_path} has no row for {ma} + {mb} on {ca}+{cb}, LLC "
                            f"{llc}, ray {s:g}: not the prediction this run measured against")
        p = p.iloc[0]
        # the stream name colocation.measure_point gave the point (its seeds follow from it)
        stream = f"colocation/{ma}__{mb}/{int(ca)}+{int(cb)}/{None if pd.isna(wa) else int(wa)}/{float(s):g}"
        names = sorted(set(g["tenant"]))
        for side, model, cores in (("a", ma, ca), ("b", mb, cb)):
            tenant = model if model in names else f"{model}.{side}"  # the same model twice: model.a, model.b
            mine = g[g["tenant"] == tenant]
            if mine.empty:
                continue
            if model not in samples:
                samples[model] = read_samples(need(Path(service(model)), why), model)
                capacity[model] = saturated_capacity(samples[model])
            k = p.get(f"service_scale_{side}", 1.0)
            scale = float(p[f"inflation_{side}"]) * (float(k) if pd.notna(k) else 1.0)
            tail = tenant_model(config, samples[model], int(cores), scale, f"{stream}/{side}").tail_model()
            slope = f2["tail_log_slope"].get((model, 1), math.nan) if "tail_log_slope" in f2 else math.nan
            sd = f2["trial_crossing_sd"].get((model, 1), math.nan) if "trial_crossing_sd" in f2 else math.nan
            for r in mine.itertuples():
                adj = float(r.latency_ms_pct_adjusted)
                if not (math.isfinite(adj) and adj > 0):
                    continue
                n = max(int(r.chunks), 1)
                expected = math.exp(tail.expected_log_tail(float(r.rate_qps), [max(int(r.n_measured) // n, 1)] * n,
                                                           int(r.warmup_queries)))
                rows.append({"model_a": ma, "model_b": mb, "cores_a": int(ca), "cores_b": int(cb), "llc": llc,
                             "share_a": float(s), "tenant": tenant, "side": side,
                             "partner": mb if side == "a" else ma,
                             "own_share": float(s) if side == "a" else round(1.0 - float(s), 6),
                             "repeat": int(r.repeat), "trial": int(getattr(r, "trial", -1)),
                             "rate_qps": float(r.rate_qps), "capacity_qps": capacity[model],
                             "partner_utilisation": math.nan, "sla_ms": float(r.sla_ms),
                             "latency_ms_adjusted": adj, "latency_ms_model": expected,
                             "residual": math.log(adj / expected), "residual_ms": adj - expected,
                             "service_drift": float(r.service_drift), "inflation": float(p[f"inflation_{side}"]),
                             "tail_log_slope": float(slope),
                             "f2_trial_crossing_sd": float(sd)})
    df = pd.DataFrame(rows, columns=RESIDUAL_COLUMNS)
    if len(df):  # the partner's rate in the same trial over its one-worker capacity
        util = df["rate_qps"] / df["capacity_qps"]
        key = [*POINT, "repeat", "trial"]
        other = df.assign(side=np.where(df["side"] == "a", "b", "a"), partner_utilisation=util)[
            [*key, "side", "partner_utilisation"]]
        df = df.drop(columns="partner_utilisation").merge(other, on=[*key, "side"], how="left")[RESIDUAL_COLUMNS]
    return df


def saturated_capacity(samples: pd.DataFrame) -> float:
    """Queries per second one worker sustains back to back: 1000 over the mean summed sub-batch service time of a
    query in the profile's saturated regime (one worker), weighted as the profile weights its queries."""
    s = samples[(samples["workers"] == 1) & (samples["regime"] == "saturated")]
    if s.empty:
        return math.nan
    q = s.groupby("query").agg(work=("service_ms", "sum"), weight=("weight", "first"))
    w = q["weight"].fillna(1.0).to_numpy(float)
    mean = float(np.average(q["work"].to_numpy(float), weights=w)) if w.sum() > 0 else float(q["work"].mean())
    return 1000.0 / mean if mean > 0 else math.nan


def cell_gradients(d: pd.DataFrame, keys: list[str], col: str) -> pd.DataFrame | None:
    """Per (run, tenant, partner) cell the median of ``col`` at own share 0.5 and 0.25 minus at 0.75 (columns 0.5,
    0.25 as far as measured; a cell measured at neither is dropped); None without trials at 0.75."""
    cell = d.groupby(keys + ["own"])[col].median().unstack("own")
    if 0.75 not in cell.columns:
        return None
    return pd.DataFrame({o: cell[o] - cell[0.75] for o in (0.5, 0.25) if o in cell.columns}
                        ).dropna(how="all").reset_index()


#: The own shares whose service the node profile reads, against 0.75 (the partner light).
NODE_SHARES = (0.75, 0.5, 0.25)


def node_profile(df: pd.DataFrame, models: list[str], leave_model_out: bool = True) -> pd.DataFrame:
    """A neighbour-channel profile (``model, utilisation, extra_inflation``: what ``hera profile predict-pairs
    --neighbour`` reads) of the node's loaded-neighbour slowdown, the same function for every model: the drift
    gradient of :func:`drift_gradient`, pooled over every (run, tenant, partner) cell of ``df``, at the partner's
    median utilisation on each own share (0.75: the knot e = 1; 0.5 and 0.25: e = exp(mean gradient)). With
    ``leave_model_out`` a model's knots pool only the cells it is in neither as tenant nor as partner, so its
    correction never comes from its own pairs."""
    d = df[np.isfinite(df["service_drift"]) & (df["service_drift"] > 0)]
    if d.empty or "partner" not in d.columns:
        raise HeraError("no joint trial with a service drift: no node profile")
    keys = [k for k in ("run", "tenant", "partner") if k in d.columns]
    d = d.assign(own=d["own_share"].round(3), log_drift=np.log(d["service_drift"]))
    grad = cell_gradients(d, keys, "log_drift")
    if grad is None or any(s not in grad.columns for s in NODE_SHARES[1:]):
        raise HeraError("a node profile needs trials on the three rays (own shares 0.75, 0.5 and 0.25)")
    grad = grad.dropna(subset=list(NODE_SHARES[1:]))
    util = d.groupby("own")["partner_utilisation"].median()
    runs = int(d["run"].nunique()) if "run" in d.columns else 1
    rows = []
    for m in models:
        g = grad[(grad["tenant"] != m) & (grad["partner"] != m)] if leave_model_out else grad
        if g.empty:
            raise HeraError(f"no cell without {m!r} to pool: give more runs or pairs, or leave_model_out off")
        for s in NODE_SHARES:
            u = float(util.get(s, math.nan))
            rows.append({"model": m, "own_share": s, "utilisation": round(u, 4),
                         "extra_inflation": 1.0 if s == 0.75 else round(math.exp(float(g[s].mean())), 5),
                         "cells": int(len(g)),
                         "runs": runs, "note": ("cells without this model" if leave_model_out else "every cell")
                         + "; the partner's median utilisation on this own share"})
    out = pd.DataFrame(rows)
    rising = out.groupby("model")["utilisation"].agg(lambda u: bool(np.all(np.diff(u.to_numpy(float)) > 0)))
    if not np.isfinite(out["utilisation"]).all() or not rising.all():
        raise HeraError("the partners' utilisations do not rise as the tenant's own share falls: not rays of one "
                        "kind")
    return out


def knots(profile: pd.DataFrame) -> dict[str, float]:
    """A :func:`node_profile`'s function, the same for every model: ``{partner utilisation: extra inflation}``."""
    first = profile.drop_duplicates("own_share")
    return {f"{u:.3f}": float(e) for u, e in zip(first["utilisation"], first["extra_inflation"])}
