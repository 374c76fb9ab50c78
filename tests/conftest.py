"""Shared fixtures. Tests never write into the repository's models/build, datasets/ or results/."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture()
def fake_sys(tmp_path):
    """A fake sysfs tree: 4 logical CPUs on 2 cores (SMT), 1 socket, a 16-way 32 MiB L3."""
    root = tmp_path / "sys"
    cpu = root / "devices/system/cpu"
    (cpu).mkdir(parents=True)
    (cpu / "online").write_text("0-3\n")
    for i in range(4):
        topo = cpu / f"cpu{i}/topology"
        topo.mkdir(parents=True)
        (topo / "core_id").write_text(str(i % 2))
        (topo / "physical_package_id").write_text("0")
        (topo / "thread_siblings_list").write_text("0,2" if i % 2 == 0 else "1,3")
    for idx, (level, ctype, size, ways) in enumerate(
        [(1, "Data", "32K", "8"), (1, "Instruction", "32K", "8"), (2, "Unified", "1024K", "8"), (3, "Unified", "32768K", "16")]
    ):
        d = cpu / f"cpu0/cache/index{idx}"
        d.mkdir(parents=True)
        (d / "level").write_text(str(level))
        (d / "type").write_text(ctype)
        (d / "size").write_text(size)
        (d / "ways_of_associativity").write_text(ways)
        (d / "coherency_line_size").write_text("64")
        (d / "shared_cpu_list").write_text("0-3" if level == 3 else "0,2")
    node = root / "devices/system/node/node0"
    node.mkdir(parents=True)
    (node / "cpulist").write_text("0-3")
    return root


@pytest.fixture()
def fake_resctrl(tmp_path):
    """A fake mounted resctrl tree with 11 L3 ways, 16 CLOSIDs and memory-bandwidth allocation (Intel:
    percent, granularity 10)."""
    root = tmp_path / "resctrl"
    (root / "info/L3").mkdir(parents=True)
    (root / "info/MB").mkdir(parents=True)
    (root / "info/L3/cbm_mask").write_text("7ff\n")
    (root / "info/L3/num_closids").write_text("16\n")
    (root / "info/L3/min_cbm_bits").write_text("1\n")
    (root / "info/MB/min_bandwidth").write_text("10\n")
    (root / "info/MB/bandwidth_gran").write_text("10\n")
    (root / "schemata").write_text("L3:0=7ff\nMB:0=100\n")
    (root / "tasks").write_text("")
    return root
