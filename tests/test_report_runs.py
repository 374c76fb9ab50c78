"""Headline numbers of several runs and their spread (hera.report.runs, `hera bench runs`)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hera.cli import main
from hera.errors import HeraError
from hera.paths import repo_root
from hera.report.runs import compare, headline

REF = repo_root() / "results" / "reference"


def _run(root: Path, qps: dict[tuple[str, int], tuple[float, float]], f2_s: list[float]) -> Path:
    """A clone's layout: results/default/profile/scalability.csv and benchmarks/default/profile/scalability/*.tsv."""
    res = root / "results" / "default"
    (res / "profile").mkdir(parents=True)
    pd.DataFrame([{"model": m, "workers": w, "qps_star": q, "qps_star_model": mq, "git_commit": "abcdef0123"}
                  for (m, w), (q, mq) in qps.items()]).to_csv(res / "profile" / "scalability.csv", index=False)
    bench = root / "benchmarks" / "default" / "profile" / "scalability"
    bench.mkdir(parents=True)
    for i, s in enumerate(f2_s):
        (bench / f"m{i}.tsv").write_text(f"s\th:m:s\n{s}\t0:00:{int(s)}\n")
    return res


def test_two_runs_give_each_number_with_its_spread(tmp_path):
    a = _run(tmp_path / "a", {("x", 1): (100.0, 110.0), ("x", 2): (200.0, 190.0)}, [60.0, 40.0])
    b = _run(tmp_path / "b", {("x", 1): (80.0, 100.0), ("x", 2): (210.0, 210.0)}, [70.0, 50.0])
    ha, hb = headline(a), headline(b)
    assert ha.f2_stage_s == 100.0 and hb.f2_stage_s == 120.0
    assert ha.model_median_abs_rel_error == pytest.approx(0.075) and hb.model_max_abs_rel_error == pytest.approx(0.25)
    assert math.isnan(ha.pair_mean_abs_emu_error) and math.isnan(ha.c5_violation_frac)  # no such files: NaN
    out = compare([ha, hb])
    assert out["f2_stage_s"] == {"values": [100.0, 120.0], "median": 110.0, "min": 100.0, "max": 120.0}
    assert out["qps_star"]["x/1"]["values"] == [100.0, 80.0]
    assert out["qps_star"]["x/1"]["cov"] == pytest.approx(14.142 / 90, rel=1e-3)
    assert out["pair_mean_abs_emu_error"]["median"] is None
    # a run before the operating-point probe: its model *was* the profile's, so the profile-alone errors are its own
    assert ha.model_profile_max_abs_rel_error == ha.model_max_abs_rel_error


def test_a_probed_run_keeps_the_profile_alone_errors_beside(tmp_path):
    res = _run(tmp_path / "p", {("x", 1): (100.0, 105.0), ("x", 2): (200.0, 210.0)}, [60.0])
    scal = pd.read_csv(res / "profile" / "scalability.csv").assign(qps_star_model_profile=[150.0, 180.0],
                                                                   operating_drift=[1.4, 0.9])
    scal.to_csv(res / "profile" / "scalability.csv", index=False)
    h = headline(res)
    assert h.model_max_abs_rel_error == pytest.approx(0.05)
    assert h.model_profile_max_abs_rel_error == pytest.approx(0.5)
    assert h.model_profile_median_abs_rel_error == pytest.approx(0.3)


def test_a_bracketed_run_keeps_the_probe_before_errors_beside(tmp_path):
    res = _run(tmp_path / "p", {("x", 1): (100.0, 105.0), ("x", 2): (200.0, 210.0)}, [60.0])
    scal = pd.read_csv(res / "profile" / "scalability.csv").assign(qps_star_model_before=[140.0, 190.0])
    scal.to_csv(res / "profile" / "scalability.csv", index=False)
    h = headline(res)
    assert h.model_max_abs_rel_error == pytest.approx(0.05)
    assert h.model_before_max_abs_rel_error == pytest.approx(0.4)
    assert h.model_before_median_abs_rel_error == pytest.approx(0.225)
    # a run before the probe after the trials: its model *was* the one from before them
    plain = headline(_run(tmp_path / "q", {("x", 1): (100.0, 110.0)}, [60.0]))
    assert plain.model_before_max_abs_rel_error == plain.model_max_abs_rel_error


def test_a_run_with_anchored_pairs_reports_them_beside_the_headline(tmp_path):
    """A pairs table with the anchored prediction: its errors enter the run's headline beside the stage's (and
    the spread); one without it gives NaN."""
    res = _run(tmp_path / "p", {("x", 1): (100.0, 105.0), ("y", 1): (50.0, 50.0)}, [60.0])
    (res / "colocation").mkdir()
    pairs = pd.DataFrame({"model_a": ["x", "x"], "model_b": ["y", "y"], "cores_a": 1, "cores_b": 1,
                          "ways_a": np.nan, "ways_b": np.nan, "share_a": [0.5, 0.25], "qps_star_a": [40.0, 20.0],
                          "qps_star_b": [20.0, 30.0], "emu": [0.6, 0.5], "predicted_qps_star_a": [50.0, 25.0],
                          "predicted_qps_star_b": [25.0, 37.5], "predicted_emu": [0.75, 0.625]})
    pairs.to_csv(res / "colocation" / "pairs.csv", index=False)
    plain = headline(res)
    assert plain.pair_median_abs_rel_error == pytest.approx(0.25) and math.isnan(plain.pair_anchored_mean_abs_emu_error)
    pairs.assign(anchored_qps_star_a=[44.0, 22.0], anchored_qps_star_b=[22.0, 33.0], anchored_emu=[0.66, 0.55]).to_csv(
        res / "colocation" / "pairs.csv", index=False)
    h = headline(res)
    assert h.pair_median_abs_rel_error == pytest.approx(0.25)
    assert h.pair_anchored_median_abs_rel_error == pytest.approx(0.1)
    assert h.pair_anchored_mean_abs_emu_error == pytest.approx(0.055)
    other = headline(_run(tmp_path / "q", {("x", 1): (90.0, 105.0), ("y", 1): (55.0, 50.0)}, [50.0]))
    assert compare([other, h])["pair_anchored_mean_abs_emu_error"]["values"][1] == pytest.approx(0.055)


def test_a_curated_reference_reads_its_own_benchmarks_and_pairs(tmp_path):
    ref = headline(REF)
    assert ref.f2_stage_s > 0 and ref.commits and len(ref.qps_star) == 16
    assert 0 <= ref.pair_mean_abs_emu_error < 1 and 0 <= ref.c5_violation_frac <= 1


def test_bad_run_sets_are_refused(tmp_path, capsys):
    a = _run(tmp_path / "a", {("x", 1): (100.0, 110.0)}, [60.0])
    with pytest.raises(HeraError, match="at least 2 runs"):
        compare([headline(a)])
    copy = tmp_path / "copy"
    shutil.copytree(a, copy)
    with pytest.raises(HeraError, match="hold the same run"):
        compare([headline(a), headline(copy)])
    rc = main(["bench", "runs", "--from-results", str(a), str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0 and "is not a run's results folder" in err and err.count("\n") == 1


def test_the_command_prints_and_writes_the_spread(tmp_path, capsys):
    a = _run(tmp_path / "a", {("x", 1): (100.0, 110.0)}, [60.0])
    b = _run(tmp_path / "b", {("x", 1): (90.0, 110.0)}, [80.0])
    assert main(["bench", "runs", "--from-results", str(a), str(b), "--out", str(tmp_path / "runs.json")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    last = json.loads(lines[-1])
    assert last["f2_stage_s"]["max"] == 80.0
    assert "as served: model n/a / n/a" in lines[0]  # runs without the columns: said so, not "nan%"
    doc = json.loads((tmp_path / "runs.json").read_text())
    assert doc["bench"] == "runs" and doc["figure"]["runs"] == [str(a), str(b)] and "git_commit" in doc
    assert main(["bench", "runs", "--from-results", str(a), str(b), "--labels", "first,second", "--out",
                 str(tmp_path / "named.json")]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["runs"] == ["first", "second"]
    assert main(["bench", "runs", "--from-results", str(a), str(b), "--labels", "one", "--out", str(tmp_path)]) != 0
    assert "--labels names 1 runs, --from-results gives 2" in capsys.readouterr().err


def test_pair_drift_is_kept_per_victim_and_partner():
    """Both tenants of a ray are a victim; a pair's drift is the median over its rays; no drift columns: none."""
    from hera.report.runs import pair_drifts

    pairs = pd.DataFrame({"model_a": ["x", "x", "x"], "model_b": ["y", "y", "y"],
                          "service_drift_a": [1.0, 1.2, 1.6], "service_drift_b": [0.9, float("nan"), 1.1]})
    assert pair_drifts(pairs) == {"x|y": pytest.approx(1.2), "y|x": pytest.approx(1.0)}
    assert pair_drifts(pairs.drop(columns=["service_drift_b"])) == {}


def _with_drift(label: str, drift: dict[str, float], seed: int):
    from hera.report.runs import RunHeadline

    nan = math.nan
    return RunHeadline(label, ("abc",), 1.0, nan, nan, nan, nan, nan, qps_star={"x/1": 1.0 + seed},
                       pair_drift=drift, fingerprint=str(seed))


def test_a_drift_that_repeats_between_runs_correlates_and_a_random_one_does_not():
    keys = [f"v{i}|p{i}" for i in range(12)]
    rng = np.random.default_rng(0)
    base = np.exp(rng.normal(0, 0.2, len(keys)))
    same = _with_drift("a", dict(zip(keys, base)), 1)
    again = _with_drift("b", dict(zip(keys, base * 1.1)), 2)          # the same pattern on a slower day
    other = _with_drift("c", dict(zip(keys, base[::-1])), 3)          # another pattern
    out = compare([same, again, other])
    corr = out["pair_drift_between_run_correlation"]["pairs_of_runs"]
    assert corr["a~b"] == pytest.approx(1.0)
    assert abs(corr["a~c"]) < 0.9
    assert out["pair_service_drift"]["v0|p0"]["values"][1] == pytest.approx(round(base[0] * 1.1, 4))
    # too few shared pairs: no correlation, not a number from two points
    few = compare([_with_drift("d", {"a|b": 1.0, "b|a": 1.2}, 4), _with_drift("e", {"a|b": 1.1, "b|a": 0.9}, 5)])
    assert few["pair_drift_between_run_correlation"] is None


def _samples(workers: int, scale: float) -> pd.DataFrame:
    return pd.DataFrame([{"workers": workers, "regime": r, "items": n, "service_ms": scale * n / 8}
                         for r in ("light", "saturated") for n in (8, 64)])


def test_the_refresh_ratio_comes_from_the_rows_or_else_from_the_kept_samples(tmp_path):
    # a run with the F2 column: read as it is
    a = _run(tmp_path / "a", {("x", 1): (100.0, 100.0), ("x", 2): (200.0, 200.0)}, [60.0])
    scal = pd.read_csv(a / "profile" / "scalability.csv").assign(service_refresh_ratio=[1.5, float("nan")])
    scal.to_csv(a / "profile" / "scalability.csv", index=False)
    ha = headline(a)
    assert ha.refresh_ratio == {"x/1": 1.5} and ha.service_refresh_ratio_median == 1.5
    # a run before the column that kept both profiles' raw samples: computed from them
    b = _run(tmp_path / "b", {("x", 1): (90.0, 100.0), ("x", 2): (190.0, 200.0)}, [60.0])
    (b / "profile" / "service").mkdir()
    (b / "profile" / "scalability").mkdir()
    pd.concat([_samples(1, 1.0), _samples(2, 1.0)]).to_parquet(b / "profile" / "service" / "x.parquet")
    pd.concat([_samples(1, 2.0), _samples(2, 0.8)]).to_parquet(b / "profile" / "scalability" / "x.service.parquet")
    hb = headline(b)
    assert hb.refresh_ratio == pytest.approx({"x/1": 2.0, "x/2": 0.8})
    assert hb.service_refresh_ratio_median == pytest.approx(1.4)
    out = compare([ha, hb])
    assert out["service_refresh_ratio"]["x/1"]["values"] == [1.5, 2.0]
    assert out["service_refresh_ratio"]["x/2"]["values"] == [None, 0.8]
    assert out["service_refresh_ratio_median"]["median"] == pytest.approx(1.45)
    # neither the column nor the samples (a curated reference): nothing, not an error
    assert headline(REF).refresh_ratio == {} and math.isnan(headline(REF).service_refresh_ratio_median)


def test_the_stage_drift_is_the_probe_against_the_stage_profile_whichever_start(tmp_path):
    # a stage run: the probe's drift as it is; a refresh run: times the refresh ratio; no probe: left out
    a = _run(tmp_path / "a", {("x", 1): (100.0, 100.0), ("x", 2): (200.0, 200.0)}, [60.0])
    scal = pd.read_csv(a / "profile" / "scalability.csv").assign(
        service_source="stage", operating_drift=[1.2, float("nan")])
    scal.to_csv(a / "profile" / "scalability.csv", index=False)
    b = _run(tmp_path / "b", {("x", 1): (90.0, 100.0), ("x", 2): (190.0, 200.0)}, [60.0])
    scal = pd.read_csv(b / "profile" / "scalability.csv").assign(
        service_source="refresh", operating_drift=[1.1, 0.9], service_refresh_ratio=[2.0, float("nan")])
    scal.to_csv(b / "profile" / "scalability.csv", index=False)
    ha, hb = headline(a), headline(b)
    assert ha.stage_drift == {"x/1": 1.2} and ha.stage_drift_median == pytest.approx(1.2)
    assert hb.stage_drift == pytest.approx({"x/1": 2.2})  # x/2 has no refresh ratio: left out
    out = compare([ha, hb])
    assert out["stage_drift"]["x/1"]["values"] == [1.2, 2.2]
    assert out["stage_drift_median"]["median"] == pytest.approx(1.7)
    # the curated reference (a stage run): its rows' probe drifts
    ref = pd.read_csv(REF / "profile" / "scalability.csv")
    expect = {f"{m}/{w}": d for m, w, d in zip(ref["model"], ref["workers"], ref["operating_drift"])}
    assert (ref["service_source"] == "stage").all() and headline(REF).stage_drift == pytest.approx(expect)


def test_runs_of_an_earlier_summary_enter_a_new_spread(tmp_path):
    """Old runs' folders are not kept, their summary is: `--from-summary` rebuilds them from the values it stored,
    so the spread over old and new runs equals the one over all their folders."""
    a = _run(tmp_path / "a", {("x", 1): (100.0, 110.0), ("x", 2): (200.0, 190.0)}, [60.0, 40.0])
    b = _run(tmp_path / "b", {("x", 1): (80.0, 100.0), ("x", 2): (210.0, 210.0)}, [70.0, 50.0])
    c = _run(tmp_path / "c", {("x", 1): (90.0, 95.0), ("x", 2): (190.0, 230.0)}, [65.0, 45.0])
    old = tmp_path / "runs-a-b.json"
    assert main(["bench", "runs", "--from-results", str(a), str(b), "--labels", "ra,rb", "--out", str(old)]) == 0
    rc = main(["bench", "runs", "--from-summary", str(old), "--from-results", str(c), "--labels", "rc",
               "--out", str(tmp_path / "all.json")])
    assert rc == 0
    merged = json.loads((tmp_path / "all.json").read_text())["figure"]
    direct = compare([headline(a, "ra"), headline(b, "rb"), headline(c, "rc")])
    assert merged["runs"] == ["ra", "rb", "rc"]
    for key in ("f2_stage_s", "model_median_abs_rel_error", "model_max_abs_rel_error"):
        assert merged[key] == direct[key]
    assert merged["qps_star"] == direct["qps_star"]


def test_a_summary_run_given_again_as_a_folder_or_a_bad_summary_is_refused(tmp_path, capsys):
    from hera.report.runs import from_summary

    a = _run(tmp_path / "a", {("x", 1): (100.0, 110.0)}, [60.0])
    b = _run(tmp_path / "b", {("x", 1): (80.0, 100.0)}, [70.0])
    old = tmp_path / "runs.json"
    assert main(["bench", "runs", "--from-results", str(a), str(b), "--out", str(old)]) == 0
    with pytest.raises(HeraError, match="hold the same run"):
        compare([*from_summary(old), headline(a)])
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"bench": "model-agreement", "figure": {}}))
    capsys.readouterr()
    rc = main(["bench", "runs", "--from-summary", str(other), "--from-results", str(a), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc != 0 and "is not a `hera bench runs` output" in err and err.count("\n") == 1
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(HeraError, match="not a readable"):
        from_summary(tmp_path / "broken.json")


def test_the_committed_summary_rebuilds_its_runs():
    from hera.report.runs import from_summary

    path = REF / "bench" / "runs-21-25-26-27-28-29-30.json"
    stored = json.loads(path.read_text())["figure"]
    runs = from_summary(path)
    assert [r.path for r in runs] == stored["runs"]
    assert [r.f2_stage_s for r in runs] == stored["f2_stage_s"]["values"]
    assert compare(runs)["model_max_abs_rel_error"] == stored["model_max_abs_rel_error"]
    # written before the probe after the trials: the model from before them is the headline
    assert [r.model_before_max_abs_rel_error for r in runs] == stored["model_max_abs_rel_error"]["values"]
