"""``hera experiment``: experiments on the real server under load (F6, F7).

Commands (each prints one JSON object as its last stdout line)::

    hera experiment latency-vs-load --config C --plans plans.json --t1 T1.csv --out F
    hera experiment load-change     --config C --plans plans.json --pairs P --scalability S --t1 T1.csv --out DIR

Common options as in ``hera profile``: ``--set key=value``, ``--models-root`` / ``--datasets-root`` (built
models and sample libraries), ``--resctrl-root``, ``--runner synthetic`` (tiny built-in model: tests only).

``hera policy evaluate`` and ``hera cluster provision`` (the policy comparisons on measured profiles that feed
these experiments) are registered by :mod:`hera.policy_cli`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hera.harness.cli import add_node_arguments, load_study


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="study config (YAML/JSON)")
    p.add_argument("--plans", type=Path, required=True, help="policy/plans.json (hera policy evaluate)")
    p.add_argument("--t1", type=Path, required=True, help="tables/T1.csv (per-model sla_ms)")
    add_node_arguments(p)
    p.add_argument("--resctrl-root", help="resctrl mount (default /sys/fs/resctrl)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiment", help="experiments on the real server: tail latency vs load (F6), "
                                          "load changes with the node managers (F7)")
    esub = p.add_subparsers(dest="experiment_command", metavar="NAME", required=True)

    c = esub.add_parser("latency-vs-load", help="F6: p95 per tenant vs offered load, each policy's planned node")
    _common(c)
    c.add_argument("--out", type=Path, required=True, help="output CSV (results/<scale>/serving/latency_vs_load.csv)")
    c.set_defaults(func=_cmd_latency_vs_load)

    c = esub.add_parser("load-change", help="F7: a two-tenant node under changing load: Hera's manager, "
                                            "PARTIES, static")
    _common(c)
    c.add_argument("--pairs", type=Path, required=True, help="colocation/pairs.csv (Hera's manager's profiles)")
    c.add_argument("--scalability", type=Path, required=True, help="profile/scalability.csv")
    c.add_argument("--out", type=Path, required=True, help="output directory (results/<scale>/serving)")
    c.set_defaults(func=_cmd_load_change)


def _num(v) -> float | None:
    v = float(v)
    return None if v != v else round(v, 3)


def _cmd_latency_vs_load(args: argparse.Namespace) -> int:
    from hera.experiments import latency_vs_load

    config, opts = load_study(args)
    df = latency_vs_load.run(config, args.plans, args.t1, args.out, opts)
    ratio = (df["p95_ms"] / df["sla_ms"]).groupby([df["policy"], df["load_frac"]]).max()
    print(json.dumps({"command": "experiment latency-vs-load", "out": str(args.out), "rows": int(len(df)),
                      "groups": {p: list(dict.fromkeys(g)) for p, g in df.groupby("policy", sort=False)["group"]},
                      "worst_p95_over_sla": {f"{p}@{f:g}": _num(v) for (p, f), v in ratio.items()}}))
    return 0


def _cmd_load_change(args: argparse.Namespace) -> int:
    from hera.experiments import load_change

    config, opts = load_study(args)
    timeline, moves = load_change.run(config, args.plans, args.pairs, args.scalability, args.t1, args.out, opts)
    per = {m: {"violated_windows": int(g["window_violated"].sum()), "windows": int(len(g)),
               "late_queries": int(g["violations"].sum()), "moves": int((moves["manager"] == m).sum())}
           for m, g in timeline.groupby("manager", sort=False)}
    note = next((n for n in timeline["note"] if n), "")
    print(json.dumps({"command": "experiment load-change", "timeline": str(Path(args.out) / "load_change.csv"),
                      "moves": str(Path(args.out) / "moves.csv"), "managers": per, "note": note}))
    return 0
