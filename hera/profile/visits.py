"""F4's independent visits: each measured point of a pair taken in several sittings, far apart, and pooled.

A point measured in one sitting sees one state of the machine. On the 2-core VM the machine's speed moves by up
to 30% for about a minute at a time (both tenants' anchors of a split move together; docs/DESIGN.md,
"Independent visits"), so a point's consecutive repeats agree with one another far better than with the same
point measured in another run: over runs 56-65 the measured EMU of one (pair, ray) scattered by 0.083 between
runs while its within-point interval said 0.027. With ``colocation.visits`` V > 1 the stage visits every pair
V times, in V passes over all pairs (pass k starts once every pair's pass k − 1 is on disk, a few minutes
later), each visit with its own node start, anchor and seeds and R / V of the point's R repeats (randomised
multiple interleaved trials, Abedi and Brecht, ICPE 2017). :func:`pool` turns the visits of one pair into the
rows :mod:`hera.profile.colocation` writes, as one sitting with all R repeats would have:

- the point's value (``ray_scale``): the median of the R pooled repeats; its interval the distribution-free one
  for the median over them (:func:`hera.loadgen.confirm.median_ci`), now over repeats that saw different states
  of the machine; ``ray_scale_raw``: the median of the visits' raw values. QPS* and EMU follow from the scale
  exactly as :func:`hera.profile.colocation.measure_point` derives them;
- counts and seconds (repeats, re-tests, trials, trial and wall seconds, anchor seconds): summed;
- each tenant's service drift and anchor factor: the geometric mean over the visits; the predictions on the
  service as served and anchored: the mean (each visit's anchored prediction follows that visit's machine);
- everything the prediction decided (split, ray, predicted values, why it was selected): the same in every visit,
  checked;
- ``visits``: how many were pooled; ``note``: each visit's, prefixed with its number.

The joint trials are concatenated with a ``visit`` column, their repeats and trial numbers renumbered so that a
point's repeats stay distinct. One visit pools to its own rows (the same values and interval).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.errors import HeraError

#: columns every visit of a point must agree on (what the prediction decided)
SAME = ["model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "llc", "share_a", "predicted_qps_star_a",
        "predicted_qps_star_b", "predicted_emu", "predicted_scale", "qps_alone_a", "qps_alone_b", "qps_whole_a",
        "qps_whole_b", "sla_ms_a", "sla_ms_b", "selected_as"]
SUMMED = ["repeats", "retested", "n_trials", "trial_seconds", "wall_seconds", "anchor_seconds"]
GEOMETRIC = ["service_drift_a", "service_drift_b", "anchor_a", "anchor_b"]
MEAN = ["predicted_served_qps_star_a", "predicted_served_qps_star_b", "predicted_served_emu", "anchored_scale",
        "anchored_qps_star_a", "anchored_qps_star_b", "anchored_emu", "anchored_emu_lo", "anchored_emu_hi"]


def _key(row: pd.Series) -> tuple:
    from hera.profile.colocation import KEY

    return tuple("" if pd.isna(row[k]) else (round(float(row[k]), 6) if k == "share_a" else row[k]) for k in KEY)


def geomean(values: pd.Series) -> float:
    v = pd.to_numeric(values, errors="coerce").to_numpy(float)
    v = v[np.isfinite(v) & (v > 0)]
    return float(np.exp(np.log(v).mean())) if v.size else math.nan


def _same(values: pd.Series) -> bool:
    if values.isna().all():
        return True
    if values.isna().any():
        return False
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all():
        return bool(np.allclose(num.to_numpy(float), float(num.iloc[0]), rtol=1e-9, atol=1e-12))
    return values.astype(str).nunique() == 1


def pool_point(rows: pd.DataFrame, confidence: float) -> dict[str, Any]:
    """One row from the visits (``rows``, one per visit, in visit order) of one point."""
    from hera.loadgen.confirm import median_ci

    first = rows.iloc[0]
    for col in SAME:
        if col in rows and not _same(rows[col]):
            raise HeraError(f"visits of {first['model_a']}__{first['model_b']} disagree on {col} at ray "
                            f"s = {float(first['share_a']):g} ({', '.join(map(str, rows[col]))}): they were not "
                            "measured from the same prediction")
    out = first.to_dict()
    from hera.profile.common import per_repeat_values

    per = [x for text in rows["per_repeat"] for x in per_repeat_values(text)]
    if not per:
        raise HeraError(f"visits of {first['model_a']}__{first['model_b']} at ray s = {float(first['share_a']):g} "
                        "carry no per-repeat values")
    scale = float(np.median(per))
    lo, hi, level = median_ci(per, confidence)
    s = float(first["share_a"])
    dir_a, dir_b = s * float(first["qps_alone_a"]), (1 - s) * float(first["qps_alone_b"])
    w = dir_a / float(first["qps_whole_a"]) + dir_b / float(first["qps_whole_b"])
    out.update(ray_scale=scale, ray_scale_raw=float(pd.to_numeric(rows["ray_scale_raw"]).median()),
               per_repeat=";".join(f"{x:.6g}" for x in per), ci_level=level,
               qps_star_a=scale * dir_a, qps_star_a_lo=lo * dir_a, qps_star_a_hi=hi * dir_a,
               qps_star_b=scale * dir_b, qps_star_b_lo=lo * dir_b, qps_star_b_hi=hi * dir_b,
               emu=scale * w, emu_lo=lo * w, emu_hi=hi * w, visits=len(rows))
    for col in SUMMED:
        if col in rows:
            total = pd.to_numeric(rows[col], errors="coerce").sum(min_count=1)
            out[col] = int(total) if col in ("repeats", "retested", "n_trials") and pd.notna(total) else total
    for col in GEOMETRIC:
        if col in rows:
            out[col] = geomean(rows[col])
    for col in MEAN:
        if col in rows:
            out[col] = float(pd.to_numeric(rows[col], errors="coerce").mean())
    if len(rows) > 1:
        out["note"] = " | ".join(f"visit {k}: {n}" for k, n in enumerate(rows["note"].fillna(""), start=1))
    return out


def pool(visits: list[pd.DataFrame], trials: list[pd.DataFrame], confidence: float,
         names: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pooled rows and joint trials of one pair from its visits' rows and trials (in visit order); a
    :class:`hera.errors.HeraError` naming the visit where a visit lacks a point another has or measured
    another pair. ``names``: how to name each visit in errors (its file)."""
    from hera.profile.colocation import COLUMNS, KEY

    if not visits:
        raise HeraError("no visit given: nothing to pool")
    names = names or [f"visit {k}" for k in range(1, len(visits) + 1)]
    pairs = {(str(r["model_a"]), str(r["model_b"])) for v in visits for _, r in v.iterrows()}
    if len(pairs) > 1:
        raise HeraError(f"the visits hold more than one pair ({', '.join(sorted(f'{a}__{b}' for a, b in pairs))}): "
                        "pool each pair's visits on their own")
    keys = [[_key(r) for _, r in v.iterrows()] for v in visits]
    for name, ks in zip(names, keys):
        if len(set(ks)) != len(ks):
            raise HeraError(f"{name} holds a point twice")
    for name, ks in zip(names[1:], keys[1:]):
        missing = set(keys[0]) ^ set(ks)
        if missing:
            k = sorted(missing, key=str)[0]
            raise HeraError(f"{name} and {names[0]} measured different points (split and ray "
                            f"{dict(zip(KEY, k))} is in one only): every visit measures the same points")
    rows = []
    for k in keys[0]:
        per_visit = pd.DataFrame([v.iloc[ks.index(k)] for v, ks in zip(visits, keys)])
        rows.append(pool_point(per_visit, confidence))
    cols = list(COLUMNS) + [c for c in ("selected_as", "visits") if c not in COLUMNS]
    df = pd.DataFrame(rows) if rows else pd.DataFrame(columns=cols)  # a pair with nothing to measure: no rows
    df = df[[c for c in cols if c in df] + [c for c in df if c not in cols]]
    if len(df):
        emu = pd.to_numeric(df["emu"], errors="coerce")
        df["best"] = False
        if emu.notna().any():
            df.loc[emu.idxmax(), "best"] = True
    return df, pool_trials(visits, trials, keys)


def pool_trials(visits: list[pd.DataFrame], trials: list[pd.DataFrame], keys: list[list[tuple]]) -> pd.DataFrame:
    """The visits' joint trials, one table: ``visit`` added, each point's repeats and trial numbers shifted past
    the earlier visits' so that they stay distinct."""
    from hera.profile.colocation import KEY, TRIAL_COLUMNS

    offset_repeat: dict[tuple, int] = {}
    offset_trial: dict[tuple, int] = {}
    out = []
    for k, (v, t) in enumerate(zip(visits, trials), start=1):
        if t.empty:
            continue
        t = t.copy()
        tk = [_key(r) for _, r in t[KEY].iterrows()]
        t["visit"] = k
        t["repeat"] = [int(r) + offset_repeat.get(x, 0) for r, x in zip(t["repeat"], tk)]
        t["trial"] = [int(r) + offset_trial.get(x, 0) for r, x in zip(t["trial"], tk)]
        for x, g in t.assign(_k=tk).groupby("_k", sort=False):
            offset_repeat[x] = int(g["repeat"].max()) + 1
            offset_trial[x] = int(g["trial"].max()) + 1
        out.append(t)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=[*TRIAL_COLUMNS, "visit"])


def trials_path(points: str | Path) -> Path:
    """The joint trials written beside a points file (``<stem>.trials.csv``)."""
    p = Path(points)
    return p.with_name(p.stem + ".trials.csv")


def run(config: dict[str, Any], points: list[str | Path], out: str | Path) -> pd.DataFrame:
    """Pool the visits of one pair (``points``: each visit's points file of :func:`hera.profile.colocation.run`,
    in visit order, its trials beside it) into ``out`` and ``<out stem>.trials.csv``, with provenance."""
    from hera.config import point_visits
    from hera.harness import read_csv_table
    from hera.profile.colocation import ray_settings
    from hera.provenance import write_table

    visits = point_visits(config)
    if len(points) != visits:
        raise HeraError(f"colocation.visits is {visits} but {len(points)} visit file(s) were given")
    frames, trials = [], []
    for p in points:
        if not Path(p).is_file():
            raise HeraError(f"visit file {p} does not exist")
        if not trials_path(p).is_file():
            raise HeraError(f"visit file {p} has no joint trials beside it ({trials_path(p).name})")
        frames.append(read_csv_table(p, "co-location visit"))
        trials.append(read_csv_table(trials_path(p), "co-location visit trials"))
    df, tr = pool(frames, trials, ray_settings(config).confidence, [str(p) for p in points])
    write_table(tr, trials_path(out), config=config, seed=config.get("seed"))
    write_table(df, out, config=config, seed=config.get("seed"))
    return df
