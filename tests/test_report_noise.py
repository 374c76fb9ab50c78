"""The measurement's noise floor (hera.report.noise): what a perfect model or pair prediction would score."""

from hera.report import noise


def test_the_noise_floor_is_what_a_perfect_model_would_score():
    """Repeats that scatter by a known log SD: the pooled estimate finds it, a perfect model's median error is
    about the SD of a median of 3 (0.67 σ · 0.67, the median of a half-normal), and its max grows with the points;
    repeats that agree leave no floor; no point with two repeats gives none."""
    import numpy as np
    import pandas as pd
    import pytest

    rng = np.random.default_rng(5)
    sigma = 0.1
    reps = np.exp(rng.normal(0.0, sigma, (400, 3))) * 50.0
    scal = pd.DataFrame({"per_repeat": [";".join(f"{v:.6f}" for v in r) for r in reps]})
    nf = noise.noise_floor(scal, 0.15, 0.30, sims=4000)
    assert nf["repeat_log_sd"] == pytest.approx(sigma, rel=0.06) and nf["degrees_of_freedom"] == 800
    # the median of 3 normals has SD ≈ 0.67 σ; the median of its absolute value ≈ 0.674 of that
    assert nf["perfect_model_median_abs_rel_error"] == pytest.approx(0.674 * 0.67 * sigma, rel=0.1)
    assert nf["perfect_model_max_abs_rel_error"] > 3 * nf["perfect_model_median_abs_rel_error"]
    assert nf["p_perfect_model_meets_median_bar"] == 1.0
    small = noise.noise_floor(scal.iloc[:16], 0.15, 0.30, sims=4000)
    assert small["perfect_model_max_abs_rel_error"] < nf["perfect_model_max_abs_rel_error"]
    same = noise.noise_floor(pd.DataFrame({"per_repeat": ["10;10;10", "20;20;20"]}), 0.15, 0.30, sims=100)
    assert same["repeat_log_sd"] == 0.0 and same["perfect_model_max_abs_rel_error"] == 0.0
    assert noise.noise_floor(pd.DataFrame({"per_repeat": ["10", "0;5", None]}), 0.15, 0.30) is None


def test_the_pair_noise_floor_keeps_the_measured_tails():
    """Rays whose repeats agree but for a few wild points: the pooled SD is large, the robust one small, and a
    perfect prediction's mean |EMU error| (a median of three shrugs off one wild repeat) stays far below the pooled
    SD's; more repeats never make it meet the EMU bar less often."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(3)
    reps = np.exp(rng.normal(0.0, 0.05, (45, 3)))
    reps[:4, 0] *= 4.0  # four points with one repeat in a slow minute of the machine
    pairs = pd.DataFrame({"per_repeat": [";".join(f"{v:.6f}" for v in r) for r in reps], "emu": 0.8})
    nf = noise.pair_noise_floor(pairs, 0.20, 0.10, sims=4000)
    assert nf["repeat_log_sd"] > 3 * nf["repeat_log_sd_robust"]
    assert nf["perfect_mean_abs_emu_error"] < 0.8 * nf["repeat_log_sd"] / 3
    by = nf["p_perfect_meets_emu_bar_by_repeats"]
    assert [by[k] for k in ("3", "5", "7")] == sorted(by[k] for k in ("3", "5", "7"))
    assert nf["p_perfect_meets_emu_bar"] > 0.9 and nf["points"] == 45
    assert noise.pair_noise_floor(pd.DataFrame({"per_repeat": ["1"], "emu": [1.0]}), 0.20, 0.10) is None
