"""Predict a pair's co-located QPS* from per-model profiles (O(N) profiling instead of O(N²) pair runs).

Bubble-Up style (Mars et al., MICRO 2011): each model is profiled once alone (scalability curve) and once
against a tunable antagonist ("bubble") that eats memory bandwidth or LLC capacity, giving

- its **sensitivity** ``s_m,k(x) = slowdown_m,k(x) − 1`` to antagonist kind k ∈ {bandwidth, cache} at
  intensity x ∈ [0, 1] (``profile/memory.csv`` rows with ``antagonist = k`` and a latency/throughput
  metric, see :data:`SENSITIVITY_METRICS`; piecewise linear in x, linear extrapolation past the last intensity; a kind
  that was not profiled counts as insensitive);
- its **pressure** ``P_m,k`` when it runs on (nearly) the whole node (Bubble-Up's "bubble score"): rows
  ``antagonist = k, metric = pressure`` (as ``hera.profile.memory`` writes them: the fraction of a probe's
  throughput the model takes away) or ``antagonist = none, metric = pressure_<k>`` (a bubble-intensity
  equivalent); the fitted gain ``γ_k`` absorbs the scale. Missing pressures are fitted from measured pairs.

Prediction for a on ``c_a`` cores (``w_a`` ways, or shared LLC) next to b on ``c_b`` cores::

    p_b,k(c_b)  = P_b,k · QPS*_b,alone(c_b) / QPS*_b,alone        (pressure grows with b's work rate)
    x_bw        = p_b,bandwidth(c_b)
    x_cache     = p_b,cache(c_b)            if the LLC is shared
                = 1 − w_a / W               if partitioned (a loses the ways it does not own, b cannot evict)
    QPS*_a(c_a | b) = QPS*_a,alone(c_a) / (1 + γ_bw · s_a,bw(x_bw) + γ_cache · s_a,cache(x_cache))

i.e. ``QPS*_a,alone(c_a) · (1 − S)`` with ``S = 1 − 1/slowdown``. The gains ``γ_k`` (default 1) and missing
pressures are fitted by least squares on ``log QPS*`` of whatever measured pairs exist
(``scipy.optimize.least_squares``, bounds γ ≥ 0, 0 ≤ P ≤ 5).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from hera.errors import ConfigError
from hera.policy.profiles import PAIR_COLUMNS, Profiles, emu

KINDS = ("bandwidth", "cache")
#: Metrics whose ``slowdown`` is a sensitivity (first present wins). ``hera.profile.memory`` writes
#: ``latency_ms`` (p50 of a one-worker service-time loop next to the antagonist) and ``latency_ms_p95``.
SENSITIVITY_METRICS = (
    "qps_star", "throughput", "latency_ms", "latency_ms_p50", "latency_ms_p95", "latency_ms_p99",
)


def _interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """Piecewise linear through (xp, fp), linear extrapolation beyond the last point, 0 below 0."""
    x = np.asarray(x, float)
    y = np.interp(x, xp, fp)
    if len(xp) >= 2:
        slope = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
        y = np.where(x > xp[-1], fp[-1] + slope * (x - xp[-1]), y)
    return np.maximum(y, 0.0)


class PairPredictor:
    """Predicts co-located QPS* of model pairs from isolated and antagonist profiles (module docstring)."""

    def __init__(self, profiles: Profiles):
        if profiles.memory is None:
            raise ConfigError("the pair predictor needs the antagonist (memory) profile table")
        self.profiles = profiles
        mem = profiles.memory
        self.curves: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
        self.pressure: dict[tuple[str, str], float] = {}
        for m in profiles.models:
            rows = mem[mem["model"] == m]
            if rows.empty:
                raise ConfigError(f"memory table has no rows for model '{m}'")
            measured_any = False
            for k in KINDS:
                sens = rows[(rows["antagonist"] == k) & rows["metric"].isin(SENSITIVITY_METRICS)]
                sens = sens[pd.to_numeric(sens["slowdown"], errors="coerce").notna()]
                measured_any |= not sens.empty
                self.curves[(m, k)] = self._curve(sens)
                p = rows[
                    ((rows["antagonist"] == "none") & (rows["metric"] == f"pressure_{k}"))
                    | ((rows["antagonist"] == k) & (rows["metric"] == "pressure"))
                ]
                p = pd.to_numeric(p["value"], errors="coerce").dropna()
                if len(p):
                    self.pressure[(m, k)] = float(max(p.mean(), 0.0))
            if not measured_any:
                raise ConfigError(
                    f"memory table has no measured antagonist slowdown for model '{m}' "
                    "(not observable on this machine?)"
                )
        self.gain = {k: 1.0 for k in KINDS}
        self.fitted: dict[str, float] = {}

    @staticmethod
    def _curve(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        if rows.empty:
            return np.array([0.0, 1.0]), np.array([0.0, 0.0])
        metrics = set(rows["metric"].astype(str))
        sel = rows[rows["metric"].astype(str) == next(m for m in SENSITIVITY_METRICS if m in metrics)]
        c = pd.to_numeric(sel["slowdown"], errors="coerce").groupby(sel["intensity"].astype(float)).mean()
        x, y = c.index.to_numpy(float), np.maximum(c.to_numpy(float) - 1.0, 0.0)
        if x[0] > 0:
            x, y = np.concatenate([[0.0], x]), np.concatenate([[0.0], y])
        if len(x) == 1:
            x, y = np.array([0.0, 1.0]), np.array([0.0, 0.0])
        return x, y

    # ---------------------------------------------------------------- model
    def sensitivity(self, model: str, kind: str, intensity) -> np.ndarray:
        """``s_m,k(x) = slowdown − 1`` at bubble intensity x (array-friendly)."""
        return _interp(intensity, *self.curves[(model, kind)])

    def _pressure_of(self, model: str, kind: str) -> float:
        if (model, kind) not in self.pressure:
            raise ConfigError(
                f"memory table has no {kind} pressure row for model '{model}' and there are no "
                "measured pairs to fit it from"
            )
        return self.pressure[(model, kind)]

    def predict(self, a: str, b: str, cores_a, ways_a=None) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (QPS*_a, QPS*_b), a on ``cores_a`` cores with ``ways_a`` ways (None/NaN = shared LLC)."""
        return self._one(a, b, cores_a, ways_a, False), self._one(b, a, cores_a, ways_a, True)

    def _one(self, victim: str, other: str, cores_a, ways_a, victim_is_b: bool) -> np.ndarray:
        p, node = self.profiles, self.profiles.node
        cores_a = np.atleast_1d(np.asarray(cores_a, float))
        ways_a = np.atleast_1d(np.asarray([np.nan if w is None else w for w in np.atleast_1d(ways_a)], float))
        ways_a = np.broadcast_to(ways_a, cores_a.shape)
        c_v, c_o = (node.cores - cores_a, cores_a) if victim_is_b else (cores_a, node.cores - cores_a)
        w_v = (node.llc_ways - ways_a) if victim_is_b and node.llc_ways else ways_a
        alone_v = np.asarray(p.qps_alone(victim, c_v), float)
        rate_o = np.asarray(p.qps_alone(other, c_o), float) / p.qps_alone(other)
        x_bw = self._pressure_of(other, "bandwidth") * rate_o
        x_cache = np.where(
            np.isnan(w_v),
            self._pressure_of(other, "cache") * rate_o,
            1.0 - np.nan_to_num(w_v) / (node.llc_ways or 1),
        )
        slow = (
            1.0
            + self.gain["bandwidth"] * self.sensitivity(victim, "bandwidth", x_bw)
            + self.gain["cache"] * self.sensitivity(victim, "cache", x_cache)
        )
        return alone_v / slow

    def predict_pairs(self, models=None, cores=None) -> pd.DataFrame:
        """A table shaped like ``colocation/pairs.csv`` with predictions for every pair of ``models`` and
        every
        split: ``cores_a`` = 1 … cores−1, LLC shared and (when the node has ways) every ways split."""
        p = self.profiles
        models = p.check_models(models if models is not None else p.models)
        C, W = p.node.cores, p.node.llc_ways
        grid = [(c, None) for c in range(1, C)] + (
            [(c, w) for c in range(1, C) for w in range(1, W)] if W else []
        )
        ca = np.array([g[0] for g in grid], float)
        wa = np.array([np.nan if g[1] is None else g[1] for g in grid], float)
        frames = []
        for i, a in enumerate(sorted(models)):
            for b in sorted(models)[i + 1 :]:
                qa, qb = self.predict(a, b, ca, wa)
                frames.append(
                    pd.DataFrame(
                        {
                            "model_a": a,
                            "model_b": b,
                            "cores_a": ca.astype(int),
                            "cores_b": (C - ca).astype(int),
                            "ways_a": wa,
                            "ways_b": (W - wa) if W else np.nan,
                            "qps_star_a": qa,
                            "qps_star_b": qb,
                            "qps_alone_a": p.qps_alone(a, ca),
                            "qps_alone_b": p.qps_alone(b, C - ca),
                            "qps_whole_a": p.qps_alone(a),
                            "qps_whole_b": p.qps_alone(b),
                        }
                    )
                )
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(PAIR_COLUMNS))
        if len(out):
            out["emu"] = emu((out["qps_star_a"], out["qps_star_b"]), (out["qps_whole_a"], out["qps_whole_b"]))
        return out

    # ---------------------------------------------------------------- fitting
    def fit(self, pairs: pd.DataFrame | None = None, fit_gains: bool = True) -> PairPredictor:
        """Least-squares fit of the gains γ_k (if ``fit_gains``) and any missing pressures on measured pairs
        (default: the measured rows of the profiles' co-location table). No pairs: nothing to fit."""
        rows = self.profiles.pairs[self.profiles.pairs["source"] == "measured"] if pairs is None else pairs
        rows = rows[(rows["qps_star_a"] > 0) & (rows["qps_star_b"] > 0)]
        missing = sorted({(m, k) for m in self.profiles.models for k in KINDS} - set(self.pressure))
        names = ([f"gain_{k}" for k in KINDS] if fit_gains else []) + [
            f"pressure_{k}:{m}" for m, k in missing
        ]
        if rows.empty or not names:
            if missing:
                self._pressure_of(*missing[0])
            return self
        groups = [
            (
                str(a),
                str(b),
                g["cores_a"].to_numpy(float),
                g["ways_a"].to_numpy(float),
                np.log(g["qps_star_a"].to_numpy(float)),
                np.log(g["qps_star_b"].to_numpy(float)),
            )
            for (a, b), g in rows.groupby(["model_a", "model_b"])
        ]

        def set_params(theta):
            i = 0
            if fit_gains:
                for k in KINDS:
                    self.gain[k] = theta[i]
                    i += 1
            for m, k in missing:
                self.pressure[(m, k)] = theta[i]
                i += 1

        def residuals(theta):
            set_params(theta)
            out = []
            for a, b, ca, wa, la, lb in groups:
                qa, qb = self.predict(a, b, ca, wa)
                out += [np.log(np.maximum(qa, 1e-12)) - la, np.log(np.maximum(qb, 1e-12)) - lb]
            return np.concatenate(out)

        x0 = [1.0] * (len(KINDS) if fit_gains else 0) + [0.5] * len(missing)
        lo = [0.0] * len(x0)
        hi = [np.inf] * (len(KINDS) if fit_gains else 0) + [5.0] * len(missing)
        res = least_squares(residuals, x0, bounds=(lo, hi))
        set_params(res.x)
        self.fitted = dict(zip(names, map(float, res.x))) | {
            "rms_log_error": float(np.sqrt(np.mean(res.fun**2)))
        }
        return self


def _canonical(df: pd.DataFrame) -> pd.DataFrame:
    d = df.copy()
    swap = d["model_a"].astype(str) > d["model_b"].astype(str)
    for x in ("model", "cores", "ways", "qps_star", "qps_alone", "qps_whole"):
        if f"{x}_a" in d.columns:
            a, b = f"{x}_a", f"{x}_b"
            d.loc[swap, [a, b]] = d.loc[swap, [b, a]].to_numpy()
    d["ways_key"] = d["ways_a"].fillna(-1).astype(int)
    return d


def evaluate(pairs_df: pd.DataFrame, predicted_df: pd.DataFrame) -> dict[str, float]:
    """Error of predictions against measured pairs on the splits both tables hold.

    Returns n_splits, n_pairs, and mean / median absolute percentage error (%) of QPS* (both tenants of every
    split), of EMU per split, and of the best-split EMU per pair. EMU uses the measured table's whole-node
    capacities for both tables (``qps_whole_*`` as ``hera.profile.colocation`` writes them, else
    ``qps_alone_*``), so EMU errors come from QPS* errors only.
    """
    for name, df in (("measured", pairs_df), ("predicted", predicted_df)):
        miss = [
            c for c in ("model_a", "model_b", "cores_a", "ways_a", "qps_star_a", "qps_star_b") if c not in df
        ]
        if miss:
            raise ConfigError(f"{name} pairs table lacks column(s) {', '.join(miss)}")
    whole = "qps_whole" if {"qps_whole_a", "qps_whole_b"} <= set(pairs_df.columns) else "qps_alone"
    if f"{whole}_a" not in pairs_df or f"{whole}_b" not in pairs_df:
        raise ConfigError("measured pairs table lacks qps_whole_a/b or qps_alone_a/b (needed for EMU)")
    keys = ["model_a", "model_b", "cores_a", "ways_key"]
    m = _canonical(pairs_df).merge(
        _canonical(predicted_df)[keys + ["qps_star_a", "qps_star_b"]], on=keys, suffixes=("", "_pred")
    )
    if m.empty:
        raise ConfigError("measured and predicted pairs tables share no split")
    meas = np.concatenate([m["qps_star_a"], m["qps_star_b"]]).astype(float)
    pred = np.concatenate([m["qps_star_a_pred"], m["qps_star_b_pred"]]).astype(float)
    ok = meas > 0
    ape = 100 * np.abs(pred[ok] - meas[ok]) / meas[ok]
    alone = (m[f"{whole}_a"], m[f"{whole}_b"])
    emu_m = emu((m["qps_star_a"], m["qps_star_b"]), alone)
    emu_p = emu((m["qps_star_a_pred"], m["qps_star_b_pred"]), alone)
    m["emu_m"], m["emu_p"] = emu_m, emu_p
    e_ape = 100 * np.abs(emu_p - emu_m) / np.maximum(emu_m, 1e-12)
    best = m.groupby(["model_a", "model_b"]).agg(m=("emu_m", "max"), p=("emu_p", "max"))
    b_ape = 100 * np.abs(best["p"] - best["m"]) / best["m"].clip(lower=1e-12)
    return {
        "n_splits": int(len(m)),
        "n_pairs": int(len(best)),
        "qps_mape": float(ape.mean()) if len(ape) else float("nan"),
        "qps_median_ape": float(np.median(ape)) if len(ape) else float("nan"),
        "emu_mape": float(e_ape.mean()),
        "emu_median_ape": float(np.median(e_ape)),
        "best_emu_mape": float(b_ape.mean()),
        "best_emu_median_ape": float(np.median(b_ape)),
    }


def predictor_report(profiles: Profiles) -> pd.DataFrame:
    """Tidy error table (``policy/predictor.csv``: mode, metric, value) of the predictor on measured pairs.

    Modes: ``profiles_only`` — isolated + antagonist profiles alone, gains 1 (O(N) profiling; only when every
    model has pressure rows); ``leave_one_pair_out`` — for each measured pair, gains and missing pressures
    fitted on the *other* measured pairs, then that pair predicted (an honest out-of-sample error).
    """
    measured = profiles.pairs[profiles.pairs["source"] == "measured"]
    if measured.empty:
        raise ConfigError("no measured co-location pairs to evaluate the predictor on")
    truth = measured.assign(
        qps_whole_a=[profiles.qps_alone(m) for m in measured["model_a"]],
        qps_whole_b=[profiles.qps_alone(m) for m in measured["model_b"]],
    )
    rows = []
    base = PairPredictor(profiles)
    if all((m, k) in base.pressure for m in profiles.models for k in KINDS):
        rows += [("profiles_only", k, v) for k, v in evaluate(truth, base.predict_pairs()).items()]
    keys = sorted(set(zip(measured["model_a"], measured["model_b"])))
    if len(keys) >= 2:
        parts = []
        for a, b in keys:
            others = measured[~((measured["model_a"] == a) & (measured["model_b"] == b))]
            pred = PairPredictor(profiles).fit(others)
            parts.append(pred.predict_pairs([a, b]))
        rows += [("leave_one_pair_out", k, v) for k, v in evaluate(truth, pd.concat(parts)).items()]
    return pd.DataFrame(rows, columns=["mode", "metric", "value"])
