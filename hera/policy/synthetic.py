"""Synthetic profile tables with known answers, for tests, examples and dry runs of the pipeline.

These are *not* results: they never go into ``results/``. Each generator is seeded and documents its answer.

- :func:`known_answer_tables`: 4 models on an 8-core node — two memory-heavy with poor worker scalability
  (``emb_a``, ``emb_b``), two compute-heavy scaling linearly (``mlp_a``, ``mlp_b``). Pair QPS* are the alone
  curves scaled per pair so that the best split's EMU is exactly: emb_a+mlp_a = emb_b+mlp_b = 1.35,
  emb_a+mlp_b = emb_b+mlp_a = 1.25, emb_a+emb_b = mlp_a+mlp_b = 0.9. Best grouping: {emb_a, mlp_a},
  {emb_b, mlp_b} with mean EMU 1.35. One point per split (a table without rays).
- :func:`random_tables`: n models with random concave/linear scalability and a random best-split EMU per
  pair in [0.7, 1.5].
- :func:`partitioned_tables`: the known-answer models on a node with LLC ways (every core split with a shared
  LLC and every way split; the memory-heavy models gain from more ways).
- :func:`ray_points` and :func:`prediction_world`: any of these turned into the pipeline's shape — the
  feasible region of each split is the rectangle below its point, and a row per ray of it, as
  ``colocation/predicted.csv`` (every split, :data:`~hera.profile.pair_prediction.PREDICTED_SHARES` and the
  measured rays, with a chosen prediction error) and ``colocation/pairs.csv`` (measured rays of the
  predicted-best split, its neighbours and the shared LLC — or of every split — with the predictions beside).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hera.policy.profiles import emu

KNOWN_BEST = {
    ("emb_a", "mlp_a"): 1.35,
    ("emb_b", "mlp_b"): 1.35,
    ("emb_a", "mlp_b"): 1.25,
    ("emb_b", "mlp_a"): 1.25,
    ("emb_a", "emb_b"): 0.9,
    ("mlp_a", "mlp_b"): 0.9,
}


def _scal_rows(curves: dict, cores: int, sla: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"model": m, "workers": w, "qps_star": float(f(w)), "sla_ms": sla[m], "percentile": 0.95}
            for m, f in curves.items()
            for w in range(1, cores + 1)
        ]
    )


def _scaled_pairs(curves: dict, cores: int, target: dict) -> pd.DataFrame:
    """Pair rows QPS*_i(split) = factor · QPS*_i,alone(c_i), with max-over-splits EMU = target."""
    alone = {m: max(f(w) for w in range(1, cores + 1)) for m, f in curves.items()}
    rows = []
    for (a, b), t in target.items():
        ks = range(1, cores)
        raw = [curves[a](k) / alone[a] + curves[b](cores - k) / alone[b] for k in ks]
        factor = t / max(raw)
        for k in ks:
            qa, qb = factor * curves[a](k), factor * curves[b](cores - k)
            rows.append(
                {
                    "model_a": a,
                    "model_b": b,
                    "cores_a": k,
                    "cores_b": cores - k,
                    "ways_a": np.nan,
                    "ways_b": np.nan,
                    "qps_star_a": qa,
                    "qps_star_b": qb,
                    "qps_alone_a": float(curves[a](k)),  # as hera.profile.colocation: alone on c_a cores
                    "qps_alone_b": float(curves[b](cores - k)),
                    "qps_whole_a": alone[a],
                    "qps_whole_b": alone[b],
                    "emu": emu((qa, qb), (alone[a], alone[b])),
                }
            )
    return pd.DataFrame(rows)


KNOWN_CURVES = {
    "emb_a": lambda w: 300 * (1 - np.exp(-w / 2.0)),
    "emb_b": lambda w: 200 * (1 - np.exp(-w / 2.5)),
    "mlp_a": lambda w: 50.0 * w,
    "mlp_b": lambda w: 30.0 * w,
}
KNOWN_SLA = {"emb_a": 10.0, "emb_b": 12.0, "mlp_a": 20.0, "mlp_b": 25.0}
#: T1-style memory classes of the known-answer models.
KNOWN_CLASSES = {
    "emb_a": "memory-leaning",
    "emb_b": "memory-leaning",
    "mlp_a": "compute-leaning",
    "mlp_b": "compute-leaning",
}


def known_answer_tables(cores: int = 8) -> dict[str, pd.DataFrame]:
    """{"scalability", "pairs", "predicted"} for the 4-model known-answer node (see module docstring); the
    predictions are exact (:func:`predictions` of the pairs, error 0)."""
    curves, sla = KNOWN_CURVES, KNOWN_SLA
    pairs = _scaled_pairs(curves, cores, KNOWN_BEST)
    return {"scalability": _scal_rows(curves, cores, sla), "pairs": pairs, "predicted": predictions(pairs)}


def random_tables(n_models: int, seed: int, cores: int = 8) -> dict[str, pd.DataFrame]:
    """Random scalability (concave or linear) and random best-split pair EMU in [0.7, 1.5]."""
    rng = np.random.default_rng(seed)
    curves, sla = {}, {}
    for i in range(n_models):
        q1, tau = rng.uniform(20, 200), rng.uniform(1.0, 12.0)
        curves[f"m{i:02d}"] = (lambda q1, tau: lambda w: q1 * tau * (1 - np.exp(-w / tau)))(q1, tau)
        sla[f"m{i:02d}"] = float(rng.uniform(5, 50))
    names = sorted(curves)
    target = {(a, b): float(rng.uniform(0.7, 1.5)) for i, a in enumerate(names) for b in names[i + 1 :]}
    return {"scalability": _scal_rows(curves, cores, sla), "pairs": _scaled_pairs(curves, cores, target)}


def partitioned_tables(cores: int = 8, llc_ways: int = 8) -> dict[str, pd.DataFrame]:
    """{"scalability", "pairs"}: the known-answer models with every core split under a shared LLC and every
    way split; a memory-heavy tenant sustains ``0.6 + 0.4·w/W`` of its alone QPS* on w of W ways (0.8 with a
    shared LLC next to another tenant), a compute-heavy one 0.95 (0.97 shared)."""
    curves = KNOWN_CURVES
    alone = {m: max(f(w) for w in range(1, cores + 1)) for m, f in curves.items()}

    def frac(m: str, ways: int | None) -> float:
        if m.startswith("emb"):
            return 0.8 if ways is None else 0.6 + 0.4 * ways / llc_ways
        return 0.97 if ways is None else 0.95

    rows = []
    names = sorted(curves)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for k in range(1, cores):
                for wa in [None, *range(1, llc_ways)]:
                    wb = None if wa is None else llc_ways - wa
                    qa, qb = frac(a, wa) * curves[a](k), frac(b, wb) * curves[b](cores - k)
                    rows.append(
                        {
                            "model_a": a,
                            "model_b": b,
                            "cores_a": k,
                            "cores_b": cores - k,
                            "ways_a": np.nan if wa is None else wa,
                            "ways_b": np.nan if wb is None else wb,
                            "qps_star_a": qa,
                            "qps_star_b": qb,
                            "qps_alone_a": float(curves[a](k)),
                            "qps_alone_b": float(curves[b](cores - k)),
                            "qps_whole_a": alone[a],
                            "qps_whole_b": alone[b],
                            "emu": emu((qa, qb), (alone[a], alone[b])),
                        }
                    )
    return {"scalability": _scal_rows(curves, cores, KNOWN_SLA), "pairs": pd.DataFrame(rows)}


def ray_points(pairs: pd.DataFrame, shares) -> pd.DataFrame:
    """The rays of each split of a one-point-per-split table (with ``qps_alone_*`` on the tenants' cores and
    ``qps_whole_*``): the split's feasible region is the rectangle below its point, so the ray
    ``t × (s·qps_alone_a, (1 − s)·qps_alone_b)`` leaves it at ``t = min(q_a / (s·alone_a), q_b / ((1 − s)·
    alone_b))``. One row per (split, share) with ``share_a``, ``ray_scale``, ``llc`` and the EMU there."""
    out = []
    for r in pairs.to_dict("records"):
        for s in shares:
            da, db = s * r["qps_alone_a"], (1 - s) * r["qps_alone_b"]
            t = min(r["qps_star_a"] / da, r["qps_star_b"] / db)
            qa, qb = t * da, t * db
            ways = not pd.isna(r["ways_a"])
            out.append(
                r
                | {
                    "share_a": float(s),
                    "ray_scale": t,
                    "qps_star_a": qa,
                    "qps_star_b": qb,
                    "llc": f"{int(r['ways_a'])}/{int(r['ways_b'])}" if ways else "shared",
                    "emu": qa / r["qps_whole_a"] + qb / r["qps_whole_b"],
                }
            )
    return pd.DataFrame(out)


def _guided(pred: pd.DataFrame) -> set[tuple]:
    """Splits the guided measurement takes (as :func:`hera.profile.colocation.select_splits`): the predicted
    best, its neighbour core splits with the same LLC option, and the shared LLC of the best cores."""
    best = pred.loc[pred["emu"].idxmax()]
    ca, llc = int(best["cores_a"]), best["llc"]
    out = {(ca, llc), (ca - 1, llc), (ca + 1, llc)}
    if llc != "shared":
        out.add((ca, "shared"))
    return out


def predictions(pairs: pd.DataFrame, error: float = 0.0, seed: int = 0, measured_shares=None) -> pd.DataFrame:
    """``colocation/predicted.csv`` for a one-point-per-split table: every split, the predicted rays and the
    measured ones (:func:`ray_points`), each (pair, split) QPS* off by a log-normal factor of standard deviation
    ``error`` per tenant (0: the truth), intervals ±10%, ``best`` on each pair's highest-EMU split."""
    from hera.profile.pair_prediction import MEASURED_SHARES, PREDICTED_SHARES

    measured_shares = tuple(MEASURED_SHARES if measured_shares is None else measured_shares)
    rng = np.random.default_rng(seed)
    base = pairs.reset_index(drop=True)
    off = base.assign(
        qps_star_a=base["qps_star_a"] * np.exp(error * rng.standard_normal(len(base))),
        qps_star_b=base["qps_star_b"] * np.exp(error * rng.standard_normal(len(base))),
    )
    pred = ray_points(off, sorted(set(map(float, PREDICTED_SHARES)) | set(measured_shares)))
    for c in ("qps_star_a", "qps_star_b", "emu", "ray_scale"):
        pred[f"{c}_lo"], pred[f"{c}_hi"] = pred[c] * 0.9, pred[c] * 1.1
    pred["measured_ray"] = pred["share_a"].isin(measured_shares)
    pred["inflation_a"] = pred["inflation_b"] = 1.0
    pred["binding"] = "a"
    pred["best"] = False
    for _, g in pred.groupby(["model_a", "model_b"]):
        top = g.loc[g["emu"].idxmax()]
        same = (g["cores_a"] == top["cores_a"]) & (g["llc"] == top["llc"])
        pred.loc[g.index[same], "best"] = True
    return pred.reset_index(drop=True)


def prediction_world(
    tables: dict[str, pd.DataFrame] | None = None,
    error: float = 0.0,
    seed: int = 0,
    measure: str = "guided",
    measured_shares=None,
) -> dict[str, pd.DataFrame]:
    """{"scalability", "predicted", "pairs"} in the pipeline's shape from a one-point-per-split world
    (default :func:`known_answer_tables`; see the module docstring): :func:`predictions` with ``error`` and
    ``seed``; measured points on ``measured_shares`` (default
    :data:`~hera.profile.pair_prediction.MEASURED_SHARES`) of the splits ``measure`` says: "guided" (those
    :func:`_guided` picks on the predictions) or "all"; each with its prediction beside."""
    from hera.profile.pair_prediction import MEASURED_SHARES

    tables = tables or known_answer_tables()
    measured_shares = tuple(MEASURED_SHARES if measured_shares is None else measured_shares)
    pred = predictions(tables["pairs"], error, seed, measured_shares)
    truth = ray_points(tables["pairs"].reset_index(drop=True), measured_shares)
    parts = []
    for (a, b), g in truth.groupby(["model_a", "model_b"]):
        p = pred[(pred["model_a"] == a) & (pred["model_b"] == b)]
        if measure == "guided":
            keep = _guided(p)
            g = g[[(int(c), llc) in keep for c, llc in zip(g["cores_a"], g["llc"])]]
        beside = p[
            [
                "cores_a",
                "llc",
                "share_a",
                "qps_star_a",
                "qps_star_b",
                "emu",
                "emu_lo",
                "emu_hi",
                "ray_scale",
                "best",
            ]
        ].add_prefix("predicted_")
        beside = beside.rename(
            columns={
                "predicted_cores_a": "cores_a",
                "predicted_llc": "llc",
                "predicted_share_a": "share_a",
                "predicted_ray_scale": "predicted_scale",
            }
        )
        g = g.merge(beside, on=["cores_a", "llc", "share_a"], how="left").assign(
            selected_as="synthetic", best=False
        )
        g.loc[g["emu"].idxmax(), "best"] = True
        parts.append(g)
    return {
        "scalability": tables["scalability"],
        "predicted": pred,
        "pairs": pd.concat(parts, ignore_index=True),
    }
