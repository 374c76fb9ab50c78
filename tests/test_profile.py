"""Profiling commands F1 (latency) and F3 (memory), shared plumbing, and bad inputs (synthetic runner, ci scale)."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from hera import config as cfgmod
from hera.cli import main
from hera.errors import HeraError, UnknownModelError
from hera.paths import repo_root
from hera.profile import common, memory

SYN = ["--runner", "synthetic"]


@pytest.fixture()
def study(tmp_path):
    """A tiny ci study config written to a file (short measurements)."""
    cfg = cfgmod.load(repo_root() / "workflow/config/ci.yaml",
                      overrides=["profile.batch_sizes=[1, 8]", "profile.latency_repeats=3",
                                 "search.min_duration_s=0.05", "profile.intensities=[0.0, 1.0]"])
    path = cfgmod.dump(cfg, tmp_path / "config.json")
    return cfg, path


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.mark.slow
def test_latency_command_writes_f1_table(study, tmp_path, capsys):
    cfg, path = study
    out = tmp_path / "latency" / "syn.csv"
    assert main(["profile", "latency", "--config", str(path), "--model", "syn", "--out", str(out), *SYN]) == 0
    summary = _last_json(capsys)
    df = pd.read_csv(out)
    for col in ["model", "batch_size", "n_samples", "latency_ms_p50", "latency_ms_p95", "latency_ms_mean",
                "git_commit", "machine_id"]:
        assert col in df.columns
    assert list(df["batch_size"]) == [1, 8] and (df["n_samples"] >= 3).all()
    assert (df["latency_ms_p50"] > 0).all() and (df["latency_ms_p95"] >= df["latency_ms_p50"]).all()
    assert summary["rows"] == 2 and (out.parent / "syn.csv.meta.json").is_file()


@pytest.mark.slow
def test_memory_command_writes_f3_table(study, tmp_path, capsys):
    cfg, path = study
    out = tmp_path / "memory.csv"
    assert main(["profile", "memory", "--config", str(path), "--model", "syn", "--out", str(out), *SYN]) == 0
    df = pd.read_csv(out)
    for col in ["model", "antagonist", "intensity", "metric", "value", "slowdown", "note"]:
        assert col in df.columns
    lat = df[df["metric"] == "latency_ms"]
    assert set(lat["antagonist"]) == {"none", "bandwidth", "cache"}
    assert len(lat) == 1 + 2 * 2 and lat["value"].notna().all() and (lat["slowdown"] > 0).all()
    pressure = df[df["metric"] == "pressure"]
    assert set(pressure["antagonist"]) == {"bandwidth", "cache"} and pressure["value"].notna().all()
    # the antagonists really ran next to the model during the sensitivity points
    assert (df[(df["metric"] == "latency_ms") & (df["intensity"] == 1.0)]["antagonist_gbps"] > 0).all()
    counters = df[df["metric"].isin(["counters"]) | df["metric"].str.endswith("_per_s")]
    assert len(counters) >= 1
    if not counters[counters["metric"] == "counters"].empty:
        assert counters[counters["metric"] == "counters"]["note"].str.startswith("counters: unavailable").all()


def test_memory_with_one_core_says_not_observable(study, tmp_path):
    cfg, _ = study
    cfg = dict(cfg, cores=[sorted(os.sched_getaffinity(0))[0]])
    df = memory.measure(cfg, "syn", common.NodeOptions(runner="synthetic"))
    alone = df[(df["antagonist"] == "none") & (df["metric"] == "latency_ms")]
    assert alone["value"].notna().all()  # measured for real
    rest = df[df["antagonist"] != "none"]
    assert len(rest) and rest["value"].isna().all()
    assert rest["note"].str.contains("not observable").all()


def test_unknown_model_is_a_one_line_error(study, tmp_path, capsys):
    _, path = study
    rc = main(["profile", "latency", "--config", str(path), "--model", "dlrm_rmc9", "--out", str(tmp_path / "x.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("hera: error: unknown model 'dlrm_rmc9'") and err.count("\n") == 1


@pytest.mark.parametrize("pair", ["dlrm_rmc1-dlrm_rmc3", "dlrm_rmc1__", "a__b__c", "dlrm_rmc1__dlrm_rmc1"])
def test_malformed_pair_is_a_one_line_error(pair):
    with pytest.raises(HeraError) as exc:
        common.parse_pair(pair)
    assert "pair" in str(exc.value) and "\n" not in str(exc.value)


def test_pair_with_unknown_model():
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        common.parse_pair("dlrm_rmc1__nope")


def test_t1_problems_are_one_line_errors(tmp_path):
    t1 = tmp_path / "T1.csv"
    with pytest.raises(common.ProfileError, match="does not exist"):
        common.read_t1(t1, ["a"])
    pd.DataFrame({"model": ["a"], "sla_ms": [5.0]}).to_csv(t1, index=False)
    assert common.read_t1(t1, ["a"])["a"]["sla_ms"] == 5.0
    with pytest.raises(common.ProfileError, match="has no row for model 'b'"):
        common.read_t1(t1, ["a", "b"])
    pd.DataFrame({"model": ["a"]}).to_csv(t1, index=False)
    with pytest.raises(common.ProfileError, match="no column 'sla_ms'"):
        common.read_t1(t1, ["a"])
    pd.DataFrame({"model": ["a"], "sla_ms": [float("nan")]}).to_csv(t1, index=False)
    with pytest.raises(common.ProfileError, match="no valid sla_ms"):
        common.read_t1(t1, ["a"])


def test_scalability_cli_reports_missing_t1_row(study, tmp_path, capsys):
    _, path = study
    t1 = tmp_path / "T1.csv"
    pd.DataFrame({"model": ["other"], "sla_ms": [5.0]}).to_csv(t1, index=False)
    rc = main(["profile", "scalability", "--config", str(path), "--model", "syn", "--t1", str(t1),
               "--service", str(tmp_path / "service.parquet"), "--out", str(tmp_path / "s.csv"), *SYN])
    err = capsys.readouterr().err
    assert rc == 2 and "has no row for model 'syn'" in err and err.count("\n") == 1


def test_resumable_table_appends_skips_and_discards_stale(tmp_path):
    out = tmp_path / "t.csv"
    t = common.ResumableTable(out, ["k", "ways", "v"], ["k", "ways"], "fp1")
    t.append([{"k": 1, "ways": None, "v": 0.5}])
    assert t.partial.is_file() and not out.exists()
    again = common.ResumableTable(out, ["k", "ways", "v"], ["k", "ways"], "fp1")
    assert again.done(k=1, ways=None) and not again.done(k=2, ways=None)
    again.append([{"k": 2, "ways": 4, "v": 0.7}])
    assert common.ResumableTable(out, ["k", "ways", "v"], ["k", "ways"], "fp1").done(k=2, ways=4)
    stale = common.ResumableTable(out, ["k", "ways", "v"], ["k", "ways"], "other-inputs")
    assert not stale.done(k=1, ways=None) and not stale.partial.exists()
    stale.append([{"k": 3, "ways": None, "v": 1.0}])
    stale.finish(stale.frame(), {"scale": "ci"}, 0)
    assert out.is_file() and not stale.partial.exists() and list(pd.read_csv(out)["k"]) == [3]


def test_pinned_restores_affinity():
    before = os.sched_getaffinity(0)
    with common.pinned([min(before)]):
        assert os.sched_getaffinity(0) == {min(before)}
    assert os.sched_getaffinity(0) == before


def test_parse_perf_csv_and_counter_rows():
    text = ("1000,,LLC-loads,100.00,,\n250,,LLC-load-misses,100.00,,\n<not supported>,,cycles,0,,\n")
    counts = memory.parse_perf_csv(text)
    assert counts == {"LLC-loads": 1000.0, "LLC-load-misses": 250.0, "cycles": None}
    rows = pd.DataFrame(memory.counter_rows("m", counts, 0.5, "", {"scale": "ci"}))
    ratio = rows[rows["metric"] == "llc_miss_ratio"]["value"].iloc[0]
    assert ratio == pytest.approx(0.25)
    assert rows[rows["metric"] == "mem_bytes_per_s"]["value"].iloc[0] == pytest.approx(250 * 64 / 0.5)
    none = memory.counter_rows("m", {}, 0.5, "counters: unavailable (no PMU)", {"scale": "ci"})
    assert none[0]["metric"] == "counters" and none[0]["value"] is None


def test_latency_measure_rejects_unknown_runner():
    with pytest.raises(HeraError, match="unknown runner"):
        common.NodeOptions(runner="gpu")


def test_a_started_node_says_how_long_after_the_command_start_it_was_ready(study, capsys):
    from hera.harness.nodes import NodeOptions, TenantPlan, since_process_start_s, start_node

    cfg, _ = study
    cpu = min(os.sched_getaffinity(0))
    with start_node(cfg, [TenantPlan("t", "syn", (cpu,), 8, 64)], NodeOptions(runner="synthetic")) as node:
        assert node.submit("t", 0, 4).result(10).ok
    line = next(x for x in capsys.readouterr().err.splitlines() if x.startswith("[node] t: ready "))
    ready = float(line.split("ready ")[1].split(" s")[0])
    own = float(line.split("(")[1].split(" s to start the node)")[0])
    assert 0 < own <= ready <= since_process_start_s()
