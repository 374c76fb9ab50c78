"""Predicted co-location from O(N) profiles: each tenant's QPS* next to a partner, the two-tenant feasible region,
and the pair's EMU, for any core split and LLC option — in milliseconds per split, no pair ever measured.

Inputs, all per model (docs/DESIGN.md, "Pair prediction"):

- a :class:`TenantCurve` per (model, workers): the node model's latency quantile vs rate for each bootstrap
  replicate (:func:`hera.queueing.qps.latency_quantiles` on the model's service profile) and its SLA;
- interference profiles (any :class:`Interference`): a model's *sensitivity* — the factor its service times grow
  by next to an antagonist of kind k at intensity x — and its *pressure* — the antagonist intensity its w workers
  at load fraction u are equivalent to, on a fixed reporter.

Method, for tenant a on ``c_a`` workers next to b on ``c_b`` workers at rates (λ_a, λ_b):

1. b's load fraction ``u_b = λ_b · f_b / capacity_b(c_b)`` (its own inflation f_b counted: slower sub-batches keep
   its workers busier); its pressures ``x_bw = P_b,bw(c_b, u_b)`` and, with a shared LLC, ``x_cache =
   P_b,cache(c_b, u_b)``; with an LLC-way split a cannot be evicted by b but only owns ``w_a`` of ``W`` ways:
   ``x_cache = 1 − w_a / W`` (the cache antagonist at intensity 1 leaves a none of the LLC);
2. a's inflation ``f_a = g · S_a,bw(x_bw) · S_a,cache(x_cache) · S_a,cpu(u_b)`` (the kinds act independently: an
   assumption); ``S_a,cpu`` is a's sensitivity to a *busy core* (where it was profiled, ``interference.busy_core``):
   b keeps its cores busy a share ``u_b`` of the time, which on a node whose harness shares the workers' cores
   moves the harness and the OS onto a's; the memory sensitivities are then read net of the busy core their
   antagonists also are (:func:`hera.profile.interference.table.sensitivity_knots`); where a's *neighbour
   profile* is given (:mod:`hera.profile.neighbour`), ``f_a`` is also multiplied by its ``e_a(u_b)``, the extra
   a loaded neighbour tenant was measured to add beyond this very prediction;
   ``g = 1 / (1 − (h_a λ_a + h_b λ_b) / c)`` when every one of the split's ``c`` cores runs a worker and
   no core is reserved for the harness (1 otherwise): ``h_i`` is the harness CPU per query of tenant i's
   traffic, measured in its F2 trials, which the alone QPS* did not pay on the workers' cores;
3. a's service times all grow by ``f_a``, so its latency curve becomes ``L_f(λ) = f_a · L(f_a · λ)`` (time
   stretches) and its QPS* next to b is ``Q_a(SLA_a / f_a) / f_a`` where ``Q_a(σ)`` is the rate at which its
   uninflated curve reaches σ: exact for uniform inflation, read off one curve, no new simulation;
4. the inflations depend on each other's loads: three fixed-point iterations from f = 1;
5. along a *ray* — rates ``t × (s · Q_a(c_a), (1 − s) · Q_b(c_b))`` with ``Q_i(c_i)`` the tenant's measured alone
   QPS* on its cores — the largest t at which both tenants are within their SLA (bisection) is the boundary of the
   feasible region; its EMU is ``Σ_i λ_i / QPS*_i(alone, whole node)``. "Within" is meant as the measurement
   means it (``colocation.trial_noise``, default on): a joint trial passes when *both* tenants' tails are within
   their SLA, and each tenant's verdict scatters from trial to trial by ``σ_i`` in log rate (F2's
   ``trial_crossing_sd``, O(N)), so the boundary is where ``Φ(ln(Q_a/λ_a)/σ_a) · Φ(ln(Q_b/λ_b)/σ_b) = ½``
   (:func:`joint_pass_probability`) — below both QPS* where the two bind together (each at its
   ``Φ⁻¹(√½) ≈ 0.54 σ`` point), a tenant's own QPS* where it alone binds.

**Calibration** (``colocation.calibrate``, default on): before 1–5, each tenant's curve gets a service-time scale
``κ_i`` (per replicate) that makes its modelled alone QPS* on ``c_i`` cores equal the measured one
(:meth:`TenantCurve.calibrated`); ``κ_i · f_i`` then replaces ``f_i`` in 1 and 3 (``colocation.calibrate_to:
served``: κ_i is F2's measured service speed instead, :func:`served_speed`). The rays are set by measured
alone QPS*, so without it any level error of the node model (a service profile taken at another time on a
machine that drifts) moves every predicted boundary by itself; with it the prediction carries only what the
interference profiles add.

Every quantity is computed per bootstrap replicate of the two curves; the prediction is the median with the
equal-tailed interval at the model's confidence.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from hera.errors import HeraError

KINDS = ("bandwidth", "cache")
#: Rays of the feasible region that are measured (tenant a's share s): balanced, a favoured, b favoured.
MEASURED_SHARES = (0.5, 0.75, 0.25)
#: Rays on which the boundary is predicted to find the best EMU of a split.
PREDICTED_SHARES = tuple(np.round(np.linspace(0.1, 0.9, 9), 3))
FIXED_POINT_ITERATIONS = 3
#: At most this share of a core is taken from the workers by the harness in a prediction
MAX_HARNESS_STEAL = 0.5


class PredictionError(HeraError):
    """A pair cannot be predicted (a profile missing for a model, a split that does not fit the node)."""


class Interference(Protocol):
    """What the predictor needs from interference profiles."""

    def inflation(self, model: str, kind: str, intensity: float) -> float:
        """Factor (>= 1) by which ``model``'s service times grow next to antagonist ``kind`` at ``intensity``."""

    def pressure(self, model: str, kind: str, workers: int, load_frac: float) -> float:
        """Antagonist intensity of ``kind`` equivalent to ``workers`` workers of ``model`` at ``load_frac``."""


#: The antagonist that is a busy core and nothing else (:mod:`hera.profile.antagonist`); profiled where
#: ``interference.busy_core`` asks for it, its pressure a partner's own utilisation.
BUSY_CORE = "cpu"
#: The channel of a loaded neighbour tenant (:mod:`hera.profile.neighbour`), its pressure the partner's utilisation.
NEIGHBOUR = "neighbour"


def has_kind(interference: Interference, model: str, kind: str) -> bool:
    """Whether ``interference`` profiled ``model`` next to ``kind`` (profiles without a ``has_kind`` method hold
    the memory kinds only)."""
    probe = getattr(interference, "has_kind", None)
    return bool(probe(model, kind)) if probe is not None else False


class GridInterference:
    """An :class:`Interference` read once on grids and interpolated (piecewise linear, as the profiles are): the
    bisections ask thousands of questions, and a table lookup is slow next to them. Intensities beyond the grid
    (up to ``max_intensity``) and unusual worker counts go to the profiles themselves."""

    def __init__(self, inner: Interference, max_intensity: float = 2.0, points: int = 201):
        self.inner = inner
        self._x = np.linspace(0.0, max_intensity, points)
        self._u = np.linspace(0.0, 1.0, 101)
        self._inflation: dict[tuple, np.ndarray] = {}
        self._pressure: dict[tuple, np.ndarray] = {}
        self._off_grid: dict[tuple, float] = {}
        self._has: dict[tuple[str, str], bool] = {}

    def has_kind(self, model: str, kind: str) -> bool:
        if (model, kind) not in self._has:
            self._has[(model, kind)] = has_kind(self.inner, model, kind)
        return self._has[(model, kind)]

    def inflation(self, model: str, kind: str, intensity: float) -> float:
        return float(self.inflations(model, kind, np.array([float(intensity)]))[0])

    def inflations(self, model: str, kind: str, intensity: np.ndarray) -> np.ndarray:
        """:meth:`inflation` at every intensity of an array: on the grid interpolated, off it asked of the profile
        once per (model, kind, intensity to 1e-4)."""
        x = np.asarray(intensity, float)
        on = (x >= 0.0) & (x <= self._x[-1])
        out = np.empty(x.shape)
        if on.any():
            key = (model, kind)
            if key not in self._inflation:
                self._inflation[key] = np.asarray(_inflation_at(self.inner, model, kind, self._x), float)
            out[on] = np.interp(x[on], self._x, self._inflation[key])
        for i in np.flatnonzero(~on):
            off = (model, kind, round(float(x[i]), 4))
            if off not in self._off_grid:
                self._off_grid[off] = float(_inflation_at(self.inner, model, kind, x[i:i + 1])[0])
            out[i] = self._off_grid[off]
        return out

    def pressure(self, model: str, kind: str, workers: int, load_frac: float) -> float:
        return float(self.pressures(model, kind, workers, np.array([float(load_frac)]))[0])

    def pressures(self, model: str, kind: str, workers: int, load_frac: np.ndarray) -> np.ndarray:
        """:meth:`pressure` at every load fraction of an array (the bisections' inner loop, vectorised)."""
        key = (model, kind, int(workers))
        if key not in self._pressure:
            self._pressure[key] = np.asarray(_pressure_at(self.inner, model, kind, int(workers), self._u), float)
        return np.interp(np.clip(np.asarray(load_frac, float), 0.0, 1.0), self._u, self._pressure[key])


def _inflation_at(interference: Interference, model: str, kind: str, intensity: np.ndarray) -> np.ndarray:
    """``interference``'s inflation at every intensity: its array method (``inflations``) where it has one."""
    many = getattr(interference, "inflations", None)
    if many is not None:
        return np.asarray(many(model, kind, intensity), float)
    return np.array([interference.inflation(model, kind, float(v)) for v in np.asarray(intensity, float)])


def _pressure_at(interference: Interference, model: str, kind: str, workers: int, load_frac: np.ndarray
                 ) -> np.ndarray:
    """``interference``'s pressure at every load fraction: its array method (``pressures``) where it has one."""
    many = getattr(interference, "pressures", None)
    if many is not None:
        return np.asarray(many(model, kind, workers, load_frac), float)
    return np.array([interference.pressure(model, kind, workers, float(v)) for v in np.asarray(load_frac, float)])


class ByLoadInterference:
    """Sensitivity read by the victim's own load (``colocation.sensitivity: by_load``): a tenant whose workers are
    busy a share ρ of the time is inflated by ``(1 − ρ) · f_light + ρ · f_saturated`` — the light-load
    sensitivity (each query starts on an idle worker whose caches the partner has had to itself) where it is
    mostly idle, the saturated one (back-to-back sub-batches) near its QPS*; pressures from ``saturated`` (a
    pressure does not depend on the victim's regime). Both are :class:`Interference`."""

    def __init__(self, light: Interference, saturated: Interference):
        self.light, self.saturated = light, saturated

    def has_kind(self, model: str, kind: str) -> bool:
        return has_kind(self.saturated, model, kind)

    def inflation(self, model: str, kind: str, intensity: float) -> float:
        return self.saturated.inflation(model, kind, intensity)

    def pressure(self, model: str, kind: str, workers: int, load_frac: float) -> float:
        return self.saturated.pressure(model, kind, workers, load_frac)

    def pressures(self, model: str, kind: str, workers: int, load_frac: np.ndarray) -> np.ndarray:
        return _pressure_at(self.saturated, model, kind, workers, load_frac)


def read_neighbour_profiles(paths: list[str] | tuple[str, ...]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{model: (utilisation knots, extra inflation knots)}`` from profile tables: the knots start at (0, 1);
    a fraction without a finite ``e`` is left out; ``e`` below 1 is read as 1."""
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for p in paths:
        df = pd.read_csv(p)
        missing = [c for c in ("model", "utilisation", "extra_inflation") if c not in df.columns]
        if missing:
            raise PredictionError(f"{p}: not a neighbour profile (no column {missing[0]!r})")
        for m, g in df.groupby("model"):
            g = g[np.isfinite(g["utilisation"]) & np.isfinite(g["extra_inflation"])].sort_values("utilisation")
            u = np.concatenate([[0.0], g["utilisation"].to_numpy(float)])
            e = np.concatenate([[1.0], np.maximum(g["extra_inflation"].to_numpy(float), 1.0)])
            keep = np.concatenate([[True], np.diff(u) > 0])
            out[str(m)] = (u[keep], e[keep])
    return out


class NeighbourInterference:
    """An :class:`Interference` with the neighbour channel added: ``has_kind(m,
    "neighbour")`` for the profiled models, whose inflation at intensity u (the partner's utilisation) is the
    profile's ``e(u)``, piecewise linear and held flat past its last knot; everything else is ``inner``'s."""

    def __init__(self, inner: "Interference", profiles: dict[str, tuple[np.ndarray, np.ndarray]]):
        self.inner, self.profiles = inner, profiles

    def has_kind(self, model: str, kind: str) -> bool:
        return model in self.profiles if kind == NEIGHBOUR else has_kind(self.inner, model, kind)

    def inflation(self, model: str, kind: str, intensity: float) -> float:
        return float(self.inflations(model, kind, np.array([float(intensity)]))[0])

    def inflations(self, model: str, kind: str, intensity: np.ndarray) -> np.ndarray:
        if kind == NEIGHBOUR:
            if model not in self.profiles:
                raise PredictionError(f"no neighbour profile for model {model!r}")
            u, e = self.profiles[model]
            return np.interp(np.clip(np.asarray(intensity, float), 0.0, None), u, e)
        return _inflation_at(self.inner, model, kind, intensity)

    def pressure(self, model: str, kind: str, workers: int, load_frac: float) -> float:
        return self.inner.pressure(model, kind, workers, load_frac)

    def pressures(self, model: str, kind: str, workers: int, load_frac: np.ndarray) -> np.ndarray:
        return _pressure_at(self.inner, model, kind, workers, load_frac)


class NoInterference:
    """Tenants that do not interfere (each runs at its alone QPS* on its cores): a reference and for tests."""

    def inflation(self, model: str, kind: str, intensity: float) -> float:
        return 1.0

    def pressure(self, model: str, kind: str, workers: int, load_frac: float) -> float:
        return 0.0


@dataclass(frozen=True)
class TenantCurve:
    """The modelled latency quantile of one model on ``workers`` workers vs rate, per bootstrap replicate."""

    model: str
    workers: int
    sla_ms: float
    capacity_qps: float
    rates_qps: np.ndarray    # float[K], increasing, starting near 0
    quantile_ms: np.ndarray  # float[K, R]
    #: float[R] (or 1.0): every service time of the profile multiplied by this before any interference
    #: (:meth:`calibrated`: the factor that makes the modelled alone QPS* the measured one)
    service_scale: np.ndarray | float = 1.0
    #: CPU ms the harness (load generator, node threads) spends per query of this tenant (F2's trials)
    harness_ms_per_query: float = 0.0
    #: how far one confirmation trial's verdict scatters, in log rate (F2's ``trial_crossing_sd``; 0: none known)
    trial_sd: float = 0.0

    @property
    def replicates(self) -> int:
        return int(self.quantile_ms.shape[1])

    @property
    def effective_capacity(self) -> np.ndarray:
        """``float[R]``: the saturation throughput with :attr:`service_scale` applied."""
        return self.capacity_qps / np.broadcast_to(np.asarray(self.service_scale, float), (self.replicates,))

    def calibrated(self, measured_qps: float, lo: float = 0.2, hi: float = 5.0, iterations: int = 40
                   ) -> "TenantCurve":
        """A copy whose :attr:`service_scale` (per replicate, bisection in [lo, hi]) makes :meth:`qps_star` equal
        ``measured_qps``: the node model's level error at this worker count (a profile taken at another time, on
        a machine that drifts) is taken out, its shape — how the tail grows with rate and with inflation — kept."""
        if not measured_qps > 0:
            return self
        base = dataclasses.replace(self, service_scale=1.0)
        a, b = np.full(self.replicates, float(lo)), np.full(self.replicates, float(hi))
        for _ in range(iterations):  # qps_star falls as the service times grow
            mid = np.sqrt(a * b)
            fast = base.qps_star(mid) > measured_qps
            a, b = np.where(fast, mid, a), np.where(fast, b, mid)
        return dataclasses.replace(self, service_scale=np.sqrt(a * b))

    def with_harness(self, ms_per_query: float) -> "TenantCurve":
        """A copy with :attr:`harness_ms_per_query` set (NaN or negative: 0, no harness cost known)."""
        h = float(ms_per_query) if math.isfinite(float(ms_per_query)) and ms_per_query > 0 else 0.0
        return dataclasses.replace(self, harness_ms_per_query=h)

    def rescaled(self, factor: float) -> TenantCurve:
        """A copy whose :attr:`service_scale` is multiplied by ``factor`` (not finite or ≤ 0: unchanged) — the
        machine measured ``factor`` × slower than when the curve was calibrated (F4's anchor)."""
        f = float(factor)
        if not (math.isfinite(f) and f > 0):
            return self
        return dataclasses.replace(self, service_scale=np.asarray(self.service_scale, float) * f)

    def with_trial_sd(self, sd: float) -> TenantCurve:
        """A copy with :attr:`trial_sd` set (NaN or negative: 0, a trial's verdict taken as exact)."""
        v = float(sd) if math.isfinite(float(sd)) and sd > 0 else 0.0
        return dataclasses.replace(self, trial_sd=v)

    def qps_star(self, inflation: np.ndarray | float = 1.0) -> np.ndarray:
        """``float[R]``: QPS* with every service time multiplied by ``inflation`` (scalar or ``float[R]``) and by
        :attr:`service_scale`."""
        f = np.broadcast_to(np.asarray(inflation, float) * np.asarray(self.service_scale, float), (self.replicates,))
        sigma = self.sla_ms / f
        q = self._monotone()
        cols = np.arange(self.replicates)
        above = q > sigma[None, :]
        i = np.where(above.any(axis=0), above.argmax(axis=0), q.shape[0])  # first rate over sigma (K: none)
        i0, i1 = np.clip(i - 1, 0, q.shape[0] - 1), np.clip(i, 0, q.shape[0] - 1)
        r0, r1 = self.rates_qps[i0], self.rates_qps[i1]
        q0, q1 = q[i0, cols], q[i1, cols]
        with np.errstate(divide="ignore", invalid="ignore"):
            mid = np.where(q1 > q0, r0 + (sigma - q0) / (q1 - q0) * (r1 - r0), r0)
        out = np.where(i == 0, 0.0, np.where(i >= q.shape[0], self.rates_qps[-1], mid))
        return out / f

    def _monotone(self) -> np.ndarray:
        """The quantile curves made non-decreasing in the rate (a quantile of a queue is), cached."""
        q = self.__dict__.get("_mono")
        if q is None:
            from hera.queueing.qps import non_decreasing

            q = non_decreasing(self.quantile_ms)
            object.__setattr__(self, "_mono", q)
        return q


def tenant_curve(law, mix_items: np.ndarray, sla_ms: float, percentile: float, settings, model: str = "",
                 points: int = 40) -> TenantCurve:
    """The :class:`TenantCurve` of a :class:`hera.queueing.service.ServiceLaw` (``settings``: the model's
    :class:`hera.queueing.qps.ModelSettings`)."""
    from hera.queueing.qps import latency_quantiles

    cap = law.capacity_qps(mix_items)
    rates = cap * np.linspace(0.01, 0.995, points)
    q = latency_quantiles(law, rates, mix_items, percentile, settings)
    return TenantCurve(model, int(law.workers), float(sla_ms), float(cap), rates, q)


@dataclass(frozen=True)
class PairSplit:
    """How a node is split: cores (workers) of a and b; LLC ways of each, or None/None for a shared LLC."""

    cores_a: int
    cores_b: int
    ways_a: int | None = None
    ways_b: int | None = None
    #: True when the harness has no core of its own on this split (every core runs a worker, none reserved)
    harness_shared: bool = False

    @property
    def llc(self) -> str:
        return "shared" if self.ways_a is None else f"{self.ways_a}/{self.ways_b}"

    def cache_intensity_on(self, tenant: str) -> float | None:
        """With a way split: the share of the LLC ``tenant`` (``"a"``/``"b"``) cannot use; None when shared."""
        if self.ways_a is None:
            return None
        own = self.ways_a if tenant == "a" else self.ways_b
        return 1.0 - own / (self.ways_a + self.ways_b)


def inflation(victim: str, partner: str, partner_workers: int, partner_load: np.ndarray, cache_override: float | None,
              interference: Interference, own_load: np.ndarray | None = None) -> np.ndarray:
    """``f`` of ``victim`` next to ``partner`` at load fractions ``partner_load`` (``float[R]``); with a
    :class:`ByLoadInterference`, mixed by the victim's own utilisation ``own_load`` (``float[R]``); with a
    :class:`NeighbourInterference` outside, times the victim's neighbour extra at the partner's utilisation."""
    u = np.round(np.clip(np.asarray(partner_load, float), 0.0, 1.0), 3)
    values, back = np.unique(u, return_inverse=True)  # the distinct loads, each asked once
    if isinstance(interference, NeighbourInterference):  # the outermost layer: the partner's utilisation as pressure
        inner = interference.inner
        if not interference.has_kind(victim, NEIGHBOUR):
            return inflation(victim, partner, partner_workers, partner_load, cache_override, inner, own_load)
        nb = np.maximum(_inflation_at(interference, victim, NEIGHBOUR, values), 1.0)[back].reshape(u.shape)
        return nb * inflation(victim, partner, partner_workers, partner_load, cache_override, inner, own_load)
    x_bw = _pressure_at(interference, partner, "bandwidth", partner_workers, values)
    x_c = (np.full(values.shape, float(cache_override)) if cache_override is not None
           else _pressure_at(interference, partner, "cache", partner_workers, values))
    busy = has_kind(interference, victim, BUSY_CORE)  # the partner keeps its cores busy a share u of the time

    def at(sens: Interference) -> np.ndarray:  # the victim's inflation at the partner's pressures
        f = (np.maximum(_inflation_at(sens, victim, "bandwidth", x_bw), 1.0)
             * np.maximum(_inflation_at(sens, victim, "cache", x_c), 1.0))
        if busy:
            f = f * np.maximum(_inflation_at(sens, victim, BUSY_CORE, values), 1.0)
        return f[back].reshape(u.shape)

    if not isinstance(interference, ByLoadInterference) or own_load is None:
        return at(interference)
    rho = np.clip(np.broadcast_to(np.asarray(own_load, float), u.shape), 0.0, 1.0)
    return (1.0 - rho) * at(interference.light) + rho * at(interference.saturated)


@dataclass
class BoundaryPoint:
    """The predicted boundary of the feasible region along one ray."""

    share_a: float
    scale: np.ndarray        # float[R]
    rate_a: np.ndarray       # float[R]
    rate_b: np.ndarray
    inflation_a: np.ndarray
    inflation_b: np.ndarray
    binding: str             # the tenant that reaches its SLA first (in most replicates)


def harness_steal(a: TenantCurve, b: TenantCurve, split: PairSplit, lam_a: np.ndarray, lam_b: np.ndarray
                  ) -> np.ndarray:
    """The service-time factor ``1 / (1 − s)`` where the harness shares the workers' cores: ``s`` is the harness
    CPU both tenants' traffic needs, ``(h_a λ_a + h_b λ_b) / 1000``, spread over the split's cores (capped at
    :data:`MAX_HARNESS_STEAL`); 1 where the harness has a core of its own (the alone QPS* were measured so)."""
    if not split.harness_shared:
        return np.ones(np.shape(lam_a))
    s = (a.harness_ms_per_query * np.asarray(lam_a, float) + b.harness_ms_per_query * np.asarray(lam_b, float))
    s = np.clip(s / 1e3 / (split.cores_a + split.cores_b), 0.0, MAX_HARNESS_STEAL)
    return 1.0 / (1.0 - s)


def _inflations(a: TenantCurve, b: TenantCurve, split: PairSplit, lam_a: np.ndarray, lam_b: np.ndarray,
                interference: Interference) -> tuple[np.ndarray, np.ndarray]:
    fa = np.ones_like(lam_a)
    fb = np.ones_like(lam_b)
    g = harness_steal(a, b, split, lam_a, lam_b)
    for _ in range(FIXED_POINT_ITERATIONS):
        ua = lam_a * fa / a.effective_capacity[:np.size(lam_a)]
        ub = lam_b * fb / b.effective_capacity[:np.size(lam_b)]
        fa, fb = (g * inflation(a.model, b.model, b.workers, ub, split.cache_intensity_on("a"), interference, ua),
                  g * inflation(b.model, a.model, a.workers, ua, split.cache_intensity_on("b"), interference, ub))
    return fa, fb


def pass_probability(rate: np.ndarray, qps_star: np.ndarray, trial_sd: float) -> np.ndarray:
    """The chance that one trial at ``rate`` finds the tenant within its SLA when its QPS* (where half the trials
    pass) is ``qps_star`` and a trial's crossing scatters by ``trial_sd`` in log rate (normal): ``Φ(ln(QPS* /
    rate) / trial_sd)``; with ``trial_sd`` 0 the step ``rate <= qps_star``."""
    lam = np.asarray(rate, float)
    q = np.asarray(qps_star, float)
    if not trial_sd > 0:
        return (lam <= q).astype(float)
    from scipy.special import ndtr

    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.log(np.maximum(q, 1e-300) / np.maximum(lam, 1e-300)) / float(trial_sd)
    return np.where(q > 0, ndtr(z), 0.0)


def joint_pass_probability(lam_a: np.ndarray, q_a: np.ndarray, sd_a: float, lam_b: np.ndarray, q_b: np.ndarray,
                           sd_b: float) -> np.ndarray:
    """The chance that a *joint* trial passes — both tenants within their SLA, the measurement's criterion
    (:mod:`hera.loadgen.confirm`: the normalised tail is the larger of the two) — taking the two tenants' trial
    noise as independent: the product of their :func:`pass_probability`. The measured boundary of a ray is where
    it is one half: on a ray where both tenants reach their QPS* together that is below both (each must pass
    with probability √½), where one binds far earlier it is that tenant's QPS*."""
    return pass_probability(lam_a, q_a, sd_a) * pass_probability(lam_b, q_b, sd_b)


def boundary(a: TenantCurve, b: TenantCurve, split: PairSplit, alone_a: float, alone_b: float, share_a: float,
             interference: Interference, iterations: int = 20) -> BoundaryPoint:
    """Bisection on the scale t of the ray ``t × (share_a · alone_a, (1 − share_a) · alone_b)`` (module doc)."""
    if not 0 < share_a < 1:
        raise PredictionError(f"a ray's share must be in (0, 1), got {share_a}")
    da, db = share_a * alone_a, (1 - share_a) * alone_b
    r = min(a.replicates, b.replicates)
    lo, hi = np.zeros(r), np.full(r, 2.0 / min(share_a, 1 - share_a))  # beyond the alone QPS* of either

    def feasible(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lam_a, lam_b = t * da, t * db
        fa, fb = _inflations(a, b, split, lam_a, lam_b, interference)
        ga, gb = a.qps_star(fa)[:r], b.qps_star(fb)[:r]
        ok = joint_pass_probability(lam_a, ga, a.trial_sd, lam_b, gb, b.trial_sd) >= 0.5
        return ok, fa, fb, (lam_a / np.maximum(ga, 1e-12) >= lam_b / np.maximum(gb, 1e-12))

    for _ in range(iterations):
        mid = (lo + hi) / 2
        ok, *_ = feasible(mid)
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    _, fa, fb, a_binds = feasible(lo)
    return BoundaryPoint(float(share_a), lo, lo * da, lo * db, fa, fb, "a" if a_binds.mean() >= 0.5 else "b")


def summarise(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    a = (1 - confidence) / 2
    v = np.asarray(values, float)
    return float(np.median(v)), float(np.quantile(v, a)), float(np.quantile(v, 1 - a))


PREDICTION_COLUMNS = ["model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "llc", "share_a",
                      "ray_scale", "ray_scale_lo", "ray_scale_hi", "qps_star_a", "qps_star_a_lo", "qps_star_a_hi", "qps_star_b",
                      "qps_star_b_lo", "qps_star_b_hi", "emu", "emu_lo", "emu_hi", "inflation_a", "inflation_b",
                      "binding", "qps_alone_a", "qps_alone_b", "qps_whole_a", "qps_whole_b", "service_scale_a",
                      "service_scale_b", "trial_sd_a", "trial_sd_b", "measured_ray", "best"]


def predict_pair(curves: dict[tuple[str, int], TenantCurve], model_a: str, model_b: str, splits: list[PairSplit],
                 alone: dict[tuple[str, int], float], whole: dict[str, float], interference: Interference,
                 confidence: float = 0.95, shares: tuple[float, ...] = PREDICTED_SHARES + MEASURED_SHARES,
                 measured: tuple[float, ...] = MEASURED_SHARES) -> pd.DataFrame:
    """One row per (split, ray): the predicted boundary point with intervals and its EMU; ``best`` marks the
    split with the highest predicted EMU (over its rays). ``alone[(m, w)]``: measured alone QPS* of m on w workers
    (sets the rays); ``whole[m]``: its alone QPS* on the whole node (EMU's denominator)."""
    rows = []
    for sp in splits:
        for m, w in ((model_a, sp.cores_a), (model_b, sp.cores_b)):
            if (m, w) not in curves:
                raise PredictionError(f"no modelled latency curve of {m!r} on {w} worker(s) (its service profile "
                                      "lacks that worker count)")
        idle = [f"{m} meets no rate alone on {w} worker(s)" for m, w in ((model_a, sp.cores_a), (model_b, sp.cores_b))
                if not alone.get((m, w), 0) > 0]
        if idle:  # no ray through this split loads both tenants: not predicted, never chosen
            rows.append({"model_a": model_a, "model_b": model_b, "cores_a": sp.cores_a, "cores_b": sp.cores_b,
                         "ways_a": sp.ways_a, "ways_b": sp.ways_b, "llc": sp.llc, "best": False,
                         "qps_alone_a": alone.get((model_a, sp.cores_a), 0.0),
                         "qps_alone_b": alone.get((model_b, sp.cores_b), 0.0), "qps_whole_a": whole[model_a],
                         "qps_whole_b": whole[model_b], "measured_ray": False,
                         "note": "not predicted: " + "; ".join(idle)})
            continue
        ca, cb = curves[(model_a, sp.cores_a)], curves[(model_b, sp.cores_b)]
        qa, qb = alone[(model_a, sp.cores_a)], alone[(model_b, sp.cores_b)]
        for s in sorted(set(float(x) for x in shares)):
            p = boundary(ca, cb, sp, qa, qb, s, interference)
            emu = p.rate_a / whole[model_a] + p.rate_b / whole[model_b]
            sc, ra, rb, e = (summarise(x, confidence) for x in (p.scale, p.rate_a, p.rate_b, emu))
            rows.append({
                "model_a": model_a, "model_b": model_b, "cores_a": sp.cores_a, "cores_b": sp.cores_b,
                "ways_a": sp.ways_a, "ways_b": sp.ways_b, "llc": sp.llc, "share_a": s,
                "ray_scale": sc[0], "ray_scale_lo": sc[1], "ray_scale_hi": sc[2], "qps_star_a": ra[0], "qps_star_a_lo": ra[1],
                "qps_star_a_hi": ra[2], "qps_star_b": rb[0], "qps_star_b_lo": rb[1], "qps_star_b_hi": rb[2],
                "emu": e[0], "emu_lo": e[1], "emu_hi": e[2], "inflation_a": float(np.median(p.inflation_a)),
                "inflation_b": float(np.median(p.inflation_b)), "binding": p.binding, "qps_alone_a": qa,
                "qps_alone_b": qb, "qps_whole_a": whole[model_a], "qps_whole_b": whole[model_b],
                "service_scale_a": float(np.median(ca.service_scale)),
                "service_scale_b": float(np.median(cb.service_scale)), "trial_sd_a": ca.trial_sd,
                "trial_sd_b": cb.trial_sd,
                "measured_ray": any(math.isclose(s, x) for x in measured), "best": False, "note": "",
            })
    df = pd.DataFrame(rows, columns=PREDICTION_COLUMNS + ["note"])
    if df["emu"].notna().any():
        best = df.dropna(subset=["emu"]).groupby(["cores_a", "cores_b", "llc"], dropna=False)["emu"].max().idxmax()
        df["best"] = [(r.cores_a, r.cores_b, r.llc) == best and pd.notna(r.emu) for r in df.itertuples()]
    return df


def nearest(counts: list[int], w: int) -> int:
    """The profiled worker count nearest ``w`` (the smaller on a tie)."""
    if not counts:
        raise PredictionError("no profiled worker count")
    return min(counts, key=lambda c: (abs(c - w), c))


def alone_qps(scal: pd.DataFrame, model: str, w: int, curves: dict[tuple[str, int], TenantCurve]) -> float:
    """The alone QPS* of ``model`` on ``w`` workers: measured (F2) where profiled, else the modelled QPS* on w
    workers scaled by measured / modelled (from the profile alone) at the nearest profiled count (the model's
    error carried over)."""
    rows = scal[scal["model"] == model]
    got = rows[rows["workers"] == w]
    if len(got):
        return float(got["qps_star"].iloc[0])
    if rows.empty:
        raise PredictionError(f"the scalability table has no row for model {model!r}")
    near = nearest(sorted(int(x) for x in rows["workers"]), w)
    measured = float(rows[rows["workers"] == near]["qps_star"].iloc[0])
    model_near = rows[rows["workers"] == near]
    # the model from the profile alone (before F2's operating-point probe), as the curves here are
    col = "qps_star_model_profile" if "qps_star_model_profile" in rows.columns else "qps_star_model"
    modelled_near = float(model_near[col].iloc[0]) if col in rows.columns else math.nan
    modelled_w = float(np.median(curves[(model, w)].qps_star()))
    if not (modelled_near > 0 and math.isfinite(modelled_near)):
        return modelled_w
    return modelled_w * measured / modelled_near


def _f2_rows(scal: pd.DataFrame, model: str, column: str) -> pd.DataFrame:
    """``model``'s F2 rows with a value in ``column`` (none where the table predates the column)."""
    rows = scal[scal["model"] == model]
    if column not in rows.columns:
        return rows.iloc[0:0]
    return rows.dropna(subset=[column])


def trial_sd(scal: pd.DataFrame, model: str, w: int) -> float:
    """F2's ``trial_crossing_sd`` of ``model`` on the profiled worker count nearest ``w`` (NaN where the table
    predates the column or the count had too few trials)."""
    rows = _f2_rows(scal, model, "trial_crossing_sd")
    if rows.empty:
        return math.nan
    near = nearest(sorted(int(x) for x in rows["workers"]), w)
    return float(rows[rows["workers"] == near]["trial_crossing_sd"].iloc[0])


def served_speed(scal: pd.DataFrame, model: str, w: int) -> float:
    """How fast F2's confirmation trials of ``model`` were served against the service stage's profile, on the
    profiled worker count nearest ``w``: its operating-point probe's drift times the trials' own service drift
    (> 1: slower than profiled). NaN where the table predates the columns."""
    rows = _f2_rows(_f2_rows(scal, model, "operating_drift"), model, "service_drift")
    if rows.empty:
        return math.nan
    near = nearest(sorted(int(x) for x in rows["workers"]), w)
    r = rows[rows["workers"] == near].iloc[0]
    return float(r["operating_drift"]) * float(r["service_drift"])


#: What the calibration matches (``colocation.calibrate_to``): ``qps`` the measured alone QPS* (F2's medians of
#: three repeats), ``served`` F2's measured service speed (:func:`served_speed`; the model's own QPS* level then
#: stays, its queueing error included). docs/DESIGN.md, "Pair prediction", says why ``qps`` is the default.
CALIBRATION_TARGETS = ("qps", "served")


def calibrate_curves(curves: dict[tuple[str, int], TenantCurve], alone: dict[tuple[str, int], float],
                     scal: pd.DataFrame, target: str) -> dict[tuple[str, int], TenantCurve]:
    """Every (model, workers) curve calibrated to ``target`` (one of :data:`CALIBRATION_TARGETS`)."""
    if target not in CALIBRATION_TARGETS:
        raise PredictionError(f"colocation.calibrate_to must be one of {', '.join(CALIBRATION_TARGETS)}, "
                              f"got {target!r}")
    if target == "qps":
        return {k: c.calibrated(alone[k]) for k, c in curves.items()}
    out = {}
    for (m, w), c in curves.items():
        speed = served_speed(scal, m, w)
        if not (math.isfinite(speed) and speed > 0):
            raise PredictionError(f"colocation.calibrate_to: served needs F2's operating_drift and service_drift "
                                  f"for model {m!r}; the scalability table has none")
        out[(m, w)] = dataclasses.replace(c, service_scale=np.full(c.replicates, speed))
    return out


def harness_ms_per_query(scal: pd.DataFrame, model: str) -> float:
    """The harness CPU per query of ``model``'s traffic (ms), from its F2 rows with the fewest workers (where the
    harness ran on a core of its own); NaN where the table predates the column."""
    rows = _f2_rows(scal, model, "harness_cpu_ms_per_query")
    if rows.empty:
        return math.nan
    return float(rows.sort_values("workers")["harness_cpu_ms_per_query"].iloc[0])


#: How interference profiles are read for prediction: sensitivity in the saturated regime (a tenant near its
#: QPS* runs mostly with a backlog), mean service-time inflation, and a pressure this machine could not observe
#: (an unusable calibration: its reporter could not tell the antagonist's intensities apart) counted as none.
INTERFERENCE_OPTIONS = {"regime": "saturated", "statistic": "mean", "unobservable": "zero"}


#: How a victim's sensitivity is read (``colocation.sensitivity``): ``saturated`` (the saturated regime at every
#: load) or ``by_load`` (:class:`ByLoadInterference`: light and saturated mixed by the victim's own utilisation).
SENSITIVITY_MODES = ("saturated", "by_load")


def _outer_memory(interference: Interference) -> Interference:
    """The memory profiles' reader under the neighbour channel, if any."""
    return interference.inner if isinstance(interference, NeighbourInterference) else interference


def _innermost(interference: Interference) -> Interference:
    """The profiles under every wrapper (neighbour channel, grid)."""
    while hasattr(interference, "inner"):
        interference = interference.inner
    return interference


def interference_options(statistic: str = "mean") -> dict[str, str]:
    """:data:`INTERFERENCE_OPTIONS` with the sensitivity ``statistic`` of ``colocation.statistic``."""
    from hera.profile.interference.table import SENSITIVITY_METRICS

    if statistic not in SENSITIVITY_METRICS:
        raise PredictionError(f"colocation.statistic must be one of {', '.join(SENSITIVITY_METRICS)}, "
                              f"got {statistic!r}")
    return {**INTERFERENCE_OPTIONS, "statistic": statistic}


def interference_from_files(paths, calibration=None, sensitivity: str = "saturated", statistic: str = "mean",
                            neighbour=None) -> Interference:
    """The interference profiles of the models (``hera profile interference`` outputs); none given: the tenants are
    assumed not to interfere (:class:`NoInterference`), which every prediction row then says. ``sensitivity``:
    one of :data:`SENSITIVITY_MODES`; ``statistic``: the inflation read (``colocation.statistic``); ``neighbour``:
    neighbour profiles (``hera profile neighbour`` outputs; :class:`NeighbourInterference` around the rest), none:
    no neighbour channel."""
    inner = _memory_interference(paths, calibration, sensitivity, statistic)
    if not neighbour:
        return inner
    return NeighbourInterference(inner, read_neighbour_profiles(list(neighbour)))


def _memory_interference(paths, calibration, sensitivity: str, statistic: str) -> Interference:
    if sensitivity not in SENSITIVITY_MODES:
        raise PredictionError(f"colocation.sensitivity must be one of {', '.join(SENSITIVITY_MODES)}, "
                              f"got {sensitivity!r}")
    options = interference_options(statistic)
    if not paths:
        return NoInterference()
    from hera.profile.interference.table import InterferenceProfiles, load_interference

    profiles = load_interference(paths, calibration, **options)
    if sensitivity == "saturated":
        return GridInterference(profiles)
    light = InterferenceProfiles(profiles.table, **{**options, "regime": "light"})  # read once
    return ByLoadInterference(GridInterference(light), GridInterference(profiles))


def node_splits(config: dict, resctrl_root: str | None = None) -> tuple[list[PairSplit], str]:
    """Every split of the study's node (cores, and LLC ways where resctrl is verified and asked for), each saying
    whether the harness shares the workers' cores on it."""
    from pathlib import Path

    from hera.harness import study_cores
    from hera.machine import resctrl_info
    from hera.profile.splits import plan_splits
    from hera.topology import study_plan

    resctrl = resctrl_info(Path(resctrl_root or "/sys/fs/resctrl"))
    cores = study_cores(config)
    splits, partitioning = plan_splits(cores, resctrl, bool(config["colocation"]["llc_splits"]))
    reserved = bool(study_plan(config).harness_cpus)
    return [PairSplit(len(s.cpus_a), len(s.cpus_b), s.ways_a, s.ways_b,
                      harness_shared=not reserved and len(s.cpus_a) + len(s.cpus_b) >= len(cores))
            for s in splits], partitioning


def pair_curves(config: dict, models: list[str], sla: dict, scal: pd.DataFrame, services: dict[str, str],
                sizes: list[int]) -> tuple[dict[tuple[str, int], TenantCurve], dict[tuple[str, int], float],
                                           dict[str, float], float]:
    """Every (model, workers) curve the prediction reads, for ``sizes`` workers: the node model's latency curve
    of the model's service profile (deterministic seeds: the same curve wherever it is built), with its harness
    cost, trial noise and calibration; ``(curves, alone QPS* per (model, workers), harness ms per query per model,
    seconds spent on the curves)``."""
    import time

    from hera.harness import derived_seed
    from hera.profile.scalability import model_settings
    from hera.profile.service import mix_sizes, read_samples, service_law

    pct = float(config["sla"]["percentile"])
    curves: dict[tuple[str, int], TenantCurve] = {}
    t0 = time.perf_counter()
    for m in models:
        samples = read_samples(services[m], m)
        profiled = sorted(int(w) for w in samples["workers"].unique())
        for w in sizes:
            stream = f"pair-curve/{m}/{w}"
            ms = model_settings(config, stream)
            mix = mix_sizes(config, ms.n_queries, derived_seed(int(config["seed"]), "model-sizes", stream))
            near = nearest(profiled, w)
            law = service_law(samples, near, int(config["batch_size"]), source=f"service profile {services[m]}")
            if near != w:  # a split size the study did not profile: the nearest profile's service times on w workers
                law = law.with_workers(w)
            curves[(m, w)] = tenant_curve(law, mix, sla[m]["sla_ms"], pct, ms, model=m)
    t_curves = time.perf_counter() - t0
    harness = {m: harness_ms_per_query(scal, m) for m in models}
    curves = {k: c.with_harness(harness[k[0]]) for k, c in curves.items()}
    if config["colocation"].get("trial_noise", True):  # joint trials fail below both boundaries (module doc, 5)
        curves = {k: c.with_trial_sd(trial_sd(scal, k[0], k[1])) for k, c in curves.items()}
    alone = {(m, w): alone_qps(scal, m, w, curves) for m in models for w in sizes}
    if config["colocation"].get("calibrate", True):  # the node model's level error out, its shape kept
        curves = calibrate_curves(curves, alone, scal, str(config["colocation"].get("calibrate_to", "qps")))
    return curves, alone, harness, t_curves


def run(config: dict, models: list[str], t1, scalability, services: dict[str, str], interference: Interference,
        out, resctrl_root: str | None = None, log=None) -> pd.DataFrame:
    """Predict every pair of ``models`` on every split of the study's node; write ``out`` with provenance."""
    import itertools
    import time

    from hera.harness import read_t1
    from hera.profile import common
    from hera.provenance import write_table

    if len(models) < 2:
        raise PredictionError(f"pair predictions need at least two models, got {models}")
    missing = [m for m in models if m not in services]
    if missing:
        raise PredictionError(f"no service profile given for model {missing[0]!r}")
    sla = read_t1(t1, models)
    scal = common.read_scalability(scalability, models)
    splits, partitioning = node_splits(config, resctrl_root)
    sizes = sorted({s.cores_a for s in splits} | {s.cores_b for s in splits})
    curves, alone, harness, t_curves = pair_curves(config, models, sla, scal, services, sizes)
    whole = {m: common.qps_whole_node(scal, m) for m in models}
    conf = float(config["model"]["confidence"])
    parts = []
    t1_ = time.perf_counter()
    for a, b in itertools.combinations(models, 2):
        rays = tuple(float(x) for x in config["colocation"].get("rays") or MEASURED_SHARES)
        parts.append(predict_pair(curves, a, b, splits, alone, whole, interference, conf,
                                  PREDICTED_SHARES + rays, rays))
        if log:
            best = parts[-1][parts[-1]["best"].astype(bool)]
            log(f"[predict] {a} + {b}: " + (f"best split {int(best['cores_a'].iloc[0])}+{int(best['cores_b'].iloc[0])}"
                                            f" LLC {best['llc'].iloc[0]}, EMU {best['emu'].max():.3f}" if len(best)
                                            else "no split loads both tenants (see notes)"))
    df = pd.concat(parts, ignore_index=True)
    df["llc_partitioning"] = partitioning
    df["scale"] = config["scale"]
    per_pair = (time.perf_counter() - t1_) / max(len(parts), 1)
    how = ("no interference profiles: tenants assumed not to interfere"
           if isinstance(_innermost(interference), NoInterference)
           else "interference: " + ", ".join(
               f"{k} {v}" for k, v in interference_options(str(config["colocation"].get("statistic", "mean"))).items())
           + ("; sensitivity by the victim's own load (light to saturated)"
              if isinstance(_outer_memory(interference), ByLoadInterference) else ""))
    busy = [m for m in models if has_kind(interference, m, BUSY_CORE)]
    if busy:
        how += (f"; a busy core at the partner's utilisation for {', '.join(busy)} (their memory sensitivities read "
                "net of it)")
    near = [m for m in models if has_kind(interference, m, NEIGHBOUR)]
    if near:
        how += f"; a loaded neighbour's extra at the partner's utilisation for {', '.join(near)}"
    known = {m: h for m, h in harness.items() if math.isfinite(h)}
    how += ("; harness CPU per query (ms) " + ", ".join(f"{m} {h:.3g}" for m, h in known.items()) if known
            else "; harness CPU per query unknown (scalability table without it): not counted")
    noisy = {k: c.trial_sd for k, c in curves.items() if c.trial_sd > 0}
    how += ("; boundary where a joint trial passes half the time, trial noise in log rate " + ", ".join(
        f"{m}/{w} {v:.3g}" for (m, w), v in sorted(noisy.items())) if noisy
        else "; trials taken as exact (colocation.trial_noise off, or no trial_crossing_sd in the scalability table)")
    stamp = (f"predicted from O(N) profiles ({how}): curves {t_curves:.1f} s for {len(curves)} (model, workers), "
             f"{per_pair:.2f} s per pair for {len(splits)} split(s)")
    df["note"] = [f"{n}; {stamp}" if n else stamp for n in df["note"].fillna("")]
    write_table(df, out, config=config, seed=config["seed"])
    return df
