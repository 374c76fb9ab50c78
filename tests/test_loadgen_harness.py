"""The harness's CPU time and saturation verdict in every run and trial; the load-generator process."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from hera.loadgen import LoadgenSettings, NodeSUT, driver, harness, search
from hera.loadgen import sut as suts

USABLE = sorted(os.sched_getaffinity(0))
C0 = USABLE[0]
C1 = USABLE[1] if len(USABLE) > 1 else USABLE[0]
FIXED = {"kind": "fixed", "items": 1}


def test_cpu_meter_on_a_fake_clock(monkeypatch):
    clock = {"wall": 100.0, "cpu": 5.0, "threads": {1: 1.0, 2: 0.5}}
    monkeypatch.setattr(harness.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(harness, "process_cpu_s", lambda: clock["cpu"])
    monkeypatch.setattr(harness, "_threads", lambda: dict(clock["threads"]))
    monkeypatch.setattr(harness, "_thread_names", lambda: {1: "issuer", 2: "hera-collector-a"})
    meter = harness.CpuMeter().start()
    clock.update(wall=102.0, cpu=6.5, threads={1: 1.2, 2: 1.85, 3: 0.1})  # 2 s wall, 1.5 s CPU
    u = meter.stop("in-process", [C0])
    assert u.wall_s == 2.0 and u.cpu_s == pytest.approx(1.5) and u.cpu_util == pytest.approx(0.75)
    assert u.busiest == "hera-collector-a" and u.thread_util_max == pytest.approx(0.675)
    meter = harness.CpuMeter().start()
    clock.update(wall=104.0, cpu=6.6)
    u = meter.stop("process", None, {"load-generator process": 1.9})  # a single-threaded process at 95%
    assert u.cpu_s == pytest.approx(2.0) and u.busiest == "load-generator process"
    saturated, reason = harness.verdict(u, 50.0, 1.0)
    assert saturated and "'load-generator process' busy 95%" in reason


def test_verdict_names_every_limit_crossed():
    idle = harness.HarnessUsage("process", 10.0, 1.0, 0.2, "x", [C0, C1])
    assert harness.verdict(idle, 100.0, 1.0) == (False, "")
    assert harness.verdict(idle, float("nan"), float("nan")) == (False, "")
    busy = harness.HarnessUsage("process", 10.0, 19.0, 0.5, "x", [C0, C1])
    saturated, reason = harness.verdict(busy, 2500.0, 12.0)
    assert saturated
    assert "used 1.90 of its 2 pinned core(s)" in reason
    assert "issue lateness p99 2500 us > 1000 us" in reason and "completion lag p99 12.0 ms > 10 ms" in reason
    f = harness.fields(busy, 2500.0, 12.0)
    assert f["harness_saturated"] and f["harness_cores"] == f"{C0},{C1}" and f["harness_cpu_util"] == 1.9


class BusySUT:
    """Burns ``busy_s`` of CPU in every ``issue`` before completing the query: a harness that cannot keep up."""

    def __init__(self, busy_s: float):
        self.busy_s = busy_s

    def issue(self, tenant, sample_start, n_items, on_done):
        t = time.monotonic_ns()
        end = time.thread_time() + self.busy_s
        while time.thread_time() < end:
            pass
        now = time.monotonic_ns()
        on_done(suts.QueryResult(0, tenant, n_items, t, t, now, [0], True, None))


@pytest.mark.slow
def test_a_deliberately_saturated_harness_says_so():
    s = LoadgenSettings(target_qps=500.0, n_queries=60, query_sizes=FIXED, max_items=1, warmup_queries=0,
                        arrival="poisson")
    res = driver.run(BusySUT(0.01), s, 10)   # 10 ms of CPU per query at 500 queries/s: 5 cores' worth
    sm = res.summary
    assert sm["harness"] == "in-process" and sm["harness_saturated"]
    assert "issue lateness p99" in sm["harness_saturation_reason"]
    assert sm["harness_cpu_s"] >= 0.3 and sm["issue_lateness_us_p99"] > 1000
    assert res.tenants["default"]["harness_saturated"]


class LateSUT:
    """Completes each query at once (t_end = issue time) but delivers the result ``lag_s`` later."""

    def __init__(self, lag_s: float):
        self.lag_s = lag_s

    def issue(self, tenant, sample_start, n_items, on_done):
        t = time.monotonic_ns()
        res = suts.QueryResult(0, tenant, n_items, t, t, t, [0], True, None)
        threading.Timer(self.lag_s, on_done, args=(res,)).start()


def test_late_completions_mark_the_run_saturated():
    s = LoadgenSettings(target_qps=100.0, n_queries=20, query_sizes=FIXED, max_items=1, warmup_queries=0)
    sm = driver.run(LateSUT(0.03), s, 10).summary
    assert sm["completion_lag_ms_p99"] >= 25
    assert sm["harness_saturated"] and "completion lag p99" in sm["harness_saturation_reason"]


@pytest.mark.slow
def test_trial_rows_carry_the_harness_columns():
    base = LoadgenSettings(target_qps=50.0, n_queries=60, query_sizes=FIXED, max_items=1, latency_bound_ms=30.0,
                           percentile=0.9)
    sut = suts.SleepSUT(suts.deterministic(0.002), n_servers=1)
    try:
        r = search.find_qps_star(sut, base, 1, rel_tol=0.5, repeats=1, min_queries=60, max_queries=60,
                                 max_qps=200.0)
    finally:
        sut.close()
    for col in search.HARNESS_COLUMNS:
        assert col in r.trials.columns
    assert set(r.trials["harness"]) == {"in-process"}
    assert r.trials["harness_saturated"].dtype == bool and (r.trials["harness_cpu_s"] >= 0).all()


def _node(**kw):
    from hera.server import Node, NodeConfig, TenantConfig

    kw.setdefault("resctrl_root", "/nonexistent")
    cfg = NodeConfig(tenants=(TenantConfig("a", "syn", (C0,), batch_size=16, options={"delay_ms": 1}),
                              TenantConfig("b", "syn", (C1,), batch_size=16)),
                     runner="synthetic", allow_core_sharing=True, **kw)
    return Node(cfg).start()


@pytest.mark.slow
def test_node_runs_use_a_pinned_load_generator_process():
    node = _node()
    sut = NodeSUT(node, harness_cores=[C1])
    try:
        streams = {t: LoadgenSettings(target_qps=200.0, n_queries=100, query_sizes={"kind": "production"},
                                      max_items=200, warmup_queries=5, arrival_seed=i, latency_bound_ms=500)
                   for i, t in enumerate(("a", "b"))}
        res = driver.run(sut, streams, {"a": 4096, "b": 4096})
        sm = res.summary
        assert sm["harness"] == "process" and sm["harness_cores"] == str(C1)
        assert sm["n_ok"] == sm["n_measured"] == 200 and sm["n_failed"] == 0
        lg = sut.loadgen_process()
        assert lg.affinity == [C1] and lg.process.is_alive()
        parts = {k: v for k, v in res.tenants["a"].items() if k.startswith("harness")}
        assert parts["harness"] == "process" and "harness_saturated" in parts
        rows = res.rows
        assert (rows["t_end_ns"] >= rows["t_start_ns"]).all() and (rows["done_ns"] >= rows["t_end_ns"]).all()
        assert (rows["latency_ms"] > 0).all()
        # the same process serves the next run; an in-process run is still possible
        again = driver.run(sut, streams["a"], 4096, tenant="a")
        assert again.summary["n_ok"] == 100 and sut.loadgen_process() is lg
        inproc = driver.run(sut, streams["a"], 4096, tenant="a", loadgen_process=False)
        assert inproc.summary["harness"] == "in-process" and inproc.summary["n_ok"] == 100
    finally:
        sut.close()
        node.stop()
    assert not lg.process.is_alive()


@pytest.mark.slow
def test_process_run_reports_rejections_timeouts_and_aborts_like_in_process():
    from hera.server import Node, NodeConfig, TenantConfig

    cfg = NodeConfig(tenants=(TenantConfig("a", "syn", (C0,), batch_size=8, queue_limit=3,
                                           options={"delay_ms": 20}),),
                     runner="synthetic", resctrl_root="/nonexistent", allow_core_sharing=True)
    node = Node(cfg).start()
    sut = NodeSUT(node)
    try:
        s = LoadgenSettings(target_qps=400.0, n_queries=40, query_sizes=FIXED, max_items=1, warmup_queries=0,
                            latency_bound_ms=10.0)
        res = driver.run(sut, s, 4096)  # 'default' is not a tenant of the node: issued in-process, all fail
        assert res.summary["harness"] == "in-process" and res.summary["n_ok"] == 0
        res = driver.run(sut, s, 4096, tenant="a")
        rows = res.rows
        errors = rows.loc[rows["status"] == "error", "error"]
        assert res.summary["harness"] == "process" and len(errors) > 0
        assert errors.str.contains("queue full").all()
        res = driver.run(sut, s.replace(n_queries=400), 4096, tenant="a", abort_on_fail=True)
        assert res.summary["aborted"] and "early stopping" in res.summary["abort_reason"]
        assert (res.rows["status"] == "not_issued").any()
    finally:
        sut.close()
        node.stop(drain=False)


@pytest.mark.slow
def test_inprocess_fcfs_baseline_serves_schedules_in_arrival_order():
    import functools

    from hera.loadgen.inprocess import InProcessFCFS
    from hera.server.runner import RunnerSpec, build_runner

    spec = RunnerSpec(kind="synthetic", model="syn", batch_size=4, options={"delay_ms": 5})
    pool = InProcessFCFS(functools.partial(build_runner, spec), [C0], 4, "t")
    try:
        s = LoadgenSettings(target_qps=1.0, n_queries=6, query_sizes={"kind": "fixed", "items": 8}, max_items=8,
                            warmup_queries=0, latency_bound_ms=1000.0)
        sch = driver.build_schedule(s, 4096, tenant="t")
        sch["scheduled_s"] = 0.0                       # six 2-sub-batch queries at once onto one server
        res = driver.run(pool, s, 4096, tenant="t", schedule=sch)
        rows = res.rows.sort_values("query_id")
        assert res.summary["harness"] == InProcessFCFS.mode and (rows["status"] == "ok").all()
        assert (rows["issue_lateness_us"] == 0).all()
        ends = rows["t_end_ns"].to_numpy()
        assert (np.diff(ends) > 0).all()               # served in arrival order, one after the other
        assert rows["latency_ms"].iloc[-1] >= 6 * 2 * 5 * 0.9   # the last waited for 12 sub-batches of 5 ms
        base = LoadgenSettings(target_qps=20.0, query_sizes={"kind": "fixed", "items": 4}, max_items=4,
                               latency_bound_ms=40.0, percentile=0.9, n_queries=60)
        r = search.find_qps_star(pool, base, 4096, tenant="t", rel_tol=0.5, repeats=1, min_queries=60,
                                 max_queries=60, max_qps=400.0)
        assert 0 < r.qps_star < 400  # one 5 ms server: capacity 200 queries/s
    finally:
        pool.close()
    assert not any(p.is_alive() for p in pool._procs)


def test_load_generator_process_joins_the_node_harness_resctrl_group(fake_resctrl):
    node = _node(resctrl_root=str(fake_resctrl))
    sut = NodeSUT(node)
    try:
        group = node.resctrl.harness_group
        assert group is not None and str(os.getpid()) in (group / "tasks").read_text().split()
        lg = sut.loadgen_process()
        assert str(lg.pid) in (group / "tasks").read_text().split()
    finally:
        sut.close()
        node.stop()
