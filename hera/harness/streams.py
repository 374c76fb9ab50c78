"""One tenant's open-loop query stream from the study config, with one seed per source of randomness."""

from __future__ import annotations

import zlib
from typing import Any


def derived_seed(seed: int, *names: str) -> int:
    """One seed per source of randomness, derived from the study's root seed and a name."""
    return (int(seed) * 1_000_003 + zlib.crc32("/".join(names).encode())) % (2**31 - 1)


def query_sizes(config: dict[str, Any]) -> dict[str, Any]:
    """``{"kind": ..., **params}`` for ``hera.workload.sizes.QuerySizes`` from config ``queries.*``."""
    q = config["queries"]
    out: dict[str, Any] = {"kind": q["kind"]}
    if q["kind"] == "fixed":
        out["items"] = int(q["items"])
    return out


def loadgen_settings(config: dict[str, Any], sla_ms: float, target_qps: float, *, stream: str = "",
                     repeat: int = 0):
    """One tenant's open-loop stream (Poisson at ``target_qps``) from the study config.

    Length: at least ``search.min_queries`` queries and ``search.min_duration_s`` seconds (MLPerf rule);
    latency bound = the SLA at ``sla.percentile``; seeds derived from the study seed, ``stream`` and ``repeat``.
    """
    from hera.loadgen.settings import LoadgenSettings

    s, seed = config["search"], int(config["seed"])
    return LoadgenSettings(
        target_qps=float(target_qps), min_queries=int(s["min_queries"]), min_duration_s=float(s["min_duration_s"]),
        percentile=float(config["sla"]["percentile"]), latency_bound_ms=float(sla_ms),
        max_items=int(config["queries"]["max_items"]), query_sizes=query_sizes(config),
        arrival_seed=derived_seed(seed, "arrivals", stream, str(repeat)),
        size_seed=derived_seed(seed, "sizes", stream, str(repeat)),
        sample_seed=derived_seed(seed, "samples", stream, str(repeat)),
        warmup_queries=min(20, max(1, int(s["min_queries"]) // 10)),
    )
