"""``hera loadgen``: null (harness overhead), selftest (queue vs theory), run (a real synthetic node)."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from hera.cli import main
from hera.loadgen import cli as lgcli
from hera.loadgen.settings import LoadgenSettings

C0 = sorted(os.sched_getaffinity(0))[0]


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_null_prints_lateness_percentiles(capsys, tmp_path):
    assert main(["loadgen", "null", "--qps", "2000", "--n", "500", "--out", str(tmp_path / "null.csv")]) == 0
    d = last_json(capsys)
    assert d["n"] == 500 and d["n_failed"] == 0
    assert 0 <= d["issue_lateness_us_p50"] <= d["issue_lateness_us_p99"] <= d["issue_lateness_us_max"]
    assert len(pd.read_csv(tmp_path / "null.csv")) == 500


def test_null_with_thread_pool(capsys):
    assert main(["loadgen", "null", "--qps", "1000", "--n", "200", "--threads", "2"]) == 0
    assert last_json(capsys)["n"] == 200


@pytest.mark.timing
@pytest.mark.slow
def test_selftest_compares_with_md1(capsys):
    rc = main(["loadgen", "selftest", "--service-ms", "5", "--loads", "0.3,0.6", "--n", "400",
               "--tolerance", "0.5"])
    d = last_json(capsys)
    assert d["theory"] == "M/D/1" and len(d["rows"]) == 2
    for r in d["rows"]:
        assert r["mean_ms_theory"] > 5.0 and r["p95_ms_theory"] > r["mean_ms_theory"]
        assert r["mean_ms"] > 5.0  # at least the service time
    assert rc == (0 if d["passed"] else 1)


def test_selftest_rejects_bad_loads(capsys):
    assert main(["loadgen", "selftest", "--loads", "0.5,x"]) == 2
    assert main(["loadgen", "selftest", "--loads", "1.5", "--n", "10"]) == 2
    assert "must be in (0, 1)" in capsys.readouterr().err


def test_run_config_errors(tmp_path, capsys):
    assert main(["loadgen", "run", "--config", str(tmp_path / "missing.yaml")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("node: {}\nloadgen: {n_queries: 5}\nsurprise: 1\n")
    assert main(["loadgen", "run", "--config", str(bad)]) == 2
    assert "unknown key 'surprise'" in capsys.readouterr().err
    nonode = tmp_path / "nonode.yaml"
    nonode.write_text("loadgen: {n_queries: 5}\n")
    assert main(["loadgen", "run", "--config", str(nonode)]) == 2
    assert "needs a node: section" in capsys.readouterr().err


def test_streams_from_config_merges_per_tenant():
    cfg = {"loadgen": {"target_qps": 10, "n_queries": 5}, "tenants": {"b": {"target_qps": 20}}}
    st = lgcli.streams_from_config(cfg, ["a", "b"])
    assert st["a"].target_qps == 10 and st["b"].target_qps == 20 and st["b"].n_queries == 5
    assert isinstance(st["a"], LoadgenSettings)
    from hera.errors import ConfigError

    with pytest.raises(ConfigError, match="tenant 'zz' is not on the node"):
        lgcli.streams_from_config({"tenants": {"zz": {}}, "loadgen": {"n_queries": 1}}, ["a"])
    with pytest.raises(ConfigError, match="unknown loadgen setting 'qps'"):
        lgcli.streams_from_config({"loadgen": {"qps": 1}}, ["a"])


def _node_yaml(tmp_path) -> str:
    return (f"  scale: ci\n  runner: synthetic\n  resctrl_root: {tmp_path / 'none'}\n"
            f"  tenants:\n    - {{name: a, model: tiny, cores: [{C0}], batch_size: 32}}\n")


@pytest.mark.slow
def test_run_drives_a_synthetic_node(tmp_path, capsys):
    pytest.importorskip("hera.server.node")
    cfg = tmp_path / "run.yaml"
    cfg.write_text("node:\n" + _node_yaml(tmp_path)
                   + "loadgen: {target_qps: 50, n_queries: 60, query_sizes: {kind: fixed, items: 8}, "
                     "max_items: 64, latency_bound_ms: 500}\n")
    assert main(["loadgen", "run", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 0
    d = last_json(capsys)
    assert d["n_measured"] == 60 and d["n_ok"] == 60, d
    rows = pd.read_csv(tmp_path / "out" / "loadgen_queries.csv")
    assert len(rows) == 60 and rows["ok"].all() and (rows["n_items"] == 8).all()
    assert (rows["t_start_ns"] >= rows["t_submit_ns"]).all() and (rows["latency_ms"] > 0).all()
    assert (tmp_path / "out" / "loadgen_summary.csv").exists()


@pytest.mark.slow
def test_run_with_search_section_finds_qps_star(tmp_path, capsys):
    pytest.importorskip("hera.server.node")
    cfg = tmp_path / "search.yaml"
    cfg.write_text("node:\n" + _node_yaml(tmp_path)
                   + "loadgen: {query_sizes: {kind: fixed, items: 4}, max_items: 64, n_queries: 90}\n"
                     "search: {sla_ms: 500, start_qps: 100, max_qps: 100, repeats: 1, min_queries: 90}\n")
    assert main(["loadgen", "run", "--config", str(cfg), "--out", str(tmp_path / "out")]) == 0
    d = last_json(capsys)
    assert d["qps_star"] == {"a": 100.0}  # the cap passes: one trial
    table = pd.read_csv(tmp_path / "out" / "qps_star.csv")
    assert table.loc[0, "tenant"] == "a" and "600 s" in table.loc[0, "note"]
    trials = pd.read_csv(tmp_path / "out" / "qps_star_trials_a.csv")
    assert len(trials) == 1 and trials.loc[0, "passed"]
