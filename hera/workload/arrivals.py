"""Query arrival times: open-loop Poisson processes, homogeneous or time-varying (docs/METHOD.md §4).

* :func:`poisson` — a homogeneous Poisson process at ``rate_qps``: independent exponential gaps in
  continuous time (float64 seconds). DeepRecSys' load generator instead draws *Poisson-distributed
  integer-millisecond* gaps (``np.random.poisson(1000/rate)`` ms), which is not a Poisson process
  (gaps are discrete, never shorter than 1 ms at high rates, and have variance = mean in ms, not
  mean²); we deliberately do not copy that.
* :func:`time_varying` — a non-homogeneous Poisson process with rate λ(t) by Lewis–Shedler thinning:
  draw a homogeneous process at ``λ_max ≥ max λ(t)`` and keep an arrival at ``t`` with probability
  ``λ(t)/λ_max``. λ(t) comes from a formula (:class:`Diurnal` sinusoid, :class:`Steps` step changes),
  a trace file (:class:`Trace`: CSV ``t_s,rate_qps``, piecewise constant or linear), or any vectorised
  callable ``rate(t: float64[k]) -> float64[k]``.

Every function takes the :class:`numpy.random.Generator` to draw from (one seed per source of
randomness); :class:`ArrivalConfig` is the typed, validated config stored with results.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np
import pandas as pd

from hera.errors import ConfigError

#: Grid points used to bound a plain callable's maximum rate, and the safety factor on top of it.
_GRID_POINTS = 100_001
_GRID_MARGIN = 1.01


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(value)) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"arrivals: {name} must be a finite number {bound}, got {value!r}")
    return float(value)


def poisson(rate_qps: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` arrival times (seconds from 0, increasing, ``float64[n]``) of a Poisson process at ``rate_qps``.

    The first arrival is one exponential gap after 0; gaps are i.i.d. ``Exp(rate_qps)`` in continuous time.
    """
    rate = _positive("rate_qps", rate_qps)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ConfigError(f"arrivals: n must be a non-negative integer, got {n!r}")
    return np.cumsum(rng.exponential(1.0 / rate, int(n)))


def poisson_until(rate_qps: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """All arrivals of a Poisson process at ``rate_qps`` in ``[0, duration_s]``."""
    rate, dur = _positive("rate_qps", rate_qps), _positive("duration_s", duration_s)
    # The count in [0, T] is Poisson(rate*T); given it, the times are sorted uniforms (exact).
    k = int(rng.poisson(rate * dur))
    return np.sort(rng.uniform(0.0, dur, k))


# ---------------------------------------------------------------------------------------- rate functions
@dataclass(frozen=True)
class Diurnal:
    """λ(t) = mean_qps · (1 + amplitude · sin(2π (t − phase_s) / period_s)), a day compressed to ``period_s``."""

    mean_qps: float
    amplitude: float = 0.5
    period_s: float = 60.0
    phase_s: float = 0.0

    def __post_init__(self) -> None:
        _positive("mean_qps", self.mean_qps)
        _positive("period_s", self.period_s)
        if not 0.0 <= float(self.amplitude) <= 1.0:
            raise ConfigError(f"arrivals: amplitude must be in [0, 1], got {self.amplitude!r}")

    def __call__(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        return self.mean_qps * (1.0 + self.amplitude * np.sin(2.0 * np.pi * (t - self.phase_s) / self.period_s))

    def max_qps(self, duration_s: float) -> float:
        return self.mean_qps * (1.0 + self.amplitude)

    def integral(self, t0: float, t1: float) -> float:
        """Expected arrivals in ``[t0, t1]``."""
        w = 2.0 * np.pi / self.period_s
        c = self.amplitude / w
        return float(self.mean_qps * ((t1 - t0) - c * (np.cos(w * (t1 - self.phase_s)) - np.cos(w * (t0 - self.phase_s)))))


@dataclass(frozen=True)
class Steps:
    """Step changes: λ(t) = ``rates_qps[i]`` for ``times_s[i] <= t < times_s[i+1]`` (``times_s[0]`` must be 0)."""

    times_s: tuple[float, ...]
    rates_qps: tuple[float, ...]

    def __post_init__(self) -> None:
        ts, rs = tuple(float(x) for x in self.times_s), tuple(float(x) for x in self.rates_qps)
        if not ts or len(ts) != len(rs):
            raise ConfigError("arrivals: steps need as many times_s as rates_qps (at least one)")
        if ts[0] != 0.0 or any(b <= a for a, b in zip(ts, ts[1:])):
            raise ConfigError(f"arrivals: step times_s must start at 0 and increase, got {list(ts)}")
        for r in rs:
            _positive("step rate_qps", r, allow_zero=True)
        object.__setattr__(self, "times_s", ts)
        object.__setattr__(self, "rates_qps", rs)

    def __call__(self, t: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(np.asarray(self.times_s), np.asarray(t, dtype=np.float64), side="right") - 1
        return np.asarray(self.rates_qps)[np.clip(idx, 0, None)]

    def max_qps(self, duration_s: float) -> float:
        active = [r for t, r in zip(self.times_s, self.rates_qps) if t <= duration_s]
        return max(active)

    def integral(self, t0: float, t1: float) -> float:
        edges = np.append(np.asarray(self.times_s), np.inf)
        total = 0.0
        for a, b, r in zip(edges[:-1], edges[1:], self.rates_qps):
            lo, hi = max(a, t0), min(b, t1)
            if hi > lo:
                total += r * (hi - lo)
        return total


@dataclass(frozen=True)
class Trace:
    """A rate trace: points ``(t_s, rate_qps)``; between points the rate is held (``constant``) or
    interpolated (``linear``); before the first point it is the first rate, after the last the last rate."""

    t_s: tuple[float, ...]
    rate_qps: tuple[float, ...]
    interpolation: str = "linear"
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if self.interpolation not in ("constant", "linear"):
            raise ConfigError(f"arrivals: trace interpolation must be 'constant' or 'linear', "
                              f"got {self.interpolation!r}")
        ts, rs = np.asarray(self.t_s, dtype=np.float64), np.asarray(self.rate_qps, dtype=np.float64)
        if ts.size == 0 or ts.shape != rs.shape:
            raise ConfigError(f"arrival trace {self.source}: needs at least one (t_s, rate_qps) point")
        if np.any(np.diff(ts) <= 0):
            raise ConfigError(f"arrival trace {self.source}: t_s must increase")
        if np.any(rs < 0) or not np.all(np.isfinite(rs)) or not np.all(np.isfinite(ts)):
            raise ConfigError(f"arrival trace {self.source}: rates must be finite and >= 0")
        object.__setattr__(self, "t_s", tuple(ts.tolist()))
        object.__setattr__(self, "rate_qps", tuple(rs.tolist()))

    @classmethod
    def from_csv(cls, path: str | Path, interpolation: str = "linear") -> "Trace":
        """Read a CSV with a header and columns ``t_s,rate_qps``; errors name the file and line."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"arrival trace {str(path)!r} not found")
        try:
            df = pd.read_csv(path, dtype=str, skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ConfigError(f"arrival trace {str(path)!r} cannot be parsed: {str(exc).strip()}") from None
        missing = {"t_s", "rate_qps"} - set(df.columns)
        if missing:
            raise ConfigError(f"arrival trace {str(path)!r} lacks column(s) {', '.join(sorted(missing))} "
                              "(header must be t_s,rate_qps)")
        values = {}
        for col in ("t_s", "rate_qps"):
            v = pd.to_numeric(df[col], errors="coerce")
            bad = np.flatnonzero(v.isna().to_numpy() | ~np.isfinite(v.to_numpy(dtype=float, na_value=np.nan)))
            if bad.size:
                i = int(bad[0])
                raise ConfigError(f"arrival trace {str(path)!r} line {i + 2}: {col} {df[col].iloc[i]!r} "
                                  "is not a finite number")
            values[col] = v.to_numpy(dtype=np.float64)
        ts, rs = values["t_s"], values["rate_qps"]
        if ts.size == 0:
            raise ConfigError(f"arrival trace {str(path)!r} has no data rows")
        dec = np.flatnonzero(np.diff(ts) <= 0)
        if dec.size:
            raise ConfigError(f"arrival trace {str(path)!r} line {int(dec[0]) + 3}: t_s must increase")
        neg = np.flatnonzero(rs < 0)
        if neg.size:
            raise ConfigError(f"arrival trace {str(path)!r} line {int(neg[0]) + 2}: rate_qps must be >= 0")
        return cls(tuple(ts), tuple(rs), interpolation, str(path))

    def __call__(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        ts, rs = np.asarray(self.t_s), np.asarray(self.rate_qps)
        if self.interpolation == "linear":
            return np.interp(t, ts, rs)
        idx = np.searchsorted(ts, t, side="right") - 1
        return rs[np.clip(idx, 0, None)]

    def max_qps(self, duration_s: float) -> float:
        ts, rs = np.asarray(self.t_s), np.asarray(self.rate_qps)
        inside = rs[ts <= duration_s]
        # the rate at 0 and at duration_s bound the piecewise function together with the inner points
        ends = self(np.array([0.0, duration_s]))
        return float(max(inside.max(initial=0.0), ends.max()))


RateLike = Union[Callable[[np.ndarray], np.ndarray], Diurnal, Steps, Trace, str, Path]


def _rate_bound(rate: Callable, duration_s: float, rate_max_qps: float | None) -> float:
    if rate_max_qps is not None:
        return _positive("rate_max_qps", rate_max_qps, allow_zero=True)
    if hasattr(rate, "max_qps"):
        return float(rate.max_qps(duration_s))
    grid = np.linspace(0.0, duration_s, _GRID_POINTS)
    values = np.asarray(rate(grid), dtype=np.float64)
    if values.shape != grid.shape:
        raise ConfigError("arrivals: the rate function must map an array of times to an array of rates")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError("arrivals: the rate function returned a negative or non-finite rate")
    return float(values.max()) * _GRID_MARGIN


def time_varying(rate: RateLike, duration_s: float, rng: np.random.Generator, *,
                 rate_max_qps: float | None = None) -> np.ndarray:
    """Arrival times in ``[0, duration_s]`` of a Poisson process with rate λ(t), by Lewis–Shedler thinning.

    ``rate`` is a :class:`Diurnal`, :class:`Steps` or :class:`Trace`, a path to a trace CSV (linear), or a
    vectorised callable. The bound ``λ_max`` is exact for the classes here; for a plain callable it is
    ``rate_max_qps`` if given, else 1.01 × its maximum on a 100 001-point grid, and a candidate where λ(t)
    exceeds the bound raises :class:`ConfigError` (thinning would then be wrong).
    """
    if isinstance(rate, (str, Path)):
        rate = Trace.from_csv(rate)
    if not callable(rate):
        raise ConfigError(f"arrivals: rate must be callable, a Diurnal/Steps/Trace or a trace path, got {rate!r}")
    dur = _positive("duration_s", duration_s)
    lam_max = _rate_bound(rate, dur, rate_max_qps)
    if lam_max <= 0.0:
        return np.empty(0, dtype=np.float64)
    cand = poisson_until(lam_max, dur, rng)
    lam = np.asarray(rate(cand), dtype=np.float64)
    if lam.shape != cand.shape:
        raise ConfigError("arrivals: the rate function must map an array of times to an array of rates")
    if np.any(lam < 0) or not np.all(np.isfinite(lam)):
        raise ConfigError("arrivals: the rate function returned a negative or non-finite rate")
    if np.any(lam > lam_max * (1.0 + 1e-9)):
        t_bad = float(cand[np.argmax(lam > lam_max * (1.0 + 1e-9))])
        raise ConfigError(f"arrivals: rate {float(np.max(lam)):.6g} qps at t={t_bad:.6g} s exceeds the thinning "
                          f"bound {lam_max:.6g} qps; pass rate_max_qps")
    keep = rng.random(cand.size) * lam_max < lam
    return cand[keep]


# ---------------------------------------------------------------------------------------- config
KINDS = ("poisson", "diurnal", "steps", "trace")
_KIND_KEYS = {
    "poisson": {"rate_qps"},
    "diurnal": {"rate_qps", "amplitude", "period_s", "phase_s"},
    "steps": {"step_times_s", "step_rates_qps"},
    "trace": {"trace_path", "interpolation"},
}


@dataclass(frozen=True)
class ArrivalConfig:
    """How queries arrive. ``rate_qps`` is the Poisson rate, or the mean of the diurnal curve."""

    kind: str = "poisson"
    rate_qps: float = 100.0
    amplitude: float = 0.5
    period_s: float = 60.0
    phase_s: float = 0.0
    step_times_s: tuple[float, ...] = ()
    step_rates_qps: tuple[float, ...] = ()
    trace_path: str | None = None
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"arrivals: unknown kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.kind in ("poisson", "diurnal"):
            _positive("rate_qps", self.rate_qps)
        if self.kind == "trace" and not self.trace_path:
            raise ConfigError("arrivals: kind 'trace' needs trace_path")
        object.__setattr__(self, "step_times_s", tuple(self.step_times_s))
        object.__setattr__(self, "step_rates_qps", tuple(self.step_rates_qps))
        if self.kind != "poisson":
            self.rate_function()  # validates the kind's parameters (and reads the trace)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ArrivalConfig":
        """Strict: unknown keys, and keys of another kind, raise :class:`ConfigError` naming them."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"arrivals: expected a mapping, got {type(d).__name__}")
        d = dict(d)
        kind = d.get("kind", "poisson")
        names = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in names:
                raise ConfigError(f"arrivals: unknown key {key!r}; known: {', '.join(sorted(names))}")
            if key != "kind" and kind in _KIND_KEYS and key not in _KIND_KEYS[kind]:
                raise ConfigError(f"arrivals: key {key!r} does not apply to kind {kind!r}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        keys = ("kind",) + tuple(sorted(_KIND_KEYS[self.kind]))
        out = {k: getattr(self, k) for k in keys}
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in out.items()}

    def rate_function(self) -> Callable[[np.ndarray], np.ndarray]:
        """λ(t) of this config (a constant function for ``poisson``)."""
        if self.kind == "poisson":
            return Steps((0.0,), (float(self.rate_qps),))
        if self.kind == "diurnal":
            return Diurnal(self.rate_qps, self.amplitude, self.period_s, self.phase_s)
        if self.kind == "steps":
            return Steps(self.step_times_s, self.step_rates_qps)
        return Trace.from_csv(self.trace_path, self.interpolation)

    def generate(self, rng: np.random.Generator, *, duration_s: float | None = None,
                 n: int | None = None) -> np.ndarray:
        """Arrival times: ``n`` arrivals (``poisson`` only) or all arrivals in ``[0, duration_s]``."""
        if self.kind == "poisson":
            if n is not None:
                return poisson(self.rate_qps, n, rng)
            if duration_s is None:
                raise ConfigError("arrivals: give n or duration_s")
            return poisson_until(self.rate_qps, duration_s, rng)
        if duration_s is None:
            raise ConfigError(f"arrivals: kind {self.kind!r} needs duration_s")
        return time_varying(self.rate_function(), duration_s, rng)


def summarize(times: np.ndarray, rate_qps: float | None = None) -> dict[str, float]:
    """Statistics of arrival times: count, span, mean rate, gap CV and, if ``rate_qps`` is given, the
    Kolmogorov–Smirnov p-value of the gaps against ``Exp(rate_qps)`` (scipy)."""
    t = np.asarray(times, dtype=np.float64)
    out: dict[str, float] = {"n": int(t.size)}
    if t.size < 2:
        return out
    gaps = np.diff(np.concatenate([[0.0], t]))
    out.update({"span_s": float(t[-1]), "mean_rate_qps": float(t.size / t[-1]),
                "gap_mean_ms": float(gaps.mean() * 1e3), "gap_cv": float(gaps.std() / gaps.mean())})
    if rate_qps is not None:
        from scipy import stats

        out["ks_pvalue_exponential"] = float(stats.kstest(gaps, "expon", args=(0.0, 1.0 / rate_qps)).pvalue)
    return out


def windowed_rates(times: np.ndarray, duration_s: float, window_s: float) -> pd.DataFrame:
    """Observed arrival rate per window: columns ``t0_s, t1_s, arrivals, rate_qps``."""
    edges = np.arange(0.0, duration_s + 1e-12, window_s)
    if edges[-1] < duration_s:
        edges = np.append(edges, duration_s)
    counts, _ = np.histogram(np.asarray(times), bins=edges)
    return pd.DataFrame({"t0_s": edges[:-1], "t1_s": edges[1:], "arrivals": counts,
                         "rate_qps": counts / np.diff(edges)})


__all__: Sequence[str] = ("poisson", "poisson_until", "time_varying", "Diurnal", "Steps", "Trace",
                          "ArrivalConfig", "summarize", "windowed_rates")
