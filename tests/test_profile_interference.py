"""Interference profiles: estimators and the reader on known answers; the stages through the serving path
(synthetic runner, ci scale, short); bad input as one-line errors."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from hera import config as cfgmod
from hera.cli import main
from hera.errors import ConfigError, ResourceError
from hera.paths import repo_root
from hera.profile.interference import load_interference, stats, table
from hera.profile.interference.table import InterferenceProfiles
from hera.profile.interference.settings import Cores, InterferenceError, Settings
from hera.profile.interference.stats import Curve, Estimate, Samples

SYN = ["--runner", "synthetic"]
CPUS = sorted(os.sched_getaffinity(0))


# ---------------------------------------------------------------------------------------------- estimators
def _samples(rng, per_size: dict[int, int], ms_per_item: float, queries: int = 0) -> Samples:
    items = np.concatenate([np.full(n, s) for s, n in per_size.items()])
    ms = items * ms_per_item * rng.lognormal(0, 0.05, items.size)
    query = np.arange(items.size) // 3 + queries  # three sub-batches per query
    return Samples.of(ms, items, query)


def test_inflation_recovers_a_known_factor_with_an_interval_that_covers_it():
    rng = np.random.default_rng(1)
    base = _samples(rng, {64: 300, 8: 100}, 0.05)
    point = _samples(rng, {64: 300, 8: 100}, 0.05 * 1.4)
    for statistic in ("mean", "p95"):
        est = stats.inflation(base, point, statistic, replicates=200, rng=rng)
        assert est.lo <= 1.4 <= est.hi and est.lo > 1.2 and abs(est.value - 1.4) < 0.05, (statistic, est)


def test_inflation_is_stratified_by_sub_batch_size():
    """A point that ran more large sub-batches (a closed loop's luck) is not slower: the inflation stays 1."""
    rng = np.random.default_rng(2)
    base = _samples(rng, {64: 200, 8: 200}, 0.05)
    point = _samples(rng, {64: 380, 8: 20}, 0.05)
    plain = point.service_ms.mean() / base.service_ms.mean()
    est = stats.inflation(base, point, "mean", rng=rng)
    assert plain > 1.5 and est.lo <= 1.0 <= est.hi and abs(est.value - 1) < 0.05


def test_bootstrap_replicates_at_once_equal_one_at_a_time():
    """The vectorised replicates (all rows of multiplicities at once) give each replicate's own statistic: p95
    exactly, the mean to rounding; a size missing from a replicate leaves the others their shares."""
    rng = np.random.default_rng(4)
    for per_size in ({64: 40, 8: 20, 1: 2}, {16: 7}, {64: 200, 4: 1}):
        s = _samples(rng, per_size, 0.05)
        r = stats._Resampler(s, stats.shares(s))
        mults = r.multiplicities(rng, 150)
        for statistic in ("mean", "p95"):
            one = np.array([r.stat(statistic, row) for row in mults])
            np.testing.assert_allclose(r.stats(statistic, mults), one, rtol=1e-12, atol=0)
            if statistic == "p95":
                assert np.array_equal(r.stats(statistic, mults), one)
    with pytest.raises(ValueError, match="unknown statistic"):
        r.stats("p50", mults)


def test_reporter_slowdown_is_a_ratio_of_medians_with_an_interval():
    rng = np.random.default_rng(3)
    alone = rng.normal(10.0, 0.3, 60)
    loaded = np.concatenate([rng.normal(8.0, 0.3, 55), [0.1] * 5])  # a few samples lost their core
    est = stats.rate_ratio(alone, loaded, rng=rng)
    assert est.lo <= 1.25 <= est.hi and abs(est.value - 1.25) < 0.03
    assert math.isnan(stats.rate_ratio(alone, np.array([]), rng=rng).value)


def test_calibration_inverse_is_monotone_and_flags_extrapolation():
    x = np.array([0.0, 0.25, 0.5, 1.0])
    y = np.array([1.0, 1.3, 1.25, 2.0])  # noisy: not monotone; isotonic regression pools 1.3 and 1.25
    assert np.all(np.diff(stats.monotone(y)) >= 0)
    assert stats.invert(x, y, 0.95) == (0.0, False)  # below the curve's start: no pressure
    v, extra = stats.invert(x, y, 1.6)
    assert 0.5 < v < 1.0 and not extra
    v, extra = stats.invert(x, y, 2.5)
    assert v > 1.0 and extra
    assert math.isnan(stats.invert(x, np.ones(4), 1.2)[0])  # a flat curve has no inverse


def test_equivalent_intensity_is_extrapolated_at_most_to_twice_the_calibrated_range():
    """Run 35's cache calibration rose 4% over the whole range; one reporter slowdown of 1.32 then extrapolated
    to an intensity of 30, and the pair predictor inflated every partner of that model 2-3.6x. Past twice the
    last calibrated intensity the value is capped there, flagged and explained; a mild extrapolation is not."""
    x = np.array([0.0, 0.25, 0.5, 1.0])
    y = np.array([0.996, 1.043, 1.027, 1.040])
    cal = Curve("cache", x, y, np.array([0.980, 1.014, 1.008, 1.020]), np.array([1.019, 1.083, 1.054, 1.094]))
    assert cal.usable()[0]  # run 35's: the top's lower bound just above the bottom's upper one
    eq = stats.equivalent(cal, Estimate(1.32, 1.07, 1.50))
    assert eq.value == stats.MAX_EXTRAPOLATION == 2.0 and eq.extrapolated and eq.hi <= 2.0 and eq.lo <= eq.value
    assert "capped at 2" in eq.note and "linear extrapolation" in eq.note
    mild = stats.equivalent(cal, Estimate(1.045, 1.03, 1.06))
    assert 1.0 < mild.value < 2.0 and mild.extrapolated and "capped" not in mild.note and mild.hi <= 2.0


def test_equivalent_intensity_interval_combines_both_uncertainties():
    cal = Curve("bandwidth", np.array([0.0, 0.5, 1.0]), np.array([1.0, 1.5, 2.0]), np.array([0.95, 1.4, 1.9]),
                np.array([1.05, 1.6, 2.1]))
    eq = stats.equivalent(cal, Estimate(1.5, 1.45, 1.55))
    assert eq.lo < 0.5 < eq.hi and eq.value == pytest.approx(0.5) and not eq.extrapolated
    flat = Curve("cache", np.array([0.0, 1.0]), np.array([1.0, 1.02]), np.array([0.95, 0.97]),
                 np.array([1.05, 1.07]))
    eq = stats.equivalent(flat, Estimate(1.5, 1.45, 1.55))
    assert math.isnan(eq.value) and eq.note.startswith("not observable on this machine: the cache reporter")


# ------------------------------------------------------------------------------------------------- reader
def _table() -> pd.DataFrame:
    rows = []
    for regime, top in (("light", 1.6), ("saturated", 2.0)):
        for x, v in ((0.0, 1.0), (0.5, 0.97), (1.0, top)):
            rows.append({"model": "m", "part": "sensitivity", "kind": "bandwidth", "intensity": x,
                         "regime": regime, "workers": 1, "metric": "mean_inflation", "value": v,
                         "value_lo": v - 0.05, "value_hi": v + 0.05})
    for w, top in ((1, 0.4), (3, 0.8)):
        for u in (0.5, 1.0):
            v = top * u
            rows.append({"model": "m", "part": "pressure", "kind": "bandwidth", "workers": w, "load_frac": u,
                         "metric": "equivalent_intensity", "value": v, "value_lo": v - 0.1,
                         "value_hi": v + 0.1})
            rows.append({"model": "m", "part": "pressure", "kind": "cache", "workers": w, "load_frac": u,
                         "metric": "equivalent_intensity", "value": math.nan, "value_lo": math.nan,
                         "value_hi": math.nan, "note": "not observable on this machine: flat"})
    return table.from_frame(pd.DataFrame(rows).reindex(columns=table.COLUMNS))


def test_reader_interpolates_clamps_and_extrapolates_inflation():
    t = _table()
    assert table.inflation(t, "m", "bandwidth", 0.0).value == 1.0
    mid = table.inflation(t, "m", "bandwidth", 0.75)
    assert mid.value == pytest.approx((0.97 + 1.6) / 2) and not mid.extrapolated
    assert table.inflation(t, "m", "bandwidth", 0.5).value == 1.0  # 0.97: noise, clamped to >= 1
    past = table.inflation(t, "m", "bandwidth", 1.5, regime="saturated")
    assert past.extrapolated and "extrapolated" in past.note
    assert past.value == pytest.approx(2.0 + (2.0 - 0.97))
    assert math.isnan(table.inflation(t, "m", "bandwidth", math.nan).value)


def test_reader_equivalent_intensity_is_linear_in_load_and_workers():
    t = _table()
    assert table.equivalent_intensity(t, "m", "bandwidth", 1, 0.25).value == pytest.approx(0.1)
    assert table.equivalent_intensity(t, "m", "bandwidth", 1, 0.0).value == 0.0
    over = table.equivalent_intensity(t, "m", "bandwidth", 1, 1.3)
    assert over.value == pytest.approx(0.4) and "above the highest measured" in over.note
    two = table.equivalent_intensity(t, "m", "bandwidth", 2, 1.0)
    assert two.value == pytest.approx(0.6) and "interpolated" in two.note and two.lo < 0.6 < two.hi
    nan = table.equivalent_intensity(t, "m", "cache", 1, 1.0)
    assert math.isnan(nan.value) and "not observable" in nan.note


@pytest.mark.parametrize("call, message", [
    (lambda t: table.inflation(t, "m", "bandwidth", -0.1), "intensity -0.1 is out of range"),
    (lambda t: table.inflation(t, "nope", "bandwidth", 0.5), "no sensitivity rows of model 'nope' (models: m"),
    (lambda t: table.inflation(t, "m", "cache", 0.5), "model 'm' has no cache sensitivity rows"),
    (lambda t: table.inflation(t, "m", "bandwidth", 0.5, regime="busy"), "unknown regime 'busy'"),
    (lambda t: table.equivalent_intensity(t, "m", "bandwidth", 4, 1.0), "with 4 worker(s) (measured: 1, 3)"),
    (lambda t: table.equivalent_intensity(t, "m", "bandwidth", 1, -1), "load fraction -1.0 is out of range"),
])
def test_reader_bad_input_is_a_one_line_error(call, message):
    with pytest.raises(InterferenceError) as e:
        call(_table())
    assert message in str(e.value) and "\n" not in str(e.value)


def test_reader_of_missing_or_malformed_files(tmp_path):
    with pytest.raises(InterferenceError, match="does not exist"):
        table.read(tmp_path / "none.csv")
    (tmp_path / "bad.csv").write_text("model,part\nm,sensitivity\n")
    with pytest.raises(InterferenceError, match="lacks column 'kind'"):
        table.read(tmp_path / "bad.csv")
    with pytest.raises(InterferenceError, match="run `hera profile interference-calibration` first"):
        table.read_calibration(tmp_path / "cal.csv")


def _busy_table() -> pd.DataFrame:
    """Model m next to the bandwidth, cache and busy-core antagonists; model n without the busy core."""
    rows = []
    knots = {"bandwidth": ((0.5, 1.2), (1.0, 1.5)), "cache": ((1.0, 1.3),), "cpu": ((0.5, 1.1), (1.0, 1.2))}
    for model in ("m", "n"):
        for kind, pts in knots.items():
            if model == "n" and kind == "cpu":
                continue
            for regime in ("light", "saturated"):
                for x, v in ((0.0, 1.0), *pts):
                    rows.append({"model": model, "part": "sensitivity", "kind": kind, "intensity": x,
                                 "regime": regime, "workers": 1, "metric": "mean_inflation", "value": v,
                                 "value_lo": v, "value_hi": v})
    return table.from_frame(pd.DataFrame(rows).reindex(columns=table.COLUMNS))


def test_memory_sensitivities_are_read_net_of_the_busy_core_their_antagonists_also_are():
    t = _busy_table()
    # the bandwidth antagonist at x keeps its core busy a share x of the time; the cache one all the time
    assert table.inflation(t, "m", "bandwidth", 0.5, net=True).value == pytest.approx(1.2 / 1.1)
    assert table.inflation(t, "m", "bandwidth", 1.0, net=True).value == pytest.approx(1.5 / 1.2)
    assert table.inflation(t, "m", "cache", 1.0, net=True).value == pytest.approx(1.3 / 1.2)
    assert table.inflation(t, "m", "cpu", 0.5, net=True).value == pytest.approx(1.1)  # the busy core itself
    assert table.inflation(t, "m", "bandwidth", 1.0).value == pytest.approx(1.5)  # gross unless asked
    assert table.inflation(t, "n", "bandwidth", 1.0, net=True).value == pytest.approx(1.5)  # no busy core known
    p = InterferenceProfiles(t, regime="saturated")
    assert p.has_kind("m", "cpu") and not p.has_kind("n", "cpu")
    assert p.inflations("m", "bandwidth", np.array([1.0]))[0] == pytest.approx(1.5 / 1.2)
    gross = InterferenceProfiles(t, regime="saturated", net_of_busy_core=False)
    assert gross.inflations("m", "bandwidth", np.array([1.0]))[0] == pytest.approx(1.5)
    # a busy core's pressure is the partner's own utilisation: no reporter, no calibration
    assert p.pressure("m", "cpu", 3, 0.4) == pytest.approx(0.4)
    assert np.allclose(p.pressures("m", "cpu", 1, np.array([0.0, 0.7, 1.3])), [0.0, 0.7, 1.0])
    assert "utilisation" in table.equivalent_intensity(t, "m", "cpu", 1, 0.5).note


# ----------------------------------------------------------------------------------------------- settings
@pytest.fixture()
def study(tmp_path):
    cfg = cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=[
        "interference.window_s=0.2", "interference.saturation_s=0.2", "interference.warmup_s=0.05",
        "interference.bootstrap=50", "service.light_queries_per_size=5", "service.saturation_s=0.4", "service.dispatch_probes=20",
        "service.warmup_s=0.1"])
    return cfg, cfgmod.dump(cfg, tmp_path / "config.json")


def test_settings_refuse_what_cannot_be_measured(study):
    cfg, _ = study
    bad = dict(cfg, profile={**cfg["profile"], "intensities": [0.0, 1.5]})
    with pytest.raises(ConfigError, match="intensity 1.5 is out of range"):
        Settings.from_config(bad)
    with pytest.raises(ConfigError, match="needs an intensity > 0"):
        Settings.from_config(dict(cfg, profile={**cfg["profile"], "intensities": [0.0]}))
    with pytest.raises(ResourceError) as e:
        Cores.from_config(dict(cfg, cores=CPUS[:1]))
    assert "needs a core for the reporter" in str(e.value)
    st = Settings.from_config(dict(cfg, interference={**cfg["interference"], "pressure_workers": [5]}))
    with pytest.raises(ConfigError, match="interference.pressure_workers: 5 worker\\(s\\) do not fit"):
        Cores.from_config(dict(cfg, cores=CPUS[:2])).worker_counts(st)


def test_the_busy_core_is_a_sensitivity_kind_only_where_asked_for(study):
    from hera.profile.interference.sensitivity import schedule

    cfg, _ = study
    off = Settings.from_config(cfg)
    assert off.sensitivity_kinds == off.kinds == ("bandwidth", "cache")
    on = Settings.from_config(dict(cfg, interference={**cfg["interference"], "busy_core": True}))
    assert on.kinds == ("bandwidth", "cache") and on.sensitivity_kinds == ("bandwidth", "cache", "cpu")
    pts = schedule(on)  # baseline, bandwidth at 1, baseline, cache at 1, baseline, cpu at 1, baseline
    assert [p.kind for p in pts] == ["none", "bandwidth", "none", "cache", "none", "cpu", "none"]
    with pytest.raises(ConfigError, match="busy_core"):
        cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=["interference.busy_core=maybe"])
    with pytest.raises(ConfigError, match="statistic"):
        cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=["colocation.statistic=p99"])


def test_pressure_worker_counts_follow_the_service_profiles():
    from hera.profile.interference.settings import pressure_counts

    assert pressure_counts(None, None, 15) == tuple(range(1, 15))  # every split size 1 .. C - 1
    assert pressure_counts(None, 5, 15) == (1, 2, 4, 8)  # profile.workers 5 on 15 cores: 1, 2, 4, 8, 15
    assert pressure_counts(3, 5, 15) == (1, 4, 14)  # geometric over 1 .. 14, as profile.workers
    assert pressure_counts([2, 6], None, 15) == (2, 6)
    with pytest.raises(ConfigError, match="no worker count fits beside the interference reporter"):
        pressure_counts(None, [15], 15)
    st = Settings.from_config(cfgmod.load(repo_root() / "workflow/config/paper.yaml"))
    cores = Cores((1,), (2,), (15,), (1,), tuple(range(1, 15)), (0,))
    assert cores.worker_counts(st) == (1, 2, 4, 8)


# -------------------------------------------------------------------------------------------------- stages
def _service_profile(tmp_path, path) -> str:
    out = tmp_path / "service" / "syn.csv"
    assert main(["profile", "service", "--config", str(path), "--model", "syn", "--out", str(out), *SYN]) == 0
    return str(out)


@pytest.mark.slow
@pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 usable CPUs")
def test_calibration_and_interference_stages_write_tidy_tables(study, tmp_path, capsys):
    cfg, path = study
    svc = _service_profile(tmp_path, path)
    cal = tmp_path / "interference_calibration.csv"
    assert main(["profile", "interference-calibration", "--config", str(path), "--out", str(cal)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["usable"]) == {"bandwidth", "cache"}
    c = pd.read_csv(cal)
    assert set(table.CALIBRATION_COLUMNS) <= set(c.columns) and list(c["intensity"]) == [0.0, 1.0, 0.0, 1.0]
    assert (c["value_lo"] <= c["value"]).all() and (c["value"] <= c["value_hi"]).all()
    assert (c.loc[c["intensity"] == 1.0, "antagonist_gbps"] > 0).all()  # the antagonist really ran
    assert (tmp_path / "interference_calibration.parquet").is_file()
    assert cal.with_name(cal.name + ".meta.json").is_file()

    out = tmp_path / "interference" / "syn.csv"
    assert main(["profile", "interference", "--config", str(path), "--model", "syn", "--service", svc,
                 "--calibration", str(cal), "--out", str(out), *SYN]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == "syn" and set(summary["inflation"]) == {"bandwidth", "cache"}
    df = table.read(out)
    assert set(table.COLUMNS) <= set(df.columns) and set(df["part"]) == {"sensitivity", "pressure"}
    sens = df[df["part"] == "sensitivity"]
    assert len(sens) == 2 * 2 * 2 * 2  # kind x intensity {0, 1} x regime x statistic
    top = sens[sens["intensity"] == 1.0]
    assert (top["value_lo"] <= top["value"]).all() and (top["value"] <= top["value_hi"]).all()
    assert top["drift"].notna().all() and (top["baseline"] > 0).all() and (top["antagonist_gbps"] > 0).all()
    press = df[df["part"] == "pressure"]
    assert set(press["load_frac"]) == {0.5, 1.0} and set(press["workers"]) == {1}
    slow = press[press["metric"] == "reporter_slowdown"]
    assert slow["value"].notna().all() and (slow["completed_qps"] > 0).all()
    assert slow.loc[slow["load_frac"] == 0.5, "offered_qps"].notna().all()
    eq = press[press["metric"] == "equivalent_intensity"]
    for kind, usable in c.groupby("kind")["usable"].first().items():
        rows = eq[eq["kind"] == kind]
        assert rows["value"].notna().all() if usable else rows["note"].str.contains("not observable").all()
    raw = pd.read_parquet(out.with_suffix(".parquet"))
    assert set(raw["part"]) == {"sensitivity", "pressure"} and raw["service_ms"].notna().any()
    # the reader answers for this model (NaN with the reason where the calibration shows nothing)
    e = table.equivalent_intensity(df, "syn", "bandwidth", 1, 0.75)
    assert math.isfinite(e.value) or "not observable" in e.note
    assert table.inflation(df, "syn", "cache", 0.5).value >= 1.0


def test_interference_needs_the_service_profile(study, tmp_path, capsys):
    _, path = study
    rc = main(["profile", "interference", "--config", str(path), "--model", "syn", "--service",
               str(tmp_path / "none.csv"), "--out", str(tmp_path / "i.csv"), *SYN])
    err = capsys.readouterr().err
    assert rc == 2 and "none.csv does not exist (run `hera profile service` first)" in err
    assert err.count("\n") == 1


def test_interference_needs_every_worker_count_and_the_calibration(study, tmp_path, capsys):
    _, path = study
    svc = tmp_path / "svc.csv"
    svc.write_text("model,workers,statistic,value\nsyn,2,saturation_throughput,100\n")
    rc = main(["profile", "interference", "--config", str(path), "--model", "syn", "--service", str(svc),
               "--out", str(tmp_path / "i.csv"), *SYN])
    err = capsys.readouterr().err
    assert rc == 2 and "no saturation throughput of model 'syn' with 1 worker(s) (profiled: [2])" in err
    assert err.count("\n") == 1
    svc.write_text("model,workers,statistic,value\nsyn,1,saturation_throughput,100\n")
    rc = main(["profile", "interference", "--config", str(path), "--model", "other", "--service", str(svc),
               "--out", str(tmp_path / "i.csv"), *SYN])
    assert rc == 2 and "no saturation throughput of model 'other'" in capsys.readouterr().err
    rc = main(["profile", "interference", "--config", str(path), "--model", "syn", "--service", str(svc),
               "--calibration", str(tmp_path / "cal.csv"), "--out", str(tmp_path / "i.csv"), *SYN])
    err = capsys.readouterr().err
    assert rc == 2 and "cal.csv does not exist" in err and err.count("\n") == 1


def test_one_core_has_no_core_for_the_reporter(study, tmp_path, capsys):
    cfg, _ = study
    path = cfgmod.dump(dict(cfg, cores=CPUS[:1]), tmp_path / "one.json")
    rc = main(["profile", "interference-calibration", "--config", str(path), "--out",
               str(tmp_path / "c.csv")])
    err = capsys.readouterr().err
    assert rc == 2 and "needs a core for the reporter" in err and err.count("\n") == 1


def test_interference_refuses_a_calibration_of_another_scale(study, tmp_path, capsys):
    _, path = study
    svc = tmp_path / "svc.csv"
    svc.write_text("model,workers,statistic,value\nsyn,1,saturation_throughput,100\n")
    cal = tmp_path / "cal.csv"
    rows = [{"kind": k, "intensity": x, "value": 1 + x, "value_lo": 1 + x, "value_hi": 1 + x,
             "reporter_intensity": 0.5} for k in ("bandwidth", "cache") for x in (0.0, 1.0)]
    pd.DataFrame(rows).to_csv(cal, index=False)
    args = ["profile", "interference", "--config", str(path), "--model", "syn", "--service", str(svc),
            "--calibration", str(cal), "--out", str(tmp_path / "i.csv"), *SYN]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "was measured with reporter intensity 0.5; this study uses 0.25" in err and err.count("\n") == 1
    pd.DataFrame(rows[:2]).to_csv(cal, index=False)
    assert main(args) == 2
    assert "has no cache curve (has: bandwidth)" in capsys.readouterr().err


def test_predictor_adapter_reads_tables_and_recomputes_with_a_calibration(tmp_path):
    t = _table()
    eq = t[t["metric"] == "equivalent_intensity"]
    slow = eq.assign(metric="reporter_slowdown", value=1 + eq["value"], value_lo=1 + eq["value_lo"],
                     value_hi=1 + eq["value_hi"])
    path = tmp_path / "m.csv"
    pd.concat([t, slow]).to_csv(path, index=False)
    prof = load_interference([path])
    assert prof.models() == ["m"] and prof.inflation("m", "bandwidth", 0.75) == pytest.approx((0.97 + 1.6) / 2)
    assert prof.inflation("m", "bandwidth", 1.0, regime="saturated") == pytest.approx(2.0)
    assert prof.pressure("m", "bandwidth", 1, 1.0) == pytest.approx(0.4)
    assert math.isnan(prof.pressure("m", "cache", 1, 1.0))
    assert load_interference(path, unobservable="zero").pressure("m", "cache", 1, 1.0) == 0.0
    # the vectorised law (the predictor's grids) is the scalar one, extrapolation, clamp and NaN included
    xs = np.array([0.0, 0.1, 0.75, 1.0, 1.7, 9.5, np.nan])
    many = prof.inflations("m", "bandwidth", xs)
    assert np.isnan(many[-1])
    assert np.allclose(many[:-1], [prof.inflation("m", "bandwidth", float(x)) for x in xs[:-1]])
    us = np.array([0.0, 0.2, 0.5, 0.99, 1.0, 1.3])  # pressures: the scalar law, clamp and NaN included
    for kind, w in ((k, w) for k in ("bandwidth", "cache") for w in (1, 2, 3)):  # 2: between measured counts
        assert np.allclose(prof.pressures("m", kind, w, us), [prof.pressure("m", kind, w, float(u)) for u in us],
                           equal_nan=True)
    with pytest.raises(InterferenceError, match="load fraction -0.5 is out of range"):
        prof.pressures("m", "bandwidth", 1, np.array([0.5, -0.5]))
    cal = tmp_path / "cal.csv"  # slowdown 1 + 2x: an equivalent intensity is half the reporter's extra slowdown
    pd.DataFrame([{"kind": k, "intensity": x, "value": 1 + 2 * x, "value_lo": 0.98 + 2 * x,
                   "value_hi": 1.02 + 2 * x} for k in ("bandwidth", "cache") for x in (0.0, 0.5, 1.0)]
                 ).to_csv(cal, index=False)
    re = load_interference([path], cal)
    assert re.pressure("m", "bandwidth", 1, 1.0) == pytest.approx(0.2)
    eq = re.table[re.table["metric"] == "equivalent_intensity"]
    assert len(eq) == 8 and eq["note"].str.contains("calibration: .*cal.csv").all()
    assert math.isnan(re.pressure("m", "cache", 1, 1.0))  # its slowdowns are NaN: nothing to invert
    with pytest.raises(InterferenceError, match="no interference profile given"):
        load_interference([])
    with pytest.raises(InterferenceError, match="unobservable must be 'nan' or 'zero'"):
        load_interference(path, unobservable="guess")


def test_calibration_is_usable_only_when_it_rises_beyond_doubt():
    from hera.profile.interference import calibration

    rng = np.random.default_rng(4)
    alone = rng.normal(10.0, 0.5, 40)
    idle, busy = rng.normal(10.0, 0.5, 40), rng.normal(8.0, 0.5, 40)
    r = stats.rise(alone, idle, alone, busy, rng=rng)
    assert r.lo > 1 and abs(r.value - 1.25) < 0.05
    assert calibration.verdict("bandwidth", 1.0, r) == (True, "")
    flat = stats.rise(alone, idle, alone, rng.normal(10.0, 0.5, 40), rng=rng)
    ok, why = calibration.verdict("cache", 1.0, flat)
    assert not ok and why.startswith("not observable on this machine: the cache reporter's slowdown")
    # the table's verdict wins over the intervals of the points
    df = pd.DataFrame([{"kind": "cache", "intensity": x, "value": 1 + x, "value_lo": 1 + x, "value_hi": 1 + x,
                        "usable": False, "note": why} for x in (0.0, 1.0)])
    cal = table.curve(df, "cache")
    assert cal.usable() == (False, why)
    assert math.isnan(stats.equivalent(cal, Estimate(1.5, 1.4, 1.6)).value)


def test_calibration_cycles_default_to_the_pressure_cycles_and_can_be_raised():
    default = cfgmod.load(repo_root() / "workflow/config/default.yaml")
    st = Settings.from_config(default)
    assert (st.cycles, st.calibration_cycles) == (2, 3)  # once per study: three cycles at default scale
    unset = {**default, "interference": {**default["interference"], "calibration_cycles": None}}
    assert Settings.from_config(unset).calibration_cycles == st.cycles
    with pytest.raises(ConfigError, match="calibration_cycles"):
        cfgmod.validate({**default, "interference": {**default["interference"], "calibration_cycles": 0}})
