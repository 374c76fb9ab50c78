"""Measured profiles as typed lookups: isolated scalability, co-location splits, antagonist (bubble) curves.

Input tables (tidy, as written by ``hera.profile``; see docs/DESIGN.md "Result tables"):

- ``profile/scalability.csv``: ``model, workers, qps_star, sla_ms`` (+ ``qps_star_lo/hi, repeats, …``);
  ``workers`` = cores (one worker per core).
- ``colocation/pairs.csv``: ``model_a, model_b, cores_a, cores_b, ways_a, ways_b, qps_star_a, qps_star_b``
  (+ ``qps_alone_a/b, emu, best``); empty ``ways_*`` = shared (unpartitioned) LLC. Every row splits the whole
  node: ``cores_a + cores_b`` = node cores and, when partitioned, ``ways_a + ways_b`` = node LLC ways.
- ``profile/memory.csv`` (optional, for the predictor):
  ``model, antagonist, intensity, metric, value, slowdown``.

EMU (docs/METHOD.md §2), computed by :func:`emu` everywhere in this package::

    EMU = Σ_i QPS*_i(co-located) / QPS*_i(alone, whole node)

where ``QPS*_i(alone, whole node) = max_w QPS*_i(w workers), w ≤ node cores`` (:meth:`Profiles.qps_alone`);
the ``emu`` and ``qps_alone_*`` columns of the co-location table are ignored and recomputed with this
denominator, so a single-tenant node at its best worker count has EMU = 1.0 exactly.
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
MEMORY_COLUMNS = ("model", "antagonist", "intensity", "metric", "value", "slowdown")


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
    """One way to split a node between tenants ``a`` and ``b`` and what each then sustains (QPS*)."""

    cores_a: int
    cores_b: int
    ways_a: int | None
    ways_b: int | None
    qps_a: float
    qps_b: float
    emu: float
    source: str = "measured"


class Profiles:
    """Validated profile tables with capacity lookups.

    ``node_cores`` / ``llc_ways`` come from the config or are inferred: cores from the co-location splits
    (``cores_a + cores_b``) or else the largest isolated worker count; ways from ``ways_a + ways_b``.
    """

    def __init__(
        self,
        scalability: pd.DataFrame,
        pairs: pd.DataFrame | None = None,
        memory: pd.DataFrame | None = None,
        node_cores: int | None = None,
        llc_ways: int | None = None,
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

        cores_from_pairs = ways_from_pairs = None
        if pairs is not None and len(pairs):
            _require_columns(pairs, PAIR_COLUMNS, "co-location")
            pairs = pairs.copy()
            sums = (pairs["cores_a"] + pairs["cores_b"]).unique()
            if len(sums) != 1:
                raise ConfigError(f"inconsistent node size: co-location splits use {sorted(sums)} cores")
            cores_from_pairs = int(sums[0])
            wsum = (pairs["ways_a"] + pairs["ways_b"]).dropna().unique()
            if len(wsum) > 1:
                raise ConfigError(f"inconsistent node size: co-location splits use {sorted(wsum)} LLC ways")
            ways_from_pairs = int(wsum[0]) if len(wsum) else None
        max_workers = int(self._scal["workers"].max())
        cores = node_cores if node_cores is not None else (cores_from_pairs or max_workers)
        if cores_from_pairs is not None and cores_from_pairs != cores:
            raise ConfigError(
                f"inconsistent node size: config says {cores} cores, co-location splits use "
                f"{cores_from_pairs}"
            )
        if max_workers > cores:
            raise ConfigError(
                f"inconsistent node size: scalability has {max_workers} workers on a {cores}-core node"
            )
        ways = llc_ways if llc_ways is not None else ways_from_pairs
        if ways_from_pairs is not None and ways != ways_from_pairs:
            raise ConfigError(
                f"inconsistent node size: config says {ways} LLC ways, splits use {ways_from_pairs}"
            )
        self.node = NodeSize(int(cores), None if ways is None else int(ways))
        self._alone = {m: self._best(m) for m in self.models}
        self._curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._sla = {m: float(v) for m, v in self._scal.groupby("model")["sla_ms"].first().items()}
        self._pairs = (
            self._canonical_pairs(pairs) if pairs is not None and len(pairs) else self._empty_pairs()
        )
        self._split_cache: dict[tuple[str, str], list[ProfiledSplit]] = {}
        self.memory = None
        if memory is not None:
            _require_columns(memory, MEMORY_COLUMNS, "memory")
            self._check_models(memory["model"], "memory")
            self.memory = memory.copy()

    # ---------------------------------------------------------------- validation helpers
    def _check_models(self, names: Iterable[str], table: str) -> None:
        unknown = sorted(set(map(str, names)) - set(self.models))
        if unknown:
            raise ConfigError(
                f"{table} table names model(s) {', '.join(unknown)} that have no isolated profile; "
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
            {c: pd.Series(dtype=float) for c in PAIR_COLUMNS} | {"source": pd.Series(dtype=str)}
        )

    def _canonical_pairs(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """Orient every row with ``model_a < model_b``, average repeats, drop self-pairs, add ``source``."""
        p = pairs.copy()
        p["model_a"], p["model_b"] = p["model_a"].astype(str), p["model_b"].astype(str)
        self._check_models(pd.concat([p["model_a"], p["model_b"]]), "co-location")
        p = p[p["model_a"] != p["model_b"]]
        swap = p["model_a"] > p["model_b"]
        for x in ("model", "cores", "ways", "qps_star"):
            a, b = f"{x}_a", f"{x}_b"
            p.loc[swap, [a, b]] = p.loc[swap, [b, a]].to_numpy()
        for c in ("qps_star_a", "qps_star_b"):
            p[c] = pd.to_numeric(p[c], errors="coerce").fillna(0.0)
        if (p[["qps_star_a", "qps_star_b"]] < 0).any().any():
            raise ConfigError("co-location table has negative qps_star")
        if "source" not in p.columns:
            p["source"] = "measured"
        keys = ["model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b"]
        p = p.groupby(keys, as_index=False, dropna=False).agg(
            qps_star_a=("qps_star_a", "mean"), qps_star_b=("qps_star_b", "mean"), source=("source", "first")
        )
        return p[list(PAIR_COLUMNS) + ["source"]].reset_index(drop=True)

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
    @property
    def pairs(self) -> pd.DataFrame:
        """The canonical co-location table (``model_a < model_b``, ``source`` = measured | predicted)."""
        return self._pairs

    def has_pair(self, a: str, b: str, source: str | None = None) -> bool:
        lo, hi = sorted((a, b))
        p = self._pairs
        sel = (p["model_a"] == lo) & (p["model_b"] == hi)
        if source is not None:
            sel &= p["source"] == source
        return bool(sel.any())

    def splits(self, a: str, b: str) -> list[ProfiledSplit]:
        """Every profiled split of the node between ``a`` and ``b``, oriented so that ``cores_a`` is a's."""
        if (a, b) in self._split_cache:
            return self._split_cache[(a, b)]
        self.check_models([a, b])
        if a == b:
            raise ConfigError(f"cannot co-locate model '{a}' with itself")
        lo, hi = sorted((a, b))
        p = self._pairs[(self._pairs["model_a"] == lo) & (self._pairs["model_b"] == hi)]
        if p.empty:
            raise ConfigError(
                f"no co-location profile for pair ({a}, {b}); profile it or fill it in with the "
                "predictor (Profiles.with_predicted)"
            )
        flip = lo != a
        alone = (self.qps_alone(a), self.qps_alone(b))
        out = []
        for r in p.itertuples(index=False):
            ca, cb, wa, wb, qa, qb = (
                r.cores_a,
                r.cores_b,
                _ways(r.ways_a),
                _ways(r.ways_b),
                r.qps_star_a,
                r.qps_star_b,
            )
            if flip:
                ca, cb, wa, wb, qa, qb = cb, ca, wb, wa, qb, qa
            out.append(ProfiledSplit(int(ca), int(cb), wa, wb, float(qa), float(qb), emu((qa, qb), alone), r.source))
        self._split_cache[(a, b)] = out
        return out

    def best_split(
        self, a: str, b: str, demand_qps: Mapping[str, float] | None = None, ways: str = "any"
    ) -> ProfiledSplit:
        """The split a profile-guided planner picks.

        Without demand: highest EMU among splits where both tenants sustain some load (QPS* > 0).
        With demand ``{a: d_a, b: d_b}``: highest EMU among splits meeting it (``QPS*_i ≥ d_i``); if none
        does, the split with most headroom, ``max min_i QPS*_i / d_i`` (:meth:`split_for_load`).
        ``ways``: "any", "shared" (unpartitioned LLC only) or "partitioned".
        """
        cand = [s for s in self._filter_ways(self.splits(a, b), ways) if s.qps_a > 0 and s.qps_b > 0]
        if not cand:
            raise ConfigError(f"pair ({a}, {b}) has no split where both tenants meet their SLA")
        if demand_qps is not None:
            da, db = float(demand_qps.get(a, 0.0)), float(demand_qps.get(b, 0.0))
            ok = [s for s in cand if s.qps_a >= da and s.qps_b >= db]
            if not ok:
                return self.split_for_load(a, b, da, db, ways=ways)
            cand = ok
        return max(cand, key=lambda s: (round(s.emu, 12), -abs(s.cores_a - s.cores_b), s.cores_a))

    def split_for_load(
        self,
        a: str,
        b: str,
        load_a: float,
        load_b: float,
        ways: str = "any",
        near: tuple[int, int | None] | None = None,
    ) -> ProfiledSplit:
        """The split with the most headroom for the offered loads: ``argmax min(QPS*_a/load_a, QPS*_b/load_b)``;
        ties broken by EMU, then by closeness to ``near`` = (cores_a, ways_a) (the current allocation)."""
        eps = 1e-9
        cand = self._filter_ways(self.splits(a, b), ways)

        def key(s: ProfiledSplit):
            head = min(s.qps_a / max(load_a, eps), s.qps_b / max(load_b, eps))
            dist = 0 if near is None else abs(s.cores_a - near[0]) + abs((s.ways_a or 0) - (near[1] or 0))
            return (round(head, 9), round(s.emu, 9), -dist)

        return max(cand, key=key)

    def even_split(self, a: str, b: str) -> ProfiledSplit:
        """Cores split evenly (a gets the extra core if odd), LLC shared; the nearest profiled core split
        if that exact one is missing, and an even ways split if only partitioned rows exist."""
        target = (self.node.cores + 1) // 2
        cand = self._filter_ways(self.splits(a, b), "shared") or self.splits(a, b)
        half = (self.node.llc_ways or 0) / 2
        return min(cand, key=lambda s: (abs(s.cores_a - target), abs((s.ways_a or half) - half)))

    def nearest_split(self, a: str, b: str, cores_a: int, ways_a: int | None = None) -> ProfiledSplit:
        """The profiled split with ``cores_a`` cores (and ``ways_a`` LLC ways, None = shared LLC) for a, or
        the
        nearest one (cores first, then shared/partitioned, then ways) when that exact split is missing."""
        return min(
            self.splits(a, b),
            key=lambda s: (
                abs(s.cores_a - cores_a) * 100
                + (0 if (s.ways_a is None) == (ways_a is None) else 50)
                + abs((s.ways_a or 0) - (ways_a or 0))
            ),
        )

    def capacity(self, a: str, b: str, cores_a: int, ways_a: int | None = None) -> tuple[float, float]:
        """(QPS*_a, QPS*_b) of a and b sharing the node, a holding ``cores_a`` cores (nearest_split)."""
        s = self.nearest_split(a, b, cores_a, ways_a)
        return s.qps_a, s.qps_b

    @staticmethod
    def _filter_ways(splits: list[ProfiledSplit], ways: str) -> list[ProfiledSplit]:
        if ways == "shared":
            return [s for s in splits if s.ways_a is None]
        if ways == "partitioned":
            return [s for s in splits if s.ways_a is not None]
        if ways != "any":
            raise ConfigError(f"ways must be any, shared or partitioned, got {ways!r}")
        return splits

    def with_pairs(
        self, extra: pd.DataFrame, source: str = "predicted", keep_measured: bool = True
    ) -> Profiles:
        """A copy whose co-location table holds ``extra`` rows (e.g. predictions, tagged ``source``) for every
        pair without a measured row (``keep_measured``), or in place of all rows (``keep_measured=False``)."""
        extra = extra.copy()
        extra["source"] = source
        measured = self._pairs[self._pairs["source"] == "measured"] if keep_measured else self._empty_pairs()
        have = set(zip(measured["model_a"], measured["model_b"]))
        lo_hi = [tuple(sorted((str(a), str(b)))) for a, b in zip(extra["model_a"], extra["model_b"])]
        rows = extra[[k not in have for k in lo_hi]]
        new = Profiles.__new__(Profiles)
        new.__dict__.update(self.__dict__)
        new._split_cache = {}
        new._pairs = pd.concat(
            [
                df
                for df in (measured, self._canonical_pairs(rows) if len(rows) else None)
                if df is not None and len(df)
            ]
            or [self._empty_pairs()],
            ignore_index=True,
        )
        return new

    @classmethod
    def from_files(
        cls, scalability, pairs=None, memory=None, node_cores: int | None = None, llc_ways: int | None = None
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

        return cls(read(scalability), read(pairs), read(memory), node_cores, llc_ways)
