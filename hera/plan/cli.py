"""``hera plan --machine FILE --configfile CONFIG``: each pipeline stage's estimated time and the total; the last
line is JSON (``total_s``, per-stage seconds). ``--benchmarks benchmarks/<scale>`` sets the stage times a run
measured (Snakemake's benchmark files) beside the estimate."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("plan", help="estimate the pipeline's time per stage for a config on a described machine",
                       description=__doc__)
    p.add_argument("--machine", type=Path, default=None,
                   help="machine description (hera machine --out FILE; default: config key machine, "
                        "$HERA_MACHINE, else this machine)")
    p.add_argument("--configfile", type=Path, required=True, help="study config (workflow/config/*.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set confirm.trial_s=5")
    p.add_argument("--calibrate", action="append", default=[], metavar="NAME=VALUE",
                   help="override a calibration constant (hera.plan.calibration), e.g. cli_s=8 on a loaded machine")
    p.add_argument("--no-venv", dest="venv", action="store_false", help="the environment exists: do not count it")
    p.add_argument("--benchmarks", type=Path, default=None,
                   help="benchmarks/<scale> of a run: measured seconds per stage beside the estimate")
    p.set_defaults(func=_cmd_plan)


def _cmd_plan(args: argparse.Namespace) -> int:
    from hera import config as cfgmod
    from hera.errors import ConfigError
    from hera.plan.calibration import Calibration
    from hera.plan.compare import measured_stages
    from hera.plan.inputs import load_machine, machine_info, model_costs
    from hera.plan.stages import estimate, hms
    from hera.topology import MACHINE_ENV

    bad = [c for c in args.calibrate if "=" not in c]
    if bad:
        raise ConfigError(f"--calibrate {bad[0]!r} is not of the form NAME=VALUE")
    cal = Calibration().with_changes(dict(c.split("=", 1) for c in args.calibrate))
    config = cfgmod.load(args.configfile, args.overrides)
    desc, source = load_machine(args.machine or config.get("machine") or os.environ.get(MACHINE_ENV) or None)
    machine = machine_info(desc, source, config)
    models = list(dict.fromkeys(list(config["models"]) + list(config["colocation"].get("models") or [])))
    plan = estimate(config, machine, model_costs(models, config["scale"]), cal, venv=args.venv)
    measured, measured_jobs = ({}, {}) if args.benchmarks is None else measured_stages(args.benchmarks,
                                                                                         machine.logical_cpus)
    print(f"hera plan: {args.configfile} (scale {plan.scale}) on {machine.describe()}")
    print(f"worker counts profiled: {', '.join(map(str, plan.worker_counts))}; co-location: {plan.pairs} pairs x "
          f"{plan.splits_per_pair} splits x {len(config['colocation'].get('rays') or (0.5, 0.75, 0.25))} rays")
    ws = plan.worker_counts[:1] + plan.worker_counts[-1:] if len(plan.worker_counts) > 1 else plan.worker_counts
    print("expected QPS* (queries/s; sets trial lengths): " + "; ".join(
        f"{m} " + "/".join(f"{q[w]:.0f}" for w in ws) for m, q in plan.qps_star.items())
        + f" at {'/'.join(map(str, ws))} worker(s)")
    head = f"{'stage':<17} {'jobs':>4} {'estimate':>9}"
    if measured:
        head += f" {'measured':>9} {'est/meas':>8}"
    print(head + "  what")
    for s in plan.stages:
        line = f"{s.stage:<17} {s.jobs:>4} {hms(s.seconds):>9}"
        if measured:
            m = measured.get(s.stage)
            line += (f" {hms(m):>9} {s.seconds / m:>8.2f}" if m else f" {'-':>9} {'':>8}")
        print(f"{line}  {s.title}: {s.detail}" if s.detail else f"{line}  {s.title}")
    total = f"{'total':<17} {'':>4} {hms(plan.total_s):>9}"
    if measured:
        est = sum(s.seconds for s in plan.stages if s.stage in measured)
        total += f" {hms(sum(measured.values())):>9} {est / sum(measured.values()):>8.2f}  (ratio over measured stages)"
    print(total)
    out = plan.to_dict()
    if measured:
        out["measured_s"] = {k: round(v, 1) for k, v in measured.items()}
        out["measured_jobs"] = measured_jobs
    print(json.dumps(out))
    return 0
