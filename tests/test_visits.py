"""F4's independent visits (colocation.visits): pooling a pair's visits into its points, the pooled joint trials,
the config check, and every failure path of `hera profile pool-visits`."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from hera import config as cfgmod
from hera.cli import main
from hera.errors import ConfigError, HeraError
from hera.paths import repo_root
from hera.profile import colocation, visits
from hera.provenance import write_table


def _row(per: list[float], visit: int = 1, **over) -> dict:
    """A visit's row of the balanced ray of syna + synb, as hera profile colocation writes it."""
    scale = float(np.median(per))
    row = {c: math.nan for c in colocation.COLUMNS}
    row.update(model_a="syna", model_b="synb", cores_a=1, cores_b=1, ways_a=math.nan, ways_b=math.nan, llc="shared",
               share_a=0.5, qps_alone_a=100.0, qps_alone_b=200.0, qps_whole_a=180.0, qps_whole_b=300.0,
               ray_scale=scale, ray_scale_raw=scale * 1.01, per_repeat=";".join(f"{x:.6g}" for x in per),
               predicted_qps_star_a=60.0, predicted_qps_star_b=120.0, predicted_emu=0.7, predicted_scale=1.2,
               predicted_best=True, selected_as="predicted best", sla_ms_a=10.0, sla_ms_b=12.0, percentile=0.95,
               repeats=len(per), retested=visit % 2, n_trials=2 * len(per), trial_seconds=4.0, wall_seconds=9.0,
               service_drift_a=[1.1, 1.2, 1.3][visit - 1], service_drift_b=1.0, anchor_a=[0.9, 1.0, 1.1][visit - 1],
               anchor_b=1.0, anchor_seconds=2.5, anchored_emu=[0.6, 0.7, 0.8][visit - 1], predicted_served_emu=0.65,
               note=f"{len(per)} repeats of fixed-length open-loop trials", best=True)
    from hera.loadgen.confirm import median_ci

    lo, hi, level = median_ci(per, 0.95)
    w = 50 / 180 + 100 / 300
    row.update(qps_star_a=50 * scale, qps_star_a_lo=50 * lo, qps_star_a_hi=50 * hi, qps_star_b=100 * scale,
               qps_star_b_lo=100 * lo, qps_star_b_hi=100 * hi, emu=w * scale, emu_lo=w * lo, emu_hi=w * hi,
               ci_level=level)
    row.update(over)
    return row


def _trials(n_repeats: int, share: float = 0.5) -> pd.DataFrame:
    rows = []
    for r in range(n_repeats):
        for k in range(2):
            for tenant in ("syna", "synb"):
                rows.append({c: math.nan for c in colocation.TRIAL_COLUMNS} | dict(
                    model_a="syna", model_b="synb", cores_a=1, cores_b=1, share_a=share, repeat=r, attempt=0,
                    trial=2 * r + k, scale=1.0 + 0.1 * k, tenant=tenant, passed=k == 0))
    return pd.DataFrame(rows)


def test_three_visits_pool_to_the_median_and_interval_over_every_repeat():
    rows = [pd.DataFrame([_row([x], v)]) for v, x in enumerate((1.0, 1.3, 0.8), start=1)]
    df, trials = visits.pool(rows, [_trials(1)] * 3, confidence=0.95)
    r = df.iloc[0]
    assert len(df) == 1 and r["visits"] == 3 and r["repeats"] == 3 and r["per_repeat"] == "1;1.3;0.8"
    assert r["ray_scale"] == 1.0 and (r["qps_star_a_lo"], r["qps_star_a_hi"]) == (0.8 * 50, 1.3 * 50)
    assert r["ci_level"] == pytest.approx(0.75)  # [min, max] of three: 1 - 2 / 8
    w = 50 / 180 + 100 / 300
    assert (r["qps_star_a"], r["qps_star_b"], r["emu"]) == pytest.approx((50.0, 100.0, w))
    assert r["emu_lo"] == pytest.approx(0.8 * w) and r["emu_hi"] == pytest.approx(1.3 * w)
    assert r["ray_scale_raw"] == pytest.approx(1.01)
    assert (r["n_trials"], r["trial_seconds"], r["wall_seconds"], r["anchor_seconds"], r["retested"]) == \
        (6, 12.0, 27.0, 7.5, 2)
    assert r["service_drift_a"] == pytest.approx((1.1 * 1.2 * 1.3) ** (1 / 3))
    assert r["anchor_a"] == pytest.approx((0.9 * 1.0 * 1.1) ** (1 / 3)) and r["anchored_emu"] == pytest.approx(0.7)
    assert r["predicted_emu"] == 0.7 and r["selected_as"] == "predicted best" and bool(r["best"])
    assert r["note"].startswith("visit 1: 1 repeats") and " | visit 3: " in r["note"]
    # the joint trials: one table, each visit's repeat and trial numbers past the earlier visits'
    assert list(trials["visit"].drop_duplicates()) == [1, 2, 3]
    assert sorted(trials["repeat"].unique()) == [0, 1, 2]
    assert trials.groupby("tenant")["trial"].nunique().tolist() == [6, 6]


def test_one_visit_pools_to_its_own_rows():
    row = _row([1.0, 1.3, 0.8])
    df, trials = visits.pool([pd.DataFrame([row])], [_trials(3)], confidence=0.95)
    r = df.iloc[0]
    for col in ("ray_scale", "qps_star_a", "qps_star_b_lo", "emu_hi", "per_repeat", "repeats", "note",
                "service_drift_a", "anchored_emu"):
        assert r[col] == pytest.approx(row[col]) if isinstance(row[col], float) else r[col] == row[col], col
    assert r["visits"] == 1 and list(trials["repeat"].unique()) == [0, 1, 2]


def test_the_best_point_is_chosen_on_the_pooled_emu():
    a = [pd.DataFrame([_row([x], v), _row([y], v, share_a=0.75)]) for v, (x, y) in
         enumerate(((1.0, 0.5), (1.1, 2.0), (0.9, 2.0)), start=1)]
    df, _ = visits.pool(a, [pd.concat([_trials(1), _trials(1, 0.75)])] * 3, confidence=0.95)
    assert df.loc[df["best"], "share_a"].tolist() == [0.75]


@pytest.mark.parametrize("bad, message", [
    ({"predicted_emu": 0.9}, "disagree on predicted_emu"),
    ({"selected_as": "neighbour"}, "disagree on selected_as"),
    ({"share_a": 0.25}, "measured different points"),
    ({"model_b": "other"}, "more than one pair"),
    ({"per_repeat": math.nan}, None),
])
def test_visits_that_do_not_match_are_refused_naming_what_differs(bad, message):
    rows = [pd.DataFrame([_row([1.0], 1)]), pd.DataFrame([_row([1.2], 2, **bad)])]
    if message is None:  # a visit without per-repeat values still pools on the others'
        df, _ = visits.pool(rows, [_trials(1)] * 2, confidence=0.95)
        assert df.iloc[0]["per_repeat"] == "1"
        rows = [pd.DataFrame([_row([1.0], 1, per_repeat=math.nan)])]
        with pytest.raises(HeraError, match="carry no per-repeat values"):
            visits.pool(rows, [_trials(1)], confidence=0.95)
        return
    with pytest.raises(HeraError, match=message):
        visits.pool(rows, [_trials(1)] * 2, confidence=0.95, names=["v1.csv", "v2.csv"])


def test_a_pair_with_nothing_to_measure_pools_to_an_empty_table():
    empty = pd.DataFrame(columns=colocation.COLUMNS)
    df, trials = visits.pool([empty, empty], [pd.DataFrame(columns=colocation.TRIAL_COLUMNS)] * 2, confidence=0.95)
    assert df.empty and set(colocation.COLUMNS) <= set(df.columns) and "visit" in trials.columns


def test_visits_must_split_the_repeats_of_a_point():
    ci = repo_root() / "workflow/config/ci.yaml"
    assert cfgmod.visit_repeats(cfgmod.load(ci), 3) == 1
    assert cfgmod.visit_repeats(cfgmod.load(ci, ["colocation.repeats=6"]), 3) == 2
    with pytest.raises(ConfigError, match="colocation.visits: 2 visits cannot split confirm.repeats = 3"):
        cfgmod.load(ci, ["colocation.visits=2"])
    with pytest.raises(ConfigError, match="cannot split colocation.repeats = 5"):
        cfgmod.load(ci, ["colocation.repeats=5"])
    cfg = cfgmod.load(ci)
    assert colocation.ray_settings(cfg, 3).repeats == 1 and colocation.ray_settings(cfg).repeats == 3
    assert colocation.pair_stream("a", "b", 1) == "colocation/a__b" != colocation.pair_stream("a", "b", 2)
    from hera.loadgen.confirm import ConfirmSettings

    with pytest.raises(ConfigError, match="repeats must be an integer >= 3 over all visits, got 1 in each of 2"):
        ConfirmSettings(repeats=1, visits=2)


def _write_visits(tmp_path, cfg, n=3):
    paths = []
    for v in range(1, n + 1):
        p = tmp_path / "visits" / str(v) / "syna__synb.csv"
        write_table(pd.DataFrame([_row([1.0 + 0.1 * v], v)]), p, config=cfg, seed=0)
        write_table(_trials(1), visits.trials_path(p), config=cfg, seed=0)
        paths.append(p)
    return paths


def test_pool_visits_command_writes_the_pair_and_its_trials(tmp_path, capsys):
    cfg = cfgmod.load(repo_root() / "workflow/config/ci.yaml")
    path = cfgmod.dump(cfg, tmp_path / "config.json")
    points = _write_visits(tmp_path, cfg)
    out = tmp_path / "pairs" / "syna__synb.csv"
    assert main(["profile", "pool-visits", "--config", str(path), "--points", *map(str, points),
                 "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert doc["visits"] == 3 and doc["rows"] == 1 and doc["best_emu"] > 0
    df = pd.read_csv(out)
    assert df.loc[0, "repeats"] == 3 and df.loc[0, "ray_scale"] == pytest.approx(1.2)
    assert {"git_commit", "machine_id"} <= set(df.columns)
    assert sorted(pd.read_csv(visits.trials_path(out))["visit"].unique()) == [1, 2, 3]


def test_pool_visits_bad_inputs_fail_naming_them(tmp_path, capsys):
    cfg = cfgmod.load(repo_root() / "workflow/config/ci.yaml")
    path = cfgmod.dump(cfg, tmp_path / "config.json")
    points = _write_visits(tmp_path, cfg)
    out = tmp_path / "out.csv"

    def fails(*pts) -> str:
        assert main(["profile", "pool-visits", "--config", str(path), "--points", *map(str, pts),
                     "--out", str(out)]) != 0
        return capsys.readouterr().err

    assert "colocation.visits is 3 but 2 visit file(s) were given" in fails(*points[:2])
    assert "does not exist" in fails(points[0], points[1], tmp_path / "nowhere.csv")
    visits.trials_path(points[2]).unlink()
    assert "has no joint trials beside it" in fails(*points)
    assert not out.exists()
