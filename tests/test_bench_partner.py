"""`hera bench busy-partner`: a tenant at a fixed load beside a partner at several loads (hera.bench.partner)."""

from __future__ import annotations

import os

import pytest

from hera import config as cfgmod
from hera.bench.partner import busy_partner, by_fraction, check_inputs
from hera.cli import main
from hera.errors import HeraError
from hera.harness import NodeOptions
from hera.paths import repo_root
from hera.profile.pair_prediction import NoInterference

CPUS = sorted(os.sched_getaffinity(0))


def _config(cores):
    """The ci study on ``cores`` (the synthetic runner serves any model name)."""
    return {**cfgmod.load(repo_root() / "workflow/config/ci.yaml"), "cores": list(cores)}


def test_bad_fractions_load_blocks_and_seconds_are_one_line_errors(capsys):
    assert check_inputs(0.85, [0.5, 0.1, 0.5], 1, 1.0) == [0.1, 0.5]
    for args, what in (((0.85, [0.5], 1, 1.0), "--fractions"), ((0.85, [0.1, 2.0], 1, 1.0), "--fractions"),
                       ((0.0, [0.1, 0.5], 1, 1.0), "--load"), ((0.85, [0.1, 0.5], 0, 1.0), "--blocks"),
                       ((0.85, [0.1, 0.5], 1, 0.1), "--seconds")):
        with pytest.raises(HeraError, match=what):
            check_inputs(*args)
    assert main(["bench", "busy-partner", "--model", "ncf", "--partner", "din", "--fractions", "a,b"]) != 0
    assert "--fractions must be comma-separated numbers" in capsys.readouterr().err


def test_a_model_without_qps_or_a_one_core_study_is_refused():
    with pytest.raises(HeraError, match="model 'y' has no one-worker QPS"):
        busy_partner(_config(CPUS[:2]), "x", "y", {"x": 10.0}, {"x": 50.0, "y": 50.0}, 0.5, [0.1, 0.5], 1, 1.0,
                     NodeOptions(runner="synthetic"))
    with pytest.raises(HeraError, match="needs two study cores"):
        busy_partner(_config(CPUS[:1]), "x", "y", {"x": 10.0, "y": 10.0}, {"x": 50.0, "y": 50.0}, 0.5, [0.1, 0.5],
                     1, 1.0, NodeOptions(runner="synthetic"))


def test_each_fraction_is_read_against_the_lightest_in_the_same_block():
    windows = [{"block": b, "fraction": f, "service_ms_mean": s, "latency_ms_mean": s, "latency_ms_p95": 10 * s,
                "harness_cores": 0.1} for b, drift in ((0, 1.0), (1, 2.0))
               for f, s in ((0.1, 1.0 * drift), (0.9, 1.2 * drift))]
    fig = by_fraction(windows, NoInterference(), "x", "y")
    # the machine doubled its times in block 1: the ratios within blocks do not see it
    assert fig["0.9"]["service_ms_mean_vs_lightest"] == {"median": 1.2, "min": 1.2, "max": 1.2}
    assert fig["0.1"]["latency_ms_p95_vs_lightest"]["median"] == 1.0
    assert fig["0.9"]["service_ms_mean"] == pytest.approx(1.8)
    assert fig["0.9"]["predicted_inflation_vs_lightest"] == 1.0


@pytest.mark.slow
@pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 usable CPUs")
def test_the_bench_loads_both_tenants_and_reports_every_window():
    fig = busy_partner(_config(CPUS[:2]), "x", "y", {"x": 40.0, "y": 40.0}, {"x": 200.0, "y": 200.0}, 0.5,
                       [0.1, 0.6], 2, 1.0, NodeOptions(runner="synthetic"), NoInterference())
    assert len(fig["windows"]) == 4 and {w["fraction"] for w in fig["windows"]} == {0.1, 0.6}
    assert all(w["queries"] > 0 and w["service_ms_mean"] > 0 for w in fig["windows"])
    assert fig["by_fraction"]["0.1"]["service_ms_mean_vs_lightest"]["median"] == 1.0
    assert fig["cores"] == CPUS[:2] and fig["tenant_qps"] == 20.0
