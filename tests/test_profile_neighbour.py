"""The neighbour channel (hera.profile.neighbour): settings, the conversion of a measured tail ratio into an extra
inflation on the prediction's own model, reading profiles, and the prediction with them."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from hera import config as cfgmod
from hera.cli import main
from hera.errors import ConfigError
from hera.harness import NodeOptions
from hera.paths import repo_root
from hera.profile import neighbour as nb
from hera.profile.pair_prediction import (
    NoInterference, PairSplit, PredictionError, boundary, inflation, interference_from_files, tenant_curve,
)
from hera.queueing.qps import ModelSettings
from hera.queueing.service import ServiceLaw

CPUS = sorted(os.sched_getaffinity(0))
SETTINGS = ModelSettings(n_queries=3000, warmup_queries=300, replicates=6, seed=4)
ITEMS = np.random.default_rng(0).choice([100, 200, 200, 300, 700], 3000)


def law(ms_per_64: float) -> ServiceLaw:
    rng = np.random.default_rng(1)
    pools = {n: rng.gamma(20, ms_per_64 * n / 64 / 20, 400) for n in (64, 36, 8, 44, 60)}
    return ServiceLaw(1, 64, pools, pools, dispatch_ms=np.full(10, 0.1), gap_ms=0.05)


def curve(model: str, ms: float = 4.0, sla: float = 120.0):
    return tenant_curve(law(ms), ITEMS, sla, 0.95, SETTINGS, model=model)


def _settings(**kw):
    base = {"enabled": True, "reference": ["r1", "r2"], "fractions": [0.85, 0.02, 0.35]}
    return nb.NeighbourSettings.from_config({"interference": {"neighbour": {**base, **kw}}})


def test_settings_sort_fractions_pick_a_reference_other_than_the_model_and_size_windows():
    st = _settings(min_queries=300, min_seconds=3.0)
    assert st.fractions == (0.02, 0.35, 0.85) and st.enabled and st.blocks == 2
    assert st.reference_for("x") == "r1" and st.reference_for("r1") == "r2"
    assert st.window_s(50.0) == pytest.approx(6.0) and st.window_s(1000.0) == 3.0
    assert not nb.NeighbourSettings.from_config({"interference": {}}).enabled


@pytest.mark.parametrize("kw, msg", [({"reference": ["r1"]}, "two distinct models"),
                                     ({"reference": ["r1", "r1"]}, "two distinct models"),
                                     ({"fractions": [0.5]}, "at least two distinct fractions"),
                                     ({"fractions": [0.1, 2.0]}, "at least two distinct fractions")])
def test_bad_neighbour_settings_are_one_line_config_errors(kw, msg):
    with pytest.raises(ConfigError, match=f"interference.neighbour.*{msg}"):
        _settings(**kw)


def test_the_schema_fills_the_neighbour_defaults_and_refuses_an_unknown_key():
    cfg = cfgmod.load(repo_root() / "workflow/config/ci.yaml")
    n = cfg["interference"]["neighbour"]
    assert n["enabled"] and n["reference"] == ["dlrm_rmc1", "wnd"] and n["load"] == 0.85
    with pytest.raises(Exception, match="neighbour"):
        cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=["interference.neighbour.blokcs=3"])


def test_each_fraction_is_a_ratio_within_its_block():
    w = pd.DataFrame([{"block": b, "fraction": f, "latency_ms_p": v * drift}
                      for b, drift in ((0, 1.0), (1, 3.0)) for f, v in ((0.02, 10.0), (0.85, 25.0))])
    r = nb.block_ratios(w, "latency_ms_p")
    assert list(r[0.02]) == [1.0, 1.0] and list(r[0.85]) == pytest.approx([2.5, 2.5])  # the drift cancels


def test_the_extra_inflation_reproduces_the_measured_tail_ratio_on_the_model():
    c = curve("a")
    lam = 0.85 * float(np.median(c.qps_star()))
    f0, f1 = np.ones(c.replicates), np.full(c.replicates, 1.05)
    # a measurement equal to what the model predicts needs nothing extra
    e, pred = nb.extra_inflation(c, lam, f0, f1, float(np.median(nb.tail_ms(c, lam, f1) / nb.tail_ms(c, lam, f0))))
    assert e == pytest.approx(1.0, abs=0.01) and pred > 1.0
    # twice the predicted tail needs an extra inflation, and that inflation gives it back
    e2, _ = nb.extra_inflation(c, lam, f0, f1, 2.0 * pred)
    assert e2 > 1.02
    assert float(np.median(nb.tail_ms(c, lam, f1 * e2) / nb.tail_ms(c, lam, f0))) == pytest.approx(2 * pred, rel=0.05)
    # a smaller tail than predicted: below one (the table keeps it, the reader floors it at 1)
    assert nb.extra_inflation(c, lam, f0, f1, 0.8)[0] < 1.0
    # past the curve's last rate the tail is infinite (saturated), never extrapolated
    assert np.isinf(nb.tail_ms(c, 10 * lam, 1.0)).all()


def test_the_profile_table_has_one_row_per_fraction_with_the_lightest_as_reference():
    ca, cr = curve("a", 4.0).with_harness(0.5), curve("r", 2.0).with_harness(0.5)
    alone = {("a", 1): float(np.median(ca.qps_star())), ("r", 1): float(np.median(cr.qps_star()))}
    lam = 0.85 * alone[("a", 1)]
    windows = [{"block": b, "fraction": f, "partner_qps": f * alone[("r", 1)], "tenant_qps": lam, "queries": 100,
                "service_ms_mean": 1.0 * s, "latency_ms_p": 10.0 * s}
               for b in (0, 1) for f, s in ((0.02, 1.0), (0.35, 1.1), (0.85, 2.0))]
    st = _settings(reference=["r", "q"])
    df = nb.profile_table(windows, "a", "r", st, 0.95, {("a", 1): ca, ("r", 1): cr}, alone,
                          PairSplit(1, 1, harness_shared=True), NoInterference(), 5.0)
    assert list(df.columns) == list(nb.COLUMNS) and list(df["fraction"]) == [0.02, 0.35, 0.85]
    assert df["extra_inflation"].iloc[0] == 1.0 and "reference point" in df["note"].iloc[0]
    assert df["p_latency_ratio"].tolist()[1:] == pytest.approx([1.1, 2.0])
    assert df["extra_inflation"].iloc[2] > df["extra_inflation"].iloc[1] > 1.0
    # the harness's share of the workers' cores is part of the prediction the extra is measured against
    assert df["predicted_inflation"].iloc[2] > 1.0
    u = df["utilisation"].to_numpy()
    assert 0 < u[0] < u[1] < u[2] < 1


def test_profiles_are_read_as_knots_from_zero_and_never_speed_a_tenant_up(tmp_path):
    p = tmp_path / "a.csv"
    pd.DataFrame({"model": ["a"] * 3, "utilisation": [0.02, 0.3, 0.7], "extra_inflation": [1.0, 0.9, 1.2]}).to_csv(
        p, index=False)
    u, e = nb.read_neighbour_profiles([str(p)])["a"]
    assert list(u) == [0.0, 0.02, 0.3, 0.7] and list(e) == [1.0, 1.0, 1.0, 1.2]
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"model": ["a"], "utilisation": [0.1]}).to_csv(bad, index=False)
    with pytest.raises(PredictionError, match="no column 'extra_inflation'"):
        nb.read_neighbour_profiles([str(bad)])


def test_the_prediction_multiplies_the_extra_at_the_partners_utilisation(tmp_path):
    p = tmp_path / "a.csv"
    pd.DataFrame({"model": ["a", "a"], "utilisation": [0.0, 0.5], "extra_inflation": [1.0, 1.2]}).to_csv(p, index=False)
    inter = interference_from_files([], None, neighbour=[str(p)])
    assert isinstance(inter, nb.NeighbourInterference) and isinstance(inter.inner, NoInterference)
    u = np.array([0.0, 0.25, 0.5, 0.9])
    assert inflation("a", "b", 1, u, None, inter) == pytest.approx([1.0, 1.1, 1.2, 1.2])  # flat past the last knot
    assert inflation("b", "a", 1, u, None, inter) == pytest.approx([1.0] * 4)  # b has no profile
    assert interference_from_files([], None) .__class__ is NoInterference  # none given: no channel
    # in a pair the channel lowers the balanced boundary, where the partner is loaded
    a, b = curve("a", 5.0, 150.0), curve("b", 5.0, 150.0)
    alone = float(np.median(a.qps_star()))
    plain = boundary(a, b, PairSplit(1, 1), alone, alone, 0.5, NoInterference())
    with_nb = boundary(a, b, PairSplit(1, 1), alone, alone, 0.5, inter)
    assert 0 < np.median(with_nb.scale) < np.median(plain.scale)
    with pytest.raises(PredictionError, match="no neighbour profile for model 'b'"):
        inter.inflation("b", nb.NEIGHBOUR, 0.5)


def test_the_neighbour_command_names_a_missing_service_profile(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text((repo_root() / "workflow/config/ci.yaml").read_text())
    rc = main(["profile", "neighbour", "--config", str(cfg), "--model", "dlrm_rmc3", "--t1", str(tmp_path / "T1.csv"),
               "--scalability", str(tmp_path / "s.csv"), "--service", str(tmp_path / "dlrm_rmc3.parquet"),
               "--out", str(tmp_path / "o.csv")])
    assert rc != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("hera: error:") and "'dlrm_rmc1'" in err[-1] and "service profile" in err[-1]


@pytest.mark.slow
@pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 usable CPUs")
def test_the_victims_stream_is_the_same_at_every_fraction_of_a_block(monkeypatch):
    """Common random numbers: within a block only the neighbour's rate and stream change."""
    seen = []
    real = nb.run_window

    def spy(sut, bases, lib, rates, seconds, seeds):
        seen.append(dict(seeds))
        return real(sut, bases, lib, rates, seconds, seeds)

    monkeypatch.setattr(nb, "run_window", spy)
    cfg = {**cfgmod.load(repo_root() / "workflow/config/ci.yaml"), "cores": CPUS[:2]}
    w = nb.measure_windows(cfg, "x", "y", {"x": 40.0, "y": 40.0}, {"x": 200.0, "y": 200.0}, 0.5, [0.1, 0.6], 2,
                           1.0, NodeOptions(runner="synthetic"))
    assert len(w) == 4 and all(r["queries"] > 0 and r["latency_ms_p"] > 0 for r in w)
    blocks = [seen[1:3], seen[3:5]]  # seen[0]: the warm-up window
    for blk in blocks:
        victim = {s for s in blk[0] if s.startswith("x")}.pop()
        other = ({s for s in blk[0]} - {victim}).pop()
        assert blk[0][victim] == blk[1][victim] and blk[0][other] != blk[1][other]
    assert blocks[0][0] != blocks[1][0]  # a new block, new streams
