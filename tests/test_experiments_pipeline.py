"""The policy → serving contract end to end: ``hera policy evaluate`` and ``hera cluster provision`` on crafted
profile tables (no server), then both serving experiments on the plans they wrote (synthetic runner)."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
import yaml

pytest.importorskip("hera.workload.sizes")

from hera.cli import main  # noqa: E402
from hera.policy.synthetic import known_answer_tables, prediction_world  # noqa: E402

NAMES = {"emb_a": "dlrm_rmc1", "emb_b": "dlrm_rmc2", "mlp_a": "dlrm_rmc3", "mlp_b": "ncf"}
CPUS = sorted(os.sched_getaffinity(0))


@pytest.fixture()
def tables(tmp_path):
    """Known-answer profile tables of a 2-core node (Hera pairs each embedding-heavy model with an MLP-heavy one)."""
    out = {}
    for k, df in prediction_world(known_answer_tables(cores=2)).items():
        out[k] = tmp_path / f"{k}.csv"
        df.replace(NAMES).to_csv(out[k], index=False)
    out["t1"] = tmp_path / "T1.csv"
    pd.DataFrame({"model": list(NAMES.values()), "sla_ms": [20.0] * 4, "sla_rule": ["test"] * 4,
                  "class": ["embedding", "embedding", "mlp", "mlp"]}).to_csv(out["t1"], index=False)
    out["config"] = tmp_path / "study.yaml"
    out["config"].write_text(yaml.safe_dump({
        "scale": "ci", "cores": CPUS[:2], "models": list(NAMES.values()), "policies": ["single_tenant", "hera"],
        "cluster": {"mixes": ["balanced"]}, "batch_size": 16,
        "queries": {"kind": "fixed", "items": 16, "max_items": 32},
        "serving": {"load_fracs": [1.0], "trial_s": 0.2},
        "load_change": {"trace": "diurnal", "duration_s": 0.5, "interval_s": 0.25}}))
    return out


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_policy_evaluate_and_provision_tables(tables, tmp_path, capsys):
    pol = tmp_path / "policy"
    assert main(["policy", "evaluate", "--config", str(tables["config"]), "--pairs", str(tables["pairs"]),
                 "--scalability", str(tables["scalability"]), "--predicted", str(tables["predicted"]),
                 "--t1", str(tables["t1"]), "--out", str(pol)]) == 0
    res = _last_json(capsys)
    assert res["mean_emu"]["hera"] > res["mean_emu"]["single_tenant"] == 1.0
    emu = pd.read_csv(pol / "emu.csv")
    assert {"policy", "mix", "node", "tenants", "emu"} <= set(emu.columns) and set(emu["mix"]) >= {"all"}
    plans = json.loads((pol / "plans.json").read_text())
    assert set(plans["plans"]) == {"single_tenant", "hera"}
    assert all(len(n["tenants"]) == 2 for n in plans["plans"]["hera"])
    assert len(pd.read_csv(pol / "prediction_errors.csv")) == len(pd.read_csv(tables["pairs"]))
    out = tmp_path / "cluster" / "servers.csv"
    assert main(["cluster", "provision", "--config", str(tables["config"]), "--pairs", str(tables["pairs"]),
                 "--scalability", str(tables["scalability"]), "--predicted", str(tables["predicted"]),
                 "--t1", str(tables["t1"]), "--out", str(out)]) == 0
    servers = pd.read_csv(out)
    assert {"mix", "policy", "servers", "assignment"} <= set(servers.columns)
    per = servers.set_index("policy")["servers"]
    assert per["hera"] <= per["single_tenant"]


@pytest.mark.slow
@pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 usable CPUs")
def test_serving_experiments_run_on_evaluated_plans(tables, tmp_path, capsys):
    pol = tmp_path / "policy"
    assert main(["policy", "evaluate", "--config", str(tables["config"]), "--pairs", str(tables["pairs"]),
                 "--scalability", str(tables["scalability"]), "--predicted", str(tables["predicted"]),
                 "--out", str(pol)]) == 0
    capsys.readouterr()
    out = tmp_path / "serving" / "latency_vs_load.csv"
    assert main(["experiment", "latency-vs-load", "--config", str(tables["config"]), "--plans",
                 str(pol / "plans.json"), "--t1", str(tables["t1"]), "--out", str(out), "--runner", "synthetic"]) == 0
    res = _last_json(capsys)
    df = pd.read_csv(out)
    hera_group = res["groups"]["hera"][0]
    assert set(hera_group.split("+")) == set(df.loc[df["policy"] == "single_tenant", "tenant"])  # same pair
    assert len(df) == 4 and (df["n_queries"] > 0).all()
    assert main(["experiment", "load-change", "--config", str(tables["config"]), "--plans", str(pol / "plans.json"),
                 "--pairs", str(tables["pairs"]), "--scalability", str(tables["scalability"]), "--t1",
                 str(tables["t1"]), "--out", str(tmp_path / "serving"), "--runner", "synthetic"]) == 0
    tl = pd.read_csv(tmp_path / "serving" / "load_change.csv")
    assert set(tl["manager"]) == {"hera", "parties", "static"} and set(tl["tenant"]) == set(hera_group.split("+"))
    assert (tl["trace"] == "diurnal").all() and len(tl) == 3 * 2 * 2
