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
#: Bootstrap replicates (over pairs) of the partner-load effect's interval.
BOOTSTRAP = 2000


def _need(path: Path, why: str = "pair-trials reads a finished run's results folder (results/<scale>)") -> Path:
    if not path.is_file():
        raise HeraError(f"{path} does not exist: {why}")
    return path


def _llc(ways_a: Any, ways_b: Any) -> str:
    return "shared" if pd.isna(ways_a) else f"{int(ways_a)}/{int(ways_b)}"


def residuals(results: str | Path) -> pd.DataFrame:
    """One row per (joint trial, tenant) of the run in ``results`` (:data:`RESIDUAL_COLUMNS`); a trial whose
    tenant has no finite adjusted tail (an aborted trial) is left out."""
    res = Path(results)
    config = json.loads(_need(res / "config.json").read_text())
    files = sorted((res / "colocation" / "pairs").glob("*.trials.csv"))
    if not files:
        raise HeraError(f"{res / 'colocation' / 'pairs'} holds no *.trials.csv: the run measured no pair")
    return trial_residuals(config, _need(res / "colocation" / "predicted.csv"),
                           _need(res / "profile" / "scalability.csv"), files,
                           lambda m: _need(res / "profile" / "service" / f"{m}.parquet"))


def trial_residuals(config: dict[str, Any], predicted: str | Path, scalability: str | Path,
                    trial_files: list[str | Path], service: Callable[[str], str | Path]) -> pd.DataFrame:
    """:func:`residuals` from named files: the prediction the trials were measured against, F2's table, the
    pairs' ``*.trials.csv`` and ``service(model)``, the path of each model's service profile."""
    from hera.profile.colocation import tenant_model
    from hera.profile.service import read_samples

    pred_path = Path(predicted)
    why = "the joint trials are read against the prediction, F2's table and the service profiles they were measured with"
    pred = pd.read_csv(_need(pred_path, why))
    scal = pd.read_csv(_need(Path(scalability), why))
    if not trial_files:
        raise HeraError("no *.trials.csv given: no joint trial to read")
    trials = pd.concat([pd.read_csv(_need(Path(f), why)) for f in trial_files], ignore_index=True)
    trials["llc"] = [_llc(a, b) for a, b in zip(trials["ways_a"], trials["ways_b"])]
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
                samples[model] = read_samples(_need(Path(service(model)), why), model)
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
        g = _cell_gradients(d, keys, col)
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


def _cell_gradients(d: pd.DataFrame, keys: list[str], col: str) -> pd.DataFrame | None:
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
    grad = _cell_gradients(d, keys, "log_drift")
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
