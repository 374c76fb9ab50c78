"""F2: worker scalability — QPS*(model, w workers) for w = 1..cores, raw and normalised by w · QPS*(1).

Method: one tenant, one worker per core (``cores[:w]`` of the study's cores), grown with the node's run-time
``resize`` (the model is loaded once). For each w, :func:`hera.loadgen.search.find_qps_star` drives the node
open loop (Poisson arrivals, query sizes from ``queries.*``) and finds the highest rate whose
``sla.percentile`` latency stays within the model's SLA (``sla_ms`` from the T1 table), with MLPerf's
early-stopping rule per trial and the config's ``search.*`` settings (``min_queries``, ``max_queries``,
``min_duration_s``, ``rel_tolerance``, ``repeats``). The search starts from a capacity estimate:
``0.6 · w · 1000 / latency_ms(mean-size query)`` for w = 1 and ``QPS*(w−1) · w/(w−1)`` afterwards; rates below
``start / 32`` are not tried (QPS* = 0 then: the SLA is out of reach even at low load).
Rows are appended to ``<out stem>.partial.csv`` as each w finishes (a rerun resumes).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.profile import common

COLUMNS = ["model", "workers", "qps_star", "qps_star_lo", "qps_star_hi", "repeats", "queries_per_trial",
           "sla_ms", "percentile", "normalised", "qps_star_std", "qps_star_ci95_lo", "qps_star_ci95_hi",
           "max_queries_per_trial", "rel_tol", "n_trials", "trial_seconds_median", "start_qps", "cores",
           "batch_size", "sla_rule", "llc_partitioning", "scale", "note"]


def mean_query_items(config: dict[str, Any], library_items: int, tenant: str) -> float:
    """Mean items per query of the configured query-size distribution (from the load generator's schedule)."""
    from hera.loadgen import driver

    s = common.loadgen_settings(config, 1.0, 100.0, stream="size-estimate")
    s = s.replace(n_queries=2000, min_queries=0, min_duration_s=0.0, warmup_queries=0)
    return float(driver.tenant_schedule(s, library_items, tenant)["n_items"].mean())


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def measure(config: dict[str, Any], model: str, t1: str | Path, out: str | Path,
            opts: common.NodeOptions | None = None, on_row=None) -> tuple[pd.DataFrame, common.ResumableTable]:
    """QPS*(w) for every w; appends each row to the partial file of ``out``; returns (all rows, the table)."""
    from hera.loadgen.search import find_qps_star
    from hera.loadgen.sut import NodeSUT

    opts = opts or common.NodeOptions()
    common.check_model(model, opts.runner)
    sla = common.read_t1(t1, [model])[model]
    cores = common.study_cores(config)
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    s = config["search"]
    pct = float(config["sla"]["percentile"])
    fp = common.fingerprint("scalability", model, config, sla, cores, opts.runner)
    table = common.ResumableTable(out, COLUMNS, ["workers"], fp)
    todo = [w for w in range(1, len(cores) + 1) if not table.done(workers=w)]
    if todo:
        first = todo[0]
        plan = common.TenantPlan(model, model, tuple(cores[:first]), batch_size=batch, max_items=max_items)
        with common.start_node(config, [plan], opts) as node:
            lib = node.library_size(model)
            sut = NodeSUT(node)
            prev = {int(r["workers"]): float(r["qps_star"]) for r in table.rows}
            one_worker_ms = None
            for w in todo:
                if tuple(node.stats()[model].cores) != tuple(cores[:w]):
                    node.resize(model, list(cores[:w]))
                if w - 1 in prev and prev[w - 1] > 0:
                    start = prev[w - 1] * w / (w - 1)
                else:
                    if one_worker_ms is None:
                        items = max(1, int(round(mean_query_items(config, lib, model))))
                        lat = common.service_latencies(node, model, min(items, max_items), 5, warmup=2,
                                                       seed=common.derived_seed(config["seed"], "estimate", model))
                        one_worker_ms = float(np.median(lat["latency_ms"]))
                    start = 0.6 * w * 1000.0 / max(one_worker_ms, 1e-3)
                base = common.loadgen_settings(config, sla["sla_ms"], start, stream=f"scalability/{model}/{w}")
                _log(f"[scalability] {model}: {w} worker(s) on cores {cores[:w]}, SLA p{pct * 100:g} <= "
                     f"{sla['sla_ms']:.3g} ms, search from {start:.1f} qps")
                res = find_qps_star(sut, base, lib, sla_ms=sla["sla_ms"], percentile=pct, start_qps=start,
                                    rel_tol=float(s["rel_tolerance"]), repeats=int(s["repeats"]),
                                    min_queries=int(s["min_queries"]), min_duration_s=float(s["min_duration_s"]),
                                    max_queries=int(s["max_queries"]), max_qps=max(64 * start, 1.0),
                                    min_qps=start / 32,  # bounded: below this the SLA is unattainable
                                    tenant=model, log=_log)
                row = {
                    "model": model, "workers": w, "qps_star": res.qps_star, "qps_star_lo": res.qps_star_lo,
                    "qps_star_hi": res.qps_star_hi, "repeats": res.repeats,
                    "queries_per_trial": res.queries_per_trial, "sla_ms": res.sla_ms, "percentile": res.percentile,
                    "normalised": math.nan, "qps_star_std": res.qps_star_std,
                    "qps_star_ci95_lo": res.qps_star_ci95_lo, "qps_star_ci95_hi": res.qps_star_ci95_hi,
                    "max_queries_per_trial": res.max_queries_per_trial, "rel_tol": res.rel_tol,
                    "n_trials": res.n_trials, "trial_seconds_median": res.trial_seconds_median,
                    "start_qps": start, "cores": " ".join(map(str, cores[:w])), "batch_size": batch,
                    "sla_rule": sla["sla_rule"], "llc_partitioning": node.llc_partitioning,
                    "scale": config["scale"], "note": res.note,
                }
                table.append([row])
                prev[w] = res.qps_star
                if on_row is not None:
                    on_row(row)
    df = table.frame().sort_values("workers").reset_index(drop=True)
    q1 = df.loc[df["workers"] == 1, "qps_star"]
    q1 = float(q1.iloc[0]) if len(q1) else math.nan
    df["normalised"] = [q / (w * q1) if q1 and q1 > 0 else math.nan for q, w in zip(df["qps_star"], df["workers"])]
    return df, table


def run(config: dict[str, Any], model: str, t1: str | Path, out: str | Path,
        opts: common.NodeOptions | None = None, on_row=None) -> pd.DataFrame:
    """Measure (resuming from a partial file) and write ``out`` with provenance."""
    df, table = measure(config, model, t1, out, opts, on_row)
    table.finish(df, config, config["seed"])
    return df
