"""Per-tenant statistics (sliding window), Prometheus text and the rich table (no processes)."""

from __future__ import annotations

import json

import numpy as np
from rich.console import Console

from hera.server.control import StatsRecordError, TenantSnapshot, stats_from_json, stats_json
from hera.server.stats import TenantStats, render_prometheus, stats_table

MS = 1_000_000


def test_window_counters_percentiles_and_utilisation():
    s = TenantStats(window_s=1.0)
    t0 = s.started_ns
    lat_ms = np.arange(1, 101)  # 1..100 ms
    for i, lat in enumerate(lat_ms):
        end = t0 + 500 * MS + i * MS
        s.record_query(True, end - int(lat * MS), end, end)
        s.record_busy(end - MS // 2, end)  # 0.5 ms busy per query
    s.record_query(False, t0, t0, t0 + 600 * MS)
    for i in range(150):
        s.record_arrival(t0 + 200 * MS + i * MS, rejected=i == 0)
    snap = s.snapshot(n_workers=2, now_ns=t0 + 1000 * MS)
    assert snap["completed_queries"] == 100 and snap["failed_queries"] == 1 and snap["rejected_queries"] == 1
    assert abs(snap["latency_ms_p50"] - np.percentile(lat_ms, 50)) < 1e-9
    assert abs(snap["latency_ms_p95"] - np.percentile(lat_ms, 95)) < 1e-9
    assert abs(snap["completed_qps"] - 100.0) < 1e-9  # 100 queries in a 1 s window
    assert abs(snap["offered_qps"] - 150.0) < 1e-9
    assert abs(snap["worker_utilisation"] - 100 * 0.5 / (1000 * 2)) < 1e-9
    json.dumps(snap)  # plain JSON-able
    TenantSnapshot(tenant="t", **snap)  # exactly fields of the one stats record
    later = s.snapshot(n_workers=2, now_ns=t0 + 3000 * MS)  # everything slid out of the window
    assert later["latency_ms_p95"] is None and later["completed_qps"] == 0 and later["completed_queries"] == 100
    assert later["worker_utilisation"] == 0


def test_smaller_window_on_request():
    s = TenantStats(window_s=10.0)
    t0 = s.started_ns
    s.record_query(True, t0 + 1000 * MS, t0 + 1010 * MS, t0 + 1010 * MS)  # 10 ms, early
    s.record_query(True, t0 + 9000 * MS, t0 + 9002 * MS, t0 + 9002 * MS)  # 2 ms, recent
    recent = s.snapshot(1, window_s=0.5, now_ns=t0 + 9100 * MS)
    assert recent["window_completed_queries"] == 1 and recent["latency_ms_p50"] == 2.0


STATS = {"rmc1": TenantSnapshot(tenant="rmc1", model="dlrm_rmc1", completed_qps=12.5, latency_ms_p50=1.5,
                                latency_ms_p95=3.25, latency_ms_p99=None, queued_queries=2, in_flight_queries=3,
                                worker_utilisation=0.5, workers_ready=1, cores=(0,), llc_ways=None,
                                completed_queries=7, failed_queries=1, rejected_queries=0, sla_ms=50.0),
         'we"ird': TenantSnapshot(tenant='we"ird', cores=(1,))}


def test_prometheus_text():
    text = render_prometheus(STATS)
    assert 'hera_tenant_latency_ms{tenant="rmc1",quantile="0.95"} 3.25' in text
    assert 'hera_tenant_latency_ms{tenant="rmc1",quantile="0.99"} NaN' in text
    assert 'hera_tenant_queries_total{tenant="rmc1",status="failed"} 1' in text
    assert 'hera_tenant_queue_length{tenant="rmc1"} 2' in text
    assert 'hera_tenant_sla_ms{tenant="rmc1"} 50.0' in text
    assert 'tenant="we\\"ird"' in text
    # every sample line has a metric name, labels and a value; each metric has HELP and TYPE once
    names = [ln.split("{")[0] for ln in text.splitlines() if ln and not ln.startswith("#")]
    for name in set(names):
        base = name.removesuffix("_count") if name == "hera_tenant_latency_ms_count" else name
        assert text.count(f"# TYPE {base} ") == 1


def test_rich_table_renders():
    console = Console(record=True, width=200)
    console.print(stats_table(STATS))
    out = console.export_text()
    assert "rmc1" in out and "dlrm_rmc1" in out and "3.25" in out


def test_stats_record_round_trips_through_json_and_is_strict():
    """One record, one meaning per field: offered and completed load are two fields; the JSON form reads back
    to the same record and an unknown or missing field is refused, naming it."""
    import pytest

    doc = json.loads(json.dumps(stats_json(STATS)))
    assert stats_from_json(doc) == STATS
    assert doc["rmc1"]["offered_qps"] == 0.0 and doc["rmc1"]["completed_qps"] == 12.5 and doc["rmc1"]["cores"] == [0]
    with pytest.raises(StatsRecordError, match="unknown stats field 'qps'"):
        stats_from_json({"a": {"tenant": "a", "qps": 1.0}})
    with pytest.raises(StatsRecordError, match="lacks field 'tenant'"):
        stats_from_json({"a": {"cores": [0]}})
    with pytest.raises(StatsRecordError, match="JSON object"):
        stats_from_json([1, 2])
