"""Pure statistics of interference profiles (numpy and scipy only; no node, no I/O).

- :func:`inflation`: how much a statistic (mean or p95) of sub-batch service times grows from a baseline
  sample to a sample taken next to an antagonist, *stratified by sub-batch size* (every sample is weighted so
  that each size has the baseline's share: a point whose closed loop happened to run more large sub-batches is
  not counted as slower), with a *cluster bootstrap* interval (queries are resampled, not sub-batches: the
  sub-batches of one query ran back to back and are not independent);
- :func:`rate_ratio`: a reporter's slowdown, ``median(rate alone) / median(rate loaded)``, with a bootstrap
  interval over its rate samples;
- :class:`Curve`, :func:`invert`: a calibration curve (reporter slowdown vs antagonist intensity), made
  monotone (isotonic regression), and its inverse: the *equivalent intensity* of a slowdown, with linear
  extrapolation past the last intensity (flagged);
- :func:`interp_extrapolate`: piecewise-linear interpolation with linear extrapolation past the last point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

STATISTICS = ("mean", "p95")
#: an equivalent intensity is extrapolated at most to this multiple of the last calibrated intensity: past it the
#: number says more about a nearly flat calibration curve than about the model (run 35: a cache curve that rose
#: 4% over the whole range turned one noisy reporter slowdown of 1.32 into an intensity of 30)
MAX_EXTRAPOLATION = 2.0


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval (``lo <= value <= hi`` unless NaN); ``extrapolated``: the value lies
    past the last measured point of what it was read from; ``note``: why a value is NaN, or a caveat."""

    value: float
    lo: float
    hi: float
    extrapolated: bool = False
    note: str = ""

    @classmethod
    def missing(cls, note: str) -> "Estimate":
        return cls(math.nan, math.nan, math.nan, False, note)


@dataclass(frozen=True)
class Samples:
    """Sub-batch service times of one measurement point: each sample's time, sub-batch size and query (the
    cluster the bootstrap resamples)."""

    service_ms: np.ndarray
    items: np.ndarray
    query: np.ndarray

    @classmethod
    def of(cls, service_ms, items, query) -> "Samples":
        return cls(np.asarray(service_ms, float), np.asarray(items, np.int64), np.asarray(query, np.int64))

    def __len__(self) -> int:
        return int(self.service_ms.size)

    def concat(self, other: "Samples") -> "Samples":
        """Both samples pooled (query ids of ``other`` shifted so the clusters stay distinct)."""
        shift = int(self.query.max()) + 1 if len(self) else 0
        return Samples(np.concatenate([self.service_ms, other.service_ms]),
                       np.concatenate([self.items, other.items]),
                       np.concatenate([self.query, other.query + shift]))


def shares(base: Samples) -> dict[int, float]:
    """Each sub-batch size's share of the baseline's sub-batches."""
    sizes, counts = np.unique(base.items, return_counts=True)
    return {int(s): float(c) / counts.sum() for s, c in zip(sizes, counts)}


def _statistic(values: np.ndarray, weights: np.ndarray, statistic: str) -> float:
    keep = weights > 0
    if not keep.any():
        return math.nan
    if statistic == "mean":
        return float(np.average(values[keep], weights=weights[keep]))
    if statistic == "p95":
        return float(np.quantile(values[keep], 0.95, weights=weights[keep], method="inverted_cdf"))
    raise ValueError(f"unknown statistic {statistic!r}; known: {', '.join(STATISTICS)}")


class _Resampler:
    """Stratified statistic of one sample under query multiplicities (1 for the sample itself)."""

    def __init__(self, s: Samples, share: dict[int, float]):
        keep = np.isin(s.items, list(share))
        self.values = s.service_ms[keep]
        sizes = s.items[keep]
        self.size_idx = np.searchsorted(np.array(sorted(share)), sizes)
        self.share = np.array([share[k] for k in sorted(share)])
        _, self.cluster = np.unique(s.query[keep], return_inverse=True)
        self.n_clusters = int(self.cluster.max()) + 1 if self.values.size else 0

    def stat(self, statistic: str, mult: np.ndarray | None = None) -> float:
        if not self.values.size:
            return math.nan
        m = np.ones(self.values.size) if mult is None else mult[self.cluster].astype(float)
        per_size = np.bincount(self.size_idx, weights=m, minlength=self.share.size)
        present = per_size > 0
        if not present.any():
            return math.nan
        share = np.where(present, self.share, 0.0)
        share = share / share.sum()  # sizes absent from this (re)sample: the others keep their shares
        w = m * share[self.size_idx] / np.where(per_size > 0, per_size, 1.0)[self.size_idx]
        return _statistic(self.values, w, statistic)

    def stats(self, statistic: str, mults: np.ndarray) -> np.ndarray:
        """:meth:`stat` under each row of query multiplicities ``mults`` (replicates x clusters) at once: the
        same weights, one sort of the values for every replicate. :meth:`stat` stays the plain one-replicate
        reference (numpy's weighted statistics) that tests hold this to."""
        r = mults.shape[0]
        if not self.values.size:
            return np.full(r, math.nan)
        m = mults[:, self.cluster].astype(float)                                   # (r, n)
        per_size = m @ (self.size_idx[:, None] == np.arange(self.share.size)).astype(float)  # integer counts: exact
        present = per_size > 0
        share = np.where(present, self.share, 0.0)
        total = share.sum(axis=1, keepdims=True)
        share = share / np.where(total > 0, total, 1.0)
        w = m * share[:, self.size_idx] / np.where(present, per_size, 1.0)[:, self.size_idx]
        wsum = w.sum(axis=1)
        out = np.full(r, math.nan)
        ok = wsum > 0  # some size present with a positive share
        if statistic == "mean":
            out[ok] = (w[ok] * self.values).sum(axis=1) / wsum[ok]
        elif statistic == "p95":  # numpy's weighted inverted_cdf: the first sorted value whose CDF reaches 0.95
            order = np.argsort(self.values, kind="stable")
            cdf = np.cumsum(w[:, order], axis=1)
            cdf /= np.where(cdf[:, -1:] > 0, cdf[:, -1:], 1.0)
            idx = np.minimum((cdf < 0.95).sum(axis=1), self.values.size - 1)
            out[ok] = self.values[order][idx][ok]
        else:
            raise ValueError(f"unknown statistic {statistic!r}; known: {', '.join(STATISTICS)}")
        return out

    def multiplicities(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.multinomial(self.n_clusters, np.full(self.n_clusters, 1.0 / self.n_clusters), size=n)


def _interval(reps: np.ndarray, confidence: float) -> tuple[float, float]:
    reps = reps[np.isfinite(reps)]
    if reps.size < 2:
        return math.nan, math.nan
    a = (1.0 - confidence) / 2.0
    return float(np.quantile(reps, a)), float(np.quantile(reps, 1.0 - a))


def stratified(s: Samples, statistic: str = "mean", share: dict[int, float] | None = None) -> float:
    """``statistic`` of ``s`` with each sub-batch size weighted to ``share`` (default: its own shares)."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; known: {', '.join(STATISTICS)}")
    return _Resampler(s, share or shares(s)).stat(statistic)


def inflation(base: Samples, point: Samples, statistic: str = "mean", *, replicates: int = 200,
              confidence: float = 0.95, rng: np.random.Generator | None = None,
              share: dict[int, float] | None = None) -> Estimate:
    """``statistic(point) / statistic(base)``, both stratified to the baseline's sub-batch size shares (or
    ``share``), with a percentile interval from ``replicates`` cluster-bootstrap replicates of each sample."""
    if statistic not in STATISTICS:
        raise ValueError(f"unknown statistic {statistic!r}; known: {', '.join(STATISTICS)}")
    if not len(base) or not len(point):
        return Estimate.missing("no samples")
    share = share or shares(base)
    common = {k: v for k, v in share.items() if k in set(point.items.tolist())}
    if not common:
        return Estimate.missing("no sub-batch size in common with the baseline")
    rb, rp = _Resampler(base, common), _Resampler(point, common)
    value = rp.stat(statistic) / rb.stat(statistic)
    rng = rng or np.random.default_rng(0)
    mb, mp = rb.multiplicities(rng, replicates), rp.multiplicities(rng, replicates)
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = rp.stats(statistic, mp) / rb.stats(statistic, mb)
    lo, hi = _interval(reps, confidence)
    return Estimate(float(value), min(lo, value), max(hi, value))


def rise(alone0: np.ndarray, loaded0: np.ndarray, alone1: np.ndarray, loaded1: np.ndarray, *,
         replicates: int = 200, confidence: float = 0.95, rng: np.random.Generator | None = None) -> Estimate:
    """How much more a reporter slows down at one point than at another: ``slowdown1 / slowdown0``, each a
    :func:`rate_ratio` of its own alone and loaded rate samples, with a bootstrap interval resampling all four
    sets (a test that the curve rises: the interval lies above 1)."""
    sets = [np.asarray(a, float) for a in (alone0, loaded0, alone1, loaded1)]
    sets = [a[np.isfinite(a)] for a in sets]
    if any(not a.size for a in sets) or np.median(sets[1]) <= 0 or np.median(sets[3]) <= 0:
        return Estimate.missing("no reporter rate samples")
    rng = rng or np.random.default_rng(0)

    def med(a: np.ndarray, boot: bool) -> np.ndarray:
        return np.median(a[rng.integers(0, a.size, size=(replicates, a.size))], axis=1) if boot else np.median(a)

    a0, l0, a1, l1 = (med(a, False) for a in sets)
    value = float((a1 / l1) / (a0 / l0))
    a0, l0, a1, l1 = (med(a, True) for a in sets)
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = (a1 / l1) / (a0 / l0)
    lo, hi = _interval(reps, confidence)
    return Estimate(value, min(lo, value), max(hi, value))


def rate_ratio(alone: np.ndarray, loaded: np.ndarray, *, replicates: int = 200, confidence: float = 0.95,
               rng: np.random.Generator | None = None) -> Estimate:
    """A reporter's slowdown ``median(alone) / median(loaded)`` of its rate samples (> 1: the co-runner slowed
    it), with a percentile interval from resampling each set. Medians, not means: on a shared machine a
    reporter sample now and then loses its cache to someone else's burst, not the co-runner's doing."""
    alone, loaded = np.asarray(alone, float), np.asarray(loaded, float)
    alone, loaded = alone[np.isfinite(alone)], loaded[np.isfinite(loaded)]
    if not alone.size or not loaded.size or np.median(loaded) <= 0:
        return Estimate.missing("no reporter rate samples")
    value = float(np.median(alone) / np.median(loaded))
    rng = rng or np.random.default_rng(0)
    ia = rng.integers(0, alone.size, size=(replicates, alone.size))
    il = rng.integers(0, loaded.size, size=(replicates, loaded.size))
    den = np.median(loaded[il], axis=1)
    reps = np.where(den > 0, np.median(alone[ia], axis=1) / np.where(den > 0, den, 1.0), np.nan)
    lo, hi = _interval(reps, confidence)
    return Estimate(value, min(lo, value), max(hi, value))


# ---------------------------------------------------------------------------------------------- curves
def interp_extrapolate(x: float, xp: np.ndarray, fp: np.ndarray) -> tuple[float, bool]:
    """``fp`` at ``x``, piecewise linear through ``(xp, fp)`` (``xp`` increasing), clamped to ``fp[0]`` below
    ``xp[0]`` and extrapolated linearly from the last segment past ``xp[-1]``; also whether it
    extrapolated."""
    xp, fp = np.asarray(xp, float), np.asarray(fp, float)
    if xp.size == 1:
        return float(fp[0]), bool(x > xp[0])
    if x <= xp[-1]:
        return float(np.interp(x, xp, fp)), False
    slope = (fp[-1] - fp[-2]) / (xp[-1] - xp[-2])
    return float(fp[-1] + slope * (x - xp[-1])), True


def monotone(y: np.ndarray) -> np.ndarray:
    """The closest non-decreasing sequence to ``y`` in least squares (isotonic regression)."""
    from scipy.optimize import isotonic_regression

    y = np.asarray(y, float)
    return isotonic_regression(y, increasing=True).x if y.size > 1 else y


@dataclass(frozen=True)
class Curve:
    """A calibration curve of one kind: reporter slowdown (with interval) at each antagonist intensity."""

    kind: str
    intensity: np.ndarray
    slowdown: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    verdict: tuple[bool, str] | None = None

    def usable(self) -> tuple[bool, str]:
        """Whether the reporter measurably sees the antagonist: ``verdict`` where the calibration decided it
        from its samples (:func:`rise`), else whether the lower bound of the slowdown at the highest intensity
        lies above the upper bound at the lowest (stricter). Otherwise ``(False, why)``."""
        if self.verdict is not None:
            return self.verdict
        if self.intensity.size < 2:
            return False, f"the {self.kind} calibration has {self.intensity.size} intensity (needs >= 2)"
        if not (np.isfinite(self.lo[-1]) and np.isfinite(self.hi[0])) or self.lo[-1] <= self.hi[0]:
            return False, (f"not observable on this machine: the {self.kind} reporter slows down "
                           f"{self.slowdown[-1]:.3g}x [{self.lo[-1]:.3g}, {self.hi[-1]:.3g}] next to the "
                           f"antagonist at intensity {self.intensity[-1]:g}, not more than at "
                           f"{self.intensity[0]:g} ({self.slowdown[0]:.3g}x "
                           f"[{self.lo[0]:.3g}, {self.hi[0]:.3g}])")
        return True, ""


def invert(intensity: np.ndarray, slowdown: np.ndarray, s: float) -> tuple[float, bool]:
    """The smallest intensity at which the monotone version of the curve reaches slowdown ``s`` (0 below the
    curve's start; past its end, linear extrapolation from the last rising segment, else from the chord).
    Returns ``(intensity, extrapolated)``; NaN when the curve never rises or ``s`` is NaN."""
    x = np.asarray(intensity, float)
    y = monotone(slowdown)
    if not math.isfinite(s) or x.size < 2 or y[-1] <= y[0]:
        return math.nan, False
    if s <= y[0]:
        return float(x[0]), False
    if s <= y[-1]:
        j = int(np.argmax(y >= s))
        return float(x[j - 1] + (s - y[j - 1]) / (y[j] - y[j - 1]) * (x[j] - x[j - 1])), False
    rising = np.nonzero(np.diff(y) > 0)[0]
    j = int(rising[-1])
    slope = (y[j + 1] - y[j]) / (x[j + 1] - x[j])
    if j + 1 != x.size - 1:  # the curve is flat at its top: use the chord, not an arbitrary steep segment
        slope = (y[-1] - y[0]) / (x[-1] - x[0])
    return float(x[-1] + (s - y[-1]) / slope), True


def equivalent(curve: Curve, slowdown: Estimate) -> Estimate:
    """The antagonist intensity that slows the reporter as much as ``slowdown``: the curve's inverse at the
    point estimate; the interval combines both uncertainties (the slowdown's lower bound through the curve's
    upper bound, its upper bound through the curve's lower bound)."""
    ok, why = curve.usable()
    if not ok:
        return Estimate.missing(why)
    if not math.isfinite(slowdown.value):
        return Estimate.missing(slowdown.note or "no reporter slowdown")
    x, extra = invert(curve.intensity, curve.slowdown, slowdown.value)
    lo, _ = invert(curve.intensity, curve.hi, slowdown.lo)
    hi, extra_hi = invert(curve.intensity, curve.lo, slowdown.hi)
    lo = x if not math.isfinite(lo) else min(lo, x)
    hi = x if not math.isfinite(hi) else max(hi, x)
    top = float(curve.intensity[-1])
    cap = top * MAX_EXTRAPOLATION  # a slowdown the calibration cannot place: at most its range, twice over
    last = f"the last calibrated intensity {top:g}"
    if extra and x > cap:
        note, x = f"past {last}: {x:.3g} by linear extrapolation, capped at {cap:g}", cap
    else:
        note = f"past {last}: extrapolated linearly" if extra else f"upper bound past {last}" if extra_hi else ""
    return Estimate(x, min(lo, x), min(hi, cap), extra, note)
