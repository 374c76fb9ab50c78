"""Service times, light-load latencies, capacity and expected QPS* of a model on w workers, from its spec.

A query of n items is cut into sub-batches of ``batch_size`` items (the node's dispatch); a sub-batch of b items
takes ``served_factor × (overhead_ms[kind] + b · (FLOPs/item ÷ flops_per_s[kind] + gathered bytes/item ÷ gather
rate))`` (:class:`~hera.plan.calibration.Calibration`; in process, on uniform ids, for T1). With w workers on one socket the gathers share the
socket's bandwidth: a worker gathers at ``min(per-core rate, socket rate / w)``. From these:

- light-load latency of a query on w workers: dispatch delay + the makespan of its sub-batches spread over w
  workers (longest first);
- capacity (saturation throughput): ``w`` ÷ the mean work of a query of the mix (sub-batches + a worker's gap);
- expected QPS*: ``load × capacity`` with ``load = 1 − qps_star_slack / sla.multiplier`` (a looser SLA lets the
  queue run fuller) — it sets how long a trial of ``confirm.min_queries`` queries runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from hera.plan.calibration import Calibration
from hera.plan.inputs import MachineInfo, ModelCost


@dataclass(frozen=True)
class QueryMix:
    """The study's query-size law: distinct sizes and their probabilities, and the sub-batch size."""

    sizes: tuple[int, ...]
    probs: tuple[float, ...]
    batch_size: int
    discrete: bool

    @property
    def mean_items(self) -> float:
        return float(np.dot(self.sizes, self.probs))

    def sub_batches(self, n: int) -> list[int]:
        full, rest = divmod(int(n), self.batch_size)
        return [self.batch_size] * full + ([rest] if rest else [])


def query_mix(config: Mapping[str, Any]) -> QueryMix:
    """:class:`QueryMix` of config ``queries`` (a continuous law: 2000 seeded draws, grouped)."""
    from hera.harness import query_sizes
    from hera.workload.sizes import QuerySizes

    qs = QuerySizes.from_dict({**query_sizes(dict(config)), "max_items": int(config["queries"]["max_items"])})
    sup = qs.support()
    if sup is None:
        draws = qs.sample(2000, np.random.default_rng(0))
        values, counts = np.unique(draws, return_counts=True)
        sup = (values, counts / counts.sum())
    return QueryMix(tuple(int(v) for v in sup[0]), tuple(float(p) for p in sup[1]), int(config["batch_size"]),
                    qs.support() is not None)


@dataclass(frozen=True)
class ModelRates:
    """Rates of one model on the described machine (see the module docstring)."""

    cost: ModelCost
    mix: QueryMix
    machine: MachineInfo
    cal: Calibration
    sla: Mapping[str, Any]

    def gather_bytes_per_s(self, workers: int, served: bool = True) -> float:
        per_core = self.cal.gather_bytes_per_s if served else self.cal.uniform_gather_bytes_per_s
        if self.machine.copy_gbps is not None:
            per_core *= min(1.0, self.machine.copy_gbps / self.cal.reference_copy_gbps)
        socket = self.cal.socket_gather_bytes_per_s * self.machine.worker_sockets
        return min(per_core, socket / max(1, workers))

    def sub_batch_ms(self, items: int, workers: int = 1, served: bool = True) -> float:
        """One sub-batch of ``items`` items (through the node when ``served``, else in process)."""
        c = self.cost
        per_item_s = (c.flops_per_item / self.cal.flops(c.kind)
                      + c.gathered_bytes_per_item / self.gather_bytes_per_s(workers, served))
        t = self.cal.overhead(c.kind) + items * per_item_s * 1e3
        return t * (self.cal.served_factor if served else 1.0)

    def query_work_ms(self, n: int, workers: int) -> float:
        """Worker time of one query of ``n`` items (its sub-batches, each with a worker's gap)."""
        return sum(self.sub_batch_ms(b, workers) + self.cal.worker_gap_ms for b in self.mix.sub_batches(n))

    def light_latency_ms(self, n: int, workers: int) -> float:
        """Latency of one query of ``n`` items alone on ``workers`` workers."""
        loads = [0.0] * max(1, workers)
        for t in sorted((self.sub_batch_ms(b, workers) for b in self.mix.sub_batches(n)), reverse=True):
            i = loads.index(min(loads))
            loads[i] += t
        return self.cal.dispatch_ms + max(loads)

    def light_mean_ms(self, workers: int) -> float:
        """Mean latency of the light-load queries: every distinct size equally often (stratified), or the law's
        mix for a continuous law."""
        lat = [self.light_latency_ms(n, workers) for n in self.mix.sizes]
        if self.mix.discrete:
            return float(np.mean(lat))
        return float(np.dot(lat, self.mix.probs))

    def mean_work_ms(self, workers: int) -> float:
        return float(sum(p * self.query_work_ms(n, workers) for n, p in zip(self.mix.sizes, self.mix.probs)))

    def capacity_qps(self, workers: int) -> float:
        return workers * 1e3 / self.mean_work_ms(workers)

    def qps_star_load(self) -> float:
        sla = self.sla
        if sla.get("rule", "size_medians_p99") not in ("size_medians_p99", "mix_p99"):  # a fixed target
            return 0.5
        return max(self.cal.qps_star_load_min, 1 - self.cal.qps_star_slack / float(sla.get("multiplier", 3.0)))

    def qps_star(self, workers: int) -> float:
        return self.qps_star_load() * self.capacity_qps(workers)


def model_rates(costs: Mapping[str, ModelCost], config: Mapping[str, Any], machine: MachineInfo,
                cal: Calibration) -> dict[str, ModelRates]:
    mix = query_mix(config)
    sla = dict(config.get("sla") or {})
    return {m: ModelRates(c, mix, machine, cal, sla) for m, c in costs.items()}


def clamp_rate(rate_qps: float) -> float:
    """A rate that is positive and finite (a model that reaches no rate still runs its trials somewhere)."""
    return rate_qps if rate_qps > 0 and math.isfinite(rate_qps) else 1.0
