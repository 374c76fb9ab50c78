"""How much each SLA rule moves between runs: the base of the SLA (the unloaded one-worker p99 of the query mix)
by rule, from the raw service samples that finished runs kept (``hera bench sla-rules``).

``mix_p99`` takes the pooled p99 of every light-load query; ``size_medians_p99`` the p99 over the mix of each
query size's median (:func:`hera.profile.service.mix_quantiles`). Both come from the same samples of each run,
so their between-run spread differs only by what each rule lets through: a stall of the machine in single
queries (pooled) against the machine's speed (both). docs/DESIGN.md, "SLA rule".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from hera.errors import HeraError

RULES = {"mix_p99": "pooled", "size_medians_p99": "size_medians"}


def sla_bases(results: Path, label: str) -> pd.DataFrame:
    """One row per model of a results folder: the p95 and p99 of the unloaded one-worker mix by each rule."""
    from hera.profile.service import mix_quantiles

    folder = Path(results) / "profile" / "service"
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise HeraError(f"{folder} holds no service samples (*.parquet): the run did not keep them "
                        "(results/reference leaves them out)")
    rows = []
    for f in files:
        s = pd.read_parquet(f)
        light = s[(s["workers"] == 1) & (s["regime"] == "light")].drop_duplicates("query")
        if light.empty:
            raise HeraError(f"{f}: no one-worker light-load queries")
        pooled, by_size = mix_quantiles(light)
        nan = float("nan")
        rows.append({"run": label, "model": f.stem, "queries": len(light),
                     "sizes": int(light["query_items"].nunique()),
                     "pooled_p95_ms": pooled["p95_ms"], "pooled_p99_ms": pooled["p99_ms"],
                     "size_medians_p95_ms": by_size["p95_ms"] if by_size else nan,
                     "size_medians_p99_ms": by_size["p99_ms"] if by_size else nan})
    return pd.DataFrame(rows)


def between_run_cov(bases: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per rule: each model's coefficient of variation of the p99 over runs, and their median."""
    if bases["run"].nunique() < 2:
        raise HeraError("a spread between runs needs at least two runs")
    out = {}
    for rule, col in RULES.items():
        p = bases.pivot(index="model", columns="run", values=f"{col}_p99_ms").dropna()
        cov = p.std(axis=1, ddof=1) / p.mean(axis=1)
        out[rule] = {"per_model": {m: round(float(v), 4) for m, v in cov.items()},
                     "median": round(float(np.median(cov)), 4) if len(cov) else float("nan")}
    return out
