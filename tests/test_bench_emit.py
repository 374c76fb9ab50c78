"""`hera bench` output: a folder as --out gets <name>.json; an unwritable path still prints the figure."""
import json

from hera.bench import qps
from hera.bench.common import emit
from hera.errors import HeraError


def test_out_folder_gets_the_bench_name(tmp_path, capsys):
    assert emit("qps-repeatability", "ci", {"cov": 0.05}, tmp_path, {}) == 0
    assert json.loads((tmp_path / "qps-repeatability.json").read_text())["figure"] == {"cov": 0.05}
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"cov": 0.05}


def test_unwritable_out_prints_the_figure_and_fails(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert emit("serving", "ci", {"efficiency": 0.9}, blocker / "sub" / "out.json", {}) == 1
    cap = capsys.readouterr()
    assert json.loads(cap.out.strip().splitlines()[-1]) == {"efficiency": 0.9}
    assert "cannot write" in cap.err


def test_pair_prediction_from_results_says_where_the_error_sits(tmp_path):
    """From a finished run's measured pairs: the headline errors, and the mean signed EMU error of each ray;
    fewer measured pairs than asked for, or no table, is a one-line error."""
    import pytest

    from hera.errors import HeraError
    from hera.policy.synthetic import prediction_world

    pairs = prediction_world(error=0.2, seed=3)["pairs"]
    (tmp_path / "colocation").mkdir()
    pairs.to_csv(tmp_path / "colocation" / "pairs.csv", index=False)
    models = sorted(set(pairs["model_a"]) | set(pairs["model_b"]))
    fig = qps.bench_pair_prediction("ci", models, {}, tmp_path, 1)
    assert fig["points"] == len(pairs) and fig["median_abs_rel_error"] > 0
    d = (pairs["predicted_emu"] - pairs["emu"]).groupby(pairs["share_a"].round(3)).mean()
    assert fig["mean_emu_error_by_ray"] == {f"{s:g}": round(float(v), 4) for s, v in d.items()}
    assert set(fig["mean_emu_error_by_ray"]) == {"0.25", "0.5", "0.75"}
    with pytest.raises(HeraError, match="fewer than --min-pairs 99"):
        qps.bench_pair_prediction("ci", models, {}, tmp_path, 99)
    with pytest.raises(HeraError, match="pairs.csv does not exist"):
        qps.bench_pair_prediction("ci", models, {}, tmp_path / "none", 1)


def test_des_bench_reports_the_model_costs_and_a_bit_identical_loop(tmp_path, capsys):
    from hera.cli import main

    out = tmp_path / "des.json"
    assert main(["bench", "des", "--scale", "ci", "--repeats", "1", "--out", str(out)]) == 0
    fig = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert fig["identical"] is True and fig["service"] == "synthetic" and fig["modelled_qps_star"] > 0
    assert fig["model_solve_s"] > 0 and fig["control_variate_per_trial_ms"] > 0 and fig["compiled_speedup"] > 0
    assert json.loads(out.read_text())["figure"] == fig


def test_des_bench_bad_input_is_one_line(tmp_path, capsys):
    from hera.cli import main

    assert main(["bench", "des", "--scale", "ci", "--workers", "0", "--out", str(tmp_path / "a.json")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--workers" in err
    assert main(["bench", "des", "--scale", "ci", "--service", str(tmp_path / "none.parquet")]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "none.parquet" in err


def test_repeatability_reports_the_machine_beside_the_method(monkeypatch):
    """Each determination runs with its own seed against the first one's SLA; the figure gives the measured
    spread (the bar) beside the served model's and the service drift's, and a missing value stays missing."""
    import pandas as pd
    import pytest

    from hera.profile import scalability

    calls = []
    values = iter([(100.0, 0.80, 98.0), (120.0, 0.96, 119.0), (110.0, float("nan"), 111.0)])

    def fake_determine(cfg, model, workers, *, sla_ms=None, stream=""):
        calls.append((cfg["seed"], sla_ms, stream))
        q, drift, served = next(values)
        return pd.DataFrame([{"qps_star": q, "qps_star_model": 90.0 + len(calls), "qps_star_raw": q + 1,
                              "qps_star_model_served": served, "service_drift": drift, "qps_star_cov": 0.02,
                              "sla_ms": 50.0 + len(calls), "seconds": 12.34, "n_trials": 7,
                              "per_repeat": "1;2;3"}])

    monkeypatch.setattr(scalability, "determine", fake_determine)
    monkeypatch.setattr(qps, "require_built", lambda model, scale: None)
    monkeypatch.setattr(qps, "t1_sla", lambda model, scale: None)
    fig = qps.bench_repeatability("dlrm_rmc1", "ci", 3, 1, {"seed": 7})
    assert [c[0] for c in calls] == [1007, 2007, 3007]          # one seed per determination
    assert [c[1] for c in calls] == [None, 51.0, 51.0]          # the first determination's SLA for all
    assert fig["sla_ms"] == 51.0 and fig["qps_star"] == [100.0, 120.0, 110.0]
    assert fig["sla_source"].startswith("the first determination")  # no T1: said so
    assert fig["cov"] == pytest.approx(10.0 / 110.0)
    assert fig["cov_ci"][0] < fig["cov"] < fig["cov_ci"][1] and fig["cov_ci_level"] == 0.95
    assert fig["cov_model_served"] == pytest.approx(pd.Series([98.0, 119.0, 111.0]).std() / (328.0 / 3))
    assert fig["service_drift"] == [0.8, 0.96, None] and fig["cov_service_drift"] is None
    assert fig["repeat_cov"] == [0.02, 0.02, 0.02] and fig["trials_per_run"] == [7, 7, 7]
    with pytest.raises(HeraError, match="at least 2"):
        qps.bench_repeatability("dlrm_rmc1", "ci", 1, 1, {"seed": 7})
    # with the study's T1: its SLA for every determination, and the figure names the table it came from
    calls.clear()
    values = iter([(100.0, 1.0, 100.0)] * 2)
    monkeypatch.setattr(qps, "t1_sla", lambda model, scale: 40.0)
    fig = qps.bench_repeatability("dlrm_rmc1", "ci", 2, 1, {"seed": 7})
    assert [c[1] for c in calls] == [40.0, 40.0] and fig["sla_ms"] == 40.0
    from hera.paths import results_dir

    assert fig["sla_source"].startswith(str(results_dir("ci") / "tables" / "T1.csv"))


def test_the_cov_interval_is_vangels_and_covers_at_its_level():
    """Vangel's modified McKay interval: close to the chi-square interval on the SD for a small CoV, and over
    normal samples it covers the true CoV in about 95% of them; a 3-run CoV of 0.032 is not shown <= 0.10."""
    import numpy as np
    import pytest
    from scipy.stats import chi2

    from hera.bench.common import cov, cov_interval

    x = np.array([100.0, 101.0, 99.0])  # CoV 0.01: McKay's correction is O(CoV²)
    k = cov(x)
    lo, hi = cov_interval(x)
    assert lo == pytest.approx(k * (2 / chi2.ppf(0.975, 2)) ** 0.5, rel=0.01)
    assert hi == pytest.approx(k * (2 / chi2.ppf(0.025, 2)) ** 0.5, rel=0.01)
    lo3, hi3 = cov_interval(np.array([235.751, 243.876, 228.571]))  # a committed RMC1 bench (CoV 0.032)
    assert lo3 < 0.032 < 0.10 < hi3
    rng = np.random.default_rng(11)
    covered = [(lambda c: c[0] <= 0.1 <= c[1])(cov_interval(rng.normal(100.0, 10.0, 5))) for _ in range(2000)]
    assert np.mean(covered) == pytest.approx(0.95, abs=0.02)
    assert cov_interval(np.array([1.0])) is None and cov_interval(np.array([0.0, 0.0])) is None


def test_repeatability_results_pool_per_model_and_never_drop_a_bench_silently(tmp_path):
    """Benches pool into one CoV per model and worker count on the sum of their degrees of freedom; a bench
    without a CoV (a zero QPS*) is listed as left out; a file that is no such result is a one-line error."""
    import pytest

    def bench(name: str, model: str, q: list[float] | None, k: float | None) -> str:
        p = tmp_path / name
        p.write_text(json.dumps({"figure": {"model": model, "workers": 1, "runs": 3, "cov": k, "qps_star": q},
                                 "git_commit": "abc"}))
        return p

    files = [bench("a.json", "dlrm_rmc1", [1, 2, 3], 0.1), bench("b.json", "dlrm_rmc1", [1, 2, 3], 0.2),
             bench("c.json", "dlrm_rmc3", [1, 2, 3], 0.05), bench("d.json", "dlrm_rmc1", [0.0, 2, 3], None)]
    fig = qps.repeatability_pool(files)
    r1 = fig["by_model"]["dlrm_rmc1/w1"]
    assert r1["pooled_cov"] == pytest.approx((0.05 / 2) ** 0.5, abs=1e-4)  # (2·0.01 + 2·0.04) / 4
    assert r1["degrees_of_freedom"] == 4 and r1["groups"] == 2 and r1["benches_cov_at_most_bar"] == 1
    assert r1["pooled_cov_ci"][0] < r1["pooled_cov"] < r1["pooled_cov_ci"][1]
    assert fig["by_model"]["dlrm_rmc3/w1"]["degrees_of_freedom"] == 2
    assert [x["file"] for x in fig["left_out"]] == [str(files[3])] and "undefined" in fig["left_out"][0]["why"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(HeraError, match="bad.json: not a qps-repeatability result"):
        qps.repeatability_pool([files[0], bad])
    with pytest.raises(HeraError, match="no qps-repeatability result with a defined CoV"):
        qps.repeatability_pool([files[3]])


def test_the_pool_from_the_command_line(tmp_path, capsys):
    from hera.cli import main

    p = tmp_path / "a.json"
    p.write_text(json.dumps({"figure": {"model": "ncf", "workers": 2, "runs": 10, "cov": 0.05}}))
    out = tmp_path / "pool.json"
    assert main(["bench", "qps-repeatability", "--from-benches", str(p), "--out", str(out)]) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["by_model"]["ncf/w2"]["degrees_of_freedom"] == 9
    assert json.loads(out.read_text())["bench"] == "qps-repeatability-pool"
    assert main(["bench", "qps-repeatability", "--from-benches", str(tmp_path / "missing.json")]) != 0
