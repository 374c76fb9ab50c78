"""``hera policy evaluate`` and ``hera cluster provision`` on synthetic tables (renamed to real model ids)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from hera.cli import main
from hera.policy.synthetic import known_answer_tables

NAMES = {"emb_a": "dlrm_rmc1", "emb_b": "dlrm_rmc2", "mlp_a": "dlrm_rmc3", "mlp_b": "ncf"}


@pytest.fixture()
def files(tmp_path):
    t = known_answer_tables()
    out = {}
    for k, df in t.items():
        df = df.replace(NAMES)
        out[k] = tmp_path / f"{k}.csv"
        df.to_csv(out[k], index=False)
    cfg = {
        "scale": "ci",
        "models": list(NAMES.values()),
        "policies": ["single_tenant", "greedy", "hera", "oracle"],
        "cluster": {"mixes": ["balanced", "skewed"]},
    }
    out["config"] = tmp_path / "study.yaml"
    out["config"].write_text(yaml.safe_dump(cfg))
    return out


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_policy_evaluate(files, tmp_path, capsys):
    out = tmp_path / "policy"
    rc = main(
        [
            "policy",
            "evaluate",
            "--config",
            str(files["config"]),
            "--pairs",
            str(files["pairs"]),
            "--scalability",
            str(files["scalability"]),
            "--memory",
            str(files["memory"]),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    res = last_json(capsys)
    assert res["mean_emu"]["hera"] == pytest.approx(1.35) and res["mean_emu"]["single_tenant"] == 1.0
    emu = pd.read_csv(out / "emu.csv")
    assert {"policy", "mix", "node", "tenants", "emu"} <= set(emu.columns)
    assert set(emu["mix"]) == {"all", "balanced", "skewed"}
    plans = json.loads((out / "plans.json").read_text())
    assert plans["node"] == {"cores": 8, "llc_ways": None} and set(plans["plans"]) == {
        "single_tenant",
        "greedy",
        "hera",
        "oracle",
    }
    assert set(pd.read_csv(out / "predictor.csv")["mode"]) == {"profiles_only", "leave_one_pair_out"}


def test_cluster_provision(files, tmp_path, capsys):
    out = tmp_path / "servers.csv"
    rc = main(
        [
            "cluster",
            "provision",
            "--config",
            str(files["config"]),
            "--pairs",
            str(files["pairs"]),
            "--scalability",
            str(files["scalability"]),
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    servers = last_json(capsys)["servers"]
    assert servers["balanced/hera"] < servers["balanced/single_tenant"]
    df = pd.read_csv(out)
    assert list(df.columns[:4]) == ["mix", "policy", "servers", "assignment"] and len(df) == 8


def test_cli_errors_are_one_line(files, tmp_path, capsys):
    rc = main(
        [
            "cluster",
            "provision",
            "--config",
            str(files["config"]),
            "--pairs",
            str(tmp_path / "nope.csv"),
            "--scalability",
            str(files["scalability"]),
            "--out",
            str(tmp_path / "s.csv"),
        ]
    )
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    cfg = yaml.safe_load(files["config"].read_text()) | {"models": ["dien"]}
    files["config"].write_text(yaml.safe_dump(cfg))
    rc = main(
        [
            "cluster",
            "provision",
            "--config",
            str(files["config"]),
            "--pairs",
            str(files["pairs"]),
            "--scalability",
            str(files["scalability"]),
            "--out",
            str(tmp_path / "s.csv"),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("hera: error: unknown model 'dien'") and err.count("\n") == 1
