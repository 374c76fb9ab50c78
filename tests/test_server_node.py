"""The serving node with the synthetic runner: tenants, sub-batches, queue limit, resize under load, stop."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from hera.errors import ResourceError
from hera.server import (BadRequestError, Node, NodeConfig, NodeStoppedError, QueueFull, TenantConfig,
                         UnknownTenantError, render_prometheus)

USABLE = sorted(os.sched_getaffinity(0))
C0 = USABLE[0]
C1 = USABLE[1] if len(USABLE) > 1 else USABLE[0]


def node_config(*tenants: TenantConfig, **kw) -> NodeConfig:
    kw.setdefault("allow_core_sharing", len(set(c for t in tenants for c in t.cores)) < sum(len(t.cores) for t in tenants))
    return NodeConfig(tenants=tuple(tenants), runner="synthetic", resctrl_root=kw.pop("resctrl_root", "/nonexistent"),
                      **kw)


@pytest.fixture()
def two_tenants():
    cfg = node_config(TenantConfig("a", "syn-a", (C0,), batch_size=64, options={"delay_ms": 1}),
                      TenantConfig("b", "syn-b", (C1,), batch_size=16, max_items=512, sla_ms=20.0))
    node = Node(cfg).start()
    yield node
    node.stop(drain=False)


def test_two_tenants_serve_and_record(two_tenants):
    node = two_tenants
    fa = node.submit("a", 0, 10)
    fb = node.submit("b", 5, 40, want_scores=True)
    ra, rb = fa.result(10), fb.result(10)
    assert ra.ok and rb.ok, (ra.error, rb.error)
    assert ra.tenant == "a" and ra.n_items == 10 and ra.sub_batches == 1 and ra.scores is None
    assert rb.sub_batches == 3 and rb.scores.shape == (40, 1) and rb.scores.dtype == np.float32
    for r in (ra, rb):
        assert r.t_submit_ns <= r.t_start_ns <= r.t_end_ns <= r.t_done_ns
        assert r.workers and r.llc_partitioning == "unavailable"
    st = node.stats()
    assert set(st) == {"a", "b"}
    assert st["a"].completed_queries == 1 and st["b"].completed_queries == 1 and st["b"].sla_ms == 20.0
    assert st["a"].latency_ms_p95 > 0 and st["a"].cores == (C0,) and st["a"].workers_ready == 1
    assert st["a"].llc_partitioning == "unavailable"
    text = render_prometheus(st)
    assert 'hera_tenant_latency_ms{tenant="b",quantile="0.95"}' in text
    assert node.library_size("a") == 4096
    info = node.tenant_info("b")
    assert info["dense_in"] == 16 and info["n_ids"] == 4 and info["max_items"] == 512
    assert node.tenants["b"].spec.tables[0].lookups == 4 and node.tenants["b"].ready == 1


def test_sub_batch_split_keeps_score_order(two_tenants):
    node = two_tenants
    r = node.submit("a", 100, 300, want_scores=True).result(20)
    assert r.ok and r.sub_batches == 5 and r.scores.shape == (300, 1)
    part = node.submit("a", 164, 64, want_scores=True).result(10)  # = sub-batch 1 of the big query
    one = node.submit("a", 399, 1, want_scores=True).result(10)    # = its last item
    np.testing.assert_allclose(part.scores, r.scores[64:128], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(one.scores, r.scores[299:300], rtol=1e-5, atol=1e-6)
    # the library wraps: items 4090..4095 then 0..3
    w = node.submit("a", 4090, 10, want_scores=True).result(10)
    head = node.submit("a", 0, 4, want_scores=True).result(10)
    np.testing.assert_allclose(w.scores[6:], head.scores, rtol=1e-5, atol=1e-6)


def test_submit_tensors_matches_library_path(two_tenants):
    node = two_tenants
    rng = np.random.default_rng(3)
    dense = rng.standard_normal((70, 16), dtype=np.float32)
    ids = rng.integers(0, 1000, size=(70, 4))
    r = node.submit_tensors("b", dense, ids).result(10)
    assert r.ok and r.scores.shape == (70, 1) and r.sub_batches == 5
    r2 = node.submit_tensors("b", dense[:16], ids[:16]).result(10)
    np.testing.assert_allclose(r2.scores, r.scores[:16], rtol=1e-5, atol=1e-6)
    got = []
    done = threading.Event()
    node.submit_tensors("b", dense[:3], ids[:3], on_done=lambda res: (got.append(res), done.set()))
    assert done.wait(10) and got[0].ok and got[0].scores.shape == (3, 1)


def test_bad_requests_and_unknown_tenant(two_tenants):
    node = two_tenants
    with pytest.raises(UnknownTenantError, match="unknown tenant 'zz'; served: a, b"):
        node.submit("zz", 0, 1)
    for n in (0, 513, -1):
        with pytest.raises(BadRequestError, match="outside 1..512"):
            node.submit("b", 0, n)
    with pytest.raises(BadRequestError, match="sample_start"):
        node.submit("b", 4096, 1)
    with pytest.raises(BadRequestError, match=r"dense input must have shape \[n, 16\]"):
        node.submit_tensors("b", np.zeros((2, 3), np.float32), np.zeros((2, 4), np.int64))
    with pytest.raises(BadRequestError, match=r"ids must have shape \[2, 4\]"):
        node.submit_tensors("b", np.zeros((2, 16), np.float32), np.zeros((2, 5), np.int64))
    with pytest.raises(BadRequestError, match="id column 1 must lie in 0..999"):
        node.submit_tensors("b", np.zeros((1, 16), np.float32), np.array([[0, 1000, 0, 0]]))
    with pytest.raises(BadRequestError, match="ids must be integers"):
        node.submit_tensors("b", np.zeros((1, 16), np.float32), np.zeros((1, 4), np.float32))
    with pytest.raises(ResourceError, match="non-empty list"):
        node.resize("a", [])
    assert node.submit("b", 0, 1).result(10).ok  # nothing broke


@pytest.mark.slow
def test_queue_limit_rejects_then_recovers():
    cfg = node_config(TenantConfig("slow", "syn", (C0,), queue_limit=2, options={"delay_ms": 250}))
    with Node(cfg) as node:
        # one runs; 2 wait (in the queue or the shared task pipe: no worker has taken them); the next is refused
        futs = [node.submit("slow", 0, 1)]
        _wait_taken(node, "slow")
        futs += [node.submit("slow", i, 1) for i in (1, 2)]
        with pytest.raises(QueueFull, match="queue full"):
            node.submit("slow", 0, 1)
        rejected = []
        node.issue("slow", 0, 1, rejected.append)  # SUT protocol: reported as a failed result
        assert rejected and not rejected[0].ok and "queue full" in rejected[0].error
        assert all(f.result(10).ok for f in futs)
        assert node.submit("slow", 0, 1).result(10).ok
        st = node.stats()["slow"]
        assert st.rejected_queries == 2 and st.completed_queries == len(futs) + 1 and st.queued_queries == 0


def _wait_taken(node, tenant: str, timeout_s: float = 20.0) -> None:
    """Wait until every worker of ``tenant`` runs a sub-batch (its slot names one)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if all(w.slot.value for w in list(node.tenants[tenant].workers.values())):
            return
        time.sleep(0.005)
    raise AssertionError("no worker took a sub-batch")


def _affinity(pids):
    return [sorted(os.sched_getaffinity(p)) for p in pids]


@pytest.mark.slow
def test_resize_under_load_loses_nothing():
    if len(USABLE) >= 3:
        a0, b0, a1, b1 = [USABLE[0], USABLE[1]], [USABLE[2]], [USABLE[0]], [USABLE[1], USABLE[2]]
    else:  # 2-core machine: tenants share core C0 (allow_core_sharing), core C1 moves from a to b
        a0, b0, a1, b1 = [C0, C1], [C0], [C0], [C0, C1]
    cfg = node_config(TenantConfig("a", "syn", tuple(a0), batch_size=8, options={"delay_ms": 2}),
                      TenantConfig("b", "syn", tuple(b0), batch_size=8, options={"delay_ms": 2}),
                      allow_core_sharing=len(USABLE) < 3)
    node = Node(cfg).start()
    try:
        a_pids_before = node.stats()["a"].worker_pids
        assert len(a_pids_before) == 2
        futures, stop = [], threading.Event()

        def load():
            rng = np.random.default_rng(0)
            while not stop.is_set():
                for t in ("a", "b"):
                    futures.append(node.submit(t, int(rng.integers(0, 4000)), int(rng.integers(1, 30))))
                time.sleep(0.004)

        th = threading.Thread(target=load)
        th.start()
        time.sleep(0.4)
        node.resize("a", a1)
        node.resize("b", b1)
        time.sleep(0.5)
        stop.set()
        th.join()
        results = [f.result(20) for f in futures]
        assert len(results) > 50
        bad = [r.error for r in results if not r.ok]
        assert not bad, bad[:3]
        assert all(r.t_end_ns >= r.t_start_ns > 0 for r in results)
        st = node.stats()
        assert list(st["a"].cores) == a1 and list(st["b"].cores) == sorted(b1)
        assert st["a"].workers_ready == 1 and st["b"].workers_ready == 2
        assert _affinity(st["a"].worker_pids) == [a1]
        assert sorted(_affinity(st["b"].worker_pids)) == sorted([[c] for c in b1])
        new_b = set(st["b"].worker_pids) - set()
        late_b = [r for r in results[-20:] if r.tenant == "b"]
        assert late_b and st["a"].completed_queries + st["b"].completed_queries == len(results)
        assert len(new_b) == 2
        # the retired worker of a has exited
        gone = set(a_pids_before) - set(st["a"].worker_pids)
        assert len(gone) == 1
        deadline = time.time() + 5
        while time.time() < deadline and any(os.path.exists(f"/proc/{p}") and _alive(p) for p in gone):
            time.sleep(0.05)
        assert not any(_alive(p) for p in gone)
        # queries submitted after the resize use the new worker of b
        rs = [node.submit("b", 0, 16).result(10) for _ in range(4)]
        ids_b = {w for r in rs for w in r.workers}
        assert len(ids_b) >= 1 and all(r.ok for r in rs)
    finally:
        node.stop(drain=False)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_resize_refuses_overlap_without_sharing():
    if len(USABLE) < 2:
        pytest.skip("needs two cores")
    cfg = node_config(TenantConfig("a", "syn", (C0,)), TenantConfig("b", "syn", (C1,)), allow_core_sharing=False)
    with Node(cfg) as node:
        with pytest.raises(ResourceError, match=f"core {C1} is given to both"):
            node.resize("a", [C0, C1])
        with pytest.raises(ResourceError, match="not on this machine"):
            node.resize("a", [max(USABLE) + 1])
        assert node.stats()["a"].cores == (C0,)


def test_drain_on_stop_serves_everything():
    cfg = node_config(TenantConfig("a", "syn", (C0,), options={"delay_ms": 20}))
    node = Node(cfg).start()
    futs = [node.submit("a", i, 3) for i in range(6)]
    node.stop(drain=True)
    assert all(f.done() and f.result().ok for f in futs)
    with pytest.raises(NodeStoppedError):
        node.submit("a", 0, 1)


def test_stop_without_drain_fails_queued_queries():
    cfg = node_config(TenantConfig("a", "syn", (C0,), options={"delay_ms": 100}))
    node = Node(cfg).start()
    futs = [node.submit("a", i, 1) for i in range(5)]
    time.sleep(0.03)
    node.stop(drain=False)
    results = [f.result(0) for f in futs]  # every future is resolved when stop returns
    # the running sub-batch finishes; the next one, handed to the shared task pipe but taken by no worker,
    # fails like the queued ones
    assert results[0].ok
    assert all(not r.ok and "shutting down" in r.error for r in results[1:])
    assert node.stats()["a"].failed_queries == len(futs) - 1


def test_worker_core_sets():
    from hera.server.tenant import worker_core_sets

    assert worker_core_sets((3, 1, 2), 1) == [(1,), (2,), (3,)]
    assert worker_core_sets((0, 1, 2), 2) == [(0, 1), (2,)]


def test_multi_core_worker_is_pinned_to_all_its_cores():
    if len(USABLE) < 2:
        pytest.skip("needs two cores")
    cfg = node_config(TenantConfig("a", "syn", (C0, C1), cores_per_worker=2))
    with Node(cfg) as node:
        st = node.stats()["a"]
        assert st.workers_ready == 1 and st.worker_cores == ((C0, C1),)
        assert _affinity(st.worker_pids) == [[C0, C1]]
        assert node.submit("a", 0, 100).result(10).ok
