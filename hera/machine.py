"""What the machine is: cores and siblings, sockets/NUMA, LLC size and ways, memory, resctrl, perf.

Everything is read from sysfs/procfs under a configurable root, so tests run against a fake tree.
``hera machine`` prints the description as JSON (optionally with a quick memory-bandwidth probe) and
can store it; later stages use it to size configs and to refuse those that do not fit.
"""

from __future__ import annotations

import argparse
import functools
import json
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


def cpu_topology(sys_root: Path) -> list[dict[str, Any]]:
    """One dict per online logical CPU: ``cpu, core_id, socket, siblings``."""
    base = sys_root / "devices/system/cpu"
    online = _read(base / "online")
    cpus = parse_cpulist(online) if online else sorted(
        int(p.name[3:]) for p in base.glob("cpu[0-9]*") if p.name[3:].isdigit()
    )
    out = []
    for cpu in cpus:
        topo = base / f"cpu{cpu}" / "topology"
        sib = _read(topo / "thread_siblings_list")
        out.append({
            "cpu": cpu,
            "core_id": int(_read(topo / "core_id") or cpu),
            "socket": int(_read(topo / "physical_package_id") or 0),
            "siblings": parse_cpulist(sib) if sib else [cpu],
        })
    return out


def numa_nodes(sys_root: Path) -> dict[int, list[int]]:
    """NUMA node id → its CPUs (``{0: all}`` when sysfs has no node directory)."""
    nodes = {}
    for p in sorted((sys_root / "devices/system/node").glob("node[0-9]*")):
        cpus = _read(p / "cpulist")
        nodes[int(p.name[4:])] = parse_cpulist(cpus) if cpus else []
    return nodes


def last_level_cache(sys_root: Path) -> dict[str, Any] | None:
    """The highest-level unified/data cache of CPU 0: size, ways, line size, CPUs sharing it."""
    best = None
    for idx in sorted((sys_root / "devices/system/cpu/cpu0/cache").glob("index[0-9]*")):
        ctype = _read(idx / "type")
        if ctype not in ("Unified", "Data"):
            continue
        level = int(_read(idx / "level") or 0)
        if best is None or level > best["level"]:
            shared = _read(idx / "shared_cpu_list")
            ways = _read(idx / "ways_of_associativity")
            line = _read(idx / "coherency_line_size")
            best = {
                "level": level,
                "size_bytes": _size_bytes(_read(idx / "size")),
                "ways": int(ways) if ways and ways.isdigit() else None,
                "line_bytes": int(line) if line and line.isdigit() else None,
                "shared_cpus": parse_cpulist(shared) if shared else [],
            }
    return best


def resctrl_info(resctrl_root: Path, proc_root: Path = Path("/proc")) -> dict[str, Any]:
    """Whether Linux resctrl (Intel RDT / AMD PQoS) is usable, and its LLC-way and bandwidth controls.

    ``available`` is True only when the filesystem is mounted at ``resctrl_root`` and exposes L3 CAT.
    ``reason`` says why not otherwise.
    """
    info: dict[str, Any] = {"root": str(resctrl_root), "available": False, "l3_ways": None,
                            "num_closids": None, "mb_available": False, "reason": None}
    if not (resctrl_root / "info").is_dir():
        mounts = _read(proc_root / "mounts") or ""
        info["reason"] = ("resctrl is supported by the kernel but not mounted at " + str(resctrl_root)
                          if "resctrl" in (_read(proc_root / "filesystems") or "") and "resctrl" not in mounts
                          else f"no resctrl filesystem at {resctrl_root} (no Intel RDT/AMD PQoS exposed)")
        return info
    mask = _read(resctrl_root / "info/L3/cbm_mask")
    if mask is None:
        info["reason"] = "resctrl is mounted but exposes no L3 cache allocation (info/L3 missing)"
    else:
        info["available"] = True
        info["l3_ways"] = bin(int(mask, 16)).count("1")
        closids = _read(resctrl_root / "info/L3/num_closids")
        info["num_closids"] = int(closids) if closids else None
        min_bits = _read(resctrl_root / "info/L3/min_cbm_bits")
        info["min_cbm_bits"] = int(min_bits) if min_bits else 1
    info["mb_available"] = (resctrl_root / "info/MB").is_dir()
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
                      check_perf: bool = True) -> dict[str, Any]:
    """Full machine description as a JSON-able dict (see module docstring)."""
    topo = cpu_topology(sys_root)
    cores = {(c["socket"], c["core_id"]) for c in topo}
    try:
        usable = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        usable = [c["cpu"] for c in topo]
    desc: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cpu_model": _cpu_model(proc_root),
        "logical_cpus": len(topo),
        "physical_cores": len(cores),
        "sockets": len({c["socket"] for c in topo}),
        "usable_cpus": usable,
        "topology": topo,
        "numa_nodes": numa_nodes(sys_root),
        "llc": last_level_cache(sys_root),
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


# ---------------------------------------------------------------------------------------------- CLI
def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("machine", help="describe this machine as JSON (cores, NUMA, LLC, memory, resctrl, perf)")
    p.add_argument("--bandwidth", action="store_true", help="also run a quick memory-bandwidth probe (~2 s)")
    p.add_argument("--out", type=Path, help="also write the JSON to this file")
    p.set_defaults(func=_cmd_machine)


def _cmd_machine(args: argparse.Namespace) -> int:
    desc = describe_uncached(bandwidth=args.bandwidth)
    text = json.dumps(desc, sort_keys=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(desc, indent=2, sort_keys=True) + "\n")
    if not desc["resctrl"]["available"]:
        print(f"note: LLC partitioning unavailable: {desc['resctrl']['reason']}", flush=True)
    if not desc["perf"]["available"]:
        print(f"note: hardware counters unavailable: {desc['perf']['reason']}", flush=True)
    print(text)
    return 0
