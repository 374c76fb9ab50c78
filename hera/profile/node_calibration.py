"""The node calibration measured in the run (``colocation.node_calibration``, ``hera profile node-calibration``).

On the 2-core VM a tenant serves slower next to a *loaded* neighbour core than the interference profiles predict,
by about the same function of the partner's utilisation whoever the partner is (docs/DESIGN.md, "A node
calibration from earlier runs"). That function is a property of the node, so it can be measured on a few pairs
that the study does not score and applied to every pair it does: the calibration pairs (each with at least one
member outside ``colocation.models``) are predicted without a channel and measured on the rays exactly as F4
measures a pair (:mod:`hera.profile.colocation`), and their joint trials give, per tenant, the log service drift
beyond that prediction at its own share 0.5 and 0.25 minus at 0.75 (the partner light). Pooled over the cells,
the gradient becomes a neighbour-channel profile of every study model (:func:`hera.profile.joint_trials.
node_profile`: ``model, own_share, utilisation, extra_inflation``), which ``hera profile predict-pairs
--neighbour`` reads. No scored pair, and no measurement of one, enters the prediction of any scored pair.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera.errors import HeraError

if TYPE_CHECKING:  # pandas is imported where the trials are read: the workflow checks the pairs without it
    import pandas as pd


def check_pairs(pairs: list[str], models: list[str], scored: list[str]) -> list[tuple[str, str]]:
    """``"a__b"`` strings → (a, b) in the study's model order; :class:`HeraError` naming the first pair that is
    malformed, names a model outside ``models``, names one model twice, is listed twice, or is a scored pair (both
    members in ``scored``, ``colocation.models``)."""
    out: list[tuple[str, str]] = []
    for text in pairs:
        parts = str(text).split("__")
        if len(parts) != 2 or not all(parts):
            raise HeraError(f"node calibration pair {text!r}: expected 'model_a__model_b'")
        unknown = [m for m in parts if m not in models]
        if unknown:
            raise HeraError(f"node calibration pair {text!r}: {unknown[0]!r} is not a model of this study "
                            f"(models: {', '.join(models)})")
        if parts[0] == parts[1]:
            raise HeraError(f"node calibration pair {text!r} names the same model twice")
        if all(m in scored for m in parts):
            raise HeraError(f"node calibration pair {text!r} is a scored pair (both models are in "
                            f"colocation.models): its own prediction would be calibrated on its measurement")
        a, b = sorted(parts, key=models.index)
        if (a, b) in out:
            raise HeraError(f"node calibration pair {text!r} is listed twice")
        out.append((a, b))
    return out


def config_pairs(config: dict[str, Any]) -> list[tuple[str, str]]:
    """The study's ``colocation.node_calibration`` through :func:`check_pairs` (scored: ``colocation.models``, else
    every model)."""
    coloc = config.get("colocation") or {}
    models = list(config["models"])
    return check_pairs(list(coloc.get("node_calibration") or []), models, list(coloc.get("models") or models))


def run(config: dict[str, Any], predicted: str | Path, scalability: str | Path, services: dict[str, str | Path],
        trials: list[str | Path], out: str | Path) -> "pd.DataFrame":
    """The node profile of every study model from the calibration pairs' joint trials (``trials``: their
    ``*.trials.csv``, measured against ``predicted``, the prediction without a channel); written to ``out`` with
    provenance and returned."""
    from hera.provenance import write_table
    from hera.profile.joint_trials import node_profile, trial_residuals

    pairs = config_pairs(config)
    if not pairs:
        raise HeraError("colocation.node_calibration names no pair: nothing to calibrate the node on")

    def service(model: str) -> str | Path:
        if model not in services:
            raise HeraError(f"no service profile given for {model!r} (--service <model>.parquet)")
        return services[model]

    df = trial_residuals(config, predicted, scalability, list(trials), service)
    measured = set(zip(df["model_a"], df["model_b"]))
    missing = [f"{a}__{b}" for a, b in pairs if (a, b) not in measured]
    if missing:
        raise HeraError(f"no joint trial of node calibration pair {missing[0]}: give its *.trials.csv")
    wanted = set(pairs)
    df = df[[(a, b) in wanted for a, b in zip(df["model_a"], df["model_b"])]]
    prof = node_profile(df, list(config["models"]), leave_model_out=False)
    prof["note"] = (f"measured in this run on {len(pairs)} pairs outside colocation.models "
                    f"({', '.join(f'{a}__{b}' for a, b in pairs)}); " + prof["note"])
    write_table(prof, out, config=config, seed=config.get("seed"))
    return prof
