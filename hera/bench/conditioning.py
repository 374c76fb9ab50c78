"""``hera bench sla-conditioning``: how the SLA rule's multiplier sets the conditioning of QPS*, from a finished
run's service samples and the node model alone (no node is started).

For each model and worker count, and each multiplier m, the SLA is what the run's rule gives with m
(:func:`hera.profile.sla.decide` on the run's service-profile table), and the node model — trial-shaped, as F2
models it, with fewer bootstrap replicates — gives QPS* at the service times as profiled and at ``1 ± step`` of
them (common random numbers): the elasticity of QPS* to the machine's speed by central difference, and QPS* as a
share of the modelled saturation throughput. A share above 1 is a rate no node sustains: short trials from an idle
node pass it before their backlog grows, so QPS* would measure the trial's length, not the node. docs/DESIGN.md,
"Conditioning of QPS*".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from hera.errors import HeraError


def check_multipliers(multipliers: list[float], step: float) -> None:
    if not multipliers or any(not (math.isfinite(m) and m > 0) for m in multipliers):
        raise HeraError(f"--multipliers must be positive numbers, got {multipliers}")
    if not 0 < step < 0.5:
        raise HeraError(f"--step must be in (0, 0.5), got {step}")


def _elasticity(lo: float, hi: float, step: float) -> float:
    if not (lo > 0 and hi > 0):
        return math.nan
    return math.log(hi / lo) / math.log((1 + step) / (1 - step))


def sla_conditioning(results: Path, label: str, multipliers: list[float], step: float,
                     workers: tuple[int, ...] = (1, 2)) -> list[dict[str, Any]]:
    """One row per (model, workers, multiplier) of the finished run in ``results`` (module doc)."""
    import pandas as pd

    from hera.profile import common
    from hera.profile.scalability import fewer_replicates, model_settings
    from hera.profile.service import mix_sizes, read_samples, service_law
    from hera.profile.sla import SlaError, decide
    from hera.queueing.qps import modelled_qps_star

    check_multipliers(multipliers, step)
    results = Path(results)
    cfg_path, folder = results / "config.json", results / "profile" / "service"
    if not cfg_path.is_file():
        raise HeraError(f"{cfg_path} does not exist: give the results folder of a finished run")
    config = json.loads(cfg_path.read_text())
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise HeraError(f"{folder} holds no service samples (*.parquet): the run did not keep them "
                        "(results/reference leaves them out)")
    pct, batch = float(config["sla"]["percentile"]), int(config["batch_size"])
    rows = []
    for f in files:
        model = f.stem
        summary_csv = folder / f"{model}.csv"
        if not summary_csv.is_file():
            raise HeraError(f"{summary_csv} does not exist: the service profile's quantile table is needed for the SLA")
        summary = pd.read_csv(summary_csv)
        samples = read_samples(f, model)
        for w in workers:
            if not (samples["workers"] == w).any():
                continue
            law = service_law(samples, w, batch, source=str(f))
            stream = f"sla-conditioning/{model}/{w}"
            ms = fewer_replicates(model_settings(config, stream))
            mix = mix_sizes(config, ms.n_queries, common.derived_seed(int(config["seed"]), "model-sizes", stream))
            cap = law.capacity_qps(mix)
            point = []
            for m in multipliers:
                try:
                    sla = decide({**config["sla"], "multiplier": m}, model, summary)
                except SlaError as exc:
                    point.append({"run": label, "model": model, "workers": w, "multiplier": m, "note": str(exc)})
                    continue
                q = [modelled_qps_star(law.scaled(s), mix, sla.sla_ms, pct, ms).qps_star
                     for s in (1 - step, 1.0, 1 + step)]
                point.append({"run": label, "model": model, "workers": w, "multiplier": m,
                              "sla_ms": round(sla.sla_ms, 3), "headroom": round(sla.headroom, 2),
                              "qps_star_model": round(q[1], 3),
                              "capacity_share": round(q[1] / cap, 3) if cap > 0 else math.nan,
                              "elasticity": round(_elasticity(q[0], q[2], step), 3), "note": ""})
            print(f"{label} {model} w={w}: " + ", ".join(
                f"x{r['multiplier']:g} " + (r["note"] or f"e {r['elasticity']:.2f} share {r['capacity_share']:.2f}")
                for r in point), flush=True)
            rows += point
    if not rows:
        raise HeraError(f"{folder}: no service samples for {', '.join(map(str, workers))} worker(s)")
    return rows


def by_multiplier(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per multiplier and worker count: the median elasticity and capacity share, and how many points model a
    QPS* above the saturation throughput (a share > 1)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df = df[df["note"] == ""]  # every row has a note; a multiplier with no headroom says why and has no values
    out: dict[str, Any] = {}
    for (m, w), g in df.groupby(["multiplier", "workers"]):
        out.setdefault(f"{m:g}", {})[str(int(w))] = {
            "points": int(len(g)), "elasticity_median": round(float(g["elasticity"].median()), 3),
            "elasticity_min": round(float(g["elasticity"].min()), 3),
            "capacity_share_median": round(float(g["capacity_share"].median()), 3),
            "above_capacity": int((g["capacity_share"] > 1).sum())}
    return out
