"""Load-generator settings: one flat, MLPerf-LoadGen-like dataclass with units in the field names.

A run issues queries of one *stream* per tenant. Its length is decided like MLPerf LoadGen's
Server scenario: queries keep being scheduled until **both** ``max(n_queries, min_queries)`` queries
and ``max(duration_s, min_duration_s)`` seconds of arrivals have been reached (unset values count as 0;
at least one must be positive). ``warmup_queries`` more are scheduled in front and excluded from
every statistic (their rows carry ``warmup=True``).

Every source of randomness has its own seed: ``arrival_seed`` (inter-arrival gaps), ``size_seed``
(items per query), ``sample_seed`` (where in the sample library a query starts). A tenant's stream is
drawn from ``(seed, crc32(tenant name))`` so that tenants sharing one settings object still get
independent streams, and adding a tenant does not change the others'.

Example (YAML)::

    target_qps: 200
    duration_s: 10
    percentile: 0.95
    latency_bound_ms: 25
    max_items: 700
    query_sizes: {kind: production}
    arrival: poisson
    arrival_seed: 0
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

from hera.errors import ConfigError

ARRIVALS = ("poisson", "time_varying")


@dataclass
class LoadgenSettings:
    """Everything the open-loop driver needs to build and run one tenant's query stream.

    ``query_sizes`` is ``{"kind": ..., **params}`` for ``hera.workload.sizes.QuerySizes(kind, max_items,
    **params)``. ``arrival='time_varying'`` needs ``duration_s`` and exactly one of ``arrival_trace``
    (a CSV file with columns ``t_s, rate_qps``, linearly interpolated, read by
    ``hera.workload.arrivals.Trace``) or ``arrival_formula`` (a numpy
    expression in ``t`` seconds, e.g. ``"100 + 50*sin(2*pi*t/60)"``); ``target_qps`` is then only used
    as the nominal rate reported in summaries. ``max_outstanding`` is a safety stop: when a tenant has
    that many queries in flight, issuing stops and the run is reported as aborted.
    ``completion_timeout_s``: how long to wait after the last issue for queries still in flight; those
    that never complete are reported as ``timeout`` failures.
    """

    target_qps: float = 10.0
    duration_s: float | None = None
    n_queries: int | None = None
    min_queries: int = 0
    min_duration_s: float = 0.0
    percentile: float = 0.95
    latency_bound_ms: float | None = None
    max_items: int = 1024
    query_sizes: dict[str, Any] = field(default_factory=lambda: {"kind": "production"})
    arrival: str = "poisson"
    arrival_trace: str | None = None
    arrival_formula: str | None = None
    arrival_seed: int = 0
    size_seed: int = 1
    sample_seed: int = 2
    max_outstanding: int = 10_000
    warmup_queries: int = 0
    completion_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        _pos("target_qps", self.target_qps)
        if self.duration_s is not None:
            _pos("duration_s", self.duration_s)
        if self.n_queries is not None:
            _int("n_queries", self.n_queries, 1)
        _int("min_queries", self.min_queries, 0)
        _nonneg("min_duration_s", self.min_duration_s)
        if not (self.n_queries or self.duration_s or self.min_queries or self.min_duration_s):
            raise ConfigError("loadgen settings: set n_queries, duration_s, min_queries or min_duration_s")
        if not isinstance(self.percentile, numbers.Real) or not 0.0 < float(self.percentile) < 1.0:
            raise ConfigError(f"loadgen settings: percentile must be in (0, 1), got {self.percentile!r}")
        if self.latency_bound_ms is not None:
            _pos("latency_bound_ms", self.latency_bound_ms)
        _int("max_items", self.max_items, 1)
        if not isinstance(self.query_sizes, dict) or "kind" not in self.query_sizes:
            raise ConfigError(
                f"loadgen settings: query_sizes must be a mapping with a 'kind', got {self.query_sizes!r}"
            )
        from hera.workload.sizes import QuerySizes

        params = {k: v for k, v in self.query_sizes.items() if k != "kind"}
        QuerySizes(self.query_sizes["kind"], self.max_items, **params)  # its ConfigError names a bad kind/parameter
        if self.arrival not in ARRIVALS:
            raise ConfigError(
                f"loadgen settings: unknown arrival {self.arrival!r}; known: {', '.join(ARRIVALS)}"
            )
        if self.arrival == "time_varying":
            if self.duration_s is None:
                raise ConfigError("loadgen settings: arrival 'time_varying' needs duration_s")
            if (self.arrival_trace is None) == (self.arrival_formula is None):
                raise ConfigError(
                    "loadgen settings: arrival 'time_varying' needs exactly one of arrival_trace, "
                    "arrival_formula"
                )
        elif self.arrival_trace is not None or self.arrival_formula is not None:
            raise ConfigError("loadgen settings: arrival_trace/arrival_formula need arrival 'time_varying'")
        for name in ("arrival_seed", "size_seed", "sample_seed"):
            _int(name, getattr(self, name), 0)
        _int("max_outstanding", self.max_outstanding, 1)
        _int("warmup_queries", self.warmup_queries, 0)
        _pos("completion_timeout_s", self.completion_timeout_s)

    # ------------------------------------------------------------------ derived values
    def target_count(self) -> int:
        """Measured (non-warmup) queries the stream must contain at least."""
        return max(self.n_queries or 0, self.min_queries)

    def target_duration_s(self) -> float:
        """Seconds of arrivals the stream must span at least."""
        return max(self.duration_s or 0.0, self.min_duration_s)

    def replace(self, **changes: Any) -> "LoadgenSettings":
        """A validated copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "LoadgenSettings":
        """Strict construction: an unknown key or a wrong type raises :class:`ConfigError` naming it."""
        if not isinstance(d, dict):
            raise ConfigError(f"loadgen settings must be a mapping, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(
                    f"unknown loadgen setting {key!r}; known: {', '.join(sorted(known))}"
                )
        try:
            return cls(**d)
        except TypeError as exc:  # pragma: no cover - dataclass signature errors
            raise ConfigError(f"loadgen settings: {exc}") from None


def _pos(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
        raise ConfigError(f"loadgen settings: {name} must be a positive number, got {v!r}")


def _nonneg(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
        raise ConfigError(f"loadgen settings: {name} must be a number >= 0, got {v!r}")


def _int(name: str, v: Any, minimum: int) -> None:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ConfigError(f"loadgen settings: {name} must be an integer >= {minimum}, got {v!r}")
