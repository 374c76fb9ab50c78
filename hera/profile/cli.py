"""``hera profile``: isolated, antagonist and co-located profiling of models → tidy result tables.

Commands (each prints one JSON object as its last stdout line)::

    hera profile latency     --config C --model M --out F                      # F1
    hera profile service     --config C --model M --out F                      # service times (SLA, F2, F9)
    hera profile scalability --config C --model M --service S --t1 T1.csv --out F   # F2, F9
    hera profile interference --config C --model M --service S [--calibration CAL] --out F   # F3
    hera profile interference-calibration --config C --out F                  # F3: reporter vs antagonist
    hera profile neighbour   --config C --model M --t1 T1.csv --scalability S.csv --service S... --out F   # F3
    hera profile memory      --config C --model M --out F                      # older F3 (hw counters)
    hera profile colocation  --config C --pair a__b --t1 T1.csv --scalability S.csv --out F   # F4
    hera profile pool-visits --config C --points V1.csv V2.csv V3.csv --out F                 # F4's visits
    hera profile refresh     --config C --visits V... --pairs P... --t1 T1.csv --scalability S.csv --service S... --out F
    hera profile node-calibration --config C --predicted P --scalability S.csv --service S... --trials T... --out F
    hera profile antagonist  --kind bandwidth --intensity 1 --cores 1          # antagonist self-test

Common options: ``--set key=value`` (config overrides), ``--models-root`` / ``--datasets-root`` (built models
and sample libraries; default ``models/build/<scale>`` and ``datasets/<scale>``), ``--runner synthetic``
(a tiny built-in model instead of the zoo: for tests and smoke runs only).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hera.harness.cli import add_node_arguments, load_study


def _common(p: argparse.ArgumentParser, model: bool = True) -> None:
    p.add_argument("--config", type=Path, required=True, help="study config (YAML/JSON)")
    if model:
        p.add_argument("--model", required=True, help="model id (e.g. dlrm_rmc1)")
    p.add_argument("--out", type=Path, required=True, help="output CSV")
    add_node_arguments(p)


def _prediction_inputs(p: argparse.ArgumentParser) -> None:
    """The O(N) profiles a pair prediction is made from (predict-pairs, refresh)."""
    p.add_argument("--t1", type=Path, required=True, help="T1 table (per-model sla_ms)")
    p.add_argument("--scalability", type=Path, required=True, help="scalability table (F2)")
    p.add_argument("--service", type=Path, nargs="+", required=True, help="service profiles (<model>.parquet)")
    p.add_argument("--interference", type=Path, nargs="*", default=[],
                   help="interference profiles (<model>.csv); none: tenants assumed not to interfere")
    p.add_argument("--calibration", type=Path, help="the interference calibration table")
    p.add_argument("--neighbour", type=Path, nargs="*", default=[],
                   help="neighbour profiles (hera profile neighbour; <model>.csv, or the node calibration); none: "
                        "no neighbour channel")
    p.add_argument("--resctrl-root", help="resctrl mount (default /sys/fs/resctrl)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="profile models: latency (F1), service times, scalability (F2), "
                                       "interference (F3), co-location (F4), antagonist self-test")
    psub = p.add_subparsers(dest="profile_command", metavar="KIND", required=True)

    c = psub.add_parser("latency", help="F1: latency vs sub-batch size, one pinned worker, low load")
    _common(c)
    c.set_defaults(func=_cmd_latency)

    c = psub.add_parser("service", help="service times of every sub-batch through the serving path, per worker "
                                        "count, at light load and at saturation (raw .parquet + quantile .csv)")
    _common(c)
    c.add_argument("--workers", help="comma-separated worker counts (default 1..study cores)")
    c.set_defaults(func=_cmd_service)

    c = psub.add_parser("scalability", help="F2: QPS* vs number of workers (one per core), modelled and measured")
    _common(c)
    c.add_argument("--service", type=Path, required=True, help="the model's service profile (hera profile service)")
    c.add_argument("--t1", type=Path, required=True, help="T1 table (per-model sla_ms)")
    c.set_defaults(func=_cmd_scalability)

    c = psub.add_parser("interference", help="F3: sensitivity of the model's service times to antagonists and "
                                             "the pressure its workers exert on a reporter (equivalent intensity)")
    _common(c)
    c.add_argument("--service", type=Path, required=True,
                   help="the model's service profile (hera profile service): saturation throughput per worker count")
    c.add_argument("--calibration", type=Path, help="the study's calibration (hera profile "
                                                    "interference-calibration): gives equivalent intensities")
    c.set_defaults(func=_cmd_interference)

    c = psub.add_parser("interference-calibration",
                        help="F3: a reporter's slowdown vs antagonist intensity, per kind (once per study)")
    c.add_argument("--config", type=Path, required=True, help="study config (YAML/JSON)")
    c.add_argument("--out", type=Path, required=True, help="output CSV (raw samples beside it, .parquet)")
    c.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable)")
    c.set_defaults(func=_cmd_interference_calibration)

    c = psub.add_parser("neighbour", help="F3: the model's tail next to a reference neighbour tenant at several "
                                          "loads, as an extra inflation beyond the memory profiles' prediction")
    _common(c)
    c.add_argument("--t1", type=Path, required=True, help="T1 table (per-model sla_ms)")
    c.add_argument("--scalability", type=Path, required=True, help="scalability table (F2) of the model and its "
                                                                 "reference neighbour")
    c.add_argument("--service", type=Path, nargs="+", required=True,
                   help="service profiles (<model>.parquet) of the model and its reference neighbour")
    c.add_argument("--interference", type=Path, nargs="*", default=[],
                   help="interference profiles of both (the memory inflation the prediction already gives)")
    c.add_argument("--calibration", type=Path, help="the interference calibration table")
    c.set_defaults(func=_cmd_neighbour)

    c = psub.add_parser("memory", help="older F3: sensitivity to antagonists, pressure on a probe, hw counters")
    _common(c)
    c.set_defaults(func=_cmd_memory)

    c = psub.add_parser("predict-pairs", help="predicted co-location of every pair on every split, from O(N) "
                                              "profiles (service, interference, scalability)")
    _common(c, model=False)
    c.add_argument("--models", required=True, help="comma-separated model ids")
    _prediction_inputs(c)
    c.set_defaults(func=_cmd_predict_pairs)

    c = psub.add_parser("colocation", help="F4: measured co-location of a model pair at the predicted-best "
                                           "splits: three points of its feasible region each")
    _common(c, model=False)
    c.add_argument("--pair", required=True, help="model pair 'model_a__model_b'")
    c.add_argument("--t1", type=Path, required=True, help="T1 table (per-model sla_ms)")
    c.add_argument("--scalability", type=Path, required=True, help="scalability table (F2) of both models")
    c.add_argument("--predicted", type=Path, required=True, help="pair predictions (hera profile predict-pairs)")
    c.add_argument("--service", type=Path, nargs=2, required=True, help="service profiles of model a and model b")
    c.add_argument("--interference", type=Path, nargs="*", default=[],
                   help="interference profiles of both models (as given to predict-pairs), for the prediction "
                        "anchored to the machine's speed before each split (colocation.anchor); none: the "
                        "tenants assumed not to interfere")
    c.add_argument("--calibration", type=Path, help="the interference calibration table")
    c.add_argument("--neighbour", type=Path, nargs="*", default=[],
                   help="neighbour profiles of both models (as given to predict-pairs); none: no neighbour channel")
    c.add_argument("--visit", type=int,
                   help="this sitting is visit K of colocation.visits: it takes its share of each point's repeats "
                        "on its own seeds (hera profile pool-visits pools them); default: one sitting takes all")
    c.add_argument("--resctrl-root", help="resctrl mount (default /sys/fs/resctrl)")
    c.set_defaults(func=_cmd_colocation)

    c = psub.add_parser("pool-visits", help="F4: pool a pair's visits (hera profile colocation --visit K, "
                                            "colocation.visits of them) into its measured points")
    _common(c, model=False)
    c.add_argument("--points", type=Path, nargs="+", required=True,
                   help="each visit's points file, in visit order (its <stem>.trials.csv beside it)")
    c.set_defaults(func=_cmd_pool_visits)

    c = psub.add_parser("refresh", help="F4: the pooled points of every pair with the refreshed prediction beside "
                                        "each (each model's solo speed from its anchors in the pass's other "
                                        "sittings; hera.profile.refresh)")
    _common(c, model=False)
    c.add_argument("--visits", type=Path, nargs="+", required=True,
                   help="every visit's points files (colocation/visits/<k>/<pair>.csv; the folder gives the visit)")
    c.add_argument("--pairs", type=Path, nargs="+", required=True,
                   help="the pooled points of every pair (colocation/pairs/<pair>.csv), concatenated into --out")
    _prediction_inputs(c)
    c.set_defaults(func=_cmd_refresh)

    c = psub.add_parser("node-calibration", help="the node's loaded-neighbour slowdown, from the joint trials of "
                                                 "the calibration pairs (colocation.node_calibration), as a "
                                                 "neighbour profile of every study model")
    _common(c, model=False)
    c.add_argument("--predicted", type=Path, required=True,
                   help="the pair predictions (without a channel) the calibration pairs were measured against")
    c.add_argument("--scalability", type=Path, required=True, help="scalability table (F2)")
    c.add_argument("--service", type=Path, nargs="+", required=True,
                   help="service profiles (<model>.parquet) of the calibration pairs' models")
    c.add_argument("--trials", type=Path, nargs="+", required=True,
                   help="the calibration pairs' joint trials (<a>__<b>.trials.csv of hera profile colocation)")
    c.set_defaults(func=_cmd_node_calibration)

    c = psub.add_parser("antagonist", help="self-test: run an antagonist alone and print its own throughput")
    c.add_argument("--kind", choices=["bandwidth", "cache"], action="append",
                   help="antagonist kind (repeatable; default both)")
    c.add_argument("--intensity", type=float, action="append", help="intensity in [0, 1] (repeatable; default 1)")
    c.add_argument("--cores", default=None, help="comma-separated CPUs (default: the core plan's last worker CPU)")
    c.add_argument("--duration-s", type=float, default=0.5, help="measurement window per point")
    c.set_defaults(func=_cmd_antagonist)


def _done(kind: str, out: Path, df, **extra) -> int:
    from hera.profile.common import summary_json

    print(summary_json(command=f"profile {kind}", out=str(out), rows=int(len(df)), **extra))
    return 0


def _cmd_latency(args: argparse.Namespace) -> int:
    from hera.profile import latency

    config, opts = load_study(args)
    df = latency.run(config, args.model, args.out, opts)
    return _done("latency", args.out, df, model=args.model,
                 latency_ms_p50={int(b): round(float(v), 4) for b, v in zip(df["batch_size"], df["latency_ms_p50"])})


def _cmd_service(args: argparse.Namespace) -> int:
    from hera.errors import ConfigError
    from hera.profile import service

    config, opts = load_study(args)
    workers = None
    if args.workers:
        try:
            workers = sorted({int(w) for w in args.workers.split(",") if w.strip()})
        except ValueError:
            raise ConfigError(f"--workers must be comma-separated integers, not {args.workers!r}") from None
        if not workers or workers[0] < 1:
            raise ConfigError(f"--workers must name worker counts >= 1, not {args.workers!r}")
    df = service.run(config, args.model, args.out, opts, workers)
    mix = df[df["statistic"] == "mix_latency"]
    return _done("service", service.outputs(args.out).summary, df, model=args.model,
                 unloaded_p99_ms={int(w): round(float(v), 3) for w, v in zip(mix["workers"], mix["p99_ms"])})


def _cmd_scalability(args: argparse.Namespace) -> int:
    from hera.profile import scalability

    config, opts = load_study(args)
    df = scalability.run(config, args.model, args.service, args.t1, args.out, opts)
    return _done("scalability", args.out, df, model=args.model,
                 qps_star={int(w): round(float(q), 2) for w, q in zip(df["workers"], df["qps_star"])},
                 qps_star_model={int(w): round(float(q), 2) for w, q in zip(df["workers"], df["qps_star_model"])})


def _cmd_memory(args: argparse.Namespace) -> int:
    from hera.profile import memory

    config, opts = load_study(args)
    df = memory.run(config, args.model, args.out, opts)
    lat = df[df["metric"] == "latency_ms"]
    return _done("memory", args.out, df, model=args.model,
                 slowdown={f"{a}@{i:g}": (None if s != s else round(float(s), 3))
                           for a, i, s in zip(lat["antagonist"], lat["intensity"], lat["slowdown"])})


def _cmd_interference(args: argparse.Namespace) -> int:
    from hera.profile import service
    from hera.profile.interference import stage

    config, opts = load_study(args)
    df = stage.run(config, args.model, args.service, args.out, opts, args.calibration)
    return _done("interference", service.outputs(args.out).summary, df, model=args.model, **stage.summary(df))


def _cmd_neighbour(args: argparse.Namespace) -> int:
    import sys

    from hera.profile import neighbour

    config, opts = load_study(args)
    services = {_model_of(p): str(p) for p in args.service}
    interference = _interference(args, config)
    df = neighbour.run(config, args.model, args.t1, args.scalability, services, interference, args.out, opts,
                       log=lambda m: print(m, file=sys.stderr, flush=True))
    return _done("neighbour", args.out, df, model=args.model, reference=str(df["reference"].iloc[0]),
                 extra_inflation={f"{u:.3f}": (None if e != e else round(float(e), 4))
                                  for u, e in zip(df["utilisation"], df["extra_inflation"])})


def _cmd_interference_calibration(args: argparse.Namespace) -> int:
    from hera import config as cfgmod
    from hera.profile.interference import calibration

    config = cfgmod.load(args.config, overrides=args.overrides)
    df = calibration.run(config, args.out)
    slowdown = {f"{k}@{x:g}": round(float(v), 4) for k, x, v in zip(df["kind"], df["intensity"], df["value"])}
    return _done("interference-calibration", args.out.with_suffix(".csv"), df, slowdown=slowdown,
                 usable={k: bool(g["usable"].iloc[0]) for k, g in df.groupby("kind", sort=False)})


def _interference(args: argparse.Namespace, config: dict, neighbour=None):
    """The interference profiles of ``--interference`` and ``--calibration``, read as the study's
    ``colocation.sensitivity`` and ``colocation.statistic`` say (with ``neighbour`` profiles, the neighbour channel)."""
    from hera.profile import pair_prediction

    return pair_prediction.interference_from_files(
        args.interference, args.calibration, str(config["colocation"].get("sensitivity", "saturated")),
        str(config["colocation"].get("statistic", "mean")), neighbour)


def _model_of(path: Path) -> str:
    """``results/.../<model>.parquet`` -> ``<model>``."""
    return Path(path).name.split(".")[0]


def _cmd_predict_pairs(args: argparse.Namespace) -> int:
    import sys

    from hera.profile import pair_prediction

    config, opts = load_study(args)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    services = {_model_of(p): str(p) for p in args.service}
    interference = _interference(args, config, args.neighbour)
    df = pair_prediction.run(config, models, args.t1, args.scalability, services, interference, args.out,
                             args.resctrl_root, log=lambda m: print(m, file=sys.stderr, flush=True))
    best = df[df["best"]]
    return _done("predict-pairs", args.out, df, pairs=int(df[["model_a", "model_b"]].drop_duplicates().shape[0]),
                 best_emu={f"{a}__{b}": round(float(g["emu"].max()), 4)
                           for (a, b), g in best.groupby(["model_a", "model_b"])})


def _cmd_colocation(args: argparse.Namespace) -> int:
    from hera.profile import colocation

    config, opts = load_study(args)
    ma, mb = args.pair.split("__") if "__" in args.pair else (args.pair, "")
    services = {ma: str(args.service[0]), mb: str(args.service[1])}
    interference = _interference(args, config, args.neighbour)
    from hera.config import point_visits

    visits = point_visits(config) if args.visit is not None else 1
    df = colocation.run(config, args.pair, args.t1, args.scalability, args.predicted, services, args.out, opts,
                        interference=interference, visit=args.visit or 1, visits=visits)
    best = df[df["best"] == True]  # noqa: E712 - pandas boolean mask
    return _done("colocation", args.out, df, pair=args.pair, visit=f"{args.visit or 1} of {visits}",
                 best_emu=None if best.empty else round(float(best["emu"].iloc[0]), 4))


def _cmd_pool_visits(args: argparse.Namespace) -> int:
    from hera.profile import visits

    config, _ = load_study(args)
    df = visits.run(config, args.points, args.out)
    best = df[df["best"] == True]  # noqa: E712 - pandas boolean mask
    return _done("pool-visits", args.out, df, visits=len(args.points),
                 best_emu=None if best.empty else round(float(best["emu"].iloc[0]), 4))


def _cmd_refresh(args: argparse.Namespace) -> int:
    from hera.profile import refresh

    config, _ = load_study(args)
    services = {_model_of(p): str(p) for p in args.service}
    df = refresh.run(config, args.visits, args.pairs, args.t1, args.scalability, services,
                     _interference(args, config, args.neighbour), args.out, args.resctrl_root)
    done = df["refreshed_emu"].notna() if "refreshed_emu" in df.columns else df.index[:0]
    return _done("refresh", args.out, df, refreshed_points=int(done.sum()), points=int(len(df)))


def _cmd_node_calibration(args: argparse.Namespace) -> int:
    from hera.profile import node_calibration

    config, _ = load_study(args)
    services = {_model_of(p): str(p) for p in args.service}
    from hera.profile.joint_trials import knots

    df = node_calibration.run(config, args.predicted, args.scalability, services, args.trials, args.out)
    return _done("node-calibration", args.out, df,
                 pairs=[f"{a}__{b}" for a, b in node_calibration.config_pairs(config)], extra_inflation=knots(df))


def _cmd_antagonist(args: argparse.Namespace) -> int:
    from hera.errors import ConfigError
    from hera.profile.antagonist import main_self_test
    from hera.topology import study_plan

    if args.cores:
        try:
            cores = [int(c) for c in args.cores.split(",") if c.strip()]
        except ValueError:
            raise ConfigError(f"--cores must be comma-separated CPU ids, not {args.cores!r}") from None
    else:
        cores = [study_plan({"cores": "auto"}).worker_cpus[-1]]  # a worker core: never the harness's
    res = main_self_test(args.kind or ["bandwidth", "cache"], args.intensity or [1.0], cores, args.duration_s)
    print(json.dumps({"command": "profile antagonist", "results": res}, default=str))
    return 0
