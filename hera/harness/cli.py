"""Command-line options shared by every command that starts a node (``hera profile``, ``hera experiment``)."""

from __future__ import annotations

import argparse
from typing import Any

from hera.harness.nodes import RUNNERS, NodeOptions


def add_node_arguments(p: argparse.ArgumentParser) -> None:
    """Config overrides, where models and sample libraries live, and the runner kind."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (repeatable), e.g. --set search.repeats=1")
    p.add_argument("--models-root", help="directory of built models (default models/build/<scale>)")
    p.add_argument("--datasets-root", help="directory of sample libraries (default datasets/<scale>)")
    p.add_argument("--runner", choices=list(RUNNERS), default="zoo",
                   help="zoo (default): built TorchRec models; synthetic: a tiny built-in model (tests only)")


def load_study(args: argparse.Namespace) -> tuple[dict[str, Any], NodeOptions]:
    """The validated study config (``--config`` with ``--set`` overrides) and the node options of ``args``."""
    from hera import config as cfgmod

    config = cfgmod.load(args.config, overrides=args.overrides)
    opts = NodeOptions(runner=args.runner, models_root=args.models_root, datasets_root=args.datasets_root,
                       resctrl_root=getattr(args, "resctrl_root", None))
    return config, opts
