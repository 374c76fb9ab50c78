"""MLPerf LoadGen adapter: runs on SleepSUT, agrees with our driver's percentiles; log parsing; failures."""

from __future__ import annotations

import pytest

from hera.errors import ConfigError, HeraError
from hera.loadgen import mlperf
from hera.loadgen import sut as q
from hera.loadgen.settings import LoadgenSettings

FIXED1 = {"kind": "fixed", "items": 1}  # one item per query
pytest.importorskip("mlperf_loadgen")


def settings(**kw) -> LoadgenSettings:
    base = dict(target_qps=100.0, duration_s=2.0, min_queries=200, query_sizes=FIXED1, max_items=1,
                percentile=0.95, latency_bound_ms=100.0)
    base.update(kw)
    return LoadgenSettings(**base)


@pytest.mark.timing
@pytest.mark.slow
def test_pure_delay_both_harnesses_measure_the_delay(tmp_path):
    # 20 ms per query, no queueing: latency is the delay plus each harness's own timing error
    df = mlperf.compare(lambda: q.SleepSUT(q.deterministic(0.020), n_servers=64), settings(), 1,
                        tmp_path / "lg")
    print(df.to_string())
    ours, lg = df.set_index("harness").loc["hera"], df.set_index("harness").loc["mlperf_loadgen"]
    assert lg["result"] == "VALID" and lg["n_queries"] >= 200 and ours["n_queries"] >= 200
    for row in (ours, lg):
        assert row["latency_ms_p50"] == pytest.approx(20.0, abs=2.0)
    # the tails: ours within +6 ms of the delay; LoadGen's completions pass through a Python callback under the
    # GIL shared with the 64 sleeping server threads, and on a shared 2-vCPU VM its p95 reached 26.3 ms
    # (2026-12-02, ours 21.3 in the same test), so it gets +10 ms, and the two tails agree within 8 ms
    assert 19.9 <= ours["latency_ms_p95"] <= 26.0
    assert 19.9 <= lg["latency_ms_p95"] <= 30.0
    assert abs(ours["latency_ms_p95"] - lg["latency_ms_p95"]) < 8.0
    assert (tmp_path / "lg" / "mlperf_log_summary.txt").exists()
    assert (tmp_path / "lg" / "mlperf_log_detail.txt").exists()


@pytest.mark.timing
@pytest.mark.slow
def test_md1_queue_p95_agrees(tmp_path):
    """M/D/1 at ρ = 0.4 (5 ms service, 80 qps, 4 s ≈ 320 queries per harness).

    Tolerance: each harness's p95 within [0.6, 1.6] × the exact M/D/1 value and the two within 50% of it
    of each other. The spread of a p95 from ~320 correlated queueing latencies is wide (two independent
    runs differ by up to ~40% at the 99.9th percentile of a simulation), and the harnesses draw
    different arrival times from the same Poisson process.
    """
    d, lam = 0.005, 80.0
    p95 = q.md1_sojourn_quantile_s(0.95, lam, d) * 1e3
    df = mlperf.compare(lambda: q.SleepSUT(q.deterministic(d)), settings(target_qps=lam, duration_s=4.0), 1,
                        tmp_path / "lg")
    print(df.to_string(), f"\nM/D/1 p95 {p95:.2f} ms")
    h = df.set_index("harness")
    for name in ("hera", "mlperf_loadgen"):
        assert 0.6 * p95 <= h.loc[name, "latency_ms_p95"] <= 1.6 * p95, name
    assert abs(h.loc["hera", "latency_ms_p95"] - h.loc["mlperf_loadgen", "latency_ms_p95"]) <= 0.5 * p95


def test_offline_scenario_and_parsing(tmp_path):
    res = mlperf.run_loadgen(q.SleepSUT(q.deterministic(0.001), n_servers=8), settings(min_queries=100,
                             duration_s=0.2), 1, tmp_path, scenario="offline", qsl_samples=64)
    assert res["scenario"] == "offline" and res["samples_per_second"] > 0
    det = mlperf.parse_detail(tmp_path / "mlperf_log_detail.txt")
    assert det and any("scenario" in k for k in det)


def test_raising_sut_does_not_hang_loadgen(tmp_path):
    sut = q.SleepSUT(q.deterministic(0.001), raise_every=2)
    try:
        res = mlperf.run_loadgen(sut, settings(duration_s=0.5, min_queries=50), 1, tmp_path)
    finally:
        sut.close()
    assert res["n_errors"] >= 20


def test_adapter_failure_paths(tmp_path):
    with pytest.raises(HeraError, match="does not exist"):
        mlperf.parse_summary(tmp_path / "nothing.txt")
    with pytest.raises(ConfigError, match="Poisson"):
        mlperf.run_loadgen(q.NullSUT(), settings(arrival="time_varying", arrival_formula="10"), 1, tmp_path)
    with pytest.raises(ConfigError, match="unknown LoadGen scenario"):
        mlperf.run_loadgen(q.NullSUT(), settings(), 1, tmp_path, scenario="multistream")


def test_qsl_sample_mapping_is_fixed_per_index():
    s = settings(query_sizes={"kind": "production"}, max_items=700)
    a = mlperf.qsl_samples_table(s, 5000, 256)
    b = mlperf.qsl_samples_table(s, 5000, 256)
    assert a.equals(b) and ((a["sample_start"] + a["n_items"]) <= 5000).all()
