"""F2 scalability and F4 co-location with the synthetic runner: tables, EMU, resumability, bad inputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("hera.workload.sizes")  # the load generator draws query sizes and arrivals from it

from hera import config as cfgmod  # noqa: E402
from hera.cli import main  # noqa: E402
from hera.errors import HeraError  # noqa: E402
from hera.paths import repo_root  # noqa: E402
from hera.profile import colocation, common, scalability  # noqa: E402

pytestmark = pytest.mark.slow  # QPS* searches on real (synthetic-runner) nodes

FAST = ["search.min_queries=100", "search.max_queries=200", "search.min_duration_s=0.1",
        "search.rel_tolerance=0.5", "search.repeats=1", "queries.kind=fixed", "queries.items=32",
        "queries.max_items=64", "batch_size=16"]
OPTS = {"syna": {"delay_ms": 0.5}, "synb": {"delay_ms": 1.0}}


@pytest.fixture()
def study(tmp_path):
    cfg = cfgmod.load(repo_root() / "workflow/config/ci.yaml", overrides=FAST)
    path = cfgmod.dump(cfg, tmp_path / "config.json")
    t1 = tmp_path / "T1.csv"
    pd.DataFrame({"model": ["syna", "synb"], "sla_ms": [25.0, 30.0], "sla_rule": ["test"] * 2}).to_csv(t1, index=False)
    scal = tmp_path / "scalability.csv"  # an input table (in a real study: `hera profile scalability`)
    pd.DataFrame({"model": ["syna", "syna", "synb", "synb"], "workers": [1, 2, 1, 2],
                  "qps_star": [200.0, 380.0, 120.0, 230.0]}).to_csv(scal, index=False)
    return cfg, path, t1, scal


def test_scalability_command_writes_f2_table(study, tmp_path, capsys):
    cfg, path, t1, _ = study
    out = tmp_path / "scal" / "syna.csv"
    assert main(["profile", "scalability", "--config", str(path), "--model", "syna", "--t1", str(t1),
                 "--out", str(out), "--runner", "synthetic"]) == 0
    json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    df = pd.read_csv(out)
    for col in ["model", "workers", "qps_star", "qps_star_lo", "qps_star_hi", "repeats", "queries_per_trial",
                "sla_ms", "percentile", "normalised"]:
        assert col in df.columns
    n = len(common.study_cores(cfg))
    assert list(df["workers"]) == list(range(1, n + 1))
    assert (df["qps_star"] > 0).all() and df.loc[0, "normalised"] == pytest.approx(1.0)
    assert (df["sla_ms"] == 25.0).all() and not (tmp_path / "scal" / "syna.partial.csv").exists()


def test_colocation_command_writes_f4_table(study, tmp_path, capsys):
    cfg, path, t1, scal = study
    out = tmp_path / "pairs" / "syna__synb.csv"
    opts = common.NodeOptions(runner="synthetic", options=OPTS)
    df = colocation.run(cfg, "syna__synb", t1, scal, out, opts)
    on_disk = pd.read_csv(out)
    for col in ["model_a", "model_b", "cores_a", "cores_b", "ways_a", "ways_b", "qps_star_a", "qps_star_b",
                "qps_alone_a", "qps_alone_b", "emu", "best", "f", "n_queries", "sla_ms_a", "sla_ms_b"]:
        assert col in on_disk.columns
    n = len(common.study_cores(cfg))
    assert len(df) == n - 1 and (df["cores_a"] + df["cores_b"] == n).all()
    row = df.iloc[0]
    assert row["qps_star_a"] == pytest.approx(row["f"] * row["qps_alone_a"])
    assert row["emu"] == pytest.approx(row["qps_star_a"] / 380.0 + row["qps_star_b"] / 230.0)
    assert df["best"].sum() == 1 and on_disk["ways_a"].isna().all()
    assert (on_disk["llc_partitioning"] == "unavailable").all()
    assert on_disk["note"].str.contains("LLC ways not split: ").all()  # rows say why (the reason string)


def test_colocation_resumes_after_interruption(study, tmp_path, fake_resctrl):
    """The shared LLC and three LLC-way splits (fake resctrl tree; one way kept for the harness group):
    interrupt after the first, resume, get all four."""
    cfg, _, t1, scal = study
    cfg = dict(cfg, cores=[0, 1])
    out = tmp_path / "pair.csv"
    opts = common.NodeOptions(runner="synthetic", options=OPTS, resctrl_root=str(fake_resctrl))

    class Interrupt(Exception):
        pass

    def stop_after_first(row):
        raise Interrupt(row["ways_a"])

    with pytest.raises(Interrupt):
        colocation.run(cfg, "syna__synb", t1, scal, out, opts, on_split=stop_after_first)
    partial = tmp_path / "pair.partial.csv"
    assert partial.is_file() and not out.exists()
    first = pd.read_csv(partial)
    assert len(first) == 1
    assert first["ways_a"].isna().all()  # the shared LLC comes first
    ran = []
    df = colocation.run(cfg, "syna__synb", t1, scal, out, opts, on_split=lambda r: ran.append(r["ways_a"]))
    assert ran == [2, 5, 8]  # the finished split was not measured again
    parted = df[df["ways_a"].notna()]
    assert len(df) == 4 and sorted(parted["ways_a"]) == [2, 5, 8] and (parted["ways_a"] + parted["ways_b"] == 10).all()
    assert not list(fake_resctrl.glob("hera-*"))  # every group (tenants, harness, check) removed
    assert out.is_file() and not partial.exists()
    assert pd.read_csv(out).iloc[0]["emu"] == pytest.approx(first.iloc[0]["emu"])
    assert (df["llc_partitioning"] == "available").all()


def test_search_factor_finds_the_threshold():
    seen = []

    def trial(f):
        seen.append(f)
        return f <= 0.63

    f = colocation.search_factor(trial, rel_tol=0.05)
    assert 0.6 <= f <= 0.63 and seen[0] == 1.0
    assert colocation.search_factor(lambda f: False, 0.1) == 0.0
    assert colocation.search_factor(lambda f: True, 0.1) == colocation.F_MAX


def test_way_splits_and_plan():
    assert colocation.way_splits(11) == [(2, 9), (5, 6), (9, 2)]
    splits, part = colocation.plan_splits([0, 1, 2], {"available": False}, True)
    assert part == "unavailable" and [(len(s.cpus_a), len(s.cpus_b)) for s in splits] == [(1, 2), (2, 1)]
    splits, part = colocation.plan_splits([4, 5], {"available": True, "l3_ways": 11, "min_cbm_bits": 1}, True)
    assert part == "available" and [(s.cpus_a, s.ways_a, s.ways_b) for s in splits] == [
        ((4,), None, None), ((4,), 2, 8), ((4,), 5, 5), ((4,), 8, 2)]  # shared LLC beside the way splits
    splits, part = colocation.plan_splits([4, 5], {"available": True, "l3_ways": 11}, False)
    assert part == "unavailable" and len(splits) == 1
    with pytest.raises(HeraError, match="at least 2 usable core"):
        colocation.plan_splits([0], {"available": False}, True)


def test_colocation_bad_inputs(study, tmp_path, capsys):
    _, path, t1, scal = study
    base = ["profile", "colocation", "--config", str(path), "--t1", str(t1), "--scalability", str(scal),
            "--out", str(tmp_path / "x.csv")]
    assert main(base + ["--pair", "dlrm_rmc1_dlrm_rmc3"]) == 2
    assert "malformed model pair" in capsys.readouterr().err
    assert main(base + ["--pair", "syna__sync", "--runner", "synthetic"]) == 2
    assert "has no row for model 'sync'" in capsys.readouterr().err
    pd.DataFrame({"model": ["syna", "synb"], "workers": [7, 7], "qps_star": [1.0, 1.0]}).to_csv(scal, index=False)
    assert main(base + ["--pair", "syna__synb", "--runner", "synthetic"]) == 2
    assert "has no row for model 'syna' with 1 worker(s)" in capsys.readouterr().err


def test_search_factor_stops_when_halving_the_load_does_not_help():
    seen = []
    assert colocation.search_factor(lambda f: seen.append(f) or False, 0.1, flat=lambda hi, f: f <= 0.25) == 0.0
    assert seen == [1.0, 0.5, 0.25, 0.125]  # two flat halvings in a row, not down to F_MIN
    seen.clear()  # a flat halving followed by one that helped does not count
    assert colocation.search_factor(lambda f: seen.append(f) or False, 0.1,
                                    flat=lambda hi, f: f in (0.5, 0.125, 0.0625)) == 0.0
    assert seen == [1.0, 0.5, 0.25, 0.125, 0.0625]
    # flat_tenants: above the SLA and not 5% better after halving → stuck; improving or within SLA → not
    hi, lo = {"a": 80.0, "b": 50.0, "c": 90.0}, {"a": 79.0, "b": 49.0, "c": 60.0}
    assert colocation.flat_tenants(hi, lo, {"a": 70.0, "b": 40.0, "c": 50.0}) == ["a", "b"]
    assert colocation.flat_tenants(hi, lo, {"a": 100.0, "b": 100.0, "c": 100.0}) == []
    assert colocation.flat_tenants({"a": None}, {"a": 90.0}, {"a": 70.0}) == []
