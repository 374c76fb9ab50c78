"""The node with real zoo models (ci scale, built into tmp dirs): scores match the model run in-process."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("hera.workload.library", reason="the workload layer (sample libraries) is not in this tree")
pytest.importorskip("hera.zoo.load", reason="the model zoo is not in this tree")

from hera.server import Node, NodeConfig, TenantConfig  # noqa: E402

pytestmark = pytest.mark.slow  # serves built TorchRec models

USABLE = sorted(os.sched_getaffinity(0))
C0, C1 = USABLE[0], USABLE[-1]
MODELS = ("dlrm_rmc1", "ncf")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from hera.workload.cli import build_libraries
    from hera.zoo.build import build_model_files

    root = tmp_path_factory.mktemp("zoo")
    for m in MODELS:
        build_model_files(m, "ci", out_root=root / "models")
    build_libraries("ci", list(MODELS), 300, out_root=root / "datasets")
    return root


@pytest.fixture(scope="module")
def node(built):
    cfg = NodeConfig(tenants=(TenantConfig("rmc1", "dlrm_rmc1", (C0,), batch_size=32, sla_ms=100.0),
                              TenantConfig("ncf", "ncf", (C1,), batch_size=16)),
                     scale="ci", runner="zoo", models_root=str(built / "models"),
                     datasets_root=str(built / "datasets"), resctrl_root="/nonexistent",
                     allow_core_sharing=C0 == C1)
    n = Node(cfg).start()
    yield n
    n.stop(drain=True)


def _reference(built, model: str, start: int, n: int) -> np.ndarray:
    """The same items scored in this process (memory-mapped model and library, no server)."""
    import torch

    from hera.workload.library import SampleLibrary
    from hera.zoo.inputs import make_inputs
    from hera.zoo.load import built_spec, load_model

    spec = built_spec(model, "ci", root=built / "models")
    mod = load_model(model, "ci", root=built / "models")
    dense, ids = SampleLibrary.open(built / "datasets" / model).slice(start, n)
    with torch.inference_mode():
        return mod(*make_inputs(spec, np.asarray(dense), np.asarray(ids))).numpy()


def test_two_zoo_models_serve_real_scores(node, built):
    r1 = node.submit("rmc1", 10, 100, want_scores=True).result(60)  # 4 sub-batches of <= 32
    r2 = node.submit("ncf", 0, 40, want_scores=True).result(60)
    assert r1.ok and r2.ok, (r1.error, r2.error)
    assert r1.sub_batches == 4 and r1.scores.shape == (100, 1) and r2.scores.shape == (40, 1)
    np.testing.assert_allclose(r1.scores, _reference(built, "dlrm_rmc1", 10, 100), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(r2.scores, _reference(built, "ncf", 0, 40), rtol=1e-4, atol=1e-5)
    st = node.stats()
    assert st["rmc1"].completed_queries == 1 and st["rmc1"].sla_ms == 100.0 and st["ncf"].library_items == 300
    info = node.tenant_info("ncf")
    assert info["dense_in"] == 0 and info["n_ids"] == 4 and info["model"] == "ncf"


def test_workers_memory_map_the_tables(node, built):
    for tenant, model in (("rmc1", "dlrm_rmc1"), ("ncf", "ncf")):
        (pid,) = node.stats()[tenant].worker_pids
        maps = open(f"/proc/{pid}/maps").read()
        assert str(built / "models" / model) in maps  # weights are file-backed mappings, not copies


def test_tensor_path_and_bad_ids(node, built):
    from hera.server import BadRequestError
    from hera.workload.library import SampleLibrary

    dense, ids = SampleLibrary.open(built / "datasets" / "ncf").slice(5, 7)
    r = node.submit_tensors("ncf", np.asarray(dense), np.asarray(ids)).result(60)
    assert r.ok
    np.testing.assert_allclose(r.scores, _reference(built, "ncf", 5, 7), rtol=1e-4, atol=1e-5)
    bad = np.array(ids, copy=True)
    bad[0, 2] = 10**9
    with pytest.raises(BadRequestError, match="id column 2"):
        node.submit_tensors("ncf", np.asarray(dense), bad)


def test_workers_prefault_their_tables_numa_local(node, built, monkeypatch):
    from hera import topology
    from hera.zoo.load import numa_pages, table_files

    info = node.tenant_info("rmc1")
    tables = table_files("dlrm_rmc1", "ci", root=built / "models")[0]
    lib = built / "datasets" / "dlrm_rmc1"
    arrays = sorted(lib.glob("*.npy"))
    assert [f.name for f in arrays] == ["dense.npy", "ids.npy"]
    library = sum(f.stat().st_size for f in arrays) - 2 * 128  # less the .npy headers
    # every table and sample-library page mapped at start
    assert info["prefaulted_bytes"] >= tables.stat().st_size + library
    pid = node.stats()["rmc1"].worker_pids[0]
    pages = numa_pages(pid, tables)
    assert sum(pages.values()) * 4096 >= tables.stat().st_size  # resident in the worker, on its node(s)
    # one NUMA node here: nothing to move; with two (fake topology) the tables' cached pages are dropped first
    cfg = node.config.tenant("rmc1")
    assert node._numa_local(cfg) == 0
    fake = topology.Topology(tuple(topology.PhysicalCore((c,), 0, c, c % 2, 0) for c in USABLE + [99]),
                             frozenset(USABLE + [99]))
    monkeypatch.setattr(topology, "live_topology", lambda: fake)
    assert node._numa_local(cfg) == tables.stat().st_size


def test_workers_run_on_the_steady_heap(node):
    from hera.profile.service import _allocator
    from hera.zoo.allocator import _libc

    expected = "glibc steady heap" if _libc() is not None else "unchanged: not glibc"
    assert _allocator(node, "rmc1").startswith(expected)  # reported by the worker itself
    assert _allocator(node, "no-such-tenant") == "unknown"
