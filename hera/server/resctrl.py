"""Per-tenant LLC ways and memory bandwidth through Linux resctrl (Intel CAT/MBA, AMD PQoS).

One resource group per tenant (``<root>/hera-<tenant>``); its ``schemata`` gets ``L3:<id>=<mask>`` for every
cache id (a contiguous way mask, disjoint from other tenants' masks) and ``MB:<id>=<percent>``; every thread
of every worker of the tenant is written to its ``tasks``. Way layout: tenants with an explicit way count get
contiguous blocks from the lowest way upwards in registration order; tenants without one share the block of
remaining ways at the top (or the whole cache when nobody has asked for ways). Groups are removed on close.

Where resctrl is absent (or not writable) every call is recorded and returns without error; the node logs the
reason once and reports ``llc_partitioning: "unavailable"``. The root is a parameter so tests use a fake tree.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import Iterable

from hera.errors import ResourceError
from hera.machine import resctrl_info

log = logging.getLogger("hera.server")
PREFIX = "hera-"


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _schemata_ids(text: str | None, resource: str) -> list[str]:
    """Domain ids of ``resource`` in a schemata file (``L3:0=7ff;1=7ff`` → ['0', '1'])."""
    for line in (text or "").splitlines():
        name, _, rest = line.strip().partition(":")
        if name.strip() == resource and rest:
            return [item.split("=")[0].strip() for item in rest.split(";") if "=" in item]
    return ["0"]


def _is_resctrl_mount(root: Path) -> bool:
    for line in (_read(Path("/proc/mounts")) or "").splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] == "resctrl" and Path(parts[1]) == root:
            return True
    return False


def way_layout(order: list[str], ways: dict[str, int | None], total: int, min_bits: int = 1) -> dict[str, int]:
    """Contiguous, disjoint way masks for tenants in ``order`` (see module doc); ResourceError if they don't fit."""
    explicit = [(t, ways[t]) for t in order if ways.get(t) is not None]
    shared = [t for t in order if ways.get(t) is None]
    for t, w in explicit:
        if w < min_bits:
            raise ResourceError(f"tenant {t!r}: {w} LLC ways is below the minimum of {min_bits} (info/L3/min_cbm_bits)")
    used = sum(w for _, w in explicit)
    need = used + (min_bits if shared and explicit else 0)
    if need > total:
        detail = " + ".join(f"{t} {w}" for t, w in explicit)
        extra = f" + {min_bits} for tenants without a way count" if shared and explicit else ""
        raise ResourceError(f"LLC ways {detail}{extra} = {need} exceed the {total} ways of the L3")
    masks, lo = {}, 0
    for t, w in explicit:
        masks[t] = ((1 << w) - 1) << lo
        lo += w
    rest = ((1 << (total - lo)) - 1) << lo
    for t in shared:
        masks[t] = rest
    return masks


class Resctrl:
    """Resource groups of one node's tenants under ``root`` (a real resctrl mount or a fake tree)."""

    def __init__(self, root: str | Path = "/sys/fs/resctrl"):
        self.root = Path(root)
        info = resctrl_info(self.root)
        self.available = bool(info["available"])
        self.mb_available = bool(info.get("mb_available")) and (self.root / "schemata").exists()
        self.reason = info.get("reason")
        self.total_ways = int(info.get("l3_ways") or 0)
        self.min_bits = int(info.get("min_cbm_bits") or 1)
        self.num_closids = info.get("num_closids")
        schemata = _read(self.root / "schemata")
        self.l3_ids = _schemata_ids(schemata, "L3")
        self.mb_ids = _schemata_ids(schemata, "MB")
        self.mb_min = int(_read(self.root / "info/MB/min_bandwidth") or 10)
        self.mb_gran = int(_read(self.root / "info/MB/bandwidth_gran") or 10)
        self.real_mount = _is_resctrl_mount(self.root)
        self.groups: dict[str, Path] = {}
        self.order: list[str] = []
        self.ways: dict[str, int | None] = {}
        self.mem_bw: dict[str, int | None] = {}
        self.calls: list[tuple[str, str, int]] = []  # every request, also when unavailable
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

    def _unavailable(self, reason: str) -> None:
        self.available = self.mb_available = False
        self.reason = reason
        self.warn_once()

    def tenant_state(self, tenant: str) -> dict[str, object]:
        return {"llc_partitioning": self.status, "llc_ways": self.ways.get(tenant) if self.available else None,
                "llc_ways_requested": self.ways.get(tenant), "llc_mask": (f"{self._masks[tenant]:x}"
                                                                          if tenant in self._masks else None),
                "mem_bw_percent": self.mem_bw.get(tenant) if self.mb_available else None,
                "mem_bw_percent_requested": self.mem_bw.get(tenant)}

    # ----------------------------------------------------------------------------------------- groups
    def add_tenant(self, tenant: str, ways: int | None = None, mem_bw_percent: int | None = None) -> None:
        """Create the tenant's group (when available) with an initial share."""
        with self._lock:
            self.order.append(tenant)
            self.ways[tenant] = None
            self.mem_bw[tenant] = None
            if not (self.available or self.mb_available):
                return
            if self.num_closids and len(self.groups) + 2 > int(self.num_closids):
                raise ResourceError(f"resctrl has {self.num_closids} CLOSIDs: no group left for tenant {tenant!r}")
            group = self.root / f"{PREFIX}{tenant}"
            try:
                group.mkdir(exist_ok=True)
            except OSError as exc:
                self._unavailable(f"cannot create resctrl group {group}: {exc.strerror or exc}")
                return
            self.groups[tenant] = group
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
        if group is None:
            return
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
            for tenant, group in list(self.groups.items()):
                try:
                    group.rmdir()
                except OSError:
                    if not self.real_mount and group.name.startswith(PREFIX) and group.parent == self.root:
                        shutil.rmtree(group, ignore_errors=True)  # fake tree: files are ours
                    else:
                        log.warning("resctrl: could not remove group %s", group)
                del self.groups[tenant]

    # --------------------------------------------------------------------------------------- controls
    def set_llc_ways(self, tenant: str, ways: int) -> None:
        """Give ``tenant`` a contiguous block of ``ways`` LLC ways (disjoint from other tenants')."""
        if isinstance(ways, bool) or not isinstance(ways, int) or ways < 1:
            raise ResourceError(f"tenant {tenant!r}: LLC ways must be an integer >= 1, not {ways!r}")
        with self._lock:
            self.calls.append(("llc_ways", tenant, ways))
            if not self.available:
                self.ways[tenant] = ways
                self.warn_once()
                return
            trial = dict(self.ways, **{tenant: ways})
            way_layout(self.order, trial, self.total_ways, self.min_bits)  # raises before changing anything
            self.ways = trial
            self._apply_ways()

    def set_mem_bw(self, tenant: str, percent: int) -> None:
        """Cap ``tenant``'s memory bandwidth at ``percent`` (rounded up to the MBA granularity)."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
            raise ResourceError(f"tenant {tenant!r}: memory bandwidth must be a percentage 1..100, not {percent!r}")
        with self._lock:
            self.calls.append(("mem_bw", tenant, percent))
            self.mem_bw[tenant] = percent
            if not self.mb_available:
                self.warn_once()
                return
            value = max(self.mb_min, min(100, -(-percent // self.mb_gran) * self.mb_gran))
            group = self.groups.get(tenant)
            if group is not None:
                line = "MB:" + ";".join(f"{i}={value}" for i in self.mb_ids)
                self._write_schemata(group, line)

    def _apply_ways(self) -> None:
        if not self.available:
            return
        masks = way_layout(self.order, self.ways, self.total_ways, self.min_bits)
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
