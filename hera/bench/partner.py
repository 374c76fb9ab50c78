"""``hera bench busy-partner``: how much a partner's load slows a tenant on the core beside it, measured directly.

A two-tenant node (the pair path of the co-location stage, :func:`hera.profile.common.start_node`): the *tenant*
on the study's first core at a fixed ``load`` × its one-worker QPS*, the *partner* on the second core at each of
``fractions`` × its own, in ``blocks`` randomised blocks (every fraction once per block, seeded order), each
window ``seconds`` of open-loop Poisson load for both, after one unrecorded warm-up window. Per window: the tenant's mean sub-batch span and latency
quantiles, and the harness's CPU (load generator, dispatch, collectors) as a share of one core. Block by block,
each fraction's values over those at the lightest fraction separate the partner's effect from the machine's drift.

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

#: Seconds of the unrecorded window that warms the node before the blocks.
WARMUP_S = 3.0


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


def _window(sut: Any, bases: dict[str, Any], lib: dict[str, int], rates: dict[str, float], seconds: float,
            seed: int) -> Any:
    from hera.loadgen import driver

    streams = {}
    for k, (t, r) in enumerate(rates.items()):
        n = max(20, int(math.ceil(r * seconds)))
        streams[t] = bases[t].replace(
            target_qps=float(r), n_queries=n, duration_s=None, min_queries=0, min_duration_s=0.0,
            warmup_queries=max(2, int(math.ceil(r * 0.25))), arrival="poisson", arrival_trace=None,
            arrival_formula=None, arrival_seed=(seed + 31 * k) % (2**31 - 1),
            size_seed=(seed + 31 * k + 1) % (2**31 - 1), sample_seed=(seed + 31 * k + 2) % (2**31 - 1),
            max_outstanding=max(1000, 4 * n))
    return driver.run(sut, streams, lib)


def busy_partner(config: dict[str, Any], model: str, partner: str, qps: dict[str, float], sla: dict[str, float],
                 load: float, fractions: list[float], blocks: int, seconds: float, opts: Any,
                 interference: Any = None) -> dict[str, Any]:
    """The figure (module doc). ``qps``/``sla``: each tenant model's one-worker QPS* and SLA; ``opts``: the
    node options (:class:`hera.harness.nodes.NodeOptions`); ``interference``: the run's profiles (any
    :class:`hera.profile.pair_prediction.Interference`) or None."""
    from hera.harness import study_cores
    from hera.harness.nodes import TenantPlan, start_node, tenant_name
    from hera.loadgen.sut import NodeSUT
    from hera.profile.common import derived_seed
    from hera.profile.scalability import confirm_settings

    fr = check_inputs(load, fractions, blocks, seconds)
    for m in (model, partner):
        if not (m in qps and qps[m] > 0 and m in sla and sla[m] > 0):
            raise HeraError(f"model {m!r} has no one-worker QPS* and SLA to load it by (run the pipeline's F2 first)")
    cores = study_cores(config)
    if len(cores) < 2:
        raise HeraError(f"busy-partner needs two study cores (the tenant's and the partner's), this study has {cores}")
    names = (tenant_name(model, partner, "a"), tenant_name(partner, model, "b"))
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    plans = [TenantPlan(names[0], model, (cores[0],), batch, max_items),
             TenantPlan(names[1], partner, (cores[1],), batch, max_items)]
    rng = np.random.default_rng(derived_seed(int(config["seed"]), "busy-partner-order", f"{model}/{partner}"))
    order = [[fr[i] for i in rng.permutation(len(fr))] for _ in range(int(blocks))]
    windows: list[dict[str, Any]] = []
    with start_node(config, plans, opts) as node:
        sut = NodeSUT(node)
        lib = {t: node.library_size(t) for t in names}
        bases = {t: confirm_settings(config, sla[m], qps[m], f"busy-partner/{t}")
                 for t, m in zip(names, (model, partner))}
        # one unrecorded window at the middle fraction first: a cold node's first seconds are slow
        _window(sut, bases, lib, {names[0]: load * qps[model], names[1]: fr[len(fr) // 2] * qps[partner]},
                min(seconds, WARMUP_S), derived_seed(int(config["seed"]), "busy-partner-warmup", model))
        for b, block in enumerate(order):
            for f in block:
                rates = {names[0]: load * qps[model], names[1]: f * qps[partner]}
                seed = derived_seed(int(config["seed"]), "busy-partner", f"{model}/{partner}/{b}/{f:g}")
                res = _window(sut, bases, lib, rates, seconds, seed)
                rows = res.rows[~res.rows["warmup"] & res.rows["ok"]]
                mine = rows[rows["tenant"] == names[0]]
                other = rows[rows["tenant"] == names[1]]
                wall = float(res.summary.get("wall_s", math.nan))
                w = {"block": b, "fraction": f, "partner_qps": round(rates[names[1]], 3),
                     "tenant_qps": round(rates[names[0]], 3), "queries": int(len(mine)),
                     "service_ms_mean": float(mine["service_ms"].mean()),
                     "latency_ms_mean": float(mine["latency_ms"].mean()),
                     "latency_ms_p95": float(mine["latency_ms"].quantile(0.95)),
                     "latency_ms_p99": float(mine["latency_ms"].quantile(0.99)),
                     "partner_latency_ms_p95": float(other["latency_ms"].quantile(0.95)) if len(other) else math.nan,
                     "harness_cores": float(res.summary.get("harness_cpu_s", math.nan)) / wall if wall > 0
                     else math.nan}
                windows.append(w)
                print(f"[busy-partner] block {b}: {partner} at {f:g} x its QPS*: {model} mean sub-batch "
                      f"{w['service_ms_mean']:.3f} ms, p95 {w['latency_ms_p95']:.2f} ms (SLA {sla[model]:.1f}), "
                      f"harness {w['harness_cores']:.3f} of a core", flush=True)
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
