"""Per-tenant LLC ways and memory bandwidth through Linux resctrl (Intel CAT/MBA, AMD PQoS).

Available means verified (:func:`hera.machine.resctrl_info`): a test group could be created, written and
removed. One resource group per tenant (``<root>/hera-<tenant>``); its ``schemata`` gets one entry per cache
domain, ``L3:0=<mask>;1=<mask>;…`` (a contiguous way mask, disjoint from other tenants' masks, on every L3
domain: per socket on Intel, per CCX on AMD) and ``MB:0=<v>;1=<v>;…`` in the kernel's unit (:func:`mb_value`:
a percentage on Intel, an absolute limit in 1/8 GB/s on AMD); every thread of every worker of the tenant is
written to its ``tasks``. The node's own threads (dispatch, result collection, the load generator started
from it) get a group of their own, ``hera-harness-<pid>-<n>``, holding the top :func:`harness_ways` ways, so
the harness never evicts a tenant's partition.

Way layout: tenants with an explicit way count get contiguous blocks from the lowest way upwards in
registration order, below the harness's ways; tenants without one (``None``: shared) share the block of
remaining ways at the top (or the whole cache when nobody has asked for ways). Groups are removed on close.

Where resctrl is absent every call is recorded and returns without error; the node logs the reason once and
reports ``llc_partitioning: "unavailable"``. Where it is mounted but cannot be written (not root, no CLOSID
left), the same holds for a node that asks for nothing, but a request for ways or bandwidth is refused with a
one-line :class:`~hera.errors.ResourceError` naming the path. The root is a parameter so tests use a fake tree.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from pathlib import Path
from typing import Any, Iterable

from hera.errors import ResourceError
from hera.machine import remove_group, resctrl_info, resctrl_mount_options

log = logging.getLogger("hera.server")
PREFIX = "hera-"
HARNESS_PREFIX = "hera-harness-"
_harness_ids = itertools.count(1)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def harness_ways(info: dict[str, Any]) -> int:
    """LLC ways kept for the harness group (the L3's minimum mask width, at least 1)."""
    return max(1, int(info.get("min_cbm_bits") or 1))


def tenant_ways(info: dict[str, Any]) -> int:
    """LLC ways tenants may split between them (all ways but the harness's)."""
    return int(info.get("l3_ways") or 0) - harness_ways(info)


def way_layout(order: list[str], ways: dict[str, int | None], total: int, min_bits: int = 1,
               reserved: int = 0) -> dict[str, int]:
    """Contiguous, disjoint way masks for tenants in ``order`` (see module doc), the top ``reserved`` ways left
    to the harness; ResourceError if they don't fit."""
    explicit = [(t, ways[t]) for t in order if ways.get(t) is not None]
    shared = [t for t in order if ways.get(t) is None]
    for t, w in explicit:
        if w < min_bits:
            raise ResourceError(f"tenant {t!r}: {w} LLC ways is below the minimum of {min_bits} (info/L3/min_cbm_bits)")
    used = sum(w for _, w in explicit)
    need = used + max(reserved, min_bits if shared and explicit else 0)
    if need > total:
        detail = " + ".join(f"{t} {w}" for t, w in explicit)
        extra = (f" + {reserved} for the harness" if reserved else "") + \
            (f" (+ {min_bits} for tenants without a way count)" if shared and explicit else "")
        raise ResourceError(f"LLC ways {detail}{extra} = {need} exceed the {total} ways of the L3")
    masks, lo = {}, 0
    for t, w in explicit:
        masks[t] = ((1 << w) - 1) << lo
        lo += w
    rest = ((1 << (total - lo)) - 1) << lo
    for t in shared:
        masks[t] = rest
    return masks


def mb_value(percent: int, unit: str, maximum: int | None, minimum: int, gran: int, root: Path) -> int:
    """The ``MB:`` schemata value for a bandwidth share of ``percent`` in the kernel's ``unit``.

    ``percent`` (Intel): rounded up to the granularity, at least the minimum; ``eighth_gbps`` (AMD): the same
    share of the domain's maximum limit (2048 = 256 GB/s, unlimited), an absolute value; ``mbps`` (Intel's
    ``mba_MBps``): refused, as a share needs a peak bandwidth the kernel does not state."""
    if unit == "percent":
        return max(minimum, min(100, -(-percent // max(gran, 1)) * max(gran, 1)))
    if unit == "eighth_gbps" and maximum:
        return max(minimum, 1, min(maximum, round(percent / 100 * maximum)))
    raise ResourceError(f"resctrl at {root} takes memory bandwidth in MB/s (mounted with mba_MBps): a share in "
                        "percent cannot be converted; remount without mba_MBps")


class Resctrl:
    """Resource groups of one node's tenants under ``root`` (a real resctrl mount or a fake tree)."""

    def __init__(self, root: str | Path = "/sys/fs/resctrl", proc_root: str | Path = "/proc"):
        self.root = Path(root)
        info = resctrl_info(self.root, Path(proc_root))
        self.info = info
        self.available = bool(info["available"])
        self.mb_available = bool(info.get("mb_available")) and self.available
        self.reason = info.get("reason")
        #: mounted with L3 CAT, but the test group could not be created/written/removed
        self.unwritable = (not self.available and (self.root / "info").is_dir()
                           and info.get("l3_ways") is not None)
        self.total_ways = int(info.get("l3_ways") or 0)
        self.min_bits = int(info.get("min_cbm_bits") or 1)
        self.num_closids = info.get("num_closids")
        self.l3_ids = list(info.get("l3_domains") or ["0"])
        self.mb_ids = list(info.get("mb_domains") or ["0"])
        self.mb_unit = info.get("mb_unit")
        self.mb_max = info.get("mb_max")
        self.mb_min = int(info.get("mb_min") or 0)
        self.mb_gran = int(info.get("mb_gran") or 1)
        self.real_mount = resctrl_mount_options(self.root, Path(proc_root)) is not None
        self.groups: dict[str, Path] = {}
        self.harness_group: Path | None = None
        self.reserved = 0
        self.order: list[str] = []
        self.ways: dict[str, int | None] = {}
        self.mem_bw: dict[str, int | None] = {}
        self.mem_bw_value: dict[str, int] = {}
        self.calls: list[tuple[str, str, int | None]] = []  # every request, also when unavailable
        self._masks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._warned = False

    # ----------------------------------------------------------------------------------------- state
    @property
    def status(self) -> str:
        """``available`` or ``unavailable`` (the value stored as ``llc_partitioning`` in every result)."""
        return "available" if self.available else "unavailable"

    def warn_once(self) -> None:
        if not self._warned and not self.available:
            self._warned = True
            log.warning("LLC partitioning unavailable: %s; LLC-way and memory-bandwidth requests are recorded "
                        "but not applied (llc_partitioning: unavailable)", self.reason)

    def _refuse_if_unwritable(self, what: str) -> None:
        if self.unwritable:
            raise ResourceError(f"{what}: resctrl at {self.root} cannot be written ({self.reason})")

    def tenant_state(self, tenant: str) -> dict[str, object]:
        return {"llc_partitioning": self.status, "llc_ways": self.ways.get(tenant) if self.available else None,
                "llc_ways_requested": self.ways.get(tenant), "llc_mask": (f"{self._masks[tenant]:x}"
                                                                          if tenant in self._masks else None),
                "mem_bw_percent": self.mem_bw.get(tenant) if self.mb_available else None,
                "mem_bw_percent_requested": self.mem_bw.get(tenant),
                "mem_bw_value": self.mem_bw_value.get(tenant), "mem_bw_unit": self.mb_unit}

    # ----------------------------------------------------------------------------------------- groups
    def _mkgroup(self, name: str) -> Path:
        group = self.root / name
        try:
            group.mkdir(exist_ok=True)
        except OSError as exc:
            raise ResourceError(f"cannot create resctrl group {group}: {exc.strerror or exc}") from None
        return group

    def add_harness(self, pids: Iterable[int]) -> None:
        """Give the node's own threads (``pids``: the node process) a group with the top :func:`harness_ways`
        ways; threads and processes they start later inherit it. No-op where resctrl is unavailable."""
        if not self.available:
            return
        with self._lock:
            if self.harness_group is None:
                if self.num_closids and len(self.groups) + 2 > int(self.num_closids):
                    log.warning("resctrl: no CLOSID left for the harness group; harness threads keep all ways")
                    return
                self.harness_group = self._mkgroup(f"{HARNESS_PREFIX}{os.getpid()}-{next(_harness_ids)}")
                self.reserved = harness_ways(self.info)
                top = ((1 << self.reserved) - 1) << (self.total_ways - self.reserved)
                self._write_schemata(self.harness_group, "L3:" + ";".join(f"{i}={top:x}" for i in self.l3_ids))
                self._apply_ways()
        self._assign(self.harness_group, pids)

    def add_tenant(self, tenant: str, ways: int | None = None, mem_bw_percent: int | None = None) -> None:
        """Create the tenant's group (when available) with an initial share."""
        if ways is not None or mem_bw_percent is not None:
            self._refuse_if_unwritable(f"tenant {tenant!r} asks for LLC ways or memory bandwidth")
        with self._lock:
            self.order.append(tenant)
            self.ways[tenant] = None
            self.mem_bw[tenant] = None
            if not self.available:
                return
            used = len(self.groups) + (self.harness_group is not None)
            if self.num_closids and used + 2 > int(self.num_closids):
                raise ResourceError(f"resctrl has {self.num_closids} CLOSIDs: no group left for tenant {tenant!r}")
            self.groups[tenant] = self._mkgroup(f"{PREFIX}{tenant}")
        if ways is not None:
            self.set_llc_ways(tenant, ways)
        else:
            with self._lock:
                self._apply_ways()
        if mem_bw_percent is not None:
            self.set_mem_bw(tenant, mem_bw_percent)

    def assign(self, tenant: str, pids: Iterable[int]) -> None:
        """Move every thread of the given processes into the tenant's group."""
        group = self.groups.get(tenant)
        if group is not None:
            self._assign(group, pids)

    @staticmethod
    def _assign(group: Path, pids: Iterable[int]) -> None:
        for pid in pids:
            tids = [d.name for d in Path(f"/proc/{pid}/task").iterdir()] if Path(f"/proc/{pid}/task").is_dir() \
                else [str(pid)]
            for tid in tids:
                try:
                    with open(group / "tasks", "a") as f:
                        f.write(f"{tid}\n")
                except OSError as exc:  # thread exited meanwhile, or no permission
                    log.debug("resctrl: cannot move task %s to %s: %s", tid, group, exc)

    def close(self) -> None:
        """Remove the node's groups (their tasks fall back to the default group)."""
        with self._lock:
            groups = list(self.groups.values()) + ([self.harness_group] if self.harness_group else [])
            for group in groups:
                try:
                    remove_group(group, self.real_mount)
                except OSError:
                    log.warning("resctrl: could not remove group %s", group)
            self.groups.clear()
            self.harness_group = None

    # --------------------------------------------------------------------------------------- controls
    def set_llc_ways(self, tenant: str, ways: int | None) -> None:
        """Give ``tenant`` a contiguous block of ``ways`` LLC ways (disjoint from other tenants'); ``None``
        returns it to the shared block."""
        if ways is not None and (isinstance(ways, bool) or not isinstance(ways, int) or ways < 1):
            raise ResourceError(f"tenant {tenant!r}: LLC ways must be an integer >= 1, not {ways!r}")
        if ways is not None:
            self._refuse_if_unwritable(f"tenant {tenant!r}: {ways} LLC ways")
        with self._lock:
            self.calls.append(("llc_ways", tenant, ways))
            if not self.available:
                self.ways[tenant] = ways
                self.warn_once()
                return
            trial = dict(self.ways, **{tenant: ways})
            way_layout(self.order, trial, self.total_ways, self.min_bits, self.reserved)  # raises first
            self.ways = trial
            self._apply_ways()

    def set_mem_bw(self, tenant: str, percent: int) -> None:
        """Cap ``tenant``'s memory bandwidth at ``percent`` of the peak (:func:`mb_value` converts it to the
        kernel's unit: a percentage on Intel, an absolute limit on AMD)."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
            raise ResourceError(f"tenant {tenant!r}: memory bandwidth must be a percentage 1..100, not {percent!r}")
        self._refuse_if_unwritable(f"tenant {tenant!r}: memory bandwidth {percent}%")
        with self._lock:
            self.calls.append(("mem_bw", tenant, percent))
            self.mem_bw[tenant] = percent
            if not self.mb_available:
                self.warn_once()
                return
            value = mb_value(percent, self.mb_unit, self.mb_max, self.mb_min, self.mb_gran, self.root)
            group = self.groups.get(tenant)
            if group is not None:
                self._write_schemata(group, "MB:" + ";".join(f"{i}={value}" for i in self.mb_ids))
                self.mem_bw_value[tenant] = value

    def _apply_ways(self) -> None:
        if not self.available:
            return
        masks = way_layout(self.order, self.ways, self.total_ways, self.min_bits, self.reserved)
        for tenant, mask in masks.items():
            group = self.groups.get(tenant)
            if group is not None and self._masks.get(tenant) != mask:
                self._write_schemata(group, "L3:" + ";".join(f"{i}={mask:x}" for i in self.l3_ids))
                self._masks[tenant] = mask

    def _write_schemata(self, group: Path, line: str) -> None:
        path = group / "schemata"
        try:
            if self.real_mount:
                with open(path, "w") as f:
                    f.write(line + "\n")
            else:  # fake tree: keep one line per resource, as the kernel shows it
                kept = [ln for ln in (_read(path) or "").splitlines() if ln.split(":")[0] != line.split(":")[0]]
                path.write_text("\n".join(kept + [line]) + "\n")
        except OSError as exc:
            raise ResourceError(f"resctrl: writing {line!r} to {path} failed: {exc.strerror or exc}") from None
