"""The measurement's own noise floor: what a *perfect* model or pair prediction would score against a run's
measurements, given how its repeats scatter (docs/DESIGN.md, "The measurement's own noise floor"). Pure
functions of result tables (a fixed seed), so benches, F9 and T2 can all state it."""

from __future__ import annotations

from typing import Any


def _repeat_scatter(per_repeat: Any) -> tuple[float, int, list[int], list[bool], Any] | None:
    """The repeats' scatter within points: pooled SD of their logs, its degrees of freedom, each kept point's
    number of repeats, which points were kept (two positive repeats or more) and the pooled residuals (log
    deviations from the point's mean × sqrt(n / (n − 1)), so that their spread is the repeats' own); None where
    no point has two. ``per_repeat``: ';'-joined values per point."""
    import numpy as np

    from hera.profile.common import per_repeat_values

    logs, kept = [], []
    for v in per_repeat:
        x = np.array(per_repeat_values(v), float)
        x = x[np.isfinite(x) & (x > 0)]
        kept.append(x.size >= 2)
        if x.size >= 2:
            logs.append(np.log(x))
    if not logs:
        return None
    dev = [x - x.mean() for x in logs]
    dof = sum(d.size - 1 for d in dev)
    resid = np.concatenate([d * np.sqrt(d.size / (d.size - 1)) for d in dev])
    sigma = float(np.sqrt(sum((d ** 2).sum() for d in dev) / dof))
    return sigma, dof, [d.size for d in dev], kept, resid


def _robust_sd(resid: Any) -> float:
    """1.4826 × the median |residual|: the SD the residuals would have without their tails (a normal law's
    scale); far below the pooled SD, the scatter is a few wild points, not an even noise."""
    import numpy as np

    return round(float(1.4826 * np.median(np.abs(resid))), 4)


def _perfect_log_errors(resid: Any, sizes: list[int], sims: int, seed: int):
    """``sims`` × points: the log error of a point's median of ``sizes[i]`` repeats around the true value, each
    repeat's deviation drawn from the measured residuals ``resid`` (a residual bootstrap: the measured tails,
    occasional minutes of a slow machine included, not a normal law) — what a perfect prediction is off by."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return np.column_stack([np.median(rng.choice(resid, (sims, n)), axis=1) for n in sizes])


def noise_floor(scal: Any, median_bar: float, max_bar: float, sims: int = 20000,
                seed: int = 0) -> dict[str, Any] | None:
    """What a *perfect* node model would score against these measurements: each point's measured QPS* is the
    median of its repeats (``per_repeat``), and the repeats scatter around the node's value as the measured ones
    scatter around their points' means (pooled over points: :func:`_perfect_log_errors`). ``sims`` runs of the
    same points (each with its number of repeats) give the perfect model's median and max |relative error| —
    the part of the model-agreement figure no model can remove — and how often they stay within the bars.
    ``median_bar`` / ``max_bar``: the bars it is scored against. None where no point has two positive repeats."""
    import numpy as np

    got = _repeat_scatter(scal["per_repeat"])
    if got is None:
        return None
    sigma, dof, sizes, _, resid = got
    err = np.abs(np.expm1(_perfect_log_errors(resid, sizes, sims, seed)))
    worst, typical = err.max(axis=1), np.median(err, axis=1)
    return {"repeat_log_sd": round(sigma, 4), "repeat_log_sd_robust": _robust_sd(resid), "degrees_of_freedom": dof,
            "points": len(sizes), "sims": sims,
            "perfect_model_median_abs_rel_error": round(float(np.median(typical)), 4),
            "perfect_model_max_abs_rel_error": round(float(np.median(worst)), 4),
            "perfect_model_max_abs_rel_error_p90": round(float(np.quantile(worst, 0.9)), 4),
            "p_perfect_model_meets_median_bar": round(float((typical <= median_bar).mean()), 4),
            "p_perfect_model_meets_max_bar": round(float((worst <= max_bar).mean()), 4)}


def pair_noise_floor(pairs: Any, median_bar: float, emu_bar: float, sims: int = 20000,
                     seed: int = 0) -> dict[str, Any] | None:
    """What a *perfect* pair prediction would score from the co-location measurement's own noise: a point's
    ray scale is the median of its repeats (``per_repeat``), both tenants' co-located QPS* and the EMU scale with
    it, and the repeats scatter as the measured ones do around their points (pooled). Only that noise: the alone
    QPS* in the EMU's denominators and the machine's change of speed between F2 and F4 are left out, so the floor
    is a lower bound. ``median_bar`` / ``emu_bar``: the bars it is scored against. None where no point has two
    positive repeats."""
    import numpy as np

    got = _repeat_scatter(pairs["per_repeat"])
    if got is None:
        return None
    sigma, dof, sizes, kept, resid = got
    rel = np.abs(np.expm1(_perfect_log_errors(resid, sizes, sims, seed)))
    emu = pairs.loc[kept, "emu"].to_numpy(float)
    typical, emu_err = np.median(rel, axis=1), np.nanmean(rel * emu, axis=1)
    by_repeats = {}  # the same points measured with n repeats each: how often a perfect prediction meets the bar
    for n in (3, 5, 7, 9, 11):
        e = np.nanmean(np.abs(np.expm1(_perfect_log_errors(resid, [n] * len(sizes), sims // 4, seed + n))) * emu,
                       axis=1)
        by_repeats[str(n)] = round(float((e <= emu_bar).mean()), 4)
    return {"repeat_log_sd": round(sigma, 4), "repeat_log_sd_robust": _robust_sd(resid), "degrees_of_freedom": dof,
            "points": len(sizes), "sims": sims,
            "perfect_median_abs_rel_error": round(float(np.median(typical)), 4),
            "perfect_mean_abs_emu_error": round(float(np.median(emu_err)), 4),
            "p_perfect_meets_median_bar": round(float((typical <= median_bar).mean()), 4),
            "p_perfect_meets_emu_bar": round(float((emu_err <= emu_bar).mean()), 4),
            "p_perfect_meets_emu_bar_by_repeats": by_repeats}
