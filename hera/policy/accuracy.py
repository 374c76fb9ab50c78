"""How well the O(N) pair predictions match the measured co-location points (``policy/prediction_errors.csv``,
``hera bench pair-prediction``).

Every measured point of ``colocation/pairs.csv`` carries the prediction of the same point beside it
(``predicted_qps_star_a/b``, ``predicted_emu``; :mod:`hera.profile.colocation`). Per point and tenant the error
is ``(predicted − measured) / measured``; where the measured QPS* is 0 there is no relative error, and the row
gives the absolute error in queries/s instead (``relative_*`` False) — never a division by an epsilon. The EMU
error is the absolute difference ``predicted_emu − emu`` (EMU is already a ratio).

Where the table carries it, the same errors of the *served* prediction (``predicted_served_*``: the prediction's
boundary model on each tenant's service times as its trials served them, the interference prediction's miss
taken out) are given beside (``served_error_*``, ``served_emu_error``), a decomposition, never the headline.
So are those of the *anchored* prediction (``anchored_*``: the same O(N) prediction with each tenant's curve
rescaled by its speed alone right before the split was measured, :func:`hera.profile.colocation.anchor_split`):
``anchored_error_*`` (relative where the measured QPS* > 0, else absolute, as the headline), ``anchored_emu_error``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hera.errors import ConfigError

#: Columns :func:`prediction_errors` needs from the measured co-location table.
NEEDED = ("model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "qps_star_a", "qps_star_b", "emu",
          "predicted_qps_star_a", "predicted_qps_star_b", "predicted_emu")
#: Columns that name a measured point (copied when present).
POINT_COLUMNS = ("model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "llc", "share_a", "selected_as")
#: Columns of the result (one row per measured point).
ERROR_COLUMNS = [
    *POINT_COLUMNS,
    *(f"{x}_{t}" for t in "ab" for x in ("qps_star", "predicted_qps_star", "error", "relative")),
    *("emu", "predicted_emu", "emu_error", "emu_in_interval"),
    *(f"{x}_{t}" for t in "ab" for x in ("predicted_served_qps_star", "served_error")),
    *("predicted_served_emu", "served_emu_error"),
    *(f"{x}_{t}" for t in "ab" for x in ("anchored_qps_star", "anchored_error")),
    *("anchored_emu", "anchored_emu_error"),
    *(f"{x}_{t}" for t in "ab" for x in ("refreshed_qps_star", "refreshed_error")),
    *("refreshed_emu", "refreshed_emu_error"),
]
#: The served prediction's columns in the measured table (optional: tables before it lack them).
SERVED = ("predicted_served_qps_star_a", "predicted_served_qps_star_b", "predicted_served_emu")
#: The anchored prediction's columns (optional: tables before it, or a stage with ``colocation.anchor`` off).
ANCHORED = ("anchored_qps_star_a", "anchored_qps_star_b", "anchored_emu")
#: The refreshed prediction's columns (optional: written by ``hera profile refresh``; hera.profile.refresh).
REFRESHED = ("refreshed_qps_star_a", "refreshed_qps_star_b", "refreshed_emu")


def signed_error(predicted, measured) -> tuple[np.ndarray, np.ndarray]:
    """``(error, relative)``: ``(predicted − measured) / measured`` where ``measured > 0`` (``relative`` True),
    else the absolute difference ``predicted − measured`` (``relative`` False, the unit of the values)."""
    p, m = np.asarray(predicted, float), np.asarray(measured, float)
    rel = m > 0
    err = np.where(rel, (p - m) / np.where(rel, m, 1.0), p - m)
    return err, rel


#: what identifies a co-location point in both the measured and the predicted table
POINT_KEYS = ("model_a", "model_b", "cores_a", "cores_b", "llc", "share_a")


def with_predictions(pairs: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` (measured points) with their prediction columns taken from ``predicted`` (a
    ``colocation/predicted.csv``) at the same pair, split, LLC option and ray; a point the table does not
    predict gets NaN. For scoring a finished run's measurements against a prediction made afterwards."""
    missing = [c for c in (*POINT_KEYS, "qps_star_a", "qps_star_b", "emu") if c not in predicted.columns]
    if missing:
        raise ConfigError(f"the prediction table lacks column(s) {', '.join(missing)}")
    src = {"qps_star_a": "predicted_qps_star_a", "qps_star_b": "predicted_qps_star_b", "emu": "predicted_emu",
           "emu_lo": "predicted_emu_lo", "emu_hi": "predicted_emu_hi"}
    keys = list(POINT_KEYS)
    right = predicted[keys + [c for c in src if c in predicted.columns]].rename(columns=src)
    right = right.assign(share_a=pd.to_numeric(right["share_a"]).round(3)).drop_duplicates(keys)
    left = pairs.drop(columns=[c for c in src.values() if c in pairs.columns])
    left = left.assign(share_a=pd.to_numeric(left["share_a"]).round(3))
    return left.merge(right, on=keys, how="left")


def prediction_errors(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per measured point of ``pairs`` (``colocation/pairs.csv``): measured and predicted QPS* of each
    tenant with its error (:func:`signed_error`), measured and predicted EMU with ``emu_error`` (predicted −
    measured) and whether the measured EMU lies in the predicted interval (``emu_in_interval``; NaN without
    ``predicted_emu_lo/hi``). Points whose measured QPS* is missing (NaN: the point failed) are left out."""
    if not isinstance(pairs, pd.DataFrame):
        raise ConfigError(
            f"prediction errors need the measured co-location table, got {type(pairs).__name__}"
        )
    missing = [c for c in NEEDED if c not in pairs.columns]
    if missing:
        raise ConfigError(
            f"the measured co-location table lacks column(s) {', '.join(missing)} (it must carry "
            "the prediction of each point beside it)"
        )
    num = {c: pd.to_numeric(pairs[c], errors="coerce") for c in NEEDED[6:]}
    keep = num["qps_star_a"].notna() & num["qps_star_b"].notna() & num["emu"].notna()
    df = pairs[keep].reset_index(drop=True)
    num = {c: v[keep].reset_index(drop=True) for c, v in num.items()}
    out = pd.DataFrame({c: df[c] if c in df.columns else np.nan for c in POINT_COLUMNS})
    for t in ("a", "b"):
        out[f"qps_star_{t}"] = num[f"qps_star_{t}"]
        out[f"predicted_qps_star_{t}"] = num[f"predicted_qps_star_{t}"]
        out[f"error_{t}"], out[f"relative_{t}"] = signed_error(
            num[f"predicted_qps_star_{t}"], num[f"qps_star_{t}"]
        )
    out["emu"], out["predicted_emu"] = num["emu"], num["predicted_emu"]
    out["emu_error"] = out["predicted_emu"] - out["emu"]
    if {"predicted_emu_lo", "predicted_emu_hi"} <= set(df.columns):
        lo = pd.to_numeric(df["predicted_emu_lo"], errors="coerce")
        hi = pd.to_numeric(df["predicted_emu_hi"], errors="coerce")
        out["emu_in_interval"] = ((lo <= out["emu"]) & (out["emu"] <= hi)).where(lo.notna() & hi.notna())
    else:
        out["emu_in_interval"] = np.nan
    served = {c: pd.to_numeric(df[c], errors="coerce") if c in df.columns else pd.Series(np.nan, index=df.index)
              for c in SERVED}
    for t in ("a", "b"):
        out[f"predicted_served_qps_star_{t}"] = served[f"predicted_served_qps_star_{t}"]
        err, rel = signed_error(served[f"predicted_served_qps_star_{t}"], num[f"qps_star_{t}"])
        out[f"served_error_{t}"] = np.where(rel, err, np.nan)  # relative only: a decomposition of the headline
    out["predicted_served_emu"] = served["predicted_served_emu"]
    out["served_emu_error"] = out["predicted_served_emu"] - out["emu"]
    for prefix, cols in (("anchored", ANCHORED), ("refreshed", REFRESHED)):
        got = {c: pd.to_numeric(df[c], errors="coerce") if c in df.columns else pd.Series(np.nan, index=df.index)
               for c in cols}
        for t in ("a", "b"):  # a prediction like the headline's: relative where measured > 0, else absolute
            out[f"{prefix}_qps_star_{t}"] = got[f"{prefix}_qps_star_{t}"]
            out[f"{prefix}_error_{t}"], _ = signed_error(got[f"{prefix}_qps_star_{t}"], num[f"qps_star_{t}"])
        out[f"{prefix}_emu"] = got[f"{prefix}_emu"]
        out[f"{prefix}_emu_error"] = out[f"{prefix}_emu"] - out["emu"]
    return out[ERROR_COLUMNS]


def _flag(col: pd.Series) -> pd.Series:
    """Booleans of a ``relative_*`` column, also when read back from CSV as text."""
    return col if col.dtype == bool else col.astype(str).str.strip().str.lower().isin({"true", "1", "1.0"})


def prediction_summary(errors: pd.DataFrame) -> dict[str, float | int]:
    """The headline numbers of :func:`prediction_errors`: ``median_abs_rel_error`` (over every tenant of every
    point with a measured QPS* > 0), ``mean_abs_emu_error``, ``points``, ``pairs``, and ``zero_measured``
    (tenant values with a measured QPS* of 0, counted in absolute terms only)."""
    rel = pd.concat(
        [
            errors.loc[_flag(errors["relative_a"]), "error_a"],
            errors.loc[_flag(errors["relative_b"]), "error_b"],
        ]
    ).abs()
    pairs = {tuple(sorted((str(a), str(b)))) for a, b in zip(errors["model_a"], errors["model_b"])}
    return {
        "median_abs_rel_error": float(rel.median()) if len(rel) else float("nan"),
        "mean_abs_emu_error": float(errors["emu_error"].abs().mean()) if len(errors) else float("nan"),
        "points": int(len(errors)),
        "pairs": len(pairs),
        "zero_measured": int(
            (~_flag(errors["relative_a"])).sum() + (~_flag(errors["relative_b"])).sum()
        ),
        **_beside(errors, "served"),
        **_beside(errors, "anchored"),
        **_beside(errors, "refreshed"),
    }


#: The prediction the pair bars are judged on where a run has it at every point: the refreshed one (each model's
#: speed from its anchors in the pass's other sittings; docs/DESIGN.md, "The refreshed prediction", which names
#: the rule that made it the headline after runs 72-74). Elsewhere (tables before it, a study without anchors, a
#: two-model study, a run scored against another prediction table) the a-priori prediction is the headline.
HEADLINE = "refreshed"


def headline(summary: dict[str, float | int], refreshed_ok: bool = True) -> dict[str, float | int | str]:
    """The bars' figures of a :func:`prediction_summary`: ``headline`` (which prediction), its
    ``median_abs_rel_error`` and ``mean_abs_emu_error``, and the a-priori prediction's as
    ``apriori_median_abs_rel_error`` / ``apriori_mean_abs_emu_error`` (the same where it is the headline).
    ``refreshed_ok`` False: the refreshed columns do not belong to the predictions scored (another table)."""
    points = summary.get("points", 0)
    use = bool(refreshed_ok and points and summary.get(f"{HEADLINE}_points", 0) == points)
    prefix = f"{HEADLINE}_" if use else ""
    return {"headline": HEADLINE if use else "apriori",
            "median_abs_rel_error": summary[f"{prefix}median_abs_rel_error"],
            "mean_abs_emu_error": summary[f"{prefix}mean_abs_emu_error"],
            "apriori_median_abs_rel_error": summary["median_abs_rel_error"],
            "apriori_mean_abs_emu_error": summary["mean_abs_emu_error"]}


def _beside(errors: pd.DataFrame, prefix: str) -> dict[str, float | int]:
    """The summary of a prediction reported beside the headline (``served``, ``anchored`` or ``refreshed``): the median relative
    error over the tenant values with a measured QPS* > 0, the mean |EMU error| and the points it has; empty
    where the table lacks it."""
    col = f"{prefix}_emu_error"
    if col not in errors.columns or not errors[col].notna().any():
        return {}
    rel = pd.concat([pd.to_numeric(errors.loc[_flag(errors[f"relative_{t}"]), f"{prefix}_error_{t}"],
                                   errors="coerce") for t in "ab"]).abs().dropna()
    return {f"{prefix}_median_abs_rel_error": float(rel.median()) if len(rel) else float("nan"),
            f"{prefix}_mean_abs_emu_error": float(pd.to_numeric(errors[col]).abs().mean()),
            f"{prefix}_points": int(errors[col].notna().sum())}


def drift_decomposition(pairs: pd.DataFrame) -> dict[str, float | int]:
    """Where the measured points' service drift (each tenant's served over predicted query span in its joint
    trials, ``service_drift_a/b``) varies, in log: ``total`` variance over every tenant of every point, what is
    left around each (pair, tenant)'s mean over the pair's points (``within_pair``) and around each model's mean
    as a tenant over all its pairs (``within_model``); ``mean_log`` (the machine's level against the prediction
    at the time, > 0: slower) and ``corr_a_b``, the correlation of the two tenants' log drifts at the same point
    (a factor they share). A drift that stays with the pair — whenever in the run it is measured, with whichever
    load on its rays — is what a per-pair re-anchoring could take out; the within-pair rest could not. Empty
    where the table lacks the columns or has fewer than two points."""
    cols = ("service_drift_a", "service_drift_b")
    if not set(cols) <= set(pairs.columns) or len(pairs) < 2:
        return {}
    parts = []
    for t in "ab":
        d = pd.to_numeric(pairs[f"service_drift_{t}"], errors="coerce")
        parts.append(pd.DataFrame({"pair": pairs["model_a"].astype(str) + "__" + pairs["model_b"].astype(str),
                                   "side": t, "model": pairs[f"model_{t}"].astype(str), "log": np.log(d)}))
    df = pd.concat(parts, ignore_index=True).replace([np.inf, -np.inf], np.nan).dropna(subset=["log"])
    if len(df) < 2:
        return {}
    pair_mean = df.groupby(["pair", "side"])["log"].transform("mean")
    model_mean = df.groupby("model")["log"].transform("mean")
    a = np.log(pd.to_numeric(pairs["service_drift_a"], errors="coerce"))
    b = np.log(pd.to_numeric(pairs["service_drift_b"], errors="coerce"))
    ok = np.isfinite(a) & np.isfinite(b)
    spread = ok.sum() > 2 and float(a[ok].std()) > 0 and float(b[ok].std()) > 0
    corr = float(np.corrcoef(a[ok], b[ok])[0, 1]) if spread else float("nan")
    return {"total": float(df["log"].var()), "within_pair": float((df["log"] - pair_mean).var()),
            "within_model": float((df["log"] - model_mean).var()), "mean_log": float(df["log"].mean()),
            "corr_a_b": corr, "values": int(len(df))}

