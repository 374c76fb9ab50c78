"""Interference tables: their schemas, and the pure reader the pair predictor uses (pandas/numpy only).

``profile/interference/<model>.csv`` (concatenated: ``profile/interference.csv``), one row per measured value
(:data:`COLUMNS`; NaN where a column does not apply):

- ``part = sensitivity``: ``kind`` (antagonist), ``intensity`` x, ``regime`` (``light``: one query at a time;
  ``saturated``: closed loop), ``workers`` (1), ``metric`` ∈ {``mean_inflation``, ``p95_inflation``}:
  ``value`` = that statistic of the sub-batch service time next to the antagonist at x / at intensity 0
  (stratified by sub-batch size; ``value_lo``/``value_hi``: cluster-bootstrap interval at ``confidence``),
  ``baseline`` = the statistic at intensity 0 (ms), ``drift`` = after/before ratio of the baselines that
  bracket this kind's points, ``antagonist_gbps`` = what the antagonist moved meanwhile. Rows with
  ``intensity = 0`` carry ``value = 1`` (the definition) and the baseline.
- ``part = pressure``: ``kind`` (reporter), ``workers`` w, ``load_frac`` u; ``metric = reporter_slowdown``
  (``value`` = median rate of the reporter alone / next to the model's w workers at u, ``baseline`` = its rate
  alone) and ``metric = equivalent_intensity`` (``value`` = the intensity of the ``kind`` antagonist that
  slows the reporter as much, read off the calibration curve; ``extrapolated`` when past its last intensity;
  NaN with the reason in ``note`` when the calibration shows no effect on this machine); ``offered_qps``
  (open loop: u × the saturation throughput in the service profile; NaN at u = 1, the closed loop) and
  ``completed_qps``.

``profile/interference_calibration.csv`` (:data:`CALIBRATION_COLUMNS`): per ``kind`` and antagonist
``intensity``, ``value`` = the reporter's slowdown next to the antagonist; per kind ``rise`` (slowdown at the
highest intensity / at 0, with its interval) and ``usable`` (that interval lies above 1; ``note`` says why not).

Reader (:func:`read`, :func:`inflation`, :func:`equivalent_intensity`): see their docstrings. Assumptions the
reader makes (docs/DESIGN.md "Interference profiles"): inflation is piecewise linear in the intensity between
measured points, 1 at 0, never below 1, linear past the last point; pressure is linear in the load fraction
between 0 (no pressure) and the measured fractions, constant above the highest, and linear in the worker count
between measured counts.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hera.profile.interference import stats
from hera.profile.interference.settings import InterferenceError
from hera.profile.interference.stats import Curve, Estimate, interp_extrapolate

PARTS = ("sensitivity", "pressure")
REGIMES = ("light", "saturated")
SENSITIVITY_METRICS = {"mean": "mean_inflation", "p95": "p95_inflation"}
PRESSURE_METRICS = ("reporter_slowdown", "equivalent_intensity")
COLUMNS = ["model", "part", "kind", "intensity", "regime", "workers", "load_frac", "metric", "value",
           "value_lo", "value_hi", "unit", "confidence", "baseline", "baseline_unit", "drift", "n_samples",
           "extrapolated", "worker_cores", "antagonist_cores", "reporter_cores", "antagonist_gbps",
           "offered_qps", "completed_qps", "scale", "note"]
CALIBRATION_COLUMNS = ["kind", "intensity", "metric", "value", "value_lo", "value_hi", "unit", "confidence",
                       "baseline", "baseline_unit", "reporter_intensity", "n_samples", "usable", "rise",
                       "rise_lo", "rise_hi", "antagonist_cores", "reporter_cores", "antagonist_gbps", "scale",
                       "note"]
REQUIRED = ("model", "part", "kind", "intensity", "regime", "workers", "load_frac", "metric", "value",
            "value_lo", "value_hi")
NUMERIC = ("intensity", "workers", "load_frac", "value", "value_lo", "value_hi")
VALUES = ("value", "value_lo", "value_hi")


def _check(df: pd.DataFrame, columns, numeric, source: str) -> pd.DataFrame:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InterferenceError(f"{source} lacks column {missing[0]!r}")
    df = df.copy()
    for c in numeric:
        df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def _read(path: str | Path, what: str, command: str) -> pd.DataFrame:
    from hera.harness.inputs import read_csv_table

    if not Path(path).is_file():
        raise InterferenceError(f"{what} {path} does not exist (run `hera profile {command}` first)")
    return read_csv_table(path, what)  # unreadable: a one-line ProfileError naming it


def read(path: str | Path) -> pd.DataFrame:
    """An interference table (per model or concatenated), checked."""
    return from_frame(_read(path, "interference profile", "interference"), str(path))


def from_frame(df: pd.DataFrame, source: str = "interference table") -> pd.DataFrame:
    """``df`` checked as an interference table (required columns, numbers where numbers belong)."""
    return _check(df, REQUIRED, NUMERIC, source)


def read_calibration(path: str | Path) -> pd.DataFrame:
    """The calibration table, checked."""
    df = _read(path, "interference calibration", "interference-calibration")
    return _check(df, ("kind", "intensity", "value", "value_lo", "value_hi"),
                  ("intensity", "value", "value_lo", "value_hi"), str(path))


def curve(calibration: pd.DataFrame, kind: str, source: str = "interference calibration") -> Curve:
    """The calibration curve of ``kind`` (sorted by intensity)."""
    rows = calibration[calibration["kind"].astype(str) == kind].sort_values("intensity")
    if rows.empty:
        have = sorted(set(calibration["kind"].astype(str)))
        raise InterferenceError(f"{source} has no {kind} curve (has: {', '.join(have) or 'none'})")
    verdict = None
    if "usable" in rows.columns and rows["usable"].notna().any():
        ok = str(rows["usable"].dropna().iloc[0]).strip().lower() in ("true", "1", "1.0")
        notes = [str(n) for n in rows.get("note", pd.Series(dtype=str)).dropna() if "not observable" in str(n)]
        why = "" if ok else (notes[0].split("; ")[-1] if notes else f"the {kind} calibration is not usable")
        verdict = (ok, why)
    return Curve(kind, rows["intensity"].to_numpy(float), rows["value"].to_numpy(float),
                 rows["value_lo"].to_numpy(float), rows["value_hi"].to_numpy(float), verdict)


# ---------------------------------------------------------------------------------------------- reader
def _rows(table: pd.DataFrame, model: str, part: str, kind: str) -> pd.DataFrame:
    rows = table[(table["model"].astype(str) == model) & (table["part"].astype(str) == part)]
    if rows.empty:
        have = sorted(set(table["model"].astype(str)))
        raise InterferenceError(f"interference profile has no {part} rows of model {model!r} "
                                f"(models: {', '.join(have) or 'none'})")
    rows = rows[rows["kind"].astype(str) == kind]
    if rows.empty:
        raise InterferenceError(f"interference profile of model {model!r} has no {kind} {part} rows")
    return rows


def _check_number(name: str, v: float, lo: float = 0.0) -> float:
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise InterferenceError(f"{name} must be a number, not {v!r}") from None
    if not math.isfinite(v) or v < lo:
        raise InterferenceError(f"{name} {v!r} is out of range (a finite number >= {lo:g})")
    return v


#: The antagonist that is only a busy core (:mod:`hera.profile.antagonist`, kind ``cpu``).
BUSY_CORE = "cpu"


def has_sensitivity(table: pd.DataFrame, model: str, kind: str) -> bool:
    """Whether ``table`` holds sensitivity rows of ``model`` to ``kind``."""
    return bool(((table["model"].astype(str) == model) & (table["part"].astype(str) == "sensitivity")
                 & (table["kind"].astype(str) == kind)).any())


def _busy_core_duty(kind: str, intensity: np.ndarray) -> np.ndarray:
    """The busy-core share of an antagonist of ``kind`` at each intensity (:func:`hera.profile.antagonist.duty_of`:
    the bandwidth antagonist is duty-cycled to its intensity, the cache antagonist busy all the time)."""
    from hera.profile.antagonist import duty_of

    return np.array([duty_of(kind, float(x)) for x in intensity])


def sensitivity_knots(table: pd.DataFrame, model: str, kind: str, regime: str, statistic: str, *,
                      net: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
    """The measured intensities (0 first) and the value, lo and hi inflation there, that :func:`inflation`
    interpolates. ``net`` (a memory kind of a model profiled next to a busy core too): each knot divided by the
    busy-core inflation at the antagonist's own duty there — what the memory traffic adds to the busy core every
    antagonist also is (docs/DESIGN.md, "The busy-core channel"); the knots unchanged otherwise."""
    xp, cols = _knots(table, model, kind, regime, statistic)
    if not net or kind == BUSY_CORE or not has_sensitivity(table, model, BUSY_CORE):
        return xp, cols
    cx, ccols = _knots(table, model, BUSY_CORE, regime, statistic)
    busy = np.interp(_busy_core_duty(kind, xp), cx, np.maximum(ccols[0], 1.0))
    return xp, [c / busy for c in cols]


def _knots(table: pd.DataFrame, model: str, kind: str, regime: str, statistic: str
           ) -> tuple[np.ndarray, list[np.ndarray]]:
    rows = _rows(table, model, "sensitivity", kind)
    rows = rows[(rows["regime"].astype(str) == regime)
                & (rows["metric"].astype(str) == SENSITIVITY_METRICS[statistic])]
    rows = rows.dropna(subset=["value"]).groupby("intensity", as_index=False)[list(VALUES)].mean()
    if rows.empty:
        raise InterferenceError(f"interference profile of model {model!r} has no {kind} {regime} "
                                f"{statistic} inflation")
    rows = rows.sort_values("intensity")
    xp = rows["intensity"].to_numpy(float)
    cols = [rows[c].to_numpy(float) for c in ("value", "value_lo", "value_hi")]
    if xp[0] > 0:
        xp = np.concatenate([[0.0], xp])
        cols = [np.concatenate([[1.0], c]) for c in cols]
    cols[1] = np.where(np.isfinite(cols[1]), cols[1], cols[0])
    cols[2] = np.where(np.isfinite(cols[2]), cols[2], cols[0])
    return xp, cols


def inflation(table: pd.DataFrame, model: str, kind: str, intensity: float, *, regime: str = "light",
              statistic: str = "mean", net: bool = False) -> Estimate:
    """How much ``model``'s sub-batch service time (``statistic``: ``mean`` or ``p95``) inflates next to
    pressure of ``kind`` at ``intensity`` (e.g. a partner's equivalent intensity), in ``regime``.

    Piecewise linear through the measured intensities (1 at intensity 0), each of value, lo and hi clamped to
    >= 1 (a co-runner does not speed a model up; below 1 is noise); past the last measured intensity,
    linear extrapolation from the last segment, flagged ``extrapolated``. A NaN intensity (a pressure not
    observable on this machine) gives a NaN estimate with the reason. ``net``: see :func:`sensitivity_knots`."""
    if regime not in REGIMES:
        raise InterferenceError(f"unknown regime {regime!r}; known: {', '.join(REGIMES)}")
    if statistic not in SENSITIVITY_METRICS:
        raise InterferenceError(f"unknown statistic {statistic!r}; known: {', '.join(SENSITIVITY_METRICS)}")
    if intensity is not None and isinstance(intensity, float) and math.isnan(intensity):
        return Estimate.missing("intensity unknown (pressure not observable)")
    x = _check_number("intensity", intensity)
    xp, cols = sensitivity_knots(table, model, kind, regime, statistic, net=net)
    out = [interp_extrapolate(x, xp, c) for c in cols]
    value, lo, hi = (max(1.0, v) for v, _ in out)
    extra = out[0][1]
    note = f"intensity {x:g} past the last measured {xp[-1]:g}: extrapolated linearly" if extra else ""
    return Estimate(value, min(lo, value), max(hi, value), extra, note)


def equivalent_intensity(table: pd.DataFrame, model: str, kind: str, workers: int,
                         load_frac: float) -> Estimate:
    """The pressure of ``model``'s ``workers`` workers at load fraction ``load_frac`` (offered rate / their
    saturation throughput) on ``kind``, as the equivalent antagonist intensity.

    Linear in the load fraction between (0, 0) and the measured fractions, constant above the highest measured
    one (saturation); linear in the worker count between measured counts (flagged in ``note``); a count
    outside the measured ones is an error. NaN (with the reason) when the calibration shows no effect on this
    machine."""
    w = _check_number("worker count", workers, 1)
    u = _check_number("load fraction", load_frac)
    if kind == BUSY_CORE:  # a busy core's pressure is the share of time its workers keep it busy: no reporter
        v = min(u, 1.0)
        return Estimate(v, v, v, False, "a busy core: the workers' own utilisation")
    rows = _rows(table, model, "pressure", kind)
    rows = rows[rows["metric"].astype(str) == "equivalent_intensity"]
    counts = sorted({int(c) for c in rows["workers"].dropna()})
    if not counts:
        raise InterferenceError(f"interference profile of model {model!r} has no {kind} equivalent intensity")
    if not counts[0] <= w <= counts[-1]:
        raise InterferenceError(f"interference profile of model {model!r} has no {kind} pressure with {w:g} "
                                f"worker(s) (measured: {', '.join(map(str, counts))})")

    def at(count: int) -> Estimate:
        g = rows[rows["workers"] == count].groupby("load_frac", as_index=False)[list(VALUES)].mean()
        g = g.sort_values("load_frac")
        if g["value"].isna().all():
            notes = rows.loc[rows["workers"] == count, "note"] if "note" in rows else pd.Series(dtype=str)
            why = next((str(n) for n in notes if isinstance(n, str) and n), "not measured")
            return Estimate.missing(why)
        up = np.concatenate([[0.0], g["load_frac"].to_numpy(float)])
        vals = [np.concatenate([[0.0], g[c].to_numpy(float)]) for c in ("value", "value_lo", "value_hi")]
        vals = [np.where(np.isfinite(v), v, vals[0]) for v in vals]
        uu = min(u, up[-1])
        v, lo, hi = (float(np.interp(uu, up, c)) for c in vals)
        note = f"load fraction {u:g} above the highest measured {up[-1]:g}: its value" if u > up[-1] else ""
        return Estimate(v, min(lo, v), max(hi, v), False, note)

    if w in counts:
        return at(int(w))
    below = max(c for c in counts if c < w)
    above = min(c for c in counts if c > w)
    a, b = at(below), at(above)
    t = (w - below) / (above - below)
    mix = [(1 - t) * p + t * q for p, q in zip((a.value, a.lo, a.hi), (b.value, b.lo, b.hi))]
    note = f"{w:g} workers interpolated between the measured {below} and {above}"
    return Estimate(mix[0], mix[1], mix[2], False, "; ".join(n for n in (note, a.note, b.note) if n))


def models(table: pd.DataFrame) -> list[str]:
    """Model ids of an interference table, in order of appearance."""
    return list(dict.fromkeys(table["model"].astype(str)))


# ------------------------------------------------------------------------------------- equivalent rows
def equivalent_rows(slowdowns: pd.DataFrame, calibration: pd.DataFrame | None, source: str = "") -> pd.DataFrame:
    """An ``equivalent_intensity`` row for every ``reporter_slowdown`` row: the calibration curve of its kind
    inverted at the slowdown (:func:`hera.profile.interference.stats.equivalent`); without a calibration NaN
    rows that say so. ``source`` (the calibration's path and commit) goes into each row's note."""
    out = []
    curves = {}
    for r in slowdowns[slowdowns["metric"].astype(str) == "reporter_slowdown"].to_dict("records"):
        kind = str(r["kind"])
        if calibration is None:
            eq = Estimate.missing("no calibration given (hera profile interference --calibration)")
        else:
            if kind not in curves:
                curves[kind] = curve(calibration, kind, source or "interference calibration")
            eq = stats.equivalent(curves[kind], Estimate(float(r["value"]), float(r["value_lo"]),
                                                         float(r["value_hi"])))
        note = "; ".join(n for n in (eq.note, f"calibration: {source}" if source else "") if n)
        out.append({**r, "metric": "equivalent_intensity", "value": eq.value, "value_lo": eq.lo,
                    "value_hi": eq.hi, "unit": "intensity", "baseline": np.nan, "baseline_unit": np.nan,
                    "extrapolated": eq.extrapolated, "note": note})
    return pd.DataFrame(out) if out else pd.DataFrame(columns=slowdowns.columns)


def with_calibration(table: pd.DataFrame, calibration: pd.DataFrame, source: str = "") -> pd.DataFrame:
    """``table`` with its equivalent intensities recomputed from its reporter slowdowns and ``calibration``
    (e.g. profiles written without ``--calibration``, or a study's calibration redone)."""
    keep = table[table["metric"].astype(str) != "equivalent_intensity"]
    new = equivalent_rows(keep[keep["part"].astype(str) == "pressure"], calibration, source)
    return from_frame(pd.concat([keep, new], ignore_index=True).reindex(columns=table.columns), "interference table")


# ------------------------------------------------------------------------------------- predictor adapter
class InterferenceProfiles:
    """Interference profiles of several models, as the pair predictor asks for them
    (:class:`hera.profile.pair_prediction.Interference`): :meth:`inflation` and :meth:`pressure` return floats;
    :meth:`inflation_estimate` and :meth:`pressure_estimate` the :class:`Estimate` with interval and note.

    ``regime`` and ``statistic``: which sensitivity the plain :meth:`inflation` reads (light-load mean by
    default; ``saturated`` is measured too and may fit a tenant near its QPS* better). ``net_of_busy_core``: the
    memory kinds' inflations of a model also profiled next to a busy core are read net of it
    (:func:`sensitivity_knots`), so that the busy core, which a partner exerts at its utilisation, is not counted
    twice. ``unobservable``: what
    :meth:`pressure` returns where the calibration showed no effect on this machine (``"nan"``, the default,
    propagates; ``"zero"`` treats it as no pressure — an assumption a caller must state)."""

    def __init__(self, table: pd.DataFrame, *, regime: str = "light", statistic: str = "mean",
                 unobservable: str = "nan", net_of_busy_core: bool = True):
        if regime not in REGIMES:
            raise InterferenceError(f"unknown regime {regime!r}; known: {', '.join(REGIMES)}")
        if statistic not in SENSITIVITY_METRICS:
            raise InterferenceError(f"unknown statistic {statistic!r}; known: {', '.join(SENSITIVITY_METRICS)}")
        if unobservable not in ("nan", "zero"):
            raise InterferenceError(f"unobservable must be 'nan' or 'zero', not {unobservable!r}")
        self.table = from_frame(table)
        self.regime, self.statistic, self.unobservable = regime, statistic, unobservable
        self.net = bool(net_of_busy_core)
        self._knots: dict[tuple[str, str], tuple[np.ndarray, list[np.ndarray]]] = {}
        self._pressure_knots: dict[tuple[str, str, float], tuple[np.ndarray, np.ndarray]] = {}

    def models(self) -> list[str]:
        return models(self.table)

    def has_kind(self, model: str, kind: str) -> bool:
        """Whether ``model`` was profiled next to ``kind`` (a busy core is optional: ``interference.busy_core``)."""
        return has_sensitivity(self.table, model, kind)

    def inflation_estimate(self, model: str, kind: str, intensity: float, regime: str | None = None) -> Estimate:
        return inflation(self.table, model, kind, intensity, regime=regime or self.regime, statistic=self.statistic,
                         net=self.net)

    def pressure_estimate(self, model: str, kind: str, workers: int, load_frac: float) -> Estimate:
        return equivalent_intensity(self.table, model, kind, workers, load_frac)

    def inflation(self, model: str, kind: str, intensity: float, regime: str | None = None) -> float:
        """Factor (>= 1; NaN for a NaN intensity) of ``model``'s service times next to ``kind`` at ``intensity``."""
        return self.inflation_estimate(model, kind, intensity, regime).value

    def inflations(self, model: str, kind: str, intensity: np.ndarray) -> np.ndarray:
        """:meth:`inflation` (value only, in :attr:`regime`) at every intensity of an array, the profile read once
        per (model, kind): the same piecewise-linear law, linear past the last measured intensity, >= 1, NaN for
        a NaN intensity."""
        key = (model, kind)
        if key not in self._knots:
            self._knots[key] = sensitivity_knots(self.table, model, kind, self.regime, self.statistic, net=self.net)
        xp, cols = self._knots[key]
        v, x = cols[0], np.asarray(intensity, float)
        if xp.size == 1:
            out = np.full(x.shape, v[0])
        else:
            slope = (v[-1] - v[-2]) / (xp[-1] - xp[-2])
            out = np.where(x > xp[-1], v[-1] + slope * (x - xp[-1]), np.interp(x, xp, v))
        return np.where(np.isnan(x), np.nan, np.maximum(out, 1.0))

    def pressure(self, model: str, kind: str, workers: int, load_frac: float) -> float:
        """Equivalent intensity of ``workers`` workers of ``model`` at ``load_frac`` (see ``unobservable``)."""
        v = self.pressure_estimate(model, kind, workers, load_frac).value
        return 0.0 if self.unobservable == "zero" and math.isnan(v) else v

    def pressures(self, model: str, kind: str, workers: int, load_frac: np.ndarray) -> np.ndarray:
        """:meth:`pressure` at every load fraction of an array (the pair predictor's grids). The equivalent
        intensity is piecewise linear in the load fraction with knots at 0 and the measured fractions, constant
        above the highest (:func:`equivalent_intensity`, a worker count between measured ones mixing two such
        laws): it is read at those knots once per (model, kind, workers) and interpolated — the same values,
        the table filtered a few times instead of once per fraction. Errors as :meth:`pressure`'s."""
        u = np.asarray(load_frac, float)
        bad = u[~np.isfinite(u) | (u < 0)]
        if bad.size:
            self.pressure(model, kind, workers, float(bad[0]))  # raises the scalar method's error
        if kind == BUSY_CORE:
            return np.minimum(u, 1.0)
        key = (model, kind, float(workers))
        if key not in self._pressure_knots:
            rows = _rows(self.table, model, "pressure", kind)
            fracs = pd.to_numeric(rows.loc[rows["metric"].astype(str) == "equivalent_intensity", "load_frac"],
                                  errors="coerce").dropna()
            knots = np.unique(np.concatenate([[0.0], fracs[fracs > 0].to_numpy(float)]))
            self._pressure_knots[key] = (knots, np.array([self.pressure(model, kind, workers, float(x))
                                                          for x in knots]))
        knots, values = self._pressure_knots[key]
        return np.interp(u, knots, values)  # constant past the last knot, as the law is


def load_interference(paths, calibration: str | Path | None = None, **options) -> InterferenceProfiles:
    """The interference profiles in ``paths`` (per-model or concatenated tables) as one
    :class:`InterferenceProfiles`; with ``calibration``, equivalent intensities are recomputed from it
    (:func:`with_calibration`). ``options``: ``regime``, ``statistic``, ``unobservable``."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise InterferenceError("no interference profile given")
    table = pd.concat([read(p) for p in paths], ignore_index=True)
    if calibration is not None:
        table = with_calibration(table, read_calibration(calibration), str(calibration))
    return InterferenceProfiles(table, **options)
