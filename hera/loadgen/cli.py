"""``hera loadgen``: drive a node open loop, measure the harness itself, check it against queueing theory.

- ``hera loadgen run --config FILE`` — start a node (``node:`` section, ``hera.server`` config) and drive
  it with the ``loadgen:`` settings (one stream per tenant; ``tenants: {name: {...}}`` overrides per
  tenant); with a ``search:`` section it finds QPS* per tenant instead. Writes tidy rows and summaries.
- ``hera loadgen null --qps R --n N`` — the null SUT: the harness's own issue lateness.
- ``hera loadgen selftest`` — SleepSUT (an M/D/1 or M/M/1 queue) at a few loads; measured mean and
  p95 latency against the analytical values (``--mlperf``: MLPerf LoadGen on the same queue as well).

Each prints a table and one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from hera.errors import ConfigError

RUN_KEYS = {"node", "loadgen", "tenants", "library_items", "search", "out"}
SEARCH_KEYS = {"sla_ms", "percentile", "start_qps", "rel_tol", "repeats", "min_queries", "min_duration_s",
               "max_queries", "min_qps", "max_qps"}


def register(subparsers) -> None:
    p = subparsers.add_parser("loadgen", help="open-loop load generator, QPS* search, MLPerf LoadGen check",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="loadgen_command", metavar="SUBCOMMAND", required=True)

    r = sub.add_parser("run", help="drive a node (config: node + loadgen settings [+ search])")
    r.add_argument("--config", required=True, help="YAML/JSON file with node:, loadgen:, tenants:, search:")
    r.add_argument("--out", default=None, help="output directory (overrides out: in the config)")
    r.set_defaults(func=_cmd_run)

    n = sub.add_parser("null", help="null-SUT harness overhead: issue lateness percentiles")
    n.add_argument("--qps", type=float, default=1000.0, help="Poisson rate (queries/s)")
    n.add_argument("--n", type=int, default=5000, help="queries")
    n.add_argument("--threads", type=int, default=0,
                   help="complete from a pool of this many threads (0: inline)")
    n.add_argument("--seed", type=int, default=0, help="arrival seed")
    n.add_argument("--out", default=None, help="write per-query rows here (.csv/.parquet)")
    n.set_defaults(func=_cmd_null)

    s = sub.add_parser("selftest", help="SleepSUT queue vs analytical M/D/1 or M/M/1 latency")
    s.add_argument("--service-ms", type=float, default=5.0, help="mean service time (ms)")
    s.add_argument("--law", choices=("deterministic", "exponential"), default="deterministic")
    s.add_argument("--loads", default="0.3,0.5,0.7", help="utilisations ρ = λ·service, comma-separated")
    s.add_argument("--n", type=int, default=2000, help="measured queries per load")
    s.add_argument("--warmup", type=int, default=50, help="warm-up queries per load (excluded)")
    s.add_argument("--tolerance", type=float, default=0.25, help="max relative error of mean and p95")
    s.add_argument("--seed", type=int, default=0, help="arrival seed")
    s.add_argument("--mlperf", action="store_true", help="also run MLPerf LoadGen on the same queue")
    s.add_argument("--log-dir", default=None, help="MLPerf LoadGen log directory (default: a temp dir)")
    s.set_defaults(func=_cmd_selftest)


# ------------------------------------------------------------------------------------------- null
def _cmd_null(args) -> int:
    from hera.loadgen import driver
    from hera.loadgen.settings import LoadgenSettings
    from hera.loadgen.sut import NullSUT

    s = LoadgenSettings(target_qps=args.qps, n_queries=args.n, query_sizes={"kind": "fixed", "items": 1},
                        max_items=1, arrival_seed=args.seed, completion_timeout_s=10.0)
    sut = NullSUT(args.threads)
    try:
        res = driver.run(sut, s, 1)
    finally:
        sut.close()
    sm = res.summary
    out = {
        "sut": "null", "threads": args.threads, "target_qps": args.qps, "n": sm["n_measured"],
        "offered_qps": sm["offered_qps"], "achieved_qps": sm["achieved_qps"],
        "issue_lateness_us_p50": sm["issue_lateness_us_p50"],
        "issue_lateness_us_p99": sm["issue_lateness_us_p99"],
        "issue_lateness_us_max": sm["issue_lateness_us_max"], "latency_ms_p50": sm["latency_ms_p50"],
        "latency_ms_p99": sm["latency_ms_p99"], "n_failed": sm["n_failed"],
    }
    how = "inline" if not args.threads else f"{args.threads} threads"
    print(f"null SUT ({how}), {sm['n_measured']} queries at {args.qps:g} qps "
          f"(offered {sm['offered_qps']:.1f})")
    print(f"  issue lateness (issued - scheduled): p50 {out['issue_lateness_us_p50']:.1f} us, "
          f"p99 {out['issue_lateness_us_p99']:.1f} us, max {out['issue_lateness_us_max']:.1f} us")
    print(f"  end-to-end latency (scheduled -> done): p50 {out['latency_ms_p50'] * 1e3:.1f} us, "
          f"p99 {out['latency_ms_p99'] * 1e3:.1f} us")
    if args.out:
        res.write(args.out)
    print(_dumps(out))
    return 0


# --------------------------------------------------------------------------------------- selftest
def selftest(service_ms: float = 5.0, law: str = "deterministic", loads=(0.3, 0.5, 0.7), n: int = 2000,
             warmup: int = 50, seed: int = 0, mlperf_log_dir: str | None = None, log=print):
    """Run SleepSUT at each utilisation and compare measured mean/p95 latency with M/D/1 or M/M/1 theory.

    Returns a DataFrame: ``harness, law, rho, rate_qps, n, mean_ms, mean_ms_theory, mean_rel_err, p95_ms,
    p95_ms_theory, p95_rel_err, issue_lateness_us_p99``.
    """
    import pandas as pd

    from hera.loadgen import driver, sut as sutmod
    from hera.loadgen.settings import LoadgenSettings

    d = service_ms / 1e3
    fn = sutmod.deterministic(d) if law == "deterministic" else sutmod.exponential(d)
    rows = []
    for rho in loads:
        if not 0 < rho < 1:
            raise ConfigError(f"selftest: load {rho} must be in (0, 1)")
        lam = rho / d
        if law == "deterministic":
            mean_t = sutmod.md1_mean_sojourn_s(lam, d)
            p95_t = sutmod.md1_sojourn_quantile_s(0.95, lam, d)
        else:
            mean_t = sutmod.mmc_mean_sojourn_s(lam, d, 1)
            p95_t = sutmod.mmc_sojourn_quantile_s(0.95, lam, d, 1)
        s = LoadgenSettings(target_qps=lam, n_queries=n, warmup_queries=warmup, arrival_seed=seed,
                            query_sizes={"kind": "fixed", "items": 1}, max_items=1)
        q = sutmod.SleepSUT(fn, 1, seed=seed)
        try:
            res = driver.run(q, s, 1)
        finally:
            q.close()
        sm = res.summary
        rows.append(_selftest_row("hera", law, rho, lam, sm["n_ok"], sm["latency_ms_mean"],
                                  sm["latency_ms_p95"], mean_t, p95_t, sm["issue_lateness_us_p99"]))
        if mlperf_log_dir is not None:
            from hera.loadgen import mlperf

            q = sutmod.SleepSUT(fn, 1, seed=seed)
            try:
                lgr = mlperf.run_loadgen(q, s.replace(warmup_queries=0), 1,
                                         Path(mlperf_log_dir) / f"rho{rho:g}")
            finally:
                q.close()
            rows.append(_selftest_row("mlperf_loadgen", law, rho, lam, lgr.get("n_queries"),
                                      lgr.get("latency_ms_mean", math.nan),
                                      lgr.get("latency_ms_p95", math.nan), mean_t, p95_t, math.nan))
        if log:
            r = rows[-1] if mlperf_log_dir is None else rows[-2]
            log(f"  rho={rho:.2f} {lam:8.1f} qps: mean {r['mean_ms']:.3f} ms "
                f"(theory {r['mean_ms_theory']:.3f}, err {r['mean_rel_err']:+.1%}), "
                f"p95 {r['p95_ms']:.3f} ms (theory {r['p95_ms_theory']:.3f}, err {r['p95_rel_err']:+.1%}), "
                f"lateness p99 {r['issue_lateness_us_p99']:.0f} us")
    return pd.DataFrame(rows)


def _selftest_row(harness, law, rho, lam, n, mean_ms, p95_ms, mean_t, p95_t, late):
    return {
        "harness": harness, "law": law, "rho": rho, "rate_qps": lam, "n": n,
        "mean_ms": mean_ms, "mean_ms_theory": mean_t * 1e3, "mean_rel_err": mean_ms / (mean_t * 1e3) - 1,
        "p95_ms": p95_ms, "p95_ms_theory": p95_t * 1e3, "p95_rel_err": p95_ms / (p95_t * 1e3) - 1,
        "issue_lateness_us_p99": late,
    }


def _cmd_selftest(args) -> int:
    import tempfile

    try:
        loads = tuple(float(x) for x in args.loads.split(","))
    except ValueError:
        raise ConfigError(f"--loads must be comma-separated numbers, got {args.loads!r}") from None
    theory = "M/D/1" if args.law == "deterministic" else "M/M/1"
    print(f"selftest: SleepSUT {theory} queue, service {args.service_ms:g} ms, {args.n} queries per load")
    log_dir = None
    tmp = None
    if args.mlperf:
        tmp = tempfile.TemporaryDirectory(prefix="hera-loadgen-selftest-") if args.log_dir is None else None
        log_dir = args.log_dir or tmp.name
    try:
        df = selftest(args.service_ms, args.law, loads, args.n, args.warmup, args.seed, log_dir)
    finally:
        if tmp is not None:
            tmp.cleanup()
    worst = df[["mean_rel_err", "p95_rel_err"]].abs().max(axis=1)
    df["within_tolerance"] = worst <= args.tolerance
    if args.mlperf:
        print(df[["harness", "rho", "rate_qps", "n", "mean_ms", "mean_ms_theory", "p95_ms", "p95_ms_theory"]]
              .to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    ok = bool(df["within_tolerance"].all())
    print(f"verdict: {'PASS' if ok else 'FAIL'} (tolerance {args.tolerance:.0%} on mean and p95)")
    print(_dumps({"theory": theory, "tolerance": args.tolerance, "passed": ok,
                  "rows": df.to_dict(orient="records")}))
    return 0 if ok else 1


# -------------------------------------------------------------------------------------------- run
def _load_config(path: str) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"loadgen config {path!r} does not exist")
    import yaml

    try:
        cfg = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"loadgen config {path!r} is not valid YAML: {exc}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"loadgen config {path!r} must be a mapping")
    for k in cfg:
        if k not in RUN_KEYS:
            raise ConfigError(f"unknown key {k!r} in loadgen config {path!r}; "
                              f"known: {', '.join(sorted(RUN_KEYS))}")
    if "node" not in cfg:
        raise ConfigError(f"loadgen config {path!r} needs a node: section "
                          "(a hera.server node config or its path)")
    return cfg


def streams_from_config(cfg: dict[str, Any], tenant_names: list[str]):
    """``{tenant: LoadgenSettings}``: ``loadgen:`` for all tenants, updated by ``tenants: {name: {...}}``."""
    from hera.loadgen.settings import LoadgenSettings

    base = dict(cfg.get("loadgen") or {})
    per = cfg.get("tenants") or {}
    if not isinstance(per, dict):
        raise ConfigError("loadgen config: tenants must map tenant names to settings")
    for name in per:
        if name not in tenant_names:
            raise ConfigError(f"loadgen config: tenant {name!r} is not on the node; "
                              f"known: {', '.join(tenant_names)}")
    return {name: LoadgenSettings.from_dict({**base, **(per.get(name) or {})}) for name in tenant_names}


def _library_items(cfg: dict[str, Any], node, names: list[str]) -> dict[str, int]:
    """``library_items:`` from the config (an int for all tenants or a mapping), else asked of the node."""
    given = cfg.get("library_items")
    if given is None:
        return {n: int(node.library_size(n)) for n in names}
    if isinstance(given, int) and not isinstance(given, bool):
        return {n: given for n in names}
    if isinstance(given, dict):
        missing = [n for n in names if n not in given]
        if missing:
            raise ConfigError(f"loadgen config: library_items lacks tenant(s) {', '.join(missing)}")
        return {n: int(given[n]) for n in names}
    raise ConfigError(f"loadgen config: library_items must be an integer or a mapping, got {given!r}")


def _cmd_run(args) -> int:
    from hera.loadgen import driver, search
    from hera.loadgen.sut import NodeSUT
    from hera.server import config as server_config
    from hera.server.node import Node

    cfg = _load_config(args.config)

    node_spec = cfg["node"]
    if isinstance(node_spec, str):  # a path to a server config, relative to this file
        path = Path(node_spec) if Path(node_spec).is_absolute() else Path(args.config).parent / node_spec
        node_cfg = server_config.load(path)
    else:
        node_cfg = server_config.from_dict(node_spec)
    names = [t.name for t in node_cfg.tenants]
    streams = streams_from_config(cfg, names)
    out_dir = Path(args.out or cfg.get("out") or ".")
    srch = cfg.get("search")
    if srch is not None:
        if not isinstance(srch, dict):
            raise ConfigError("loadgen config: search must be a mapping")
        for k in srch:
            if k not in SEARCH_KEYS:
                raise ConfigError(f"unknown key {k!r} in search:; known: {', '.join(sorted(SEARCH_KEYS))}")
    node = Node(node_cfg)
    node.start()
    summary: dict[str, Any] = {}
    try:
        lib = _library_items(cfg, node, names)
        sut = NodeSUT(node)
        if srch is None:
            res = driver.run(sut, streams, lib)
            rows_path = res.write(out_dir / "loadgen_queries.csv", out_dir / "loadgen_summary.csv")
            print(res.summary_table().to_string(index=False))
            summary = {"rows": str(rows_path), **res.summary}
        else:
            import pandas as pd

            found = []
            for name in names:  # one tenant at a time; the others idle
                r = search.find_qps_star(sut, streams[name], lib[name], tenant=name,
                                         log=lambda m: print(m, file=sys.stderr), **srch)
                r.write(out_dir / f"qps_star_trials_{name}.csv")
                found.append({"tenant": name, **r.to_row()})
                print(f"{name}: QPS* = {r.qps_star:.2f} (min {r.qps_star_lo:.2f}, "
                      f"max {r.qps_star_hi:.2f}) — {r.note}")
            from hera.provenance import write_table

            write_table(pd.DataFrame(found), out_dir / "qps_star.csv", config=cfg)
            summary = {"qps_star": {f["tenant"]: f["qps_star"] for f in found}}
    finally:
        node.stop(drain=True)
    print(_dumps(summary))
    return 0


def _clean(o):
    """JSON-safe copy: numpy scalars → Python, NaN/inf → None."""
    import numpy as np

    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    if o is None or isinstance(o, str):
        return o
    return str(o)


def _dumps(o) -> str:
    return json.dumps(_clean(o))
