import json

import pytest

from hera import machine
from hera.errors import ResourceError


def test_parse_cpulist():
    assert machine.parse_cpulist("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11]
    assert machine.parse_cpulist("") == []


def test_describe_fake_tree(fake_sys, tmp_path):
    d = machine.describe_uncached(sys_root=fake_sys, proc_root=tmp_path, check_perf=False)
    assert d["logical_cpus"] == 4
    assert d["physical_cores"] == 2
    assert d["sockets"] == 1
    assert d["topology"][0]["siblings"] == [0, 2]
    assert d["numa_nodes"] == {0: [0, 1, 2, 3]}
    assert d["llc"]["level"] == 3 and d["llc"]["ways"] == 16
    assert d["llc_bytes"] == 32 * 1024**2
    assert d["resctrl"]["available"] is False and "no resctrl" in d["resctrl"]["reason"]
    assert d["llc_partitioning"] == "unavailable"
    json.dumps(d)  # JSON-able


def test_resctrl_detected_in_fake_tree(fake_sys, fake_resctrl, tmp_path):
    d = machine.describe_uncached(sys_root=fake_sys, proc_root=tmp_path, resctrl_root=fake_resctrl,
                                  check_perf=False)
    assert d["resctrl"]["available"] is True
    assert d["resctrl"]["l3_ways"] == 11 and d["resctrl"]["num_closids"] == 16
    assert d["resctrl"]["mb_available"] is True
    assert d["llc_partitioning"] == "available"


def test_resctrl_mounted_without_l3(tmp_path):
    (tmp_path / "r/info").mkdir(parents=True)
    info = machine.resctrl_info(tmp_path / "r", tmp_path)
    assert info["available"] is False and "no L3" in info["reason"]


def test_real_machine_description_is_consistent():
    d = machine.describe()
    assert d["logical_cpus"] >= 1 and set(d["usable_cpus"]) <= {c["cpu"] for c in d["topology"]}
    assert d["memory_bytes"] >= d["memory_available_bytes"] > 0
    assert d["llc_partitioning"] in ("available", "unavailable")


def test_check_fits_refuses_with_one_line():
    machine.check_fits(1_000, "tiny", available_memory_bytes=10_000)
    with pytest.raises(ResourceError) as exc:
        machine.check_fits(7_000_000_000, "model x at paper scale", available_memory_bytes=10_000_000_000)
    assert "\n" not in str(exc.value) and "model x at paper scale" in str(exc.value)


def test_check_cores_refuses_missing_core():
    with pytest.raises(ResourceError, match="cores"):
        machine.check_cores([10_000], "tenant a")


def test_bandwidth_probe_measures_something():
    bw = machine.memory_bandwidth_probe(size_bytes=8 * 1024**2, repeats=2)
    assert bw["copy_gbps_1thread"] > 0
