"""``hera policy evaluate`` and ``hera cluster provision`` on synthetic tables in the pipeline's shape (renamed to
real model ids): predictions for every split and ray, measured points around the predicted-best split."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from hera.cli import main
from hera.policy.synthetic import prediction_world

NAMES = {"emb_a": "dlrm_rmc1", "emb_b": "dlrm_rmc2", "mlp_a": "dlrm_rmc3", "mlp_b": "ncf"}


@pytest.fixture()
def files(tmp_path):
    t = prediction_world(error=0.1, seed=2)
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


def args(files, command: list[str], *tables: str, out) -> list[str]:
    """``hera <command> --config C --<table> FILE ... --out OUT``."""
    return [*command, "--config", str(files["config"]), *(x for t in tables for x in (f"--{t}", str(files[t]))),
            "--out", str(out)]


def last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_policy_evaluate(files, tmp_path, capsys):
    out = tmp_path / "policy"
    rc = main(args(files, ["policy", "evaluate"], "pairs", "scalability", "predicted", out=out))
    assert rc == 0
    res = last_json(capsys)
    assert 1.0 < res["mean_emu"]["hera"] <= res["mean_emu"]["oracle"] + 1e-9
    assert res["mean_emu"]["single_tenant"] == 1.0
    emu = pd.read_csv(out / "emu.csv")
    assert {"policy", "mix", "node", "tenants", "emu", "decided_on", "evaluated_on", "predicted_emu"} <= set(
        emu.columns
    )
    assert set(emu["mix"]) == {"all", "balanced", "skewed"}
    hera = emu[(emu.policy == "hera") & emu.tenants.str.contains("+", regex=False)]
    assert set(hera["decided_on"]) == {"predicted"} and hera["predicted_emu"].notna().all()
    assert set(emu.loc[emu.policy == "oracle", "decided_on"]) == {"measured"}
    plans = json.loads((out / "plans.json").read_text())
    assert plans["node"] == {"cores": 8, "llc_ways": None} and set(plans["plans"]) == {
        "single_tenant",
        "greedy",
        "hera",
        "oracle",
    }
    errors = pd.read_csv(out / "prediction_errors.csv")
    assert len(errors) == len(pd.read_csv(files["pairs"])) and {"error_a", "error_b", "emu_error"} <= set(
        errors.columns
    )
    assert res["prediction"]["points"] == len(errors) and res["prediction"]["pairs"] == 6
    assert 0 < res["prediction"]["median_abs_rel_error"] < 0.5


def test_cluster_provision(files, tmp_path, capsys):
    out = tmp_path / "servers.csv"
    rc = main(args(files, ["cluster", "provision"], "pairs", "scalability", "predicted", out=out))
    assert rc == 0
    servers = last_json(capsys)["servers"]
    assert servers["balanced/hera"] < servers["balanced/single_tenant"]
    df = pd.read_csv(out)
    assert list(df.columns[:4]) == ["mix", "policy", "servers", "assignment"] and len(df) == 8
    hera = df[df.policy == "hera"]
    assert set(hera["decided_on"]) == {"predicted"} and (hera["servers_planned"] > 0).all()
    assert set(df.loc[df.policy == "oracle", "decided_on"]) == {"measured"}


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
    rc = main(args(files, ["cluster", "provision"], "pairs", "scalability", out=tmp_path / "s.csv"))
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("hera: error: unknown model 'dien'") and err.count("\n") == 1


def test_hera_without_predictions_is_a_one_line_error(files, tmp_path, capsys):
    rc = main(args(files, ["policy", "evaluate"], "pairs", "scalability", out=tmp_path / "p"))
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith("hera: error: policy 'hera' decides from pair predictions: pass --predicted")


def test_predictions_missing_a_pair_of_the_mix_is_a_one_line_error(files, tmp_path, capsys):
    pred = pd.read_csv(files["predicted"])
    keep = ~((pred.model_a == "dlrm_rmc1") & (pred.model_b == "dlrm_rmc3"))
    files["predicted"] = tmp_path / "partial.csv"
    pred[keep].to_csv(files["predicted"], index=False)
    rc = main(args(files, ["policy", "evaluate"], "pairs", "scalability", "predicted", out=tmp_path / "p"))
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert "pair prediction table (colocation/predicted.csv) has no rows for pair (dlrm_rmc1, dlrm_rmc3)" in err
