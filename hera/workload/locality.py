"""Embedding-row reuse within a batch: Meta's published statistics, our measurement, and calibration.

Source: ``datasets/meta-locality-2021/locality_stats.txt`` (:func:`hera.paths.meta_locality_dir`), a copy of
facebookresearch/dlrm_datasets ``embedding_bag/2021/locality_stats.txt`` (MIT licence, beside it). For each of
17 synthetic batches (65 536 samples over 856 tables, shaped like Meta's production ads models) it gives

* the **reuse histogram over unique rows** ("Histogram of col sizes"): the fraction of the batch's unique
  (table, row) pairs whose reuse factor — how many of the batch's lookups hit that row — lies in the bins
  ``(0, 1]``, ``(1, 2]``, ``(2, 4]`` … ``(16384, 32768]``, ``(32768+``; and
* the **lookup-share histogram** ("Ratio of index distribution"): the fraction of all lookups that hit
  rows of each reuse factor.

:func:`reuse_histogram` measures both for our ids (per table ``np.unique(..., return_counts=True)``, pooled
over tables, same bins). Distances are **total-variation distances** ``TV(p, q) = ½ Σ|p_i − q_i|`` (0 =
identical, 1 = disjoint), reported separately for the row histogram (the headline number) and the
lookup-share histogram. For scale: TV between Meta's own first batch and the other 16 is 0.052 (rows)
and 0.055 (lookups).

:func:`calibrate` fits :data:`hera.workload.sparse.PRODUCTION_PROFILE` (run once offline; the result is
stored as constants). Method: with ``n`` lookups per table per batch, row ``r`` of popularity ``p_r`` is
reused ``Poisson(n·p_r)`` times (the binomial limit), so both expected histograms follow analytically from
the lookup-share curve ``F`` (:class:`hera.workload.sparse.LookupProfile`). Knots of ``F`` are placed at the
ranks where Meta's reuse factor crosses 1, 2, 4, … 32768 — estimated from the published histograms at the
reference batch (``rows with reuse > 2^k`` and ``share of lookups on them``, which also gives the initial
``F``) — plus a few knots in the tail of rows that are rarely or never touched; then ``log F`` at the knots
is optimised (L-BFGS-B) to minimise the squared error of both expected histograms against the mean of
Meta's 17 batches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from hera.errors import ConfigError, HeraError, NotBuiltError
from hera.paths import meta_locality_dir
from hera.workload import sparse

STATS_FILE = "locality_stats.txt"
#: Upper edges of the reuse bins (a reuse factor c falls in bin k when EDGES[k-1] < c <= EDGES[k]);
#: the last bin, ``(32768+``, holds everything above 32768.
UPPER_EDGES = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768])
N_BINS = UPPER_EDGES.size + 1
#: The labels as Meta's file writes them (checked against the file when it is read).
BIN_LABELS: tuple[str, ...] = tuple(
    [f"({lo}, {hi}]" for lo, hi in zip(np.r_[0, UPPER_EDGES[:-1]], UPPER_EDGES)] + ["(32768+"]
)


def stats_path() -> Path:
    """Where Meta's statistics live: ``datasets/meta-locality-2021/locality_stats.txt`` (tracked)."""
    return meta_locality_dir() / STATS_FILE


# --------------------------------------------------------------------------------------------- parsing
_HEADERS = {
    "Histogram of col sizes:": "row_fraction",
    "Ratio of index distribution at different column sizes:": "lookup_fraction",
}
_BIN_LINE = re.compile(r"^(\(\d+(?:, \d+\]|\+)):\s*([0-9.]+)\s*$")


def read_locality_stats(path: str | Path | None = None) -> pd.DataFrame:
    """Parse Meta's file into a tidy table, one row per (batch, bin).

    Columns: ``batch`` (file name in the stats, e.g. ``fbgemm_t856_bs65536_0.pt``), ``batch_index``,
    ``batch_size``, ``n_indices``, ``n_unique``, ``avg_reuse``, ``bin_index``, ``bin``, ``bin_lo``,
    ``bin_hi`` (``inf`` for the last bin), ``row_fraction``, ``lookup_fraction``.
    Raises :class:`NotBuiltError` if the file is missing and :class:`HeraError` naming the line if malformed.
    """
    path = Path(path) if path is not None else stats_path()
    if not path.is_file():
        raise NotBuiltError(f"Meta locality statistics not found at {path} (tracked in the repository under "
                            "datasets/meta-locality-2021/; restore it with git)")
    batches: list[dict[str, Any]] = []
    cur: dict[str, Any] | None = None
    section: str | None = None
    for lineno, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()

        def bad(msg: str) -> HeraError:
            return HeraError(f"malformed locality statistics {path} line {lineno}: {msg}")

        if not line:
            section = None
            continue
        if line.endswith(".pt"):
            cur = {"batch": line, "row_fraction": [], "lookup_fraction": [], "labels": {"row_fraction": [],
                                                                                        "lookup_fraction": []}}
            batches.append(cur)
            section = None
            continue
        if cur is None:
            raise bad("data before the first batch name (*.pt)")
        if line in _HEADERS:
            section = _HEADERS[line]
            continue
        m = re.match(r"Locality stats after processing (\d+) batches of size (\d+)", line)
        if m:
            cur["batch_size"] = int(m.group(2))
            continue
        for key, name, conv in (("Avg # of indices:", "n_indices", float), ("Avg # of unique cols:", "n_unique", float),
                                ("Avg col size:", "avg_reuse", float)):
            if line.startswith(key):
                try:
                    cur[name] = conv(line[len(key):])
                except ValueError:
                    raise bad(f"{key} is not a number") from None
                break
        else:
            m = _BIN_LINE.match(line)
            if m:
                if section is None:
                    raise bad("histogram bin outside a histogram section")
                cur["labels"][section].append(m.group(1))
                cur[section].append(float(m.group(2)))
                if len(cur[section]) == N_BINS:
                    section = None
            elif line.startswith("[") or line.startswith("['"):
                section = None  # the edges list and the CDF list that follow each histogram
            else:
                raise bad(f"unexpected text {line[:60]!r}")
    if not batches:
        raise HeraError(f"malformed locality statistics {path}: no batches found")
    rows = []
    for i, b in enumerate(batches):
        for sec in ("row_fraction", "lookup_fraction"):
            if tuple(b["labels"][sec]) != BIN_LABELS:
                raise HeraError(f"malformed locality statistics {path}: batch {b['batch']} {sec} bins are "
                                f"{b['labels'][sec]}, expected the {N_BINS} bins {BIN_LABELS[0]} .. {BIN_LABELS[-1]}")
        for key in ("batch_size", "n_indices", "n_unique", "avg_reuse"):
            if key not in b:
                raise HeraError(f"malformed locality statistics {path}: batch {b['batch']} lacks {key}")
        lo = np.r_[0, UPPER_EDGES]
        hi = np.r_[UPPER_EDGES, np.inf]
        for k in range(N_BINS):
            rows.append({"batch": b["batch"], "batch_index": i, "batch_size": b["batch_size"],
                         "n_indices": b["n_indices"], "n_unique": b["n_unique"], "avg_reuse": b["avg_reuse"],
                         "bin_index": k, "bin": BIN_LABELS[k], "bin_lo": float(lo[k]), "bin_hi": float(hi[k]),
                         "row_fraction": b["row_fraction"][k], "lookup_fraction": b["lookup_fraction"][k]})
    return pd.DataFrame(rows)


def batch_summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per batch: ``batch, batch_size, n_indices, n_unique, avg_reuse``."""
    return df.groupby("batch_index", as_index=False).first()[
        ["batch_index", "batch", "batch_size", "n_indices", "n_unique", "avg_reuse"]]


@dataclass(frozen=True)
class ReuseHistogram:
    """Reuse histograms with :data:`BIN_LABELS`: ``rows`` (fraction of unique rows per bin) and ``lookups``
    (fraction of lookups per bin), both summing to 1; plus the counts they came from."""

    rows: np.ndarray
    lookups: np.ndarray
    n_unique: float
    n_lookups: float
    bins: tuple[str, ...] = BIN_LABELS
    source: str = ""

    @property
    def avg_reuse(self) -> float:
        return self.n_lookups / self.n_unique if self.n_unique else float("nan")

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"bin": list(self.bins), "row_fraction": self.rows, "lookup_fraction": self.lookups})


def published_reference(path: str | Path | None = None, batch: str | None = None) -> ReuseHistogram:
    """Meta's histograms: the mean over all batches in the file (renormalised; their 3-decimal rounding
    makes each sum 0.999–1.001), or one named ``batch``."""
    df = read_locality_stats(path)
    if batch is not None:
        if batch not in set(df["batch"]):
            raise ConfigError(f"no batch {batch!r} in the locality statistics; known: {', '.join(df['batch'].unique())}")
        df = df[df["batch"] == batch]
    g = df.groupby("bin_index")[["row_fraction", "lookup_fraction"]].mean().sort_index()
    rows = g["row_fraction"].to_numpy(float)
    look = g["lookup_fraction"].to_numpy(float)
    summ = batch_summary(df)
    return ReuseHistogram(rows / rows.sum(), look / look.sum(), float(summ["n_unique"].mean()),
                          float(summ["n_indices"].mean()), BIN_LABELS,
                          source=f"Meta 2021 {STATS_FILE} ({'mean of ' + str(len(summ)) + ' batches' if batch is None else batch})")


# --------------------------------------------------------------------------------------------- measuring
def bin_index(counts: np.ndarray) -> np.ndarray:
    """Bin of each reuse factor (``counts >= 1``): 0 for (0, 1], … 16 for (32768+."""
    return np.searchsorted(UPPER_EDGES, np.asarray(counts), side="left")


def reuse_histogram(ids_per_table: Iterable[np.ndarray], source: str = "") -> ReuseHistogram:
    """The reuse histograms of one batch: ``ids_per_table`` holds each table's ids in the batch
    (any shape; flattened). Reuse is counted per table and pooled over tables, as Meta's statistics."""
    row_counts = np.zeros(N_BINS, dtype=np.float64)
    look_counts = np.zeros(N_BINS, dtype=np.float64)
    for ids in ids_per_table:
        ids = np.asarray(ids).ravel()
        if ids.size == 0:
            continue
        _, counts = np.unique(ids, return_counts=True)
        b = bin_index(counts)
        row_counts += np.bincount(b, minlength=N_BINS)
        look_counts += np.bincount(b, weights=counts, minlength=N_BINS)
    n_unique, n_lookups = row_counts.sum(), look_counts.sum()
    if n_unique == 0:
        raise ConfigError("reuse histogram of an empty batch")
    return ReuseHistogram(row_counts / n_unique, look_counts / n_lookups, n_unique, n_lookups, BIN_LABELS, source)


def tv_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Total-variation distance ½ Σ|p_i − q_i| between two histograms (each renormalised to sum 1)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape:
        raise ConfigError(f"histograms of different lengths {p.size} and {q.size}")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def compare(hist: ReuseHistogram, ref: ReuseHistogram) -> dict[str, float]:
    """``tv_rows`` and ``tv_lookups`` of ``hist`` against ``ref``, plus both mean reuse factors."""
    return {"tv_rows": tv_distance(hist.rows, ref.rows), "tv_lookups": tv_distance(hist.lookups, ref.lookups),
            "avg_reuse": hist.avg_reuse, "avg_reuse_ref": ref.avg_reuse}


def simulate_batch(generator, batch: int, tables: int, rows: int, lookups: int, seed: int = 0) -> ReuseHistogram:
    """Reuse histogram of one synthetic batch: ``tables`` tables of ``rows`` rows, ``batch`` samples with
    ``lookups`` ids each per table, drawn by ``generator`` (one independent seed per table)."""
    for name, v in (("batch", batch), ("tables", tables), ("rows", rows), ("lookups", lookups)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"reuse histogram: {name} must be an integer >= 1, got {v!r}")
    seqs = np.random.SeedSequence(seed).spawn(tables)

    def per_table():
        for s in seqs:
            rng = np.random.default_rng(s)
            yield generator.generate(rows, batch * lookups, rng)

    kind = getattr(generator, "kind", type(generator).__name__)
    return reuse_histogram(per_table(), source=f"{kind}: batch={batch} tables={tables} rows={rows} "
                                                f"lookups={lookups} seed={seed}")


# --------------------------------------------------------------------------------------------- analytic model
def _rank_groups(rows: int, exact: int = 1024, groups: int = 800) -> np.ndarray:
    """Rank boundaries: every rank below ``exact``, then ``groups`` geometric groups up to ``rows``."""
    b = np.arange(min(exact, rows) + 1, dtype=np.float64)
    if rows > exact:
        b = np.unique(np.concatenate([b, np.round(np.geomspace(exact, rows, groups))]))
    return b


def _poisson_cdf(k: np.ndarray, lam: np.ndarray) -> np.ndarray:
    from scipy.special import pdtr

    k = np.asarray(k, dtype=np.float64)
    out = pdtr(np.maximum(k, 0.0), lam)
    return np.where(k < 0, 0.0, out)


def expected_histogram(profile: sparse.LookupProfile, rows: int, n_lookups: int,
                       bounds: np.ndarray | None = None) -> ReuseHistogram:
    """Expected reuse histograms of one table of ``rows`` rows after ``n_lookups`` i.i.d. draws from
    ``profile`` (row r is reused Poisson(n·p_r) times; ranks are grouped geometrically above 1024)."""
    b = _rank_groups(rows) if bounds is None else bounds
    w = np.diff(b)
    lam = n_lookups * np.diff(profile.share(b / rows)) / w
    lam = np.maximum(lam, 1e-300)
    edges = np.r_[0, UPPER_EDGES].astype(np.float64)
    cdf = _poisson_cdf(edges[None, :], lam[:, None])
    pb = np.concatenate([np.diff(cdf, axis=1), 1.0 - cdf[:, -1:]], axis=1)
    cdf1 = _poisson_cdf(edges[None, :] - 1.0, lam[:, None])
    pl = np.concatenate([np.diff(cdf1, axis=1), 1.0 - cdf1[:, -1:]], axis=1) * lam[:, None]
    r = (w[:, None] * pb).sum(0)
    look = (w[:, None] * pl).sum(0)
    return ReuseHistogram(r / r.sum(), look / look.sum(), float(r.sum()), float(look.sum()), BIN_LABELS,
                          source=f"expected: rows={rows} lookups={n_lookups}")


@dataclass
class Calibration:
    """Result of :func:`calibrate`: the fitted profile knots and how close the expected histograms are."""

    pairs: list[tuple[float, float]]
    tv_rows: float
    tv_lookups: float
    tv_rows_initial: float
    tv_lookups_initial: float
    batch: int
    lookups: int
    rows: int
    iterations: int
    details: dict[str, Any] = field(default_factory=dict)

    def profile(self) -> sparse.LookupProfile:
        return sparse.LookupProfile.from_pairs(self.pairs)

    def as_python(self) -> str:
        """The knots as a Python literal for :data:`hera.workload.sparse.PRODUCTION_PROFILE`."""
        body = "\n".join(f"    ({x:.4f}, {f:.5f})," for x, f in self.pairs)
        return f"PRODUCTION_PROFILE = (\n{body}\n)"


def _initial_knots(ref: ReuseHistogram, n: int, rows: int, tail_knots: int) -> tuple[np.ndarray, np.ndarray]:
    """Knot ranks (normalised) and initial log2 F from the published histograms (see module docstring)."""
    unique = n / ref.avg_reuse
    lo = np.r_[0, UPPER_EDGES].astype(float)
    hi = np.r_[UPPER_EDGES, 2 * UPPER_EDGES[-1]].astype(float)
    typical = np.where(lo == 0, 1.0, np.sqrt(np.maximum(lo, 1) * hi))
    # Low bins: the published row fractions (3 decimals) are precise; high bins round to 0.000, so
    # estimate their rows from the lookup share: rows_k ≈ lookups_k · avg_reuse / typical reuse of bin k.
    est = ref.lookups * ref.avg_reuse / typical
    rows_frac = np.where(ref.rows >= 0.01, ref.rows, est)
    rows_frac = rows_frac / rows_frac.sum()
    n_above = unique * (1.0 - np.cumsum(rows_frac))[:-1]       # rows with reuse > UPPER_EDGES[k]
    f_above = (1.0 - np.cumsum(ref.lookups))[:-1]               # their share of lookups
    order = np.argsort(n_above)
    x_hot, f_hot = n_above[order] / rows, f_above[order]
    keep = np.r_[True, np.diff(x_hot) > 0] & (x_hot > 0)
    x_hot, f_hot = x_hot[keep], np.maximum.accumulate(np.maximum(f_hot[keep], 1e-9))
    x_tail = np.geomspace(unique / rows, 1.0, tail_knots + 2)[1:]
    f_tail = np.linspace(f_hot[-1], 1.0, tail_knots + 2)[1:]
    x = np.r_[x_hot, x_tail]
    f = np.r_[f_hot, f_tail]
    f = np.maximum.accumulate(f) * (1 + 1e-6 * np.arange(f.size))  # strictly increasing
    f = f / f[-1]
    return np.log2(x), np.log2(f)


def calibrate(ref: ReuseHistogram | None = None, *, batch: int = sparse.REF_BATCH,
              lookups: int = sparse.REF_LOOKUPS, rows: int = sparse.REF_ROWS, tail_knots: int = 4,
              maxiter: int = 400, weight_lookups: float = 1.0) -> Calibration:
    """Fit the production lookup profile to Meta's reuse statistics (see the module docstring).

    Offline, once (≈11 s on one core); store ``result.as_python()`` in
    :data:`hera.workload.sparse.PRODUCTION_PROFILE`.
    """
    from scipy import optimize

    ref = published_reference() if ref is None else ref
    n = int(batch) * int(lookups)
    lx, lf0 = _initial_knots(ref, n, int(rows), int(tail_knots))
    bounds = _rank_groups(int(rows))

    def unpack(theta: np.ndarray) -> sparse.LookupProfile:
        inc = np.exp(theta)
        lf = -np.r_[np.cumsum(inc[::-1])[::-1], 0.0]
        return sparse.LookupProfile(tuple(lx), tuple(lf))

    def hist(theta):
        return expected_histogram(unpack(theta), int(rows), n, bounds)

    def objective(theta: np.ndarray) -> float:
        h = hist(theta)
        return float(100.0 * (np.sum((h.rows - ref.rows) ** 2) + weight_lookups * np.sum((h.lookups - ref.lookups) ** 2)))

    theta0 = np.log(np.diff(lf0))
    h0 = hist(theta0)
    res = optimize.minimize(objective, theta0, method="L-BFGS-B", options={"maxiter": maxiter})
    prof = unpack(res.x)
    h = hist(res.x)
    pairs = [(float(a), float(b)) for a, b in zip(prof.log2_x, prof.log2_share)]
    return Calibration(pairs=pairs, tv_rows=tv_distance(h.rows, ref.rows), tv_lookups=tv_distance(h.lookups, ref.lookups),
                       tv_rows_initial=tv_distance(h0.rows, ref.rows),
                       tv_lookups_initial=tv_distance(h0.lookups, ref.lookups), batch=int(batch),
                       lookups=int(lookups), rows=int(rows), iterations=int(res.nit),
                       details={"objective": float(res.fun), "message": str(res.message), "source": ref.source})


def format_comparison(hist: ReuseHistogram, ref: ReuseHistogram) -> str:
    """A human-readable side-by-side table of two histograms with their TV distances."""
    lines = [f"{'reuse bin':>16}  {'rows (ours)':>11}  {'rows (Meta)':>11}  {'lookups (ours)':>14}  {'lookups (Meta)':>14}"]
    for k in range(N_BINS):
        lines.append(f"{hist.bins[k]:>16}  {hist.rows[k]:11.4f}  {ref.rows[k]:11.4f}  {hist.lookups[k]:14.4f}  "
                     f"{ref.lookups[k]:14.4f}")
    c = compare(hist, ref)
    lines.append(f"TV distance (rows) = {c['tv_rows']:.4f}; TV distance (lookup shares) = {c['tv_lookups']:.4f}; "
                 f"mean reuse {c['avg_reuse']:.2f} (Meta {c['avg_reuse_ref']:.2f})")
    return "\n".join(lines)
