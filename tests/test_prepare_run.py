"""workflow/scripts/prepare-run.sh: the pipeline as a plain script for a machine without Snakemake. The script is
made from the `ci` config's dry run; it is then run against a fake `hera` in a scratch folder, so nothing is
measured."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # the script is made from a Snakemake dry run


def _prepare(out: Path, *args: str) -> subprocess.CompletedProcess:
    """prepare-run.sh with this interpreter's Snakemake first on PATH."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cmd = ["bash", "workflow/scripts/prepare-run.sh", str(out), "--configfile", "workflow/config/ci.yaml", *args]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "ci.sh"
    proc = _prepare(out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dry = subprocess.run([sys.executable, "-m", "snakemake", "all", "-n", "--forceall", "--configfile",
                          "workflow/config/ci.yaml"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    stats = dict(re.findall(r"^(\w+)\s+(\d+)$", dry.stdout, re.M))
    return out, {k: int(v) for k, v in stats.items() if k not in ("all", "total")}


def test_every_job_of_the_dry_run_is_in_the_script_in_order(prepared):
    script, stats = prepared
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    rules = re.findall(r"^job \d+ (\w+) ", text, re.M)
    assert {r: rules.count(r) for r in set(rules)} == stats and len(rules) == sum(stats.values())
    assert rules.index("study_config") < rules.index("core_plan") < rules.index("scalability_profile")
    assert rules.index("t2_table") > max(i for i, r in enumerate(rules) if r == "colocation_profile")
    plan = re.search(r"^hera topology .*$", text, re.M).group(0)
    assert "--expect-" not in plan  # the plan is made on the machine that runs the script
    assert f"{sum(stats.values())} jobs, scale ci" in text


def _scratch(tmp_path: Path, rc: int = 0) -> tuple[Path, dict]:
    """A folder that looks like the repository's root, and a fake `hera` that records its calls."""
    (tmp_path / "Snakefile").write_text("")
    (tmp_path / "hera").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "hera"
    fake.write_text(f'#!/usr/bin/env bash\necho "$1 $2" >> "{tmp_path}/calls.txt"\nexit {rc}\n')
    fake.chmod(0o755)
    return tmp_path, {**os.environ, "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"}


def _first(script: Path) -> tuple[str, str]:
    """The first job's rule and the first two words after `hera` in its command (the dry run's order of
    independent jobs varies between runs)."""
    m = re.search(r"^job 1 (\w+) .*\nhera (\S+ \S+)", script.read_text(), re.M)
    return m.group(1), m.group(2)


def _run(script, cwd, env, *args):
    return subprocess.run(["bash", str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_runs_every_job_and_records_its_time(prepared, tmp_path):
    script, stats = prepared
    cwd, env = _scratch(tmp_path)
    proc = _run(script, cwd, env)
    n = sum(stats.values())
    assert proc.returncode == 0, proc.stderr
    assert f"all {n} jobs done" in proc.stdout
    calls = (cwd / "calls.txt").read_text().splitlines()
    assert len(calls) == n and calls[0] == _first(script)[1] and calls[-1].startswith("report ")
    times = (cwd / "results/ci/prepared-run.tsv").read_text().splitlines()
    assert times[0] == "job\trule\tseconds\trc" and len(times) == n + 1 and all(t.endswith("\t0") for t in times[1:])
    assert (cwd / "logs/ci/models").is_dir() and (cwd / "figures/ci").is_dir()


def test_a_failing_job_stops_the_script_naming_it(prepared, tmp_path):
    script, _ = prepared
    cwd, env = _scratch(tmp_path, rc=1)
    proc = _run(script, cwd, env)
    assert proc.returncode == 1 and f"job 1 ({_first(script)[0]}) failed with rc 1" in proc.stderr
    assert len((cwd / "calls.txt").read_text().splitlines()) == 1  # nothing after it ran
    assert (cwd / "results/ci/prepared-run.tsv").read_text().splitlines()[1].endswith("\t1")


def test_a_deadline_leaves_later_jobs_unstarted(prepared, tmp_path):
    script, _ = prepared
    cwd, env = _scratch(tmp_path)
    proc = _run(script, cwd, env, "0")
    assert proc.returncode == 3
    assert f"deadline 0 s reached: job 1 ({_first(script)[0]}) and later not started" in proc.stdout
    assert not (cwd / "calls.txt").exists()


def test_outside_the_repository_or_without_hera_it_says_so(prepared, tmp_path):
    script, _ = prepared
    proc = _run(script, tmp_path, {**os.environ})
    assert proc.returncode == 2 and "run me in the repository's root" in proc.stderr
    (tmp_path / "Snakefile").write_text("")
    (tmp_path / "hera").mkdir()
    proc = _run(script, tmp_path, {**os.environ, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and "no 'hera' on PATH" in proc.stderr


def test_a_failing_dry_run_is_an_error(tmp_path):
    proc = _prepare(tmp_path / "x.sh", "--config", "serch={}")
    assert proc.returncode == 2 and "the dry run failed" in proc.stderr and not (tmp_path / "x.sh").exists()
