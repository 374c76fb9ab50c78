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
