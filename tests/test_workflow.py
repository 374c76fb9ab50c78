"""The Snakemake pipeline: DAG builds for every config and the SLURM profile, lint is clean, bad config
keys fail at start naming the key. Dry runs only (no measurement)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # every test runs Snakemake

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def _run(*args, timeout=120):
    return subprocess.run([*SNAKEMAKE, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("scale", ["ci", "default", "paper"])
def test_dry_run_builds_the_dag(scale):
    proc = _run("-n", "--quiet", "rules", "--configfile", f"workflow/config/{scale}.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_dry_run_every_figure_and_table_is_a_target():
    proc = _run("-n", "--configfile", "workflow/config/ci.yaml", "--forceall")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    for rule in ("figure", "t2_table", "t1_table", "colocation_profile", "load_change", "servers_needed"):
        assert rule in out, rule


def test_slurm_profile_dry_run():
    proc = _run("-n", "--workflow-profile", "workflow/profiles/slurm", "--configfile", "workflow/config/ci.yaml",
                "--forceall")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "workflow/profiles/slurm" in proc.stdout + proc.stderr


def test_lint_is_clean():
    proc = _run("--lint", "--configfile", "workflow/config/ci.yaml")
    assert proc.returncode == 0 and "good condition" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_wrong_config_key_fails_at_start_naming_it():
    proc = _run("-n", "--configfile", "workflow/config/ci.yaml", "--config", "serch={}")
    assert proc.returncode != 0
    assert "serch" in proc.stdout + proc.stderr


def test_reference_figures_target_exists():
    proc = _run("-n", "--forceall", "reference_figures")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_every_figure_has_a_caption_the_report_template_renders():
    captions = ROOT / "workflow" / "report"
    assert "snakemake.params.caption" in (captions / "figure.rst").read_text()
    for fig in (f"F{i}" for i in range(1, 9)):
        text = (captions / f"{fig}.rst").read_text().strip()
        assert text and "{" not in text, fig
