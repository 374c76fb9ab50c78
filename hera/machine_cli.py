"""``hera machine`` (what this machine is) and ``hera topology`` (a study's core plan on it), as JSON.

The command layer above :mod:`hera.machine` (the description) and :mod:`hera.topology` (the plans), so that
neither of those imports the other's CLI or the study config.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hera.machine import describe_uncached
from hera.topology import MACHINE_ENV, Topology, check_expected, plan, study_plan


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("machine", help="describe this machine as JSON (cores, NUMA, LLC domains, memory, resctrl, "
                                       "perf, default core plan)")
    p.add_argument("--bandwidth", action="store_true", help="also run a quick memory-bandwidth probe (~2 s)")
    p.add_argument("--out", type=Path, help="also write the JSON to this file")
    p.set_defaults(func=_cmd_machine)

    p = sub.add_parser("topology", help="the study's core plan: worker, harness, co-location and memory-profile "
                                        "CPUs (JSON)")
    p.add_argument("--config", type=Path, help="study config (default: every usable CPU, default rules)")
    p.add_argument("--machine", type=Path, help=f"plan for this machine description file (also ${MACHINE_ENV})")
    p.add_argument("--out", type=Path, help="also write the JSON to this file")
    p.add_argument("--expect-workers", metavar="CPULIST", help="fail unless the plan's worker CPUs are these "
                   "(the Snakemake workflow passes what it planned at parse time)")
    p.add_argument("--expect-harness", metavar="CPULIST", help="fail unless the plan's harness CPUs are these "
                   "('none': no harness core)")
    p.set_defaults(func=_cmd_topology)


def _write(path: Path | None, doc: dict) -> None:
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def _cmd_machine(args: argparse.Namespace) -> int:
    desc = describe_uncached(bandwidth=args.bandwidth)
    core_plan = plan(Topology.from_description(desc))
    desc["core_plan"] = core_plan.to_dict()  # default rules (hera topology --config C: a study's own)
    _write(args.out, desc)
    if not desc["resctrl"]["available"]:
        print(f"note: LLC partitioning unavailable: {desc['resctrl']['reason']}", flush=True)
    if not desc["perf"]["available"]:
        print(f"note: hardware counters unavailable: {desc['perf']['reason']}", flush=True)
    print(f"note: core plan: {core_plan.summary()}", flush=True)
    print(json.dumps(desc, sort_keys=True))
    return 0


def _cmd_topology(args: argparse.Namespace) -> int:
    from hera import config as cfgmod

    config = dict(cfgmod.load(args.config)) if args.config else {"cores": "auto"}
    if args.machine:
        config["machine"] = str(args.machine)
    cp = study_plan(config)
    check_expected(cp, args.expect_workers, args.expect_harness)
    print(cp.summary())
    doc = cp.to_dict()
    _write(args.out, doc)
    print(json.dumps(doc, sort_keys=True))
    return 0
