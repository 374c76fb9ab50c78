"""Settings validation, schedule determinism, the open-loop driver (open loop, latency origin, failures)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from hera.errors import ConfigError, HeraError
from hera.loadgen import driver
from hera.loadgen.settings import LoadgenSettings
from hera.loadgen.sut import NullSUT, QueryResult, SleepSUT, deterministic

FIXED1 = {"kind": "fixed", "items": 1}  # one item per query


def settings(**kw) -> LoadgenSettings:
    base = dict(target_qps=200.0, n_queries=100, query_sizes=FIXED1, max_items=1, completion_timeout_s=5.0)
    base.update(kw)
    return LoadgenSettings(**base)


# ------------------------------------------------------------------------------------------- settings
def test_from_dict_rejects_unknown_key_naming_it():
    with pytest.raises(ConfigError, match="unknown loadgen setting 'target_qsp'"):
        LoadgenSettings.from_dict({"target_qsp": 10, "n_queries": 5})


@pytest.mark.parametrize("bad, word", [
    ({"target_qps": -1, "n_queries": 5}, "target_qps"),
    ({"n_queries": 0}, "n_queries"),
    ({"n_queries": 5, "percentile": 1.5}, "percentile"),
    ({"n_queries": 5, "arrival": "bursty"}, "arrival"),
    ({"n_queries": 5, "arrival": "time_varying"}, "duration_s"),
    ({"duration_s": 1, "arrival": "time_varying"}, "exactly one"),
    ({"n_queries": 5, "arrival_seed": -2}, "arrival_seed"),
    ({"n_queries": 5, "query_sizes": {"mean": 3}}, "query_sizes"),
    ({"n_queries": 5, "query_sizes": {"kind": "weird"}}, "unknown kind 'weird'"),
    ({"n_queries": 5, "query_sizes": {"kind": "fixed", "mean_items": 3}}, "mean_items"),
    ({"target_qps": 5}, "n_queries"),
    ({"n_queries": 5, "latency_bound_ms": 0}, "latency_bound_ms"),
])
def test_bad_values_raise_config_error(bad, word):
    with pytest.raises(ConfigError, match=word):
        LoadgenSettings.from_dict(bad)


def test_from_dict_roundtrip():
    s = settings(latency_bound_ms=20, warmup_queries=3)
    assert LoadgenSettings.from_dict(s.to_dict()) == s


# ------------------------------------------------------------------------------------------- schedule
def test_schedule_is_deterministic_from_seeds():
    s = settings(n_queries=300, query_sizes={"kind": "production"}, max_items=700)
    a, b = driver.build_schedule(s, 5000), driver.build_schedule(s, 5000)
    pd.testing.assert_frame_equal(a, b)
    c = driver.build_schedule(s.replace(arrival_seed=9), 5000)
    assert not np.allclose(a["scheduled_s"], c["scheduled_s"])
    assert (a["n_items"] == c["n_items"]).all() and (a["sample_start"] == c["sample_start"]).all()
    d = driver.build_schedule(s.replace(size_seed=9, sample_seed=9), 5000)
    assert np.allclose(a["scheduled_s"], d["scheduled_s"]) and not (a["n_items"] == d["n_items"]).all()
    # sample starts stay inside the library: start + size <= library items
    assert ((a["sample_start"] >= 0) & (a["sample_start"] + a["n_items"] <= 5000)).all()
    assert np.all(np.diff(a["scheduled_s"]) >= 0) and (a["query_id"] == np.arange(300)).all()
    # the mean rate is about the target
    assert 300 / a["scheduled_s"].iloc[-1] == pytest.approx(200, rel=0.25)


def test_length_follows_count_and_duration():
    s = settings(n_queries=None, duration_s=1.0)
    sch = driver.build_schedule(s, 10)
    assert sch["scheduled_s"].iloc[-1] >= 1.0 and sch["scheduled_s"].iloc[-2] < 1.0
    sch = driver.build_schedule(settings(n_queries=10, min_duration_s=0.5), 10)
    assert len(sch) > 10 and sch["scheduled_s"].iloc[-1] >= 0.5  # both minimums must hold (MLPerf)
    sch = driver.build_schedule(settings(n_queries=10, warmup_queries=5), 10)
    assert len(sch) == 15 and sch["warmup"].sum() == 5 and sch["warmup"].iloc[:5].all()


def test_multi_tenant_merge():
    s = settings(n_queries=50)
    sch = driver.build_schedule({"a": s, "b": s.replace(target_qps=50.0)}, {"a": 10, "b": 20})
    assert sorted(sch["tenant"].unique()) == ["a", "b"] and len(sch) == 100
    assert np.all(np.diff(sch["scheduled_s"]) >= 0)
    a, b = sch[sch.tenant == "a"], sch[sch.tenant == "b"]
    assert not np.allclose(a["scheduled_s"].to_numpy(), b["scheduled_s"].to_numpy())  # independent streams
    assert (a["seq"].to_numpy() == np.arange(50)).all()
    # adding a tenant does not change another's stream
    alone = driver.build_schedule({"a": s}, 10)
    assert np.allclose(alone["scheduled_s"].to_numpy(), a["scheduled_s"].to_numpy())
    with pytest.raises(ConfigError, match="no sample-library size given for tenant 'b'"):
        driver.build_schedule({"a": s, "b": s}, {"a": 10})


def test_time_varying_formula_and_trace(tmp_path):
    s = settings(n_queries=None, duration_s=4.0, arrival="time_varying",
                 arrival_formula="where(t < 2, 50, 200)")
    t = driver.build_schedule(s, 10)["scheduled_s"].to_numpy()
    first, second = (t < 2).sum(), (t >= 2).sum()
    assert second > 2 * first > 0
    trace = tmp_path / "trace.csv"
    trace.write_text("t_s,rate_qps\n0,10\n2,10\n2.001,300\n4,300\n")
    t2 = driver.build_schedule(s.replace(arrival_formula=None, arrival_trace=str(trace)), 10)["scheduled_s"]
    assert (t2 >= 2).sum() > 5 * (t2 < 2).sum()
    t3 = driver.build_schedule(s.replace(arrival_formula="25"), 10)["scheduled_s"]  # a constant rate
    assert 40 <= len(t3) <= 170
    with pytest.raises(ConfigError, match="Attribute is not allowed"):
        driver.build_schedule(s.replace(arrival_formula="os.system('x')"), 10)
    with pytest.raises(ConfigError, match="unknown name 'open'"):
        driver.build_schedule(s.replace(arrival_formula="open('x')"), 10)
    with pytest.raises(ConfigError, match="none.csv"):
        driver.build_schedule(s.replace(arrival_formula=None, arrival_trace=str(tmp_path / "none.csv")), 10)


def test_query_larger_than_library_is_refused():
    with pytest.raises(ConfigError, match="exceeds the sample library's 100 items"):
        driver.build_schedule(settings(query_sizes={"kind": "production"}, max_items=700), 100)


# --------------------------------------------------------------------------------------------- driver
def test_null_sut_overhead_is_reported():
    res = driver.run(NullSUT(), settings(n_queries=300, target_qps=1000.0), 1)
    s = res.summary
    assert s["n_ok"] == 300 and s["n_failed"] == 0 and not s["aborted"]
    for k in ("issue_lateness_us_p50", "issue_lateness_us_p99", "latency_ms_p50", "latency_ms_p99"):
        assert np.isfinite(s[k]) and s[k] >= 0, k
    assert s["achieved_qps"] > 0 and s["offered_qps"] > 0
    rows = res.rows
    assert (rows["issued_ns"] >= rows["scheduled_ns"]).all()
    assert (rows["latency_ms"] >= 0).all()
    print(f"null SUT: issue lateness p50 {s['issue_lateness_us_p50']:.1f} us, "
          f"p99 {s['issue_lateness_us_p99']:.1f} us")


@pytest.mark.timing
def test_open_loop_slow_sut_does_not_delay_issuing():
    # service takes 10x the mean inter-arrival gap (5 ms gap, 50 ms per query, plenty of servers):
    # a closed-loop harness would issue 10x slower; ours keeps the schedule.
    sut = SleepSUT(deterministic(0.050), n_servers=64)
    try:
        res = driver.run(sut, settings(n_queries=100, target_qps=200.0), 1)
    finally:
        sut.close()
    r = res.rows
    assert res.summary["n_ok"] == 100
    sched_span = (r["scheduled_ns"].iloc[-1] - r["scheduled_ns"].iloc[0]) / 1e9
    issue_span = (r["issued_ns"].iloc[-1] - r["issued_ns"].iloc[0]) / 1e9
    assert issue_span == pytest.approx(sched_span, abs=0.05)
    assert r["issue_lateness_us"].median() < 2000  # well below the 5 ms gap
    first_done = r["done_ns"].min()
    assert (r["issued_ns"] < first_done).sum() >= 5  # many were issued before anything completed
    assert r["latency_ms"].min() >= 50.0


class _BlockingDelaySUT:
    """Completes each query ``delay_s`` after its submit; the first ``issue`` call blocks ``block_s``."""

    def __init__(self, delay_s: float, block_s: float):
        self.delay_s, self.block_s, self.calls = delay_s, block_s, 0

    def issue(self, tenant, sample_start, n_items, on_done):
        self.calls += 1
        if self.calls == 1:
            time.sleep(self.block_s)
        t = time.monotonic_ns()
        end = t + int(self.delay_s * 1e9)
        res = QueryResult(self.calls, tenant, n_items, t, t, end, [0], True, None)
        threading.Timer(self.delay_s, on_done, args=(res,)).start()


def test_latency_is_measured_from_scheduled_arrival():
    sut = _BlockingDelaySUT(delay_s=0.010, block_s=0.080)
    res = driver.run(sut, settings(n_queries=60, target_qps=200.0), 1)
    r = res.rows
    assert res.summary["n_ok"] == 60
    # latency = end − scheduled = lateness + service, exactly
    expect = r["issue_lateness_us"] / 1e3 + (r["t_end_ns"] - r["issued_ns"]) / 1e6
    assert np.allclose(r["latency_ms"], expect, atol=1e-6)
    assert (r["latency_ms"] >= 10.0 - 1e-6).all()
    # queries scheduled while the SUT blocked were issued late and their latency shows it
    late = r[r["issue_lateness_us"] > 20_000]
    assert len(late) >= 3
    assert (late["latency_ms"] > 30).all()
    # service time alone (what a closed-loop harness would report) would hide that
    assert ((r["t_end_ns"] - r["t_submit_ns"]) / 1e6).max() < 20 < r["latency_ms"].max()


def test_sut_that_never_answers_times_out_without_hanging():
    sut = SleepSUT(deterministic(0.001), drop_every=1)
    t0 = time.monotonic()
    try:
        res = driver.run(sut, settings(n_queries=20, target_qps=500.0, completion_timeout_s=0.3,
                                       latency_bound_ms=10.0), 1)
    finally:
        sut.close()
    assert time.monotonic() - t0 < 5
    s = res.summary
    assert s["n_timeout"] == 20 and s["n_ok"] == 0 and s["n_failed"] == 20
    assert (res.rows["status"] == "timeout").all() and res.rows["error"].str.contains("no completion").all()
    assert s["early_stopping_verdict"] != "pass" and not s["passed"]


def test_late_completions_after_timeout_are_ignored():
    sut = _BlockingDelaySUT(delay_s=0.5, block_s=0.0)
    res = driver.run(sut, settings(n_queries=5, target_qps=500.0, completion_timeout_s=0.1), 1)
    time.sleep(0.6)
    assert res.summary["n_timeout"] == 5
    assert (res.rows["status"] == "timeout").all()  # rows were not mutated by the late callbacks


def test_sut_raising_or_failing_counts_failures():
    sut = SleepSUT(deterministic(0.001), raise_every=3, fail_every=5)
    try:
        res = driver.run(sut, settings(n_queries=30, target_qps=500.0, latency_bound_ms=50.0), 1)
    finally:
        sut.close()
    r = res.rows
    raised = r["error"].fillna("").str.startswith("issue raised RuntimeError")
    assert raised.sum() == 10
    assert (r.loc[~raised & (r["status"] == "error"), "error"] == "SleepSUT: injected error").sum() >= 3
    assert res.summary["n_ok"] + res.summary["n_error"] == 30 and res.summary["n_error"] >= 13
    assert res.summary["n_over_bound"] == res.summary["n_error"]


def test_max_outstanding_aborts_run():
    sut = SleepSUT(deterministic(1.0), drop_every=1)
    try:
        res = driver.run(sut, settings(n_queries=50, target_qps=1000.0, max_outstanding=10,
                                       completion_timeout_s=0.1), 1)
    finally:
        sut.close()
    s = res.summary
    assert s["aborted"] and "max_outstanding" in s["abort_reason"]
    assert s["n_not_issued"] == 40 and s["n_timeout"] == 10


def test_abort_on_fail_cuts_overloaded_run_short():
    sut = SleepSUT(deterministic(0.010))  # capacity 100 qps, offered 400
    try:
        res = driver.run(sut, settings(n_queries=400, target_qps=400.0, latency_bound_ms=15.0), 1,
                         abort_on_fail=True)
    finally:
        sut.close()
    s = res.summary
    assert s["aborted"] and "early stopping" in s["abort_reason"]
    assert s["n_not_issued"] > 200 and s["early_stopping_verdict"] == "fail"


def test_warmup_queries_are_excluded():
    res = driver.run(NullSUT(), settings(n_queries=40, warmup_queries=10, target_qps=1000.0), 1)
    assert res.summary["n_measured"] == 40 and res.summary["n_warmup"] == 10 and len(res.rows) == 50


def test_multi_tenant_run_and_write(tmp_path):
    s = settings(n_queries=40, target_qps=400.0, latency_bound_ms=50.0)
    sut = SleepSUT(deterministic(0.001), n_servers=2)
    try:
        res = driver.run(sut, {"a": s, "b": s.replace(target_qps=200.0)}, 1)
    finally:
        sut.close()
    assert set(res.tenants) == {"a", "b"} and res.summary["n_measured"] == 80
    assert res.tenants["a"]["n_ok"] == 40 and res.tenants["b"]["n_ok"] == 40
    table = res.summary_table()
    assert list(table["tenant"]) == ["a", "b", "all"]
    out = res.write(tmp_path / "q.parquet", tmp_path / "s.csv")
    back = pd.read_parquet(out)
    assert len(back) == 80
    assert {"git_commit", "machine_id", "latency_ms", "issue_lateness_us"} <= set(back.columns)
    assert (tmp_path / "q.parquet.meta.json").exists() and (tmp_path / "s.csv").exists()


def test_not_a_sut_is_refused():
    with pytest.raises(HeraError, match="not a SUT"):
        driver.run(object(), settings(), 1)


def test_sleep_sut_threads_mode_really_sleeps():
    from hera.loadgen.sut import linear

    sut = SleepSUT(linear(0.002, 0.0005), n_servers=2, mode="threads")  # 2 ms + 0.5 ms per item
    try:
        res = driver.run(sut, settings(n_queries=20, target_qps=100.0, query_sizes={"kind": "fixed", "items": 4},
                                       max_items=8), 8)
    finally:
        sut.close()
    r = res.rows
    assert res.summary["n_ok"] == 20
    assert (r["service_ms"] >= 4.0 - 0.05).all()  # 2 + 4 × 0.5 ms, slept for real
    assert set(r["workers"]) <= {"0", "1"}
