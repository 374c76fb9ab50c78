"""Sparse ids: which embedding rows a query's lookups touch (docs/METHOD.md §4).

``make_generator(kind, **params)`` returns a generator with ``.generate(rows, size, rng) -> int64[size]``
(ids in ``[0, rows)``) and ``.sampler(rows, rng)`` (a per-table sampler whose row popularity stays fixed
across many ``.draw(size, rng)`` calls, used to write sample libraries chunk by chunk). Kinds:

``uniform``
    every row equally likely (DeepRecSys' default; pessimistic for caches).
``zipf``
    bounded Zipf: rank ``k`` (0-based) has probability ∝ ``(k+1)^-alpha`` over ``rows`` ranks; ranks are
    mapped to rows by a random permutation, so hot rows are scattered over the table. Sampling is by
    inverse CDF on precomputed cumulative weights (``rows <= 2**24``, cached per ``(rows, alpha)``) or
    by vectorised rejection-inversion (Hörmann & Derflinger 1996) for larger tables.
``production``
    calibrated against Meta's published reuse statistics (facebookresearch/dlrm_datasets,
    ``embedding_bag/2021/locality_stats.txt``, MIT; see :mod:`hera.workload.locality`). The popularity of
    rows is a fixed *profile* on the normalised rank ``x = rank/rows``: ``F(x)`` = share of all lookups
    that go to the hottest fraction ``x`` of rows, piecewise linear in log–log space (piecewise power
    law, i.e. Zipf with a rank-dependent exponent). Rank ``r`` of a table with ``R`` rows gets probability
    ``F((r+1)/R) - F(r/R)`` exactly; sampling inverts ``F`` analytically (no per-row arrays), and ranks are
    scattered by a random permutation. The profile is scale-free, so shrinking a table's rows (docs/METHOD.md §3)
    keeps the share of lookups on its hottest x% of rows. :data:`PRODUCTION_PROFILE` was fitted by
    :func:`hera.workload.locality.calibrate` so that a batch of :data:`REF_BATCH` samples with
    :data:`REF_LOOKUPS` lookups per table on tables of :data:`REF_ROWS` rows reproduces Meta's reuse
    histogram (see the constant's comment for how, and the distances reached).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

import numpy as np

from hera.errors import ConfigError

KINDS = ("uniform", "zipf", "production")

#: Default Zipf exponent (as ``library.zipf_alpha`` in workflow/schemas/config.schema.yaml).
DEFAULT_ZIPF_ALPHA = 1.05
#: Largest table for which Zipf sampling precomputes cumulative weights (float64, 8 bytes per row).
ZIPF_EXACT_MAX_ROWS = 2**24
#: Largest table whose hot ranks are scattered by a true random permutation (int32, 4 bytes per row);
#: larger tables use a random affine bijection ``(a*rank + b) mod rows`` with ``gcd(a, rows) = 1``.
PERMUTATION_MAX_ROWS = 2**26
MAX_ROWS = 2**31 - 1

#: The reference batch at which :data:`PRODUCTION_PROFILE` reproduces Meta's reuse histogram:
#: 65 536 samples (Meta's batch size), 32 lookups per sample per table, 2**22 rows per table.
#: Meta's tables average 8–16 lookups per sample (468–887 M indices / 856 tables / 65 536 samples);
#: we take 32 so that a single table can hold the rows reused more than 32 768 times (2 % of Meta's
#: lookups) instead of a fraction of one. The reuse statistics cannot tell how many rows a batch never
#: touches; ``REF_ROWS = 2 × lookups per batch`` is our choice (≈6.6 % of rows touched per batch).
#: The histogram depends on lookups per row per batch: at the same ratio (e.g. 8 lookups on 2**20 rows)
#: the sampled TV stays 0.003; with 4x more lookups per row (32 on 2**20) it is 0.17 (rows reused more).
REF_BATCH = 65536
REF_LOOKUPS = 32
REF_ROWS = 2**22

#: Production profile: knots ``(log2 x, log2 F(x))`` of the lookup-share curve F on the normalised rank x
#: (hottest rows first), F(1) = 1, piecewise linear in log-log space; below the first knot F follows
#: the first segment's slope (so F(0) = 0). Fitted once by ``hera.workload.locality.calibrate()`` with its
#: defaults (reference batch above; ≈11 s on one core): knots at the ranks where Meta's published reuse
#: factor crosses 1, 2, 4, … 32768 (estimated from both published histograms) plus 4 knots in the tail of
#: rarely touched rows; log F at the knots minimises, by L-BFGS-B, the squared error of the *expected*
#: reuse histograms (rows and lookup shares; row r is reused Poisson(n·p_r) times) against the mean of
#: Meta's 17 published batches. Expected-histogram TV distances after the fit: 0.0022 (rows),
#: 0.0011 (lookup shares); before it (the data-derived initial knots): 0.094 and 0.035. Reading it: the
#: hottest 2^-10 (0.1 %) of rows take 50 % of all lookups, the hottest 1/32 (3.1 %) take 89 %.
#: Sampled check (``hera workload reuse-histogram --generator production --batch 65536 --tables 4``, seed 0):
#: TV 0.0027 (rows) and 0.0039 (lookup shares) from Meta's mean histogram; uniform ids: 0.37 / 0.82,
#: Zipf(1.05): 0.32 / 0.30 (tests/test_workload_locality.py asserts <= 0.05 for production).
PRODUCTION_PROFILE: tuple[tuple[float, float], ...] = (
    (-22.1487, -5.74865),
    (-20.3047, -4.49873),
    (-18.6723, -3.58125),
    (-17.1576, -2.89642),
    (-15.8278, -2.35834),
    (-14.7218, -1.98639),
    (-13.7206, -1.70872),
    (-12.7707, -1.49149),
    (-11.8081, -1.30510),
    (-10.7819, -1.13550),
    (-9.5870, -0.94323),
    (-8.2140, -0.72403),
    (-6.9261, -0.47641),
    (-5.9441, -0.30399),
    (-5.1976, -0.20431),
    (-4.7109, -0.11083),
    (-3.1278, -0.00820),
    (-2.3458, -0.00226),
    (-1.5639, -0.00104),
    (-0.7819, -0.00043),
    (0.0000, 0.00000),
)


def _check_rows(rows: Any) -> int:
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or not 1 <= rows <= MAX_ROWS:
        raise ConfigError(f"sparse ids: rows must be an integer in [1, {MAX_ROWS}], got {rows!r}")
    return int(rows)


def _check_size(size: Any) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
        raise ConfigError(f"sparse ids: size must be a non-negative integer, got {size!r}")
    return int(size)


class Sampler(Protocol):
    """Ids of one table with a fixed row popularity."""

    rows: int

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray: ...


class _Scatter:
    """A random bijection rank -> row so that hot ranks land on scattered rows."""

    def __init__(self, rows: int, rng: np.random.Generator):
        self.rows = rows
        if rows <= PERMUTATION_MAX_ROWS:
            self.perm: np.ndarray | None = rng.permutation(np.arange(rows, dtype=np.int32))
        else:
            self.perm = None
            while True:
                a = int(rng.integers(1, rows))
                if math.gcd(a, rows) == 1:
                    break
            self.a, self.b = a, int(rng.integers(0, rows))

    def __call__(self, ranks: np.ndarray) -> np.ndarray:
        if self.perm is not None:
            return self.perm[ranks].astype(np.int64)
        return (ranks.astype(np.int64) * self.a + self.b) % self.rows


# ------------------------------------------------------------------------------------------- uniform
class _UniformSampler:
    def __init__(self, rows: int):
        self.rows = rows

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.rows, _check_size(size), dtype=np.int64)


@dataclass(frozen=True)
class UniformIds:
    """Every row equally likely."""

    kind: str = "uniform"

    def params(self) -> dict[str, Any]:
        return {}

    def sampler(self, rows: int, rng: np.random.Generator) -> _UniformSampler:
        return _UniformSampler(_check_rows(rows))

    def generate(self, rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
        return self.sampler(rows, rng).draw(size, rng)


# ------------------------------------------------------------------------------------------- zipf
@functools.lru_cache(maxsize=8)
def _zipf_cdf(rows: int, alpha: float) -> np.ndarray:
    w = np.arange(1, rows + 1, dtype=np.float64) ** -alpha
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    cdf.setflags(write=False)
    return cdf


def _helper1(t: np.ndarray) -> np.ndarray:
    """log1p(t)/t, continuous at 0."""
    t = np.asarray(t, dtype=np.float64)
    small = np.abs(t) < 1e-8
    safe = np.where(small, 1.0, t)
    return np.where(small, 1.0 - t / 2.0 + t * t / 3.0, np.log1p(safe) / safe)


def _helper2(t: np.ndarray) -> np.ndarray:
    """expm1(t)/t, continuous at 0."""
    t = np.asarray(t, dtype=np.float64)
    small = np.abs(t) < 1e-8
    safe = np.where(small, 1.0, t)
    return np.where(small, 1.0 + t / 2.0 + t * t / 6.0, np.expm1(safe) / safe)


class _ZipfRejectionInversion:
    """Rejection-inversion sampling of ranks 1..n with P(k) ∝ k^-s (Hörmann & Derflinger 1996),
    vectorised: draw candidates for all pending positions, keep the accepted, repeat (acceptance > 0.9)."""

    def __init__(self, n: int, s: float):
        self.n, self.s = n, s
        self.h_x1 = self._H(1.5) - 1.0
        self.h_n = self._H(n + 0.5)
        self.shift = 2.0 - self._Hinv(self._H(2.5) - self._h(2.0))

    def _h(self, x):
        return np.exp(-self.s * np.log(x))

    def _H(self, x):
        lx = np.log(x)
        return _helper2((1.0 - self.s) * lx) * lx

    def _Hinv(self, x):
        t = np.maximum(x * (1.0 - self.s), -1.0)
        return np.exp(_helper1(t) * x)

    def ranks(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Ranks in ``[1, n]``."""
        out = np.empty(size, dtype=np.int64)
        pending = np.arange(size)
        while pending.size:
            u = self.h_n + rng.random(pending.size) * (self.h_x1 - self.h_n)
            x = self._Hinv(u)
            k = np.clip(np.floor(x + 0.5), 1, self.n)
            ok = (k - x <= self.shift) | (u >= self._H(k + 0.5) - self._h(k))
            out[pending[ok]] = k[ok].astype(np.int64)
            pending = pending[~ok]
        return out


class _ZipfSampler:
    def __init__(self, rows: int, alpha: float, rng: np.random.Generator, exact_max_rows: int):
        self.rows, self.alpha = rows, alpha
        self.scatter = _Scatter(rows, rng)
        self.exact = rows <= exact_max_rows
        if self.exact:
            self.cdf = _zipf_cdf(rows, alpha)
        else:
            self.ri = _ZipfRejectionInversion(rows, alpha)

    def ranks(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """0-based popularity ranks (0 = hottest)."""
        size = _check_size(size)
        if self.exact:
            r = np.searchsorted(self.cdf, rng.random(size), side="right")
            return np.minimum(r, self.rows - 1).astype(np.int64)
        return self.ri.ranks(size, rng) - 1

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray:
        return self.scatter(self.ranks(size, rng))


@dataclass(frozen=True)
class ZipfIds:
    """Bounded Zipf(alpha) over the table's rows, hot ranks scattered by a random permutation."""

    alpha: float = DEFAULT_ZIPF_ALPHA
    exact_max_rows: int = ZIPF_EXACT_MAX_ROWS
    kind: str = "zipf"

    def __post_init__(self) -> None:
        a = self.alpha
        if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(a)) or a <= 0:
            raise ConfigError(f"sparse ids: zipf alpha must be a finite number > 0, got {a!r}")
        object.__setattr__(self, "alpha", float(a))

    def params(self) -> dict[str, Any]:
        return {"alpha": self.alpha}

    def sampler(self, rows: int, rng: np.random.Generator) -> _ZipfSampler:
        return _ZipfSampler(_check_rows(rows), self.alpha, rng, self.exact_max_rows)

    def generate(self, rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
        return self.sampler(rows, rng).draw(size, rng)


# ------------------------------------------------------------------------------------------- production
@dataclass(frozen=True)
class LookupProfile:
    """A lookup-share curve F on the normalised rank, piecewise linear in log-log space.

    ``log2_x`` increasing with ``log2_x[-1] == 0``; ``log2_share`` strictly increasing with
    ``log2_share[-1] == 0`` (F(1) = 1). Below the first knot F continues with the first segment's slope.
    """

    log2_x: tuple[float, ...]
    log2_share: tuple[float, ...]

    def __post_init__(self) -> None:
        lx, lf = np.asarray(self.log2_x, dtype=np.float64), np.asarray(self.log2_share, dtype=np.float64)
        if lx.size < 2 or lx.shape != lf.shape:
            raise ConfigError("sparse ids: a lookup profile needs at least two (log2_x, log2_share) knots")
        if np.any(np.diff(lx) <= 0) or np.any(np.diff(lf) <= 0) or not np.all(np.isfinite(lx)) \
                or not np.all(np.isfinite(lf)):
            raise ConfigError("sparse ids: lookup profile knots must be finite and strictly increasing")
        if abs(lx[-1]) > 1e-12 or abs(lf[-1]) > 1e-12:
            raise ConfigError("sparse ids: a lookup profile must end at x = 1 with share 1 (log2 0)")
        object.__setattr__(self, "log2_x", tuple(lx.tolist()))
        object.__setattr__(self, "log2_share", tuple(lf.tolist()))

    @classmethod
    def from_pairs(cls, pairs) -> "LookupProfile":
        pairs = [tuple(p) for p in pairs]
        return cls(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))

    @property
    def _slope0(self) -> float:
        return (self.log2_share[1] - self.log2_share[0]) / (self.log2_x[1] - self.log2_x[0])

    def share(self, x: np.ndarray) -> np.ndarray:
        """F(x): share of lookups on the hottest fraction ``x`` of rows (``x`` in [0, 1])."""
        x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
        with np.errstate(divide="ignore"):
            lx = np.log2(x)
        lxk, lfk = np.asarray(self.log2_x), np.asarray(self.log2_share)
        lf = np.interp(lx, lxk, lfk)
        below = lx < lxk[0]
        lf = np.where(below, lfk[0] + self._slope0 * (lx - lxk[0]), lf)
        return np.exp2(lf)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        """F^-1(u): the normalised rank below which a share ``u`` of lookups falls."""
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        with np.errstate(divide="ignore"):
            lu = np.log2(u)
        lxk, lfk = np.asarray(self.log2_x), np.asarray(self.log2_share)
        lx = np.interp(lu, lfk, lxk)
        below = lu < lfk[0]
        lx = np.where(below, lxk[0] + (lu - lfk[0]) / self._slope0, lx)
        return np.exp2(lx)

    def row_probabilities(self, rows: int) -> np.ndarray:
        """``p[r] = F((r+1)/rows) - F(r/rows)`` for popularity rank ``r`` (float64[rows]; for analysis)."""
        return np.diff(self.share(np.arange(rows + 1, dtype=np.float64) / rows))


class _ProductionSampler:
    def __init__(self, rows: int, profile: LookupProfile, rng: np.random.Generator):
        self.rows, self.profile = rows, profile
        self.scatter = _Scatter(rows, rng)

    def ranks(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """0-based popularity ranks: ``floor(rows * F^-1(u))``, so P(rank r) = F((r+1)/R) - F(r/R)."""
        x = self.profile.inverse(rng.random(_check_size(size)))
        return np.minimum(np.floor(x * self.rows), self.rows - 1).astype(np.int64)

    def draw(self, size: int, rng: np.random.Generator) -> np.ndarray:
        return self.scatter(self.ranks(size, rng))


@dataclass(frozen=True)
class ProductionIds:
    """Production-like ids: the calibrated lookup profile (:data:`PRODUCTION_PROFILE`) on every table."""

    profile: LookupProfile | None = None
    kind: str = "production"

    def __post_init__(self) -> None:
        if self.profile is None:
            object.__setattr__(self, "profile", LookupProfile.from_pairs(PRODUCTION_PROFILE))
        elif not isinstance(self.profile, LookupProfile):
            object.__setattr__(self, "profile", LookupProfile.from_pairs(self.profile))

    def params(self) -> dict[str, Any]:
        default = LookupProfile.from_pairs(PRODUCTION_PROFILE)
        if self.profile == default:
            return {}
        return {"profile": [list(p) for p in zip(self.profile.log2_x, self.profile.log2_share)]}

    def sampler(self, rows: int, rng: np.random.Generator) -> _ProductionSampler:
        return _ProductionSampler(_check_rows(rows), self.profile, rng)

    def generate(self, rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
        return self.sampler(rows, rng).draw(size, rng)


# ------------------------------------------------------------------------------------------- factory
_CLASSES = {"uniform": UniformIds, "zipf": ZipfIds, "production": ProductionIds}
_PARAMS = {"uniform": set(), "zipf": {"alpha", "exact_max_rows"}, "production": {"profile"}}


def make_generator(kind: str, **params: Any):
    """A sparse-id generator of ``kind`` (``uniform``, ``zipf`` [alpha], ``production`` [profile])."""
    if kind not in _CLASSES:
        raise ConfigError(f"sparse ids: unknown generator {kind!r}; known: {', '.join(KINDS)}")
    for key in params:
        if key not in _PARAMS[kind]:
            known = ", ".join(sorted(_PARAMS[kind])) or "none"
            raise ConfigError(f"sparse ids: parameter {key!r} does not apply to generator {kind!r} "
                              f"(its parameters: {known})")
    return _CLASSES[kind](**params)


@dataclass(frozen=True)
class SparseConfig:
    """Which sparse-id generator a sample library uses (stored in ``library.json``)."""

    kind: str = "production"
    alpha: float = DEFAULT_ZIPF_ALPHA

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"sparse ids: unknown generator {self.kind!r}; known: {', '.join(KINDS)}")
        ZipfIds(self.alpha)  # validates alpha

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | str) -> "SparseConfig":
        """From ``"production"`` or ``{"kind": "zipf", "alpha": 1.1}``; unknown keys raise ConfigError."""
        if isinstance(d, str):
            return cls(d)
        if isinstance(d, SparseConfig):
            return d
        if not isinstance(d, Mapping):
            raise ConfigError(f"sparse ids: expected a generator name or mapping, got {type(d).__name__}")
        for key in d:
            if key not in ("kind", "alpha"):
                raise ConfigError(f"sparse ids: unknown key {key!r}; known: alpha, kind")
        if "alpha" in d and d.get("kind", "production") != "zipf":
            raise ConfigError("sparse ids: key 'alpha' applies only to kind 'zipf'")
        return cls(**dict(d))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "alpha": self.alpha} if self.kind == "zipf" else {"kind": self.kind}

    def generator(self):
        return make_generator(self.kind, alpha=self.alpha) if self.kind == "zipf" else make_generator(self.kind)
