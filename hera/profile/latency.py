"""F1: latency of one worker vs sub-batch size (service time at low load).

Method: a node with a single tenant and one worker pinned to the study's first core; its sub-batch size is set
to the largest size measured, so every query of ``b ≤ max(batch_sizes)`` items is exactly one sub-batch. For each
``b`` in ``profile.batch_sizes``: a few warm-up queries, then ``profile.latency_repeats`` queries issued one at a
time (closed loop, so no queueing: this is service time, not QPS*), each from a random place in the sample
library. ``latency_ms_*`` is submit → end of the sub-batch (what a client sees at low load, including the
node's dispatch); ``service_ms_p50`` is the worker's compute time alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.profile import common

COLUMNS = ["model", "batch_size", "n_samples", "latency_ms_p50", "latency_ms_p95", "latency_ms_mean",
           "latency_ms_min", "service_ms_p50", "core", "scale", "quantized"]


def measure(config: dict[str, Any], model: str, opts: common.NodeOptions | None = None) -> pd.DataFrame:
    """The F1 rows of ``model`` (one per batch size); see the module docstring for the method."""
    opts = opts or common.NodeOptions()
    common.check_model(model, opts.runner)
    cores = common.study_cores(config)
    sizes = [int(b) for b in config["profile"]["batch_sizes"]]
    repeats = int(config["profile"]["latency_repeats"])
    top = max(sizes)
    plan = common.TenantPlan(model, model, (cores[0],), batch_size=top, max_items=top)
    rows = []
    with common.start_node(config, [plan], opts) as node:
        for b in sizes:
            m = common.service_latencies(node, model, b, repeats, warmup=max(2, repeats // 5),
                                         seed=common.derived_seed(config["seed"], "latency", model, str(b)))
            lat = m["latency_ms"]
            rows.append({
                "model": model, "batch_size": b, "n_samples": int(lat.size),
                "latency_ms_p50": float(np.percentile(lat, 50)), "latency_ms_p95": float(np.percentile(lat, 95)),
                "latency_ms_mean": float(lat.mean()), "latency_ms_min": float(lat.min()),
                "service_ms_p50": float(np.percentile(m["service_ms"], 50)), "core": cores[0],
                "scale": config["scale"], "quantized": bool(config.get("quantized", False)),
            })
    return pd.DataFrame(rows, columns=COLUMNS)


def run(config: dict[str, Any], model: str, out: str | Path, opts: common.NodeOptions | None = None) -> pd.DataFrame:
    """Measure and write ``out`` (with provenance)."""
    from hera.provenance import write_table

    df = measure(config, model, opts)
    write_table(df, out, config=config, seed=config["seed"])
    return df
