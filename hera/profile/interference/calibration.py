"""Calibration: a reporter's slowdown vs the intensity of an antagonist of its kind (once per study).

The reporter (an antagonist at ``interference.reporter_intensity``) runs on the core plan's reporter core; the
antagonist of the same kind runs on the other cores of that L3 domain — as many cores as in the sensitivity
runs, so that an intensity means the same pressure in both. Per kind, windows of ``interference.window_s``:

    alone, antagonist at 0, alone, antagonist at x1, alone, …, antagonist at xn, alone
    (``calibration_cycles`` times)

(intensity 0: the antagonist present and idle, a control). The slowdown at x is ``median rate in the alone
windows next to the x windows / median rate in the x windows``, with a bootstrap interval. The curve is
*usable* when the reporter slows down more next to the antagonist at the highest intensity than next to the idle
one beyond doubt (``rise`` = the ratio of the two slowdowns, its bootstrap interval above 1); otherwise the
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
                for _ in range(st.calibration_cycles):
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


def _sets(g: pd.DataFrame, by_window: dict[int, pd.DataFrame], x: float) -> tuple[np.ndarray, np.ndarray]:
    """Rate samples of the alone windows next to the windows at ``x``, and of those windows."""
    idx = sorted({int(i) for i in g.loc[g["intensity"] == x, "window"]})
    alone_idx = sorted({j for i in idx for j in (i - 1, i + 1)
                        if j in by_window and by_window[j]["condition"].iloc[0] == "alone"})
    return (np.concatenate([by_window[i]["rate"].to_numpy(float) for i in alone_idx]),
            np.concatenate([by_window[i]["rate"].to_numpy(float) for i in idx]))


def verdict(kind: str, top: float, r: stats.Estimate) -> tuple[bool, str]:
    """Usable when the reporter slows down more next to the antagonist at the top intensity than next to the
    idle one, beyond doubt (the interval of the ratio lies above 1)."""
    if r.lo > 1:
        return True, ""
    return False, (f"not observable on this machine: the {kind} reporter's slowdown next to the antagonist at "
                   f"intensity {top:g} is {r.value:.3g}x [{r.lo:.3g}, {r.hi:.3g}] that next to the idle one")


def summarise(samples: pd.DataFrame, st: Settings, cores: Cores, scale: str) -> pd.DataFrame:
    """The calibration table from raw reporter samples."""
    boot = {"replicates": st.bootstrap, "confidence": st.confidence,
            "rng": np.random.default_rng(common.derived_seed(st.seed, "calibration-bootstrap"))}
    rows = []
    for kind, g in samples.groupby("kind", sort=False):
        by_window = {int(i): s for i, s in g.groupby("window")}
        xs = intensities(st)
        r = stats.rise(*_sets(g, by_window, xs[0]), *_sets(g, by_window, xs[-1]), **boot)
        ok, why = verdict(kind, xs[-1], r)
        for x in xs:
            alone, loaded = _sets(g, by_window, x)
            est = stats.rate_ratio(alone, loaded, **boot)
            gbps = float(np.mean([s["antagonist_gbps"].iloc[0] for s in by_window.values()
                                  if s["intensity"].iloc[0] == x]))
            rows.append({"kind": kind, "intensity": x, "metric": "reporter_slowdown", "value": est.value,
                         "value_lo": est.lo, "value_hi": est.hi, "unit": "x", "confidence": st.confidence,
                         "baseline": float(np.nanmedian(alone)), "baseline_unit": str(g["rate_unit"].iloc[0]),
                         "reporter_intensity": st.reporter_intensity, "n_samples": int(loaded.size),
                         "usable": ok, "rise": r.value, "rise_lo": r.lo, "rise_hi": r.hi,
                         "antagonist_cores": " ".join(map(str, cores.calibration)),
                         "reporter_cores": " ".join(map(str, cores.reporter)), "antagonist_gbps": gbps,
                         "scale": scale, "note": "; ".join(n for n in (cores.note, why) if n)})
    return pd.DataFrame(rows).reindex(columns=CALIBRATION_COLUMNS)


def run(config: dict[str, Any], out: str | Path) -> pd.DataFrame:
    """Measure and write the calibration table (``<out>.csv``) and its raw samples (``<out>.parquet``)."""
    from hera.provenance import write_table

    table, samples = measure(config)
    out = Path(out)
    write_table(samples, out.with_suffix(".parquet"), config=config, seed=config["seed"])
    write_table(table, out.with_suffix(".csv"), config=config, seed=config["seed"])
    return table
