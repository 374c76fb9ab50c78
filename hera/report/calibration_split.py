"""What a node calibration read from a few pairs of a run does to the prediction of its other pairs
(``hera bench calibration-split``): the evidence for measuring the node calibration in the run.

``colocation.node_calibration`` measures a few pairs the study does not score and predicts the scored ones with the
loaded-neighbour slowdown read from them (:mod:`hera.profile.node_calibration`). Finished runs without it can show
what that is worth: in each run, ``pairs`` of its measured pairs stand in for the calibration pairs (``choices``
random draws), their joint trials give the node profile (:func:`hera.profile.joint_trials.node_profile`, every cell),
the run's own profiles are predicted again with it and without a channel (:func:`repredict`, as ``hera profile
predict-pairs`` would), and both predictions are scored on the run's *other* pairs only, as ``hera bench
pair-prediction`` scores them (:mod:`hera.policy.accuracy`). The pairs a draw calibrates on are never scored in it.
"""

from __future__ import annotations

import json
import math
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hera.errors import HeraError
from hera.profile.joint_trials import knots
from hera.report.pair_trials import check_uncalibrated, need, node_profile, residuals


def repredict(results: str | Path, out: str | Path, neighbour: str | Path | None = None) -> pd.DataFrame:
    """The run in ``results`` predicted again from its own profiles (T1, F2, service and interference profiles and
    their calibration, its config), with ``neighbour`` as every model's neighbour profile or without a channel."""
    from hera.profile import pair_prediction

    res = Path(results)
    config = json.loads(need(res / "config.json").read_text())
    models = list(config["models"])
    prof = res / "profile"
    services = {m: str(need(prof / "service" / f"{m}.parquet")) for m in models}
    interference = pair_prediction.interference_from_files(
        [str(need(prof / "interference" / f"{m}.csv")) for m in models],
        str(need(prof / "interference_calibration.csv")),
        str(config["colocation"].get("sensitivity", "saturated")), str(config["colocation"].get("statistic", "mean")),
        [str(neighbour)] if neighbour else None)
    return pair_prediction.run(config, models, need(res / "tables" / "T1.csv"), need(prof / "scalability.csv"),
                               services, interference, out)


def _score(measured: pd.DataFrame, predicted: pd.DataFrame) -> dict[str, float]:
    from hera.policy.accuracy import prediction_errors, prediction_summary, with_predictions

    fig = prediction_summary(prediction_errors(with_predictions(measured, predicted)))
    return {"median_abs_rel_error": float(fig["median_abs_rel_error"]),
            "mean_abs_emu_error": float(fig["mean_abs_emu_error"]), "points": int(fig["points"])}


def evaluate(results: str | Path, pairs: int, choices: int, rng: random.Random, bar: float,
             log=None) -> dict[str, Any]:
    """``choices`` draws of ``pairs`` calibration pairs from the run in ``results``: per draw the calibrated and the
    uncalibrated prediction's median tenant error and mean \\|EMU error\\| on the run's other pairs."""
    check_uncalibrated(results)
    res = Path(results)
    config = json.loads((res / "config.json").read_text())
    measured = pd.read_csv(need(res / "colocation" / "pairs.csv"))
    names = sorted(set(zip(measured["model_a"], measured["model_b"])))
    if pairs < 1 or pairs > len(names) - 1:
        raise HeraError(f"{results} measured {len(names)} pairs: --pairs must leave at least one to score "
                        f"(1 to {len(names) - 1}), not {pairs}")
    trials = residuals(res)
    draws = []
    with tempfile.TemporaryDirectory() as tmp:
        base = repredict(res, Path(tmp) / "base.csv")
        for i in range(choices):
            chosen = sorted(rng.sample(names, pairs))
            scored = measured[[(a, b) not in chosen for a, b in zip(measured["model_a"], measured["model_b"])]]
            cells = trials[[(a, b) in chosen for a, b in zip(trials["model_a"], trials["model_b"])]]
            prof = node_profile(cells, list(config["models"]), leave_model_out=False)
            path = Path(tmp) / f"node-{i}.csv"
            prof.to_csv(path, index=False)
            draw = {"pairs": [f"{a}__{b}" for a, b in chosen], "knots": knots(prof),
                    "without": _score(scored, base),
                    "with": _score(scored, repredict(res, Path(tmp) / f"pred-{i}.csv", path))}
            draws.append(draw)
            if log:
                log(f"{res}: draw {i + 1}/{choices} {', '.join(draw['pairs'])}: mean |EMU error| "
                    f"{draw['without']['mean_abs_emu_error']:.3f} -> {draw['with']['mean_abs_emu_error']:.3f}")
    return {"pairs_measured": len(names), "draws": draws, **summarise(draws, bar)}


def summarise(draws: list[dict[str, Any]], bar: float) -> dict[str, Any]:
    """Means over ``draws`` of both predictions' errors, how often the calibrated one is lower, and how often each
    meets the EMU ``bar``."""
    if not draws:
        return {"draws_n": 0}
    w = np.array([d["with"]["mean_abs_emu_error"] for d in draws], float)
    wo = np.array([d["without"]["mean_abs_emu_error"] for d in draws], float)
    mw = np.array([d["with"]["median_abs_rel_error"] for d in draws], float)
    mwo = np.array([d["without"]["median_abs_rel_error"] for d in draws], float)
    ok = np.isfinite(w) & np.isfinite(wo)

    def r(x: Any) -> float | None:
        return round(float(x), 4) if math.isfinite(float(x)) else None

    return {"draws_n": len(draws),
            "mean_abs_emu_error": {"without": r(np.mean(wo[ok])), "with": r(np.mean(w[ok]))},
            "median_abs_rel_error": {"without": r(np.mean(mwo[ok])), "with": r(np.mean(mw[ok]))},
            "share_lower_with": r(np.mean(w[ok] < wo[ok])),
            "share_meeting_emu_bar": {"without": r(np.mean(wo[ok] <= bar)), "with": r(np.mean(w[ok] <= bar))}}
