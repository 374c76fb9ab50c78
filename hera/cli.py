"""The ``hera`` command: one sub-command group per layer, each registered by its own module.

Each module listed in :data:`COMMAND_MODULES` exposes ``register(subparsers)``, which adds its
sub-command(s) and sets ``func`` on the parser; heavy imports (torch) stay inside the handlers so
that ``hera --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hera.errors import HeraError

#: Modules that contribute sub-commands, in the order they appear in ``hera --help``.
COMMAND_MODULES = [
    "hera.machine_cli",
    "hera.config",
    "hera.zoo.cli",
    "hera.workload.cli",
    "hera.loadgen.cli",
    "hera.policy_cli",
    "hera.report.cli",
    "hera.results_cli",
    "hera.tables_cli",
    "hera.server.serve_cli",
    "hera.profile.cli",
    "hera.experiments.cli",
    "hera.bench",
    "hera.plan.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hera",
        description="Hera artifact: models, workloads, multi-tenant serving, profiling, policies, reports.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:  # a module that fails to import is a broken install: let it fail loudly
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except HeraError as exc:
        print(f"hera: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hera: interrupted", file=sys.stderr)
        return 130
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
