"""LLC ways / memory bandwidth through resctrl, against a fake tree (``fake_resctrl`` in conftest.py)."""

from __future__ import annotations

import logging
import os

import pytest

from hera.errors import ResourceError
from hera.server import Node, NodeConfig, TenantConfig
from hera.server.resctrl import Resctrl, way_layout

C0 = sorted(os.sched_getaffinity(0))[0]


def _mask(group) -> int:
    for line in (group / "schemata").read_text().splitlines():
        if line.startswith("L3:"):
            return int(line.split("=")[1], 16)
    raise AssertionError("no L3 line")


def _contiguous(m: int) -> bool:
    m >>= (m & -m).bit_length() - 1
    return m & (m + 1) == 0


def test_way_layout_is_contiguous_and_disjoint():
    masks = way_layout(["a", "b", "c"], {"a": 3, "b": None, "c": 4}, total=11)
    assert masks == {"a": 0b111, "c": 0b1111000, "b": 0b11110000000}
    assert all(_contiguous(m) for m in masks.values())
    assert masks["a"] & masks["c"] == 0 and (masks["a"] | masks["c"]) & masks["b"] == 0
    assert way_layout(["a", "b"], {"a": None, "b": None}, total=11) == {"a": 0x7FF, "b": 0x7FF}
    with pytest.raises(ResourceError, match="exceed the 11 ways"):
        way_layout(["a", "b"], {"a": 6, "b": 6}, total=11)
    with pytest.raises(ResourceError, match="exceed the 11 ways"):  # one way must stay for b
        way_layout(["a", "b"], {"a": 11, "b": None}, total=11)


def test_groups_schemata_tasks_and_cleanup(fake_resctrl):
    rc = Resctrl(fake_resctrl)
    assert rc.status == "available" and rc.total_ways == 11
    rc.add_tenant("a")
    rc.add_tenant("b", ways=2, mem_bw_percent=35)
    ga, gb = fake_resctrl / "hera-a", fake_resctrl / "hera-b"
    assert ga.is_dir() and gb.is_dir()
    assert _mask(gb) == 0b11 and _mask(ga) == 0x7FF & ~0b11
    assert "MB:0=40" in (gb / "schemata").read_text()  # rounded up to the 10 % granularity
    rc.set_llc_ways("a", 4)
    ma, mb = _mask(ga), _mask(gb)
    assert _contiguous(ma) and _contiguous(mb) and ma & mb == 0 and bin(ma).count("1") == 4
    with pytest.raises(ResourceError, match="exceed"):
        rc.set_llc_ways("b", 8)
    assert _mask(gb) == mb and rc.ways["b"] == 2  # unchanged after a refused request
    rc.assign("a", [os.getpid()])
    tasks = (ga / "tasks").read_text().split()
    assert str(os.getpid()) in tasks and len(tasks) == len(os.listdir(f"/proc/{os.getpid()}/task"))
    st = rc.tenant_state("a")
    assert st["llc_partitioning"] == "available" and st["llc_ways"] == 4 and st["llc_mask"] == f"{ma:x}"
    rc.close()
    assert not ga.exists() and not gb.exists() and (fake_resctrl / "schemata").exists()


def test_closid_limit(fake_resctrl):
    (fake_resctrl / "info/L3/num_closids").write_text("2\n")
    rc = Resctrl(fake_resctrl)
    rc.add_tenant("a")
    with pytest.raises(ResourceError, match="CLOSIDs"):
        rc.add_tenant("b")
    rc.close()


def test_absent_resctrl_is_recorded_and_said_once(tmp_path, caplog):
    rc = Resctrl(tmp_path / "no-resctrl")
    assert rc.status == "unavailable" and "no resctrl filesystem" in rc.reason
    with caplog.at_level(logging.WARNING, logger="hera.server"):
        rc.add_tenant("a")
        rc.warn_once()
        rc.set_llc_ways("a", 3)
        rc.set_mem_bw("a", 50)
        rc.set_llc_ways("a", 5)
    msgs = [r.getMessage() for r in caplog.records if "LLC partitioning unavailable" in r.getMessage()]
    assert len(msgs) == 1 and "no resctrl filesystem" in msgs[0]
    assert rc.calls == [("llc_ways", "a", 3), ("mem_bw", "a", 50), ("llc_ways", "a", 5)]
    st = rc.tenant_state("a")
    assert st == {**st, "llc_partitioning": "unavailable", "llc_ways": None, "llc_ways_requested": 5,
                  "mem_bw_percent": None, "mem_bw_percent_requested": 50}
    with pytest.raises(ResourceError, match="integer >= 1"):
        rc.set_llc_ways("a", 0)
    rc.close()
    assert not (tmp_path / "no-resctrl").exists()


def test_node_with_fake_resctrl(fake_resctrl):
    cfg = NodeConfig(tenants=(TenantConfig("a", "syn", (C0,), llc_ways=3), TenantConfig("b", "syn", (C0,))),
                     runner="synthetic", resctrl_root=str(fake_resctrl), allow_core_sharing=True)
    with Node(cfg) as node:
        st = node.stats()
        for t in ("a", "b"):
            tasks = (fake_resctrl / f"hera-{t}" / "tasks").read_text().split()
            assert str(st[t].worker_pids[0]) in tasks
        node.set_llc_ways("b", 5)
        node.set_mem_bw("a", 50)
        ma, mb = _mask(fake_resctrl / "hera-a"), _mask(fake_resctrl / "hera-b")
        assert bin(ma).count("1") == 3 and bin(mb).count("1") == 5 and ma & mb == 0
        st = node.stats()
        assert st["a"].llc_ways == 3 and st["b"].llc_ways == 5 and st["a"].mem_bw_percent == 50
        r = node.submit("a", 0, 2).result(10)
        assert r.ok and r.llc_partitioning == "available"
        # a worker started by resize joins the group too
        node.resize("a", [C0])
    assert not (fake_resctrl / "hera-a").exists() and not (fake_resctrl / "hera-b").exists()


def test_node_without_resctrl_says_unavailable(tmp_path, caplog):
    cfg = NodeConfig(tenants=(TenantConfig("a", "syn", (C0,)),), runner="synthetic",
                     resctrl_root=str(tmp_path / "none"))
    with caplog.at_level(logging.WARNING, logger="hera.server"):
        with Node(cfg) as node:
            node.set_llc_ways("a", 2)
            node.set_mem_bw("a", 30)
            r = node.submit("a", 0, 1).result(10)
            st = node.stats()["a"]
    assert r.ok and r.llc_partitioning == "unavailable"
    assert st.llc_partitioning == "unavailable" and st.llc_ways is None and st.llc_ways_requested == 2
    assert sum("LLC partitioning unavailable" in rec.getMessage() for rec in caplog.records) == 1


# ------------------------------------------------------------------------ verified, per domain, AMD, harness
from pathlib import Path  # noqa: E402

from fakes import resctrl as fake_tree  # noqa: E402
from hera import machine  # noqa: E402


def _line(group, resource: str) -> str:
    return next(ln for ln in (group / "schemata").read_text().splitlines() if ln.startswith(resource + ":"))


def test_available_means_a_test_group_was_created_written_and_removed(tmp_path):
    root = fake_tree(tmp_path / "rc", "intel", domains=2)
    info = machine.resctrl_info(root, tmp_path)
    assert info["available"] and info["verified"] and info["l3_domains"] == ["0", "1"]
    assert info["mb_unit"] == "percent" and info["mb_max"] == 100
    assert not list(root.glob("hera-check-*"))  # the test group is gone


def test_unwritable_resctrl_plans_no_way_splits_and_refuses_requests(tmp_path, monkeypatch):
    root = fake_tree(tmp_path / "rc", "intel")
    real_mkdir = Path.mkdir

    def denied(self, *a, **kw):  # what a non-root user gets from a real resctrl mount
        if self.parent == root:
            raise PermissionError(13, "Permission denied", str(self))
        return real_mkdir(self, *a, **kw)

    monkeypatch.setattr(Path, "mkdir", denied)
    info = machine.resctrl_info(root, tmp_path)
    assert not info["available"] and info["l3_ways"] == 11
    assert info["reason"].startswith(f"cannot create a resctrl group {root}/hera-check-") and "needs root" in info["reason"]
    from hera.profile.colocation import plan_splits

    splits, part = plan_splits([0, 1], info, True)
    assert part == "unavailable" and all(s.ways_a is None for s in splits)
    rc = Resctrl(root)
    assert rc.status == "unavailable" and rc.unwritable
    rc.add_tenant("a")  # a node that asks for nothing still runs, unpartitioned
    for call in (lambda: rc.add_tenant("b", ways=2), lambda: rc.set_llc_ways("a", 3), lambda: rc.set_mem_bw("a", 50)):
        with pytest.raises(ResourceError) as exc:
            call()
        assert f"resctrl at {root} cannot be written" in str(exc.value) and "\n" not in str(exc.value)
    rc.close()


def test_intel_two_domains_schemata_per_domain_and_harness_group(tmp_path):
    root = fake_tree(tmp_path / "rc", "intel", domains=2)
    rc = Resctrl(root, proc_root=tmp_path)
    rc.add_harness([os.getpid()])
    harness = next(root.glob("hera-harness-*"))
    assert _line(harness, "L3") == "L3:0=400;1=400"  # the top way, on both sockets' L3
    assert str(os.getpid()) in (harness / "tasks").read_text().split()
    rc.add_tenant("a", ways=4, mem_bw_percent=35)
    rc.add_tenant("b")
    assert _line(root / "hera-a", "L3") == "L3:0=f;1=f" and _line(root / "hera-a", "MB") == "MB:0=40;1=40"
    assert _line(root / "hera-b", "L3") == "L3:0=7f0;1=7f0"  # shared block: the rest, the harness's way included
    with pytest.raises(ResourceError, match="1 for the harness"):
        rc.set_llc_ways("b", 7)  # 4 + 7 + 1 > 11
    rc.set_llc_ways("b", 6)
    rc.set_llc_ways("a", None)  # back to the shared block
    assert _line(root / "hera-a", "L3") == "L3:0=7c0;1=7c0" and rc.tenant_state("a")["llc_ways"] is None
    rc.close()
    assert not list(root.glob("hera-*"))


def test_amd_several_domains_absolute_bandwidth(tmp_path):
    root = fake_tree(tmp_path / "rc", "amd", domains=8, cbm="ffff")
    info = machine.resctrl_info(root, tmp_path)
    assert info["available"] and info["l3_ways"] == 16 and info["l3_domains"] == [str(i) for i in range(8)]
    assert (info["mb_unit"], info["mb_max"]) == ("eighth_gbps", 2048)
    rc = Resctrl(root, proc_root=tmp_path)
    rc.add_tenant("a", ways=3)
    rc.set_mem_bw("a", 50)  # half of 2048 x 1/8 GB/s: 128 GB/s, an absolute value, on every CCX
    assert _line(root / "hera-a", "MB") == "MB:" + ";".join(f"{i}=1024" for i in range(8))
    assert _line(root / "hera-a", "L3") == "L3:" + ";".join(f"{i}=7" for i in range(8))
    st = rc.tenant_state("a")
    assert st["mem_bw_value"] == 1024 and st["mem_bw_unit"] == "eighth_gbps" and st["mem_bw_percent"] == 50
    rc.close()


def test_mba_in_mbps_cannot_take_a_percentage(tmp_path):
    root = fake_tree(tmp_path / "rc", "intel")
    (root / "schemata").write_text("L3:0=7ff\nMB:0=4294967295\n")
    rc = Resctrl(root, proc_root=tmp_path)
    assert rc.mb_unit == "mbps"
    rc.add_tenant("a")
    with pytest.raises(ResourceError, match=f"resctrl at {root} takes memory bandwidth in MB/s"):
        rc.set_mem_bw("a", 50)
    rc.close()


def test_node_puts_its_own_threads_in_the_harness_group(fake_resctrl):
    cfg = NodeConfig(tenants=(TenantConfig("a", "syn", (C0,)),), runner="synthetic",
                     resctrl_root=str(fake_resctrl))
    with Node(cfg):
        harness = list(fake_resctrl.glob("hera-harness-*"))
        assert len(harness) == 1 and str(os.getpid()) in (harness[0] / "tasks").read_text().split()
    assert not list(fake_resctrl.glob("hera-*"))
