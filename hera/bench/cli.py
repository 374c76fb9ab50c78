"""The ``hera bench`` command group: arguments and one handler per benchmark (the work is in
:mod:`hera.bench.serving`, :mod:`hera.bench.node` and :mod:`hera.bench.qps`)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from hera.bench.common import (
    COV_BAR,
    core_plan,
    emit,
    load_study,
    on_harness,
    require_built,
    require_t1_sla,
    run_labels,
    vars_of,
    worker_cores,
)
from hera.bench.node import bench_allocator, bench_dispatch, bench_dispatch_ceiling, bench_memory
from hera.bench.qps import (
    bench_des,
    bench_drift_vs_rate,
    bench_model_agreement,
    bench_pair_prediction,
    bench_probe_drift,
    bench_repeatability,
    repeatability_pool,
)
from hera.bench.serving import bench_build, bench_loadgen_agreement, bench_serving
from hera.errors import HeraError


def register(sub: argparse._SubParsersAction) -> None:
    from hera.zoo.spec import list_models

    p = sub.add_parser("bench", help="benchmarks that print their figure (last line: JSON)")
    bsub = p.add_subparsers(dest="bench_command", metavar="BENCH", required=True)

    def common(q: argparse.ArgumentParser, model: bool = True) -> None:
        if model:
            q.add_argument("--model", default="dlrm_rmc1", choices=list_models())
        q.add_argument("--scale", default="ci", choices=["ci", "default", "paper"])
        q.add_argument("--out", type=Path, help="where to write the JSON (default results/<scale>/bench/)")

    b = bsub.add_parser("build", help="time to build all models and sample libraries at a scale")
    common(b, model=False)
    b.add_argument("--models", help="comma-separated model ids (default: every model of models/*.yaml)")
    b.add_argument("--items", type=int, help="items per sample library (default: the scale's)")
    b.set_defaults(func=_cmd_build)

    s = bsub.add_parser("serving", help="QPS* through the server vs in-process throughput")
    common(s)
    s.add_argument("--cores", default="all", help="'all' or a comma-separated CPU list (workers: one thread per "
                                                  "physical core; harness cores reserved on >= 8 cores)")
    s.add_argument("--batch-size", type=int, default=64)
    s.add_argument("--duration-s", type=float, default=5.0, help="in-process / saturation run length")
    s.add_argument("--config", type=Path, help="study config for the search settings (default: the scale's)")
    s.add_argument("--sla-ms", type=float, help="SLA in ms (default: the model's row of T1)")
    s.set_defaults(func=_cmd_serving)

    d = bsub.add_parser("dispatch", help="added latency of the in-node path for 1-item queries")
    common(d)
    d.add_argument("--core", type=int, default=None, help="worker CPU (default: the core plan's first)")
    d.add_argument("--queries", type=int, default=2000)
    d.set_defaults(func=_cmd_dispatch)

    c = bsub.add_parser("dispatch-ceiling", help="completed sub-batches/s of the harness with null workers")
    c.add_argument("--workers", default="1,2,4,8,16", help="comma-separated worker counts")
    c.add_argument("--cores", default="all", help="cores the workers share: 'all' or a comma-separated list")
    c.add_argument("--harness-cores", help="comma-separated CPUs for the load generator and the node's threads "
                   "(default: the core plan's harness cores, if it has any)")
    c.add_argument("--batch-size", type=int, default=64)
    c.add_argument("--duration-s", type=float, default=3.0, help="about how long each point runs")
    c.add_argument("--harness", choices=["process", "in-process"], default="process",
                   help="load generator in its own process (default) or in the node's process")
    c.add_argument("--open-loop-sub-batches-per-s", type=float, default=14_000.0,
                   help="steady Poisson load at the largest worker count (0: skip); 14,000 is what 16 RMC1 "
                        "workers at default scale need")
    c.add_argument("--out", type=Path, help="where to write the JSON (default results/bench/dispatch-ceiling.json)")
    c.set_defaults(func=_cmd_dispatch_ceiling)

    m = bsub.add_parser("memory", help="RSS/PSS of N workers of one model")
    common(m)
    m.add_argument("--workers", type=int, default=2)
    m.add_argument("--cores", default="all")
    m.set_defaults(func=_cmd_memory)

    a = bsub.add_parser("loadgen-agreement", help="p95 of our load generator vs MLPerf LoadGen")
    common(a)
    a.add_argument("--cores", default="all")
    a.add_argument("--load-frac", type=float, default=0.5, help="offered load as a fraction of capacity")
    a.add_argument("--duration-s", type=float, default=20.0)
    a.set_defaults(func=_cmd_agreement)


    al = bsub.add_parser("allocator", help="one-worker service profile in fresh processes: glibc default "
                                            "heap vs the steady heap the workers use")
    common(al)
    al.add_argument("--processes", type=int, default=6, help="fresh service profiles per mode (default 6)")
    al.add_argument("--config", type=Path, help="study config (default: the scale's)")
    al.set_defaults(func=_cmd_allocator)

    r = bsub.add_parser("qps-repeatability", help="spread of QPS* over independent complete determinations")
    common(r)
    r.add_argument("--runs", type=int, default=3, help="independent determinations (seeds) (default 3)")
    r.add_argument("--workers", type=int, default=1, help="worker count (default 1)")
    r.add_argument("--config", type=Path, help="study config (default: the scale's)")
    r.add_argument("--from-benches", type=Path, nargs="+", metavar="FILE",
                   help="pool earlier qps-repeatability results (JSON) into one CoV per model and worker count "
                        "with its interval, instead of measuring")
    r.set_defaults(func=_cmd_repeatability)

    pd_ = bsub.add_parser("probe-drift", help="consecutive operating-probe chunks: how well one chunk, or the "
                                              "median of three, predicts the next seconds' service drift")
    common(pd_)
    pd_.add_argument("--workers", type=int, default=1, help="worker count (default 1)")
    pd_.add_argument("--chunks", type=int, default=12, help="consecutive chunks (default 12)")
    pd_.add_argument("--config", type=Path, help="study config (default: the scale's)")
    pd_.set_defaults(func=_cmd_probe_drift)

    dr = bsub.add_parser("drift-vs-rate", help="operating-probe chunks at several fractions of the modelled QPS*, "
                                               "in randomised blocks: does the service drift depend on the load?")
    common(dr)
    dr.add_argument("--workers", type=int, default=1, help="worker count (default 1)")
    dr.add_argument("--fractions", default="0.4,0.6,0.8,1.0",
                    help="comma-separated fractions of the modelled QPS* (default 0.4,0.6,0.8,1.0)")
    dr.add_argument("--blocks", type=int, default=4, help="randomised blocks, every fraction once in each (default 4)")
    dr.add_argument("--config", type=Path, help="study config (default: the scale's)")
    dr.set_defaults(func=_cmd_drift_vs_rate)

    bp = bsub.add_parser("busy-partner", help="a tenant at a fixed load beside a partner at several loads, on two "
                                              "cores: how much the partner's load slows it, against the prediction")
    common(bp)
    bp.add_argument("--partner", required=True, help="the partner's model id")
    bp.add_argument("--load", type=float, default=0.85, help="the tenant's rate as a fraction of its one-worker "
                                                             "QPS* (default 0.85)")
    bp.add_argument("--fractions", default="0.02,0.2,0.85",
                    help="comma-separated fractions of the partner's one-worker QPS* (default 0.02,0.2,0.85)")
    bp.add_argument("--blocks", type=int, default=3, help="randomised blocks, every fraction once in each (default 3)")
    bp.add_argument("--seconds", type=float, default=8.0, help="seconds of load per window (default 8)")
    bp.add_argument("--config", type=Path, help="study config (default: the scale's)")
    bp.set_defaults(func=_cmd_busy_partner)

    g = bsub.add_parser("model-agreement", help="modelled vs confirmed-measured QPS* of every model")
    common(g, model=False)
    g.add_argument("--models", help="comma-separated model ids (default: the study's)")
    g.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    g.add_argument("--config", type=Path, help="study config (default: the scale's)")
    g.add_argument("--from-results", type=Path, metavar="DIR",
                   help="compute from the scalability table of a pipeline run (DIR/profile/scalability.csv) "
                        "instead of measuring")
    g.set_defaults(func=_cmd_model_agreement)


    pp = bsub.add_parser("pair-prediction", help="predicted vs measured co-location of model pairs")
    common(pp, model=False)
    pp.add_argument("--models", help="comma-separated model ids whose pairs are measured (default: the study's "
                                     "colocation.models, else all its models)")
    pp.add_argument("--min-pairs", type=int, default=12, help="refuse to report over fewer pairs (default 12)")
    pp.add_argument("--config", type=Path, help="study config (default: the scale's)")
    pp.add_argument("--from-results", type=Path, metavar="DIR",
                    help="compute from the co-location table of a pipeline run (DIR/colocation/pairs.csv) instead of "
                         "measuring")
    pp.add_argument("--predicted", type=Path, metavar="FILE",
                    help="with --from-results: score the run's measured points against this prediction table (e.g. "
                         "`hera profile predict-pairs` re-run on the run's profiles by newer code) instead of the "
                         "predictions its rows carry")
    pp.set_defaults(func=_cmd_pair_prediction)

    ds = bsub.add_parser("des", help="cost of the node model where the pipeline calls it (compiled event loop)")
    common(ds, model=False)
    ds.add_argument("--workers", type=int, default=1, help="worker count of the modelled node (default 1)")
    ds.add_argument("--service", type=Path, help="a service profile (results/<scale>/profile/service/M.parquet; "
                                                 "default: a synthetic law of the same shape)")
    ds.add_argument("--repeats", type=int, default=3, help="timed calls, the shortest reported (default 3)")
    ds.add_argument("--config", type=Path, help="study config (default: the scale's)")
    ds.set_defaults(func=_cmd_des)

    rs = bsub.add_parser("runs", help="headline numbers of several complete pipeline runs and their spread")
    rs.add_argument("--from-results", type=Path, metavar="DIR", nargs="+", default=[],
                    help="results folders of complete runs (results/<scale> of each clone, or results/reference)")
    rs.add_argument("--from-summary", type=Path, metavar="FILE", nargs="+", default=[],
                    help="earlier `hera bench runs` outputs (JSON) whose runs enter the spread first, with the "
                         "values they stored (their folders need not exist)")
    rs.add_argument("--labels", help="comma-separated names of the --from-results runs, in order (default: their "
                                     "folders)")
    rs.add_argument("--scale", default="default", choices=["ci", "default", "paper"])
    rs.add_argument("--out", type=Path, help="where to write the JSON (default results/<scale>/bench/runs.json)")
    rs.set_defaults(func=_cmd_runs)

    ef = bsub.add_parser("emu-floor", help="the pair prediction's mean |EMU error| with its systematic parts "
                                           "taken out (the even split's extra, the run's level), from kept "
                                           "`bench pair-prediction` figures")
    ef.add_argument("--from-figures", type=Path, metavar="FILE", nargs="+", required=True,
                    help="`hera bench pair-prediction` outputs (JSON with figure.point_errors), one per run")
    ef.add_argument("--labels", help="comma-separated names of the runs, in order (default: the files)")
    ef.add_argument("--scale", default="default", choices=["ci", "default", "paper"])
    ef.add_argument("--out", type=Path, help="where to write the JSON (default results/<scale>/bench/emu-floor.json)")
    ef.set_defaults(func=_cmd_emu_floor)

    _kept_samples_parser(bsub, "service-source", _cmd_service_source,
                         "F2 points of finished runs re-modelled from the stage's or the refreshed service profile, "
                         "with and without the probe")
    pt = _kept_samples_parser(bsub, "pair-trials", _cmd_pair_trials,
                              "F4's joint trials against their control variates, tenant by tenant: how far each tail "
                              "lay above the prediction's model by the tenant's share of its ray, and how much "
                              "trials scatter")
    pt.add_argument("--node-profile", type=Path, metavar="FILE",
                    help="also write the node's loaded-neighbour slowdown, pooled over these runs' pairs, as a "
                         "neighbour profile of every study model (`hera profile predict-pairs --neighbour FILE`; "
                         "docs/DESIGN.md, \"A node calibration from earlier runs\")")
    pt.add_argument("--all-cells", action="store_true",
                    help="with --node-profile: pool every cell for every model (default: a model's knots leave "
                         "out the pairs it is in)")
    cs = _kept_samples_parser(bsub, "calibration-split", _cmd_calibration_split,
                              "in each finished run, a node calibration read from a few of its pairs and the run "
                              "predicted again with it and without: both scored on its other pairs (what "
                              "colocation.node_calibration is worth)")
    cs.add_argument("--pairs", type=int, default=3, help="pairs each draw calibrates on (default 3)")
    cs.add_argument("--choices", type=int, default=8, help="random draws of those pairs per run (default 8)")
    cs.add_argument("--seed", type=int, default=0, help="seed of the draws (default 0)")
    _kept_samples_parser(bsub, "sla-rules", _cmd_sla_rules,
                         "the SLA's base by rule (pooled p99 vs the sizes' medians) in finished runs' service "
                         "samples, and its spread between runs")
    _kept_samples_parser(bsub, "conditioning", _cmd_conditioning,
                         "how far QPS* moves per 1%% of service time in finished runs' F2 points, how much of the "
                         "node model's error the trials' change of speed explains, and how often the max bar can "
                         "be met on such a machine")
    sc = _kept_samples_parser(bsub, "sla-conditioning", _cmd_sla_conditioning,
                              "the node model's QPS* at the SLA each multiplier of the run's rule gives: its "
                              "elasticity to the service time and its share of the saturation throughput (no node "
                              "is started)")
    sc.add_argument("--multipliers", default="3,4,5,6",
                    help="comma-separated SLA multipliers (default 3,4,5,6; the study's is 3)")
    sc.add_argument("--step", type=float, default=0.05,
                    help="relative change of the service times for the central difference (default 0.05)")


def _kept_samples_parser(bsub, name: str, func, help_text: str) -> argparse.ArgumentParser:
    """A bench over finished runs' kept results: ``--from-results DIR ...``, labels, scale, out."""
    p = bsub.add_parser(name, help=help_text)
    p.add_argument("--from-results", type=Path, metavar="DIR", nargs="+", required=True,
                   help="results folders of complete runs (results/<scale>; service-source, pair-trials and "
                        "sla-rules need the service samples they kept)")
    p.add_argument("--labels", help="comma-separated names of the runs, in order (default: their folders)")
    p.add_argument("--scale", default="default", choices=["ci", "default", "paper"])
    p.add_argument("--out", type=Path, help=f"where to write the JSON (default results/<scale>/bench/{name}.json)")
    p.set_defaults(func=func)
    return p


def _cmd_pair_prediction(args) -> int:
    study = load_study(args.scale, args.config)
    models = ([m.strip() for m in args.models.split(",") if m.strip()] if args.models
              else list(study["colocation"].get("models") or study["models"]))
    if args.predicted is not None and args.from_results is None:
        raise HeraError("--predicted re-scores a finished run's measured points: give --from-results DIR too")
    fig = bench_pair_prediction(args.scale, models, study, args.from_results, args.min_pairs, args.predicted)
    nf = fig.get("noise_floor")
    if nf:
        print(f"noise floor: ray repeats scatter by {nf['repeat_log_sd']:.3f} (log SD; "
              f"{nf['repeat_log_sd_robust']:.3f} without their tails); a perfect prediction would score "
              f"{nf['perfect_median_abs_rel_error']:.1%} / "
              f"{nf['perfect_mean_abs_emu_error']:.3f} (median tenant error / mean |EMU error|, the median over "
              f"{nf['sims']} simulated runs) and meet the EMU bar in {nf['p_perfect_meets_emu_bar']:.0%} of them",
              flush=True)
    return emit("pair-prediction", args.scale, fig, args.out, vars_of(args))


def _cmd_runs(args) -> int:
    from hera.report.runs import compare, from_summary, headline

    labels = run_labels(args)
    runs = [r for f in args.from_summary for r in from_summary(f)]
    runs += [headline(d, label) for d, label in zip(args.from_results, labels)]
    def pct(x: float) -> str:
        return f"{x:.1%}" if math.isfinite(x) else "n/a"

    def emu(x: float) -> str:
        return f"{x:.3f}" if math.isfinite(x) else "n/a"

    def factor(x: float) -> str:
        return f"x{x:.2f}" if math.isfinite(x) else "n/a"

    for r in runs:
        print(f"{r.path} ({', '.join(r.commits)}): F2 {r.f2_stage_s / 60:.1f} min; model agreement "
              f"{pct(r.model_median_abs_rel_error)} / {pct(r.model_max_abs_rel_error)} (profile alone "
              f"{pct(r.model_profile_median_abs_rel_error)} / {pct(r.model_profile_max_abs_rel_error)}, probe before "
              f"the trials alone {pct(r.model_before_median_abs_rel_error)} / "
              f"{pct(r.model_before_max_abs_rel_error)}); pair prediction "
              f"{pct(r.pair_median_abs_rel_error)} / EMU {emu(r.pair_mean_abs_emu_error)}; C5 "
              f"{pct(r.c5_violation_frac)}; as served: model {pct(r.model_served_median_abs_rel_error)} / "
              f"{pct(r.model_served_max_abs_rel_error)}, pairs {pct(r.pair_served_median_abs_rel_error)} / EMU "
              f"{emu(r.pair_served_mean_abs_emu_error)}; pairs anchored {pct(r.pair_anchored_median_abs_rel_error)} / "
              f"EMU {emu(r.pair_anchored_mean_abs_emu_error)}; the stage's profile off at the operating point by "
              f"{factor(r.stage_drift_median)} (median)", flush=True)
    out = compare(runs)
    corr = out["pair_drift_between_run_correlation"]
    if corr is not None:
        print("co-location service drift per (victim, partner), between-run correlation of its log: "
              + ", ".join(f"{k} {v:+.2f}" for k, v in corr["pairs_of_runs"].items())
              + " (near 0: the machine's speed at the time, not a pair's interference)", flush=True)
    return emit("runs", args.scale, out, args.out, vars_of(args))


def _cmd_service_source(args) -> int:
    import pandas as pd

    from hera.report.service_source import VARIANTS, remodel, summary

    labels = run_labels(args)
    frames = []
    for d, label in zip(args.from_results, labels):
        df = remodel(d).assign(run=label)
        frames.append(df)
        print(df[["model", "workers", "measured", *VARIANTS]].round(2).to_string(index=False), flush=True)
        print(f"{label}: " + "; ".join(f"{k} {v['median_abs_rel_error']:.1%} / {v['max_abs_rel_error']:.1%}"
                                       for k, v in summary(df).items() if v["points"]), flush=True)
    both = pd.concat(frames, ignore_index=True)
    fig = {"runs": {label: summary(df) for label, df in zip(labels, frames)}, "pooled": summary(both)}
    return emit("service-source", args.scale, fig, args.out, vars_of(args))


def _cmd_emu_floor(args) -> int:
    from hera.report.claims import PAIR_EMU_MAX_ERROR
    from hera.report.emu_floor import from_figure, summary

    runs = {}
    for f, label in zip(args.from_figures, run_labels(args, args.from_figures, "--from-figures")):
        runs[label] = r = from_figure(f)
        print(f"{label}: mean |EMU error| {r['mean_abs_emu_error']:.3f}; even split's extra {r['even_extra']:+.3f}, "
              f"level {r['level']:+.3f}; without the extra {r['without_even_extra']:.3f}, ray-centred "
              f"{r['ray_centred']:.3f}", flush=True)
    fig = {"runs": runs, "summary": summary(runs, PAIR_EMU_MAX_ERROR)}
    return emit("emu-floor", args.scale, fig, args.out, vars_of(args))


def _cmd_pair_trials(args) -> int:
    import pandas as pd

    from hera.report.pair_trials import residuals, summary

    frames = []
    for d, label in zip(args.from_results, run_labels(args)):
        df = residuals(d).assign(run=label)
        frames.append(df)
        fig = summary(df)
        print(f"{label}: {fig['trials']} tenant-trials over {fig['pairs']} pairs; mean log tail residual by own "
              "share " + ", ".join(f"{k}: {v['mean_residual']:+.3f}" for k, v in fig["by_own_share"].items())
              + "; partner-load effect (balanced - favoured) "
              + f"{fig['partner_load_effect']['balanced_vs_favoured']['value']}", flush=True)
    both = pd.concat(frames, ignore_index=True)
    fig = {"runs": {label: summary(df) for label, df in zip(run_labels(args), frames)}, "pooled": summary(both)}
    if args.node_profile is not None:
        import json

        from hera.provenance import write_table
        from hera.report.pair_trials import check_uncalibrated, node_profile

        for d in args.from_results:  # a drift measured against a prediction that had a channel is net of it
            check_uncalibrated(d)
        config = json.loads((Path(args.from_results[0]) / "config.json").read_text())
        prof = node_profile(both, list(config["models"]), leave_model_out=not args.all_cells)
        write_table(prof, args.node_profile, config=config, seed=config.get("seed"))
        knots = prof.drop_duplicates("own_share") if args.all_cells else prof
        fig["node_profile"] = {"out": str(args.node_profile), "leave_model_out": not args.all_cells,
                               "knots": knots[["model", "own_share", "utilisation", "extra_inflation",
                                               "cells"]].to_dict("records")}
        print(f"node profile: {args.node_profile} ({len(prof)} knots)", flush=True)
    return emit("pair-trials", args.scale, fig, args.out, vars_of(args))


def _cmd_calibration_split(args) -> int:
    import random
    import sys

    from hera.report.calibration_split import evaluate, summarise
    from hera.report.pair_trials import check_uncalibrated
    from hera.report.claims import PAIR_EMU_MAX_ERROR

    if args.choices < 1:
        raise HeraError(f"--choices must be at least 1, not {args.choices}")
    rng = random.Random(args.seed)
    labels = run_labels(args)
    for d in args.from_results:  # every run is checked before the first is predicted again
        check_uncalibrated(d)
    runs = {}
    for d, label in zip(args.from_results, labels):
        runs[label] = r = evaluate(d, args.pairs, args.choices, rng, PAIR_EMU_MAX_ERROR,
                                   log=lambda m: print(m, file=sys.stderr, flush=True))
        print(f"{label}: mean |EMU error| on the other pairs {r['mean_abs_emu_error']['without']:.3f} without, "
              f"{r['mean_abs_emu_error']['with']:.3f} with a calibration from {args.pairs} of its pairs (lower in "
              f"{r['share_lower_with']:.0%} of {r['draws_n']} draws)", flush=True)
    fig = {"runs": runs, "pooled": summarise([x for r in runs.values() for x in r["draws"]], PAIR_EMU_MAX_ERROR)}
    return emit("calibration-split", args.scale, fig, args.out, vars_of(args))


def _cmd_sla_rules(args) -> int:
    import pandas as pd

    from hera.report.sla_rules import between_run_cov, sla_bases

    bases = pd.concat([sla_bases(d, label) for d, label in zip(args.from_results, run_labels(args))],
                      ignore_index=True)
    print(bases.round(2).to_string(index=False), flush=True)
    spread = between_run_cov(bases) if bases["run"].nunique() > 1 else None
    if spread:
        print("between-run CoV of the p99, median over models: "
              + "; ".join(f"{rule} {v['median']:.3f}" for rule, v in spread.items()), flush=True)
    fig = {"bases": bases.round(4).to_dict(orient="records"), "between_run_cov": spread}
    return emit("sla-rules", args.scale, fig, args.out, vars_of(args))


def _share(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"


def _cmd_conditioning(args) -> int:
    import pandas as pd

    from hera.report.claims import MODEL_MAX_ERROR
    from hera.report.conditioning import pass_rates, points, summarise

    runs, frames = {}, {}
    for folder, label in zip(args.from_results, run_labels(args)):
        path = Path(folder) / "profile" / "scalability.csv"
        if not path.is_file():
            raise HeraError(f"{path} does not exist")
        frames[label] = points(pd.read_csv(path), MODEL_MAX_ERROR)
        runs[label] = r = summarise(frames[label], MODEL_MAX_ERROR)
        if r is None:
            raise HeraError(f"{path}: no F2 row carries a tail slope and a service drift (a run before they were "
                            "recorded); leave it out")
        print(f"{label}: elasticity " + ", ".join(f"{w} worker(s) {v['median']:.2f} [{v['min']:.2f}, {v['max']:.2f}]"
                                                  for w, v in r["elasticity_by_workers"].items())
              + f"; max |error| {r['max_abs_error']:.1%}, {r['max_abs_error_without_drift']:.1%} without the "
              f"trials' drift (which explains {_share(r['drift_explained_share'])} of the squared log error)",
              flush=True)
    fig: dict = {"runs": runs}
    if len(frames) > 1:
        fig["pooled"] = pass_rates(frames, MODEL_MAX_ERROR)
        p = fig["pooled"]
        print(f"max bar ({MODEL_MAX_ERROR:.0%}) met in {p['runs_meeting_max_bar']} runs; simulated from the pooled "
              f"drifts and rests: {p['simulated_p_meets_max_bar']:.0%}; with no drift "
              f"{p['p_meets_max_bar_if_drift_1']:.0%}; with elasticity -1 {p['p_meets_max_bar_if_elasticity_1']:.0%}",
              flush=True)
    return emit("conditioning", args.scale, fig, args.out, vars_of(args))


def _cmd_sla_conditioning(args) -> int:
    from hera.bench.conditioning import by_multiplier, check_multipliers, sla_conditioning

    try:
        multipliers = [float(x) for x in args.multipliers.split(",") if x.strip()]
    except ValueError:
        raise HeraError(f"--multipliers must be comma-separated numbers, not {args.multipliers!r}") from None
    check_multipliers(multipliers, args.step)
    rows = [r for folder, label in zip(args.from_results, run_labels(args))
            for r in sla_conditioning(folder, label, multipliers, args.step)]
    fig = {"by_multiplier": by_multiplier(rows), "points": rows, "step": args.step}
    for m, per_w in fig["by_multiplier"].items():
        print(f"multiplier {m}: " + "; ".join(
            f"{w} worker(s) elasticity {v['elasticity_median']:.2f} (min {v['elasticity_min']:.2f}), QPS* at "
            f"{v['capacity_share_median']:.0%} of capacity, {v['above_capacity']} of {v['points']} above it"
            for w, v in per_w.items()), flush=True)
    return emit("sla-conditioning", args.scale, fig, args.out, vars_of(args))


def _cmd_repeatability(args) -> int:
    if args.from_benches:
        fig = repeatability_pool(args.from_benches)
        for key, v in fig["by_model"].items():
            print(f"{key}: pooled CoV {v['pooled_cov']:.3f} [{v['pooled_cov_ci'][0]:.3f}, "
                  f"{v['pooled_cov_ci'][1]:.3f}] ({v['cov_ci_level']:.0%}; {v['groups']} benches, "
                  f"{v['degrees_of_freedom']} degrees of freedom); CoV <= {COV_BAR:g} in "
                  f"{v['benches_cov_at_most_bar']} of {v['groups']}", flush=True)
        for left in fig["left_out"]:
            print(f"left out: {left['file']}: {left['why']}", flush=True)
        return emit("qps-repeatability-pool", args.scale, fig, args.out, vars_of(args))
    study = load_study(args.scale, args.config)
    fig = bench_repeatability(args.model, args.scale, args.runs, args.workers, study)
    return emit(f"qps-repeatability-{args.model}-w{args.workers}", args.scale, fig, args.out, vars_of(args))


def _cmd_probe_drift(args) -> int:
    study = load_study(args.scale, args.config)
    band = float(study["service"].get("operating_recheck", 0.0))
    fig = bench_probe_drift(args.model, args.scale, args.workers, args.chunks, band, study)
    return emit(f"probe-drift-{args.model}-w{args.workers}", args.scale, fig, args.out, vars_of(args))


def _fractions(args) -> list[float]:
    """``--fractions`` as numbers; a one-line error for anything else."""
    try:
        return [float(f) for f in args.fractions.split(",") if f.strip()]
    except ValueError:
        raise HeraError(f"--fractions must be comma-separated numbers, not {args.fractions!r}") from None


def _cmd_drift_vs_rate(args) -> int:
    fractions = _fractions(args)
    study = load_study(args.scale, args.config)
    fig = bench_drift_vs_rate(args.model, args.scale, args.workers, fractions, args.blocks, study)
    return emit(f"drift-vs-rate-{args.model}-w{args.workers}", args.scale, fig, args.out, vars_of(args))


def _cmd_busy_partner(args) -> int:
    import pandas as pd

    from hera.bench.partner import busy_partner
    from hera.harness.nodes import NodeOptions
    from hera.paths import results_dir

    fractions = _fractions(args)
    study = load_study(args.scale, args.config)
    for m in (args.model, args.partner):
        require_built(m, args.scale)
    res = results_dir(args.scale)
    path = res / "profile" / "scalability.csv"
    if not path.is_file():
        raise HeraError(f"{path} does not exist: busy-partner loads each model by its one-worker QPS* (run the "
                        f"pipeline's F2 first)")
    scal = pd.read_csv(path)
    one = scal[scal["workers"] == 1].set_index("model")
    models = (args.model, args.partner)
    qps = {m: float(one["qps_star"][m]) for m in models if m in one.index}
    sla = {m: require_t1_sla(m, args.scale) for m in models}
    files = [res / "profile" / "interference" / f"{m}.csv" for m in models]
    interference = None
    if all(f.is_file() for f in files):
        from hera.profile.pair_prediction import interference_from_files

        interference = interference_from_files([str(f) for f in files],
                                               str(res / "profile" / "interference_calibration.csv"))
    fig = busy_partner(study, args.model, args.partner, qps, sla, args.load, fractions, args.blocks, args.seconds,
                       NodeOptions(), interference)
    for f, e in fig["by_fraction"].items():
        print(f"partner at {f} x its QPS*: mean sub-batch x{e['service_ms_mean_vs_lightest']['median']}, p95 "
              f"x{e['latency_ms_p95_vs_lightest']['median']} against the lightest"
              + (f" (predicted inflation x{e['predicted_inflation_vs_lightest']})"
                 if "predicted_inflation_vs_lightest" in e else ""), flush=True)
    return emit(f"busy-partner-{args.model}-{args.partner}", args.scale, fig, args.out, vars_of(args))


def _cmd_model_agreement(args) -> int:
    from hera.report.conditioning import describe

    study = load_study(args.scale, args.config)
    models = [m.strip() for m in args.models.split(",")] if args.models else list(study["models"])
    try:
        workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
    except ValueError:
        raise HeraError(f"--workers must be comma-separated integers, not {args.workers!r}") from None
    fig = bench_model_agreement(args.scale, models, workers, study, args.from_results)
    nf = fig.get("noise_floor")
    if nf:
        print(f"noise floor: repeats scatter by {nf['repeat_log_sd']:.3f} (log SD, {nf['degrees_of_freedom']} "
              f"degrees of freedom; {nf['repeat_log_sd_robust']:.3f} without their tails); a perfect model would "
              f"score {nf['perfect_model_median_abs_rel_error']:.1%} / "
              f"{nf['perfect_model_max_abs_rel_error']:.1%} (median / max, the median over {nf['sims']} "
              f"simulated runs) and meet the max bar in {nf['p_perfect_model_meets_max_bar']:.0%} of them", flush=True)
    cond = describe(fig.get("conditioning"))
    if cond:
        print(f"conditioning: {cond}", flush=True)
    return emit("model-agreement", args.scale, fig, args.out, vars_of(args))


def _cmd_allocator(args) -> int:
    from hera.paths import repo_root

    if args.processes < 2:
        raise HeraError(f"allocator: --processes must be >= 2 (a spread needs two), not {args.processes}")
    config = args.config or repo_root() / "workflow" / "config" / f"{args.scale}.yaml"
    fig = bench_allocator(args.model, args.scale, config, args.processes)
    return emit(f"allocator-{args.model}", args.scale, fig, args.out, vars_of(args))


def _cmd_build(args) -> int:
    from hera.zoo.spec import list_models

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else list_models()
    fig = bench_build(args.scale, models, args.items)
    print(f"built {fig['models']} models in {fig['models_s']} s and their libraries in {fig['libraries_s']} s")
    return emit("build", args.scale, fig, args.out, vars_of(args))


def _cmd_serving(args) -> int:
    from hera import config as cfg
    from hera.paths import repo_root

    study = cfg.load(args.config or repo_root() / "workflow" / "config" / f"{args.scale}.yaml")
    with on_harness(args.cores):
        fig = bench_serving(args.model, args.scale, worker_cores(args.cores), args.batch_size, args.duration_s,
                            study["search"], args.sla_ms)
    return emit(f"serving-{args.model}", args.scale, fig, args.out, vars_of(args))


def _cmd_des(args) -> int:
    if args.workers < 1 or args.repeats < 1:
        raise HeraError(f"bench des: --workers and --repeats must be >= 1, got {args.workers} and {args.repeats}")
    if args.service is not None and not args.service.is_file():
        raise HeraError(f"bench des: no service profile at {args.service}")
    fig = bench_des(load_study(args.scale, args.config), args.workers, args.service, args.repeats)
    return emit(f"des-{args.workers}", args.scale, fig, args.out, vars_of(args))


def _cmd_dispatch(args) -> int:
    core = worker_cores("all")[0] if args.core is None else args.core
    with on_harness("all"):
        fig = bench_dispatch(args.model, args.scale, core, args.queries)
    return emit("dispatch", args.scale, fig, args.out, vars_of(args))


def _cmd_dispatch_ceiling(args) -> int:
    try:
        workers = [int(x) for x in args.workers.split(",") if x.strip()]
        harness_cores = [int(x) for x in args.harness_cores.split(",")] if args.harness_cores else None
    except ValueError:
        raise HeraError(f"dispatch-ceiling: --workers {args.workers!r} / --harness-cores must be comma-separated "
                        "integers") from None
    if not workers or min(workers) < 1:
        raise HeraError(f"dispatch-ceiling: --workers {args.workers!r} must list worker counts >= 1")
    plan = core_plan(args.cores)
    if harness_cores is None and plan.harness_cpus:
        harness_cores = list(plan.harness_cpus)
    fig = bench_dispatch_ceiling(workers, list(plan.worker_cpus), args.batch_size, args.duration_s, harness_cores,
                                 args.harness == "process", args.open_loop_sub_batches_per_s)
    from hera.paths import repo_root

    out = args.out or repo_root() / "results" / "bench" / "dispatch-ceiling.json"  # no model, no scale
    return emit("dispatch-ceiling", "ci", fig, out, vars_of(args))


def _cmd_memory(args) -> int:
    with on_harness(args.cores):
        fig = bench_memory(args.model, args.scale, args.workers, worker_cores(args.cores))
    return emit(f"memory-{args.model}", args.scale, fig, args.out, vars_of(args))


def _cmd_agreement(args) -> int:
    from hera.paths import results_dir

    log_dir = results_dir(args.scale) / "bench" / "mlperf_logs"
    with on_harness(args.cores):
        fig = bench_loadgen_agreement(args.model, args.scale, worker_cores(args.cores), args.load_frac,
                                      args.duration_s, log_dir)
    return emit(f"loadgen-agreement-{args.model}", args.scale, fig, args.out, vars_of(args))
