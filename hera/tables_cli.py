"""``hera table``: result tables of docs/METHOD.md §7 that are measured rather than plotted.

- ``hera table t1 --scale S [--config FILE] [--out DIR]``: T1, the model zoo (sizes, analytical class,
  single-worker latency at sub-batches 1/64/256, SLA); writes ``T1.csv`` (+ provenance) and ``T1.md``
  into ``results/<scale>/tables`` (or ``--out``) and prints a JSON summary as the last line.

Other tables add their own ``_register_<id>(table_subparsers)`` function here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("table", help="measure result tables (T1)",
                       description="Result tables of docs/METHOD.md §7 that need measurements.")
    tsub = p.add_subparsers(dest="table_command", metavar="TABLE", required=True)
    _register_t1(tsub)


def _register_t1(tsub: argparse._SubParsersAction) -> None:
    from hera.zoo.spec import SCALES

    p = tsub.add_parser("t1", help="T1: model zoo sizes, class, single-worker latency and SLA",
                        description="Measure T1 on built models (hera models build first): latency of one "
                                    "pinned single-thread worker at sub-batches 1, 64, 256 and the SLA "
                                    "(multiplier x latency of a median-size query).")
    p.add_argument("--scale", choices=SCALES, required=True, help="scale preset of the built models")
    p.add_argument("--config", type=Path, help="study config (YAML/JSON): models, seed, sla.multiplier, "
                                               "queries.max_items, profile.latency_repeats")
    p.add_argument("--out", type=Path, help="output directory (default: results/<scale>/tables)")
    p.add_argument("--models", help="comma-separated model ids (default: config models, else all)")
    p.add_argument("--root", type=Path, help="built models directory (default: models/build/<scale>)")
    p.add_argument("--repeats", type=int, help="timed runs per batch size (default: config or 10)")
    p.add_argument("--core", type=int, help="CPU to pin to (default: the first worker core of the study's core "
                                            "plan, hera topology)")
    p.set_defaults(func=_cmd_t1)


def _cmd_t1(args: argparse.Namespace) -> int:
    from hera.errors import ConfigError, UnknownModelError
    from hera.profile.t1 import T1Settings, settings_from_config, write_t1
    from hera.zoo.spec import list_models

    models = None
    if args.models:
        models = tuple(m.strip() for m in args.models.split(",") if m.strip())
        known = list_models()
        for m in models:
            if m not in known:
                raise UnknownModelError(f"unknown model {m!r}; known: {', '.join(known)}")
    if args.repeats is not None and args.repeats < 1:
        raise ConfigError(f"--repeats must be at least 1, not {args.repeats}")
    extra = {"models": models, "repeats": args.repeats, "core": args.core,
             "models_root": str(args.root) if args.root else None}
    config = None
    if args.config:
        from hera import config as study_config

        config = study_config.load(args.config)
        if config["scale"] != args.scale:
            raise ConfigError(f"--scale {args.scale} does not match the config's scale {config['scale']}")
    if extra["core"] is None:  # the same core as one worker of the profiles: never a harness core
        from hera.topology import study_plan

        extra["core"] = study_plan(config or {"cores": "auto"}).worker_cpus[0]
    if config is not None:
        settings = settings_from_config(config, **extra)
    else:
        settings = T1Settings(scale=args.scale, **{k: v for k, v in extra.items() if v is not None})
    csv, md = write_t1(settings, args.out, config)
    import pandas as pd

    df = pd.read_csv(csv)
    print(md.read_text())
    models_out = {r["model"]: {"class": r["class"], "sla_ms": r["sla_ms"]} for r in df.to_dict("records")}
    print(json.dumps({"table": "T1", "csv": str(csv), "md": str(md), "models": models_out}))
    return 0
