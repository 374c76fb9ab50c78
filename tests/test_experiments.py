"""Serving experiments (F6, F7): plans → nodes, tables, manager loop over the control API, failure paths.

Nodes use the server's ``synthetic`` runner (a tiny in-memory model), so no built model is needed; trials are
a fraction of a second and capacities a few tens of QPS.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("hera.workload.sizes")  # the load generator draws query sizes and arrivals from it

from hera import config as cfgmod  # noqa: E402
from hera.cli import main  # noqa: E402
from hera.errors import ConfigError, HeraError, ResourceError  # noqa: E402
from hera.experiments import latency_vs_load, load_change  # noqa: E402
from hera.experiments import plans as plansmod  # noqa: E402
from hera.experiments.serving import tenant_plans  # noqa: E402
from hera.harness import NodeOptions  # noqa: E402
from hera.server.control import TenantSnapshot  # noqa: E402

A, B = "dlrm_rmc1", "dlrm_rmc3"
CPUS = sorted(os.sched_getaffinity(0))
two_cpus = pytest.mark.skipif(len(CPUS) < 2, reason="needs 2 usable CPUs")
SYN = NodeOptions(runner="synthetic")


def _tenant(model, cores, cap, ways=None):
    return {"model": model, "cores": cores, "llc_ways": ways, "capacity_qps": cap}


def plans_doc(pair_cores=(1, 1)):
    return {
        "node": {"cores": sum(pair_cores), "llc_ways": None}, "models": [A, B],
        "plans": {
            "single_tenant": [{"tenants": [_tenant(A, 2, 80.0)], "emu": 1.0},
                              {"tenants": [_tenant(B, 2, 70.0)], "emu": 1.0}],
            "greedy": [{"tenants": [_tenant(A, 2, 80.0)], "emu": 1.0}, {"tenants": [_tenant(B, 2, 70.0)], "emu": 1.0}],
            "hera": [{"tenants": [_tenant(A, pair_cores[0], 50.0), _tenant(B, pair_cores[1], 40.0)], "emu": 1.2}],
            "random": [{"tenants": [_tenant(B, pair_cores[1], 35.0), _tenant(A, pair_cores[0], 45.0)], "emu": 1.1}],
        },
    }


@pytest.fixture()
def study(tmp_path):
    """Config, plans.json, T1, scalability and pairs tables of a 2-core world (all tiny, all crafted)."""
    cfg = {"scale": "ci", "seed": 0, "cores": CPUS[:2], "models": [A, B], "policies": ["single_tenant", "hera"],
           "batch_size": 16, "queries": {"kind": "fixed", "items": 16, "max_items": 32},
           "serving": {"load_fracs": [0.5, 1.0], "trial_s": 0.3},
           "load_change": {"trace": "step", "duration_s": 1.0, "interval_s": 0.25}}
    files = {"config": tmp_path / "study.yaml", "plans": tmp_path / "plans.json", "t1": tmp_path / "T1.csv",
             "scalability": tmp_path / "scalability.csv", "pairs": tmp_path / "pairs.csv"}
    files["config"].write_text(yaml.safe_dump(cfg))
    files["plans"].write_text(json.dumps(plans_doc()))
    pd.DataFrame({"model": [A, B], "sla_ms": [25.0, 30.0], "sla_rule": ["test"] * 2}).to_csv(files["t1"], index=False)
    pd.DataFrame({"model": [A, A, B, B], "workers": [1, 2, 1, 2], "qps_star": [60.0, 80.0, 50.0, 70.0],
                  "sla_ms": [25.0, 25.0, 30.0, 30.0]}).to_csv(files["scalability"], index=False)
    pd.DataFrame({"model_a": [A], "model_b": [B], "cores_a": [1], "cores_b": [1], "ways_a": [None], "ways_b": [None],
                  "qps_star_a": [50.0], "qps_star_b": [40.0]}).to_csv(files["pairs"], index=False)
    return cfgmod.load(files["config"]), files


# ------------------------------------------------------------------------------------------------ plans
def test_plans_choose_reference_pair_and_groups(study):
    _, f = study
    plans = plansmod.load_plans(f["plans"])
    assert plans.node_cores == 2 and set(plans.plans) == {"single_tenant", "greedy", "hera", "random"}
    pair = plansmod.reference_pair(plans)
    assert pair == (A, B)
    hera = plansmod.choose_groups(plans, "hera", pair)
    assert len(hera) == 1 and hera[0].node.group == f"{A}+{B}" and "reference pair" in hera[0].note
    rnd = plansmod.choose_groups(plans, "random", pair)       # same pair, other order and split
    assert rnd[0].node.models == (B, A) and rnd[0].node.tenants[1].capacity_qps == 45.0
    single = plansmod.choose_groups(plans, "single_tenant", pair)
    assert [g.node.group for g in single] == [A, B] and "one model per node" in single[0].note
    greedy = plansmod.choose_groups(plans, "greedy", pair)
    assert [g.node.group for g in greedy] == [A, B] and "co-locates no models" in greedy[0].note
    assert plansmod.assign_cpus(hera[0].node, [4, 5, 6], "x") == [(4,), (5,)]


def test_plans_failure_paths(tmp_path, study):
    _, f = study
    with pytest.raises(plansmod.PlanError, match="does not exist"):
        plansmod.load_plans(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(plansmod.PlanError, match="not valid JSON"):
        plansmod.load_plans(bad)
    bad.write_text(json.dumps({"plans": {"hera": [{"tenants": [_tenant(A, 0, 1.0)]}]}}))
    with pytest.raises(plansmod.PlanError, match="cores must be an integer >= 1"):
        plansmod.load_plans(bad)
    plans = plansmod.load_plans(f["plans"])
    with pytest.raises(plansmod.PlanError, match="no plan for policy 'oracle'"):
        plansmod.check_policies(plans, ["hera", "oracle"])
    with pytest.raises(ResourceError, match="needs 2 cores"):
        plansmod.assign_cpus(plans.plan("hera")[0], [0], "policy 'hera'")


def test_load_change_skips_a_node_with_a_zero_capacity(tmp_path, capsys):
    """A pair measured with no load within its SLA plans a capacity of 0 (at `ci` scale, a tight SLA): F7 takes the
    next co-located node whose tenants all have one, and says so; where none has, the reference pair's node stays
    and a zero capacity is replaced by the tenant's alone QPS* on as many cores (named in the note); with no alone
    QPS* either, a one-line error."""
    c = "wnd"
    doc = {"node": {"cores": 2, "llc_ways": None}, "models": [A, B, c],
           "plans": {"hera": [{"tenants": [_tenant(A, 1, 50.0), _tenant(B, 1, 0.0)], "emu": 0.6}],
                     "random": [{"tenants": [_tenant(B, 1, 30.0), _tenant(c, 1, 20.0)], "emu": 0.9}]}}
    path = tmp_path / "plans.json"
    path.write_text(json.dumps(doc))
    node = load_change.load_change_node(plansmod.load_plans(path))
    assert node.models == (B, c) and min(t.capacity_qps for t in node.tenants) > 0
    assert f"{A}+{B} plans a capacity of 0" in capsys.readouterr().err
    assert load_change.capacities(node, tmp_path / "unread.csv") == ({B: 30.0, c: 20.0}, None)
    doc["plans"]["random"][0]["tenants"][1]["capacity_qps"] = 0.0
    path.write_text(json.dumps(doc))
    node = load_change.load_change_node(plansmod.load_plans(path))
    assert node.models == (A, B)
    scal = tmp_path / "scalability.csv"
    pd.DataFrame({"model": [A, B, B], "workers": [1, 1, 2], "qps_star": [60.0, 45.0, 80.0]}).to_csv(scal, index=False)
    caps, note = load_change.capacities(node, scal)
    assert caps == {A: 50.0, B: 45.0} and f"capacity of 0 for {B}" in note and "alone QPS*" in note
    pd.DataFrame({"model": [A], "workers": [1], "qps_star": [60.0]}).to_csv(scal, index=False)
    with pytest.raises(plansmod.PlanError, match=f"capacity of 0 for {B} .* no positive alone QPS") as e:
        load_change.capacities(node, scal)
    assert "\n" not in str(e.value)


# ------------------------------------------------------------------------------------------- F6 serving
@pytest.mark.slow
@two_cpus
def test_latency_vs_load_command_writes_f6_table(study, tmp_path, capsys):
    cfg, f = study
    out = tmp_path / "serving" / "latency_vs_load.csv"
    rc = main(["experiment", "latency-vs-load", "--config", str(f["config"]), "--plans", str(f["plans"]),
               "--t1", str(f["t1"]), "--out", str(out), "--runner", "synthetic"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["rows"] == 8
    df = pd.read_csv(out)
    for col in ["policy", "group", "tenant", "load_frac", "offered_qps", "achieved_qps", "p95_ms", "sla_ms",
                "n_queries", "p99_ms", "note", "llc_partitioning"]:
        assert col in df.columns
    assert not df.duplicated(["policy", "tenant", "load_frac"]).any()
    assert len(df) == 2 * 2 * 2                                  # 2 policies x 2 tenants x 2 load fractions
    hera = df[df["policy"] == "hera"].set_index(["tenant", "load_frac"])
    assert hera.loc[(A, 1.0), "offered_qps"] == pytest.approx(50.0)
    assert hera.loc[(B, 0.5), "offered_qps"] == pytest.approx(20.0)
    assert set(df.loc[df["policy"] == "single_tenant", "group"]) == {A, B}
    assert (df["n_queries"] > 0).all() and (df["p95_ms"] > 0).all() and (df["achieved_qps"] > 0).all()
    assert set(df["sla_ms"]) == {25.0, 30.0}
    assert (out.parent / "latency_vs_load.csv.meta.json").is_file()


@pytest.mark.slow
@two_cpus
def test_latency_vs_load_serves_an_identical_node_once(study, tmp_path, capsys):
    """greedy deploys single_tenant's nodes (same models, CPUs, ways, capacities): its rows are that measurement,
    named so; hera's co-located node is its own run."""
    cfg, f = study
    df = latency_vs_load.run(dict(cfg, policies=["single_tenant", "greedy", "hera"]), f["plans"], f["t1"], None, SYN)
    err = capsys.readouterr().err
    assert err.count("[latency-vs-load] single_tenant:") == 2 and err.count("[latency-vs-load] hera:") == 1
    assert err.count("its measurement, not run again") == 2 and "[latency-vs-load] greedy: dlrm_rmc1 on cores" not in err
    assert len(df) == 3 * 2 * 2 and not df.duplicated(["policy", "tenant", "load_frac"]).any()
    assert set(df.loc[df["policy"] == "greedy", "measured_with"]) == {"single_tenant"}
    assert set(df.loc[df["policy"] != "greedy", "measured_with"]) == {"single_tenant", "hera"}
    assert (df.loc[df["policy"] == "hera", "measured_with"] == "hera").all()
    key = ["tenant", "load_frac"]
    st = df[df["policy"] == "single_tenant"].set_index(key).sort_index()
    gr = df[df["policy"] == "greedy"].set_index(key).sort_index()
    for col in ["p95_ms", "achieved_qps", "n_queries", "offered_qps"]:
        assert gr[col].tolist() == st[col].tolist()
    assert gr["note"].str.contains("the same node as policy 'single_tenant'").all()
    assert not st["note"].str.contains("the same node").any()


def test_latency_vs_load_serves_nodes_that_differ_separately():
    """The key of a node: a different capacity (hence offered rate) or CPU set is another node."""
    a = plansmod.NodeDeploy((plansmod.TenantDeploy(A, 1, None, 50.0),), 1.0)
    b = plansmod.NodeDeploy((plansmod.TenantDeploy(A, 1, None, 51.0),), 1.0)
    assert latency_vs_load.node_key(a, [(0,)]) == latency_vs_load.node_key(a, [(0,)])
    assert latency_vs_load.node_key(a, [(0,)]) != latency_vs_load.node_key(b, [(0,)])
    assert latency_vs_load.node_key(a, [(0,)]) != latency_vs_load.node_key(a, [(1,)])
    c = plansmod.NodeDeploy((plansmod.TenantDeploy(A, 1, 4, 50.0),), 1.0)
    assert latency_vs_load.node_key(a, [(0,)]) != latency_vs_load.node_key(c, [(0,)])


def test_shared_rows_keep_what_the_run_added_to_a_note():
    node = plansmod.NodeDeploy((plansmod.TenantDeploy(A, 2, None, 0.0),), 1.0)
    row = {"policy": "single_tenant", "note": "alone; dlrm_rmc1 has planned capacity 0: not driven", "p95_ms": 1.0}
    out = latency_vs_load.shared_rows([row], "single_tenant", "alone", "greedy", plansmod.Group(node, "greedy's"))
    assert out[0]["policy"] == "greedy" and out[0]["measured_with"] == "single_tenant" and out[0]["p95_ms"] == 1.0
    assert out[0]["note"] == ("greedy's; dlrm_rmc1 has planned capacity 0: not driven; "
                              "the same node as policy 'single_tenant': its measurement")
    assert row["policy"] == "single_tenant"                      # the measured row itself is not changed


def test_latency_vs_load_refuses_before_serving(study, tmp_path, capsys):
    cfg, f = study
    # a policy of the config without a plan in the file
    with pytest.raises(plansmod.PlanError, match="no plan for policy 'oracle'"):
        latency_vs_load.run(dict(cfg, policies=["hera", "oracle"]), f["plans"], f["t1"], None, SYN)
    # a plan that needs more cores than the study has
    big = tmp_path / "big.json"
    big.write_text(json.dumps(plans_doc(pair_cores=(3, 2))))
    with pytest.raises(ResourceError, match="needs 5 cores"):
        latency_vs_load.run(cfg, big, f["t1"], None, SYN)
    # missing plans file, through the CLI: one line, exit status 2
    rc = main(["experiment", "latency-vs-load", "--config", str(f["config"]), "--plans", str(tmp_path / "x.json"),
               "--t1", str(f["t1"]), "--out", str(tmp_path / "o.csv"), "--runner", "synthetic"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err[-1].startswith("hera: error: plans file") and "does not exist" in err[-1]
    # unknown policy in the config: refused by the config schema
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text(yaml.safe_dump({"scale": "ci", "policies": ["hera", "magic"]}))
    rc = main(["experiment", "latency-vs-load", "--config", str(bad_cfg), "--plans", str(f["plans"]),
               "--t1", str(f["t1"]), "--out", str(tmp_path / "o.csv"), "--runner", "synthetic"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and "magic" in err[-1] and len(err[-1].splitlines()) == 1
    assert not (tmp_path / "o.csv").exists()


# ------------------------------------------------------------------------------------------ F7 serving
def test_rate_formulas_and_notes():
    from hera.loadgen.driver import rate_function
    from hera.loadgen.settings import LoadgenSettings

    f = load_change.rate_formulas("step", 10.0, {"a": 100.0, "b": 50.0})
    fn = {t: rate_function(LoadgenSettings(arrival="time_varying", arrival_formula=x, duration_s=10.0))
          for t, x in f.items()}
    t = np.array([1.0, 9.0])
    assert fn["a"](t) == pytest.approx([60.0, 108.0]) and fn["b"](t) == pytest.approx([30.0, 6.0])
    d = load_change.rate_formulas("diurnal", 8.0, {"a": 100.0, "b": 50.0})
    fd = {k: rate_function(LoadgenSettings(arrival="time_varying", arrival_formula=x, duration_s=8.0))
          for k, x in d.items()}
    assert fd["a"](np.array([2.0]))[0] == pytest.approx(108.0) and fd["b"](np.array([6.0]))[0] == pytest.approx(54.0)
    with pytest.raises(ConfigError, match="unknown load-change trace"):
        load_change.rate_formulas("sawtooth", 1.0, {"a": 1.0, "b": 1.0})
    note = load_change.movability_note(2, "unavailable", False)
    assert "needs >= 3 cores to move a core" in note and "no resctrl -> no LLC moves" in note
    assert load_change.movability_note(4, "available", True) == ""


def test_windows_count_offered_load_and_violations():
    rows = pd.DataFrame({"tenant": ["a"] * 5, "warmup": [False] * 5, "scheduled_s": [0.1, 0.2, 0.6, 0.7, 0.8],
                         "ok": [True, True, True, True, False], "latency_ms": [5.0, 6.0, 50.0, 7.0, math.nan]})
    moves = pd.DataFrame({"t_s": [0.55], "tenant": ["a"], "resource": ["core"], "delta": [1], "reason": ["x"]})
    alloc = load_change.allocation_timeline({"a": (1, None)}, moves)
    tl = load_change.windows(rows, {"a": {"sla_ms": 10.0}}, 1.0, 0.5, {"a": lambda t: np.full(len(t), 4.0)}, alloc)
    assert list(tl["t_s"]) == [0.0, 0.5] and list(tl["offered_qps"]) == [4.0, 6.0]
    assert list(tl["violations"]) == [0, 2] and list(tl["window_violated"]) == [False, True]
    assert list(tl["cores"]) == [1, 2] and list(tl["n_ok"]) == [2, 2]


class FakeNode:
    """A :class:`hera.server.control.NodeControl` like the server's node: stats(window_s), resize, set_llc_ways."""

    def __init__(self, cores, p95_ms, sla_ms):
        self.cores, self.p95_ms, self.sla_ms, self.calls, self.windows = dict(cores), dict(p95_ms), sla_ms, [], []

    def stats(self, window_s=None):
        self.windows.append(window_s)
        return {t: TenantSnapshot(tenant=t, latency_ms_p95=self.p95_ms[t], sla_ms=self.sla_ms[t], offered_qps=10.0,
                                  completed_qps=10.0, cores=tuple(c)) for t, c in self.cores.items()}

    def resize(self, tenant, cores):
        self.calls.append((tenant, list(cores)))
        self.cores[tenant] = list(cores)

    def set_llc_ways(self, tenant, ways):  # pragma: no cover - no resctrl in this fake
        raise AssertionError("no LLC moves expected")


def test_manager_loop_over_control_api_logs_moves():
    from hera.control import NodeManagerLoop, PartiesConfig, PartiesController

    node = FakeNode({"a": [0], "b": [1, 2]}, {"a": 50.0, "b": 1.0}, {"a": 25.0, "b": 30.0})  # a violates, b idles
    loop = NodeManagerLoop(PartiesController(PartiesConfig(resources=("core",))), node, 0.1,
                           sleep=lambda s: None, node_cores=[0, 1, 2])
    loop.run(n_intervals=2)
    assert set(node.windows) == {0.1}  # the loop asks for statistics over its own interval
    assert node.cores["a"] == [0, 2] and node.cores["b"] == [1]
    moves = pd.DataFrame(loop.moves)
    assert list(moves.columns) == ["t_s", "tenant", "resource", "delta", "reason"]
    assert list(zip(moves["tenant"], moves["delta"])) == [("b", -1), ("a", 1)]
    assert (moves["resource"] == "core").all() and moves["reason"].str.startswith("upsize").all()
    alloc = load_change.allocation_timeline({"a": (1, None), "b": (2, None)}, moves)
    assert alloc("a", 1e9) == (2, None) and alloc("b", 1e9) == (1, None)


def test_tenant_plans_carry_the_sla_to_the_node():
    """The node reports each tenant's SLA (from T1) in its stats, so a node manager reads it from the node."""
    deploy = plansmod.NodeDeploy((plansmod.TenantDeploy(A, 1, None, 10.0), plansmod.TenantDeploy(B, 1, 2, 5.0)), 1.0)
    cfg = cfgmod.validate({"scale": "ci"})
    tp = tenant_plans(cfg, deploy, [(0,), (1,)], {A: 12.5, B: 7.0})
    assert [(t.name, t.cores, t.llc_ways, t.sla_ms) for t in tp] == [(A, (0,), None, 12.5), (B, (1,), 2, 7.0)]
    assert tenant_plans(cfg, deploy, [(0,), (1,)])[0].sla_ms is None


@pytest.mark.slow
@two_cpus
def test_load_change_command_writes_f7_tables(study, tmp_path, capsys):
    cfg, f = study
    out = tmp_path / "serving"
    rc = main(["experiment", "load-change", "--config", str(f["config"]), "--plans", str(f["plans"]),
               "--pairs", str(f["pairs"]), "--scalability", str(f["scalability"]), "--t1", str(f["t1"]),
               "--out", str(out), "--runner", "synthetic"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary["managers"]) == {"hera", "parties", "static"}
    tl, mv = pd.read_csv(out / "load_change.csv"), pd.read_csv(out / "moves.csv")
    for col in ["t_s", "tenant", "manager", "offered_qps", "p95_ms", "sla_ms", "violations", "cores", "note"]:
        assert col in tl.columns
    for col in ["t_s", "manager", "tenant", "resource", "delta", "reason"]:
        assert col in mv.columns
    assert len(tl) == 3 * 2 * 4                                  # 3 managers x 2 tenants x 4 windows of 0.25 s
    a = tl[(tl["manager"] == "static") & (tl["tenant"] == A)]
    assert a["rate_qps"].iloc[0] == pytest.approx(30.0) and a["rate_qps"].iloc[-1] == pytest.approx(54.0)
    assert tl["offered_qps"].sum() > 0
    # a 2-core node: the only split is 1+1, so no manager can move a core; said, not faked
    assert len(mv) == 0 and tl["note"].str.contains("needs >= 3 cores").all()


def test_load_change_refuses_bad_inputs(study, tmp_path):
    cfg, f = study
    solo = tmp_path / "solo.json"
    doc = plans_doc()
    doc["plans"] = {"single_tenant": doc["plans"]["single_tenant"]}
    solo.write_text(json.dumps(doc))
    with pytest.raises(plansmod.PlanError, match="needs a two-tenant node"):
        load_change.run(cfg, solo, f["pairs"], f["scalability"], f["t1"], None, SYN)
    big = tmp_path / "big.json"
    big.write_text(json.dumps(plans_doc(pair_cores=(64, 64))))
    with pytest.raises(ResourceError, match="needs 128 cores"):
        load_change.run(cfg, big, f["pairs"], f["scalability"], f["t1"], None, SYN)
    with pytest.raises(HeraError, match="profile table .* does not exist"):
        load_change.run(cfg, f["plans"], tmp_path / "nope.csv", f["scalability"], f["t1"], None, SYN)
    with pytest.raises(ConfigError, match="unknown manager"):
        load_change.run(cfg, f["plans"], f["pairs"], f["scalability"], f["t1"], None, SYN, managers=("magic",))


def _twelve_ways(root):
    (root / "info/L3/cbm_mask").write_text("fff\n")
    (root / "schemata").write_text("L3:0=fff\nMB:0=100\n")


@pytest.mark.slow
@two_cpus
def test_load_change_moves_llc_ways_on_a_real_node(study, tmp_path, fake_resctrl):
    """A real (synthetic-runner) node with a fake resctrl tree: PARTIES moves LLC ways through the node's
    run-time control API, the moves are logged on the timeline's clock and show in its llc_ways column."""
    _twelve_ways(fake_resctrl)  # 11 ways for the tenants' plans + 1 the node keeps for its harness group
    cfg, f = study
    doc = plans_doc()
    doc["plans"]["hera"][0]["tenants"][0]["llc_ways"] = 5
    doc["plans"]["hera"][0]["tenants"][1]["llc_ways"] = 6
    f["plans"].write_text(json.dumps(doc))
    # A's SLA is unmeetable (always violating), B's generous: PARTIES must grow A at B's expense
    pd.DataFrame({"model": [A, B], "sla_ms": [0.001, 1000.0]}).to_csv(f["t1"], index=False)
    cfg = dict(cfg, load_change=dict(cfg["load_change"], duration_s=1.5))
    opts = NodeOptions(runner="synthetic", resctrl_root=str(fake_resctrl))
    tl, mv = load_change.run(cfg, f["plans"], f["pairs"], f["scalability"], f["t1"], tmp_path / "out", opts,
                             managers=("parties",))
    assert len(mv) > 0 and (mv["resource"] == "llc_way").all() and (mv["manager"] == "parties").all()
    assert {(B, -1), (A, 1)} <= set(zip(mv["tenant"], mv["delta"]))       # A grew, B shrank (via the pool)
    assert mv["t_s"].between(0.0, 2.0).all()
    assert (tl["llc_partitioning"] == "available").all()
    a = tl[tl["tenant"] == A]
    assert a["llc_ways"].iloc[0] in (5, 6) and a["llc_ways"].max() >= 6
    assert tl["note"].str.contains("needs >= 3 cores").all() and not tl["note"].str.contains("resctrl").any()
    assert len(pd.read_csv(tmp_path / "out" / "moves.csv")) == len(mv)


@pytest.mark.timing
@pytest.mark.slow
@two_cpus
def test_hera_manager_follows_a_load_step_on_a_real_node(study, tmp_path, fake_resctrl):
    """Hera's manager on a real node (fake resctrl): when A's load steps up and B's down, it moves LLC ways to
    A, after the step, towards the profiled split with the most headroom (8/3 ways here)."""
    _twelve_ways(fake_resctrl)  # 11 ways for the tenants' plans + 1 the node keeps for its harness group
    cfg, f = study
    pd.DataFrame({"model_a": [A] * 3, "model_b": [B] * 3, "cores_a": [1] * 3, "cores_b": [1] * 3,
                  "ways_a": [3, 5, 8], "ways_b": [8, 6, 3], "qps_star_a": [20.0, 35.0, 60.0],
                  "qps_star_b": [60.0, 45.0, 20.0]}).to_csv(f["pairs"], index=False)
    doc = plans_doc()
    doc["node"]["llc_ways"] = 11
    doc["plans"]["hera"] = [{"tenants": [_tenant(A, 1, 35.0, 5), _tenant(B, 1, 45.0, 6)], "emu": 1.0}]
    f["plans"].write_text(json.dumps(doc))
    cfg = dict(cfg, load_change=dict(cfg["load_change"], duration_s=4.0))
    opts = NodeOptions(runner="synthetic", resctrl_root=str(fake_resctrl))
    tl, mv = load_change.run(cfg, f["plans"], f["pairs"], f["scalability"], f["t1"], None, opts, managers=("hera",))
    assert len(mv) > 0 and (mv["resource"] == "llc_way").all()
    assert (mv["t_s"] > 2.0).all()                                # nothing moves before the step at t = 2 s
    a = tl[tl["tenant"] == A]
    assert a["llc_ways"].iloc[0] == 5 and a["llc_ways"].iloc[-1] == 8
    assert mv["reason"].str.contains("profile target").all()
