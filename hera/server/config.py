"""Typed configuration of a serving node (``hera serve --config FILE``), loaded from YAML with strict checks.

Example (``workflow/config/server-example.yaml``)::

    scale: ci
    batch_size: 64                 # default sub-batch size (items)
    tenants:
      - {name: rmc1, model: dlrm_rmc1, cores: [0], batch_size: 64, queue_limit: 256, sla_ms: 50}
      - {name: rmc3, model: dlrm_rmc3, cores: [1]}
    http: {host: 127.0.0.1, port: 8000}

Node-level ``batch_size``, ``queue_limit``, ``max_items`` and ``cores_per_worker`` are defaults for tenants.
Every problem (unknown key, unknown model, overlapping or missing cores, a size ≤ 0) raises
:class:`hera.errors.ConfigError` naming it.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hera.errors import ConfigError

SCALES = ("ci", "default", "paper")
RUNNERS = ("zoo", "synthetic")
MP_CONTEXTS = ("forkserver", "spawn")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class HttpConfig:
    """Where the KServe-v2 HTTP front end listens."""

    host: str = "127.0.0.1"
    port: int = 8000


@dataclass(frozen=True)
class TenantConfig:
    """One model served on the node with its initial resources.

    ``cores``: logical CPUs; one worker per ``cores_per_worker`` of them (1 by default).
    ``workers_per_core_set``: workers started on each such core set (1; more only to measure dispatch with
    more workers than cores, e.g. ``hera bench dispatch-ceiling``: needs ``allow_core_sharing``).
    ``llc_ways`` / ``mem_bw_percent``: initial resctrl share (None = unpartitioned).
    ``options``: runner-specific settings (synthetic runner: ``dense_in``, ``n_ids``, ``delay_ms`` …).
    ``library``: sample-library directory (default ``<datasets_root>/<model>``).
    """

    name: str
    model: str
    cores: tuple[int, ...]
    batch_size: int = 64
    queue_limit: int = 256
    max_items: int = 1024
    cores_per_worker: int = 1
    workers_per_core_set: int = 1
    quantized: bool = False
    sla_ms: float | None = None
    llc_ways: int | None = None
    mem_bw_percent: int | None = None
    library: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeConfig:
    """A serving node: its tenants and node-wide settings.

    ``runner``: ``zoo`` (built TorchRec models + memory-mapped sample libraries) or ``synthetic``
    (a tiny in-memory MLP, for tests). ``models_root`` / ``datasets_root`` default to
    ``hera.paths.build_dir(scale)`` / ``hera.paths.datasets_dir(scale)``.
    ``allow_core_sharing`` lets tenants' core sets overlap (small machines, behaviour tests).
    ``harness_cores``: CPUs for the node's own threads (one collector per tenant) and the load-generator
    process of :class:`hera.loadgen.sut.NodeSUT` (None: unpinned). Chosen by the caller (a core plan); they
    may not overlap a tenant's cores unless ``allow_core_sharing``.
    """

    tenants: tuple[TenantConfig, ...]
    scale: str = "ci"
    runner: str = "zoo"
    models_root: str | None = None
    datasets_root: str | None = None
    resctrl_root: str = "/sys/fs/resctrl"
    stats_window_s: float = 10.0
    start_timeout_s: float = 300.0
    mp_context: str = "forkserver"
    allow_core_sharing: bool = False
    harness_cores: tuple[int, ...] | None = None
    http: HttpConfig = field(default_factory=HttpConfig)

    def tenant(self, name: str) -> TenantConfig:
        for t in self.tenants:
            if t.name == name:
                return t
        raise KeyError(name)

    def resolved_models_root(self) -> Path:
        from hera.paths import build_dir

        return Path(self.models_root) if self.models_root else build_dir(self.scale)

    def resolved_datasets_root(self) -> Path:
        from hera.paths import datasets_dir

        return Path(self.datasets_root) if self.datasets_root else datasets_dir(self.scale)

    def library_dir(self, tenant: TenantConfig) -> Path:
        return Path(tenant.library) if tenant.library else self.resolved_datasets_root() / tenant.model


# ------------------------------------------------------------------------------------------ validation
_TENANT_DEFAULTS = ("batch_size", "queue_limit", "max_items", "cores_per_worker")
_NODE_ONLY = {f.name for f in dataclasses.fields(NodeConfig)} - {"tenants", "http"}
_NODE_KEYS = _NODE_ONLY | {"tenants", "http", *_TENANT_DEFAULTS}
_TENANT_KEYS = {f.name for f in dataclasses.fields(TenantConfig)}
_HTTP_KEYS = {f.name for f in dataclasses.fields(HttpConfig)}


def usable_cpus() -> list[int]:
    """CPUs this process may run on (``sched_getaffinity``): the cores a node may pin workers to."""
    return sorted(os.sched_getaffinity(0))


def known_models() -> list[str]:
    """Model ids of the zoo (``models/*.yaml``)."""
    from hera.zoo.spec import list_models

    return list(list_models())


def _check_keys(d: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"server config {where} must be a mapping, not {type(d).__name__}")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ConfigError(f"server config {where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
    return d


def _int(v: Any, where: str, minimum: int | None = 1, maximum: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"server config {where} must be an integer, not {v!r}")
    if minimum is not None and v < minimum:
        raise ConfigError(f"server config {where} must be >= {minimum}, not {v}")
    if maximum is not None and v > maximum:
        raise ConfigError(f"server config {where} must be <= {maximum}, not {v}")
    return v


def _pos_float(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise ConfigError(f"server config {where} must be a number > 0, not {v!r}")
    return float(v)


def _bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise ConfigError(f"server config {where} must be true or false, not {v!r}")
    return v


def _choice(v: Any, choices: tuple[str, ...], where: str) -> str:
    if v not in choices:
        raise ConfigError(f"server config {where} must be one of {', '.join(choices)}, not {v!r}")
    return v


def check_core_list(cores: Any, where: str, usable: list[int] | None = None) -> tuple[int, ...]:
    """Validate a list of CPU ids: non-empty, integers, no duplicates, all usable by this process."""
    if not isinstance(cores, (list, tuple)) or not cores:
        raise ConfigError(f"{where} must be a non-empty list of CPU ids, not {cores!r}")
    out = tuple(_int(c, f"{where} entry", minimum=0) for c in cores)
    if len(set(out)) != len(out):
        raise ConfigError(f"{where} lists a core twice: {list(out)}")
    usable = usable_cpus() if usable is None else usable
    missing = sorted(set(out) - set(usable))
    if missing:
        raise ConfigError(f"{where}: cores {missing} are not on this machine (usable CPUs: {usable})")
    return tuple(sorted(out))


def _tenant(d: Any, i: int, defaults: dict[str, Any], usable: list[int]) -> TenantConfig:
    where = f"tenants[{i}]"
    d = _check_keys(d, _TENANT_KEYS, where)
    for req in ("name", "model", "cores"):
        if req not in d:
            raise ConfigError(f"server config {where}: missing key {req!r}")
    name = d["name"]
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ConfigError(f"server config {where}.name {name!r} must be 1-63 characters of [A-Za-z0-9_.-]")
    where = f"tenant {name!r}"
    if not isinstance(d["model"], str) or not d["model"]:
        raise ConfigError(f"server config {where}.model must be a model id string")
    kw: dict[str, Any] = {"name": name, "model": d["model"],
                          "cores": check_core_list(d["cores"], f"server config {where}.cores", usable)}
    for key in _TENANT_DEFAULTS:
        kw[key] = _int(d.get(key, defaults[key]), f"{where}.{key}")
    kw["workers_per_core_set"] = _int(d.get("workers_per_core_set", 1), f"{where}.workers_per_core_set")
    kw["quantized"] = _bool(d.get("quantized", False), f"{where}.quantized")
    if d.get("sla_ms") is not None:
        kw["sla_ms"] = _pos_float(d["sla_ms"], f"{where}.sla_ms")
    if d.get("llc_ways") is not None:
        kw["llc_ways"] = _int(d["llc_ways"], f"{where}.llc_ways")
    if d.get("mem_bw_percent") is not None:
        kw["mem_bw_percent"] = _int(d["mem_bw_percent"], f"{where}.mem_bw_percent", 1, 100)
    if d.get("library") is not None:
        kw["library"] = str(d["library"])
    opts = d.get("options", {}) or {}
    if not isinstance(opts, dict):
        raise ConfigError(f"server config {where}.options must be a mapping")
    kw["options"] = dict(opts)
    return TenantConfig(**kw)


def check_overlap(assign: dict[str, tuple[int, ...]], where: str = "server config") -> None:
    """Raise :class:`ConfigError` when two tenants' core sets overlap."""
    owner: dict[int, str] = {}
    for name, cores in assign.items():
        for c in cores:
            if c in owner:
                raise ConfigError(f"{where}: core {c} is given to both tenant {owner[c]!r} and tenant {name!r} "
                                  "(set allow_core_sharing: true to permit this)")
            owner[c] = name


def check_harness_overlap(harness: tuple[int, ...] | None, assign: dict[str, tuple[int, ...]],
                          where: str = "server config") -> None:
    """Raise :class:`ConfigError` when a harness core is also a tenant's core."""
    for name, cores in assign.items():
        both = sorted(set(harness or ()) & set(cores))
        if both:
            raise ConfigError(f"{where}: core {both[0]} is both a harness core and a core of tenant {name!r} "
                              "(set allow_core_sharing: true to permit this)")


def check_siblings(assign: dict[str, tuple[int, ...]], where: str = "server config") -> None:
    """Raise :class:`ConfigError` when two tenants get SMT siblings of one physical core of this machine
    (:func:`hera.topology.check_tenant_cores`)."""
    from hera.errors import ResourceError
    from hera.topology import check_tenant_cores, live_topology

    try:
        check_tenant_cores(live_topology(), assign, where, require_online=False)
    except ResourceError as exc:
        raise ConfigError(str(exc)) from None


def from_dict(d: Any, *, usable: list[int] | None = None, models: list[str] | None = None) -> NodeConfig:
    """Validate a node config mapping and return a :class:`NodeConfig` (defaults filled in)."""
    d = _check_keys(d, _NODE_KEYS, "<top level>")
    usable = usable_cpus() if usable is None else usable
    kw: dict[str, Any] = {}
    kw["scale"] = _choice(d.get("scale", "ci"), SCALES, "scale")
    kw["runner"] = _choice(d.get("runner", "zoo"), RUNNERS, "runner")
    kw["mp_context"] = _choice(d.get("mp_context", "forkserver"), MP_CONTEXTS, "mp_context")
    for key in ("models_root", "datasets_root", "resctrl_root"):
        if d.get(key) is not None:
            if not isinstance(d[key], (str, Path)):
                raise ConfigError(f"server config {key} must be a path string, not {d[key]!r}")
            kw[key] = str(d[key])
    for key in ("stats_window_s", "start_timeout_s"):
        if key in d:
            kw[key] = _pos_float(d[key], key)
    kw["allow_core_sharing"] = _bool(d.get("allow_core_sharing", False), "allow_core_sharing")
    http = _check_keys(d.get("http", {}) or {}, _HTTP_KEYS, "http")
    kw["http"] = HttpConfig(host=str(http.get("host", "127.0.0.1")),
                            port=_int(http.get("port", 8000), "http.port", 0, 65535))
    defaults = {"batch_size": 64, "queue_limit": 256, "max_items": 1024, "cores_per_worker": 1}
    for key in _TENANT_DEFAULTS:
        if key in d:
            defaults[key] = _int(d[key], key)
    raw = d.get("tenants")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("server config tenants must be a non-empty list")
    tenants = tuple(_tenant(t, i, defaults, usable) for i, t in enumerate(raw))
    names = [t.name for t in tenants]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"server config: tenant name {dup[0]!r} is used twice")
    if kw["runner"] == "zoo":
        known = known_models() if models is None else models
        for t in tenants:
            if t.model not in known:
                raise ConfigError(f"server config tenant {t.name!r}: unknown model {t.model!r}; "
                                  f"known: {', '.join(known) or '(none)'}")
    if d.get("harness_cores") is not None:
        kw["harness_cores"] = check_core_list(d["harness_cores"], "server config harness_cores", usable)
    if not kw["allow_core_sharing"]:
        check_overlap({t.name: t.cores for t in tenants})
        for t in tenants:
            if t.workers_per_core_set > 1:
                raise ConfigError(f"server config tenant {t.name!r}: workers_per_core_set > 1 puts several workers "
                                  "on the same cores; set allow_core_sharing: true to permit this")
        check_siblings({t.name: t.cores for t in tenants})
        check_harness_overlap(kw.get("harness_cores"), {t.name: t.cores for t in tenants})
    return NodeConfig(tenants=tenants, **kw)


def load(path: str | Path, overrides: dict[str, Any] | None = None, **kw: Any) -> NodeConfig:
    """Read a YAML node config file; ``overrides`` replace top-level keys (e.g. ``{"http": {...}}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"server config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"server config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict) and overrides:
        data.update(overrides)
    return from_dict(data, **kw)


def to_dict(cfg: NodeConfig) -> dict[str, Any]:
    """A JSON-able dict of a config (stored with results)."""
    d = dataclasses.asdict(cfg)
    d["tenants"] = [dict(t, cores=list(t["cores"])) for t in d["tenants"]]
    if d.get("harness_cores") is not None:
        d["harness_cores"] = list(d["harness_cores"])
    return d
