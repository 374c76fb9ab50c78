"""Profile tables as typed lookups: isolated scalability, measured and predicted co-location points.

Input tables (tidy, as written by ``hera.profile``; see docs/DESIGN.md "Result tables"):

- ``profile/scalability.csv``: ``model, workers, qps_star, sla_ms`` (+ ``qps_star_lo/hi, repeats, …``);
  ``workers`` = cores (one worker per core).
- ``colocation/pairs.csv`` (*measured*) and ``colocation/predicted.csv`` (*predicted* from O(N) profiles by
  :mod:`hera.profile.pair_prediction`): ``model_a, model_b, cores_a, cores_b, ways_a, ways_b, qps_star_a,
  qps_star_b`` (+ ``share_a``, ``qps_alone_a/b``, ``emu``, ``best``, …); empty ``ways_*`` = shared
  (unpartitioned) LLC. Every row splits the whole node: ``cores_a + cores_b`` = node cores and, when
  partitioned, ``ways_a + ways_b`` = node LLC ways. A row is one *operating point*: both tenants within their
  SLA at those rates. With a ``share_a`` column (the ray ``t × (s·QPS*_a(c_a), (1 − s)·QPS*_b(c_b))`` the point
  lies on) the rows of one split are distinct points of its feasible region and are kept apart; repeats of one
  point (same split and ray) are averaged.

EMU (docs/METHOD.md §2), computed by :func:`emu` everywhere in this package::

    EMU = Σ_i QPS*_i(co-located) / QPS*_i(alone, whole node)

where ``QPS*_i(alone, whole node) = max_w QPS*_i(w workers), w ≤ node cores`` (:meth:`Profiles.qps_alone`);
the ``emu`` and ``qps_alone_*`` columns of the co-location tables are ignored and recomputed with this
denominator, so a single-tenant node at its best worker count has EMU = 1.0 exactly.

Which point of a set (of one split, or of all splits of a pair) a planner uses for a demand — the same rule
everywhere (:func:`point_for_demand`): without demand the highest EMU among points where both tenants sustain
some load; with a demand the highest EMU among points meeting it, else the point with most headroom.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hera.errors import ConfigError

SCALABILITY_COLUMNS = ("model", "workers", "qps_star", "sla_ms")
PAIR_COLUMNS = ("model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "qps_star_a", "qps_star_b")
#: Where a co-location point comes from.
SOURCES = ("measured", "predicted")
#: What each source's table is called in messages (the file the pipeline writes it to).
TABLE_NAMES = {
    "measured": "measured co-location table (colocation/pairs.csv)",
    "predicted": "pair prediction table (colocation/predicted.csv)",
}
#: How a table is named in a "lacks column" message.
COLUMN_LABELS = {"measured": "co-location", "predicted": "pair prediction"}
_KEYS = ["model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "share_a"]


def emu(qps_colocated: Sequence, qps_alone: Sequence):
    """``EMU = Σ_i QPS*_i(co-located) / QPS*_i(alone, whole node)`` (docs/METHOD.md §2); 1.0 = one model alone.

    One entry per tenant i; entries may be scalars (→ float) or equal-length arrays (→ one EMU per split).
    """
    if len(qps_colocated) != len(qps_alone):
        raise ConfigError("emu needs one alone capacity per co-located tenant")
    total = 0.0
    for q, a in zip(qps_colocated, qps_alone):
        a = np.asarray(a, float)
        if not np.all(a > 0):
            raise ConfigError("emu needs a positive alone capacity for every tenant")
        total = total + np.asarray(q, float) / a
    return float(total) if np.ndim(total) == 0 else total


def memory_class(label: str) -> str | None:
    """``memory`` for an embedding/memory-leaning class label (T1's ``class``: "memory-leaning",
    "embedding-dominated", …), ``compute`` for an MLP/compute-leaning one, None for anything else."""
    text = str(label).strip().lower()
    if "mem" in text or "emb" in text:
        return "memory"
    if "comp" in text or "mlp" in text:
        return "compute"
    return None


def _require_columns(df: pd.DataFrame, columns: Iterable[str], table: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ConfigError(f"{table} table must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ConfigError(f"{table} table lacks column(s) {', '.join(missing)}")


def _ways(x) -> int | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x) else int(x)


@dataclass(frozen=True)
class NodeSize:
    """A node: ``cores`` (one worker per core) and LLC ``llc_ways`` (None when resctrl is absent)."""

    cores: int
    llc_ways: int | None


@dataclass(frozen=True)
class ProfiledSplit:
    """One operating point of a split of the node between tenants ``a`` and ``b``: the split (cores, LLC ways;
    None = shared LLC), the rates each tenant sustains there within its SLA (QPS*), their EMU, where the point
    comes from (``source``: measured | predicted) and the ray it lies on (``share_a``; None for a table without
    rays, one point per split)."""

    cores_a: int
    cores_b: int
    ways_a: int | None
    ways_b: int | None
    qps_a: float
    qps_b: float
    emu: float
    source: str = "measured"
    share_a: float | None = None

    @property
    def split(self) -> tuple[int, int | None]:
        """``(cores_a, ways_a)``: what a node is configured with (the ray is the load, not a setting)."""
        return self.cores_a, self.ways_a

    def headroom(self, load_a: float, load_b: float) -> float:
        """``min(QPS*_a / load_a, QPS*_b / load_b)`` (≥ 1: the point serves both loads)."""
        eps = 1e-9
        return min(self.qps_a / max(load_a, eps), self.qps_b / max(load_b, eps))


def _emu_key(s: ProfiledSplit) -> tuple:
    """Ties between equal EMUs: the more even core split, then more cores for a, then the balanced ray."""
    return (round(s.emu, 12), -abs(s.cores_a - s.cores_b), s.cores_a, -abs((s.share_a or 0.5) - 0.5))


def point_for_demand(
    points: Sequence[ProfiledSplit], load: tuple[float, float] | None = None
) -> ProfiledSplit | None:
    """The point a planner uses among ``points`` (module docstring): without ``load`` = (load_a, load_b) the
    highest EMU where both tenants sustain some load (QPS* > 0; None if there is no such point); with it the
    highest EMU among those meeting it, else the point with most headroom."""
    pos = [s for s in points if s.qps_a > 0 and s.qps_b > 0]
    if load is None:
        return max(pos, key=_emu_key) if pos else None
    ok = [s for s in pos if s.qps_a >= load[0] and s.qps_b >= load[1]]
    if ok:
        return max(ok, key=_emu_key)
    return max(points, key=lambda s: (round(s.headroom(*load), 9), _emu_key(s))) if points else None


class Profiles:
    """Validated profile tables with capacity lookups.

    ``pairs`` holds measured co-location points, ``predicted`` predicted ones (O(N) profiles); every lookup
    takes ``source`` ("measured", the default, or "predicted"). ``classes`` maps a model to its memory class
    (T1's ``class`` column), when known. ``node_cores`` / ``llc_ways`` come from the config or are inferred:
    cores from the co-location splits (``cores_a + cores_b``) or else the largest isolated worker count; ways
    from ``ways_a + ways_b``; both tables must describe the same node.
    """

    def __init__(
        self,
        scalability: pd.DataFrame,
        pairs: pd.DataFrame | None = None,
        predicted: pd.DataFrame | None = None,
        *,
        node_cores: int | None = None,
        llc_ways: int | None = None,
        classes: Mapping[str, str] | None = None,
    ):
        _require_columns(scalability, SCALABILITY_COLUMNS, "scalability")
        scal = scalability.copy()
        scal["model"] = scal["model"].astype(str)
        scal["qps_star"] = pd.to_numeric(scal["qps_star"], errors="coerce").fillna(0.0)  # NaN: SLA never met
        if (scal["workers"] < 1).any() or (scal["qps_star"] < 0).any():
            raise ConfigError("scalability table has workers < 1 or negative qps_star")
        if scal.empty:
            raise ConfigError("scalability table is empty")
        self.models: tuple[str, ...] = tuple(sorted(scal["model"].unique()))
        self._scal = scal.groupby(["model", "workers"], as_index=False).agg(
            qps_star=("qps_star", "mean"), sla_ms=("sla_ms", "first")
        )
        raw = {"measured": pairs, "predicted": predicted}
        sizes = {src: self._node_of(df, src) for src, df in raw.items() if df is not None and len(df)}
        cores_from, ways_from, from_src = None, None, None
        for src, (c, w) in sizes.items():
            if cores_from is None:
                cores_from, ways_from, from_src = c, w, src
            elif (c, w) != (cores_from, ways_from):
                raise ConfigError(
                    f"inconsistent node size: the {TABLE_NAMES[src]} splits a {c}-core node (LLC ways {w}) "
                    f"but the {TABLE_NAMES[from_src]} a {cores_from}-core one (LLC ways {ways_from})"
                )
        max_workers = int(self._scal["workers"].max())
        cores = node_cores if node_cores is not None else (cores_from or max_workers)
        if cores_from is not None and cores_from != cores:
            raise ConfigError(
                f"inconsistent node size: config says {cores} cores, co-location splits use {cores_from}"
            )
        if max_workers > cores:
            raise ConfigError(
                f"inconsistent node size: scalability has {max_workers} workers on a {cores}-core node"
            )
        ways = llc_ways if llc_ways is not None else ways_from
        if ways_from is not None and ways != ways_from:
            raise ConfigError(f"inconsistent node size: config says {ways} LLC ways, splits use {ways_from}")
        self.node = NodeSize(int(cores), None if ways is None else int(ways))
        self._alone = {m: self._best(m) for m in self.models}
        self._curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._sla = {m: float(v) for m, v in self._scal.groupby("model")["sla_ms"].first().items()}
        self._tables = {
            src: self._canonical_pairs(df, src) if df is not None and len(df) else self._empty_pairs()
            for src, df in raw.items()
        }
        self.has_predictions = predicted is not None and len(predicted) > 0
        self._split_cache: dict[tuple[str, str, str], list[ProfiledSplit]] = {}
        self.classes: dict[str, str] | None = None
        if classes is not None:
            self.classes = {str(m): str(c) for m, c in classes.items()}

    # ---------------------------------------------------------------- validation helpers
    @staticmethod
    def _node_of(df: pd.DataFrame, source: str) -> tuple[int, int | None]:
        """(cores, LLC ways) the rows of a co-location table split; ConfigError for a split not fitting."""
        _require_columns(df, PAIR_COLUMNS, COLUMN_LABELS[source])
        ca, cb = pd.to_numeric(df["cores_a"], errors="coerce"), pd.to_numeric(df["cores_b"], errors="coerce")
        bad = ~((ca >= 1) & (cb >= 1))
        if bad.any():
            r = df[bad].iloc[0]
            raise ConfigError(
                f"the {TABLE_NAMES[source]} has a split that does not fit a node: {r['model_a']} on "
                f"{r['cores_a']} and {r['model_b']} on {r['cores_b']} cores (each tenant needs >= 1)"
            )
        sums = sorted((ca + cb).unique())
        if len(sums) != 1:
            sizes = ", ".join(str(int(x)) for x in sums)
            raise ConfigError(f"inconsistent node size: the {TABLE_NAMES[source]} splits nodes of {sizes} cores")
        wa, wb = pd.to_numeric(df["ways_a"], errors="coerce"), pd.to_numeric(df["ways_b"], errors="coerce")
        if (wa.isna() != wb.isna()).any() or (wa < 1).any() or (wb < 1).any():
            r = df[(wa.isna() != wb.isna()) | (wa < 1) | (wb < 1)].iloc[0]
            raise ConfigError(
                f"the {TABLE_NAMES[source]} has an LLC split that does not fit a node: {r['model_a']} "
                f"{r['ways_a']} and {r['model_b']} {r['ways_b']} ways (both >= 1, or both empty: shared LLC)"
            )
        wsum = sorted((wa + wb).dropna().unique())
        if len(wsum) > 1:
            sizes = ", ".join(str(int(x)) for x in wsum)
            raise ConfigError(f"inconsistent node size: the {TABLE_NAMES[source]} splits {sizes} LLC ways")
        return int(sums[0]), int(wsum[0]) if wsum else None

    def _check_models(self, names: Iterable[str], table: str) -> None:
        unknown = sorted(set(map(str, names)) - set(self.models))
        if unknown:
            raise ConfigError(
                f"{table} names model(s) {', '.join(unknown)} that have no isolated profile; "
                f"profiled: {', '.join(self.models)}"
            )

    def check_models(self, models: Iterable[str]) -> list[str]:
        """Return ``models`` as a list; ConfigError for an unknown one or a duplicate."""
        models = [str(m) for m in models]
        for m in models:
            if m not in self.models:
                raise ConfigError(f"unknown model '{m}'; profiled: {', '.join(self.models)}")
        if len(set(models)) != len(models):
            raise ConfigError(f"model list has duplicates: {', '.join(models)}")
        return models

    @staticmethod
    def _empty_pairs() -> pd.DataFrame:
        return pd.DataFrame(
            {c: pd.Series(dtype=float) for c in (*PAIR_COLUMNS, "share_a")} | {"source": pd.Series(dtype=str)}
        )

    def _canonical_pairs(self, pairs: pd.DataFrame, source: str) -> pd.DataFrame:
        """Orient every row with ``model_a < model_b`` (a ray's share becomes ``1 − share_a``), average repeats
        of one point (same split and ray), drop self-pairs, tag ``source``."""
        p = pairs.copy()
        p["model_a"], p["model_b"] = p["model_a"].astype(str), p["model_b"].astype(str)
        self._check_models(pd.concat([p["model_a"], p["model_b"]]), f"the {TABLE_NAMES[source]}")
        p = p[p["model_a"] != p["model_b"]]
        for c in ("cores_a", "cores_b", "ways_a", "ways_b", "qps_star_a", "qps_star_b"):
            p[c] = pd.to_numeric(p[c], errors="coerce")
        p["share_a"] = pd.to_numeric(p["share_a"], errors="coerce") if "share_a" in p.columns else np.nan
        swap = p["model_a"] > p["model_b"]
        for x in ("model", "cores", "ways", "qps_star"):
            a, b = f"{x}_a", f"{x}_b"
            p.loc[swap, [a, b]] = p.loc[swap, [b, a]].to_numpy()
        p.loc[swap, "share_a"] = 1.0 - p.loc[swap, "share_a"]
        p["share_a"] = p["share_a"].round(6)
        for c in ("qps_star_a", "qps_star_b"):
            p[c] = p[c].fillna(0.0)  # NaN: the SLA was never met there
        if (p[["qps_star_a", "qps_star_b"]] < 0).any().any():
            raise ConfigError(f"the {TABLE_NAMES[source]} has negative qps_star")
        p = p.groupby(_KEYS, as_index=False, dropna=False).agg(
            qps_star_a=("qps_star_a", "mean"), qps_star_b=("qps_star_b", "mean")
        )
        p["source"] = source
        return p[[*PAIR_COLUMNS, "share_a", "source"]].reset_index(drop=True)

    # ---------------------------------------------------------------- isolated capacity
    def _best(self, model: str) -> tuple[int, float]:
        s = self._scal[self._scal["model"] == model]
        i = s["qps_star"].to_numpy().argmax()
        return int(s["workers"].iloc[i]), float(s["qps_star"].iloc[i])

    def sla_ms(self, model: str) -> float:
        """The model's SLA (ms), as stored with its isolated profile."""
        if model not in self._sla:
            self.check_models([model])
        return self._sla[model]

    def best_workers(self, model: str) -> int:
        """Worker count (= cores) at which the model alone reaches its highest QPS*."""
        if model not in self._alone:
            self.check_models([model])
        return self._alone[model][0]

    def qps_alone(self, model: str, workers=None):
        """QPS* of the model alone: with ``workers`` workers (scalar or array; linear interpolation between
        measured counts, 0 at 0 workers), or, when ``workers`` is None, its best over the whole node (the EMU
        denominator)."""
        if model not in self._alone:
            self.check_models([model])
        if workers is None:
            return self._alone[model][1]
        if model not in self._curves:
            s = self._scal[self._scal["model"] == model].sort_values("workers")
            self._curves[model] = (
                np.concatenate([[0.0], s["workers"].to_numpy(float)]),
                np.concatenate([[0.0], s["qps_star"].to_numpy(float)]),
            )
        y = np.interp(workers, *self._curves[model])
        return float(y) if np.ndim(y) == 0 else y

    def scalability(self, model: str) -> pd.DataFrame:
        """The model's ``workers, qps_star`` curve, sorted by workers."""
        self.check_models([model])
        return self._scal[self._scal["model"] == model][["workers", "qps_star"]].sort_values("workers")

    # ---------------------------------------------------------------- co-location
    @staticmethod
    def _check_source(source: str) -> None:
        if source not in SOURCES:
            raise ConfigError(f"co-location source must be one of {', '.join(SOURCES)}, got {source!r}")

    @property
    def pairs(self) -> pd.DataFrame:
        """The canonical measured co-location table (``model_a < model_b``, one row per point)."""
        return self._tables["measured"]

    @property
    def predicted(self) -> pd.DataFrame:
        """The canonical predicted co-location table (empty when no predictions were given)."""
        return self._tables["predicted"]

    def has_pair(self, a: str, b: str, source: str | None = None) -> bool:
        """Whether the pair has co-location points of ``source`` (None: of either)."""
        lo, hi = sorted((a, b))
        for src in SOURCES if source is None else (source,):
            self._check_source(src)
            p = self._tables[src]
            if ((p["model_a"] == lo) & (p["model_b"] == hi)).any():
                return True
        return False

    def unloadable(self, a: str, b: str) -> bool:
        """Whether no core split of the node can load both tenants: on each split (c, cores − c) one of them meets
        no rate alone on its cores (QPS* = 0). The co-location stage measures nothing for such a pair (a row would
        hold a never-loaded tenant), so its table has no rows for it."""
        cores = self.node.cores
        return cores >= 2 and all(self.qps_alone(a, c) <= 0 or self.qps_alone(b, cores - c) <= 0
                                  for c in range(1, cores))

    def _unloadable_points(self, a: str, b: str) -> list[ProfiledSplit]:
        """One point per core split of an :meth:`unloadable` pair, serving nothing (QPS* 0 for both, EMU 0,
        ``source`` "unloadable"): a policy that co-locates the pair gets a node that serves neither tenant; one that
        looks for a point where both meet their SLA finds none and keeps them apart."""
        cores = self.node.cores
        return [ProfiledSplit(c, cores - c, None, None, 0.0, 0.0, 0.0, "unloadable", None)
                for c in range(1, cores)]

    def _missing_pair(self, a: str, b: str, source: str) -> ConfigError:
        p = self._tables[source]
        present = set(p["model_a"]) | set(p["model_b"])
        if source == "predicted" and not self.has_predictions:
            return ConfigError(
                f"no pair predictions were given (colocation/predicted.csv) to decide pair ({a}, {b}) from"
            )
        for m in (a, b):
            if m not in present:
                what = (
                    "the oracle and the baselines plan on measured pairs (measure it: colocation.models)"
                    if source == "measured"
                    else "predict every pair of the mix (hera profile predict-pairs)"
                )
                return ConfigError(
                    f"the {TABLE_NAMES[source]} has no pair with model '{m}' of the mix; {what}"
                )
        return ConfigError(f"the {TABLE_NAMES[source]} has no rows for pair ({a}, {b})")

    def splits(self, a: str, b: str, source: str = "measured") -> list[ProfiledSplit]:
        """Every co-location point of ``source`` between ``a`` and ``b`` (all splits, all rays), oriented so
        that ``cores_a`` is a's; ConfigError naming what is missing when the pair has none."""
        key = (a, b, source)
        if key in self._split_cache:
            return self._split_cache[key]
        self._check_source(source)
        self.check_models([a, b])
        if a == b:
            raise ConfigError(f"cannot co-locate model '{a}' with itself")
        lo, hi = sorted((a, b))
        t = self._tables[source]
        p = t[(t["model_a"] == lo) & (t["model_b"] == hi)]
        if p.empty and self.unloadable(a, b):
            out = self._unloadable_points(a, b)
            self._split_cache[key] = out
            return out
        if p.empty:
            raise self._missing_pair(a, b, source)
        flip = lo != a
        alone = (self.qps_alone(a), self.qps_alone(b))
        out = []
        for r in p.itertuples(index=False):
            ca, cb, wa, wb, qa, qb = (
                r.cores_a,
                r.cores_b,
                _ways(r.ways_a),
                _ways(r.ways_b),
                float(r.qps_star_a),
                float(r.qps_star_b),
            )
            share = None if pd.isna(r.share_a) else float(r.share_a)
            if flip:
                ca, cb, wa, wb, qa, qb = cb, ca, wb, wa, qb, qa
                share = None if share is None else round(1.0 - share, 6)
            out.append(ProfiledSplit(int(ca), int(cb), wa, wb, qa, qb, emu((qa, qb), alone), source, share))
        self._split_cache[key] = out
        return out

    def best_split(
        self,
        a: str,
        b: str,
        demand_qps: Mapping[str, float] | None = None,
        ways: str = "any",
        source: str = "measured",
    ) -> ProfiledSplit:
        """The point a profile-guided planner picks (:func:`point_for_demand` over every split and ray).

        Without demand: highest EMU among points where both tenants sustain some load (QPS* > 0).
        With demand ``{a: d_a, b: d_b}``: highest EMU among points meeting it (``QPS*_i ≥ d_i``); if none
        does, the point with most headroom, ``max min_i QPS*_i / d_i`` (:meth:`split_for_load`).
        ``ways``: "any", "shared" (unpartitioned LLC only) or "partitioned".
        """
        points = self._filter_ways(self.splits(a, b, source), ways)
        if not any(s.qps_a > 0 and s.qps_b > 0 for s in points):
            raise ConfigError(f"pair ({a}, {b}) has no split where both tenants meet their SLA ({source})")
        load = None if demand_qps is None else (float(demand_qps.get(a, 0.0)), float(demand_qps.get(b, 0.0)))
        return point_for_demand(points, load)

    def split_for_load(
        self,
        a: str,
        b: str,
        load_a: float,
        load_b: float,
        ways: str = "any",
        near: tuple[int, int | None] | None = None,
        source: str = "measured",
    ) -> ProfiledSplit:
        """The point with the most headroom for the offered loads: ``argmax min(QPS*_a/load_a, QPS*_b/load_b)``;
        ties broken by EMU, then by closeness to ``near`` = (cores_a, ways_a) (the current allocation)."""
        cand = self._filter_ways(self.splits(a, b, source), ways)

        def key(s: ProfiledSplit):
            dist = 0 if near is None else abs(s.cores_a - near[0]) + abs((s.ways_a or 0) - (near[1] or 0))
            return (round(s.headroom(load_a, load_b), 9), round(s.emu, 9), -dist)

        return max(cand, key=key)

    def _points_of_split(
        self, a: str, b: str, cores_a: int, ways_a: int | None, source: str
    ) -> list[ProfiledSplit]:
        """The points of the split with ``cores_a`` cores (``ways_a`` ways, None = shared LLC) for a, or of the
        nearest split (cores first, then shared/partitioned, then ways) when that exact split is missing."""
        pts = self.splits(a, b, source)

        def dist(s: ProfiledSplit) -> int:
            return (
                abs(s.cores_a - cores_a) * 100
                + (0 if (s.ways_a is None) == (ways_a is None) else 50)
                + abs((s.ways_a or 0) - (ways_a or 0))
            )

        best = min(dist(s) for s in pts)
        near = [s for s in pts if dist(s) == best]
        first = min((s.cores_a, s.ways_a or 0) for s in near)  # equally near splits: the smaller one
        return [s for s in near if (s.cores_a, s.ways_a or 0) == first]

    def even_split(self, a: str, b: str, load: tuple[float, float] | None = None) -> ProfiledSplit:
        """Cores split evenly (a gets the extra core if odd), LLC shared; the nearest measured core split if
        that exact one is missing, and an even ways split if only partitioned rows exist. Among the split's
        points the one for ``load`` (:func:`point_for_demand`; without load its highest EMU)."""
        target = (self.node.cores + 1) // 2
        cand = self._filter_ways(self.splits(a, b), "shared") or self.splits(a, b)
        half = (self.node.llc_ways or 0) / 2
        s = min(cand, key=lambda s: (abs(s.cores_a - target), abs((s.ways_a or half) - half), s.cores_a))
        return self.nearest_split(a, b, s.cores_a, s.ways_a, load)

    def nearest_split(
        self,
        a: str,
        b: str,
        cores_a: int,
        ways_a: int | None = None,
        load: tuple[float, float] | None = None,
        source: str = "measured",
    ) -> ProfiledSplit:
        """The point of the split with ``cores_a`` cores (and ``ways_a`` LLC ways, None = shared LLC) for a,
        or of the nearest split when that one is missing, chosen for ``load`` = (load_a, load_b) by
        :func:`point_for_demand` (without load: the split's highest-EMU point)."""
        pts = self._points_of_split(a, b, cores_a, ways_a, source)
        return point_for_demand(pts, load) or max(pts, key=_emu_key)

    def capacity(
        self, a: str, b: str, cores_a: int, ways_a: int | None = None, load: tuple[float, float] | None = None
    ) -> tuple[float, float]:
        """(QPS*_a, QPS*_b) of a and b sharing the node, a holding ``cores_a`` cores (the nearest measured
        split). Without ``load`` the split's highest-EMU point; with ``load`` = (load_a, load_b) each tenant's
        capacity while the other carries its load: ``QPS*_a = max{q_a of a point with q_b ≥ load_b}`` (the
        staircase below the measured points of the feasible region; the most b-favoured point if none
        reaches load_b), and the same for b."""
        pts = self._points_of_split(a, b, cores_a, ways_a, "measured")
        if load is None:
            s = point_for_demand(pts) or max(pts, key=_emu_key)
            return s.qps_a, s.qps_b
        cap_a = max(
            (s.qps_a for s in pts if s.qps_b >= load[1]), default=max(pts, key=lambda s: s.qps_b).qps_a
        )
        cap_b = max(
            (s.qps_b for s in pts if s.qps_a >= load[0]), default=max(pts, key=lambda s: s.qps_a).qps_b
        )
        return cap_a, cap_b

    @staticmethod
    def _filter_ways(splits: list[ProfiledSplit], ways: str) -> list[ProfiledSplit]:
        if ways == "shared":
            return [s for s in splits if s.ways_a is None]
        if ways == "partitioned":
            return [s for s in splits if s.ways_a is not None]
        if ways != "any":
            raise ConfigError(f"ways must be any, shared or partitioned, got {ways!r}")
        return splits

    @classmethod
    def from_files(
        cls,
        scalability,
        pairs=None,
        predicted=None,
        *,
        node_cores: int | None = None,
        llc_ways: int | None = None,
        classes: Mapping[str, str] | None = None,
    ) -> Profiles:
        """Read the CSV tables (paths) and validate them; ConfigError naming a missing file."""
        from pathlib import Path

        def read(path):
            if path is None:
                return None
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"profile table {path} does not exist")
            return pd.read_csv(path)

        return cls(
            read(scalability),
            read(pairs),
            read(predicted),
            node_cores=node_cores,
            llc_ways=llc_ways,
            classes=classes,
        )
