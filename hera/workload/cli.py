"""``hera workload``: reuse histograms, sample libraries, arrival and query-size statistics.

The CLI is the top layer, so it may join the zoo's specs with the workload generators.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

ALL_MODELS = ["dlrm_rmc1", "dlrm_rmc2", "dlrm_rmc3", "ncf", "wnd", "mtwnd", "din", "dien"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("workload", help="workloads: reuse histograms, sample libraries, arrivals, query sizes")
    wsub = p.add_subparsers(dest="workload_command", metavar="ACTION", required=True)

    r = wsub.add_parser("reuse-histogram",
                        help="reuse-factor histogram of a synthetic batch vs Meta's published statistics")
    r.add_argument("--generator", choices=["uniform", "zipf", "production"], default="production")
    r.add_argument("--batch", type=int, default=65536, help="samples per batch (Meta's: 65536)")
    r.add_argument("--tables", type=int, default=4, help="tables (reuse is counted per table, then pooled)")
    r.add_argument("--rows", type=int, default=None, help="rows per table (default: the calibration's)")
    r.add_argument("--lookups", type=int, default=None, help="ids per sample per table (default: calibration's)")
    r.add_argument("--alpha", type=float, default=None, help="Zipf exponent (zipf only)")
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=_cmd_reuse)

    lib = wsub.add_parser("library", help="build query sample libraries (memory-mappable) for models")
    lib.add_argument("--scale", choices=["ci", "default", "paper"], required=True)
    lib.add_argument("--models", default=",".join(ALL_MODELS), help="comma-separated model ids")
    lib.add_argument("--items", type=int, default=None, help="items per library (default: the scale's)")
    lib.add_argument("--ids", choices=["uniform", "zipf", "production"], default="production")
    lib.add_argument("--alpha", type=float, default=None, help="Zipf exponent (zipf only)")
    lib.add_argument("--seed", type=int, default=0)
    lib.add_argument("--root", type=Path, default=None, help="output root (default datasets/<scale>)")
    lib.set_defaults(func=_cmd_library)

    a = wsub.add_parser("arrivals", help="statistics of a seeded Poisson arrival stream")
    a.add_argument("--qps", type=float, required=True)
    a.add_argument("--n", type=int, default=10000)
    a.add_argument("--seed", type=int, default=0)
    a.set_defaults(func=_cmd_arrivals)

    s = wsub.add_parser("sizes", help="statistics of a query-size distribution")
    s.add_argument("--kind", choices=["fixed", "normal", "lognormal", "production"], default="production")
    s.add_argument("--max-items", type=int, default=1024)
    s.add_argument("--n", type=int, default=100000)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_cmd_sizes)


def _cmd_reuse(args: argparse.Namespace) -> int:
    from hera.workload import locality, sparse

    params: dict[str, Any] = {}
    if args.alpha is not None:
        if args.generator != "zipf":
            from hera.errors import ConfigError

            raise ConfigError("--alpha only applies to --generator zipf")
        params["alpha"] = args.alpha
    gen = sparse.make_generator(args.generator, **params)
    rows = args.rows or sparse.REF_ROWS
    lookups = args.lookups or sparse.REF_LOOKUPS
    hist = locality.simulate_batch(gen, args.batch, args.tables, rows, lookups, seed=args.seed)
    ref = locality.published_reference()
    print(locality.format_comparison(hist, ref))
    print(json.dumps({"bins": list(hist.bins), "histogram": [round(float(x), 6) for x in hist.rows]}))
    return 0


def build_libraries(scale: str, models: list[str], items: int, *, ids: str = "production",
                    alpha: float | None = None, seed: int = 0, out_root: Path | None = None) -> dict[str, float]:
    """Build one sample library per model at ``scale``; return seconds per model."""
    from hera.paths import datasets_dir
    from hera.workload.library import build_library
    from hera.zoo.spec import load_spec

    root = out_root or datasets_dir(scale)
    sparse_cfg: dict[str, Any] = {"kind": ids}
    if alpha is not None:
        sparse_cfg["alpha"] = alpha
    seconds = {}
    for m in models:
        spec = load_spec(m, scale)  # raises UnknownModelError naming the known ids
        t0 = time.perf_counter()
        build_library(spec, items, sparse_cfg, seed, root / m)
        seconds[m] = round(time.perf_counter() - t0, 3)
    return seconds


def _cmd_library(args: argparse.Namespace) -> int:
    from hera.workload.library import default_items

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    items = args.items or default_items(args.scale)
    secs = build_libraries(args.scale, models, items, ids=args.ids, alpha=args.alpha, seed=args.seed,
                           out_root=args.root)
    for m, s in secs.items():
        print(f"{m}: {items} items in {s:.2f} s")
    print(json.dumps({"scale": args.scale, "items": items, "ids": args.ids, "seconds": secs,
                      "total_s": round(sum(secs.values()), 3)}))
    return 0


def _cmd_arrivals(args: argparse.Namespace) -> int:
    import numpy as np

    from hera.workload import arrivals

    t = arrivals.poisson(args.qps, args.n, np.random.default_rng(args.seed))
    print(json.dumps(arrivals.summarize(t, args.qps), default=float))
    return 0


def _cmd_sizes(args: argparse.Namespace) -> int:
    import numpy as np

    from hera.workload.sizes import QuerySizes, summarize

    sizes = QuerySizes(args.kind, args.max_items).sample(args.n, np.random.default_rng(args.seed))
    print(json.dumps(summarize(sizes), default=float))
    return 0
