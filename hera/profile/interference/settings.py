"""Typed settings and cores of the interference profiles, from the study config and its core plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hera.errors import ConfigError, HeraError, ResourceError


class InterferenceError(HeraError):
    """An interference profile or its calibration is missing, incomplete or asked for the impossible."""


def _counts_setting(v: Any) -> tuple[int, ...] | int | None:
    return v if v is None or isinstance(v, int) else tuple(sorted({int(w) for w in v}))


def pressure_counts(setting: Any, profile_workers: Any, n_worker_cores: int) -> tuple[int, ...]:
    """Worker counts of the pressure measurement on a plan of ``n_worker_cores`` worker cores, one of which runs
    the reporter: ``interference.pressure_workers`` (an integer N: N counts spaced geometrically from 1 to C − 1;
    a list: these counts) through :func:`hera.topology.worker_counts`, or (None) the counts of
    ``profile.workers`` that fit beside the reporter — so the service profiles hold each one's saturation
    throughput. A one-line :class:`~hera.errors.ConfigError` for a count that does not fit."""
    from hera.topology import worker_counts

    most = n_worker_cores - 1
    if most < 1:
        raise ResourceError(f"an interference profile needs a core for the reporter beside the model's workers: "
                            f"this study has {n_worker_cores} worker core(s)")
    if setting is not None:
        return worker_counts(setting, most, "interference.pressure_workers")
    counts = tuple(w for w in worker_counts(profile_workers, n_worker_cores) if w <= most)
    if not counts:
        raise ConfigError(f"config key profile.workers: no worker count fits beside the interference reporter "
                          f"(at most {most}); set interference.pressure_workers")
    return counts


@dataclass(frozen=True)
class Settings:
    """The ``interference:`` config section, the antagonist kinds and intensities of ``profile:``, the seed.

    ``intensities``: the non-zero antagonist intensities (the baseline, intensity 0, is always measured);
    ``calibration_cycles``: the calibration's cycles (None in the config: ``cycles``);
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
    calibration_cycles: int
    load_fracs: tuple[float, ...]
    reporter_intensity: float
    pressure_workers: tuple[int, ...] | int | None
    profile_workers: tuple[int, ...] | int | None
    bootstrap: int
    confidence: float
    drift_tolerance: float
    depth_per_worker: int
    seed: int
    #: also profile the sensitivity to a busy core (the ``cpu`` antagonist; ``interference.busy_core``)
    busy_core: bool = False

    @property
    def sensitivity_kinds(self) -> tuple[str, ...]:
        """The antagonist kinds of the sensitivity profile: the memory kinds, then ``cpu`` where asked for (the
        calibration and the pressure are of the memory kinds only: a partner's busy-core pressure is its own
        utilisation, no reporter needed)."""
        return self.kinds + (("cpu",) if self.busy_core and "cpu" not in self.kinds else ())

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
        cyc = int(icfg["cycles"])
        cal_cyc = icfg.get("calibration_cycles")
        return cls(kinds, nonzero, int(icfg["light_queries_per_size"]), int(icfg["light_queries"]),
                   float(icfg["saturation_s"]), int(icfg["saturation_queries"]), float(icfg["warmup_s"]),
                   float(icfg["window_s"]),
                   float(icfg["sample_s"]), cyc, cyc if cal_cyc is None else int(cal_cyc), fracs,
                   float(icfg["reporter_intensity"]),
                   pw if pw is None or isinstance(pw, int) else tuple(sorted({int(w) for w in pw})),
                   _counts_setting(prof.get("workers")),
                   int(icfg["bootstrap"]),
                   float(icfg["confidence"]), float(icfg["drift_tolerance"]),
                   int(config["service"]["depth_per_worker"]), int(config["seed"]),
                   bool(icfg.get("busy_core", False)))

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
        """Worker counts of the pressure measurement (:func:`pressure_counts`)."""
        return pressure_counts(settings.pressure_workers, settings.profile_workers, len(self.pressure_pool) + 1)

    def pressure_workers(self, w: int) -> tuple[int, ...]:
        return self.pressure_pool[:w]
