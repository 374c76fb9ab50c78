"""Fault handling: a killed worker, a model that raises, a worker that cannot start."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from hera.server import Node, NodeConfig, TenantConfig, WorkerStartError

C0 = sorted(os.sched_getaffinity(0))[0]


def node_config(*tenants: TenantConfig) -> NodeConfig:
    return NodeConfig(tenants=tuple(tenants), runner="synthetic", resctrl_root="/nonexistent",
                      allow_core_sharing=True)


def test_killed_worker_fails_its_queries_and_is_replaced():
    cfg = node_config(TenantConfig("a", "syn", (C0,), batch_size=4, options={"delay_ms": 150}))
    with Node(cfg) as node:
        (pid,) = node.stats()["a"].worker_pids
        running = node.submit("a", 0, 8)   # two sub-batches: one runs, one waits
        queued = node.submit("a", 100, 2)
        time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        r = running.result(10)  # never hangs
        assert not r.ok and "died" in r.error and "-9" in r.error and f"pid {pid}" in r.error
        # the replacement starts on the same core and serves the query that was waiting
        q = queued.result(20)
        assert q.ok, q.error
        st = node.stats()["a"]
        assert st.workers_ready == 1 and st.worker_pids != (pid,)
        assert sorted(os.sched_getaffinity(st.worker_pids[0])) == [C0]
        assert st.failed_queries == 1
        later = [node.submit("a", i, 3).result(10) for i in range(3)]
        assert all(x.ok for x in later)


def test_model_error_fails_only_that_query():
    cfg = node_config(TenantConfig("a", "syn", (C0,), batch_size=16, options={"fail_sample": 5}))
    with Node(cfg) as node:
        (pid,) = node.stats()["a"].worker_pids
        bad = node.submit("a", 0, 40).result(10)
        assert not bad.ok and "ValueError: synthetic model failure on sample 5" in bad.error
        assert "sub-batch 0" in bad.error
        good = node.submit("a", 6, 40, want_scores=True).result(10)
        assert good.ok and good.scores.shape == (40, 1)
        st = node.stats()["a"]
        assert st.worker_pids == (pid,) and st.failed_queries == 1 and st.completed_queries == 1


def test_worker_start_failure_raises_and_leaves_nothing_running():
    cfg = node_config(TenantConfig("a", "syn", (C0,), options={"no_such_option": 1}))
    node = Node(cfg)
    with pytest.raises(WorkerStartError, match="unknown synthetic runner option 'no_such_option'"):
        node.start()
    assert node.state == "stopped"
    deadline = time.time() + 5
    while time.time() < deadline and [p for p in multiprocessing.active_children() if "hera-worker" in p.name]:
        time.sleep(0.05)
    assert not [p for p in multiprocessing.active_children() if "hera-worker" in p.name]


def test_zoo_runner_without_built_library_fails_clearly(tmp_path):
    from hera.errors import NotBuiltError
    from hera.server.config import known_models

    if "ncf" not in known_models():
        pytest.skip("model specs not in this tree")
    cfg = NodeConfig(tenants=(TenantConfig("a", "ncf", (C0,)),), runner="zoo", resctrl_root="/nonexistent",
                     models_root=str(tmp_path / "models"), datasets_root=str(tmp_path / "data"))
    node = Node(cfg)
    with pytest.raises(NotBuiltError, match="sample library of 'ncf' not found"):
        node.start()
    assert node.state == "new" and not node.tenants
