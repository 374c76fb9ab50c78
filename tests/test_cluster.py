"""Cluster provisioning: servers needed per policy for model mixes (figure F8)."""

from __future__ import annotations

import json

import pytest

from hera.policy.cluster import STANDARD_MIXES, classify, cover_fixed, mix_loads, provision, served, servers_table
from hera.errors import ConfigError, ResourceError
from hera.policy import Profiles
from hera.policy.synthetic import known_answer_tables


@pytest.fixture()
def tables():
    return known_answer_tables()


@pytest.fixture()
def profiles(tables):
    return Profiles(tables["scalability"], tables["pairs"], tables["predicted"])


def test_cover_fixed_is_exact():
    assert cover_fixed({"a": 10, "b": 10}, {"a": 12, "b": 12}, {"a": 20, "b": 20}) == (2, {"a": 0, "b": 0})
    n, singles = cover_fixed({"a": 10, "b": 1}, {"a": 12, "b": 12}, {"a": 24, "b": 24})
    assert n + sum(singles.values()) == 4  # pair nodes would waste b: 2 + 2 singles


def test_classes_and_mix_loads(profiles):
    assert classify(profiles, profiles.models) == {
        "emb_a": "embedding",
        "emb_b": "embedding",
        "mlp_a": "mlp",
        "mlp_b": "mlp",
    }
    t1 = {
        "emb_a": "embedding-dominated",
        "emb_b": "memory-bound",
        "mlp_a": "MLP-dominated",
        "mlp_b": "compute",
    }
    assert classify(profiles, profiles.models, t1) == classify(profiles, profiles.models)
    loads = mix_loads(STANDARD_MIXES["embedding_heavy"], profiles.models, profiles)
    assert loads["emb_a"] == pytest.approx(4.5 * profiles.qps_alone("emb_a"))
    assert loads["mlp_b"] == pytest.approx(1.5 * profiles.qps_alone("mlp_b"))
    skew = mix_loads(STANDARD_MIXES["skewed"], ["mlp_b", "emb_a"], profiles)
    assert skew == {
        "mlp_b": pytest.approx(6 * 240.0),
        "emb_a": pytest.approx(3 * profiles.qps_alone("emb_a")),
    }


def test_trivial_case_known_optimum(profiles):
    """Demand = 4 × the best split's capacities of (emb_a, mlp_a), EMU 1.35: 5.4 nodes of isolated work and at
    most 1.35 per node → 4 nodes is optimal; single-tenant needs ⌈3.02⌉ + ⌈2.38⌉ = 7."""
    s = profiles.best_split("emb_a", "mlp_a")
    loads = {"emb_a": 4 * s.qps_a, "mlp_a": 4 * s.qps_b}
    models = list(loads)
    count = {
        p: sum(k for _, k in provision(p, models, profiles, loads))
        for p in ("hera", "oracle", "single_tenant")
    }
    assert count == {"hera": 4, "oracle": 4, "single_tenant": 7}
    one = {"mlp_b": 2.5 * profiles.qps_alone("mlp_b")}
    assert all(
        sum(k for _, k in provision(p, ["mlp_b"], profiles, one)) == 3
        for p in ("single_tenant", "hera", "oracle")
    )


def test_hera_needs_fewer_servers_than_single_tenant(profiles):
    df = servers_table(profiles, mixes=["balanced", "embedding_heavy", "skewed"], seed=0)
    assert list(df.columns[:4]) == ["mix", "policy", "servers", "assignment"]
    s = df.set_index(["mix", "policy"])["servers"]
    for mix in ("balanced", "embedding_heavy", "skewed"):
        assert s[(mix, "hera")] < s[(mix, "single_tenant")]
        assert s[(mix, "oracle")] <= s[(mix, "hera")]
        assert all(s[(mix, p)] <= s[(mix, "single_tenant")] for p in ("random", "greedy", "parties"))
    assert s[("balanced", "hera")] == 8 and s[("balanced", "single_tenant")] == 12
    nodes = json.loads(df[(df.mix == "balanced") & (df.policy == "hera")].assignment.iloc[0])
    assert sum(n["count"] for n in nodes) == 8 and {"model", "cores", "llc_ways"} <= set(
        nodes[0]["tenants"][0]
    )


@pytest.mark.parametrize("policy", ["single_tenant", "random", "greedy", "parties", "hera", "oracle"])
def test_every_provisioning_serves_the_demand(policy, profiles):
    loads = mix_loads(STANDARD_MIXES["mlp_heavy"], profiles.models, profiles)
    cap = served(provision(policy, profiles.models, profiles, loads))
    assert all(cap[m] >= loads[m] - 1e-6 for m in loads)


def test_servers_table_is_reproducible(profiles):
    a = servers_table(profiles, mixes=["balanced"], policies=["random", "hera"], seed=3)
    b = servers_table(profiles, mixes=["balanced"], policies=["random", "hera"], seed=3)
    assert a.equals(b)


def test_failure_paths(tables, profiles):
    scal = tables["scalability"].copy()
    scal.loc[scal.model == "mlp_b", "qps_star"] = 0.0  # never meets its SLA
    dead = Profiles(scal, tables["pairs"])
    with pytest.raises(ResourceError, match="'mlp_b' cannot serve any load"):
        provision("single_tenant", ["mlp_b"], dead, {"mlp_b": 10.0})
    with pytest.raises(ConfigError, match="unknown mix 'heavy'"):
        servers_table(profiles, mixes=["heavy"])
    with pytest.raises(ConfigError, match="unknown key"):
        mix_loads({"gpu": 2.0}, profiles.models, profiles)
    with pytest.raises(ConfigError, match="no embedding/mlp class"):
        classify(profiles, ["emb_a"], {"emb_a": "other"})
    with pytest.raises(ConfigError, match="finite rate"):
        provision("hera", ["emb_a"], profiles, {"emb_a": float("nan")})
    with pytest.raises(ConfigError, match="unknown policy"):
        provision("best", ["emb_a"], profiles, {"emb_a": 1.0})


@pytest.mark.parametrize("seed", range(3))
def test_hera_cluster_is_decided_on_predictions_and_covers_the_demand_on_measurements(seed):
    """Predictions 30% off, pairs measured around the predicted best: Hera's copies carry measured capacities,
    what they fall short of is served by single-tenant nodes, and the oracle never needs more servers."""
    from hera.policy.cluster import provision_plan
    from hera.policy.synthetic import prediction_world

    w = prediction_world(error=0.3, seed=seed)
    p = Profiles(w["scalability"], w["pairs"], w["predicted"])
    loads = mix_loads(STANDARD_MIXES["balanced"], p.models, p, None)
    res = provision_plan("hera", p.models, p, loads)
    assert res.decided_on == "predicted" and res.evaluated_on.startswith("measured")
    pairs = [n for n, _ in res.nodes if len(n.tenants) == 2]
    assert pairs and all(n.decided_on == "predicted" and n.predicted_emu is not None for n in pairs)
    cap = served(res.nodes)
    assert all(cap[m] >= loads[m] - 1e-6 for m in loads)
    assert res.servers_planned > 0
    assert provision_plan("oracle", p.models, p, loads).servers <= res.servers
    df = servers_table(p, mixes=["balanced"], policies=["hera", "oracle"])
    row = df.set_index("policy").loc["hera"]
    assert (row.decided_on, row.servers, row.servers_planned) == ("predicted", res.servers, res.servers_planned)
    assert all("evaluated_on" in n for n in json.loads(row.assignment))
