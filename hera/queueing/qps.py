"""Latency quantiles vs rate and a modelled QPS* with a bootstrap confidence interval.

Method (:func:`modelled_qps_star`):

1. ``replicates`` bootstrap replicates: each resamples every service-time pool and the dispatch delays with
   replacement (uncertainty of the measured samples) and draws its own Poisson arrivals (simulation noise);
2. a grid of rates from ``grid_lo_frac`` to ``grid_hi_frac`` of the modelled saturation throughput; every
   (rate, replicate) lane is simulated with :func:`hera.queueing.des.simulate` (common random numbers across
   the rates of one replicate) and its latency quantile computed after ``warmup_queries`` (steady state) or,
   with ``ModelSettings.trial``, as the mean log tail of short trials shaped like the confirmation's (what the
   measurement measures: a trial of ~50 queries from an idle node is optimistic near saturation, and the
   model must answer the same question to be compared with it);
3. per replicate, the quantile curve is made non-decreasing in the rate (:func:`non_decreasing`) and QPS* is
   where it crosses the SLA (linear interpolation between the last rate below and the first above); a second,
   finer grid is simulated between the lowest and highest bracketing rates of
   all replicates and the crossing found again on both grids together;
4. the modelled QPS* is the median over replicates, its interval the equal-tailed percentile interval at
   ``confidence``. A replicate whose quantile is above the SLA already at the lowest rate gives 0 (SLA out of
   reach); one still below it at the highest rate gives that rate (noted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from hera.errors import ConfigError
from hera.queueing.des import Pools, SubBatchPlan, poisson_unit_arrivals, simulate
from hera.queueing.service import ServiceLaw


@dataclass(frozen=True)
class TrialShape:
    """The trials a modelled tail stands for (the confirmation's, :mod:`hera.loadgen.confirm`): each starts
    from an idle node, ``warmup_queries`` unmeasured queries, then ``max(min_queries, ⌈rate · trial_s⌉)``
    measured ones; its tail is their quantile. The modelled tail at a rate is the geometric mean over
    ``≥ min_trials`` such trials (and about ``measured_per_rate`` measured queries), which is what the
    control-variate-adjusted trial tails of the confirmation estimate (:class:`TailModel`)."""

    min_queries: int
    trial_s: float
    warmup_queries: int
    min_trials: int = 8
    measured_per_rate: int = 1200

    def __post_init__(self) -> None:
        if self.min_queries < 1 or not self.trial_s > 0 or self.warmup_queries < 0 or self.min_trials < 2:
            raise ConfigError("trial shape: need min_queries >= 1, trial_s > 0, warmup_queries >= 0, "
                              "min_trials >= 2")

    def measured(self, rate_qps: float) -> int:
        return max(int(self.min_queries), math.ceil(float(rate_qps) * self.trial_s))

    def trials(self, rate_qps: float) -> int:
        return max(int(self.min_trials), math.ceil(self.measured_per_rate / self.measured(rate_qps)))


#: Seconds between two modelled trials: every trial starts from an idle node.
TRIAL_GAP_S = 1e5


@dataclass(frozen=True)
class ModelSettings:
    """How the node model is evaluated. ``trial``: the tails are those of the confirmation's short trials
    (:class:`TrialShape`); None: steady-state tails over ``n_queries`` after ``warmup_queries``."""

    n_queries: int = 3000
    warmup_queries: int = 300
    replicates: int = 20
    grid_points: int = 14
    refine_points: int = 10
    grid_lo_frac: float = 0.02
    grid_hi_frac: float = 0.995
    confidence: float = 0.95
    seed: int = 0
    trial: TrialShape | None = None

    def __post_init__(self) -> None:
        if self.n_queries < 100 or not 0 <= self.warmup_queries < self.n_queries // 2:
            raise ConfigError("model settings: need n_queries >= 100 and 0 <= warmup_queries < n_queries / 2")
        if self.replicates < 2 or self.grid_points < 3 or self.refine_points < 2:
            raise ConfigError("model settings: need replicates >= 2, grid_points >= 3, refine_points >= 2")
        if not 0 < self.grid_lo_frac < self.grid_hi_frac < 1.5:
            raise ConfigError("model settings: need 0 < grid_lo_frac < grid_hi_frac")
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(f"model settings: confidence must be in [0.5, 1), got {self.confidence}")


@dataclass
class ModelledQPS:
    """A modelled QPS* and the latency curve it came from."""

    qps_star: float
    qps_star_lo: float
    qps_star_hi: float
    per_replicate: np.ndarray
    capacity_qps: float
    percentile: float
    sla_ms: float
    rates_qps: np.ndarray = field(repr=False)        # float[K], sorted
    quantile_ms: np.ndarray = field(repr=False)      # float[K, R]: latency quantile per rate and replicate
    note: str = ""

    def curve(self, confidence: float = 0.95) -> dict[str, np.ndarray]:
        """Median and equal-tailed interval of the latency quantile per rate (columns for a tidy table)."""
        a = (1 - confidence) / 2
        return {"rate_qps": self.rates_qps, "latency_ms_model": np.median(self.quantile_ms, axis=1),
                "latency_ms_model_lo": np.quantile(self.quantile_ms, a, axis=1),
                "latency_ms_model_hi": np.quantile(self.quantile_ms, 1 - a, axis=1)}

    def latency_at(self, rate_qps: float) -> float:
        """Median modelled latency quantile at ``rate_qps`` (interpolated on the curve; NaN outside it)."""
        med = np.median(self.quantile_ms, axis=1)
        if not self.rates_qps[0] <= rate_qps <= self.rates_qps[-1]:
            return math.nan
        return float(np.interp(rate_qps, self.rates_qps, med))


def latency_quantiles(law: ServiceLaw, rates_qps: np.ndarray, items: np.ndarray, percentile: float,
                      settings: ModelSettings) -> np.ndarray:
    """``float[K, R]``: the ``percentile`` latency (ms) at each rate for each bootstrap replicate."""
    if not 0 < percentile < 1:
        raise ConfigError(f"percentile must be in (0, 1), got {percentile}")
    rates = np.asarray(rates_qps, float)
    if rates.ndim != 1 or rates.size == 0 or (rates <= 0).any():
        raise ConfigError("queue model: rates must be positive")
    items = np.asarray(items, np.int64)[: settings.n_queries]
    if settings.trial is not None:
        return _trial_quantiles(law, rates, items, percentile, settings)
    n, r, k = items.size, settings.replicates, rates.size
    seeds = np.random.SeedSequence([settings.seed, 7919]).spawn(3)
    unit = poisson_unit_arrivals(n, r, np.random.default_rng(seeds[0]))
    sizes = np.unique(SubBatchPlan.of(items, law.batch_size).size)
    pools = Pools(law, sizes, r, np.random.default_rng(seeds[1]), bootstrap=True)
    lanes_rate = np.repeat(rates, r)
    lanes_rep = np.tile(np.arange(r), k)
    arrivals = unit[:, lanes_rep] / lanes_rate[None, :]
    lat = simulate(law, arrivals, items, replicate=lanes_rep, pools=pools,
                   rng=np.random.default_rng(seeds[2]))
    q = np.quantile(lat[settings.warmup_queries:], percentile, axis=0)
    return q.reshape(k, r)


def _trial_quantiles(law: ServiceLaw, rates: np.ndarray, items: np.ndarray, percentile: float,
                     settings: ModelSettings) -> np.ndarray:
    """``float[K, R]``: per rate and bootstrap replicate, the geometric mean of the ``percentile`` latency of
    short trials shaped like the confirmation's (:class:`TrialShape`), each from an idle node. The trials of
    one rate run back to back in one lane, :data:`TRIAL_GAP_S` apart; the query sizes are consecutive windows
    of ``items``, the same for every replicate and, where trials have the same length, every rate."""
    shape = settings.trial
    r, k = settings.replicates, rates.size
    seeds = np.random.SeedSequence([settings.seed, 7927]).spawn(3)
    pools = Pools(law, np.unique(SubBatchPlan.of(items, law.batch_size).size), r,
                  np.random.default_rng(seeds[0]), bootstrap=True)
    # All rates in one simulation (lanes = rate x replicate), the trials of a rate back to back in its lanes.
    # A lane shorter than the longest is padded with far-apart arrivals after its end: FCFS, so they cannot
    # delay the lane's own queries. The query sizes at a position are the same in every lane.
    per = [shape.measured(x) + shape.warmup_queries for x in rates]
    m = [shape.trials(x) for x in rates]
    length = max(pi * mi for pi, mi in zip(per, m))
    arrivals = np.empty((length, k * r))
    for i, rate in enumerate(rates):
        rng = np.random.default_rng(seeds[1])  # the same arrivals at every rate (common random numbers)
        unit = poisson_unit_arrivals(per[i], m[i] * r, rng).reshape(per[i], m[i], r)
        lane = (unit / float(rate) + (np.arange(m[i]) * TRIAL_GAP_S)[None, :, None]).transpose(1, 0, 2)
        n_i = per[i] * m[i]
        arrivals[:n_i, i * r:(i + 1) * r] = lane.reshape(n_i, r)
        arrivals[n_i:, i * r:(i + 1) * r] = (m[i] + np.arange(1, length - n_i + 1))[:, None] * TRIAL_GAP_S
    its = items[np.arange(length) % items.size]
    lat = simulate(law, arrivals, its, replicate=np.tile(np.arange(r), k), pools=pools,
                   rng=np.random.default_rng(seeds[2]))
    out = np.empty((k, r))
    for i in range(k):
        own = lat[:per[i] * m[i], i * r:(i + 1) * r].reshape(m[i], per[i], r)
        tails = np.quantile(own[:, shape.warmup_queries:, :], percentile, axis=1)
        out[i] = np.exp(np.log(np.maximum(tails, 1e-9)).mean(axis=0))
    return out


def non_decreasing(quantile_ms: np.ndarray) -> np.ndarray:
    """``float[K, R]`` quantile curves (rates along axis 0) made non-decreasing in the rate by a running maximum.
    A latency quantile of a queue does not fall as the load rises, but the trial-shaped estimate wobbles by a
    few percent where the trials' length changes with the rate (other query windows); the first crossing of any
    level is the same on both curves, only the interpolation below it can move."""
    return np.maximum.accumulate(np.asarray(quantile_ms, float), axis=0)


def _crossing(rates: np.ndarray, q: np.ndarray, sla_ms: float) -> tuple[float, int]:
    """Where ``q`` (increasing in ``rates``) first exceeds ``sla_ms``: (interpolated rate, index above)."""
    above = np.flatnonzero(q > sla_ms)
    if above.size == 0:
        return float(rates[-1]), rates.size
    i = int(above[0])
    if i == 0:
        return 0.0, 0
    r0, r1, q0, q1 = rates[i - 1], rates[i], q[i - 1], q[i]
    return float(r0 + (sla_ms - q0) / (q1 - q0) * (r1 - r0)), i


def modelled_qps_star(law: ServiceLaw, items: np.ndarray, sla_ms: float, percentile: float,
                      settings: ModelSettings | None = None) -> ModelledQPS:
    """QPS* of the modelled node: the rate at which the ``percentile`` latency reaches ``sla_ms`` (module doc)."""
    settings = settings or ModelSettings()
    if not sla_ms > 0:
        raise ConfigError(f"queue model: the SLA must be positive, got {sla_ms}")
    items = np.asarray(items, np.int64)[: settings.n_queries]
    if items.size < settings.n_queries:
        raise ConfigError(f"queue model: {items.size} query sizes given, {settings.n_queries} needed")
    cap = law.capacity_qps(items)
    grid = cap * np.linspace(settings.grid_lo_frac, settings.grid_hi_frac, settings.grid_points)
    q = non_decreasing(latency_quantiles(law, grid, items, percentile, settings))
    cross = [_crossing(grid, q[:, j], sla_ms) for j in range(settings.replicates)]
    idx = np.array([i for _, i in cross])
    rates, qs = grid, q
    inside = (idx > 0) & (idx < grid.size)
    if inside.any():
        lo = grid[idx[inside].min() - 1]
        hi = grid[idx[inside].max()]
        fine = np.linspace(lo, hi, settings.refine_points + 2)[1:-1]
        qf = latency_quantiles(law, fine, items, percentile, settings)
        rates = np.concatenate([grid, fine])
        order = np.argsort(rates, kind="mergesort")
        rates, qs = rates[order], non_decreasing(np.concatenate([q, qf])[order])
    per = np.array([_crossing(rates, qs[:, j], sla_ms)[0] for j in range(settings.replicates)])
    a = (1 - settings.confidence) / 2
    notes = []
    if (per == 0).any():
        notes.append(f"{int((per == 0).sum())} of {per.size} replicates: SLA not met even at "
                     f"{rates[0]:.3g} queries/s ({settings.grid_lo_frac:g} of capacity)")
    if (per >= rates[-1]).any():
        notes.append(f"{int((per >= rates[-1]).sum())} of {per.size} replicates: SLA still met at "
                     f"{rates[-1]:.3g} queries/s ({settings.grid_hi_frac:g} of capacity)")
    return ModelledQPS(qps_star=float(np.median(per)), qps_star_lo=float(np.quantile(per, a)),
                       qps_star_hi=float(np.quantile(per, 1 - a)), per_replicate=per, capacity_qps=float(cap),
                       percentile=float(percentile), sla_ms=float(sla_ms), rates_qps=rates, quantile_ms=qs,
                       note="; ".join(notes))


def unloaded_quantiles(law: ServiceLaw, items: np.ndarray, percentiles: tuple[float, ...],
                       seed: int = 0) -> dict[float, float]:
    """Latency quantiles (ms) of queries like ``items`` each served alone on an idle node (light regime)."""
    items = np.asarray(items, np.int64)
    arrivals = np.arange(items.size, dtype=float) * 1e6  # far apart: every query finds the node idle
    lat = simulate(law, arrivals, items, rng=np.random.default_rng(seed))
    return {p: float(np.quantile(lat, p)) for p in percentiles}


class TailModel:
    """Control variate for measured trials (docs/DESIGN.md, "Measured confirmation").

    A measured trial's tail latency varies from run to run mostly because of *its* arrivals and query sizes (a
    burst, a run of large queries). The model, fed with exactly those arrivals and sizes, shows the same
    excursion; its expected tail over fresh arrivals at the same rate and length does not. So
    ``log T_adjusted = log T_measured − (log T_model(these arrivals) − E[log T_model(rate, length)])`` estimates
    the measured system's expected tail with far less variance, and without bias whatever the model's error
    (a fixed coefficient; the correction has expectation zero under the model's own law).
    """

    def __init__(self, law: ServiceLaw, mix_items: np.ndarray, percentile: float, *, seed: int = 0,
                 service_replicates: int = 8, size_sequences: int = 8, arrival_lanes: int = 4):
        if not 0 < percentile < 1:
            raise ConfigError(f"percentile must be in (0, 1), got {percentile}")
        self.law, self.p = law, float(percentile)
        self.mix = np.asarray(mix_items, np.int64)
        if self.mix.size == 0:
            raise ConfigError("tail model: no query sizes to draw from")
        self.seed = int(seed)
        self.service_replicates, self.size_sequences, self.arrival_lanes = (
            int(service_replicates), int(size_sequences), int(arrival_lanes))
        self._expected: dict[tuple, float] = {}

    def _pooled_log_tail(self, lat_chunks: list[np.ndarray]) -> np.ndarray:
        """``float[L]``: log of the pooled quantile over chunks of ``float[n_i, L]`` latencies."""
        pooled = np.concatenate(lat_chunks, axis=0)
        return np.log(np.maximum(np.quantile(pooled, self.p, axis=0), 1e-9))

    def realised(self, chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
        """For these chunks ``(arrivals_s, items, measured)``: the median over service draws of the model's log
        tail, and each measured query's modelled span (ms, mean over the draws; in chunk order)."""
        rng = np.random.default_rng([self.seed, 1])
        lanes = self.service_replicates
        lats, spans = [], []
        for arrivals, items, measured in chunks:
            arr = np.repeat(np.asarray(arrivals, float)[:, None], lanes, axis=1)
            lat, span = simulate(self.law, arr, np.asarray(items, np.int64), replicate=np.arange(lanes),
                                 pools=Pools(self.law, SubBatchPlan.of(items, self.law.batch_size).size, lanes, rng,
                                             bootstrap=False), rng=rng, spans=True)
            keep = np.asarray(measured, bool)
            lats.append(lat[keep])
            spans.append(span[keep].mean(axis=1))
        return float(np.median(self._pooled_log_tail(lats))), np.concatenate(spans)

    def realised_log_tail(self, chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> float:
        """Median over service draws of the model's log tail for these chunks ``(arrivals_s, items, measured)``."""
        return self.realised(chunks)[0]

    def expected_log_tail(self, rate_qps: float, chunk_queries: list[int], warmup_queries: int) -> float:
        """Mean over fresh arrivals and sizes of the model's log tail for trials of ``chunk_queries`` measured
        queries per chunk (each after ``warmup_queries`` unmeasured ones) at ``rate_qps``."""
        key = (round(float(rate_qps), 9), tuple(int(n) for n in chunk_queries), int(warmup_queries))
        if key in self._expected:
            return self._expected[key]
        rng = np.random.default_rng([self.seed, 2, len(self._expected)])
        out = []
        for _ in range(self.size_sequences):
            lats = []
            for n in chunk_queries:
                total = int(n) + int(warmup_queries)
                items = self.mix[rng.integers(0, self.mix.size, total)]
                arr = poisson_unit_arrivals(total, self.arrival_lanes, rng) / float(rate_qps)
                lat = simulate(self.law, arr, items, replicate=np.zeros(self.arrival_lanes, np.int64), rng=rng)
                lats.append(lat[warmup_queries:])
            out.append(self._pooled_log_tail(lats))
        self._expected[key] = float(np.mean(np.concatenate(out)))
        return self._expected[key]
