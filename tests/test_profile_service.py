"""Service profiles through the serving path and the QPS* stage built on them (synthetic runner, ci scale)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hera import config as cfgmod
from hera.cli import main
from hera.paths import repo_root
from hera.profile import common, scalability, service, sla

DELAY_MS = 2.0  # the synthetic runner sleeps this long per sub-batch: a known service time


@pytest.fixture()
def study(tmp_path):
    cfg = cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=[
        "service.light_queries_per_size=5", "service.saturation_s=0.6", "service.warmup_s=0.1",
        "service.dispatch_probes=30", "service.refresh_light_queries_per_size=3", "service.refresh_saturation_s=0.3",
        "service.idle_gaps_ms=[2, 10]", "service.idle_queries_per_gap=3",
        "model.queries=600", "model.replicates=4", "confirm.min_queries=40", "confirm.trial_s=0.3",
        "confirm.max_chunks=1", "confirm.step=0.2", "confirm.max_steps=3"])
    return cfg, cfgmod.dump(cfg, tmp_path / "config.json")


OPTS = common.NodeOptions(runner="synthetic", options={"syn": {"delay_ms": DELAY_MS}})


@pytest.mark.slow
def test_service_profile_samples_every_sub_batch_in_both_regimes(study, tmp_path):
    cfg, _ = study
    out = tmp_path / "service" / "syn.csv"
    summary = service.run(cfg, "syn", out, OPTS)
    samples = service.read_samples(out)
    assert set(samples["workers"]) == {1, 2} and set(samples["regime"]) == {"light", "probe", "saturated", "idle"}
    # after idling: 3 queries of one full sub-batch per worker for no gap, 2 and 10 ms, in a random order
    idle = samples[samples["regime"] == "idle"]
    for w in (1, 2):
        mine = idle[idle["workers"] == w]
        assert (mine["query_items"] == 64 * w).all() and (mine["items"] == 64).all()
        assert mine.drop_duplicates("query")["idle_gap_ms"].value_counts().to_dict() == {0.0: 3, 2.0: 3, 10.0: 3}
        pen = service.idle_penalty(samples[samples["workers"] == w], 64)
        assert pen["gap_ms"].tolist() == [0.0, 2.0, 10.0] and (pen["n"] == 3 * w).all()
        assert pen["idle_ms"].iloc[2] >= 10.0 > pen["idle_ms"].iloc[1] >= 2.0 > pen["idle_ms"].iloc[0]
        assert pen["extra_ms"].iloc[0] == 0.0 and pen["extra_ms"].is_monotonic_increasing
    # ci: production sizes capped at 256 items -> 100, 200, 256 -> sub-batches of 64, 36, 8; probes of 1 item
    assert set(samples["items"]) == {64, 36, 8, 1}
    probes = samples[(samples["regime"] == "probe") & (samples["workers"] == 1)]
    assert len(probes) == 30 and (probes["query_items"] == 1).all()
    light = samples[(samples["regime"] == "light") & (samples["workers"] == 1)]
    assert sorted(light.drop_duplicates("query")["query_items"].value_counts()) == [5, 5, 5]  # stratified
    assert (samples["service_ms"] >= DELAY_MS * 0.9).all()
    delay = summary[(summary["statistic"] == "dispatch_delay") & (summary["workers"] == 1)].iloc[0]
    assert delay["regime"] == "probe" and delay["n"] == 30
    # weights: each size's probability over its share of the light sample (200 items are 12 of 20 points)
    w = light.drop_duplicates("query").groupby("query_items")["weight"].first()
    assert w[200] / w[100] == pytest.approx(6.0)
    stats = set(summary["statistic"])
    assert stats == set(service.STATISTICS)
    mix = service.mix_latency(summary, "syn", 1)
    assert mix["p50_ms"] <= mix["p95_ms"] <= mix["p99_ms"]
    assert (summary.loc[summary["statistic"] == "saturation_throughput", "value"] > 0).all()
    law = service.service_law(samples, 2, 64)
    assert law.workers == 2 and law.pool(64, "saturated").size > 0 and law.gap_ms >= 0
    # the penalty's curve comes with the law: no gap, 2 and 10 ms, fewer knots where a gap idled no longer than a
    # shorter one on a busy machine (pooled), always increasing in the real idle time
    assert 1 <= law.idle_ms.size <= 3 and law.idle_extra_ms[0] == 0.0 and np.all(np.diff(law.idle_ms) > 0)
    assert 2 <= (summary["statistic"] == "idle_penalty").sum() <= 6
    assert (tmp_path / "service" / "syn.parquet.meta.json").is_file()


@pytest.mark.slow
def test_missing_worker_count_is_a_one_line_error(study, tmp_path):
    cfg, _ = study
    samples, _ = service.measure(cfg, "syn", [1], OPTS)
    with pytest.raises(service.ServiceProfileError) as e:
        service.service_law(samples, 2, 64)
    assert "no samples of model 'syn' with 2 worker(s) (profiled: [1])" in str(e.value)
    with pytest.raises(service.ServiceProfileError, match="does not exist"):
        service.read_samples(tmp_path / "nope.parquet")


@pytest.mark.timing
@pytest.mark.slow
def test_scalability_models_and_confirms_qps_star(study, tmp_path, capsys):
    cfg, _ = study
    cfg = {**cfg, "model": {**cfg["model"], "service": "refresh"},  # the default is stage (next test)
           "service": {**cfg["service"], "operating_after": 1}}  # and the probe after the trials (default: none)
    svc = tmp_path / "service" / "syn.csv"
    summary = service.run(cfg, "syn", svc, OPTS)
    dec = sla.decide(cfg["sla"], "syn", summary)
    t1 = tmp_path / "T1.csv"
    pd.DataFrame([{"model": "syn", "sla_ms": dec.sla_ms, "sla_rule": dec.sla_rule}]).to_csv(t1, index=False)
    out = tmp_path / "scalability" / "syn.csv"
    df = scalability.run(cfg, "syn", svc.with_suffix(".parquet"), t1, out, OPTS)
    assert list(df["workers"]) == [1, 2] and set(scalability.COLUMNS) <= set(df.columns)
    assert (df["qps_star"] > 0).all() and (df["qps_star_model"] > 0).all() and (df["repeats"] == 3).all()
    assert (df["qps_star_lo"] <= df["qps_star"]).all() and (df["qps_star"] <= df["qps_star_hi"]).all()
    assert df.loc[df["workers"] == 1, "harness_cores"].iloc[0] != "shared"  # pinned off the worker's core
    # the harness's CPU per query, from the trials (pair prediction charges it where no harness core is left)
    assert ((df["harness_cpu_ms_per_query"] > 0) & (df["harness_cpu_ms_per_query"] < 50)).all()
    # the trials were served at about the speed the refreshed profile says (synthetic workers sleep)
    assert df["service_drift"].between(0.6, 1.6).all(), df[["workers", "service_drift"]]
    assert (df["service_drift_lo"] <= df["service_drift"]).all()
    assert (df["service_drift"] <= df["service_drift_hi"]).all()
    # the model on the service times as served: beside the profile's, from the same law and the measured drift
    assert (df["qps_star_model_served"] > 0).all() and df["model_rel_error_served"].notna().all()
    # a sleeping worker is what the model assumes: on the service times as the trials served them the model and
    # the measurement agree within a factor 1.6; from the profile taken before, within 2 (a shared VM's speed
    # moves by 10-40% between the profile and the trials, docs/DESIGN.md "Service drift")
    served = df["qps_star_model_served"] / df["qps_star"]
    assert ((served > 1 / 1.6) & (served < 1.6)).all(), df[["workers", "qps_star", "qps_star_model_served"]]
    ratio = df["qps_star_model"] / df["qps_star"]
    assert ((ratio > 1 / 2) & (ratio < 2)).all(), df[["workers", "qps_star", "qps_star_model"]]
    paths = scalability.outputs(out)
    trials, curve = pd.read_csv(paths.trials), pd.read_csv(paths.curve)
    assert set(trials["workers"]) == {1, 2} and set(trials["repeat"]) == {0, 1, 2}
    assert trials["latency_ms_model"].notna().any() and set(curve["workers"]) == {1, 2}
    # the modelled tail does not fall as the rate rises (non-decreasing by construction, hera.queueing.qps)
    assert (curve.groupby("workers")["latency_ms_model"].apply(lambda s: np.all(np.diff(s) >= 0))).all()
    errs = scalability.rel_errors(df)
    assert errs.shape == (2,) and np.isfinite(errs).all()
    # the operating-point probe (service.operating_chunks: 1): one chunk at the profile's modelled QPS*, whose
    # drift rescaled the profile for the final model; the profile's own model stays beside it
    assert (df["operating_queries"] >= 40).all() and (df["operating_drift"] > 0).all()
    assert np.allclose(df["operating_rate_qps"], df["qps_star_model_profile"])
    assert df["model_rel_error_profile"].notna().all() and (df["operating_seconds"] > 0).all()
    # ... and again after the trials (service.operating_after: 1, an option): the final model at the speed the two bracket,
    # the model from before the trials (which started the search) beside it
    assert (df["operating_drift_after"] > 0).all() and (df["operating_after_seconds"] > 0).all()
    assert np.allclose(df["operating_drift_bracketed"], np.sqrt(df["operating_drift"] * df["operating_drift_after"]))
    assert (df["qps_star_model_before"] > 0).all() and df["model_rel_error_before"].notna().all()
    # the noise of one trial's verdict in log rate (pair prediction), from at least 6 trials per worker count
    assert (df["tail_log_slope"] > 0).all() and (df["trial_crossing_sd"] >= 0).all()
    # model.service: refresh: each w's profile re-measured on this node just before its confirmation
    assert (df["service_source"] == "refresh").all() and (df["service_seconds"] > 0).all()
    # ... and how much slower it served than the stage's profile: a sleeping worker keeps its speed
    assert df["service_refresh_ratio"].between(0.6, 1.6).all(), df[["workers", "service_refresh_ratio"]]
    fresh = pd.read_parquet(paths.service)
    assert set(fresh["workers"]) == {1, 2} and {"light", "saturated", "probe"} <= set(fresh["regime"])
    assert not list(paths.service.parent.glob("*.partial.parquet"))


@pytest.mark.slow
@pytest.mark.parametrize("chunks", [1, 0])
def test_scalability_with_the_stage_profile(study, tmp_path, chunks):
    """``model.service: stage`` (the default): the model uses the service stage's samples, rescaled by the
    operating-point probe (``service.operating_chunks``); nothing is re-measured."""
    cfg, _ = study
    assert scalability.refresh_service(cfg) is False  # ci.yaml sets no model.service: the schema's default
    cfg = {**cfg, "service": {**cfg["service"], "operating_chunks": chunks, "operating_after": chunks}}
    svc = tmp_path / "service" / "syn.csv"
    summary = service.run(cfg, "syn", svc, OPTS, workers=[1])
    dec = sla.decide(cfg["sla"], "syn", summary)
    t1 = tmp_path / "T1.csv"
    pd.DataFrame([{"model": "syn", "sla_ms": dec.sla_ms, "sla_rule": dec.sla_rule}]).to_csv(t1, index=False)
    cfg = {**cfg, "profile": {**cfg["profile"], "workers": [1]}}
    out = tmp_path / "scalability" / "syn.csv"
    df = scalability.run(cfg, "syn", svc.with_suffix(".parquet"), t1, out, OPTS)
    assert list(df["service_source"]) == ["stage"] and list(df["service_seconds"]) == [0.0]
    assert df["service_refresh_ratio"].isna().all()  # nothing refreshed, nothing to compare
    assert pd.read_parquet(scalability.outputs(out).service).empty
    if chunks:  # the probe at the stage profile's modelled QPS*: its drift rescaled that profile
        assert (df["operating_queries"] >= 40).all() and (df["operating_drift"] > 0).all()
        assert np.allclose(df["operating_rate_qps"], df["qps_star_model_profile"])
        assert (df["operating_drift_after"] > 0).all() and df["operating_after_chunk_drifts"].str.len().gt(0).all()
    else:  # service.operating_chunks: 0 -> the model from the profile alone, no probe (and none after)
        assert list(df["operating_queries"]) == [0] and df["operating_drift"].isna().all()
        assert df["operating_drift_after"].isna().all() and list(df["operating_after_seconds"]) == [0.0]
        assert list(df["qps_star_model_before"]) == list(df["qps_star_model"])
        assert list(df["qps_star_model"]) == list(df["qps_star_model_profile"])


@pytest.mark.slow
@pytest.mark.parametrize("again", [True, False])
def test_a_zero_point_is_measured_again_after_the_other_points(study, tmp_path, monkeypatch, again):
    """A point confirmed at 0 is measured again, whole, after the job's other points (a slow minute of the
    machine is not the result); the first value and the fact stay in its row. ``confirm.remeasure_zero: false``
    keeps the zero."""
    cfg, _ = study
    cfg = {**cfg, "confirm": {**cfg["confirm"], "remeasure_zero": again}}
    svc = tmp_path / "service" / "syn.csv"
    summary = service.run(cfg, "syn", svc, OPTS)
    dec = sla.decide(cfg["sla"], "syn", summary)
    t1 = tmp_path / "T1.csv"
    pd.DataFrame([{"model": "syn", "sla_ms": dec.sla_ms, "sla_rule": dec.sla_rule}]).to_csv(t1, index=False)
    calls = []

    def fake_point(node, config, model, tenant, law, sla_, stream):
        calls.append((stream, law.workers))
        value = 0.0 if stream == "scalability/syn/1" else 10.0 * law.workers
        row = {"qps_star": value, "qps_star_lo": 0.0, "qps_star_hi": value + 5.0, "qps_star_model": 12.0,
               "operating_drift": 1.4, "service_drift": 1.6, "n_trials": 28, "note": f"measured on {stream}"}
        return (row, pd.DataFrame(columns=scalability.TRIAL_COLUMNS),
                pd.DataFrame(columns=scalability.CURVE_COLUMNS))

    monkeypatch.setattr(scalability, "qps_star_point", fake_point)
    df = scalability.run(cfg, "syn", svc.with_suffix(".parquet"), t1, tmp_path / "scalability" / "syn.csv", OPTS)
    streams = [s for s, _ in calls]
    one = df[df["workers"] == 1].iloc[0]
    if again:
        assert streams == ["scalability/syn/1", "scalability/syn/2", "scalability/syn/1/again"]
        assert [w for _, w in calls] == [1, 2, 1]  # the node resized back to one worker
        assert one["qps_star"] == 10.0 and bool(one["remeasured"]) and one["qps_star_first"] == 0.0
        assert one["note"].startswith("first measurement 0 [0, 5] (probe drift 1.4, trials' drift 1.6, 28 trials)")
        assert "measured on scalability/syn/1/again" in one["note"]
    else:
        assert streams == ["scalability/syn/1", "scalability/syn/2"]
        assert one["qps_star"] == 0.0 and not bool(one["remeasured"]) and np.isnan(one["qps_star_first"])
    two = df[df["workers"] == 2].iloc[0]
    assert two["qps_star"] == 20.0 and not bool(two["remeasured"])
    assert list(df["workers"]) == [1, 2]


def _samples(workers: int, scale: float, sizes=(8, 64), regimes=("light", "saturated", "probe")) -> pd.DataFrame:
    rows = [{"workers": workers, "regime": r, "items": n, "service_ms": scale * (0.5 + 0.01 * n) * (1 + 0.1 * k)}
            for r in regimes for n in sizes for k in range(5)]
    return pd.DataFrame(rows)


def test_speed_ratio_is_the_geometric_mean_of_the_median_ratios_per_cell():
    old = pd.concat([_samples(1, 1.0), _samples(2, 3.0)])
    assert service.speed_ratio(_samples(1, 1.7), old, 1) == pytest.approx(1.7)  # the other w's samples ignored
    assert service.speed_ratio(_samples(2, 1.5), old, 2) == pytest.approx(0.5)  # faster than the stage: < 1
    # only the cells both have; the dispatch probe regime does not count
    new = pd.concat([_samples(1, 2.0, sizes=(8,)), _samples(1, 9.0, regimes=("probe",))])
    assert service.speed_ratio(new, old, 1) == pytest.approx(2.0)
    # two cells slowed by 2 and by 8: their geometric mean, 4
    a = pd.concat([_samples(1, 2.0, sizes=(8,), regimes=("light",)), _samples(1, 8.0, sizes=(64,), regimes=("light",))])
    assert service.speed_ratio(a, _samples(1, 1.0, regimes=("light",)), 1) == pytest.approx(4.0)
    # no common cell (another worker count, or no samples): NaN, not an error
    assert np.isnan(service.speed_ratio(_samples(1, 1.0), _samples(2, 1.0), 1))
    assert np.isnan(service.speed_ratio(_samples(1, 1.0).iloc[:0], old, 1))


def test_refresh_config_shrinks_the_service_settings(study):
    cfg, _ = study
    cfg = {**cfg, "service": {**cfg["service"], "refresh_light_queries_per_size": 3, "refresh_saturation_s": 0.25}}
    r = service.refresh_config(cfg)
    assert r["service"]["light_queries_per_size"] == 3 and r["service"]["saturation_s"] == 0.25
    assert r["service"]["warmup_s"] == cfg["service"]["warmup_s"] and cfg["service"]["saturation_s"] != 0.25
    assert r["service"]["dispatch_probes"] == max(20, cfg["service"]["dispatch_probes"] // 4)


def test_service_cli_rejects_bad_worker_lists(study, tmp_path, capsys):
    _, path = study
    rc = main(["profile", "service", "--config", str(path), "--model", "syn", "--out", str(tmp_path / "s.csv"),
               "--workers", "0", "--runner", "synthetic"])
    err = capsys.readouterr().err
    assert rc == 2 and "--workers must name worker counts >= 1" in err and err.count("\n") == 1


def test_scalability_cli_needs_the_service_profile(study, tmp_path, capsys):
    _, path = study
    t1 = tmp_path / "T1.csv"
    pd.DataFrame({"model": ["syn"], "sla_ms": [5.0]}).to_csv(t1, index=False)
    rc = main(["profile", "scalability", "--config", str(path), "--model", "syn", "--t1", str(t1),
               "--service", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "s.csv"), "--runner", "synthetic"])
    err = capsys.readouterr().err
    assert rc == 2 and "none.parquet does not exist" in err and err.count("\n") == 1


def test_served_model_qps_is_the_model_on_the_service_times_as_served():
    """Drift 1.25 on a deterministic 10 ms profile: the M/D/1 QPS* of a 12.5 ms service (closed form); no drift
    measured: NaN, never the unscaled value."""
    import math

    from scipy.optimize import brentq

    from hera.queueing import closed_forms as cf
    from hera.queueing.qps import ModelSettings
    from hera.queueing.service import ServiceLaw

    law = ServiceLaw(1, 1024, {100: np.array([10.0])}, {100: np.array([10.0])}, dispatch_ms=np.zeros(1))
    items = np.full(20000, 100)
    ms = ModelSettings(n_queries=20000, warmup_queries=2000, replicates=16)
    sla_ms = 60.0
    exact = brentq(lambda r: cf.md1_sojourn_quantile_s(0.95, r, 0.0125) * 1e3 - sla_ms, 1.0, 79.9)
    got = scalability.served_model_qps(law, items, sla_ms, 0.95, ms, 1.25)
    assert got == pytest.approx(exact, rel=0.05)
    assert scalability.served_model_qps(law, items, sla_ms, 0.95, ms, 1.0) > got * 1.1  # faster served: higher
    assert math.isnan(scalability.served_model_qps(law, items, sla_ms, 0.95, ms, math.nan))


def test_tail_log_slope_reads_the_exponent_of_a_power_law_curve():
    import math

    r = np.linspace(10.0, 100.0, 40)
    assert scalability.tail_log_slope(r, 3.0 * r ** 2.5, 50.0) == pytest.approx(2.5)
    assert math.isnan(scalability.tail_log_slope(r, np.full(40, 5.0), 50.0))  # flat: no crossing to speak of
    assert math.isnan(scalability.tail_log_slope(r[:1], r[:1], 50.0))


def test_trial_crossing_sd_is_the_scatter_of_where_single_trials_put_the_crossing():
    """Trials on a tail ∝ rate^2 curve through (100 q/s, SLA) say 100 q/s whatever their rate: no scatter; a trial
    with its tail e^0.2 too high says 100·e^-0.1; a tail 50x off counts as e (clipped); too few trials: NaN."""
    import math

    rates = np.array([80.0, 90.0, 110.0, 120.0])
    on_curve = (rates / 100.0) ** 2
    assert scalability.trial_crossing_sd(rates, on_curve, 2.0) == pytest.approx(0.0, abs=1e-12)
    off = on_curve * np.exp([0.2, -0.2, 0.2, -0.2])
    assert scalability.trial_crossing_sd(rates, off, 2.0) == pytest.approx(np.std([-0.1, 0.1, -0.1, 0.1], ddof=1))
    wild = np.array([50.0, 1.0, 1.0])
    assert scalability.trial_crossing_sd(np.array([100.0, 100.0, 100.0]), wild, 1.0) == pytest.approx(
        np.std([-1.0, 0.0, 0.0], ddof=1))
    assert math.isnan(scalability.trial_crossing_sd(rates[:2], on_curve[:2], 2.0))
    assert math.isnan(scalability.trial_crossing_sd(rates, np.full(4, np.nan), 2.0))
    assert math.isnan(scalability.trial_crossing_sd(rates, on_curve, math.nan))


def test_the_sla_takes_each_size_s_median_so_one_stalled_query_does_not_move_it():
    """A stall of the machine in one light query moves the pooled p99 of the mix; the p99 over the sizes'
    medians (the default rule) stays where the sizes put it. Continuous laws (no repeated size) and the
    pooled rule keep the pooled p99, and the rule's text says which."""
    rng = np.random.default_rng(0)
    sizes = {100: 0.9, 300: 0.08, 700: 0.02}  # probability of each size; 16 stratified queries of each
    rows = []
    for n, p in sizes.items():
        for k in range(16):
            lat = n / 10 * (1 + 0.02 * rng.standard_normal())
            if n == 100 and k == 0:
                lat += 150.0  # one stalled query of the common size
            rows.append({"query_items": n, "query_latency_ms": lat, "weight": p / 16 * 48})
    light = pd.DataFrame(rows)
    med = service.size_medians(light)
    assert list(med.index) == [100, 300, 700] and med.loc[700, "median_ms"] == pytest.approx(70, rel=0.05)
    robust = service._qrow(med["median_ms"].to_numpy(), med["weight"].to_numpy())
    pooled = service._qrow(light["query_latency_ms"].to_numpy(), light["weight"].to_numpy())
    assert robust["p99_ms"] < 75 and pooled["p99_ms"] > 100  # the stall is 1/16 of 90% of the mix
    assert service.size_medians(light.iloc[::16]) is None  # one query per size: a continuous law

    def summary(with_medians: bool) -> pd.DataFrame:
        base = {"model": "m", "workers": 1, "regime": "light"}
        out = [{**base, "statistic": "mix_latency", **pooled},
               {**base, "statistic": "dispatch_delay", **service._qrow(np.full(50, 0.2))}]
        if with_medians:
            out.append({**base, "statistic": "mix_latency_size_medians", **robust})
        return pd.DataFrame(out)

    rule = {"multiplier": 3, "jitter_floor_multiple": 20}
    d = sla.decide({**rule, "rule": "size_medians_p99"}, "m", summary(True))
    assert d.sla_ms == pytest.approx(3 * robust["p99_ms"]) and d.latency_ms_p99_size_medians == robust["p99_ms"]
    assert "each size's median" in d.sla_rule and d.latency_ms_p99_unloaded == pooled["p99_ms"]
    assert d.headroom == pytest.approx(d.sla_ms / robust["p95_ms"])  # against the same statistic as the SLA
    assert d.latency_ms_p95_size_medians == robust["p95_ms"] < pooled["p95_ms"]
    assert sla.decide(rule, "m", summary(True)).sla_ms == d.sla_ms  # the default rule
    fallback = sla.decide({**rule, "rule": "size_medians_p99"}, "m", summary(False))
    assert fallback.sla_ms == pytest.approx(3 * pooled["p99_ms"]) and "pooled" in fallback.sla_rule
    assert fallback.headroom == pytest.approx(fallback.sla_ms / pooled["p95_ms"])
    assert np.isnan(fallback.latency_ms_p99_size_medians)
    old = sla.decide({**rule, "rule": "mix_p99"}, "m", summary(True))
    assert old.sla_ms == pytest.approx(3 * pooled["p99_ms"]) and "median" not in old.sla_rule


def test_the_bracketing_guide_models_each_served_speed_once(monkeypatch):
    """The guide of a confirmation (drift -> served model QPS*) rounds the drift to 2% and models each value once;
    no drift: NaN, nothing modelled. ``confirm.guided: false`` turns it off; a non-boolean is refused."""
    import math

    calls = []

    def fake(law, mix, sla_ms, percentile, settings, drift):
        calls.append(drift)
        return 100.0 / drift

    monkeypatch.setattr(scalability, "served_model_qps", fake)
    g = scalability.served_guide(None, np.zeros(1), 50.0, 0.95, None)
    assert g(1.5) == pytest.approx(100.0 / 1.5, rel=0.011) and g(1.505) == g(1.5) and len(calls) == 1
    assert g(1.6) != g(1.5) and len(calls) == 2
    assert math.isnan(g(math.nan)) and math.isnan(g(0.0)) and len(calls) == 2
    cfg = cfgmod.load(repo_root() / "workflow/config/ci.yaml")
    assert scalability.guided(cfg)
    assert not scalability.guided(cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=["confirm.guided=false"]))
    with pytest.raises(Exception, match="guided"):
        cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=["confirm.guided=maybe"])


def test_a_profile_without_the_requested_model_or_worker_count_is_a_one_line_error(tmp_path):
    """A service profile that exists but holds other models or worker counts than the stage asks for stops it
    with one line naming the model, the worker count and what was profiled."""
    row = dict.fromkeys(service.SAMPLE_COLUMNS, 1.0)
    rows = [{**row, "model": "syn", "workers": 1, "regime": regime, "items": 8, "query": q}
            for regime in ("light", "saturated") for q in range(3)]
    path = tmp_path / "syn.parquet"
    pd.DataFrame(rows, columns=service.SAMPLE_COLUMNS).to_parquet(path)
    with pytest.raises(service.ServiceProfileError, match=r"has no samples of model 'other'$"):
        service.read_samples(path, model="other")
    samples = service.read_samples(path.with_suffix(".csv"), model="syn")  # either name of the profile
    assert len(samples) == 6
    with pytest.raises(service.ServiceProfileError,
                       match=r"no samples of model 'syn' with 4 worker\(s\) \(profiled: \[1\]\)$"):
        service.service_law(samples, workers=4, batch_size=64)
    summary = pd.DataFrame({"model": ["syn"], "workers": [1], "statistic": ["mix_latency"]})
    with pytest.raises(service.ServiceProfileError,
                       match=r"no unloaded mix latency of model 'other' with 1 worker\(s\)$"):
        service.mix_latency(summary, "other")
    with pytest.raises(service.ServiceProfileError, match=r"no mix_latency_size_medians row of model 'syn'"):
        service.mix_latency(summary, "syn", statistic="mix_latency_size_medians")


def _idle_samples(gaps: list[float], service_ms: dict[float, float],
                  idled_ms: dict[float, float] | None = None) -> pd.DataFrame:
    """One worker's samples: light and saturated rows, then one 64-item query after each designed gap (its worker
    idles ``idled_ms[gap]`` between sub-batches, by default that gap plus 0.1 ms), served in ``service_ms[gap]``."""
    rows, t = [], 0
    base = {"model": "syn", "workers": 1, "query_items": 64, "weight": 1.0, "sub_index": 0, "items": 64,
            "worker": 0, "query_latency_ms": 1.0, "dispatch_ms": 0.1}
    for q, regime in enumerate(("light", "saturated")):
        rows.append({**base, "regime": regime, "query": q, "t_submit_ns": t, "t_start_ns": t, "t_end_ns": t + 10**6,
                     "service_ms": 1.0, "idle_gap_ms": np.nan})
        t += 10**6
    for q, g in enumerate(gaps):
        start = t + int(((idled_ms or {}).get(g, g + 0.1)) * 1e6)
        end = start + int(service_ms[g] * 1e6)
        rows.append({**base, "regime": "idle", "query": q, "t_submit_ns": start, "t_start_ns": start, "t_end_ns": end,
                     "service_ms": service_ms[g], "idle_gap_ms": g})
        t = end
    return pd.DataFrame(rows, columns=service.SAMPLE_COLUMNS)


def test_idle_penalty_is_the_extra_service_after_each_gap_over_no_gap():
    """Per designed gap: the workers' real idle time before the sub-batch and the extra median service over no gap,
    never negative and never falling as the gap grows (30 ms measured faster than 10 ms is noise: it keeps 10's)."""
    gaps = [0.0, 10.0, 0.0, 30.0, 10.0, 30.0, 0.0]
    samples = _idle_samples(gaps, {0.0: 1.0, 10.0: 1.4, 30.0: 1.2})
    pen = service.idle_penalty(samples, 64)
    assert pen["gap_ms"].tolist() == [0.0, 10.0, 30.0] and pen["n"].tolist() == [3, 2, 2]
    assert pen["idle_ms"].tolist() == pytest.approx([0.1, 10.1, 30.1], abs=1e-6)
    assert pen["extra_ms"].tolist() == pytest.approx([0.0, 0.4, 0.4])
    law = service.service_law(samples, 1, 64)
    assert law.idle_extra(10.1) == pytest.approx(0.4) and law.idle_extra(0.05) == 0.0
    # no idle samples (or a profile from before them): no penalty; idle samples without the no-gap ones: an error
    assert service.idle_penalty(samples[samples["regime"] != "idle"], 64).empty
    assert service.service_law(samples[samples["regime"] != "idle"], 1, 64).idle_ms.size == 1
    with pytest.raises(service.ServiceProfileError, match="no-gap"):
        service.idle_penalty(_idle_samples([10.0, 30.0], {10.0: 1.4, 30.0: 1.2}), 64)


def test_a_gap_whose_workers_idled_no_longer_than_a_shorter_one_is_pooled_with_it():
    """The curve is read at the real idle time, so its knots must increase in it. On a busy machine the round trip
    of a no-gap query can outlast a 2 ms sleep (seen in CI: 3.16 ms idle after no gap, 2.71 after 2 ms): that gap
    is pooled with no gap, samples and all, and a valid service law comes out."""
    gaps = [0.0, 2.0, 10.0, 0.0, 2.0, 10.0, 0.0, 2.0, 10.0]
    samples = _idle_samples(gaps, {0.0: 1.0, 2.0: 1.1, 10.0: 1.5}, idled_ms={0.0: 3.2, 2.0: 2.7, 10.0: 10.8})
    pen = service.idle_penalty(samples, 64)
    assert pen["gap_ms"].tolist() == [0.0, 10.0] and pen["gaps_pooled"].tolist() == [2, 1]
    assert pen["n"].tolist() == [6, 3]
    assert pen["idle_ms"].tolist() == pytest.approx([2.95, 10.8], abs=1e-6)  # median of three 2.7s and three 3.2s
    assert pen["extra_ms"].tolist() == pytest.approx([0.0, 0.45])  # over the pool's median service, 1.05
    law = service.service_law(samples, 1, 64)
    assert law.idle_extra(10.8) == pytest.approx(0.45) and law.idle_extra(2.0) == 0.0
    # a pool that ends up no longer than the one before it is pooled again (10 ms idled 2.9: all three in one)
    one = service.idle_penalty(_idle_samples(gaps, {0.0: 1.0, 2.0: 1.1, 10.0: 1.5},
                                             idled_ms={0.0: 3.2, 2.0: 2.7, 10.0: 2.9}), 64)
    assert one["gaps_pooled"].tolist() == [3] and one["extra_ms"].tolist() == [0.0]
    assert service.service_law(_idle_samples(gaps, {0.0: 1.0, 2.0: 1.1, 10.0: 1.5},
                                             idled_ms={0.0: 3.2, 2.0: 2.7, 10.0: 2.9}), 1, 64).idle_ms.size == 1


def test_a_profile_written_before_the_idle_samples_is_read_without_a_penalty(tmp_path):
    old = _idle_samples([], {}).drop(columns=["idle_gap_ms"])
    old.to_parquet(tmp_path / "syn.parquet")
    samples = service.read_samples(tmp_path / "syn.parquet")
    assert samples["idle_gap_ms"].isna().all()
    assert service.service_law(samples, 1, 64).idle_extra(50.0) == 0.0


def test_idle_gaps_must_be_positive():
    assert service.idle_gaps_ms({"service": {"idle_gaps_ms": [1, 3.5]}}) == [1.0, 3.5]
    assert service.idle_gaps_ms({"service": {}}) == []
    with pytest.raises(cfgmod.ConfigError, match=r"service.idle_gaps_ms: every gap must be a number of ms > 0"):
        service.idle_gaps_ms({"service": {"idle_gaps_ms": [1, -2]}})


@pytest.mark.slow
def test_drift_vs_rate_replays_each_chunk_with_and_without_the_idle_penalty(study, tmp_path):
    """One chunk per fraction of the modelled QPS*, each replayed through the model with and without the idle
    penalty (the synthetic runner has none to show: both drifts are finite and positive)."""
    cfg, _ = study
    out = tmp_path / "service" / "syn.csv"
    service.run(cfg, "syn", out, OPTS, workers=[1])
    rate, pairs = scalability.probe_sequence(cfg, "syn", out, 50.0, 1, 0, OPTS, fractions=[0.5, 1.0])
    assert rate > 0 and len(pairs) == 2
    assert all(np.isfinite(p).all() and min(p) > 0 for p in map(np.asarray, pairs))
