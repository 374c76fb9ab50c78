"""The per-model interference stage: sensitivity and pressure on one node, one table with provenance.

``hera profile interference --config C --model M --service S [--calibration CAL] --out F`` writes
``<F stem>.csv`` (:data:`~hera.profile.interference.table.COLUMNS`) and ``<F stem>.parquet`` (raw samples:
sub-batch service times of every sensitivity point, reporter rate samples of every pressure window).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from hera.profile import common, service
from hera.profile.interference import pressure, sensitivity
from hera.profile.interference.settings import Cores, InterferenceError, Settings
from hera.profile.interference.table import COLUMNS, curve, read_calibration


def saturation_qps(path: str | Path, model: str, workers: tuple[int, ...]) -> dict[int, float]:
    """The saturation throughput (queries/s) of ``model`` with each of ``workers`` workers, from its service
    profile (``hera profile service``; either output name)."""
    p = service.outputs(path).summary
    if not p.is_file():
        raise InterferenceError(f"service profile {p} does not exist (run `hera profile service` first)")
    df = pd.read_csv(p)
    if not {"model", "workers", "statistic", "value"} <= set(df.columns):
        raise InterferenceError(f"service profile {p} is not a service-profile summary "
                                "(hera profile service)")
    rows = df[(df["model"].astype(str) == model) & (df["statistic"] == "saturation_throughput")]
    if rows.empty:
        raise InterferenceError(f"service profile {p} has no saturation throughput of model {model!r}")
    have = {int(w): float(v) for w, v in zip(rows["workers"], rows["value"])}
    for w in workers:
        if not have.get(w, 0) > 0:
            raise InterferenceError(f"service profile {p} has no saturation throughput of model {model!r} "
                                    f"with {w} worker(s) (profiled: {sorted(have) or 'none'})")
    return {w: have[w] for w in workers}


def check_calibration(path: str | Path, st: Settings) -> pd.DataFrame:
    """The calibration table at ``path``, refused (one line) when it lacks a kind of this study or was
    measured with another reporter: its intensities would not be on this study's scale."""
    cal = read_calibration(path)
    for kind in st.kinds:
        curve(cal, kind, str(path))
    if "reporter_intensity" in cal.columns:
        used = sorted({float(x) for x in pd.to_numeric(cal["reporter_intensity"], errors="coerce").dropna()})
        if used and used != [st.reporter_intensity]:
            raise InterferenceError(f"interference calibration {path} was measured with reporter intensity "
                                    f"{', '.join(f'{x:g}' for x in used)}; this study uses "
                                    f"{st.reporter_intensity:g} (interference.reporter_intensity)")
    return cal


def _source(path: str | Path | None, cal: pd.DataFrame | None) -> str:
    """``<path> (commit <12 hex>)`` of the calibration used, for every pressure row's note."""
    if path is None or cal is None:
        return ""
    commits = cal["git_commit"].dropna().astype(str).unique() if "git_commit" in cal.columns else []
    return f"{path} (commit {commits[0][:12]})" if len(commits) else str(path)


def measure(config: dict[str, Any], model: str, service_path: str | Path,
            opts: common.NodeOptions | None = None,
            calibration: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The interference table of ``model`` and its raw samples."""
    opts = opts or common.NodeOptions()
    common.check_model(model, opts.runner)
    st, cores = Settings.from_config(config), Cores.from_config(config)
    counts = cores.worker_counts(st)
    sat = saturation_qps(service_path, model, counts) if any(u < 1 for u in st.load_fracs) else {}
    cal = check_calibration(calibration, st) if calibration is not None else None
    batch, max_items = int(config["batch_size"]), int(config["queries"]["max_items"])
    plan = common.TenantPlan(model, model, cores.worker, batch_size=batch, max_items=max_items)
    t0 = time.perf_counter()
    with common.pinned(cores.harness or cores.worker), common.start_node(config, [plan], opts) as node:
        t1 = time.perf_counter()
        sens = sensitivity.measure(node, config, st, cores, model, model)
        t2 = time.perf_counter()
        press = pressure.measure(node, config, st, cores, model, model, sat)
    t3 = time.perf_counter()
    print(f"[interference] {model}: node start {t1 - t0:.1f} s, sensitivity {t2 - t1:.1f} s, pressure "
          f"{t3 - t2:.1f} s", file=sys.stderr, flush=True)
    rows = sensitivity.summarise(sens, st, cores, model, config["scale"])
    rows += pressure.summarise(press, st, cores, model, config["scale"], cal, _source(calibration, cal))
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    return table, pd.concat([sens, press], ignore_index=True)


def run(config: dict[str, Any], model: str, service_path: str | Path, out: str | Path,
        opts: common.NodeOptions | None = None, calibration: str | Path | None = None) -> pd.DataFrame:
    """Measure and write the table (``<out stem>.csv``) and the raw samples (``<out stem>.parquet``) with
    provenance; return the table."""
    from hera.provenance import write_table

    table, samples = measure(config, model, service_path, opts, calibration)
    paths = service.outputs(out)  # the same pair of names as a service profile's
    write_table(samples, paths.samples, config=config, seed=config["seed"])
    write_table(table, paths.summary, config=config, seed=config["seed"])
    return table


def summary(table: pd.DataFrame) -> dict[str, Any]:
    """What the CLI prints: light-regime mean inflation at the highest intensity per kind, and the equivalent
    intensity at saturation with the most workers measured, per kind."""
    def num(v: float) -> float | None:
        return None if not math.isfinite(v) else round(float(v), 4)

    sens = table[(table["part"] == "sensitivity") & (table["regime"] == "light")
                 & (table["metric"] == "mean_inflation")]
    top = sens[sens["intensity"] == sens["intensity"].max()]
    eq = table[(table["part"] == "pressure") & (table["metric"] == "equivalent_intensity")]
    eq = eq[(eq["workers"] == eq["workers"].max()) & (eq["load_frac"] == eq["load_frac"].max())]
    return {"inflation": {k: num(v) for k, v in zip(top["kind"], top["value"])},
            "equivalent_intensity": {k: num(v) for k, v in zip(eq["kind"], eq["value"])}}
