"""Typed settings and cores of the interference profiles, from the study config and its core plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hera.errors import ConfigError, HeraError, ResourceError


class InterferenceError(HeraError):
    """An interference profile or its calibration is missing, incomplete or asked for the impossible."""


@dataclass(frozen=True)
class Settings:
    """The ``interference:`` config section, the antagonist kinds and intensities of ``profile:``, the seed.

    ``intensities``: the non-zero antagonist intensities (the baseline, intensity 0, is always measured);
    ``load_fracs``: load fractions of the pressure measurement (1 = saturation, closed loop; below 1 an open
    Poisson stream at that fraction of the saturation throughput in the model's service profile)."""

    kinds: tuple[str, ...]
    intensities: tuple[float, ...]
    light_queries_per_size: int
    light_queries: int
    saturation_s: float
    saturation_queries: int
    warmup_s: float
    window_s: float
    sample_s: float
    cycles: int
    load_fracs: tuple[float, ...]
    reporter_intensity: float
    pressure_workers: tuple[int, ...] | int | None
    bootstrap: int
    confidence: float
    drift_tolerance: float
    depth_per_worker: int
    seed: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Settings":
        icfg, prof = config["interference"], config["profile"]
        kinds = tuple(dict.fromkeys(prof["antagonists"]))
        if not kinds:
            raise ConfigError("config key profile.antagonists: an interference profile needs at least one "
                              "antagonist kind (bandwidth, cache)")
        xs = []
        for x in prof["intensities"]:
            x = float(x)
            if not 0.0 <= x <= 1.0:
                raise ConfigError(f"config key profile.intensities: intensity {x:g} is out of range [0, 1]")
            xs.append(x)
        nonzero = tuple(sorted({x for x in xs if x > 0}))
        if not nonzero:
            raise ConfigError("config key profile.intensities: an interference profile needs an intensity "
                              f"> 0 (got {xs})")
        fracs = tuple(sorted({float(u) for u in icfg["load_fracs"]}))
        if any(not 0.0 < u <= 1.0 for u in fracs):
            raise ConfigError(f"config key interference.load_fracs: load fractions must be in (0, 1], "
                              f"not {list(fracs)}")
        pw = icfg.get("pressure_workers")
        return cls(kinds, nonzero, int(icfg["light_queries_per_size"]), int(icfg["light_queries"]),
                   float(icfg["saturation_s"]), int(icfg["saturation_queries"]), float(icfg["warmup_s"]),
                   float(icfg["window_s"]),
                   float(icfg["sample_s"]), int(icfg["cycles"]), fracs, float(icfg["reporter_intensity"]),
                   pw if pw is None or isinstance(pw, int) else tuple(sorted({int(w) for w in pw})),
                   int(icfg["bootstrap"]),
                   float(icfg["confidence"]), float(icfg["drift_tolerance"]),
                   int(config["service"]["depth_per_worker"]), int(config["seed"]))

    def service_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """``config`` with the light-load query counts of this section, for :mod:`hera.profile.service`."""
        svc = {**config["service"], "light_queries_per_size": self.light_queries_per_size,
               "light_queries": self.light_queries}
        return {**config, "service": svc}


@dataclass(frozen=True)
class Cores:
    """Where everything runs (from the study's core plan, :meth:`hera.topology.CorePlan.memory`).

    Sensitivity: the model's one worker on ``worker``, the antagonist on ``antagonists`` (the other cores of
    its L3 domain). Calibration: the reporter on ``reporter`` (the domain's last core), the antagonist on
    ``calibration`` (the domain's other cores: as many as in the sensitivity runs, so an intensity means the
    same pressure in both). Pressure: the model's w workers on the first w of ``pressure_pool`` (every worker
    core of the plan but the reporter's); ``harness``: the plan's reserved harness cores (may be empty)."""

    worker: tuple[int, ...]
    antagonists: tuple[int, ...]
    reporter: tuple[int, ...]
    calibration: tuple[int, ...]
    pressure_pool: tuple[int, ...]
    harness: tuple[int, ...]
    note: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Cores":
        from hera.harness import study_plan

        plan = study_plan(config)
        if plan.n_workers < 2:
            raise ResourceError(f"an interference profile needs a core for the reporter and the antagonists "
                                f"beside the model's worker: this study has {plan.n_workers} usable core(s) "
                                f"({', '.join(map(str, plan.worker_cpus)) or 'none'})")
        mem = plan.memory()
        pool = tuple(c for c in plan.worker_cpus if c not in set(mem.probe))
        return cls(tuple(mem.worker), tuple(mem.antagonists), tuple(mem.probe), tuple(mem.pressure_workers),
                   pool, tuple(plan.harness_cpus), mem.note)

    def worker_counts(self, settings: Settings) -> tuple[int, ...]:
        """Worker counts of the pressure measurement: every count a co-location split k + (C − k) can give a
        model (1 … C − 1), or ``interference.pressure_workers`` (a list; an integer N: N counts spread
        evenly)."""
        most = len(self.pressure_pool)
        if settings.pressure_workers is None:
            return tuple(range(1, most + 1))
        if isinstance(settings.pressure_workers, int):
            n = min(settings.pressure_workers, most)
            return tuple(sorted({int(round(1 + i * (most - 1) / max(n - 1, 1))) for i in range(n)}))
        bad = [w for w in settings.pressure_workers if not 1 <= w <= most]
        if bad:
            raise ConfigError(f"config key interference.pressure_workers: {bad[0]} worker(s) do not fit "
                              f"beside the reporter (1 to {most} on this study's {most + 1} worker cores)")
        return settings.pressure_workers

    def pressure_workers(self, w: int) -> tuple[int, ...]:
        return self.pressure_pool[:w]
