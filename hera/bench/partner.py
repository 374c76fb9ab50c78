"""``hera bench busy-partner``: how much a partner's load slows a tenant on the core beside it, measured directly.

A two-tenant node (the pair path of the co-location stage, :func:`hera.profile.common.start_node`): the *tenant*
on the study's first core at a fixed ``load`` × its one-worker QPS*, the *partner* on the second core at each of
``fractions`` × its own, in ``blocks`` randomised blocks (every fraction once per block, seeded order), each
window ``seconds`` of open-loop Poisson load for both, after one unrecorded warm-up window; within a block the
tenant's stream is the same at every fraction (common random numbers, :func:`hera.profile.neighbour.measure_windows`,
which the neighbour profile shares). Per window: the tenant's mean sub-batch span and latency quantiles, and the
harness's CPU (load generator, dispatch, collectors) as a share of one core. Block by block, each fraction's values over those at the lightest fraction separate the partner's effect from the machine's drift.

Beside the measurement stands what the pair prediction assumes for the same point, where the run's interference
profiles are given: the tenant's inflation next to the partner at that load (its sensitivity at the partner's
pressure, the partner's load fraction taken as its fraction of QPS*, which understates it a little). The two
disagree where a channel the profiles do not measure carries the interference
(docs/DESIGN.md, "The even split is over-predicted").
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hera.errors import HeraError


def check_inputs(load: float, fractions: list[float], blocks: int, seconds: float) -> list[float]:
    """The partner's distinct load fractions, sorted; a clear error for anything out of range."""
    fr = sorted({float(f) for f in fractions})
    if len(fr) < 2 or not all(math.isfinite(f) and 0 < f <= 1.5 for f in fr):
        raise HeraError(f"--fractions needs at least two distinct fractions of the partner's QPS* in (0, 1.5], "
                        f"not {list(fractions)}")
    if not (math.isfinite(load) and 0 < load <= 1.5):
        raise HeraError(f"--load must be a fraction of the tenant's QPS* in (0, 1.5], not {load}")
    if int(blocks) < 1:
        raise HeraError(f"--blocks must be a positive integer, not {blocks}")
    if not (math.isfinite(seconds) and seconds >= 1):
        raise HeraError(f"--seconds must be at least 1, not {seconds}")
    return fr


def busy_partner(config: dict[str, Any], model: str, partner: str, qps: dict[str, float], sla: dict[str, float],
                 load: float, fractions: list[float], blocks: int, seconds: float, opts: Any,
                 interference: Any = None) -> dict[str, Any]:
    """The figure (module doc). ``qps``/``sla``: each tenant model's one-worker QPS* and SLA; ``opts``: the
    node options (:class:`hera.harness.nodes.NodeOptions`); ``interference``: the run's profiles (any
    :class:`hera.profile.pair_prediction.Interference`) or None."""
    from hera.harness import study_cores
    from hera.profile.neighbour import measure_windows

    fr = check_inputs(load, fractions, blocks, seconds)
    cores = study_cores(config)
    windows = measure_windows(config, model, partner, qps, sla, load, fr, blocks, seconds, opts,
                              tag="busy-partner", log=lambda m: print(m, flush=True))
    return {"model": model, "partner": partner, "load": load, "tenant_qps": round(load * qps[model], 3),
            "sla_ms": sla[model], "cores": [cores[0], cores[1]], "blocks": int(blocks), "seconds": seconds,
            "windows": windows, "by_fraction": by_fraction(windows, interference, model, partner)}


def by_fraction(windows: list[dict[str, Any]], interference: Any, model: str, partner: str) -> dict[str, Any]:
    """Per partner fraction: the medians over blocks, and each value over the same block's at the lightest
    fraction (median and range over blocks); beside them the predicted inflation where profiles are given."""
    import pandas as pd

    df = pd.DataFrame(windows)
    lightest = df["fraction"].min()
    base = df[df["fraction"] == lightest].set_index("block")
    out: dict[str, Any] = {}
    for f, g in df.groupby("fraction"):
        g = g.set_index("block")
        entry: dict[str, Any] = {k: round(float(g[k].median()), 4) for k in
                                 ("service_ms_mean", "latency_ms_mean", "latency_ms_p95", "harness_cores")}
        for k in ("service_ms_mean", "latency_ms_p95"):
            ratio = (g[k] / base[k].reindex(g.index)).dropna()
            entry[f"{k}_vs_lightest"] = {"median": round(float(ratio.median()), 4) if len(ratio) else None,
                                         "min": round(float(ratio.min()), 4) if len(ratio) else None,
                                         "max": round(float(ratio.max()), 4) if len(ratio) else None}
        if interference is not None:
            from hera.profile.pair_prediction import inflation

            pred = float(inflation(model, partner, 1, np.array([float(f)]), None, interference)[0])
            light = float(inflation(model, partner, 1, np.array([float(lightest)]), None, interference)[0])
            entry["predicted_inflation_vs_lightest"] = round(pred / light, 4)
        out[f"{f:g}"] = entry
    return out
