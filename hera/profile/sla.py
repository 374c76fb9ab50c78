"""The SLA of each model, from its service profile (docs/DESIGN.md, "SLA rule").

Rules (config ``sla.rule``):

- ``mix_p99`` (default): ``sla_ms = max(multiplier × p99, jitter_floor_multiple × dispatch p95)`` where p99 is
  the unloaded latency of the whole query-size mix on one worker, served through the node (stratified light-load
  run of the service profile, each size weighted by its probability), and dispatch p95 the node's delay from a
  query's submission to its first sub-batch on an idle node (the platform's own jitter, from a few hundred
  one-item probes: a p95 of hundreds of samples is stable where a p99 of a few dozen is one outlier);
- ``targets``: ``sla.targets_ms[model]``, e.g. a published per-model target for the paper's hardware.

Either way a model must have **headroom**: its unloaded one-worker p95 at most ``1 / MIN_HEADROOM`` of the SLA;
otherwise queueing has no room before the SLA is reached and QPS* is decided by service times alone (a 1% change
of service time moves it by several %). A model without headroom is an error naming both numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from hera.errors import HeraError

MIN_HEADROOM = 2.0


class SlaError(HeraError):
    """An SLA cannot be set as asked (no headroom, no target, no service profile)."""


@dataclass(frozen=True)
class SlaDecision:
    """The SLA of one model and the numbers it came from."""

    model: str
    sla_ms: float
    sla_rule: str
    latency_ms_p50_unloaded: float
    latency_ms_p95_unloaded: float
    latency_ms_p99_unloaded: float
    dispatch_ms_p95: float
    headroom: float

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def decide(sla_config: dict[str, Any], model: str, summary: pd.DataFrame) -> SlaDecision:
    """The SLA of ``model`` from its service-profile quantile table (``hera.profile.service``)."""
    from hera.profile.service import ServiceProfileError, mix_latency

    try:
        mix = mix_latency(summary, model, 1)
    except ServiceProfileError as exc:
        raise SlaError(f"no SLA for model {model!r}: {exc}") from None
    rows = summary[(summary["model"] == model) & (summary["workers"] == 1)
                   & (summary["statistic"] == "dispatch_delay")]
    dispatch = float(rows["p95_ms"].iloc[0]) if len(rows) else 0.0
    p50, p95, p99 = float(mix["p50_ms"]), float(mix["p95_ms"]), float(mix["p99_ms"])
    rule = sla_config.get("rule", "mix_p99")
    if rule == "targets":
        targets = sla_config.get("targets_ms") or {}
        if model not in targets:
            raise SlaError(f"sla.rule is 'targets' but sla.targets_ms has no target for model {model!r}")
        sla = float(targets[model])
        text = f"sla_ms = sla.targets_ms[{model}] = {sla:g} ms (per-model target)"
    else:
        k, floor_k = float(sla_config["multiplier"]), float(sla_config["jitter_floor_multiple"])
        sla = max(k * p99, floor_k * dispatch)
        text = (f"sla_ms = max({k:g} x p99 of the unloaded 1-worker latency of the query mix served through the node "
                f"({p99:.4g} ms), {floor_k:g} x p95 dispatch delay of an idle node ({dispatch:.3g} ms))")
    headroom = sla / p95 if p95 > 0 else math.inf
    if headroom < MIN_HEADROOM:
        raise SlaError(f"model {model!r}: the SLA {sla:.4g} ms leaves no headroom: its unloaded 1-worker p95 is "
                       f"{p95:.4g} ms, more than 1/{MIN_HEADROOM:g} of the SLA (raise sla.multiplier or the target)")
    return SlaDecision(model, sla, text, p50, p95, p99, dispatch, headroom)


def read_summaries(paths: list[str]) -> pd.DataFrame:
    """The service-profile quantile tables of several models, concatenated."""
    from hera.profile.service import ServiceProfileError, outputs

    frames = []
    for p in paths:
        csv = outputs(p).summary
        if not csv.is_file():
            raise ServiceProfileError(f"service profile {csv} does not exist (run `hera profile service` first)")
        frames.append(pd.read_csv(csv))
    if not frames:
        raise SlaError("no service profiles given: the SLA comes from them")
    return pd.concat(frames, ignore_index=True)
