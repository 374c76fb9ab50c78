"""``hera bench des``, ``qps-repeatability``, ``model-agreement`` and ``pair-prediction``: what the node model
costs, how repeatable a complete QPS* determination is, and how well the node model and the pair predictor
agree with the confirmed measurements."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from hera.bench.common import (
    COV_BAR,
    COV_LEVEL,
    best_of,
    cov,
    cov_interval,
    pooled_cov,
    require_built,
    require_t1_sla,
    t1_sla,
    t1_source,
)
from hera.errors import HeraError
from hera.report.claims import PAIR_EMU_MAX_ERROR, PAIR_MEDIAN_MAX_ERROR
from hera.report.noise import pair_noise_floor


def _synthetic_law(workers: int, batch_size: int, seed: int):
    """A service law shaped like a measured one (gamma samples, 1 ms + 0.1 ms per item, 200 per size and
    regime): what a simulation step costs does not depend on the values."""
    import numpy as np

    from hera.queueing.service import ServiceLaw

    g = np.random.default_rng(seed)
    sizes = sorted({1, 2, 4, 8, 16, 32, batch_size} | {int(x) for x in g.integers(1, batch_size, 8)})
    pools = {r: {s: g.gamma(4.0, (f + 0.1 * f * s) / 4.0, 200) for s in sizes}
             for r, f in (("light", 1.0), ("saturated", 1.2))}
    return ServiceLaw(workers, batch_size, pools["light"], pools["saturated"], g.gamma(2.0, 0.05, 200), 0.02)


def bench_des(study: dict[str, Any], workers: int, service: Path | None, repeats: int) -> dict[str, Any]:
    """What the node model costs where the pipeline calls it: one F2 model solve (the study's ``model``
    settings), one trial's control variate for one tenant (its replay through the model plus the expected tail
    at a new rate), and the compiled event loop against the same loop run by the interpreter (their outputs
    must be identical)."""
    import numpy as np

    from hera.profile.scalability import confirm_warmup, model_settings
    from hera.profile.service import mix_sizes, read_samples, service_law
    from hera.queueing.des import simulate
    from hera.queueing.qps import TailModel, modelled_qps_star, unloaded_quantiles

    batch, pct, warm = int(study["batch_size"]), float(study["sla"]["percentile"]), confirm_warmup(study)
    law = (service_law(read_samples(service), workers, batch, source=str(service)) if service
           else _synthetic_law(workers, batch, int(study["seed"])))
    settings = model_settings(study, "bench-des")
    mix = mix_sizes(study, max(settings.n_queries, 4000), int(study["seed"]))
    t0 = time.perf_counter()
    simulate(law, np.arange(4.0), mix[:4])  # compiles the loop, or loads it from its on-disk cache
    first_call_s = time.perf_counter() - t0
    sla_ms = 3.0 * unloaded_quantiles(law, mix[:2000], (0.99,))[0.99]  # the study's SLA rule, on this law
    solved = []
    solve_s = best_of(lambda: solved.append(modelled_qps_star(law, mix, sla_ms, pct, settings)), repeats)
    rate = solved[-1].qps_star if solved[-1].qps_star > 0 else 0.5 * law.capacity_qps(mix)
    n = int(study["confirm"]["min_queries"]) + warm
    g = np.random.default_rng(1)
    chunks = [(np.cumsum(g.exponential(1 / rate, n)), mix[g.integers(0, mix.size, n)], np.arange(n) >= warm)
              for _ in range(2)]
    tm = TailModel(law, mix, pct, seed=1)
    new_rate = iter(rate * (1 + 1e-6 * np.arange(1, repeats + 1)))  # a new rate each time: nothing cached
    replay_s = best_of(lambda: (tm.realised(chunks), tm.expected_log_tail(next(new_rate), [n - warm] * 2, warm)),
                        repeats)
    arrivals = np.cumsum(g.exponential(1 / rate, (200, 8)), axis=0)
    out = {}
    times = {c: best_of(lambda c=c: out.__setitem__(c, simulate(law, arrivals, mix[:200],
                                                                 rng=np.random.default_rng(3), compiled=c)),
                         1 if not c else repeats) for c in (False, True)}
    return {"workers": workers, "service": str(service) if service else "synthetic", "sla_ms": round(sla_ms, 3),
            "modelled_qps_star": round(solved[-1].qps_star, 3), "first_call_s": round(first_call_s, 3),
            "model_solve_s": round(solve_s, 4), "control_variate_per_trial_ms": round(1e3 * replay_s, 2),
            "loop_interpreted_s": round(times[False], 4), "loop_compiled_s": round(times[True], 5),
            "compiled_speedup": round(times[False] / times[True], 1),
            "identical": bool(np.array_equal(out[False], out[True])), "repeats": repeats}


def bench_repeatability(model: str, scale: str, runs: int, workers: int, study: dict[str, Any]) -> dict[str, Any]:
    """QPS* of ``model`` with ``workers`` workers over ``runs`` complete determinations with different seeds."""
    from hera.profile.scalability import determine

    if runs < 2:
        raise HeraError(f"--runs must be at least 2 for a spread, not {runs}")
    require_built(model, scale)
    sla = t1_sla(model, scale)
    source = t1_source(scale) if sla is not None else "the first determination's SLA rule (no T1 table)"
    out = []
    for k in range(runs):
        cfg = dict(study, seed=int(study["seed"]) + 1000 * (k + 1))
        row = determine(cfg, model, [workers], sla_ms=sla, stream=f"run{k}").iloc[0]
        sla = float(row["sla_ms"]) if sla is None else sla  # every run against the same SLA
        out.append(row)
        print(f"run {k}: measured QPS* {row['qps_star']:.2f} (repeats {row['per_repeat']}), modelled "
              f"{row['qps_star_model']:.2f}, {row['seconds']:.0f} s", flush=True)
    return {**repeatability_figure(model, workers, sla, out), "sla_source": source}


def repeatability_figure(model: str, workers: int, sla_ms: float | None, rows: list[Any]) -> dict[str, Any]:
    """The spread of complete determinations (``rows``: :func:`hera.profile.scalability.determine` rows). Beside
    the confirmed QPS* (``cov``, the bar), what tells a method's noise from the machine's: each determination's
    own repeat spread (``repeat_cov``), the measured service drift (served over modelled query span) and the
    node model on the service times as served (``qps_star_model_served``) — when that spreads as much as the
    measurement, the machine's speed moved between determinations, not the confirmation. ``cov_ci``: the
    interval of the population CoV at ``cov_ci_level`` (:func:`hera.bench.common.cov_interval`)."""
    import numpy as np

    def col(name: str) -> np.ndarray:
        return np.array([float(r[name]) if name in r and r[name] is not None else math.nan for r in rows], float)

    def listed(x: np.ndarray) -> list[float | None]:
        return [round(float(v), 3) if np.isfinite(v) else None for v in x]

    q, m, raw = col("qps_star"), col("qps_star_model"), col("qps_star_raw")
    served, drift, within = col("qps_star_model_served"), col("service_drift"), col("qps_star_cov")
    ci = cov_interval(q)
    return {"model": model, "workers": workers, "runs": len(rows), "sla_ms": sla_ms, "qps_star": listed(q),
            "cov": cov(q), "cov_ci": None if ci is None else [round(v, 4) for v in ci], "cov_ci_level": COV_LEVEL,
            "qps_star_raw": listed(raw), "cov_raw": cov(raw),
            "qps_star_model": listed(m), "cov_model": cov(m),
            "qps_star_model_served": listed(served), "cov_model_served": cov(served),
            "service_drift": listed(drift), "cov_service_drift": cov(drift), "repeat_cov": listed(within),
            "seconds_per_run": [round(float(r["seconds"]), 1) for r in rows],
            "trials_per_run": [int(r["n_trials"]) for r in rows]}


def repeatability_pool(paths: list[Path]) -> dict[str, Any]:
    """Pool ``hera bench qps-repeatability`` results (JSON files) into one CoV with an interval: each bench's
    runs are a group of its own (its own commit, SLA and hour of the machine), so the pooled value is the
    between-determination CoV within a bench, the spread that bench's bar is about (:func:`pooled_cov`)."""
    import json

    groups, per, left_out = [], [], []
    for p in paths:
        try:
            doc = json.loads(Path(p).read_text())
            fig = doc["figure"]
            k, n, key = fig["cov"], int(fig["runs"]), f"{fig['model']}/w{int(fig['workers'])}"
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise HeraError(f"{p}: not a qps-repeatability result ({type(e).__name__}: {e})") from None
        if k is None:  # a determination without a positive QPS*: no CoV, and never dropped silently
            left_out.append({"file": str(p), "why": "its CoV is undefined (a determination without a positive "
                                                    f"QPS*: {fig.get('qps_star')})"})
            continue
        groups.append((float(k), n))
        per.append({"file": str(p), "key": key, "runs": n, "cov": round(float(k), 4),
                    "git_commit": doc.get("git_commit")})
    if not per:
        raise HeraError("no qps-repeatability result with a defined CoV among the files given")
    by_model = {}
    for key in sorted({r["key"] for r in per}):
        mine = [(g, r) for g, r in zip(groups, per) if r["key"] == key]
        pooled = pooled_cov([g for g, _ in mine])
        by_model[key] = {**pooled, "pooled_cov": round(pooled["pooled_cov"], 4),
                         "pooled_cov_ci": [round(v, 4) for v in pooled["pooled_cov_ci"]],
                         "benches_cov_at_most_bar": sum(r["cov"] <= COV_BAR for _, r in mine), "bar": COV_BAR}
    return {"by_model": by_model, "benches": per, "left_out": left_out}


def bench_probe_drift(model: str, scale: str, workers: int, chunks: int, band: float, study: dict[str, Any],
                      ahead: int = 6) -> dict[str, Any]:
    """``chunks`` consecutive operating-probe chunks at the modelled QPS* (:func:`hera.profile.scalability.
    probe_sequence`) and how well a probe taken from them predicts the following ``ahead`` chunks' drift — what a
    confirmation's trials will see (:func:`probe_rule_errors`)."""
    from hera.paths import results_dir
    from hera.profile.scalability import probe_sequence

    if chunks < ahead + 3:
        raise HeraError(f"--chunks must be at least {ahead + 3} (three probe chunks and {ahead} ahead), not {chunks}")
    require_built(model, scale)
    service = results_dir(scale) / "profile" / "service" / f"{model}.parquet"
    rate, drifts = probe_sequence(study, model, service, require_t1_sla(model, scale), workers, chunks)
    print(f"{model} on {workers} worker(s) at {rate:.2f} queries/s: chunk drifts "
          f"{', '.join(f'{d:.3f}' for d in drifts)}", flush=True)
    return {"model": model, "workers": workers, "rate_qps": round(rate, 3), "chunks": chunks,
            "chunk_drifts": [round(d, 4) for d in drifts], **probe_rule_errors(drifts, band, ahead)}


def bench_drift_vs_rate(model: str, scale: str, workers: int, fractions: list[float], blocks: int,
                        study: dict[str, Any]) -> dict[str, Any]:
    """Does the node serve a model slower (or faster) than its service profile says at some loads and not at
    others — a misfit of the node model that no probe at one rate can see? ``blocks`` randomised blocks, each one
    operating-probe chunk at every fraction of the modelled QPS* in a seeded random order
    (:func:`hera.profile.scalability.probe_sequence`); :func:`drift_rate_fit` separates the load's effect on the
    service drift from the machine's speed block by block. Every chunk is replayed through the node model twice,
    with the profile's idle penalty and without it: the same measured seconds, so the difference between the two
    fits is the penalty's alone (``without_idle_penalty``)."""
    import numpy as np

    from hera.paths import results_dir
    from hera.profile.common import derived_seed
    from hera.profile.scalability import probe_sequence

    fr = check_fractions(fractions)
    if int(blocks) < 2:
        raise HeraError(f"--blocks must be an integer >= 2 (the load's effect is read within blocks), not {blocks}")
    require_built(model, scale)
    service = results_dir(scale) / "profile" / "service" / f"{model}.parquet"
    rng = np.random.default_rng(derived_seed(int(study["seed"]), "drift-vs-rate-order", f"{model}/{workers}"))
    order = [[fr[i] for i in rng.permutation(len(fr))] for _ in range(int(blocks))]
    flat = [f for block in order for f in block]
    rate, pairs = probe_sequence(study, model, service, require_t1_sla(model, scale), workers, len(flat),
                                 fractions=flat)
    drifts, bare = [p[0] for p in pairs], [p[1] for p in pairs]
    block_of = [b for b, block in enumerate(order) for _ in block]
    for b, block in enumerate(order):
        print(f"{model} on {workers} worker(s), block {b}: " + ", ".join(
            f"x{f:g} {d:.3f} ({e:.3f} without the idle penalty)"
            for f, d, e in zip(block, drifts[b * len(fr):(b + 1) * len(fr)], bare[b * len(fr):(b + 1) * len(fr)])),
            flush=True)
    fit, fit_bare = drift_rate_fit(flat, block_of, drifts), drift_rate_fit(flat, block_of, bare)
    for what, f in (("as profiled", fit), ("without the idle penalty", fit_bare)):
        print(f"{model} on {workers} worker(s) (modelled QPS* {rate:.2f} queries/s), {what}: service drift x"
              f"{f['drift_ratio_lowest_to_highest']:.3f} [{f['drift_ratio_ci95'][0]:.3f}, "
              f"{f['drift_ratio_ci95'][1]:.3f}] at x{min(fr):g} against x{max(fr):g} of it", flush=True)
    return {"model": model, "workers": workers, "rate_qps": round(rate, 3), "fractions": fr, "blocks": int(blocks),
            "chunks": [{"block": b, "fraction": f, "rate_qps": round(rate * f, 3), "drift": round(d, 4),
                        "drift_without_idle_penalty": round(e, 4)}
                       for b, f, d, e in zip(block_of, flat, drifts, bare)],
            **fit, "without_idle_penalty": fit_bare}


def check_fractions(fractions: list[float]) -> list[float]:
    """The distinct fractions of the modelled QPS*, sorted; at least two, each in (0, 2]."""
    fr = sorted({float(f) for f in fractions})
    if len(fr) < 2 or not all(math.isfinite(f) and 0 < f <= 2 for f in fr):
        raise HeraError(f"--fractions needs at least two distinct fractions of the modelled QPS* in (0, 2], "
                        f"not {list(fractions)}")
    return fr


def drift_rate_fit(fractions: list[float], blocks: list[int], drifts: list[float]) -> dict[str, Any]:
    """Least squares ``ln drift = a_block + b · ln fraction`` (one level per block: the machine's speed then):
    the slope ``b`` with its 95% interval (t, n − blocks − 1 degrees of freedom), the drift at the lowest
    fraction over the drift at the highest that it implies, the median drift per fraction, and the residual
    scatter. ``b`` < 0: the node serves slower than the model says at light load, relative to near QPS*."""
    import numpy as np
    from scipy.special import stdtrit

    x = np.log(np.asarray(fractions, float))
    d = np.asarray(drifts, float)
    g = np.asarray(blocks, int)
    if not (x.size == d.size == g.size) or not np.all(np.isfinite(d) & (d > 0)):
        raise HeraError(f"drift-vs-rate fit: need one finite positive drift per chunk, not {list(drifts)}")
    y = np.log(d)
    levels = sorted(set(g.tolist()))
    dof = x.size - len(levels) - 1
    if dof < 1 or np.ptp(x) == 0:
        raise HeraError(f"drift-vs-rate fit: {x.size} chunks in {len(levels)} blocks over "
                        f"{len(set(x.tolist()))} fraction(s) leave no degree of freedom for the slope")
    design = np.column_stack([x] + [(g == k).astype(float) for k in levels])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    s2 = float(resid @ resid) / dof
    se = math.sqrt(s2 * float(np.linalg.inv(design.T @ design)[0, 0]))
    t = float(stdtrit(dof, 0.975))
    b = float(coef[0])
    span = float(x.min() - x.max())  # ln(lowest / highest), negative
    ratio = math.exp(b * span)
    lo, hi = sorted((math.exp((b - t * se) * span), math.exp((b + t * se) * span)))
    fr = np.asarray(fractions, float)
    return {"slope_log_drift_per_log_rate": round(b, 4),
            "slope_ci95": [round(b - t * se, 4), round(b + t * se, 4)], "degrees_of_freedom": int(dof),
            "drift_ratio_lowest_to_highest": round(ratio, 4), "drift_ratio_ci95": [round(lo, 4), round(hi, 4)],
            "median_drift_by_fraction": {f"{f:g}": round(float(np.median(np.exp(y[fr == f]))), 4)
                                         for f in sorted(set(fr.tolist()))},
            "block_log_sd": round(float(np.std(coef[1:], ddof=1)), 4) if len(levels) > 1 else 0.0,
            "residual_log_sd": round(math.sqrt(s2), 4)}


def probe_rule_errors(drifts: list[float], band: float, ahead: int = 6) -> dict[str, Any]:
    """For each start k of a sequence of chunk drifts: the |log| error against the mean log drift of the
    ``ahead`` chunks after chunk k+2 of three probe rules — one chunk (k), the median of three (k..k+2), and
    the recheck (one chunk, the median of three when the first is further than ``band`` from 1, as
    ``service.operating_recheck``) — their mean and maximum, and how often the recheck ran."""
    import numpy as np

    x = np.log(np.asarray(drifts, float))
    if x.size < ahead + 3 or not np.all(np.isfinite(x)):
        raise HeraError(f"probe rule errors need {ahead + 3} finite chunk drifts, not {list(drifts)}")
    one, three, rule, rechecked = [], [], [], 0
    for k in range(x.size - ahead - 2):
        target = x[k + 3:k + 3 + ahead].mean()
        med = float(np.median(x[k:k + 3]))
        off = band > 0 and abs(x[k]) > math.log(band)
        rechecked += int(off)
        one.append(abs(x[k] - target))
        three.append(abs(med - target))
        rule.append(abs((med if off else x[k]) - target))

    def stats(e: list[float]) -> dict[str, float]:
        return {"mean": round(float(np.mean(e)), 4), "max": round(float(np.max(e)), 4)}

    return {"band": band, "ahead": ahead, "starts": len(one), "abs_log_error_one_chunk": stats(one),
            "abs_log_error_median_of_three": stats(three), "abs_log_error_recheck": stats(rule),
            "rechecked": rechecked}


def bench_model_agreement(scale: str, models: list[str], workers: list[int], study: dict[str, Any],
                          from_results: Path | None) -> dict[str, Any]:
    """Modelled vs confirmed-measured QPS* per (model, workers), and the measurement's noise floor
    (:func:`hera.report.noise.noise_floor`, through :func:`hera.report.claims.model_agreement`)."""
    import pandas as pd

    from hera.profile.scalability import determine
    from hera.report.claims import MODEL_MAX_ERROR, model_agreement, model_errors
    from hera.report.conditioning import summary as conditioning

    if from_results is not None:
        path = Path(from_results) / "profile" / "scalability.csv"
        if not path.is_file():
            raise HeraError(f"{path} does not exist")
        df = pd.read_csv(path)
        df = df[df["model"].isin(models) & df["workers"].isin(workers)]
    else:
        parts = []
        for m in models:
            require_built(m, scale)
            parts.append(determine(study, m, workers, sla_ms=t1_sla(m, scale), stream="agreement"))
            r = parts[-1]
            print("  ".join(f"{m} w={int(w)}: model {a:.2f} measured {b:.2f}" for w, a, b in
                            zip(r["workers"], r["qps_star_model"], r["qps_star"])), flush=True)
        df = pd.concat(parts, ignore_index=True)
    err = model_errors(df)
    fig = model_agreement(df)
    def num(r: Any, col: str) -> float | None:
        return round(float(r[col]), 3) if pd.notna(r.get(col)) else None

    beside = ("service_drift", "qps_star_model_served", "qps_star_model_profile", "operating_drift",
              "qps_star_model_before", "operating_drift_after")
    fig["points"] = [{"model": r["model"], "workers": int(r["workers"]), "qps_star_model": round(r["qps_star_model"], 3),
                      "qps_star": round(r["qps_star"], 3), "error": round(r["error"], 4),
                      "relative": bool(r["relative"]), **{c: num(r, c) for c in beside}} for _, r in err.iterrows()]
    if "qps_star_model_steady" in df.columns and df["qps_star_model_steady"].notna().any():
        steady = model_agreement(df.assign(qps_star_model=df["qps_star_model_steady"]), noise=False)
        fig["steady_state_model"] = {k: steady[k] for k in ("median_abs_rel_error", "max_abs_rel_error")}
    cond = conditioning(df, MODEL_MAX_ERROR)
    if cond is not None:
        fig["conditioning"] = cond
    if "seconds" in df.columns:
        fig["seconds_per_point"] = {f"{r['model']}/{int(r['workers'])}": round(float(r["seconds"]), 1)
                                    for _, r in df.iterrows()}
    return fig


def bench_pair_prediction(scale: str, models: list[str], study: dict[str, Any], from_results: Path | None,
                          min_pairs: int, predicted: Path | None = None) -> dict[str, Any]:
    """Prediction errors over the measured points of every pair of ``models`` (:mod:`hera.policy.accuracy`);
    ``predicted``: a prediction table to score those points against instead of the predictions they carry."""
    import itertools

    import pandas as pd

    from hera.paths import results_dir
    from hera.policy.accuracy import drift_decomposition, headline, prediction_errors, prediction_summary

    pairs = [f"{a}__{b}" for a, b in itertools.combinations(models, 2)]
    if len(pairs) < min_pairs:
        raise HeraError(f"{len(models)} models give {len(pairs)} pairs, fewer than --min-pairs {min_pairs}")
    if from_results is not None:
        path = Path(from_results) / "colocation" / "pairs.csv"
        if not path.is_file():
            raise HeraError(f"{path} does not exist")
        df = pd.read_csv(path)
        keys = {tuple(k) for k in df[["model_a", "model_b"]].to_numpy()}
        df = df[[(a, b) in keys and f"{a}__{b}" in pairs for a, b in zip(df["model_a"], df["model_b"])]]
        if predicted is not None:
            from hera.policy.accuracy import with_predictions

            if not Path(predicted).is_file():
                raise HeraError(f"{predicted} does not exist")
            df = with_predictions(df, pd.read_csv(predicted))
    else:
        from hera.profile import colocation

        res = results_dir(scale)
        need = [res / "tables" / "T1.csv", res / "profile" / "scalability.csv", res / "colocation" / "predicted.csv"]
        need += [res / "profile" / "service" / f"{m}.parquet" for m in models]
        absent = [p for p in need if not p.is_file()]
        if absent:
            raise HeraError(f"{absent[0]} does not exist: run the pipeline's profiles first (`snakemake --cores all "
                            f"{res}/colocation/predicted.csv`)")
        parts = []
        for pair in pairs:
            a, b = pair.split("__")
            out = res / "bench" / "pairs" / f"{pair}.csv"
            services = {m: str(res / "profile" / "service" / f"{m}.parquet") for m in (a, b)}
            parts.append(colocation.run(study, pair, need[0], need[1], need[2], services, out))
            print(f"{pair}: " + ", ".join(f"s={r.share_a:g} EMU {r.emu:.3f} (predicted {r.predicted_emu:.3f})"
                                          for r in parts[-1].itertuples()), flush=True)
        df = pd.concat(parts, ignore_index=True)
    err = prediction_errors(df)
    fig = prediction_summary(err)
    # the bars' figures: the refreshed prediction where every point has it (hera.policy.accuracy.HEADLINE), the
    # a-priori one beside as apriori_*; scored against another table (--predicted), that table's a-priori one
    fig.update(headline(fig, refreshed_ok=predicted is None))
    n = int(df[["model_a", "model_b"]].drop_duplicates().shape[0])
    if n < min_pairs:
        raise HeraError(f"only {n} measured pairs, fewer than --min-pairs {min_pairs}")
    fig["splits"] = sorted({f"{int(r.cores_a)}+{int(r.cores_b)} {r.llc}" for r in df.itertuples()})
    # where the error sits: the mean signed EMU error (predicted − measured) of each measured ray
    # where the served-over-predicted drift varies: with the pair (any time, any ray) or within it
    fig["service_drift_log_variance"] = {k: round(v, 4) if isinstance(v, float) else v
                                         for k, v in drift_decomposition(df).items()}
    by_ray = err.groupby(pd.to_numeric(err["share_a"]).round(3))["emu_error"].mean()
    fig["mean_emu_error_by_ray"] = {f"{s:g}": round(float(v), 4) for s, v in by_ray.items()}
    def num(x: Any) -> float | None:
        return round(float(x), 4) if pd.notna(x) else None

    if "per_repeat" in df.columns and "emu" in df.columns:  # the measurement's own noise (a lower bound)
        fig["noise_floor"] = pair_noise_floor(df.reset_index(drop=True), PAIR_MEDIAN_MAX_ERROR, PAIR_EMU_MAX_ERROR)
    fig["point_errors"] = [{"pair": f"{r.model_a}__{r.model_b}", "share_a": r.share_a, "error_a": num(r.error_a),
                            "error_b": num(r.error_b), "emu": num(r.emu), "predicted_emu": num(r.predicted_emu),
                            "predicted_served_emu": num(r.predicted_served_emu),
                            "anchored_emu": num(r.anchored_emu), "refreshed_emu": num(r.refreshed_emu)}
                           for r in err.itertuples()]
    try:  # the even split's extra, the run's level and the points' own scatter (hera.report.emu_floor)
        from hera.report.emu_floor import split

        fig["emu_error_split"] = split(fig["point_errors"])
    except HeraError as exc:  # no balanced ray measured (or nothing else): nothing to split
        fig["emu_error_split"] = {"note": str(exc)}
    return fig
