"""Pressure: what a model's workers do to a fixed reporter, as an equivalent antagonist intensity.

For each worker count w (the sizes a co-location split can give the model) the model's w workers run on the
plan's worker cores other than the reporter's; a *reporter* of each kind (an antagonist at the fixed low
``interference.reporter_intensity``, :class:`~hera.profile.interference.load.Reporter`) runs on the reporter's
core and samples its own throughput in windows of ``interference.window_s``:

    alone, model at u1, alone, model at u2, alone, …   (``interference.cycles`` times)

where the model at load fraction u = 1 is a closed loop keeping every worker busy, and u < 1 an open Poisson
stream at u × the saturation throughput of w workers in the model's service profile. The reporter's slowdown
at u is ``median rate in the windows next to the u windows / median rate in the u windows`` (bootstrap
interval), and the calibration curve (:mod:`~hera.profile.interference.calibration`) turns it into the
intensity of the antagonist that slows the reporter as much.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
import pandas as pd

from hera.profile import common, service
from hera.profile.interference import stats
from hera.profile.interference.load import BackgroundLoad, Reporter
from hera.profile.interference.settings import Cores, Settings
from hera.profile.interference.table import COLUMNS, equivalent_rows


def windows(st: Settings) -> list[float | None]:
    """The window sequence of one (worker count, kind): None = reporter alone, u = the model at load u."""
    seq: list[float | None] = [None]
    for _ in range(st.cycles):
        for u in st.load_fracs:
            seq += [u, None]
    return seq


def measure(node: Any, config: dict[str, Any], st: Settings, cores: Cores, model: str, tenant: str,
            saturation_qps: dict[int, float]) -> pd.DataFrame:
    """Reporter rate samples of every window (``part = pressure``), per worker count and reporter kind."""
    from hera.topology import pinned

    mix = service.mix_sizes(config, 4096, common.derived_seed(st.seed, "interference-mix", model))
    frames = []
    for w in cores.worker_counts(st):
        wc = cores.pressure_workers(w)
        if tuple(node.stats()[tenant].cores) != wc:
            node.resize(tenant, list(wc))
        with pinned(cores.harness or wc):
            for kind in st.kinds:
                t_kind = time.perf_counter()
                with Reporter(kind, st.reporter_intensity, cores.reporter,
                              seed=common.derived_seed(st.seed, "reporter", kind)) as rep:
                    for i, u in enumerate(windows(st)):
                        qps, offered = math.nan, math.nan
                        if u is None:
                            rates = rep.window(st.window_s, st.sample_s)
                        else:
                            rate = None if u >= 1.0 else u * saturation_qps[w]
                            offered = math.nan if rate is None else rate
                            seed = common.derived_seed(st.seed, "pressure-load", model, str(w), str(i))
                            depth = st.depth_per_worker * w + 1
                            with BackgroundLoad(node, tenant, mix, depth=depth, rate_qps=rate,
                                                seed=seed) as load:
                                time.sleep(st.warmup_s)
                                t0 = time.monotonic_ns()
                                rates = rep.window(st.window_s, st.sample_s)
                                qps = load.completed_qps(t0, time.monotonic_ns())
                        frames.append(pd.DataFrame({
                            "part": "pressure", "model": model, "kind": kind, "workers": w,
                            "load_frac": 0.0 if u is None else u, "window": i,
                            "sample": np.arange(rates.size), "rate": rates, "rate_unit": rep.unit,
                            "completed_qps": qps, "offered_qps": offered}))
                print(f"[interference] {model}: {w} worker(s), {kind} reporter: {len(windows(st))} windows "
                      f"({time.perf_counter() - t_kind:.1f} s)", file=sys.stderr, flush=True)
    return pd.concat(frames, ignore_index=True)


def summarise(samples: pd.DataFrame, st: Settings, cores: Cores, model: str, scale: str,
              calibration: pd.DataFrame | None, calibration_source: str = "") -> list[dict[str, Any]]:
    """Rows of the interference table (part ``pressure``) from the reporter samples of :func:`measure`: the
    reporter's slowdown per (kind, w, u), then its equivalent intensity (:func:`equivalent_rows`)."""
    rng = np.random.default_rng(common.derived_seed(st.seed, "pressure-bootstrap", model))
    out: list[dict[str, Any]] = []
    for (kind, w), g in samples.groupby(["kind", "workers"], sort=False):
        by_window = {int(i): s for i, s in g.groupby("window")}
        for u in st.load_fracs:
            idx = sorted({int(i) for i in g.loc[g["load_frac"] == u, "window"]})
            alone_idx = sorted({j for i in idx for j in (i - 1, i + 1) if j in by_window
                                and by_window[j]["load_frac"].iloc[0] == 0.0})
            loaded = np.concatenate([by_window[i]["rate"].to_numpy(float) for i in idx])
            alone = np.concatenate([by_window[i]["rate"].to_numpy(float) for i in alone_idx])
            est = stats.rate_ratio(alone, loaded, replicates=st.bootstrap, confidence=st.confidence, rng=rng)
            qps = float(np.nanmean([by_window[i]["completed_qps"].iloc[0] for i in idx]))
            offered = float(by_window[idx[0]]["offered_qps"].iloc[0])
            row = {"model": model, "part": "pressure", "kind": kind, "workers": int(w), "load_frac": u,
                   "confidence": st.confidence, "n_samples": int(loaded.size),
                   "worker_cores": " ".join(map(str, cores.pressure_workers(int(w)))),
                   "reporter_cores": " ".join(map(str, cores.reporter)), "offered_qps": offered,
                   "completed_qps": qps, "scale": scale}
            base = float(np.nanmedian(alone)) if alone.size else math.nan
            out.append({**row, "metric": "reporter_slowdown", "value": est.value, "value_lo": est.lo,
                        "value_hi": est.hi, "unit": "x", "baseline": base,
                        "baseline_unit": str(g["rate_unit"].iloc[0]),
                        "note": f"reporter: {kind} antagonist at intensity {st.reporter_intensity:g}"})
    slowdowns = pd.DataFrame(out).reindex(columns=COLUMNS)
    eq = equivalent_rows(slowdowns, calibration, calibration_source)
    return out + eq.reindex(columns=COLUMNS).to_dict("records")
