"""The SLA of each model, from its service profile (docs/DESIGN.md, "SLA rule").

Rules (config ``sla.rule``):

- ``size_medians_p99`` (default): ``sla_ms = max(multiplier × p99, jitter_floor_multiple × dispatch p95)`` where
  p99 is taken over the query-size mix of each size's **median** unloaded latency on one worker, served through
  the node (stratified light-load run of the service profile, each size weighted by its probability), and
  dispatch p95 the node's delay from a query's submission to its first sub-batch on an idle node (the platform's
  own jitter, from a few hundred one-item probes: a p95 of hundreds of samples is stable where a p99 of a few
  dozen is one outlier). A continuous size law has no per-size medians: the pooled p99 is used, and the rule's
  text says so;
- ``mix_p99``: the same with the pooled p99 of every light query (a stall of the machine during the profile
  enters the SLA: on the shared VM it moved SLAs by up to 3.7× between runs);
- ``targets``: ``sla.targets_ms[model]``, e.g. a published per-model target for the paper's hardware.

Either way a model must have **headroom**: its unloaded one-worker p95 at most ``1 / MIN_HEADROOM`` of the SLA
(under ``size_medians_p99`` the p95 over the sizes' medians, the same statistic as the SLA's base, so a stall in
the profile cannot fail a run the rule was made to ignore it for; under the other rules the pooled p95);
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
#: ``sla.rule`` where a config names none (the schema's default)
DEFAULT_RULE = "size_medians_p99"


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
    latency_ms_p95_size_medians: float
    latency_ms_p99_size_medians: float
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
    try:
        by_size = mix_latency(summary, model, 1, "mix_latency_size_medians")
        p95_sizes, p99_sizes = float(by_size["p95_ms"]), float(by_size["p99_ms"])
    except ServiceProfileError:
        p95_sizes = p99_sizes = math.nan
    unloaded = p95  # the p95 the headroom is measured against
    rule = sla_config.get("rule", DEFAULT_RULE)
    if rule == "targets":
        targets = sla_config.get("targets_ms") or {}
        if model not in targets:
            raise SlaError(f"sla.rule is 'targets' but sla.targets_ms has no target for model {model!r}")
        sla = float(targets[model])
        text = f"sla_ms = sla.targets_ms[{model}] = {sla:g} ms (per-model target)"
    else:
        k, floor_k = float(sla_config["multiplier"]), float(sla_config["jitter_floor_multiple"])
        if rule == "size_medians_p99" and math.isfinite(p99_sizes):
            base, what = p99_sizes, "p99 over the query mix of each size's median unloaded 1-worker latency"
            unloaded = p95_sizes
        elif rule == "size_medians_p99":
            base, what = p99, ("p99 of the unloaded 1-worker latency of the query mix (pooled: the profile has no "
                               "per-size medians)")
        else:
            base, what = p99, "p99 of the unloaded 1-worker latency of the query mix"
        sla = max(k * base, floor_k * dispatch)
        text = (f"sla_ms = max({k:g} x {what} served through the node ({base:.4g} ms), {floor_k:g} x p95 dispatch "
                f"delay of an idle node ({dispatch:.3g} ms))")
    headroom = sla / unloaded if unloaded > 0 else math.inf
    if headroom < MIN_HEADROOM:
        raise SlaError(f"model {model!r}: the SLA {sla:.4g} ms leaves no headroom: its unloaded 1-worker p95 is "
                       f"{unloaded:.4g} ms, more than 1/{MIN_HEADROOM:g} of the SLA (raise sla.multiplier or the "
                       "target)")
    return SlaDecision(model, sla, text, p50, p95, p99, p95_sizes, p99_sizes, dispatch, headroom)


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
