"""What the estimator knows before anything runs: the described machine with the study's core plan on it, and
each model's size and work per item from its spec."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from hera.errors import ConfigError

#: Fields a machine description must hold (``hera machine --out`` writes them all), with their JSON types.
REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "topology": list, "logical_cpus": int, "physical_cores": int, "sockets": int, "memory_bytes": int,
    "resctrl": dict,
}
#: Fields of each ``topology`` entry (one per online logical CPU).
TOPOLOGY_FIELDS = ("cpu", "socket", "siblings")


class PlanError(ConfigError):
    """A machine description or a config the estimator cannot plan from (one line naming the field or key)."""


@dataclass(frozen=True)
class MachineInfo:
    """The described machine and the study's core plan on it (:func:`hera.topology.study_plan`)."""

    source: str
    logical_cpus: int
    physical_cores: int
    sockets: int
    smt: int                   # hardware threads per physical core (largest sibling group)
    memory_bytes: int
    resctrl: Mapping[str, Any]  # the description's verified-resctrl record (hera.machine.resctrl_info)
    worker_cpus: tuple[int, ...]
    harness_cpus: tuple[int, ...]
    worker_sockets: int        # sockets the plan's workers span
    copy_gbps: float | None    # single-thread copy bandwidth (``hera machine --bandwidth``), if measured

    @property
    def n_workers(self) -> int:
        return len(self.worker_cpus)

    @property
    def llc_partitioning(self) -> bool:
        return bool(self.resctrl.get("available")) and bool(self.resctrl.get("l3_ways"))

    def describe(self) -> str:
        smt = f", SMT {self.smt}" if self.smt > 1 else ""
        llc = (f"resctrl verified ({self.resctrl.get('l3_ways')} LLC ways)" if self.llc_partitioning
               else "no LLC partitioning")
        return (f"{self.source}: {self.sockets} socket(s), {self.physical_cores} cores / {self.logical_cpus} "
                f"threads{smt}, {self.memory_bytes / 2**30:.0f} GiB, {llc}; core plan: {self.n_workers} worker "
                f"core(s), {len(self.harness_cpus)} harness CPU(s)")


def check_description(desc: Any, source: str) -> dict[str, Any]:
    """``desc`` if it holds every field the estimator reads, else :class:`PlanError` naming the first missing or
    malformed one."""
    if not isinstance(desc, dict):
        raise PlanError(f"machine description {source} is not a JSON object (write one with `hera machine --out`)")
    for name, kind in REQUIRED_FIELDS.items():
        if name not in desc:
            raise PlanError(f"machine description {source} lacks field {name!r} (write it with `hera machine --out`)")
        if not isinstance(desc[name], kind) or isinstance(desc[name], bool):
            raise PlanError(f"machine description {source}: field {name!r} must be a JSON "
                            f"{'object' if kind is dict else 'list' if kind is list else 'integer'}, "
                            f"not {json.dumps(desc[name])[:40]}")
    if not desc["topology"]:
        raise PlanError(f"machine description {source}: field 'topology' is empty")
    for i, entry in enumerate(desc["topology"]):
        missing = [f for f in TOPOLOGY_FIELDS if not isinstance(entry, dict) or f not in entry]
        if missing:
            raise PlanError(f"machine description {source}: topology entry {i} lacks field {missing[0]!r}")
    if "available" not in desc["resctrl"]:
        raise PlanError(f"machine description {source} lacks field 'resctrl.available'")
    if desc["resctrl"]["available"] and not isinstance(desc["resctrl"].get("l3_ways"), int):
        raise PlanError(f"machine description {source}: resctrl is available but field 'resctrl.l3_ways' is missing")
    for name in ("logical_cpus", "physical_cores", "sockets", "memory_bytes"):
        if desc[name] < 1:
            raise PlanError(f"machine description {source}: field {name!r} must be >= 1, not {desc[name]}")
    return desc


def load_machine(path: str | Path | None) -> tuple[dict[str, Any], str]:
    """``(description, source)`` from a file written by ``hera machine --out``, or this machine (``None``)."""
    from hera import machine

    if path is None:
        return machine.describe(), "this machine"
    return check_description(machine.load_description(path), str(path)), str(path)


def machine_info(desc: Mapping[str, Any], source: str, config: Mapping[str, Any]) -> MachineInfo:
    """The machine with the study's core plan on it (config keys ``cores`` and ``topology``)."""
    from hera.topology import Topology, plan

    desc = check_description(dict(desc), source)
    topo = Topology.from_description(desc, f"machine description {source}")
    cores = config.get("cores", "auto")
    opts = config.get("topology") or {}
    cp = plan(topo, None if cores == "auto" else cores, harness_cores=opts.get("harness_cores", "auto"),
              sockets=opts.get("sockets", 1))
    smt = max(len(e.get("siblings") or [e["cpu"]]) for e in desc["topology"])
    bw = (desc.get("bandwidth") or {}).get("copy_gbps_1thread")
    return MachineInfo(source=source, logical_cpus=int(desc["logical_cpus"]), physical_cores=int(desc["physical_cores"]),
                       sockets=int(desc["sockets"]), smt=int(smt), memory_bytes=int(desc["memory_bytes"]),
                       resctrl=dict(desc["resctrl"]), worker_cpus=tuple(cp.worker_cpus),
                       harness_cpus=tuple(cp.harness_cpus), worker_sockets=max(1, len(cp.sockets)),
                       copy_gbps=float(bw) if isinstance(bw, (int, float)) and bw > 0 else None)


@dataclass(frozen=True)
class ModelCost:
    """What a model costs per item and in memory (from its spec at the study's scale)."""

    model: str
    kind: str
    flops_per_item: float
    gathered_bytes_per_item: float
    embedding_bytes: int
    lookups_per_item: int
    dense_in: int


def model_costs(models: list[str], scale: str) -> dict[str, ModelCost]:
    """:class:`ModelCost` of each model (its TorchRec module is built on the meta device: no weights)."""
    from hera.zoo.cli import model_summary
    from hera.zoo.spec import load_spec

    out = {}
    for m in models:
        s = model_summary(m, scale)
        out[m] = ModelCost(m, str(s["kind"]), float(s["mlp_flops_per_item"]),
                           float(s["emb_bytes_gathered_per_item"]), int(s["embedding_bytes"]),
                           int(s["lookups_per_item"]), int(load_spec(m, scale).dense_in))
    return out
