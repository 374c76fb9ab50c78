"""``hera policy evaluate`` and ``hera cluster provision``: policies on profile tables.

Both read tidy tables only (no torch, no server) and print one JSON object as the last line of stdout. Hera
decides from the pair predictions (``--predicted``, O(N) profiles); the oracle and the baselines plan on the
measured co-location points (``--pairs``), on which Hera's plans are evaluated too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hera.errors import ConfigError


def _load(args) -> tuple[dict, object, list[str], dict | None]:
    import pandas as pd

    from hera import config as cfg
    from hera.policy import Profiles

    config = cfg.load(args.config, getattr(args, "set", None))
    classes = None
    if getattr(args, "t1", None) is not None:
        if not Path(args.t1).is_file():
            raise ConfigError(f"table {args.t1} does not exist")
        t1 = pd.read_csv(args.t1)
        if {"model", "class"} <= set(t1.columns):
            classes = dict(zip(t1["model"].astype(str), t1["class"].astype(str)))
    profiles = Profiles.from_files(args.scalability, args.pairs, args.predicted, classes=classes)
    models = profiles.check_models(config["colocation"].get("models") or config["models"])
    if "hera" in config["policies"] and args.predicted is None:
        raise ConfigError(
            "policy 'hera' decides from pair predictions: pass --predicted colocation/predicted.csv"
        )
    return config, profiles, models, classes


def evaluate_policies(config: dict, profiles, models: list[str], classes: dict | None = None):
    """EMU rows (``policy/emu.csv``) for every configured policy on the whole model set (mix ``all``, no
    demand) and on every configured cluster mix (its loads as demand), plus the ``all`` plans."""
    import numpy as np
    import pandas as pd

    from hera.policy import get_policy, plan_table
    from hera.policy.cluster import STANDARD_MIXES, mix_loads

    frames, plans = [], {}
    mixes = {"all": None} | {m: STANDARD_MIXES[m] for m in config["cluster"]["mixes"]}
    for mix, spec in mixes.items():
        demand = None if spec is None else mix_loads(spec, models, profiles, classes)
        for name in config["policies"]:
            plan = get_policy(name).plan(models, profiles, demand, np.random.default_rng(config["seed"]))
            frames.append(plan_table(plan, name, mix))
            if mix == "all":
                plans[name] = plan
    return pd.concat(frames, ignore_index=True), plans


def _cmd_evaluate(args) -> int:
    import pandas as pd

    from hera.policy import plans_json
    from hera.policy.accuracy import ERROR_COLUMNS, prediction_errors, prediction_summary
    from hera.provenance import write_table

    config, profiles, models, classes = _load(args)
    emu, plans = evaluate_policies(config, profiles, models, classes)
    out = Path(args.out)
    write_table(emu, out / "emu.csv", config, config["seed"])
    doc = {
        "node": {"cores": profiles.node.cores, "llc_ways": profiles.node.llc_ways},
        "models": models,
        "plans": json.loads(plans_json(plans)),
    }
    (out / "plans.json").write_text(json.dumps(doc, indent=2) + "\n")
    try:
        errors = prediction_errors(pd.read_csv(args.pairs))
        accuracy = prediction_summary(errors)
    except ConfigError as exc:  # a measured table without predictions beside: say so in the table
        print(f"note: prediction accuracy not evaluated: {exc}", flush=True)
        errors = pd.DataFrame(columns=[*ERROR_COLUMNS, "note"])
        accuracy = {"note": str(exc)}
    write_table(errors, out / "prediction_errors.csv", config, config["seed"])
    summary = emu[emu["mix"] == "all"].groupby("policy")["emu"].mean().round(4).to_dict()
    print(
        json.dumps(
            {
                "emu": str(out / "emu.csv"),
                "plans": str(out / "plans.json"),
                "prediction_errors": str(out / "prediction_errors.csv"),
                "mean_emu": summary,
                "prediction": accuracy,
            }
        )
    )
    return 0


def _cmd_provision(args) -> int:
    from hera.policy.cluster import servers_table
    from hera.provenance import write_table

    config, profiles, models, classes = _load(args)
    df = servers_table(
        profiles, models, config["cluster"]["mixes"], config["policies"], config["seed"], classes
    )
    write_table(df, args.out, config, config["seed"])
    print(
        json.dumps(
            {
                "out": str(args.out),
                "servers": {f"{r.mix}/{r.policy}": int(r.servers) for r in df.itertuples()},
            }
        )
    )
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, required=True, help="study config (YAML)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--scalability", type=Path, required=True, help="profile/scalability.csv")
    p.add_argument(
        "--pairs", type=Path, required=True, help="colocation/pairs.csv (measured co-location points)"
    )
    p.add_argument(
        "--predicted",
        type=Path,
        help="colocation/predicted.csv (pair predictions from O(N) profiles; Hera decides from them)",
    )
    p.add_argument("--t1", type=Path, help="tables/T1.csv (model classes: the mixes and Hera's tie-break)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="policies on profiles: EMU per policy, plans, prediction accuracy")
    psub = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    e = psub.add_parser(
        "evaluate", help="plan every policy; write emu.csv, plans.json, prediction_errors.csv"
    )
    _common(e)
    e.add_argument("--out", type=Path, required=True, help="output directory (results/<scale>/policy)")
    e.set_defaults(func=_cmd_evaluate)
    c = sub.add_parser("cluster", help="cluster provisioning: servers needed per policy and model mix")
    csub = c.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    pr = csub.add_parser("provision", help="write cluster/servers.csv")
    _common(pr)
    pr.add_argument(
        "--out", type=Path, required=True, help="output CSV (results/<scale>/cluster/servers.csv)"
    )
    pr.set_defaults(func=_cmd_provision)
