"""Which service profile should the node model start from? The F2 points of a finished run, re-modelled offline
from the raw samples the run kept (``hera bench service-source``).

The scalability job models each point from a service profile and then rescales it by the *operating-point
probe* (one chunk of open-loop load at the profile's modelled QPS*: how fast the node served there against the
profile, :func:`hera.loadgen.confirm.probe_service_drift`). Two profiles can be that start
(``model.service``): the service stage's (``stage``: taken minutes before, on another node of the same
model) or one re-measured on the confirming node just before the probe (``refresh``: 35-50 s of the F2 stage
at ``default``). Per point this module gives the modelled QPS* of four variants against the measured one:

- ``stage_alone``: the stage's profile, no probe;
- ``stage_probe``: the stage's profile × the probe's drift against it;
- ``refresh_alone``: the refreshed profile, no probe (``qps_star_model_profile`` of a refresh run);
- ``refresh_probe``: the refreshed profile × the probe's drift (``qps_star_model`` of a refresh run).

What a run did is read from its rows; the variants it did not run are computed from the samples it kept
(``profile/service/<model>.parquet``; ``profile/scalability/<model>.service.parquet`` for the refreshed
ones). The probe's own arrivals are not kept, only its drift against the profile the run used, so a drift is
carried to the other profile by the ratio of the two profiles' modelled mean query spans for Poisson arrivals
at the probe's rate and the study's query sizes (:func:`translated_drift`): exact when the two profiles' service
times differ by one factor and their workers have no idle gap between sub-batches, an approximation otherwise. Variants a run cannot give (a stage run kept no refreshed profile)
are NaN.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.errors import HeraError

VARIANTS = ("stage_alone", "stage_probe", "refresh_alone", "refresh_probe")
#: Poisson arrivals over which two profiles' mean query spans are compared (:func:`translated_drift`).
SPAN_QUERIES = 400


def _config(results: Path) -> dict[str, Any]:
    path = results / "config.json"
    if not path.is_file():
        raise HeraError(f"{results} is not a run's results folder: {path} does not exist")
    return json.loads(path.read_text())


def translated_drift(drift: float, measured_law: Any, other_law: Any, mix: np.ndarray, rate_qps: float,
                     percentile: float, seed: int) -> float:
    """The probe's ``drift`` against ``measured_law`` carried to ``other_law``: ``drift`` × (mean modelled query
    span under ``measured_law`` / under ``other_law``) for the same :data:`SPAN_QUERIES` Poisson arrivals at
    ``rate_qps`` with sizes drawn from ``mix`` (NaN without a drift or a rate)."""
    from hera.queueing.qps import TailModel

    if not (math.isfinite(drift) and drift > 0 and math.isfinite(rate_qps) and rate_qps > 0):
        return math.nan
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1.0 / rate_qps, SPAN_QUERIES))
    chunk = [(arrivals, rng.choice(np.asarray(mix, np.int64), SPAN_QUERIES), np.ones(SPAN_QUERIES, bool))]
    _, a = TailModel(measured_law, mix, percentile, seed=seed).realised(chunk)
    _, b = TailModel(other_law, mix, percentile, seed=seed).realised(chunk)
    return float(drift * a.mean() / b.mean())


def _qps(law: Any, factor: float, mix: np.ndarray, sla_ms: float, percentile: float, settings: Any) -> float:
    """The modelled QPS* of ``law`` with every service time × ``factor`` (NaN without a positive factor)."""
    from hera.queueing.qps import modelled_qps_star

    if not (math.isfinite(factor) and factor > 0):
        return math.nan
    return float(modelled_qps_star(law.scaled(factor), mix, sla_ms, percentile, settings).qps_star)


def remodel(results: str | Path) -> pd.DataFrame:
    """One row per F2 point of the run in ``results``: ``model``, ``workers``, ``measured`` (confirmed QPS*),
    ``service_source`` (what the run did), the four :data:`VARIANTS` (modelled QPS*) and ``err_<variant>``
    (signed relative error against the measured QPS*)."""
    from hera.profile import common
    from hera.profile import scalability as sc
    from hera.profile.service import mix_sizes, service_law

    results = Path(results)
    table = results / "profile" / "scalability.csv"
    if not table.is_file():
        raise HeraError(f"{results} is not a run's results folder: {table} does not exist")
    config = _config(results)
    rows = pd.read_csv(table)
    samples: dict[Path, pd.DataFrame] = {}  # each model's parquet read once for both worker counts

    def kept(path: Path) -> pd.DataFrame:
        if path not in samples:
            samples[path] = pd.read_parquet(path)
        return samples[path]

    out = []
    for r in rows.itertuples():
        model, w = str(r.model), int(r.workers)
        v = dict.fromkeys(VARIANTS, math.nan)
        if str(getattr(r, "service_source", "stage")) != "refresh":  # a stage run: both variants are in its row
            source = "stage"
            v["stage_probe"], v["stage_alone"] = float(r.qps_star_model), float(r.qps_star_model_profile)
        else:  # a refresh run: its variants from its row, the stage's re-modelled from the kept samples
            source = "refresh"
            v["refresh_probe"], v["refresh_alone"] = float(r.qps_star_model), float(r.qps_star_model_profile)
            stage_path = results / "profile" / "service" / f"{model}.parquet"
            if not stage_path.is_file():
                raise HeraError(f"{results}: {model}'s service profile {stage_path} was not kept")
            stage = service_law(kept(stage_path), w, int(r.batch_size))
            stream = f"scalability/{model}/{w}"
            ms = sc.model_settings(config, stream)
            mix = mix_sizes(config, ms.n_queries, common.derived_seed(int(config["seed"]), "model-sizes", stream))
            sla, pct = float(r.sla_ms), float(r.percentile)
            v["stage_alone"] = _qps(stage, 1.0, mix, sla, pct, ms)
            fresh_path = results / "profile" / "scalability" / f"{model}.service.parquet"
            if fresh_path.is_file():
                fresh = service_law(kept(fresh_path), w, int(r.batch_size))
                factor = translated_drift(float(getattr(r, "operating_drift", math.nan)), fresh, stage, mix,
                                          float(getattr(r, "operating_rate_qps", math.nan)), pct,
                                          common.derived_seed(int(config["seed"]), "service-source", stream))
                v["stage_probe"] = _qps(stage, factor, mix, sla, pct, ms)
        measured = float(r.qps_star)
        row = {"model": model, "workers": w, "measured": measured, "service_source": source, **v}
        for k in VARIANTS:
            row[f"err_{k}"] = (v[k] - measured) / measured if measured > 0 else math.nan
        out.append(row)
    return pd.DataFrame(out)


def summary(df: pd.DataFrame) -> dict[str, dict[str, float | int | None]]:
    """Per variant: median and max |relative error| over the points that have it, and how many."""
    out: dict[str, dict[str, float | int | None]] = {}
    for k in VARIANTS:
        e = df[f"err_{k}"].abs().dropna()
        out[k] = {"median_abs_rel_error": float(e.median()) if len(e) else None,
                  "max_abs_rel_error": float(e.max()) if len(e) else None, "points": len(e)}
    return out
