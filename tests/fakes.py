"""Fake sysfs/procfs and resctrl trees of real machine shapes, for topology and resctrl tests.

- :func:`sysfs`: sockets x cores x SMT threads with Intel numbering (cpu0..N-1 the first thread of every core,
  socket by socket; cpuN.. their siblings, in the same order), several L3 domains per socket (AMD CCX) when
  asked, offline CPUs;
- :func:`resctrl`: a mounted-looking resctrl tree, Intel (CAT + MBA in percent) or AMD (MBA in 1/8 GB/s),
  with one schemata entry per L3 domain.
"""

from __future__ import annotations

from pathlib import Path


def _cpulist(cpus: list[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def sysfs(root: Path, sockets: int, cores: int, smt: int = 1, l3_per_socket: int = 1, offline: tuple[int, ...] = (),
          llc_ways: int = 11, llc_kib: int = 32768) -> Path:
    """A fake ``/sys`` with ``sockets x cores x smt`` logical CPUs (see the module docstring)."""
    base = root / "devices/system/cpu"
    base.mkdir(parents=True)
    n_phys = sockets * cores
    per_l3 = cores // l3_per_socket
    info = {}  # cpu -> (socket, core_id, siblings, l3)
    for s in range(sockets):
        for c in range(cores):
            first = s * cores + c
            threads = [first + t * n_phys for t in range(smt)]
            l3 = s * l3_per_socket + c // per_l3
            for t in threads:
                info[t] = (s, c, threads, l3)
    online = sorted(set(info) - set(offline))
    (base / "online").write_text(_cpulist(online) + "\n")
    (base / "offline").write_text(_cpulist(list(offline)) + "\n")
    for cpu, (s, c, threads, l3) in info.items():
        topo = base / f"cpu{cpu}/topology"
        topo.mkdir(parents=True)
        if cpu in offline:
            continue
        (topo / "core_id").write_text(str(c))
        (topo / "physical_package_id").write_text(str(s))
        (topo / "thread_siblings_list").write_text(_cpulist([t for t in threads if t not in offline]))
        shared = [x for x, v in info.items() if v[3] == l3 and x not in offline]
        for idx, (level, ctype, size, ways, sh) in enumerate(
                [(1, "Data", "32K", "8", threads), (2, "Unified", "1024K", "8", threads),
                 (3, "Unified", f"{llc_kib}K", str(llc_ways), shared)]):
            d = base / f"cpu{cpu}/cache/index{idx}"
            d.mkdir(parents=True)
            (d / "level").write_text(str(level))
            (d / "type").write_text(ctype)
            (d / "size").write_text(size)
            (d / "ways_of_associativity").write_text(ways)
            (d / "coherency_line_size").write_text("64")
            (d / "shared_cpu_list").write_text(_cpulist([t for t in sh if t not in offline]))
            (d / "id").write_text(str(l3 if level == 3 else c))
    for s in range(sockets):
        node = root / f"devices/system/node/node{s}"
        node.mkdir(parents=True)
        (node / "cpulist").write_text(_cpulist([x for x, v in info.items() if v[0] == s and x not in offline]))
    return root


def resctrl(root: Path, vendor: str = "intel", domains: int = 1, cbm: str = "7ff", closids: int = 16) -> Path:
    """A fake resctrl mount: L3 CAT with mask ``cbm`` on ``domains`` cache domains and MBA (Intel: percent,
    granularity 10, minimum 10; AMD: absolute, 1/8 GB/s units, default 2048)."""
    (root / "info/L3").mkdir(parents=True)
    (root / "info/MB").mkdir(parents=True)
    (root / "info/L3/cbm_mask").write_text(cbm + "\n")
    (root / "info/L3/num_closids").write_text(f"{closids}\n")
    (root / "info/L3/min_cbm_bits").write_text("1\n")
    ids = range(domains)
    if vendor == "intel":
        (root / "info/MB/min_bandwidth").write_text("10\n")
        (root / "info/MB/bandwidth_gran").write_text("10\n")
        mb = ";".join(f"{i}=100" for i in ids)
    else:
        (root / "info/MB/min_bandwidth").write_text("0\n")
        (root / "info/MB/bandwidth_gran").write_text("1\n")
        mb = ";".join(f"{i}=2048" for i in ids)
    (root / "schemata").write_text("L3:" + ";".join(f"{i}={cbm}" for i in ids) + f"\nMB:{mb}\n")
    (root / "tasks").write_text("")
    return root
