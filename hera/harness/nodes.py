"""Nodes for measurements: how they are built (:class:`NodeOptions`), their tenants (:class:`TenantPlan`), and
:func:`start_node`, a started :class:`hera.server.Node` that is stopped on exit."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from hera.errors import ConfigError

RUNNERS = ("zoo", "synthetic")


@dataclass(frozen=True)
class NodeOptions:
    """How measurement nodes are built: runner (``zoo`` or ``synthetic``), data locations, resctrl root.

    ``None`` directories mean the repository's defaults (``models/build/<scale>``, ``datasets/<scale>``).
    ``options``: runner options per tenant model (synthetic runner: ``delay_ms`` …).
    """

    runner: str = "zoo"
    models_root: str | None = None
    datasets_root: str | None = None
    resctrl_root: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    start_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise ConfigError(f"unknown runner {self.runner!r}; known: {', '.join(RUNNERS)}")


@dataclass(frozen=True)
class TenantPlan:
    """One tenant of a measurement node (``sla_ms``: the tail-latency target the node reports in its stats, for
    a node manager to keep; None when nothing manages the node)."""

    name: str
    model: str
    cores: tuple[int, ...]
    batch_size: int
    max_items: int
    llc_ways: int | None = None
    sla_ms: float | None = None


def tenant_name(model: str, other: str | None = None, suffix: str = "a") -> str:
    """A tenant name for ``model`` (the model id; made unique when both tenants run the same model)."""
    return model if model != other else f"{model}.{suffix}"


def node_config(config: dict[str, Any], tenants: list[TenantPlan], opts: NodeOptions):
    """A :class:`hera.server.NodeConfig` for the measurement node."""
    from hera.server import config_from_dict

    d: dict[str, Any] = {
        "scale": config["scale"], "runner": opts.runner, "start_timeout_s": opts.start_timeout_s,
        "tenants": [
            {"name": t.name, "model": t.model, "cores": list(t.cores), "batch_size": t.batch_size,
             "max_items": t.max_items, "quantized": bool(config.get("quantized", False)),
             "queue_limit": 4096, "llc_ways": t.llc_ways, "sla_ms": t.sla_ms, "options": dict(opts.options.get(t.model, {}))}
            for t in tenants
        ],
    }
    for key in ("models_root", "datasets_root", "resctrl_root"):
        if getattr(opts, key):
            d[key] = getattr(opts, key)
    return config_from_dict(d)


def since_process_start_s() -> float:
    """Seconds since this process was created (``psutil``: the kernel's start time, 10 ms resolution)."""
    import psutil

    return time.time() - psutil.Process().create_time()


@contextlib.contextmanager
def start_node(config: dict[str, Any], tenants: list[TenantPlan], opts: NodeOptions) -> Iterator[Any]:
    """A started :class:`hera.server.Node` serving ``tenants``; stopped (without draining) on exit.

    Where the study's core plan reserves harness cores, this process (the node's dispatch and collectors, the
    load generator driving it) runs on them for the node's lifetime; workers pin themselves to their cores."""
    from hera.server import Node
    from hera.topology import pinned, study_plan

    harness = study_plan(config).harness_cpus
    with pinned(harness) if harness else contextlib.nullcontext():  # load generator, dispatch: off the workers
        cfg = node_config(config, tenants, opts)
        if harness:  # the node pins its collectors there, and NodeSUT its load-generator process
            cfg = dataclasses.replace(cfg, harness_cores=tuple(harness))
        t0 = time.perf_counter()
        node = Node(cfg)
        node.start()
        # the process's age includes whatever ran in it before Python (a shell that exec'd it), so the node's own
        # start (workers forked, torch imported, models loaded) is given beside it
        print(f"[node] {', '.join(t.name for t in tenants)}: ready {since_process_start_s():.2f} s after the command "
              f"started ({time.perf_counter() - t0:.2f} s to start the node)", file=sys.stderr, flush=True)
        try:
            yield node
        finally:
            node.stop(drain=False)
