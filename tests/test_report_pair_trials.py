"""F4's joint trials against their control variates (hera.report.pair_trials, `hera bench pair-trials`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hera import config as cfgmod
from hera.cli import main
from hera.errors import HeraError
from hera.paths import repo_root
from hera.profile.colocation import tenant_model
from hera.profile.service import SAMPLE_COLUMNS, read_samples
from hera.report.pair_trials import residuals, summary

SIZES = (8, 36, 64)
#: the tail each tenant's trials lie above its model by, by the tenant's own share of the ray
LIFT = {0.75: 0.0, 0.5: 0.3, 0.25: 0.2}


def _samples(model: str, scale: float, n: int = 12) -> pd.DataFrame:
    rows, t = [], 0
    for regime in ("light", "saturated"):
        for k in SIZES:
            for i in range(n):
                ms = scale * (0.2 + 0.02 * k) * (1 + 0.05 * (i % 3))
                start, end = t, t + int(ms * 1e6)
                t = end
                rows.append({"model": model, "workers": 1, "regime": regime, "query": len(rows), "query_items": k,
                             "weight": 1.0, "sub_index": 0, "items": k, "worker": 0, "t_submit_ns": start,
                             "t_start_ns": start, "t_end_ns": end, "service_ms": ms, "query_latency_ms": ms + 0.05,
                             "dispatch_ms": 0.05})
    return pd.DataFrame(rows, columns=SAMPLE_COLUMNS)


@pytest.fixture()
def config():
    return cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=["model.queries=600", "model.replicates=4"])


def _run(root: Path, config, a: str = "x", b: str = "y", drift: dict | None = None) -> tuple[Path, dict]:
    """A finished run of one pair ``a`` + ``b`` on 1+1 cores: its trials' adjusted tails lie ``LIFT`` (log) above
    the model the stage would have built for them; each tenant served ``drift[own share]`` (log) slower than
    predicted (default: as predicted)."""
    res = root / "results" / "ci"
    for d in ("profile/service", "colocation/pairs"):
        (res / d).mkdir(parents=True)
    (res / "config.json").write_text(json.dumps(config, default=str))
    for m, sc in ((a, 1.0), (b, 2.0)):
        _samples(m, sc).to_parquet(res / "profile" / "service" / f"{m}.parquet")
    pd.DataFrame([{"model": m, "workers": 1, "qps_star": 100.0, "sla_ms": 30.0, "tail_log_slope": 2.0,
                   "trial_crossing_sd": 0.1} for m in (a, b)]).to_csv(res / "profile" / "scalability.csv",
                                                                        index=False)
    pred, trials, truth = [], [], {}
    for s in (0.5, 0.75, 0.25):
        pred.append({"model_a": a, "model_b": b, "cores_a": 1, "cores_b": 1, "ways_a": None, "ways_b": None,
                     "llc": "shared", "share_a": s, "inflation_a": 1.1, "inflation_b": 1.05,
                     "service_scale_a": 0.9, "service_scale_b": 1.2})
        stream = f"colocation/{a}__{b}/1+1/None/{s:g}"
        for side, m, scale, own in (("a", a, 1.1 * 0.9, s), ("b", b, 1.05 * 1.2, 1 - s)):
            tail = tenant_model(config, read_samples(res / "profile" / "service" / f"{m}.parquet", m), 1, scale,
                                f"{stream}/{side}").tail_model()
            for rep, base in enumerate((20.0, 30.0)):
                rate = base * (0.5 + own)  # a tenant's rate rises with its own share of the ray
                model_ms = math.exp(tail.expected_log_tail(rate, [200], 5))
                trials.append({"model_a": a, "model_b": b, "cores_a": 1, "cores_b": 1, "ways_a": None,
                               "ways_b": None, "share_a": s, "repeat": rep, "tenant": m, "rate_qps": rate,
                               "chunks": 1, "warmup_queries": 5, "n_measured": 200, "sla_ms": 30.0,
                               "latency_ms_pct_adjusted": model_ms * math.exp(LIFT[round(own, 2)]),
                               "service_drift": math.exp((drift or {}).get(round(own, 2), 0.0))})
                truth[(s, m, rep)] = model_ms
    pd.DataFrame(pred).to_csv(res / "colocation" / "predicted.csv", index=False)
    pd.DataFrame(trials).to_csv(res / "colocation" / "pairs" / f"{a}__{b}.trials.csv", index=False)
    return res, truth


def test_residuals_recover_how_far_each_tail_lay_above_its_model(config, tmp_path):
    res, truth = _run(tmp_path, config)
    df = residuals(res)
    assert len(df) == 12
    for r in df.itertuples():
        # the model is rebuilt as the stage built it: the same seed, inflation and calibration
        assert r.latency_ms_model == pytest.approx(truth[(r.share_a, r.tenant, r.repeat)], rel=1e-9)
        assert r.residual == pytest.approx(LIFT[round(r.own_share, 2)], abs=1e-9)
    # tenant b's own share is 1 - share_a
    assert set(df[df["side"] == "b"]["own_share"].round(2)) == {0.5, 0.25, 0.75}
    fig = summary(df)
    assert fig["by_own_share"]["0.5"]["mean_residual"] == pytest.approx(0.3)
    eff = fig["partner_load_effect"]
    assert eff["balanced_vs_favoured"]["value"] == pytest.approx(0.3)
    assert eff["light_vs_favoured"]["value"] == pytest.approx(0.2)
    assert fig["by_own_share"]["0.5"]["residual_sd_within_point"] == pytest.approx(0.0, abs=1e-9)
    assert fig["by_tenant"]["x"]["0.25"] == pytest.approx(0.2)
    # the fixture serves every trial as predicted: no drift gradient, partner by partner
    assert fig["service_drift_gradient"]["by_partner"]["y"]["0.25"] == pytest.approx(0.0)
    # the fixture predicts the same inflation on every ray: nothing served slower either
    assert fig["service_drift_gradient"]["served_by_partner"]["y"]["0.25"] == pytest.approx(0.0)
    assert set(df["partner"]) == {"x", "y"}


def test_a_prediction_that_is_not_the_runs_is_a_one_line_error(config, tmp_path):
    res, _ = _run(tmp_path, config)
    pred = pd.read_csv(res / "colocation" / "predicted.csv")
    pred[pred["share_a"] != 0.25].to_csv(res / "colocation" / "predicted.csv", index=False)
    with pytest.raises(HeraError, match="no row for x \\+ y on 1\\+1, LLC shared, ray 0.25"):
        residuals(res)
    with pytest.raises(HeraError, match="config.json does not exist"):
        residuals(tmp_path / "nowhere")
    (res / "colocation" / "pairs" / "x__y.trials.csv").unlink()
    with pytest.raises(HeraError, match="holds no \\*.trials.csv"):
        residuals(res)


def test_the_bench_prints_each_run_and_the_pooled_figure(config, tmp_path, capsys):
    res, _ = _run(tmp_path, config)
    out = tmp_path / "pt.json"
    assert main(["bench", "pair-trials", "--from-results", str(res), str(res), "--labels", "r1,r2",
                 "--scale", "ci", "--out", str(out)]) == 0
    fig = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(fig["runs"]) == {"r1", "r2"} and fig["pooled"]["trials"] == 24
    assert fig["pooled"]["partner_load_effect"]["balanced_vs_favoured"]["value"] == pytest.approx(0.3)
    assert json.loads(out.read_text())["figure"] == fig
    assert main(["bench", "pair-trials", "--from-results", str(res), "--labels", "a,b", "--scale", "ci"]) != 0
    assert np.isfinite(fig["pooled"]["by_own_share"]["0.75"]["mean_residual"])


def test_the_service_drift_gradient_is_read_per_partner_and_per_tenant():
    from hera.report.pair_trials import drift_gradient

    # x next to partner y ran 4% / 8% slower than predicted at its own share 0.5 / 0.25 than at 0.75 (y light);
    # y next to x 2% / 6%; each cell holds three trials around that level, and NaN drifts are left out
    lift = {("x", "y"): {0.5: 0.04, 0.25: 0.08}, ("y", "x"): {0.5: 0.02, 0.25: 0.06}}
    rows = []
    for run, base in (("r1", 0.1), ("r2", -0.2)):  # a whole run faster or slower: the gradient takes it out
        for (t, p), up in lift.items():
            for own in (0.75, 0.5, 0.25):
                for k, jitter in enumerate((-0.01, 0.0, 0.01)):
                    rows.append({"run": run, "tenant": t, "partner": p, "own_share": own,
                                 "service_drift": math.exp(base + up.get(own, 0.0) + jitter),
                                 # the prediction already slowed x next to a loaded y by 1% / 2%
                                 "inflation": math.exp({0.5: 0.01, 0.25: 0.02}.get(own, 0.0) if t == "x" else 0.0)})
            rows.append({"run": run, "tenant": t, "partner": p, "own_share": 0.5, "service_drift": math.nan,
                         "inflation": 1.0})
    g = drift_gradient(pd.DataFrame(rows))
    assert g["cells"] == 4
    assert g["by_partner"]["y"]["0.5"] == pytest.approx(0.04) and g["by_partner"]["y"]["0.25"] == pytest.approx(0.08)
    assert g["by_tenant"]["y"]["0.25"] == pytest.approx(0.06) and g["by_tenant"]["y"]["cells"] == 2
    assert g["mean"]["0.5"] == pytest.approx(0.03)
    # served = predicted inflation + drift: x next to y 5% / 10% slower than next to a light y
    assert g["served_by_partner"]["y"]["0.25"] == pytest.approx(0.10)
    assert g["served_by_partner"]["x"]["0.5"] == pytest.approx(0.02) and g["served_mean"]["0.5"] == pytest.approx(0.035)
    # without a favoured-ray reference there is nothing to take the difference from
    light = pd.DataFrame([r for r in rows if r["own_share"] != 0.75])
    assert drift_gradient(light) == {"by_partner": {}, "by_tenant": {}, "served_by_partner": {}, "cells": 0}


def _cells(drift: dict) -> pd.DataFrame:
    """Trials of tenants next to partners: ``drift[(tenant, partner)] = (log drift at own 0.5, at 0.25)``; the
    partner runs at utilisation 0.2 / 0.5 / 0.8 as the tenant's own share goes 0.75 / 0.5 / 0.25."""
    util = {0.75: 0.2, 0.5: 0.5, 0.25: 0.8}
    rows = []
    for run in ("r1", "r2"):
        for (t, p), (mid, heavy) in drift.items():
            for own, up in ((0.75, 0.0), (0.5, mid), (0.25, heavy)):
                rows.append({"run": run, "tenant": t, "partner": p, "own_share": own, "partner_utilisation": util[own],
                             "service_drift": math.exp(0.1 + up), "inflation": 1.0})
    return pd.DataFrame(rows)


def test_the_node_profile_pools_the_gradient_and_leaves_each_models_pairs_out(tmp_path):
    from hera.profile.pair_prediction import read_neighbour_profiles
    from hera.report.pair_trials import node_profile

    df = _cells({("x", "y"): (0.04, 0.10), ("y", "x"): (0.06, 0.12), ("z", "w"): (0.10, 0.20),
                 ("w", "z"): (0.10, 0.20)})
    prof = node_profile(df, ["x", "y", "z", "w", "v"])
    x = prof[prof["model"] == "x"].set_index("own_share")
    # x's knots pool only z and w's cells (it is in the other two)
    assert x.loc[0.75, "extra_inflation"] == pytest.approx(1.0)
    assert x.loc[0.5, "extra_inflation"] == pytest.approx(math.exp(0.10), rel=1e-4)
    assert x.loc[0.25, "utilisation"] == pytest.approx(0.8) and x.loc[0.25, "cells"] == 4
    # v is in no pair: every cell
    v = prof[prof["model"] == "v"].set_index("own_share")
    assert v.loc[0.5, "extra_inflation"] == pytest.approx(math.exp((0.04 + 0.06 + 0.10 + 0.10) / 4), rel=1e-4)
    every = node_profile(df, ["x"], leave_model_out=False).set_index("own_share")
    assert every.loc[0.25, "extra_inflation"] == pytest.approx(math.exp(0.155), rel=1e-4)
    # what predict-pairs reads from it: knots from (0, 1), e by the partner's utilisation
    prof.to_csv(tmp_path / "node.csv", index=False)
    u, e = read_neighbour_profiles([str(tmp_path / "node.csv")])["x"]
    assert list(u) == pytest.approx([0.0, 0.2, 0.5, 0.8]) and e[2] == pytest.approx(math.exp(0.10), rel=1e-4)


def test_a_node_profile_without_the_three_rays_or_other_cells_is_a_one_line_error():
    from hera.report.pair_trials import node_profile

    df = _cells({("x", "y"): (0.04, 0.10)})
    with pytest.raises(HeraError, match="no cell without 'x'"):
        node_profile(df, ["x"])
    with pytest.raises(HeraError, match="three rays"):
        node_profile(df[df["own_share"] != 0.25], ["x"], leave_model_out=False)
    with pytest.raises(HeraError, match="no joint trial"):
        node_profile(df.assign(service_drift=math.nan), ["x"])


def test_the_bench_writes_the_node_profile(config, tmp_path, capsys):
    res, _ = _run(tmp_path, config)
    cfg = json.loads((res / "config.json").read_text())  # ci measures the neighbour channel: this run did not
    cfg["interference"]["neighbour"]["enabled"] = False
    (res / "config.json").write_text(json.dumps(cfg))
    out, prof = tmp_path / "pt.json", tmp_path / "node.csv"
    assert main(["bench", "pair-trials", "--from-results", str(res), "--labels", "r1", "--scale", "ci",
                 "--out", str(out), "--node-profile", str(prof), "--all-cells"]) == 0
    fig = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    table = pd.read_csv(prof)
    assert set(table["model"]) == set(config["models"]) and "git_commit" in table.columns
    assert fig["node_profile"]["leave_model_out"] is False and len(fig["node_profile"]["knots"]) == 3
    # the fixture serves every trial as predicted: no extra at any knot
    assert table["extra_inflation"].to_numpy() == pytest.approx(1.0)
    u = table[table["model"] == config["models"][0]].sort_values("own_share", ascending=False)["utilisation"]
    assert u.is_monotonic_increasing and u.iloc[0] < u.iloc[-1]  # the partner busier as the tenant's share falls
    # a run whose prediction had a channel measured its drift net of it: refused, naming it
    (res / "config.json").write_text(json.dumps({**cfg, "colocation": {**cfg["colocation"], "node_profile": "x.csv"}}))
    assert main(["bench", "pair-trials", "--from-results", str(res), "--labels", "r1", "--scale", "ci",
                 "--node-profile", str(tmp_path / "net.csv")]) != 0
    assert "predicted its pairs with a neighbour channel" in capsys.readouterr().err
    assert not (tmp_path / "net.csv").exists()
    # a study of just the pair's models: leaving each model's pairs out leaves nothing, a one-line error, no file
    (res / "config.json").write_text(json.dumps({**cfg, "models": ["x", "y"]}, default=str))
    assert main(["bench", "pair-trials", "--from-results", str(res), "--labels", "r1", "--scale", "ci",
                 "--node-profile", str(tmp_path / "none.csv")]) != 0
    assert "no cell without 'x'" in capsys.readouterr().err
    assert not (tmp_path / "none.csv").exists()


def test_node_calibration_pairs_are_put_in_study_order_and_bad_ones_are_named():
    from hera.profile.node_calibration import check_pairs

    models, scored = ["a", "b", "c", "d"], ["a", "b", "c"]
    assert check_pairs(["d__a", "b__d"], models, scored) == [("a", "d"), ("b", "d")]
    for pairs, match in ((["a_d"], "expected 'model_a__model_b'"), (["a__e"], "'e' is not a model of this study"),
                         (["d__d"], "names the same model twice"), (["a__b"], "is a scored pair"),
                         (["a__d", "d__a"], "listed twice")):
        with pytest.raises(HeraError, match=match):
            check_pairs(pairs, models, scored)


def _calibration_run(tmp_path: Path, config, drift: dict) -> tuple[Path, Path]:
    """A finished calibration pair dlrm_rmc1 + mtwnd (mtwnd outside colocation.models) and its study config."""
    config = {**config, "models": [*config["models"], "mtwnd"],
              "colocation": {**config["colocation"], "node_calibration": ["mtwnd__dlrm_rmc1"]}}
    config["interference"] = {**config["interference"], "neighbour": {**config["interference"]["neighbour"],
                                                                      "enabled": False}}
    res, _ = _run(tmp_path, config, "dlrm_rmc1", "mtwnd", drift)
    return res, res / "config.json"


def _calibrate(res: Path, cfg: Path, out: Path, trials: list[Path] | None = None, models=("dlrm_rmc1", "mtwnd")):
    return main(["profile", "node-calibration", "--config", str(cfg), "--predicted",
                 str(res / "colocation" / "predicted.csv"), "--scalability", str(res / "profile" / "scalability.csv"),
                 "--service", *[str(res / "profile" / "service" / f"{m}.parquet") for m in models],
                 "--trials", *[str(t) for t in (trials or [res / "colocation" / "pairs" / "dlrm_rmc1__mtwnd.trials.csv"])],
                 "--out", str(out)])


def test_the_node_calibration_measured_in_the_run_is_every_models_neighbour_profile(config, tmp_path, capsys):
    """The calibration pair's tenants served 5% / 12% (log) slower than predicted at their own share 0.5 / 0.25
    than at 0.75: the node profile of every study model says so, at the partners' utilisations."""
    from hera.profile.pair_prediction import read_neighbour_profiles

    res, cfg = _calibration_run(tmp_path, config, {0.75: 0.02, 0.5: 0.07, 0.25: 0.14})
    out = tmp_path / "node_calibration.csv"
    assert _calibrate(res, cfg, out) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["pairs"] == ["dlrm_rmc1__mtwnd"] and sorted(last["extra_inflation"].values()) == pytest.approx(
        [1.0, math.exp(0.05), math.exp(0.12)], rel=1e-4)
    table = pd.read_csv(out)
    assert set(table["model"]) == {"dlrm_rmc1", "dlrm_rmc3", "wnd", "mtwnd"} and "git_commit" in table.columns
    assert table["note"].str.contains("outside colocation.models \\(dlrm_rmc1__mtwnd\\)").all()
    u, e = read_neighbour_profiles([str(out)])["wnd"]  # a scored model, calibrated on pairs it is not in
    assert list(e) == pytest.approx([1.0, 1.0, math.exp(0.05), math.exp(0.12)], rel=1e-4) and list(u) == sorted(u)


def test_a_node_calibration_without_its_pairs_trials_or_profiles_is_a_one_line_error(config, tmp_path, capsys):
    res, cfg = _calibration_run(tmp_path, config, {})
    out = tmp_path / "node_calibration.csv"
    other = res / "colocation" / "pairs" / "dlrm_rmc1__wnd.trials.csv"  # a scored pair's trials instead
    t = pd.read_csv(res / "colocation" / "pairs" / "dlrm_rmc1__mtwnd.trials.csv")
    t.assign(model_b="wnd").to_csv(other, index=False)
    pred = pd.read_csv(res / "colocation" / "predicted.csv")
    pd.concat([pred, pred.assign(model_b="wnd")]).to_csv(res / "colocation" / "predicted.csv", index=False)
    (res / "profile" / "service" / "mtwnd.parquet").rename(res / "profile" / "service" / "wnd.parquet")
    assert _calibrate(res, cfg, out, [other], ("dlrm_rmc1", "wnd")) != 0
    assert "no joint trial of node calibration pair dlrm_rmc1__mtwnd" in capsys.readouterr().err
    assert _calibrate(res, cfg, out, None, ("dlrm_rmc1",)) != 0
    assert "no service profile given for 'mtwnd'" in capsys.readouterr().err
    c = json.loads(cfg.read_text())
    c["colocation"]["node_calibration"] = ["dlrm_rmc1__wnd"]
    cfg.write_text(json.dumps(c))
    assert _calibrate(res, cfg, out, [other], ("dlrm_rmc1", "wnd")) != 0
    assert "'dlrm_rmc1__wnd' is a scored pair" in capsys.readouterr().err
    assert not out.exists()


def test_the_calibration_split_summary_counts_draws_where_the_calibration_helps():
    from hera.report.calibration_split import summarise

    def draw(without: float, with_: float) -> dict:
        return {"without": {"mean_abs_emu_error": without, "median_abs_rel_error": 0.2},
                "with": {"mean_abs_emu_error": with_, "median_abs_rel_error": 0.1}}

    fig = summarise([draw(0.12, 0.08), draw(0.09, 0.11), draw(0.11, 0.095), draw(math.nan, 0.05)], 0.10)
    assert fig["draws_n"] == 4  # the NaN draw is counted but not scored
    assert fig["mean_abs_emu_error"] == {"without": pytest.approx(0.1067, abs=1e-4), "with": pytest.approx(0.095)}
    assert fig["share_lower_with"] == pytest.approx(0.6667, abs=1e-4)
    assert fig["share_meeting_emu_bar"] == {"without": pytest.approx(0.3333, abs=1e-4), "with": pytest.approx(0.6667,
                                                                                                               abs=1e-4)}
    assert summarise([], 0.1) == {"draws_n": 0}


def test_the_calibration_split_refuses_runs_it_cannot_read(config, tmp_path, capsys):
    import random

    from hera.report.calibration_split import evaluate

    res, _ = _run(tmp_path, config)  # ci measures the neighbour channel: its drift is net of it
    assert main(["bench", "calibration-split", "--from-results", str(res), "--scale", "ci",
                 "--out", str(tmp_path / "cs.json")]) != 0
    assert "predicted its pairs with a neighbour channel" in capsys.readouterr().err
    cfg = json.loads((res / "config.json").read_text())
    cfg["interference"]["neighbour"]["enabled"] = False
    (res / "config.json").write_text(json.dumps(cfg))
    pd.DataFrame([{"model_a": "x", "model_b": "y", "share_a": 0.5}]).to_csv(res / "colocation" / "pairs.csv",
                                                                            index=False)
    with pytest.raises(HeraError, match="measured 1 pairs: --pairs must leave at least one to score"):
        evaluate(res, 1, 2, random.Random(0), 0.1)
    assert main(["bench", "calibration-split", "--from-results", str(res), "--choices", "0", "--scale", "ci"]) != 0
    assert "--choices must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "cs.json").exists()
