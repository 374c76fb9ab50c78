"""The cost estimator (`hera plan`): machine descriptions -> core plans, per-stage estimates that move the right way
with the config, the targets of the shipped configs, benchmark comparison, and one-line errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hera import config as cfgmod
from hera.cli import main
from hera.errors import ConfigError, HeraError, ResourceError
from hera.paths import repo_root
from hera.plan import Calibration, ModelCost, PlanError, estimate
from hera.plan.compare import measured_stages, stage_of
from hera.plan.inputs import check_description, load_machine, machine_info, model_costs
from hera.plan.rates import ModelRates, query_mix
from hera.plan.stages import STAGES, confirmation_s
from hera.topology import worker_counts

ROOT = repo_root()
MACHINES = ROOT / "workflow" / "machines"
M16 = MACHINES / "16-core-1-socket-smt-resctrl.json"
M64 = MACHINES / "64-core-2-socket-smt-resctrl.json"
VM = MACHINES / "2-core-vm.json"

#: Synthetic model costs (no torch needed): one memory-leaning, one compute-leaning.
COSTS = {
    "dlrm_rmc1": ModelCost("dlrm_rmc1", "dlrm", 2.0e5, 8.2e4, 204_800_000, 640, 128),
    "dlrm_rmc3": ModelCost("dlrm_rmc3", "dlrm", 6.4e6, 2.6e4, 128_000_000, 200, 2560),
}


def _config(name: str = "ci", **over) -> dict:
    cfg = cfgmod.load(ROOT / "workflow" / "config" / f"{name}.yaml",
                      [f"{k.replace('__', '.')}={json.dumps(v)}" for k, v in over.items()])
    return cfg


def _machine(path: Path, cfg: dict):
    desc, source = load_machine(path)
    return machine_info(desc, source, cfg)


def _small(cfg: dict) -> dict:
    return dict(cfg, models=list(COSTS), colocation=dict(cfg["colocation"], models=None))


# ------------------------------------------------------------------------------------------------ machines
def test_shipped_descriptions_give_the_real_core_plans():
    cfg = _config()
    m16, m64, vm = (_machine(p, cfg) for p in (M16, M64, VM))
    assert (m16.n_workers, len(m16.harness_cpus), m16.smt, m16.llc_partitioning) == (15, 2, 2, True)
    assert (m64.n_workers, m64.worker_sockets, m64.sockets, m64.llc_partitioning) == (31, 1, 2, True)
    assert (vm.n_workers, vm.harness_cpus, vm.llc_partitioning) == (2, (), False)
    assert m64.resctrl["l3_ways"] == 12 and m16.memory_bytes == 128 * 2**30
    # one thread per physical core: no SMT sibling among the worker CPUs
    assert max(m16.worker_cpus) < 16 and 16 in m16.harness_cpus


def test_topology_sockets_all_spans_both_sockets_of_the_64_core_machine():
    m = _machine(M64, _config(topology={"sockets": "all", "harness_cores": "auto"}))
    assert m.worker_sockets == 2 and m.n_workers == 63


@pytest.mark.parametrize("field", ["topology", "resctrl", "sockets", "memory_bytes", "physical_cores"])
def test_a_description_without_a_field_is_a_one_line_error_naming_it(tmp_path, field):
    desc = json.loads(M16.read_text())
    del desc[field]
    path = tmp_path / "m.json"
    path.write_text(json.dumps(desc))
    with pytest.raises(ConfigError, match=repr(field)) as exc:
        load_machine(path)
    assert "\n" not in str(exc.value)


def test_topology_entries_and_resctrl_fields_are_checked():
    desc = json.loads(M16.read_text())
    del desc["topology"][3]["siblings"]
    with pytest.raises(PlanError, match="topology entry 3 lacks field 'siblings'"):
        check_description(desc, "m.json")
    desc = json.loads(M16.read_text())
    del desc["resctrl"]["l3_ways"]
    with pytest.raises(PlanError, match="resctrl.l3_ways"):
        check_description(desc, "m.json")
    desc = json.loads(M16.read_text())
    desc["sockets"] = "one"
    with pytest.raises(PlanError, match="field 'sockets' must be a JSON integer"):
        check_description(desc, "m.json")


def test_cli_reports_a_missing_field_in_one_line(tmp_path, capsys):
    desc = json.loads(VM.read_text())
    del desc["resctrl"]
    path = tmp_path / "vm.json"
    path.write_text(json.dumps(desc))
    rc = main(["plan", "--machine", str(path), "--configfile", str(ROOT / "workflow/config/ci.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and "lacks field 'resctrl'" in err and err.count("\n") == 1


# ------------------------------------------------------------------------------------------------ config
def test_a_config_key_out_of_range_is_a_one_line_error_naming_it(capsys):
    rc = main(["plan", "--machine", str(VM), "--configfile", str(ROOT / "workflow/config/ci.yaml"),
               "--set", "confirm.repeats=2"])
    err = capsys.readouterr().err
    assert rc == 2 and "confirm.repeats" in err and err.count("\n") == 1


def test_worker_counts_that_do_not_fit_the_plan_are_refused_naming_the_key():
    cfg = _small(_config(profile={"workers": [1, 4, 16]}))
    with pytest.raises(ConfigError, match="profile.workers: 16 worker"):
        estimate(cfg, _machine(M16, cfg), COSTS)


def test_pressure_worker_counts_that_do_not_fit_are_refused_naming_the_key():
    cfg = _small(_config())
    cfg["interference"] = {"pressure_workers": [1, 15]}  # 14 cores beside the reporter
    with pytest.raises(PlanError, match="interference.pressure_workers: 15"):
        estimate(cfg, _machine(M16, cfg), COSTS)


def test_worker_counts_setting():
    assert worker_counts(None, 3) == (1, 2, 3)
    assert worker_counts(5, 15) == (1, 2, 4, 8, 15)
    assert worker_counts(3, 15) == (1, 4, 15)
    assert worker_counts(6, 3) == (1, 2, 3)
    assert worker_counts([8, 1, 4], 15) == (1, 4, 8)
    with pytest.raises(ConfigError, match="profile.workers"):
        worker_counts(1, 15)
    with pytest.raises(ConfigError, match="profile.workers: 0"):
        worker_counts([0, 2], 15)


def test_a_model_too_big_for_the_described_memory_is_refused(tmp_path):
    desc = json.loads(VM.read_text())
    desc["memory_bytes"] = 2**28  # 256 MiB
    cfg = _small(_config())
    with pytest.raises(ResourceError, match="model dlrm_rmc1"):
        estimate(cfg, machine_info(desc, "small.json", cfg), COSTS)


def test_one_worker_core_cannot_co_locate():
    cfg = _small(_config(cores=[0]))
    with pytest.raises(PlanError, match="co-location needs at least 2 worker cores"):
        estimate(cfg, _machine(VM, cfg), COSTS)


# ------------------------------------------------------------------------------------------------ the model
def test_service_times_latency_and_capacity_move_the_right_way():
    cfg = _config("default")
    m = _machine(M16, cfg)
    mem, comp = (ModelRates(COSTS[k], query_mix(cfg), m, Calibration(), cfg["sla"]) for k in ("dlrm_rmc1", "dlrm_rmc3"))
    assert comp.sub_batch_ms(64) > comp.sub_batch_ms(8) > 0
    assert comp.sub_batch_ms(64, served=False) != comp.sub_batch_ms(64)
    assert comp.light_latency_ms(700, 1) > comp.light_latency_ms(700, 4) > comp.light_latency_ms(700, 15)
    assert comp.capacity_qps(15) == pytest.approx(15 * comp.capacity_qps(1), rel=0.1)  # gathers hardly matter
    # the memory-leaning model shares the socket's gather bandwidth: it scales less than linearly
    assert mem.capacity_qps(15) < 0.7 * 15 * mem.capacity_qps(1)
    slow = machine_info({**json.loads(M16.read_text()), "bandwidth": {"copy_gbps_1thread": 5.0}}, "slow", cfg)
    assert ModelRates(COSTS["dlrm_rmc1"], query_mix(cfg), slow, Calibration(), cfg["sla"]).capacity_qps(1) < mem.capacity_qps(1)


def test_a_looser_sla_lets_a_model_run_nearer_its_capacity():
    cfg = _config("default")
    m = _machine(M16, cfg)
    tight, loose = (ModelRates(COSTS["dlrm_rmc3"], query_mix(cfg), m, Calibration(), {**cfg["sla"], "multiplier": k})
                    for k in (3, 6))
    assert tight.qps_star(4) < loose.qps_star(4) < loose.capacity_qps(4)


def test_confirmation_time_follows_repeats_queries_and_rate():
    cfg = _config("default")
    base = confirmation_s(cfg, [50.0], Calibration())
    assert confirmation_s(_config("default", confirm__repeats=6), [50.0], Calibration()) == pytest.approx(2 * base)
    assert confirmation_s(cfg, [5.0], Calibration()) > 5 * base  # 40 queries at 5 q/s: 8 s per chunk
    # the busiest stream paces a joint trial (hera.loadgen.confirm)
    assert confirmation_s(cfg, [50.0, 5.0], Calibration()) == confirmation_s(cfg, [50.0], Calibration())
    assert confirmation_s(cfg, [1e5], Calibration()) == pytest.approx(confirmation_s(cfg, [1e6], Calibration()), rel=1e-3)


def test_colocation_repeats_lengthen_only_the_rays():
    """``colocation.repeats`` is the rays' repeat count (F4 grows by about its ratio to confirm.repeats); F2 and
    the other stages keep ``confirm.repeats``."""
    cfg = _small(_config(colocation__visits=1))
    base = {s.stage: s.seconds for s in estimate(cfg, _machine(VM, cfg), COSTS).stages}
    more = dict(cfg, colocation=dict(cfg["colocation"], repeats=6))
    longer = {s.stage: s.seconds for s in estimate(more, _machine(VM, more), COSTS).stages}
    assert longer["colocation"] > 1.4 * base["colocation"]  # the rays double; starts, pooling, refresh do not
    assert all(longer[k] == pytest.approx(v) for k, v in base.items() if k != "colocation")


def test_visits_add_a_sitting_per_pair_and_keep_the_repeats():
    """``colocation.visits``: each pair is measured in that many sittings of repeats / visits each (one node start
    and anchor more per sitting, the trials the same) and pooled by one more job; the other stages unchanged."""
    one = _small(_config(colocation__visits=1, colocation__anchor=True))
    three = dict(one, colocation=dict(one["colocation"], visits=3))
    a = {s.stage: s for s in estimate(one, _machine(VM, one), COSTS).stages}
    b = {s.stage: s for s in estimate(three, _machine(VM, three), COSTS).stages}
    # one pair: 1 (3) sitting(s) + the pooling + the table with the refreshed prediction
    assert (a["colocation"].jobs, b["colocation"].jobs) == (3, 5)
    assert a["colocation"].seconds < b["colocation"].seconds < 3 * a["colocation"].seconds
    assert "3 visits of 1 repeat(s)" in b["colocation"].detail and "visits" not in a["colocation"].detail
    assert all(b[k].seconds == pytest.approx(v.seconds) for k, v in a.items() if k not in ("colocation", "scheduling"))


def test_the_busy_core_lengthens_only_the_interference_profiles():
    """``interference.busy_core`` adds one kind of sensitivity points per model (no calibration, no pressure)."""
    cfg = _small(_config())
    base = {s.stage: s for s in estimate(cfg, _machine(VM, cfg), COSTS).stages}
    busy = _small(_config(interference__busy_core=True))
    more = {s.stage: s for s in estimate(busy, _machine(VM, busy), COSTS).stages}
    assert more["interference"].seconds > base["interference"].seconds
    assert "sensitivity 7 points" in more["interference"].detail and "sensitivity 5 points" in base[
        "interference"].detail  # ci: intensity 1 only; baselines bracket each kind
    assert all(more[k].seconds == pytest.approx(v.seconds) for k, v in base.items() if k != "interference")


def test_estimate_has_every_stage_and_adds_up():
    cfg = _small(_config())
    plan = estimate(cfg, _machine(VM, cfg), COSTS)
    assert [s.stage for s in plan.stages] == [s for s, _ in STAGES]
    assert plan.total_s == pytest.approx(sum(s.seconds for s in plan.stages))
    assert all(s.seconds >= 0 for s in plan.stages) and plan.pairs == 1 and plan.splits_per_pair == 1
    doc = plan.to_dict()
    assert doc["total_s"] == pytest.approx(plan.total_s, abs=0.1) and set(doc["stages"]) == {s for s, _ in STAGES}
    assert estimate(cfg, _machine(VM, cfg), COSTS, venv=False).total_s == pytest.approx(
        plan.total_s - Calibration().venv_s)


def test_pair_predictions_count_every_pair_of_the_study_not_only_the_measured_ones():
    costs = dict(COSTS, ncf=ModelCost("ncf", "ncf", 3.0e5, 1.0e3, 4_608_000, 4, 64))
    cfg = dict(_config(), models=list(costs), colocation=dict(_config()["colocation"], models=list(COSTS)))
    plan = estimate(cfg, _machine(VM, cfg), costs)
    predicted = next(s for s in plan.stages if s.stage == "pair_predictions")
    assert plan.pairs == 1 and "3 pairs" in predicted.detail  # measured: the 2 colocation models; predicted: all 3
    assert predicted.seconds > next(s for s in estimate(_small(cfg), _machine(VM, cfg), COSTS).stages
                                    if s.stage == "pair_predictions").seconds


def test_more_cores_resctrl_and_settings_cost_what_they_should():
    cfg = _small(_config())
    vm, m16 = _machine(VM, cfg), _machine(M16, cfg)
    p_vm, p16 = estimate(cfg, vm, COSTS), estimate(cfg, m16, COSTS)
    # best and 2 neighbours, the shared LLC of the best cores, the even split (shared LLC)
    assert p16.worker_counts == tuple(range(1, 16)) and p16.splits_per_pair == 5
    no_llc = _small(_config(colocation={"llc_splits": False}))
    assert estimate(no_llc, _machine(M16, no_llc), COSTS).splits_per_pair == 4
    best = _small(_config(colocation={"llc_splits": False, "neighbours": False}))
    assert estimate(best, _machine(M16, best), COSTS).splits_per_pair == 2

    def stage(p, name):
        return next(s.seconds for s in p.stages if s.stage == name)

    assert stage(p16, "service") > stage(p_vm, "service")  # 15 worker counts, not 2
    few = _small(_config(profile={"workers": 3}))
    assert estimate(few, _machine(M16, few), COSTS).worker_counts == (1, 4, 15)
    assert stage(estimate(few, _machine(M16, few), COSTS), "scalability") < stage(p16, "scalability")
    longer = _small(_config(serving={"trial_s": 10.0}))
    assert stage(estimate(longer, vm, COSTS), "serving") > stage(p_vm, "serving")
    # the operating-point probe before each confirmation costs its chunks; none without it
    no_probe = _small(_config(service__operating_chunks=0))
    more = _small(_config(service__operating_chunks=3))
    assert stage(estimate(no_probe, vm, COSTS), "scalability") < stage(p_vm, "scalability") < stage(
        estimate(more, vm, COSTS), "scalability")
    # ... and the probe after the trials (service.operating_after, an option) its chunks and one more model
    after = _small(_config(service__operating_after=1))
    assert stage(estimate(after, vm, COSTS), "scalability") > stage(p_vm, "scalability")
    # model.service: refresh re-measures each worker count's profile before its probe (the default, stage, does not)
    refresh = _small(_config(model__service="refresh"))
    assert stage(estimate(refresh, vm, COSTS), "scalability") > stage(p_vm, "scalability")
    # a point confirmed 0 is measured again, whole (confirm.remeasure_zero): its expected share of every point
    once = _small(_config(confirm__remeasure_zero=False))
    again = stage(p_vm, "scalability") - stage(estimate(once, vm, COSTS), "scalability")
    assert again > 0
    twice = estimate(cfg, vm, COSTS, Calibration(remeasure_share=0.04))
    assert stage(twice, "scalability") - stage(estimate(once, vm, COSTS), "scalability") == pytest.approx(2 * again)


# ------------------------------------------------------------------------------------------------ targets
def _plan(config: str, machine: Path, venv: bool = True):
    cfg = cfgmod.load(ROOT / "workflow" / "config" / f"{config}.yaml")
    models = list(dict.fromkeys(list(cfg["models"]) + list(cfg["colocation"].get("models") or [])))
    return estimate(cfg, _machine(machine, cfg), model_costs(models, cfg["scale"]), venv=venv)


@pytest.mark.slow  # builds the eight TorchRec modules on the meta device
def test_paper_on_the_16_core_machine_within_6_hours():
    plan = _plan("paper", M16)
    assert plan.total_s <= 6 * 3600
    assert plan.worker_counts == (1, 2, 4, 8, 15) and plan.pairs == 6


@pytest.mark.slow
def test_multicore_quick_on_the_16_core_machine_within_10_minutes():
    plan = _plan("multicore-quick", M16, venv=False)
    assert plan.worker_counts == (1, 4, 15) and plan.pairs == 3 and plan.splits_per_pair == 1
    assert plan.total_s <= 600
    assert _plan("multicore-quick", M16, venv=True).total_s <= 600  # even with the environment made first


# ------------------------------------------------------------------------------------------------ the CLI
def test_cli_prints_every_stage_and_json_last(capsys, monkeypatch):
    import hera.plan.inputs as inputs

    monkeypatch.setattr(inputs, "model_costs", lambda models, scale: {m: COSTS[m] for m in models})
    rc = main(["plan", "--machine", str(M16), "--configfile", str(ROOT / "workflow/config/ci.yaml"),
               "--set", "models=[dlrm_rmc1, dlrm_rmc3]", "--set", "colocation.models=null"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    doc = json.loads(out[-1])
    assert doc["total_s"] > 0 and set(doc["stages"]) == {s for s, _ in STAGES}
    assert doc["worker_cores"] == 15 and doc["pairs"] == 1
    assert any(line.startswith("colocation") for line in out) and any(line.startswith("total") for line in out)


def test_cli_takes_the_machine_from_the_environment_like_the_workflow(capsys, monkeypatch):
    import hera.plan.inputs as inputs

    monkeypatch.setattr(inputs, "model_costs", lambda models, scale: {m: COSTS[m] for m in models})
    monkeypatch.setenv("HERA_MACHINE", str(M64))
    rc = main(["plan", "--configfile", str(ROOT / "workflow/config/ci.yaml"),
               "--set", "models=[dlrm_rmc1, dlrm_rmc3]", "--set", "colocation.models=null"])
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and doc["machine"] == str(M64) and doc["worker_cores"] == 31


def test_cli_sets_measured_stage_times_beside_the_estimate(tmp_path, capsys, monkeypatch):
    import hera.plan.inputs as inputs

    monkeypatch.setattr(inputs, "model_costs", lambda models, scale: {m: COSTS[m] for m in models})
    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    for rel, s in (("profile/service/dlrm_rmc1.tsv", 12.0), ("profile/service/dlrm_rmc3.tsv", 20.0),
                   ("models/dlrm_rmc1.tsv", 5.0), ("colocation/dlrm_rmc1__dlrm_rmc3.tsv", 100.0),
                   ("colocation/predicted.tsv", 3.0), ("tables/T1.tsv", 9.0)):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(head + f"{s}\t0:00:{int(s):02d}\t1\t1\t1\t1\t0\t0\t50\t1\n")
    rc = main(["plan", "--machine", str(VM), "--configfile", str(ROOT / "workflow/config/ci.yaml"),
               "--set", "models=[dlrm_rmc1, dlrm_rmc3]", "--set", "colocation.models=null",
               "--benchmarks", str(tmp_path)])
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0
    assert doc["measured_s"] == {"service": 32.0, "models": 5.0, "colocation": 100.0, "pair_predictions": 3.0,
                                 "t1": 9.0}
    assert doc["measured_jobs"]["service"] == 2


def test_calibration_constants_can_be_overridden_and_bad_ones_are_named(capsys):
    cal = Calibration().with_changes({"cli_s": "8", "trials_per_repeat": "4"})
    assert (cal.cli_s, cal.trials_per_repeat) == (8.0, 4.0)
    cfg = _config("default")
    assert confirmation_s(cfg, [10.0], cal) > confirmation_s(cfg, [10.0], Calibration())
    for bad, why in (({"nope": "1"}, "nope: not a numeric calibration constant"), ({"cli_s": "x"}, "not a number"),
                     ({"cli_s": "-1"}, "must be >= 0"), ({"overhead_ms": "1"}, "overhead_ms: not a numeric")):
        with pytest.raises(ConfigError, match=why):
            Calibration().with_changes(bad)
    rc = main(["plan", "--machine", str(VM), "--configfile", str(ROOT / "workflow/config/ci.yaml"),
               "--calibrate", "cli_s"])
    err = capsys.readouterr().err
    assert rc == 2 and "--calibrate 'cli_s' is not of the form NAME=VALUE" in err and err.count("\n") == 1


def test_a_ray_runs_both_tenants_near_its_boundary():
    from hera.plan.stages import ray_rates

    cal = Calibration(colocation_slowdown=1.0)
    assert ray_rates(0.5, 100.0, 40.0, cal) == pytest.approx([100.0, 40.0])  # both at their alone QPS*
    assert ray_rates(0.25, 100.0, 40.0, cal) == pytest.approx([100 / 3, 40.0])  # b reaches its QPS* first


def test_benchmark_paths_map_to_stages(tmp_path):
    assert stage_of(Path("profile/interference/wnd.tsv")) == "interference"
    assert stage_of(Path("profile/memory/wnd.tsv")) == "interference"
    assert stage_of(Path("profile/interference_calibration.tsv")) == "interference"
    assert stage_of(Path("profile/scalability/wnd.tsv")) == "scalability"
    assert stage_of(Path("serving/load_change.tsv")) == "load_change"
    assert stage_of(Path("datasets/wnd.tsv")) == "models"
    assert stage_of(Path("tables/T2.tsv")) is None
    (tmp_path / "tables").mkdir()
    (tmp_path / "tables" / "T1.tsv").write_text("h:m:s\n0:00:01\n")
    with pytest.raises(PlanError, match="no numeric 's' column"):
        measured_stages(tmp_path, 2)
    with pytest.raises(HeraError, match="does not exist"):
        measured_stages(tmp_path / "nope", 2)


def test_node_calibration_pairs_are_measured_and_predicted_as_the_studys_are():
    """``colocation.node_calibration``: its pairs cost F4 time like the study's, one more prediction job comes
    first, and a pair that is scored (both models in colocation.models) is refused naming the key."""
    costs = dict(COSTS, ncf=ModelCost("ncf", "ncf", 3.0e5, 1.0e3, 4_608_000, 4, 64))
    cfg = dict(_config(), models=list(costs), colocation=dict(_config()["colocation"], models=list(COSTS),
                                                              rays=[0.5, 0.75, 0.25]))
    base = {s.stage: s for s in estimate(cfg, _machine(VM, cfg), costs).stages}
    cal = dict(cfg, colocation=dict(cfg["colocation"], node_calibration=["ncf__dlrm_rmc1"]))
    more = {s.stage: s for s in estimate(cal, _machine(VM, cal), costs).stages}
    assert more["colocation"].seconds > 1.5 * base["colocation"].seconds  # 1 study pair + 1 calibration pair
    assert "(+ 1 node calibration pairs)" in more["colocation"].detail
    assert more["pair_predictions"].jobs == 2 and more["pair_predictions"].seconds > base["pair_predictions"].seconds
    assert all(more[k].seconds == pytest.approx(v.seconds) for k, v in base.items()
               if k not in ("colocation", "pair_predictions", "scheduling"))
    bad = dict(cfg, colocation=dict(cfg["colocation"], node_calibration=["dlrm_rmc3__dlrm_rmc1"]))
    with pytest.raises(PlanError, match="colocation.node_calibration: .*is a scored pair"):
        estimate(bad, _machine(VM, bad), costs)
