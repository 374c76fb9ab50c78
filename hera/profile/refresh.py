"""F4's refreshed prediction: the pair prediction from the O(N) profiles with each model's solo speed re-probed
during the pass that measured the point, from no measurement of the pair's own sitting.

The a-priori prediction (``colocation/predicted.csv``) scales each model's service profile by the speed F2
measured, tens of minutes before F4. On a machine whose speed moves between the stages (the 2-core VM: the run
level of the anchors has an sd of 0.069 in log, the model-in-run part 0.059; docs/DESIGN.md, "The refreshed
prediction") that speed is stale, and the error it brings is the same for every pair a model is in. A deployed
Hera would re-probe each model alone now and then — a per-model probe, O(N), no pair information. F4 already
probes every tenant alone on its cores before each split's rays (the anchor, :func:`hera.profile.colocation.
anchor_split`); the refreshed speed of model m for a point of pair P measured in visit (pass) k is the geometric
mean of m's anchors in pass k's *other* sittings (pairs other than P: leave-one-out, so nothing measured in the
point's own sitting enters). The split is then predicted again with each tenant's calibrated curve rescaled by its
refreshed speed (:func:`hera.profile.colocation.anchored_predictions`, exactly as the anchored prediction is,
which uses the sitting's own probe instead), and the visits' refreshed predictions of a point are averaged as
the anchored ones are (:mod:`hera.profile.visits`).

:func:`run` writes the pooled co-location table (``colocation/pairs.csv``) with the columns ``refresh_a/b``
(the refreshed speed factors, geometric mean over the visits), ``refresh_sittings`` (the fewest other sittings a
factor was taken from), ``refreshed_qps_star_a/b`` and ``refreshed_emu``. A point without a refresh (anchoring
off, or a model in no other pair of the pass) has NaN there and says why in ``refresh_note``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.profile import common

#: the columns :func:`run` adds to the pooled table
COLUMNS = ["refresh_a", "refresh_b", "refresh_sittings", "refreshed_qps_star_a", "refreshed_qps_star_b",
           "refreshed_emu", "refresh_note"]
#: what names a measured point (as :data:`hera.policy.accuracy.POINT_KEYS`)
POINT = ["model_a", "model_b", "cores_a", "cores_b", "llc", "share_a"]


def visit_of(path: str | Path) -> int:
    """The visit a points file belongs to: its folder ``colocation/visits/<k>/``."""
    name = Path(path).parent.name
    if not name.isdigit() or int(name) < 1:
        raise common.ProfileError(f"{path} is not in a visit's folder (colocation/visits/<k>/): its visit is unknown")
    return int(name)


def read_visits(paths: list[str | Path]) -> pd.DataFrame:
    """Every visit's points, with ``visit`` and ``pair`` columns."""
    from hera.harness import read_csv_table

    parts = []
    for p in paths:
        df = read_csv_table(p, "co-location points")
        lacks = [c for c in (*POINT, "ways_a", "ways_b", "anchor_a", "anchor_b") if c not in df.columns]
        if lacks:
            raise common.ProfileError(f"{p} is not a visit's points file (hera profile colocation --visit K): it "
                                      f"lacks {', '.join(lacks)}")
        if len(df):
            parts.append(df.assign(visit=visit_of(p), pair=df["model_a"].astype(str) + "__" + df["model_b"].astype(str)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def pass_speeds(points: pd.DataFrame) -> dict[tuple[int, str, str], tuple[float, int]]:
    """``(visit, pair, model) -> (factor, sittings)``: the geometric mean of ``model``'s anchors in the other
    pairs' sittings of the same visit (one value per split a sitting anchored), and how many sittings gave it;
    ``(nan, 0)`` where there were none."""
    logs: dict[tuple[int, str], list[tuple[str, float]]] = defaultdict(list)
    seen = points.drop_duplicates(["visit", "pair", "cores_a", "cores_b", "llc"])
    for r in seen.itertuples():
        for side in "ab":
            a = float(getattr(r, f"anchor_{side}"))
            if math.isfinite(a) and a > 0:
                logs[(int(r.visit), str(getattr(r, f"model_{side}")))].append((str(r.pair), math.log(a)))
    out = {}
    for r in seen.drop_duplicates(["visit", "pair"]).itertuples():
        for m in (str(r.model_a), str(r.model_b)):
            other = [x for p, x in logs[(int(r.visit), m)] if p != r.pair]
            sittings = len({p for p, _ in logs[(int(r.visit), m)] if p != r.pair})
            out[(int(r.visit), str(r.pair), m)] = (math.exp(float(np.mean(other))) if other else math.nan, sittings)
    return out


def refreshed(config: dict[str, Any], points: pd.DataFrame, sla: dict[str, dict[str, Any]], scal: pd.DataFrame,
              services: dict[str, str | Path], interference: Any, resctrl_root: str | None = None) -> pd.DataFrame:
    """One row per visit and measured point: the refreshed factors and prediction (module doc)."""
    from hera.profile.colocation import Anchor, anchored_predictions
    from hera.profile.splits import Split

    speeds = pass_speeds(points)
    rows = []
    for (visit, pair, ca, cb, llc), g in points.groupby(["visit", "pair", "cores_a", "cores_b", "llc"], sort=True):
        r = g.iloc[0]
        ma, mb = str(r["model_a"]), str(r["model_b"])
        (fa, na), (fb, nb) = speeds[(visit, pair, ma)], speeds[(visit, pair, mb)]
        base = {"visit": visit, "refresh_a": fa, "refresh_b": fb, "refresh_sittings": min(na, nb)}
        if not (math.isfinite(fa) and math.isfinite(fb)):
            lone = [m for m, f in ((ma, fa), (mb, fb)) if not math.isfinite(f)]
            note = f"not refreshed: {', '.join(lone)} anchored in no other sitting of visit {visit}"
            rows += [{**{k: r2[k] for k in POINT}, **base, "refreshed_qps_star_a": math.nan,
                      "refreshed_qps_star_b": math.nan, "refreshed_emu": math.nan, "refresh_note": note}
                     for _, r2 in g.iterrows()]
            continue
        names = (common.tenant_name(ma, mb, "a"), common.tenant_name(mb, ma, "b"))
        wa = None if pd.isna(r["ways_a"]) else int(r["ways_a"])
        wb = None if pd.isna(r["ways_b"]) else int(r["ways_b"])
        split = Split(tuple(range(int(ca))), tuple(range(int(ca), int(ca) + int(cb))), wa, wb)
        pred = anchored_predictions(config, (ma, mb), split, Anchor({names[0]: fa, names[1]: fb}, {}, 0.0), names,
                                    scal, services, sla, interference, resctrl_root)
        for _, r2 in g.iterrows():
            hit = pred[np.isclose(pred["share_a"].astype(float), float(r2["share_a"]))]
            p = hit.iloc[0] if len(hit) else None
            rows.append({**{k: r2[k] for k in POINT}, **base,
                         "refreshed_qps_star_a": math.nan if p is None else float(p["qps_star_a"]),
                         "refreshed_qps_star_b": math.nan if p is None else float(p["qps_star_b"]),
                         "refreshed_emu": math.nan if p is None else float(p["emu"]),
                         "refresh_note": "" if p is not None else "not refreshed: the ray is not predicted"})
    return pd.DataFrame(rows, columns=[*POINT, "visit", *COLUMNS])


def pooled(per_visit: pd.DataFrame) -> pd.DataFrame:
    """The visits of each point pooled as :mod:`hera.profile.visits` pools the anchored prediction: the factors'
    geometric mean, the predictions' mean, the fewest sittings, the notes joined."""
    from hera.profile.visits import geomean

    def one(g: pd.DataFrame) -> pd.Series:
        return pd.Series({"refresh_a": geomean(g["refresh_a"]), "refresh_b": geomean(g["refresh_b"]),
                          "refresh_sittings": int(g["refresh_sittings"].min()),
                          **{c: float(pd.to_numeric(g[c]).mean()) for c in
                             ("refreshed_qps_star_a", "refreshed_qps_star_b", "refreshed_emu")},
                          "refresh_note": "; ".join(sorted({f"visit {v}: {n}" for v, n in zip(g["visit"],
                                                                                              g["refresh_note"]) if n}))})

    if per_visit.empty:
        return pd.DataFrame(columns=[*POINT, *COLUMNS])
    key = per_visit.assign(share_a=pd.to_numeric(per_visit["share_a"]).round(6))
    return key.groupby(POINT, sort=False).apply(one, include_groups=False).reset_index()


def with_refreshed(pairs: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` (the pooled points) with the refreshed columns of ``pool`` at the same point (NaN where none)."""
    left = pairs.drop(columns=[c for c in COLUMNS if c in pairs.columns])
    left = left.assign(_share=pd.to_numeric(left["share_a"]).round(6))
    right = pool.assign(_share=pd.to_numeric(pool["share_a"]).round(6)).drop(columns=["share_a"])
    keys = [k for k in POINT if k != "share_a"] + ["_share"]
    for k in keys[:-1]:  # the same types on both sides (the LLC option is text, core counts integers)
        left[k], right[k] = left[k].astype(str), right[k].astype(str)
    out = left.merge(right[keys + COLUMNS], on=keys, how="left").drop(columns=["_share"])
    for k in ("cores_a", "cores_b"):
        out[k] = pd.to_numeric(out[k])
    out["refresh_note"] = out["refresh_note"].fillna("not refreshed: no visit of this point among the points given")
    return out


def run(config: dict[str, Any], visit_points: list[str | Path], pairs: list[str | Path], t1: str | Path,
        scalability: str | Path, services: dict[str, str | Path], interference: Any, out: str | Path,
        resctrl_root: str | None = None) -> pd.DataFrame:
    """Write ``out``: the pooled points of ``pairs`` (``colocation/pairs/<pair>.csv``) concatenated, with the
    refreshed prediction from every visit's points (``visit_points``) beside each; its ``.meta.json`` the
    provenance of this step and each part's (path, git commit, creation time). Returns the table."""
    import json

    from hera.harness import read_csv_table
    from hera.provenance import provenance

    if not pairs:
        raise common.ProfileError("the refreshed prediction needs the pooled points of at least one pair")
    frames = [read_csv_table(p, "pooled co-location points") for p in pairs]
    table = pd.concat(frames, ignore_index=True)
    points = read_visits(visit_points)
    models = sorted(set(points["model_a"]) | set(points["model_b"])) if len(points) else []
    missing = [m for m in models if m not in services]
    if missing:
        raise common.ProfileError(f"no service profile given for {', '.join(missing)} (a model of the points)")
    pool = pd.DataFrame(columns=[*POINT, *COLUMNS])
    if len(points):
        sla = common.read_t1(t1, models)
        scal = common.read_scalability(scalability, models)
        pool = pooled(refreshed(config, points, sla, scal, services, interference, resctrl_root))
    df = with_refreshed(table, pool) if len(table) else table.assign(**{c: pd.Series(dtype=object) for c in COLUMNS})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    df.to_csv(tmp, index=False)
    tmp.replace(out)
    meta = provenance(config, config.get("seed"))
    parts = []
    for p in pairs:
        m = Path(str(p) + ".meta.json")
        m = json.loads(m.read_text()) if m.is_file() else {}
        parts.append({"path": str(p), "git_commit": m.get("git_commit"), "created_utc": m.get("created_utc")})
    meta["parts"] = parts
    Path(str(out) + ".meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
    return df
