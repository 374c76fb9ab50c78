"""Node manager control logic: PARTIES and Hera controllers, the apply loop, the simulated node."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hera.errors import ConfigError
from hera.control import (
    HeraConfig,
    HeraManager,
    Move,
    NodeManagerLoop,
    PartiesConfig,
    PartiesController,
    SimulatedNode,
    slack,
    tail_ratio,
)
from hera.policy import Profiles
from hera.server.control import NodeControl, TenantSnapshot
from hera.policy.synthetic import known_answer_tables, partitioned_tables, prediction_world


@pytest.fixture()
def profiles():
    t = known_answer_tables()
    return Profiles(t["scalability"], t["pairs"], t["predicted"])


def obs(p95: dict, cores: dict, ways: dict | None = None, sla: float = 10.0, qps: dict | None = None):
    return {
        t: TenantSnapshot(tenant=t, latency_ms_p95=p95[t], sla_ms=sla, offered_qps=(qps or {}).get(t, 1.0),
                          cores=tuple(cores[t]), llc_ways=(ways or {}).get(t))
        for t in p95
    }


def node(profiles, load_frac: dict, noise=0.0, seed=0):
    models = {"e": "emb_a", "m": "mlp_a"}
    return SimulatedNode(
        profiles,
        models,
        {"e": [0, 1, 2, 3], "m": [4, 5, 6, 7]},
        {"e": None, "m": None},
        {t: load_frac[t] * profiles.qps_alone(m) for t, m in models.items()},
        noise=noise,
        seed=seed,
    )


def direction_changes(rows, tenant="e", resource="core") -> int:
    signs = [r["delta"] for r in rows if r["tenant"] == tenant and r["resource"] == resource]
    return sum(1 for x, y in zip(signs, signs[1:]) if x != y)


# ------------------------------------------------------------------ latency model
def test_tail_ratio_shape():
    assert tail_ratio(0.0) == pytest.approx(0.2) and tail_ratio(1.0) == pytest.approx(1.0)
    assert tail_ratio(0.5) < tail_ratio(0.9) < 1.0 < tail_ratio(1.1) and tail_ratio(50.0) == 20.0
    assert slack(TenantSnapshot(tenant="t", latency_ms_p95=8.0, sla_ms=10.0)) == pytest.approx(0.2)
    assert slack(TenantSnapshot(tenant="t", latency_ms_p95=None, sla_ms=10.0)) == 1.0  # nothing done, none queued
    assert slack(TenantSnapshot(tenant="t", latency_ms_p95=None, sla_ms=10.0, queued_queries=3)) == -1.0
    with pytest.raises(ConfigError, match="tenant 't' has no SLA"):
        slack(TenantSnapshot(tenant="t", latency_ms_p95=8.0))


# ------------------------------------------------------------------ PARTIES
def test_parties_upsizes_after_two_low_slack_intervals():
    ctl = PartiesController(PartiesConfig(resources=("core",)))
    cores = {"a": [0, 1, 2, 3], "b": [4, 5, 6, 7]}
    o = obs({"a": 9.8, "b": 5.0}, cores)  # a: slack 0.02 < 0.05; b: 0.5
    assert ctl.step(o) == []  # one interval is not enough
    [m] = ctl.step(o)
    assert (m.tenant_from, m.tenant_to, m.resource) == ("b", "a", "core") and m.reason.startswith("upsize")


def test_parties_reverts_a_move_that_did_not_help():
    ctl = PartiesController(PartiesConfig(resources=("core", "llc_way")))
    cores, ways = {"a": [0, 1, 2, 3], "b": [4, 5, 6, 7]}, {"a": 5, "b": 6}
    o = obs({"a": 9.8, "b": 5.0}, cores, ways)
    ctl.step(o)
    [up] = ctl.step(o)
    assert up.resource == "core"
    after = obs({"a": 9.9, "b": 5.0}, {"a": [0, 1, 2, 3, 4], "b": [5, 6, 7]}, ways)  # p95 did not fall
    [rev] = ctl.step(after)
    assert (rev.tenant_from, rev.tenant_to, rev.resource) == ("a", "b", "core") and rev.reason.startswith(
        "revert"
    )
    ctl.step(o)
    [nxt] = ctl.step(o)
    assert nxt.resource == "llc_way" and nxt.tenant_to == "a"  # cycled to the next resource kind


def test_parties_downsizes_to_the_pool_and_uses_the_pool_first():
    ctl = PartiesController(PartiesConfig(resources=("core",)))
    cores = {"a": [0, 1, 2, 3], "b": [4, 5, 6, 7]}
    o = obs({"a": 7.5, "b": 1.0}, cores)  # b: slack 0.9 > 0.2
    ctl.step(o)
    [down] = ctl.step(o)
    assert (down.tenant_from, down.tenant_to) == ("b", None) and down.reason.startswith("downsize")
    low = obs({"a": 9.9, "b": 1.5}, {"a": [0, 1, 2, 3], "b": [4, 5, 6]})
    ctl.step(low, free={"core": 1})
    [up] = ctl.step(low, free={"core": 1})
    assert (up.tenant_from, up.tenant_to) == (None, "a")


def test_parties_reacts_to_low_slack_on_simulated_node(profiles):
    sim = node(profiles, {"e": 0.25, "m": 0.7})  # MLP tenant violates at the even split
    loop = NodeManagerLoop(PartiesController(PartiesConfig(resources=("core",))), sim, sleep=lambda s: None)
    for _ in range(40):
        loop.step()
    st = sim.stats()
    assert len(sim.cores["m"]) > 4
    assert all(st[t].latency_ms_p95 <= st[t].sla_ms for t in st)
    assert any(r["reason"].startswith("upsize") for r in loop.moves)


# ------------------------------------------------------------------ Hera
def test_hera_converges_after_step_change_without_oscillating(profiles):
    sim = node(profiles, {"e": 0.25, "m": 0.7})
    mgr = HeraManager(profiles, {"e": "emb_a", "m": "mlp_a"})
    loop = NodeManagerLoop(mgr, sim, sleep=lambda s: None)
    rng = np.random.default_rng(0)
    base = dict(sim.load_qps)
    violations_after = []
    for i in range(80):
        if i == 40:  # step change: the embedding tenant's load jumps
            base = {"e": 0.7 * profiles.qps_alone("emb_a"), "m": 0.3 * profiles.qps_alone("mlp_a")}
        sim.load_qps = {t: v * (1 + 0.08 * rng.standard_normal()) for t, v in base.items()}  # noisy loads
        loop.step()
        if i >= 55:
            st = sim.stats()
            violations_after.append(any(st[t].latency_ms_p95 > st[t].sla_ms for t in st))
    assert len(sim.cores["e"]) > 2  # moved toward the loaded tenant
    assert direction_changes(loop.moves) <= 1  # one reversal: the step change itself
    assert sum(violations_after) <= 2  # only load-noise spikes after settling
    assert sum(1 for r in loop.moves if r["delta"] > 0) <= 8


def test_hera_hysteresis_needs_k_intervals_and_cools_down(profiles):
    mgr = HeraManager(
        profiles, {"e": "emb_a", "m": "mlp_a"}, HeraConfig(hold_intervals=3, cooldown_intervals=4)
    )
    cores = {"e": [0, 1, 2, 3], "m": [4, 5, 6, 7]}
    hot = {"e": 0.25 * profiles.qps_alone("emb_a"), "m": 0.7 * profiles.qps_alone("mlp_a")}
    o = obs({"e": 1.0, "m": 9.9}, cores, qps=hot)
    assert mgr.step(o) == [] and mgr.step(o) == []
    moves = mgr.step(o)
    assert moves and all(m == Move("e", "m", "core", moves[0].reason) for m in moves)
    assert "profile target" in moves[0].reason
    assert [mgr.step(o) for _ in range(4)] == [[]] * 4  # cool-down


def test_hera_moves_llc_ways_when_partitioned():
    w = partitioned_tables(llc_ways=8)
    p = Profiles(w["scalability"], w["pairs"])
    sim = SimulatedNode(
        p,
        {"x": "emb_a", "y": "mlp_a"},
        {"x": [0, 1, 2, 3], "y": [4, 5, 6, 7]},
        {"x": 4, "y": 4},
        {"x": 0.2 * p.qps_alone("emb_a"), "y": 0.6 * p.qps_alone("mlp_a")},
    )
    loop = NodeManagerLoop(HeraManager(p, {"x": "emb_a", "y": "mlp_a"}), sim, sleep=lambda s: None)
    for _ in range(20):
        loop.step()
    target = p.split_for_load("emb_a", "mlp_a", sim.load_qps["x"], sim.load_qps["y"], ways="partitioned")
    assert (len(sim.cores["x"]), sim.llc_ways["x"]) == (target.cores_a, target.ways_a)
    assert sim.llc_ways["x"] + sim.llc_ways["y"] == 8


def test_manager_and_simulated_node_on_points_of_several_rays():
    """Measured tables hold several points per split (one per ray of the feasible region): the manager settles
    on a split whose points serve both loads, and both simulated tenants stay within their SLA."""
    w = prediction_world(known_answer_tables(), measure="all")
    p = Profiles(w["scalability"], w["pairs"])
    a, b = "emb_a", "mlp_a"
    pts = [s for s in p.splits(a, b) if s.cores_a == 3]
    assert len(pts) == 3 and len({s.share_a for s in pts}) == 3
    loads = {"x": 0.3 * p.qps_alone(a), "y": 0.4 * p.qps_alone(b)}
    sim = SimulatedNode(p, {"x": a, "y": b}, {"x": [0, 1, 2, 3], "y": [4, 5, 6, 7]}, {"x": None, "y": None}, loads)
    loop = NodeManagerLoop(HeraManager(p, {"x": a, "y": b}), sim, sleep=lambda s: None)
    for _ in range(30):
        loop.step()
    obs = sim.stats()
    assert all(obs[t].latency_ms_p95 <= obs[t].sla_ms for t in ("x", "y"))
    assert p.nearest_split(a, b, len(sim.cores["x"]), None, (loads["x"], loads["y"])).headroom(
        loads["x"], loads["y"]) >= 1.0


def test_hera_manager_needs_two_tenants(profiles):
    with pytest.raises(ConfigError, match="two tenants"):
        HeraManager(profiles, {"e": "emb_a"})


# ------------------------------------------------------------------ apply loop
class FlakyAPI:
    """A fake control API whose receiver-side resize fails once."""

    def __init__(self):
        self.cores = {"a": [0, 1], "b": [2, 3]}
        self.fail = True

    def stats(self, window_s=None):
        return {
            t: TenantSnapshot(tenant=t, latency_ms_p95=9.9 if t == "a" else 1.0, sla_ms=10.0, offered_qps=1.0,
                              cores=tuple(c))
            for t, c in self.cores.items()
        }

    def resize(self, tenant, cores):
        if tenant == "a" and self.fail:
            self.fail = False
            raise ConfigError("resize failed")
        self.cores[tenant] = list(cores)

    def set_llc_ways(self, tenant, ways):
        raise AssertionError("no resctrl here")


def test_loop_logs_moves_and_failed_move_leaves_consistent_allocation():
    api = FlakyAPI()

    class Script:
        interval_s = 0.1
        plan = [
            [Move("b", "a", "core", "first")],
            [Move(None, "a", "core", "from pool"), Move("b", "a", "llc_way", "no resctrl: ignored")],
            [Move("b", "a", "core", "would leave b without a core: ignored")],
        ]

        def step(self, obs, t_s, free):
            return self.plan.pop(0)

    loop = NodeManagerLoop(Script(), api, sleep=lambda s: None)
    with pytest.raises(ConfigError, match="resize failed"):
        loop.step()  # donor shrank, receiver's resize failed
    assert loop.allocation() == {
        "a": {"cores": [0, 1], "llc_ways": None},
        "b": {"cores": [2], "llc_ways": None},
    }
    assert loop.free(loop._stats())["core"] == 1  # core 3 is in the pool, held by nobody
    loop.step()
    loop.step()
    assert api.cores == {"a": [0, 1, 3], "b": [2]}
    assert [(r["tenant"], r["resource"], r["delta"], r["reason"]) for r in loop.moves] == [
        ("a", "core", 1, "from pool")
    ]
    assert set(loop.moves[0]) == {"t_s", "tenant", "resource", "delta", "reason"}


def test_threaded_loop_stops_consistently(profiles):
    sim = node(profiles, {"e": 0.25, "m": 0.7}, noise=0.05)
    loop = NodeManagerLoop(PartiesController(PartiesConfig(interval_s=0.005, resources=("core",))), sim)
    loop.start()
    time.sleep(0.2)
    alloc = loop.stop()
    held = [c for t in alloc.values() for c in t["cores"]]
    assert (
        len(held) == len(set(held)) and set(held) <= set(range(8)) and all(alloc[t]["cores"] for t in alloc)
    )
    assert loop.moves and all(r["t_s"] >= 0 for r in loop.moves)


def test_loop_rejects_bad_interval_and_stats(profiles):
    with pytest.raises(ConfigError, match="interval"):
        NodeManagerLoop(PartiesController(), node(profiles, {"e": 0.2, "m": 0.2}), interval_s=0)

    class NoSla:
        def stats(self, window_s=None):
            return {"a": TenantSnapshot(tenant="a", latency_ms_p95=1.0, cores=(0,))}

    with pytest.raises(ConfigError, match="tenant 'a' has no SLA"):
        NodeManagerLoop(PartiesController(), NoSla())


def test_every_node_kind_is_a_node_control(profiles):
    """The simulated node, the loop's fakes and (tests/test_server_*) the server's node and RemoteNode all
    implement the one control interface and report TenantSnapshot records."""
    sim = node(profiles, {"e": 0.25, "m": 0.7})
    assert isinstance(sim, NodeControl) and isinstance(FlakyAPI(), NodeControl)
    st = sim.stats(window_s=0.5)
    assert all(isinstance(x, TenantSnapshot) for x in st.values())
    assert st["m"].offered_qps == pytest.approx(sim.load_qps["m"]) and st["m"].completed_qps <= st["m"].offered_qps


def test_hera_plans_for_the_offered_load_not_completions(profiles):
    """Offered and completed load are two fields: the manager smooths the offered one."""
    mgr = HeraManager(profiles, {"e": "emb_a", "m": "mlp_a"}, HeraConfig(interval_s=0.5, load_alpha=1.0))
    o = {t: TenantSnapshot(tenant=t, latency_ms_p95=5.0, sla_ms=10.0, offered_qps=120.0 if t == "e" else 100.0,
                           completed_qps=100.0, cores=c)
         for t, c in (("e", (0, 1, 2, 3)), ("m", (4, 5, 6, 7)))}
    mgr.step(o)
    assert mgr.loads() == {"e": pytest.approx(120.0), "m": pytest.approx(100.0)}
