"""``hera workload``: reuse histograms, sample libraries, arrival and query-size statistics.

Every action prints human-readable lines first and one JSON object as its last line. The CLI is the top
layer, so ``library`` may join the zoo's specs (``hera.zoo.spec.load_spec``) with the workload generators.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("workload", help="workloads: reuse histograms, sample libraries, arrivals, query sizes",
                       description="Workload tools (docs/METHOD.md §4). Each action prints one JSON object as its last line.")
    wsub = p.add_subparsers(dest="workload_command", metavar="ACTION", required=True)

    r = wsub.add_parser("reuse-histogram",
                        help="reuse-factor histogram of a synthetic batch vs Meta's published statistics",
                        description="Draw one batch (BATCH samples x TABLES tables x LOOKUPS ids) with a sparse-id "
                                    "generator, print its reuse histograms beside Meta's (total-variation distances) "
                                    "and, last, {\"bins\": [...], \"histogram\": [...]} (fraction of unique rows per "
                                    "reuse bin, pooled over tables).")
    r.add_argument("--generator", choices=["uniform", "zipf", "production"], default="production")
    r.add_argument("--batch", type=int, default=65536, help="samples per batch (Meta's: 65536)")
    r.add_argument("--tables", type=int, default=4, help="tables (reuse is counted per table, then pooled)")
    r.add_argument("--rows", type=int, default=None, help="rows per table (default: the calibration's 2^22)")
    r.add_argument("--lookups", type=int, default=None, help="ids per sample per table (default: calibration's 32)")
    r.add_argument("--alpha", type=float, default=None, help="Zipf exponent (zipf only; default 1.05)")
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=_cmd_reuse)

    lib = wsub.add_parser("library", help="build query sample libraries (memory-mappable) for models",
                          description="Build datasets/<scale>/<model>/{dense.npy, ids.npy, library.json} from "
                                      "synthetic inputs or a Criteo TSV file.")
    lib.add_argument("--scale", choices=["ci", "default", "paper"], required=True)
    lib.add_argument("--models", nargs="+", default=None,
                     help="model ids (space- or comma-separated; default: every model of models/*.yaml)")
    lib.add_argument("--items", type=int, default=None, help="items per library (default: ci 4096, default "
                                                              "65536, paper 262144)")
    lib.add_argument("--ids", choices=["uniform", "zipf", "production"], default="production",
                     help="sparse-id generator")
    lib.add_argument("--alpha", type=float, default=None, help="Zipf exponent (zipf only)")
    lib.add_argument("--dense", choices=["normal", "uniform"], default="normal", help="dense-feature distribution")
    lib.add_argument("--seed", type=int, default=0)
    lib.add_argument("--root", "--out-root", dest="root", type=Path, default=None,
                     help="output root (default datasets/<scale>)")
    lib.add_argument("--criteo", type=Path, default=None,
                     help="build from this Criteo TSV (plain or .gz) instead of synthetic inputs; --items caps lines")
    lib.set_defaults(func=_cmd_library)

    a = wsub.add_parser("arrivals", help="statistics of a seeded arrival stream (Poisson or time-varying)",
                        description="Draw arrivals and print count, mean rate, gap CV, a KS test of the gaps "
                                    "against the exponential (homogeneous Poisson) or per-window rates vs λ(t).")
    a.add_argument("--kind", choices=["poisson", "diurnal", "steps", "trace"], default="poisson")
    a.add_argument("--rate-qps", "--qps", dest="rate_qps", type=float, default=100.0,
                   help="Poisson rate, or the diurnal mean rate")
    a.add_argument("--n", type=int, default=None, help="arrivals to draw (poisson; default 10000 if no duration)")
    a.add_argument("--duration-s", type=float, default=None, help="span to draw (required for time-varying kinds)")
    a.add_argument("--amplitude", type=float, default=0.5, help="diurnal: relative amplitude in [0, 1]")
    a.add_argument("--period-s", type=float, default=60.0, help="diurnal: period")
    a.add_argument("--steps", default=None, help="steps: 't_s:rate_qps,...' starting at 0, e.g. 0:100,10:300")
    a.add_argument("--trace", type=Path, default=None, help="trace: CSV with header t_s,rate_qps")
    a.add_argument("--interpolation", choices=["constant", "linear"], default="linear")
    a.add_argument("--window-s", type=float, default=None, help="window for per-window rates (time-varying)")
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=_cmd_arrivals)

    s = wsub.add_parser("sizes", help="statistics of a query-size distribution",
                        description="Draw query sizes and print mean, sd and percentiles.")
    s.add_argument("--kind", choices=["fixed", "normal", "lognormal", "production"], default="production")
    s.add_argument("--max-items", type=int, default=1024)
    s.add_argument("--items", type=int, default=None, help="fixed: items per query")
    s.add_argument("--mean-items", type=float, default=None, help="normal: mean (default 165)")
    s.add_argument("--sd-items", type=float, default=None, help="normal: sd (default 16)")
    s.add_argument("--mu", type=float, default=None, help="lognormal: mu of log items (default 5.1)")
    s.add_argument("--sigma", type=float, default=None, help="lognormal: sigma of log items (default 0.2)")
    s.add_argument("--n", type=int, default=100000)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_sizes)


# ----------------------------------------------------------------------------------------- reuse-histogram
def _cmd_reuse(args: argparse.Namespace) -> int:
    from hera.errors import ConfigError
    from hera.workload import locality, sparse

    params: dict[str, Any] = {}
    if args.alpha is not None:
        if args.generator != "zipf":
            raise ConfigError("--alpha only applies to --generator zipf")
        params["alpha"] = args.alpha
    gen = sparse.make_generator(args.generator, **params)
    rows = args.rows if args.rows is not None else sparse.REF_ROWS
    lookups = args.lookups if args.lookups is not None else sparse.REF_LOOKUPS
    t0 = time.perf_counter()
    hist = locality.simulate_batch(gen, args.batch, args.tables, rows, lookups, seed=args.seed)
    ref = locality.published_reference()
    print(f"batch: {args.generator}{' alpha=' + str(gen.alpha) if args.generator == 'zipf' else ''}, "
          f"{args.batch} samples x {args.tables} tables x {lookups} lookups, {rows} rows/table, seed {args.seed} "
          f"({time.perf_counter() - t0:.1f} s)")
    print(f"reference: {ref.source}")
    print(locality.format_comparison(hist, ref))
    print(json.dumps({"bins": list(hist.bins), "histogram": [round(float(x), 6) for x in hist.rows]}))
    return 0


# ----------------------------------------------------------------------------------------- library
def _split_models(values: list[str]) -> list[str]:
    return [m.strip() for v in values for m in v.split(",") if m.strip()]


def build_libraries(scale: str, models: list[str], items: int, *, ids: str = "production",
                    alpha: float | None = None, seed: int = 0, out_root: Path | None = None,
                    dense: str = "normal", criteo: Path | None = None) -> dict[str, float]:
    """Build one sample library per model at ``scale`` into ``<out_root or datasets/<scale>>/<model>``;
    return seconds per model. With ``criteo`` the inputs come from that file (first ``items`` lines)."""
    from hera.errors import ConfigError
    from hera.workload.library import build_library, library_dir
    from hera.zoo.spec import load_spec

    sparse_cfg: dict[str, Any] = {"kind": ids}
    if alpha is not None:
        if ids != "zipf":
            raise ConfigError("--alpha only applies to --ids zipf")
        sparse_cfg["alpha"] = alpha
    seconds = {}
    for m in models:
        spec = load_spec(m, scale)  # raises UnknownModelError naming the known ids
        out = library_dir(scale, m, out_root)
        t0 = time.perf_counter()
        if criteo is not None:
            from hera.workload.criteo import criteo_to_library

            criteo_to_library(criteo, spec, out, max_lines=items, scale=scale)
        else:
            build_library(spec, items, sparse_cfg, seed, out, scale=scale, dense_dist=dense)
        seconds[m] = round(time.perf_counter() - t0, 3)
    return seconds


def _cmd_library(args: argparse.Namespace) -> int:
    from hera.workload.library import default_items, library_dir

    from hera.zoo.spec import list_models

    models = _split_models(args.models) if args.models else list_models()
    items = args.items if args.items is not None else (None if args.criteo else default_items(args.scale))
    secs = build_libraries(args.scale, models, items, ids=args.ids, alpha=args.alpha, seed=args.seed,
                           out_root=args.root, dense=args.dense, criteo=args.criteo)
    for m, s in secs.items():
        print(f"{m}: {library_dir(args.scale, m, args.root)} in {s:.2f} s")
    print(json.dumps({"scale": args.scale, "items": items, "ids": "criteo" if args.criteo else args.ids,
                      "seconds": secs, "total_s": round(sum(secs.values()), 3)}))
    return 0


# ----------------------------------------------------------------------------------------- arrivals
def _parse_steps(text: str) -> tuple[list[float], list[float]]:
    from hera.errors import ConfigError

    ts, rs = [], []
    for part in text.split(","):
        try:
            t, r = part.split(":")
            ts.append(float(t))
            rs.append(float(r))
        except ValueError:
            raise ConfigError(f"--steps: {part!r} is not t_s:rate_qps") from None
    return ts, rs


def _cmd_arrivals(args: argparse.Namespace) -> int:
    import numpy as np

    from hera.errors import ConfigError
    from hera.workload import arrivals

    cfg: dict[str, Any] = {"kind": args.kind}
    if args.kind in ("poisson", "diurnal"):
        cfg["rate_qps"] = args.rate_qps
    if args.kind == "diurnal":
        cfg.update(amplitude=args.amplitude, period_s=args.period_s)
    if args.kind == "steps":
        if not args.steps:
            raise ConfigError("--kind steps needs --steps t_s:rate_qps,...")
        cfg["step_times_s"], cfg["step_rates_qps"] = _parse_steps(args.steps)
    if args.kind == "trace":
        if args.trace is None:
            raise ConfigError("--kind trace needs --trace FILE")
        cfg.update(trace_path=str(args.trace), interpolation=args.interpolation)
    ac = arrivals.ArrivalConfig.from_dict(cfg)
    rng = np.random.default_rng(args.seed)
    if args.kind == "poisson":
        n = args.n if args.n is not None else (None if args.duration_s else 10000)
        t = ac.generate(rng, n=n, duration_s=args.duration_s)
        stats = arrivals.summarize(t, args.rate_qps)
    else:
        if args.duration_s is None:
            raise ConfigError(f"--kind {args.kind} needs --duration-s")
        t = ac.generate(rng, duration_s=args.duration_s)
        stats = arrivals.summarize(t)
        rate = ac.rate_function()
        window = args.window_s or args.duration_s / 10
        w = arrivals.windowed_rates(t, args.duration_s, window)
        w["expected_qps"] = [float(np.mean(rate(np.linspace(a, b, 201)))) for a, b in zip(w["t0_s"], w["t1_s"])]
        print(w.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    for k, v in stats.items():
        print(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}")
    print(json.dumps({"config": ac.to_dict(), "seed": args.seed, **stats}, default=float))
    return 0


# ----------------------------------------------------------------------------------------- sizes
def _cmd_sizes(args: argparse.Namespace) -> int:
    import numpy as np

    from hera.workload.sizes import QuerySizes, summarize

    params = {k: getattr(args, k) for k in ("items", "mean_items", "sd_items", "mu", "sigma")
              if getattr(args, k) is not None}
    qs = QuerySizes(args.kind, args.max_items, **params)
    stats = summarize(qs.sample(args.n, np.random.default_rng(args.seed)))
    for k, v in stats.items():
        print(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}")
    print(json.dumps({"config": qs.to_dict(), "seed": args.seed, **stats}, default=float))
    return 0
