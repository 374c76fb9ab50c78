"""Measured stage times from Snakemake's per-job benchmark files (``benchmarks/<scale>/…/<job>.tsv``), grouped
into the estimator's stages, to set beside an estimate."""

from __future__ import annotations

import csv
from pathlib import Path

from hera.plan.inputs import PlanError
from hera.plan.stages import parallel_s

#: Stages whose jobs run side by side (their measured time is aggregated like the estimate's).
PARALLEL_STAGES = ("models", "report")


def stage_of(rel: Path) -> str | None:
    """The stage of a benchmark file, by its path under ``benchmarks/<scale>/`` (None: not a stage's job)."""
    parts = rel.parts
    if not parts:
        return None
    head = parts[0]
    if head in ("models", "datasets"):
        return "models"
    if head == "tables" and rel.stem == "T1":
        return "t1"
    if head == "profile" and len(parts) >= 2:
        sub = parts[1] if len(parts) > 2 else Path(parts[1]).stem
        return {"latency": "latency", "service": "service", "scalability": "scalability", "memory": "interference",
                "interference": "interference", "interference_calibration": "interference",
                "neighbour": "interference"}.get(sub)
    if head == "colocation":
        return "pair_predictions" if rel.stem == "predicted" else "colocation"
    if head == "serving":
        return {"latency_vs_load": "serving", "load_change": "load_change"}.get(rel.stem)
    return None


def job_seconds(path: Path) -> float:
    """Wall seconds of one benchmark file (the mean of its rows: Snakemake writes one per repeat)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    try:
        values = [float(r["s"]) for r in rows]
    except (KeyError, ValueError, TypeError):
        raise PlanError(f"benchmark file {path} has no numeric 's' column (not written by Snakemake?)") from None
    if not values:
        raise PlanError(f"benchmark file {path} holds no row")
    return sum(values) / len(values)


def measured_stages(root: str | Path, slots: int) -> tuple[dict[str, float], dict[str, int]]:
    """``({stage: seconds}, {stage: jobs})`` from every ``*.tsv`` under ``root``; jobs of a parallel stage
    are aggregated over ``slots`` hardware threads as in the estimate."""
    root = Path(root)
    if not root.is_dir():
        raise PlanError(f"benchmark directory {root} does not exist (Snakemake writes benchmarks/<scale>/)")
    jobs: dict[str, list[float]] = {}
    for p in sorted(root.rglob("*.tsv")):
        stage = stage_of(p.relative_to(root))
        if stage is not None:
            jobs.setdefault(stage, []).append(job_seconds(p))
    out = {s: (parallel_s(v, slots) if s in PARALLEL_STAGES else sum(v)) for s, v in jobs.items()}
    return out, {s: len(v) for s, v in jobs.items()}
