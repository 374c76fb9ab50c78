"""Study inputs every measurement needs: the SLA of each model (from T1 only) and the study's cores."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hera.errors import HeraError


class ProfileError(HeraError):
    """A measurement input is missing or malformed (T1 row, scalability table, pair string, …)."""


def study_cores(config: dict[str, Any]) -> list[int]:
    """The study's worker CPUs in plan order (``hera.config.resolve_cores``): one thread per physical core,
    harness cores left out; the first ``w`` are the cores of ``w`` workers, and a co-location split k + (C − k)
    gives tenant a the first ``k`` (:class:`hera.topology.CorePlan`)."""
    from hera import config as cfgmod

    return list(cfgmod.resolve_cores(config))


def study_plan(config: dict[str, Any]):
    """The study's :class:`hera.topology.CorePlan` (workers, harness, memory-profile cores, …)."""
    from hera.topology import study_plan as plan

    return plan(config)


def read_csv_table(path: str | Path, what: str):
    """A CSV result table as a DataFrame; :class:`ProfileError` naming ``what`` when missing or unreadable."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ProfileError(f"{what} {path} does not exist")
    try:
        return pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{what} {path} is not a readable CSV table: {str(exc).splitlines()[0]}") from None


def read_t1(path: str | Path, models: list[str]) -> dict[str, dict[str, Any]]:
    """``{model: {"sla_ms", "sla_rule"}}`` from the T1 table (the only source of SLAs)."""
    df = read_csv_table(path, "T1 table")
    missing_cols = sorted({"model", "sla_ms"} - set(df.columns))
    if missing_cols:
        raise ProfileError(f"T1 table {path} has no column {missing_cols[0]!r}")
    out = {}
    for m in models:
        rows = df[df["model"] == m]
        if rows.empty:
            raise ProfileError(f"T1 table {path} has no row for model {m!r}")
        sla = float(rows["sla_ms"].iloc[0])
        if not math.isfinite(sla) or sla <= 0:
            raise ProfileError(f"T1 table {path}: model {m!r} has no valid sla_ms ({rows['sla_ms'].iloc[0]!r})")
        rule = str(rows["sla_rule"].iloc[0]) if "sla_rule" in df.columns else "T1 sla_ms"
        out[m] = {"sla_ms": sla, "sla_rule": rule}
    return out


def percentile_tag(p: float) -> str:
    """``0.95`` → ``"p95"`` (the suffix of latency columns such as ``latency_ms_p95``)."""
    return f"p{p * 100:g}".replace(".", "_")
