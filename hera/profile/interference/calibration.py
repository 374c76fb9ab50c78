"""Calibration: a reporter's slowdown vs the intensity of an antagonist of its kind (once per study).

The reporter (an antagonist at ``interference.reporter_intensity``) runs on the core plan's reporter core; the
antagonist of the same kind runs on the other cores of that L3 domain — as many cores as in the sensitivity
runs, so that an intensity means the same pressure in both. Per kind, windows of ``interference.window_s``:

    alone, antagonist at 0, alone, antagonist at x1, alone, …, antagonist at xn, alone   (``cycles`` times)

(intensity 0: the antagonist present and idle, a control). The slowdown at x is ``median rate in the alone
windows next to the x windows / median rate in the x windows``, with a bootstrap interval. The curve is
*usable* when its lower bound at the highest intensity lies above its upper bound at the lowest; otherwise the
machine does not show this kind of interference to the reporter and equivalent intensities are NaN, with the
reason in every row's ``note`` (never a made-up number).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.profile import common
from hera.profile.antagonist import Antagonist
from hera.profile.interference import stats
from hera.profile.interference.load import Reporter
from hera.profile.interference.settings import Cores, Settings
from hera.profile.interference.table import CALIBRATION_COLUMNS


def intensities(st: Settings) -> tuple[float, ...]:
    """The calibrated intensities: 0 (the idle control) and every non-zero intensity of the study."""
    return (0.0, *st.intensities)


def measure(config: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The calibration table (:data:`CALIBRATION_COLUMNS`) and its raw reporter samples."""
    from hera.topology import pinned

    st, cores = Settings.from_config(config), Cores.from_config(config)
    frames = []
    with pinned(cores.harness or cores.calibration):  # this process only samples counters: off the reporter
        for kind in st.kinds:
            t_kind = time.perf_counter()
            with Reporter(kind, st.reporter_intensity, cores.reporter,
                          seed=common.derived_seed(st.seed, "reporter", kind)) as rep:
                i, unit = 0, rep.unit
                for _ in range(st.cycles):
                    for x in intensities(st):
                        if i == 0:
                            frames.append(_frame(kind, None, i, rep.window(st.window_s, st.sample_s), unit))
                            i += 1
                        with Antagonist(kind, x, list(cores.calibration),
                                        seed=common.derived_seed(st.seed, "antagonist", kind)) as ant:
                            time.sleep(0.05)
                            c0, t0 = ant.counters()["bytes"], time.perf_counter()
                            rates = rep.window(st.window_s, st.sample_s)
                            gbps = (ant.counters()["bytes"] - c0) / (time.perf_counter() - t0) / 1e9
                        frames.append(_frame(kind, x, i, rates, unit, gbps))
                        frames.append(_frame(kind, None, i + 1, rep.window(st.window_s, st.sample_s), unit))
                        i += 2
            print(f"[interference] calibration, {kind}: {i} windows ({time.perf_counter() - t_kind:.1f} s)",
                  file=sys.stderr, flush=True)
    samples = pd.concat(frames, ignore_index=True)
    return summarise(samples, st, cores, config["scale"]), samples


def _frame(kind: str, x: float | None, window: int, rates: np.ndarray, unit: str,
           gbps: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"part": "calibration", "kind": kind, "window": window,
                         "sample": np.arange(rates.size), "condition": "alone" if x is None else "antagonist",
                         "intensity": np.nan if x is None else x, "rate": rates, "rate_unit": unit,
                         "antagonist_gbps": gbps})


def summarise(samples: pd.DataFrame, st: Settings, cores: Cores, scale: str) -> pd.DataFrame:
    """The calibration table from raw reporter samples."""
    rng = np.random.default_rng(common.derived_seed(st.seed, "calibration-bootstrap"))
    rows = []
    for kind, g in samples.groupby("kind", sort=False):
        by_window = {int(i): s for i, s in g.groupby("window")}
        for x in intensities(st):
            idx = sorted({int(i) for i in g.loc[g["intensity"] == x, "window"]})
            alone_idx = sorted({j for i in idx for j in (i - 1, i + 1)
                                if j in by_window and by_window[j]["condition"].iloc[0] == "alone"})
            alone = np.concatenate([by_window[i]["rate"].to_numpy(float) for i in alone_idx])
            loaded = np.concatenate([by_window[i]["rate"].to_numpy(float) for i in idx])
            est = stats.rate_ratio(alone, loaded, replicates=st.bootstrap, confidence=st.confidence, rng=rng)
            rows.append({"kind": kind, "intensity": x, "metric": "reporter_slowdown", "value": est.value,
                         "value_lo": est.lo, "value_hi": est.hi, "unit": "x", "confidence": st.confidence,
                         "baseline": float(np.nanmedian(alone)), "baseline_unit": str(g["rate_unit"].iloc[0]),
                         "reporter_intensity": st.reporter_intensity, "n_samples": int(loaded.size),
                         "antagonist_cores": " ".join(map(str, cores.calibration)),
                         "reporter_cores": " ".join(map(str, cores.reporter)),
                         "antagonist_gbps": float(np.mean([by_window[i]["antagonist_gbps"].iloc[0]
                                                           for i in idx])),
                         "scale": scale, "note": cores.note})
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = [r for r in rows if r["kind"] == kind]
        ok, why = stats.Curve(kind, *(np.array([r[c] for r in mine], float)
                                      for c in ("intensity", "value", "value_lo", "value_hi"))).usable()
        for r in mine:
            r["usable"] = ok
            r["note"] = "; ".join(n for n in (r["note"], "" if ok else why) if n)
    df = pd.DataFrame(rows).reindex(columns=CALIBRATION_COLUMNS)
    return df


def run(config: dict[str, Any], out: str | Path) -> pd.DataFrame:
    """Measure and write the calibration table (``<out>.csv``) and its raw samples (``<out>.parquet``)."""
    from hera.provenance import write_table

    table, samples = measure(config)
    out = Path(out)
    write_table(samples, out.with_suffix(".parquet"), config=config, seed=config["seed"])
    write_table(table, out.with_suffix(".csv"), config=config, seed=config["seed"])
    return table
