"""What the machine is: cores and siblings, sockets/NUMA, LLC size and ways, memory, resctrl, perf.

Everything is read from sysfs/procfs under a configurable root, so tests run against a fake tree.
``hera machine`` prints the description as JSON (optionally with a quick memory-bandwidth probe) and
can store it; later stages use it to size configs and to refuse those that do not fit.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from hera.errors import ResourceError


def parse_cpulist(text: str) -> list[int]:
    """Parse a Linux cpulist such as ``0-3,8,10-11`` into sorted CPU ids."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.update(range(int(lo), int(hi) + 1))
        else:
            cpus.add(int(part))
    return sorted(cpus)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _size_bytes(text: str | None) -> int | None:
    """sysfs cache sizes look like ``32768K`` or ``32M``."""
    if not text:
        return None
    mult = {"K": 1024, "M": 1024**2, "G": 1024**3}
    return int(text[:-1]) * mult[text[-1]] if text[-1] in mult else int(text)


def _cache_dirs(sys_root: Path, cpu: int) -> list[Path]:
    return sorted((sys_root / f"devices/system/cpu/cpu{cpu}/cache").glob("index[0-9]*"))


def _llc_dir(sys_root: Path, cpu: int) -> Path | None:
    """The sysfs directory of ``cpu``'s highest-level unified (or data) cache."""
    best, best_level = None, -1
    for idx in _cache_dirs(sys_root, cpu):
        if _read(idx / "type") not in ("Unified", "Data"):
            continue
        level = int(_read(idx / "level") or 0)
        if level > best_level:
            best, best_level = idx, level
    return best


def numa_nodes(sys_root: Path) -> dict[int, list[int]]:
    """NUMA node id → its CPUs (empty when sysfs has no node directory)."""
    nodes = {}
    for p in sorted((sys_root / "devices/system/node").glob("node[0-9]*")):
        cpus = _read(p / "cpulist")
        nodes[int(p.name[4:])] = parse_cpulist(cpus) if cpus else []
    return nodes


def _numa_of(sys_root: Path) -> dict[int, int]:
    """CPU → NUMA node, from ``devices/system/node/node*/cpulist``."""
    return {cpu: node for node, cpus in numa_nodes(sys_root).items() for cpu in cpus}


def cpu_topology(sys_root: Path) -> list[dict[str, Any]]:
    """One dict per online logical CPU: ``cpu, core_id, socket, siblings, numa, l3``.

    ``siblings``: the hardware threads of its physical core; ``numa``: its NUMA node (0 without a node
    directory); ``l3``: the id of its last-level cache domain (``cache/index*/id`` of the highest level; the
    lowest CPU sharing it when the kernel has no ``id`` file; the socket when there is no cache information).
    """
    base = sys_root / "devices/system/cpu"
    online = _read(base / "online")
    cpus = parse_cpulist(online) if online else sorted(
        int(p.name[3:]) for p in base.glob("cpu[0-9]*") if p.name[3:].isdigit()
    )
    numa = _numa_of(sys_root)
    out = []
    for cpu in cpus:
        topo = base / f"cpu{cpu}" / "topology"
        sib = _read(topo / "thread_siblings_list")
        socket_id = int(_read(topo / "physical_package_id") or 0)
        llc = _llc_dir(sys_root, cpu)
        l3 = socket_id
        if llc is not None:
            cid, shared = _read(llc / "id"), _read(llc / "shared_cpu_list")
            l3 = int(cid) if cid and cid.isdigit() else (min(parse_cpulist(shared)) if shared else socket_id)
        out.append({
            "cpu": cpu,
            "core_id": int(_read(topo / "core_id") or cpu),
            "socket": socket_id,
            "siblings": parse_cpulist(sib) if sib else [cpu],
            "numa": numa.get(cpu, 0),
            "l3": l3,
        })
    return out


def offline_cpus(sys_root: Path) -> list[int]:
    """Present CPUs the kernel has taken offline (``devices/system/cpu/offline``)."""
    text = _read(sys_root / "devices/system/cpu/offline")
    return parse_cpulist(text) if text else []


def l3_domains(sys_root: Path, topo: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every last-level cache domain (one per socket on most Intel parts, one per CCX on AMD): ``id, cpus,
    size_bytes, ways``, read from each domain's first online CPU."""
    out: dict[int, dict[str, Any]] = {}
    for c in topo:
        dom = out.setdefault(c["l3"], {"id": c["l3"], "cpus": [], "size_bytes": None, "ways": None})
        dom["cpus"].append(c["cpu"])
        if dom["size_bytes"] is None:
            llc = _llc_dir(sys_root, c["cpu"])
            if llc is not None:
                ways = _read(llc / "ways_of_associativity")
                dom["size_bytes"] = _size_bytes(_read(llc / "size"))
                dom["ways"] = int(ways) if ways and ways.isdigit() else None
    return [out[k] for k in sorted(out)]


def last_level_cache(sys_root: Path) -> dict[str, Any] | None:
    """The highest-level unified/data cache of CPU 0: size, ways, line size, CPUs sharing it
    (:func:`l3_domains` lists every domain)."""
    idx = _llc_dir(sys_root, 0)
    if idx is None:
        return None
    shared = _read(idx / "shared_cpu_list")
    ways = _read(idx / "ways_of_associativity")
    line = _read(idx / "coherency_line_size")
    return {
        "level": int(_read(idx / "level") or 0),
        "size_bytes": _size_bytes(_read(idx / "size")),
        "ways": int(ways) if ways and ways.isdigit() else None,
        "line_bytes": int(line) if line and line.isdigit() else None,
        "shared_cpus": parse_cpulist(shared) if shared else [],
    }


RESCTRL_CHECK_PREFIX = "hera-check-"
#: AMD's MBA takes absolute limits in units of 1/8 GB/s; 2048 (256 GB/s) is its "unlimited" default.
AMD_MB_MAX = 2048


def schemata_ids(text: str | None, resource: str) -> list[str]:
    """Domain ids of ``resource`` in a schemata file (``L3:0=7ff;1=7ff`` → ['0', '1']); ['0'] if absent."""
    return list(schemata_values(text, resource)) or ["0"]


def schemata_values(text: str | None, resource: str) -> dict[str, str]:
    """``{domain id: value}`` of ``resource`` in a schemata file (``MB:0=100;1=100`` → {'0': '100', ...})."""
    for line in (text or "").splitlines():
        name, _, rest = line.strip().partition(":")
        if name.strip() == resource and rest:
            return {k.strip(): v.strip() for k, _, v in (item.partition("=") for item in rest.split(";"))
                    if _ == "="}
    return {}


def resctrl_mount_options(root: Path, proc_root: Path = Path("/proc")) -> list[str] | None:
    """Mount options of the resctrl filesystem mounted at ``root`` (None when ``root`` is no resctrl mount)."""
    for line in (_read(proc_root / "mounts") or "").splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] == "resctrl" and Path(parts[1]) == Path(root):
            return parts[3].split(",")
    return None


def _cpu_vendor(proc_root: Path) -> str:
    for line in (_read(proc_root / "cpuinfo") or "").splitlines():
        if line.startswith("vendor_id"):
            return line.split(":", 1)[1].strip()
    return ""


def mb_unit(root_mb: dict[str, str], mount_options: list[str] | None, vendor: str) -> tuple[str, int | None]:
    """How the kernel reads ``MB:`` values: ``(unit, maximum)``.

    ``percent`` (Intel MBA: a percentage of the peak, max 100); ``eighth_gbps`` (AMD: absolute limit in
    multiples of 1/8 GB/s, max 2048 = unlimited); ``mbps`` (Intel with the ``mba_MBps`` mount option: MB/s,
    no fixed maximum). Decided from the mount options and the default group's MB values (100 on Intel, 2048
    on AMD, 2^32 - 1 with mba_MBps); the CPU vendor only when the default group shows none.
    """
    default = max((int(v) for v in root_mb.values() if v.isdigit()), default=None)
    if mount_options and "mba_MBps" in mount_options:
        return "mbps", None
    if default == AMD_MB_MAX or (default is None and vendor in ("AuthenticAMD", "HygonGenuine")):
        return "eighth_gbps", AMD_MB_MAX
    if default is None or default <= 100:
        return "percent", 100
    return "mbps", None


def remove_group(group: Path, real_mount: bool) -> None:
    """Remove a resctrl group directory (on a fake tree also the files written into it)."""
    if real_mount:
        group.rmdir()
    else:
        shutil.rmtree(group)


def verify_resctrl(root: Path, l3_ids: list[str], mask: int, real_mount: bool) -> str | None:
    """Create a test group, write an L3 schemata line for every domain, read it back, remove the group.

    Returns None when all of that worked, else the reason (one line naming the path that failed).
    """
    group = root / f"{RESCTRL_CHECK_PREFIX}{os.getpid()}"
    try:
        group.mkdir()
    except OSError as exc:
        hint = " (LLC partitioning needs root)" if isinstance(exc, PermissionError) else ""
        return f"cannot create a resctrl group {group}: {exc.strerror or exc}{hint}"
    line = "L3:" + ";".join(f"{i}={mask:x}" for i in l3_ids)
    reason = None
    try:
        with open(group / "schemata", "w") as f:
            f.write(line + "\n")
        back = schemata_values(_read(group / "schemata"), "L3")
        if any(int(back.get(i, "0"), 16) != mask for i in l3_ids):
            reason = f"resctrl group {group}: wrote {line!r} to schemata but read back {back}"
    except (OSError, ValueError) as exc:
        reason = f"cannot write {group / 'schemata'}: {getattr(exc, 'strerror', None) or exc}"
    try:
        remove_group(group, real_mount)
    except OSError as exc:
        reason = reason or f"cannot remove the resctrl test group {group}: {exc.strerror or exc}"
    return reason


def resctrl_info(resctrl_root: Path, proc_root: Path = Path("/proc"), verify: bool = True) -> dict[str, Any]:
    """Whether Linux resctrl (Intel RDT / AMD PQoS) is usable, and its LLC-way and bandwidth controls.

    ``available`` is True only when the filesystem at ``resctrl_root`` exposes L3 CAT **and** (``verify``) a
    test group could be created, written (an L3 mask for every cache domain) and removed; ``reason`` says
    why not otherwise. ``l3_domains``: the cache ids of the default group's schemata (one per L3 domain: per
    socket on Intel, per CCX on AMD). ``mb_unit``/``mb_max``: how memory-bandwidth values are read
    (:func:`mb_unit`).
    """
    resctrl_root = Path(resctrl_root)
    info: dict[str, Any] = {"root": str(resctrl_root), "available": False, "l3_ways": None,
                            "num_closids": None, "mb_available": False, "reason": None, "verified": False,
                            "l3_domains": [], "mb_unit": None, "mb_max": None}
    if not (resctrl_root / "info").is_dir():
        mounts = _read(proc_root / "mounts") or ""
        info["reason"] = ("resctrl is supported by the kernel but not mounted at " + str(resctrl_root)
                          if "resctrl" in (_read(proc_root / "filesystems") or "") and "resctrl" not in mounts
                          else f"no resctrl filesystem at {resctrl_root} (no Intel RDT/AMD PQoS exposed)")
        return info
    schemata = _read(resctrl_root / "schemata")
    options = resctrl_mount_options(resctrl_root, proc_root)
    if (resctrl_root / "info/MB").is_dir():
        root_mb = schemata_values(schemata, "MB")
        unit, top = mb_unit(root_mb, options, _cpu_vendor(proc_root))
        info.update(mb_available=True, mb_unit=unit, mb_max=top, mb_domains=list(root_mb) or ["0"],
                    mb_min=int(_read(resctrl_root / "info/MB/min_bandwidth") or 0),
                    mb_gran=int(_read(resctrl_root / "info/MB/bandwidth_gran") or 1))
    mask = _read(resctrl_root / "info/L3/cbm_mask")
    if mask is None:
        info["reason"] = "resctrl is mounted but exposes no L3 cache allocation (info/L3 missing)"
        return info
    info["l3_ways"] = bin(int(mask, 16)).count("1")
    info["l3_domains"] = schemata_ids(schemata, "L3")
    closids = _read(resctrl_root / "info/L3/num_closids")
    info["num_closids"] = int(closids) if closids else None
    min_bits = _read(resctrl_root / "info/L3/min_cbm_bits")
    info["min_cbm_bits"] = int(min_bits) if min_bits else 1
    if verify:
        reason = verify_resctrl(resctrl_root, info["l3_domains"], int(mask, 16), options is not None)
        if reason is not None:
            info.update(reason=reason, mb_available=False)
            return info
        info["verified"] = True
    info["available"] = True
    return info


@functools.lru_cache(maxsize=1)
def perf_info() -> dict[str, Any]:
    """Whether ``perf stat`` can count hardware events here (``perf stat -e instructions true``)."""
    exe = shutil.which("perf")
    if exe is None:
        return {"available": False, "reason": "perf is not installed"}
    try:
        proc = subprocess.run([exe, "stat", "-x,", "-e", "instructions", "true"],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"available": False, "reason": f"perf failed to run: {exc}"}
    line = next((ln for ln in proc.stderr.splitlines() if "instructions" in ln), "")
    if proc.returncode != 0 or "not supported" in line or "not counted" in line or not line[:1].isdigit():
        return {"available": False, "reason": "perf cannot count hardware events here (virtualised PMU?)"}
    return {"available": True, "reason": None}


def memory_bandwidth_probe(size_bytes: int = 256 * 1024**2, repeats: int = 5) -> dict[str, float]:
    """Single-thread streaming copy bandwidth (best of ``repeats``), GB/s read+write, with numpy."""
    import numpy as np

    src = np.ones(size_bytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return {"copy_gbps_1thread": round(2 * size_bytes / best / 1e9, 2), "probe_bytes": size_bytes}


def _memory() -> dict[str, int]:
    import psutil

    vm = psutil.virtual_memory()
    return {"memory_bytes": int(vm.total), "memory_available_bytes": int(vm.available)}


def _cpu_model(proc_root: Path) -> str:
    for line in (_read(proc_root / "cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def describe_uncached(sys_root: Path = Path("/sys"), proc_root: Path = Path("/proc"),
                      resctrl_root: Path | None = None, bandwidth: bool = False,
                      check_perf: bool = True, usable_cpus: list[int] | None = None) -> dict[str, Any]:
    """Full machine description as a JSON-able dict (see module docstring).

    ``usable_cpus``: the CPUs this process may run on (default: its affinity on the live ``/sys``, every
    online CPU of a fake tree).
    """
    topo = cpu_topology(sys_root)
    cores = {tuple(c["siblings"]) for c in topo}
    if usable_cpus is not None:
        usable = sorted(usable_cpus)
    elif Path(sys_root) != Path("/sys") or not hasattr(os, "sched_getaffinity"):
        usable = [c["cpu"] for c in topo]
    else:
        usable = sorted(os.sched_getaffinity(0))
    desc: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cpu_model": _cpu_model(proc_root),
        "logical_cpus": len(topo),
        "physical_cores": len(cores),
        "sockets": len({c["socket"] for c in topo}),
        "usable_cpus": usable,
        "online_cpus": [c["cpu"] for c in topo],
        "offline_cpus": offline_cpus(sys_root),
        "topology": topo,
        "numa_nodes": numa_nodes(sys_root),
        "llc": last_level_cache(sys_root),
        "l3_domains": l3_domains(sys_root, topo),
        **_memory(),
        "resctrl": resctrl_info(resctrl_root or sys_root / "fs/resctrl", proc_root),
        "perf": perf_info() if check_perf else {"available": False, "reason": "not checked"},
    }
    desc["llc_bytes"] = (desc["llc"] or {}).get("size_bytes")
    desc["llc_partitioning"] = "available" if desc["resctrl"]["available"] else "unavailable"
    if bandwidth:
        desc["bandwidth"] = memory_bandwidth_probe()
    return desc


@functools.lru_cache(maxsize=1)
def describe() -> dict[str, Any]:
    """The description of this machine (cached for the process; no bandwidth probe)."""
    return describe_uncached()


def load_description(path: str | Path) -> dict[str, Any]:
    """A machine description stored by ``hera machine --out FILE`` (to plan a study for another machine);
    :class:`ConfigError` when the file is missing or holds no description."""
    from hera.errors import ConfigError
    from hera.paths import read_json

    desc = read_json(path, "machine description file", ConfigError, "write one with `hera machine --out`")
    if not isinstance(desc, dict) or not isinstance(desc.get("topology"), list) or not desc["topology"]:
        raise ConfigError(f"machine description file {path} has no 'topology' list "
                          "(not written by `hera machine`?)")
    return desc


#: Largest share of available memory, and of free disk, that built weights may take.
MEMORY_FRACTION = 0.6
DISK_FRACTION = 0.6


def check_fits(needed_bytes: int, what: str, disk_path: Path | None = None, *,
               available_memory_bytes: int | None = None, free_disk_bytes: int | None = None) -> None:
    """Refuse (:class:`ResourceError`, one line naming ``what``) when ``needed_bytes`` exceed
    :data:`MEMORY_FRACTION` of available memory or, given ``disk_path``, :data:`DISK_FRACTION` of the free space
    of the file system holding it (``available_memory_bytes`` / ``free_disk_bytes`` are injectable for tests)."""
    mem = int(_memory()["memory_available_bytes"] if available_memory_bytes is None else available_memory_bytes)
    if needed_bytes > MEMORY_FRACTION * mem:
        raise ResourceError(
            f"{what} needs {needed_bytes} bytes ({needed_bytes / 1e9:.2f} GB) but only {mem} bytes "
            f"({mem / 1e9:.2f} GB) of memory are available (limit {MEMORY_FRACTION:.0%}); "
            "use a smaller scale or a bigger machine"
        )
    if disk_path is None:
        return
    disk_path = Path(disk_path)
    if free_disk_bytes is None:
        probe = disk_path
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free_disk_bytes = shutil.disk_usage(probe).free
    if needed_bytes > DISK_FRACTION * free_disk_bytes:
        raise ResourceError(
            f"{what} needs {needed_bytes} bytes ({needed_bytes / 1e9:.2f} GB) but only {int(free_disk_bytes)} "
            f"bytes ({free_disk_bytes / 1e9:.2f} GB) of disk are free at {disk_path} (limit {DISK_FRACTION:.0%}); "
            "free some space or use a smaller scale"
        )


def check_cores(cores: list[int], what: str) -> None:
    """Raise :class:`ResourceError` when ``cores`` are not all usable by this process."""
    usable = set(describe()["usable_cpus"])
    missing = sorted(set(cores) - usable)
    if missing:
        raise ResourceError(f"{what} asks for cores {missing} but this machine only has {sorted(usable)}")
