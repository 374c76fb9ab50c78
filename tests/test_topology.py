"""Core plans on fake sysfs/procfs trees: Intel 2 sockets x 8 cores x 2 SMT, an AMD part with four L3 domains
(CCX) per socket, and this development machine's shape (2 cores, no SMT). Property tests: no plan ever puts two
tenants (or a worker and an antagonist/probe) on one physical core, or crosses a socket unasked."""

from __future__ import annotations

import itertools
import json
import random

import pytest
from fakes import sysfs

from hera import machine, topology
from hera.cli import main
from hera.errors import ConfigError, HeraError, ResourceError


def _describe(tmp_path, name, **shape):
    root = sysfs(tmp_path / name, **shape)
    return machine.describe_uncached(sys_root=root, proc_root=tmp_path, resctrl_root=tmp_path / "none",
                                     check_perf=False)


@pytest.fixture()
def intel(tmp_path):
    return topology.Topology.from_description(_describe(tmp_path, "intel", sockets=2, cores=8, smt=2), "intel")


@pytest.fixture()
def amd(tmp_path):
    return topology.Topology.from_description(
        _describe(tmp_path, "amd", sockets=2, cores=16, smt=2, l3_per_socket=4), "amd")


@pytest.fixture()
def small(tmp_path):
    return topology.Topology.from_description(_describe(tmp_path, "small", sockets=1, cores=2), "small")


def test_description_has_numa_l3_and_every_l3_domain(tmp_path):
    d = _describe(tmp_path, "amd", sockets=2, cores=16, smt=2, l3_per_socket=4)
    assert d["logical_cpus"] == 64 and d["physical_cores"] == 32 and d["sockets"] == 2
    cpu33 = next(c for c in d["topology"] if c["cpu"] == 33)
    assert cpu33 == {**cpu33, "siblings": [1, 33], "socket": 0, "numa": 0, "l3": 0}
    assert [dom["id"] for dom in d["l3_domains"]] == list(range(8))
    assert d["l3_domains"][1]["cpus"] == [4, 5, 6, 7, 36, 37, 38, 39] and d["l3_domains"][1]["ways"] == 11
    json.dumps(d)


def test_intel_two_sockets_smt(intel):
    p = topology.plan(intel)
    assert p.sockets == (0,) and p.numa_nodes == (0,)
    assert p.harness_cpus == (0, 16)  # one physical core, both of its threads
    assert p.worker_cpus == tuple(range(1, 8)) and p.idle_cpus == tuple(range(17, 24))
    assert p.workers(3) == (1, 2, 3) and p.split(2) == ((1, 2), (3, 4, 5, 6, 7))
    m = p.memory()
    assert (m.worker, m.antagonists, m.probe, m.pressure_workers) == ((1,), (2, 3, 4, 5, 6, 7), (7,), (1, 2, 3, 4, 5, 6))
    both = topology.plan(intel, sockets="all")
    assert both.sockets == (0, 1) and both.worker_cpus == tuple(range(1, 16)) and both.numa_nodes == (0, 1)
    assert topology.plan(intel, harness_cores=0).worker_cpus == tuple(range(8))
    with pytest.raises(ResourceError, match="8 worker"):
        p.workers(8)


def test_amd_ccx_order_and_memory_plan_share_one_l3(amd):
    p = topology.plan(amd)
    assert p.harness_cpus == (0, 32) and p.worker_cpus == tuple(range(1, 16))
    assert p.l3_groups == ((1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15))
    m = p.memory()  # worker, antagonists and probe in one CCX: they share its L3
    assert (m.worker, m.antagonists, m.probe, m.pressure_workers) == ((1,), (2, 3), (3,), (1, 2))
    # the socket with more usable cores is chosen
    p1 = topology.plan(amd, allowed=[c for c in range(64) if c % 32 not in range(5)])
    assert p1.sockets == (1,) and p1.worker_cpus[0] == 17 and p1.harness_cpus == (16, 48)


def test_two_core_machine_keeps_todays_layout(small):
    p = topology.plan(small)
    assert p.harness_cpus == () and p.worker_cpus == (0, 1) and p.idle_cpus == ()
    m = p.memory()
    assert (m.worker, m.antagonists, m.probe, m.pressure_workers) == ((0,), (1,), (1,), (0,))
    one = topology.plan(small, allowed=[1])
    assert one.worker_cpus == (1,) and one.memory().antagonists == () and "not observable" in one.memory().note
    with pytest.raises(ResourceError, match="at least 2 usable core"):
        one.splits()


def test_offline_cpus_are_a_one_line_error(tmp_path):
    d = _describe(tmp_path, "off", sockets=2, cores=8, smt=2, offline=(5, 21))
    topo = topology.Topology.from_description(d, "off")
    assert 5 not in topo.online and 21 not in topo.online
    p = topology.plan(topo)  # socket 1 has more online cores (8 against 7)
    assert p.sockets == (1,) and p.harness_cpus == (8, 24) and p.worker_cpus == tuple(range(9, 16))
    assert topology.plan(topo, allowed=[0, 1, 2, 3, 4, 6, 7]).worker_cpus == (0, 1, 2, 3, 4, 6, 7)  # < 8 cores: no harness core
    with pytest.raises(ResourceError) as exc:
        topology.plan(topo, allowed=[3, 4, 5, 6, 21])
    msg = str(exc.value)
    assert "offline CPUs 5,21" in msg and "\n" not in msg
    with pytest.raises(ResourceError, match="offline or absent 99"):
        topo.check_online([1, 99], "config key cores")


def test_smt_siblings_split_between_tenants_is_a_one_line_error(intel):
    topology.check_tenant_cores(intel, {"a": [1, 2], "b": [3, 4]})
    topology.check_tenant_cores(intel, {"a": [1, 17]})  # both threads of one core to one tenant: fine
    with pytest.raises(ResourceError) as exc:
        topology.check_tenant_cores(intel, {"a": [1, 2], "b": [18]}, "server config")
    msg = str(exc.value)
    assert "CPU 2 (tenant 'a') and CPU 18 (tenant 'b') are SMT siblings" in msg and "\n" not in msg


def _core(topo, cpu):
    return topo.core_of(cpu).threads


def _check_plan(topo, p, sockets):
    def cores(cpus):
        return {_core(topo, c) for c in cpus}

    workers = p.worker_cpus
    assert len(cores(workers)) == len(workers)  # one thread per physical core
    assert not cores(workers) & cores(p.harness_cpus)
    assert not set(p.idle_cpus) & (set(workers) | set(p.harness_cpus))
    if sockets == 1:
        assert len({topo.core_of(c).socket for c in (*workers, *p.harness_cpus)}) == 1
    for w in range(1, p.n_workers + 1):
        assert p.workers(w) == workers[:w]
    for a, b in (p.splits() if p.n_workers >= 2 else []):
        assert a and b and not cores(a) & cores(b)  # never SMT siblings across tenants
        assert not (cores(a) | cores(b)) & cores(p.harness_cpus)
    for counts in ([1, p.n_workers - 1], [p.n_workers // 2, p.n_workers - p.n_workers // 2]):
        if min(counts) >= 1:
            sets = p.node(counts)
            assert not cores(sets[0]) & cores(sets[1])
    m = p.memory()
    assert not cores(m.worker) & cores(m.antagonists)
    assert not cores(m.probe) & cores(m.pressure_workers)
    if m.antagonists and not m.note:  # antagonists and probe share the worker's L3 domain
        l3 = {topo.core_of(c).l3 for c in (*m.worker, *m.antagonists, *m.probe, *m.pressure_workers)}
        assert len(l3) == 1


@pytest.mark.slow  # 60 random CPU subsets x 6 option pairs per machine shape
@pytest.mark.parametrize("shape", ["intel", "amd", "small"])
def test_no_plan_splits_a_core_or_crosses_a_socket_unasked(shape, request):
    topo = request.getfixturevalue(shape)
    rng = random.Random(13)
    cpus = sorted(topo.online)
    for trial in range(60):
        allowed = rng.sample(cpus, rng.randint(1, len(cpus))) if trial else cpus
        for harness, sockets in itertools.product(("auto", 0, 1), (1, "all")):
            try:
                p = topology.plan(topo, allowed, harness_cores=harness, sockets=sockets)
            except ResourceError as exc:  # e.g. one core and a harness core asked for
                assert "leaves no worker core" in str(exc)
                continue
            assert set(p.worker_cpus) | set(p.harness_cpus) <= set(allowed)
            _check_plan(topo, p, sockets)


def test_plan_from_a_description_file_or_env(tmp_path, monkeypatch):
    d = _describe(tmp_path, "intel", sockets=2, cores=8, smt=2)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(d))
    p = topology.study_plan({"cores": "auto", "machine": str(path)})
    assert p.worker_cpus == tuple(range(1, 8)) and str(path) in p.source
    monkeypatch.setenv(topology.MACHINE_ENV, str(path))
    assert topology.study_plan({"cores": "auto", "topology": {"harness_cores": 2}}).worker_cpus == tuple(range(2, 8))
    old = json.loads(json.dumps(d))  # a description written before per-CPU numa/l3 entries existed
    for c in old["topology"]:
        del c["numa"], c["l3"]
    path.write_text(json.dumps(old))
    assert topology.study_plan({"cores": "auto"}).worker_cpus == tuple(range(1, 8))
    with pytest.raises(ConfigError, match="does not exist"):
        topology.study_plan({"cores": "auto", "machine": str(tmp_path / "nope.json")})
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match="no 'topology' list"):
        topology.study_plan({"cores": "auto", "machine": str(tmp_path / "bad.json")})


def test_topology_cli(tmp_path, capsys):
    d = _describe(tmp_path, "amd", sockets=2, cores=16, smt=2, l3_per_socket=4)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(d))
    assert main(["topology", "--machine", str(path), "--out", str(tmp_path / "plan.json")]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["harness_cpus"] == [0, 32] and doc["scalability"]["3"] == [1, 2, 3]
    assert doc["colocation"][0] == {"a": [1], "b": list(range(2, 16))} and doc["t1_cpu"] == 1
    assert json.loads((tmp_path / "plan.json").read_text()) == doc


def test_live_machine_plan_uses_usable_cpus():
    p = topology.study_plan({"cores": "auto"})
    assert set(p.worker_cpus) <= set(machine.describe()["usable_cpus"]) and p.n_workers >= 1
    with pytest.raises(HeraError, match="10000"):
        topology.study_plan({"cores": [10_000]})


def test_cpulist():
    assert topology.cpulist([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8" and topology.cpulist([]) == ""


def test_server_config_refuses_siblings_split_between_tenants(intel, monkeypatch):
    from hera.server import config as server_config

    monkeypatch.setattr(topology, "live_topology", lambda: intel)
    d = {"scale": "ci", "runner": "synthetic", "tenants": [{"name": "a", "model": "x", "cores": [1, 2]},
                                                            {"name": "b", "model": "y", "cores": [3]}]}
    server_config.from_dict(d, usable=list(range(32)))
    d["tenants"][1]["cores"] = [18]
    with pytest.raises(ConfigError) as exc:
        server_config.from_dict(d, usable=list(range(32)))
    assert "CPU 2 (tenant 'a') and CPU 18 (tenant 'b') are SMT siblings" in str(exc.value)
    server_config.from_dict(dict(d, allow_core_sharing=True), usable=list(range(32)))


def test_bench_takes_its_cores_from_the_plan(tmp_path, monkeypatch):
    from hera.bench.common import core_plan, worker_cores

    path = tmp_path / "m.json"
    path.write_text(json.dumps(_describe(tmp_path, "intel", sockets=2, cores=8, smt=2)))
    monkeypatch.setenv(topology.MACHINE_ENV, str(path))
    assert worker_cores("all") == list(range(1, 8)) and core_plan("all").harness_cpus == (0, 16)
    assert worker_cores("1,2,17") == [1, 2]  # one thread per physical core
    with pytest.raises(HeraError, match="--cores must be"):
        worker_cores("x")
