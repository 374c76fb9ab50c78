"""Calibration constants of the cost estimator, measured on the development machine (a 2-core AMD EPYC VM,
32 MiB L3, no resctrl; docs/DESIGN.md "Cost estimator") and chosen on the slow side where runs disagreed.

Sources: the F1 latency profiles, T1, the service and scalability profiles and Snakemake's ``benchmarks/<scale>/``
of the committed `default` reference run and of a `ci` run:

- **sub-batch service time** of ``b`` items served through the node on sample-library ids: ``overhead_ms[kind]
  + b · (FLOPs/item ÷ flops_per_s[kind] + gathered bytes/item ÷ gather_bytes_per_s)``. Fitted to F1's
  one-worker service times of 4–64 items at `default` scale (within 12% at 64 items for seven models; RMC1 comes
  out 1.6x slow): dense layers run at 34–80 GFLOP/s (DIN and DIEN lowest: attention and GRU steps are many small
  ops), embedding rows are gathered at 20+ GB/s with the production ids' locality (RMC1 22, RMC2 31);
  in process on uniform ids (T1) gathers reach only ``uniform_gather_bytes_per_s`` (8.5–9.4 GB/s for RMC1 and
  RMC2, in or out of the LLC);
- the node and its Python processes: ``cli_s`` (a ``hera`` command importing torch and TorchRec: 4.3 s of CPU),
  ``node_start_s`` (a job's first node: the forkserver imports torch; later nodes of the job start in 0.2 s),
  tables pre-faulted at ``prefault_bytes_per_s``;
- the confirmation procedure (:mod:`hera.loadgen.confirm`): trials per repeat, chunks per trial, the share of
  repeats re-tested and the overhead of each chunk (waiting for an idle node, the control variate's model);
- the QPS* a tenant reaches as a share of its capacity: ``1 − qps_star_slack / sla.multiplier`` (0.8 at the
  default multiplier 3; measured 0.67–1.04 of the node model's capacity in the timed `default` run, median 0.85): trial rates, and so the length of a trial of
  ``min_queries`` queries, follow from it.

A machine with a measured single-thread copy bandwidth (``hera machine --bandwidth``) below this VM's
``reference_copy_gbps`` gathers proportionally slower; a faster one is not credited (estimates stay on the slow
side), nor is a faster core. Every constant can be overridden (``Calibration(**changes)``) when a run on the
target machine measured it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from hera.errors import ConfigError


def _overheads() -> dict[str, float]:
    return {"dlrm": 1.0, "ncf": 0.3, "wnd": 1.1, "mtwnd": 1.5, "din": 0.4, "dien": 2.7}


def _flops() -> dict[str, float]:
    return {"dlrm": 70e9, "ncf": 40e9, "wnd": 80e9, "mtwnd": 72e9, "din": 34e9, "dien": 45e9}


@dataclass(frozen=True)
class Calibration:
    """Constants of the cost model (units in the names); defaults measured on the development VM."""

    # sub-batch service time through the node (F1 at `default`; T1 in process)
    overhead_ms: Mapping[str, float] = field(default_factory=_overheads)
    flops_per_s: Mapping[str, float] = field(default_factory=_flops)
    default_overhead_ms: float = 2.7           # a model kind not measured here: the slowest measured kind
    default_flops_per_s: float = 34e9
    gather_bytes_per_s: float = 20e9           # one worker's embedding gathers on production ids (locality)
    uniform_gather_bytes_per_s: float = 8.5e9  # in process on uniform ids (T1)
    socket_gather_bytes_per_s: float = 60e9    # all workers of one socket together (conservative)
    reference_copy_gbps: float = 27.7          # this VM's `hera machine --bandwidth` single-thread copy
    # through the node
    served_factor: float = 1.15               # margin: saturated regime, noise
    dispatch_ms: float = 0.3                   # submission -> first sub-batch on an idle node
    worker_gap_ms: float = 0.3                 # idle time of a worker between sub-batches at saturation
    qps_star_slack: float = 0.6                # QPS* / capacity = 1 - slack / sla.multiplier (0.8 at 3)
    qps_star_load_min: float = 0.3             # ... but at least this (and 0.5 with per-model SLA targets)
    # processes
    cli_s: float = 3.0                         # a `hera` command importing torch + TorchRec
    light_cli_s: float = 2.0                   # a `hera` command without torch (results, figures, workload)
    node_start_s: float = 1.5                  # a job's first node: the forkserver imports torch
    node_restart_s: float = 0.5                # a later node of the same job (forkserver warm: 0.2 s measured)
    prefault_bytes_per_s: float = 2e9          # tables pre-faulted by the workers at start
    resize_s: float = 0.3                      # one run-time resize (or LLC-way change)
    build_bytes_per_s: float = 400e6           # random table rows written by `hera models build`
    library_bytes_per_s: float = 100e6         # sample-library ids and dense features generated
    venv_s: float = 90.0                       # `with-env.sh` creating .venv (index or wheelhouse)
    snakemake_start_s: float = 10.0            # parse, schema check, core plan, DAG (dry run: 4 s on the VM)
    snakemake_job_s: float = 0.5               # per job: scheduling, checksums
    # confirmation (hera.loadgen.confirm)
    trials_per_repeat: float = 2.6             # 2 at least; timed default run: 2.5 (F2), 2.9 (F4); loaded VM 3.9
    chunks_per_trial: float = 1.4              # VM: 1.35
    retest_share: float = 0.05                 # repeats re-tested (timed default run: 0 of 48 in F2, 2 of 135 in F4; loaded VM 10 of 48)
    remeasure_share: float = 0.02              # points confirmed 0 and measured again, whole (confirm.remeasure_zero):
    #                                            1 of 16 in run 35, none in runs 31-34, 36
    recheck_share: float = 0.4                 # operating probes outside service.operating_recheck (1.15): 5-8 of 16
    #                                            points in runs 31 and 33 and a quiet F2 stage (2026-12-03)
    chunk_overhead_s: float = 0.6              # drain, wait for an idle node, streams, control variate (timed default run: 0.6)
    model_s_per_lane_query: float = 0.5e-6     # node model (hera.queueing): seconds per query x rate x replicate
    #                                            (0.56-2.2 s per F2 point, mean 0.93, in the timed run of a8aea75)
    # co-location
    colocation_slowdown: float = 0.7           # a tenant's QPS* next to its partner / alone on the same cores
    boundary_s: float = 0.17                   # pair prediction, per pair and worker core: the rays' boundaries
    #                                            (0.34 s per pair of 2 cores' one split, 28 pairs, d88c79d)
    # interference profiles
    antagonist_start_s: float = 0.3            # spawn and settle one antagonist / reporter
    antagonist_slowdown: float = 1.2           # light-load queries next to an antagonist (F3 of the reference run)
    # serving experiments
    serving_overhead_s: float = 3.0            # per load step: drain, streams, summary

    def with_changes(self, changes: Mapping[str, str]) -> "Calibration":
        """A copy with numeric fields set from ``{name: text}`` (``hera plan --calibrate NAME=VALUE``);
        :class:`ConfigError` naming an unknown or non-numeric field."""
        import dataclasses

        numeric = {f.name for f in dataclasses.fields(self) if f.type in ("float", float)}
        out = {}
        for name, text in changes.items():
            if name not in numeric:
                raise ConfigError(f"--calibrate {name}: not a numeric calibration constant (known: "
                                  f"{', '.join(sorted(numeric))})")
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"--calibrate {name}={text}: not a number") from None
            if not value >= 0:
                raise ConfigError(f"--calibrate {name}={text}: must be >= 0")
            out[name] = value
        return dataclasses.replace(self, **out)

    def overhead(self, kind: str) -> float:
        return float(self.overhead_ms.get(kind, self.default_overhead_ms))

    def flops(self, kind: str) -> float:
        return float(self.flops_per_s.get(kind, self.default_flops_per_s))
