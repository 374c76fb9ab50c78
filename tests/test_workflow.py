"""The Snakemake pipeline: DAG builds for every config and the SLURM profile, lint is clean, bad config
keys fail at start naming the key. Dry runs only (no measurement)."""

import os
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


def _job_stats(text: str) -> dict[str, int]:
    """The first 'Job stats' table of a Snakemake run: rule -> job count."""
    lines = text.split("Job stats:", 1)[1].splitlines()[3:]
    out = {}
    for ln in lines:
        parts = ln.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        out[parts[0]] = int(parts[1])
    return out


def test_multicore_quick_dry_run_on_a_fake_16_core_machine(tmp_path):
    """The multicore-quick config planned for a 16-core, one-socket, SMT, resctrl machine described in a file:
    every stage's jobs, and the cores the plan gives them (one thread per core, one harness core, one L3)."""
    import json

    from fakes import resctrl, sysfs
    from hera import config as cfgmod, machine, topology
    from hera.profile.colocation import plan_splits
    from hera.report.catalog import FIGURE_IDS

    sys_root = sysfs(tmp_path / "sys", sockets=1, cores=16, smt=2, llc_ways=11)
    desc = machine.describe_uncached(sys_root=sys_root, proc_root=tmp_path,
                                     resctrl_root=resctrl(tmp_path / "resctrl"), check_perf=False)
    assert desc["logical_cpus"] == 32 and desc["resctrl"]["available"] and desc["resctrl"]["verified"]
    path = tmp_path / "machine16.json"
    path.write_text(json.dumps(desc))
    proc = _run("-n", "-p", "--forceall", "--configfile", "workflow/config/multicore-quick.yaml", "--config",
                f"machine={path}", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    cfg = cfgmod.load(ROOT / "workflow/config/multicore-quick.yaml")
    models = len(cfg["models"])
    pairs = models * (models - 1) // 2
    stats = _job_stats(out)
    assert stats == {**stats, "core_plan": 1, "machine_description": 1, "t1_table": 1, "built_model": models,
                     "sample_library": models, "latency_profile": models, "scalability_profile": models,
                     "interference_calibration": 1, "interference_profile": models,
                     "colocation_profile": pairs, "policy_emu": 1, "servers_needed": 1,
                     "latency_vs_load": 1, "load_change": 1, "t2_table": 1, "figure": len(FIGURE_IDS),
                     "service_profile": models, "pair_predictions": 1}
    # the cores: planned at parse time from the description, checked again when the job runs
    assert "hera topology --config results/default/config.json --expect-workers 1-15 --expect-harness 0,16" in out
    plan = topology.study_plan(dict(cfg, machine=str(path)))
    doc = plan.to_dict()
    assert doc["t1_cpu"] == 1 and doc["scalability"]["15"] == list(range(1, 16)) and len(doc["scalability"]) == 15
    assert doc["idle_cpus"] == list(range(17, 32))  # SMT siblings of the worker cores stay idle
    assert doc["memory"] == {**doc["memory"], "worker": [1], "antagonists": list(range(2, 16)), "probe": [15],
                             "pressure_workers": list(range(1, 15))}
    # the config measures core splits only (colocation.llc_splits: false, to fit its time budget) ...
    splits, partitioning = plan_splits(list(plan.worker_cpus), desc["resctrl"], cfg["colocation"]["llc_splits"])
    assert partitioning == "unavailable" and len(splits) == 14 and all(s.ways_a is None for s in splits)
    # ... while the verified resctrl of this machine would give way splits beside the shared LLC
    splits, partitioning = plan_splits(list(plan.worker_cpus), desc["resctrl"], True)
    assert partitioning == "available" and len(splits) == 14 * 4  # shared LLC + 3 way splits per core split
    assert all(s.ways_a is None or s.ways_a + s.ways_b == 10 for s in splits)  # one way kept for the harness
    # a machine that does not give the planned cores refuses to run the study (here: a 2-core one)
    small = tmp_path / "machine2.json"
    small.write_text(json.dumps(machine.describe_uncached(sys_root=sysfs(tmp_path / "sys2", sockets=1, cores=2),
                                                         proc_root=tmp_path, check_perf=False)))
    cfg_file = tmp_path / "config.json"
    cfg_file.write_text(json.dumps(cfg))
    bad = subprocess.run([sys.executable, "-m", "hera.cli", "topology", "--config", str(cfg_file),
                          "--expect-workers", "1-15", "--expect-harness", "0,16"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, env={**os.environ, "HERA_MACHINE": str(small)})
    assert bad.returncode == 2 and "not 1-15 as the workflow planned" in bad.stderr
    assert bad.stderr.count("\n") == 1


def test_a_neighbour_reference_outside_the_study_fails_at_start_naming_it():
    """ci's three models do not include ncf: the default references cannot be its neighbours."""
    proc = _run("-n", "--configfile", "workflow/config/ci.yaml", "--config",
                "interference={'neighbour': {'enabled': true, 'reference': ['ncf', 'dlrm_rmc1']}}")
    assert proc.returncode != 0
    assert "interference.neighbour.reference: 'ncf' is not a model of this study" in proc.stdout + proc.stderr


def test_the_neighbour_overlay_adds_one_profile_per_model():
    proc = _run("-n", "--forceall", "--configfile", "workflow/config/default-neighbour.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    jobs = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("neighbour_profile")]
    assert jobs and jobs[0].split()[-1] == "8", jobs


def test_the_node_profile_overlay_feeds_every_prediction_and_bad_settings_fail_at_start():
    proc = _run("-n", "--forceall", "-p", "--configfile", "workflow/config/default-node-profile.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    fed = [ln for ln in proc.stdout.splitlines() if "--neighbour workflow/machines/2-core-vm.node-profile.csv" in ln]
    assert len(fed) == 1 + 3 * 15 + 1, len(fed)  # the stage's prediction, each visit's control variates, the refresh
    proc = _run("-n", "--configfile", "workflow/config/default-node-profile.yaml", "--config",
                "colocation={'node_profile': 'workflow/machines/nowhere.csv'}")
    assert proc.returncode != 0
    assert "config key colocation.node_profile: workflow/machines/nowhere.csv does not exist" in proc.stdout + proc.stderr
    proc = _run("-n", "--configfile", "workflow/config/default-neighbour.yaml", "--config",
                "colocation={'node_profile': 'workflow/machines/2-core-vm.node-profile.csv'}")
    assert proc.returncode != 0 and "set one of them" in proc.stdout + proc.stderr


def test_the_default_node_calibration_measures_its_pairs_first_and_bad_settings_fail_at_start():
    proc = _run("-n", "--forceall", "-p", "--configfile", "workflow/config/default.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    against = [ln for ln in lines if "--predicted results/default/colocation/calibration/predicted.csv" in ln]
    assert len(against) == 3 + 1 and not any("--neighbour" in ln for ln in against)  # 3 pairs + the calibration
    fed = [ln for ln in lines if "--neighbour results/default/colocation/node_calibration.csv" in ln]
    assert len(fed) == 1 + 3 * 15 + 1, len(fed)  # the stage's prediction, each visit of a scored pair, the refresh
    assert any("--models dlrm_rmc1,dlrm_rmc2,ncf,mtwnd,dien " in ln for ln in lines)
    for setting, message in (
            ("colocation={'node_calibration': ['ncf__din']}",
             "config key colocation.node_calibration: node calibration pair 'ncf__din' is a scored pair"),
            ("colocation={'node_calibration': ['ncf__mtwnd'], 'rays': [0.5]}", "reads the rays 0.75, 0.5 and 0.25"),
            ("colocation={'node_profile': 'workflow/machines/2-core-vm.node-profile.csv'}", "set one of them")):
        proc = _run("-n", "--configfile", "workflow/config/default.yaml", "--config", setting)
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr, (setting, proc.stderr[-1500:])


def test_default_visits_every_pair_three_times_in_passes_and_bad_visits_fail_at_start():
    proc = _run("-n", "--forceall", "--configfile", "workflow/config/default.yaml")
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout + proc.stderr
    stats = _job_stats(out)
    assert (stats["colocation_visit"], stats["colocation_profile"]) == (45, 15)
    # pass 2 of a pair waits for pass 1 of every pair (not only its own), pass 1 for none
    blocks = out.split("rule colocation_visit:")[1:]
    second = [b for b in blocks if "wildcards: visit=2, pair=ncf__din" in b][0]
    inputs = second.split("output:")[0]
    assert inputs.count("results/default/colocation/visits/1/") == 15 and "visits/2/" not in inputs
    first = [b for b in blocks if "wildcards: visit=1, pair=ncf__din" in b][0]
    assert "colocation/visits/" not in first.split("output:")[0]
    pooled = [b for b in out.split("rule colocation_profile:")[1:] if "pair=ncf__din" in b][0]
    assert all(f"results/default/colocation/visits/{k}/ncf__din.csv" in pooled for k in (1, 2, 3))
    proc = _run("-n", "--configfile", "workflow/config/default.yaml", "--config", "colocation={'visits': 2}")
    assert proc.returncode != 0
    assert "config key colocation.visits: 2 visits cannot split confirm.repeats = 3" in proc.stdout + proc.stderr
