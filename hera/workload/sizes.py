"""Query sizes: how many candidate items one query carries (docs/METHOD.md §4).

Kinds (all capped by ``max_items``, all drawn from a caller-supplied :class:`numpy.random.Generator`):

========== ===================================================================================
fixed      every query has ``items`` items (``n_items`` is accepted as an alias)
normal     ``round(N(mean_items, sd_items))`` clipped to ``[1, max_items]``; DeepRecSys' examples use
           mean 165, sd 16 (the defaults)
lognormal  ``round(lognormal(mu, sigma))`` clipped to ``[1, 1024]`` as in DeepRecSys' code
           (``np.random.lognormal(5.1, 0.2)``, the defaults), then capped by ``max_items``
production uniform choice among the 20 equally likely quantile points that MLPerf Inference's DLRM-v2
           benchmark took from DeepRecSys' production query-size figure
           (mlcommons/inference ``recommendation/dlrm_v2/pytorch/tools/dist_quantile.txt``):
           100, 100, 200 x12, 300, 300, 400, 500, 600, 700 items (mean 270, max 700)
========== ===================================================================================

``QuerySizes(kind, max_items, **params).sample(n, rng) -> int64[n]`` (docs/DESIGN.md "Workload API").
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from hera.errors import ConfigError

KINDS = ("fixed", "normal", "lognormal", "production")

#: MLPerf DLRM-v2 / DeepRecSys production query sizes: 20 equally likely quantile points (items).
PRODUCTION_QUANTILES: tuple[int, ...] = (100, 100) + (200,) * 12 + (300, 300, 400, 500, 600, 700)

#: DeepRecSys clips its lognormal sizes to this range before our ``max_items`` cap.
LOGNORMAL_CLIP = (1, 1024)

#: Parameters of each kind and their defaults.
PARAMS: dict[str, dict[str, float | int]] = {
    "fixed": {"items": 200},
    "normal": {"mean_items": 165.0, "sd_items": 16.0},
    "lognormal": {"mu": 5.1, "sigma": 0.2},
    "production": {},
}
_ALIASES = {"n_items": "items"}


def _number(name: str, value: Any, *, integer: bool = False, positive: bool = True,
            allow_zero: bool = False) -> float | int:
    """Validate one numeric parameter (bools are rejected: ``True`` is not a size)."""
    ok_types = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, ok_types) or not math.isfinite(float(value)):
        kind = "an integer" if integer else "a finite number"
        raise ConfigError(f"query sizes: {name} must be {kind}, got {value!r}")
    if positive and (value < 0 or (value == 0 and not allow_zero)):
        raise ConfigError(f"query sizes: {name} must be > 0, got {value!r}")
    return int(value) if integer else float(value)


@dataclass(frozen=True, init=False)
class QuerySizes:
    """A validated query-size distribution.

    ``QuerySizes("production", 1024)``, ``QuerySizes("fixed", 256, items=64)``,
    ``QuerySizes("normal", 1024, mean_items=165, sd_items=16)``, ``QuerySizes("lognormal", 1024, mu=5.1,
    sigma=0.2)``. Parameters that do not belong to ``kind`` raise :class:`ConfigError`.
    """

    kind: str = "production"
    max_items: int = 1024
    params: dict[str, float | int] = dataclasses.field(default_factory=dict)

    def __init__(self, kind: str = "production", max_items: int = 1024, **params: Any):
        if kind not in KINDS:
            raise ConfigError(f"query sizes: unknown kind {kind!r}; known: {', '.join(KINDS)}")
        max_items = _number("max_items", max_items, integer=True)
        resolved: dict[str, float | int] = dict(PARAMS[kind])
        for key, value in params.items():
            name = _ALIASES.get(key, key)
            if name not in PARAMS[kind]:
                known = ", ".join(PARAMS[kind]) or "none"
                raise ConfigError(f"query sizes: parameter {key!r} does not apply to kind {kind!r} "
                                  f"(its parameters: {known})")
            resolved[name] = value
        if kind == "fixed":
            resolved["items"] = _number("items", resolved["items"], integer=True)
            if resolved["items"] > max_items:
                raise ConfigError(f"query sizes: fixed items {resolved['items']} exceeds max_items {max_items}")
        elif kind == "normal":
            resolved["mean_items"] = _number("mean_items", resolved["mean_items"])
            resolved["sd_items"] = _number("sd_items", resolved["sd_items"], allow_zero=True)
        elif kind == "lognormal":
            resolved["mu"] = _number("mu", resolved["mu"], positive=False)
            resolved["sigma"] = _number("sigma", resolved["sigma"], allow_zero=True)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "max_items", max_items)
        object.__setattr__(self, "params", resolved)

    # ------------------------------------------------------------------ construction / storage
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "QuerySizes":
        """From ``{"kind": ..., "max_items": ..., **params}`` (config files, results); strict keys."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"query sizes: expected a mapping, got {type(d).__name__}")
        d = dict(d)
        kind = d.pop("kind", "production")
        max_items = d.pop("max_items", 1024)
        return cls(kind, max_items, **d)

    def to_dict(self) -> dict[str, Any]:
        """The config as stored with results (round-trips through :meth:`from_dict`)."""
        return {"kind": self.kind, "max_items": self.max_items, **self.params}

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` query sizes, ``int64[n]``, each in ``[1, max_items]``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ConfigError(f"query sizes: n must be a non-negative integer, got {n!r}")
        p = self.params
        if self.kind == "fixed":
            out = np.full(n, p["items"], dtype=np.int64)
        elif self.kind == "normal":
            out = np.rint(rng.normal(p["mean_items"], p["sd_items"], n))
            out = np.clip(out, 1, self.max_items)
        elif self.kind == "lognormal":
            out = np.clip(np.rint(rng.lognormal(p["mu"], p["sigma"], n)), *LOGNORMAL_CLIP)
        else:
            q = np.asarray(PRODUCTION_QUANTILES, dtype=np.int64)
            out = q[rng.integers(0, q.size, n)]
        return np.minimum(out.astype(np.int64), self.max_items)

    def expected_mean(self) -> float | None:
        """The distribution's mean before clipping (``None`` for lognormal/normal where the cap bites)."""
        p = self.params
        if self.kind == "fixed":
            return float(p["items"])
        if self.kind == "production":
            return float(np.mean(np.minimum(PRODUCTION_QUANTILES, self.max_items)))
        if self.kind == "normal":
            return float(p["mean_items"])
        return float(math.exp(p["mu"] + p["sigma"] ** 2 / 2))


def summarize(sizes: np.ndarray) -> dict[str, float]:
    """A few statistics of drawn sizes (for the CLI and logs)."""
    s = np.asarray(sizes, dtype=np.float64)
    if s.size == 0:
        return {"n": 0}
    return {"n": int(s.size), "mean": float(s.mean()), "sd": float(s.std()), "min": int(s.min()),
            "p50": float(np.percentile(s, 50)), "p95": float(np.percentile(s, 95)),
            "p99": float(np.percentile(s, 99)), "max": int(s.max())}
