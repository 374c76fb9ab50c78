"""Drive a SUT with MLPerf LoadGen (``mlcommons-loadgen``) as an independent check of our own driver.

Mapping (documented decision): one LoadGen *sample* is one of our *queries*. The QSL has
``qsl_samples`` samples; sample index ``i`` is the query of ``sizes[i]`` items starting at library item
``starts[i]``, where ``sizes = QuerySizes(...).sample(qsl_samples, rng(size_seed))`` and
``starts = rng(sample_seed).integers(0, library_items − sizes + 1)`` (the same per-tenant generators as
our driver, :func:`hera.loadgen.driver.stream_rng`), so every sample index has a fixed size and start. LoadGen
chooses which sample indices to issue (``sample_index_rng_seed``) and when (``schedule_rng_seed`` =
our ``arrival_seed``): the two harnesses draw arrivals from the same Poisson process but not the same
arrival times, so their percentiles agree statistically, not exactly.

Server scenario: ``server_target_qps``, ``server_target_latency_ns`` (from ``latency_bound_ms``, or a
large value when unset), ``server_target_latency_percentile``, ``min_duration_ms``, ``min_query_count``.
LoadGen's latency of a sample runs from its scheduled issue time to our ``QuerySamplesComplete`` call.
Offline scenario: every query is issued at once; LoadGen reports samples per second.

LoadGen writes ``mlperf_log_summary.txt`` and ``mlperf_log_detail.txt`` into the given directory;
:func:`parse_summary` / :func:`parse_detail` read its percentiles, QPS and validity back.
"""

from __future__ import annotations

import json
import math
import re
import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from hera.errors import ConfigError, HeraError
from hera.loadgen import driver
from hera.loadgen.settings import LoadgenSettings

SCENARIOS = ("server", "offline")


class LoadGenUnavailableError(HeraError):
    """``mlperf_loadgen`` (package ``mlcommons-loadgen``) is not installed."""


def _lg():
    try:
        import mlperf_loadgen as lg
    except ImportError:
        raise LoadGenUnavailableError(
            "MLPerf LoadGen is not installed (pip package mlcommons-loadgen, module mlperf_loadgen)"
        ) from None
    return lg


def qsl_samples_table(settings: LoadgenSettings, library_items: int, qsl_samples: int,
                      tenant: str = "default") -> pd.DataFrame:
    """The fixed (size, start) of every QSL sample index (see module docstring)."""
    from hera.workload.sizes import QuerySizes

    params = {k: v for k, v in settings.query_sizes.items() if k != "kind"}
    sizes = np.asarray(QuerySizes(settings.query_sizes["kind"], settings.max_items, **params).sample(
        qsl_samples, driver.stream_rng(settings.size_seed, tenant)), dtype=np.int64)
    sizes = np.clip(sizes, 1, settings.max_items)
    if sizes.max() > library_items:
        raise ConfigError(f"a query of {int(sizes.max())} items exceeds the sample library's "
                          f"{library_items} items")
    rng = driver.stream_rng(settings.sample_seed, tenant)
    starts = rng.integers(0, library_items - sizes + 1, dtype=np.int64)
    return pd.DataFrame({"sample_index": np.arange(qsl_samples), "n_items": sizes, "sample_start": starts})


_SUMMARY_KEYS = {
    "Scheduled samples per second": "scheduled_qps",
    "Completed samples per second": "completed_qps",
    "Samples per second": "samples_per_second",
    "Result is": "result",
    "Performance constraints satisfied": "constraints_satisfied",
    "Min duration satisfied": "min_duration_satisfied",
    "Min queries satisfied": "min_queries_satisfied",
    "Early stopping satisfied": "early_stopping_satisfied",
    "Min latency (ns)": "latency_ns_min",
    "Max latency (ns)": "latency_ns_max",
    "Mean latency (ns)": "latency_ns_mean",
}


def parse_summary(path: str | Path) -> dict[str, Any]:
    """Key values of ``mlperf_log_summary.txt``: QPS, validity, latency min/mean/max and percentiles (ns)."""
    path = Path(path)
    if not path.is_file():
        raise HeraError(f"MLPerf LoadGen summary {str(path)!r} does not exist")
    out: dict[str, Any] = {}
    for line in path.read_text().splitlines():
        if ":" not in line:
            continue
        key, _, val = line.partition(":")
        key, val = key.strip(), val.strip()
        m = re.fullmatch(r"(\d+(?:\.\d+)?) percentile latency \(ns\)", key)
        if m:
            out[f"latency_ns_p{float(m.group(1)):g}"] = float(val)
        elif key in _SUMMARY_KEYS:
            name = _SUMMARY_KEYS[key]
            try:
                out[name] = float(val)
            except ValueError:
                out[name] = val
    return out


def parse_detail(path: str | Path) -> dict[str, Any]:
    """The ``:::MLLOG`` JSON records of ``mlperf_log_detail.txt`` as ``{key: value}`` (last one wins)."""
    path = Path(path)
    if not path.is_file():
        raise HeraError(f"MLPerf LoadGen detail log {str(path)!r} does not exist")
    out: dict[str, Any] = {}
    for line in path.read_text(errors="replace").splitlines():
        if not line.startswith(":::MLLOG"):
            continue
        try:
            rec = json.loads(line[len(":::MLLOG"):].strip())
        except json.JSONDecodeError:
            continue
        if "key" in rec:
            out[rec["key"]] = rec.get("value")
    return out


def run_loadgen(sut: Any, settings: LoadgenSettings, library_items: int, log_dir: str | Path, *,
                scenario: str = "server", tenant: str = "default", qsl_samples: int = 1024,
                completion_timeout_s: float | None = None) -> dict[str, Any]:
    """Run MLPerf LoadGen against ``sut`` with our settings mapped onto a ``TestSettings``; parse its logs.

    Duration: ``min_duration_ms = 1000 × max(duration_s, min_duration_s)``; ``min_query_count`` =
    ``max(n_queries, min_queries)`` (LoadGen runs until both are met, as our driver does).
    Returns the parsed summary (latencies converted to ms), the log directory and the mapping used.
    """
    lg = _lg()
    if scenario not in SCENARIOS:
        raise ConfigError(f"unknown LoadGen scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    if settings.arrival != "poisson":
        raise ConfigError("the MLPerf LoadGen Server scenario only issues Poisson arrivals")
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    table = qsl_samples_table(settings, library_items, qsl_samples, tenant)
    sizes, starts = table["n_items"].to_numpy(), table["sample_start"].to_numpy()

    errors: list[str] = []
    lock = threading.Lock()
    outstanding: dict[int, bool] = {}

    def complete(sample_id: int, res: Any) -> None:
        with lock:
            if outstanding.pop(sample_id, None) is None:
                return
        if not bool(getattr(res, "ok", True)):
            with lock:
                errors.append(str(getattr(res, "error", "failed")))
        lg.QuerySamplesComplete([lg.QuerySampleResponse(sample_id, 0, 0)])

    def issue_queries(samples) -> None:
        for s in samples:
            sid, idx = int(s.id), int(s.index)
            with lock:
                outstanding[sid] = True
            try:
                sut.issue(tenant, int(starts[idx]), int(sizes[idx]),
                          lambda res, sid=sid: complete(sid, res))
            except Exception as exc:  # noqa: BLE001 - complete it anyway so LoadGen does not hang
                with lock:
                    outstanding.pop(sid, None)
                    errors.append(f"issue raised {type(exc).__name__}: {exc}")
                lg.QuerySamplesComplete([lg.QuerySampleResponse(sid, 0, 0)])

    def flush_queries() -> None:
        pass

    ts = lg.TestSettings()
    ts.mode = lg.TestMode.PerformanceOnly
    dur_ms = int(round(1000 * settings.target_duration_s()))
    count = settings.target_count()
    if scenario == "server":
        ts.scenario = lg.TestScenario.Server
        ts.server_target_qps = float(settings.target_qps)
        bound_ms = settings.latency_bound_ms if settings.latency_bound_ms is not None else 3.6e6
        ts.server_target_latency_ns = int(bound_ms * 1e6)
        ts.server_target_latency_percentile = float(settings.percentile)
    else:
        ts.scenario = lg.TestScenario.Offline
        ts.offline_expected_qps = float(settings.target_qps)
    ts.min_duration_ms = dur_ms
    ts.min_query_count = int(count)
    ts.schedule_rng_seed = int(settings.arrival_seed)
    ts.sample_index_rng_seed = int(settings.sample_seed)
    ts.qsl_rng_seed = int(settings.size_seed)

    out = lg.LogOutputSettings()
    out.outdir = str(log_dir)
    out.copy_summary_to_stdout = False
    log = lg.LogSettings()
    log.log_output = out
    log.enable_trace = False

    lg_sut = lg.ConstructSUT(issue_queries, flush_queries)
    qsl = lg.ConstructQSL(qsl_samples, qsl_samples, lambda idx: None, lambda idx: None)
    try:
        lg.StartTestWithLogSettings(lg_sut, qsl, ts, log)
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(lg_sut)

    summary = parse_summary(log_dir / "mlperf_log_summary.txt")
    detail = parse_detail(log_dir / "mlperf_log_detail.txt")
    res: dict[str, Any] = {"harness": "mlperf_loadgen", "scenario": scenario, "log_dir": str(log_dir)}
    for k, v in summary.items():
        if k.startswith("latency_ns_"):
            res["latency_ms_" + k[len("latency_ns_"):]] = v / 1e6
        else:
            res[k] = v
    res["n_queries"] = detail.get("result_query_count", detail.get("generated_query_count"))
    res["n_errors"] = len(errors)
    res["qsl_samples"] = qsl_samples
    return res


def compare(sut_factory: Callable[[], Any], settings: LoadgenSettings, library_items: int,
            log_dir: str | Path, *, tenant: str = "default", qsl_samples: int = 1024) -> pd.DataFrame:
    """Run our driver and MLPerf LoadGen on fresh SUTs (``sut_factory()``) with the same settings.

    Returns one row per harness: ``harness, target_qps, n_queries, achieved_qps, latency_ms_mean, p50,
    p90, p95, p99`` (and LoadGen's validity fields).
    """
    rows = []
    sut = sut_factory()
    try:
        ours = driver.run(sut, settings, library_items, tenant=tenant)
    finally:
        if hasattr(sut, "close"):
            sut.close()
    s = ours.tenants[tenant]
    rows.append({
        "harness": "hera", "target_qps": settings.target_qps, "n_queries": s["n_measured"],
        "achieved_qps": s["achieved_qps"], "scheduled_qps": s["offered_qps"],
        "latency_ms_mean": s["latency_ms_mean"], "latency_ms_p50": s["latency_ms_p50"],
        "latency_ms_p90": s["latency_ms_p90"], "latency_ms_p95": s["latency_ms_p95"],
        "latency_ms_p99": s["latency_ms_p99"], "n_failed": s["n_failed"],
        "issue_lateness_us_p99": s["issue_lateness_us_p99"],
    })
    sut = sut_factory()
    try:
        lgr = run_loadgen(sut, settings, library_items, log_dir, tenant=tenant, qsl_samples=qsl_samples)
    finally:
        if hasattr(sut, "close"):
            sut.close()
    rows.append({
        "harness": "mlperf_loadgen", "target_qps": settings.target_qps, "n_queries": lgr.get("n_queries"),
        "achieved_qps": lgr.get("completed_qps", math.nan),
        "scheduled_qps": lgr.get("scheduled_qps", math.nan),
        **{k: lgr.get(k, math.nan) for k in ("latency_ms_mean", "latency_ms_p50", "latency_ms_p90",
                                             "latency_ms_p95", "latency_ms_p99")},
        "n_failed": lgr.get("n_errors", 0), "result": lgr.get("result"),
        "early_stopping_satisfied": lgr.get("early_stopping_satisfied"), "log_dir": lgr["log_dir"],
    })
    return pd.DataFrame(rows)
