"""Policies, profile tables, grouping and the pair predictor on synthetic tables with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hera.errors import ConfigError, HeraError
from hera.policy import POLICIES, Profiles, emu, get_policy, mean_emu, plan_table, plans_json
from hera.policy.grouping import (
    all_groupings,
    best_mean_grouping,
    matching_upper_bound,
    matching_weight,
    max_weight_matching,
)
from hera.policy.predictor import PairPredictor, evaluate
from hera.policy.synthetic import KNOWN_BEST, known_answer_tables, predictor_world, random_tables


@pytest.fixture()
def tables():
    return known_answer_tables()


@pytest.fixture()
def profiles(tables):
    return Profiles(tables["scalability"], tables["pairs"], tables["memory"])


def groups(plan):
    return sorted(tuple(sorted(n.models)) for n in plan)


# ------------------------------------------------------------------ EMU and profiles
def test_emu_formula():
    assert emu([50.0], [50.0]) == 1.0
    assert emu([30.0, 40.0], [60.0, 50.0]) == pytest.approx(0.5 + 0.8)
    with pytest.raises(ConfigError):
        emu([1.0], [0.0])


def test_profiles_node_and_lookups(profiles):
    assert profiles.node.cores == 8 and profiles.node.llc_ways is None
    assert profiles.models == ("emb_a", "emb_b", "mlp_a", "mlp_b")
    assert profiles.qps_alone("mlp_a") == pytest.approx(400.0)
    assert profiles.qps_alone("mlp_a", 3) == pytest.approx(150.0)
    assert profiles.qps_alone("mlp_a", 2.5) == pytest.approx(125.0)  # interpolated
    assert profiles.best_workers("emb_a") == 8
    for (a, b), best in KNOWN_BEST.items():
        assert profiles.best_split(a, b).emu == pytest.approx(best)
        assert profiles.best_split(b, a).emu == pytest.approx(best)  # either orientation
    s = profiles.best_split("mlp_a", "emb_a")
    assert s.cores_a + s.cores_b == 8
    qa, qb = profiles.capacity("mlp_a", "emb_a", s.cores_a)
    assert (qa, qb) == (s.qps_a, s.qps_b)
    e = profiles.even_split("emb_a", "mlp_a")
    assert (e.cores_a, e.cores_b, e.ways_a) == (4, 4, None)


def test_split_for_load_maximises_headroom(profiles):
    a, b = "emb_a", "mlp_a"
    s = profiles.split_for_load(a, b, 200.0, 100.0)
    head = min(s.qps_a / 200.0, s.qps_b / 100.0)
    assert all(min(x.qps_a / 200.0, x.qps_b / 100.0) <= head + 1e-9 for x in profiles.splits(a, b))
    # a demand the EMU-best split cannot meet moves the split toward the loaded tenant
    assert profiles.best_split(a, b, {a: 270.0, b: 40.0}).cores_a > profiles.best_split(a, b).cores_a


def test_missing_column_is_one_line_error(tables):
    with pytest.raises(ConfigError, match="scalability table lacks column.*qps_star"):
        Profiles(tables["scalability"].drop(columns="qps_star"))
    with pytest.raises(ConfigError, match="co-location table lacks column.*ways_a"):
        Profiles(tables["scalability"], tables["pairs"].drop(columns="ways_a"))
    with pytest.raises(ConfigError, match="memory table lacks column.*slowdown"):
        Profiles(tables["scalability"], tables["pairs"], tables["memory"].drop(columns="slowdown"))


def test_unknown_model_errors(tables, profiles):
    pairs = tables["pairs"].copy()
    pairs.loc[0, "model_a"] = "dlrm_rmc9"
    with pytest.raises(ConfigError, match="dlrm_rmc9.*no isolated profile"):
        Profiles(tables["scalability"], pairs)
    with pytest.raises(HeraError, match="unknown model 'dlrm_rmc9'"):
        get_policy("hera").plan(["emb_a", "dlrm_rmc9"], profiles)
    with pytest.raises(ConfigError, match="unknown policy 'nope'"):
        get_policy("nope")


def test_inconsistent_node_size(tables):
    pairs = tables["pairs"].copy()
    pairs.loc[0, "cores_b"] += 1
    with pytest.raises(ConfigError, match="inconsistent node size"):
        Profiles(tables["scalability"], pairs)
    with pytest.raises(ConfigError, match="inconsistent node size: config says 16 cores"):
        Profiles(tables["scalability"], tables["pairs"], node_cores=16)
    with pytest.raises(ConfigError, match="inconsistent node size: scalability has 8 workers on a 4-core"):
        Profiles(tables["scalability"], node_cores=4)
    p2 = tables["pairs"].copy()
    p2["ways_a"], p2["ways_b"] = 3.0, 5.0
    p2.loc[0, "ways_b"] = 6.0
    with pytest.raises(ConfigError, match="LLC ways"):
        Profiles(tables["scalability"], p2)


def test_missing_pair_and_missing_file(tables, tmp_path):
    pairs = tables["pairs"]
    p = Profiles(tables["scalability"], pairs[~((pairs.model_a == "emb_a") & (pairs.model_b == "mlp_a"))])
    with pytest.raises(ConfigError, match=r"no co-location profile for pair \(emb_a, mlp_a\)"):
        p.splits("emb_a", "mlp_a")
    with pytest.raises(ConfigError, match="oracle needs measured"):
        get_policy("oracle").plan(p.models, p)
    with pytest.raises(ConfigError, match="does not exist"):
        Profiles.from_files(tmp_path / "scalability.csv")


def test_from_files_round_trip(tables, tmp_path):
    for k, df in tables.items():
        df.to_csv(tmp_path / f"{k}.csv", index=False)
    p = Profiles.from_files(tmp_path / "scalability.csv", tmp_path / "pairs.csv", tmp_path / "memory.csv")
    assert p.best_split("emb_a", "mlp_a").emu == pytest.approx(1.35)


# ------------------------------------------------------------------ policies
def test_registry_has_every_policy():
    assert set(POLICIES) == {"single_tenant", "random", "greedy", "parties", "hera", "oracle"}


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_places_each_model_once_within_the_node(name, profiles):
    plan = get_policy(name).plan(profiles.models, profiles, None, np.random.default_rng(1))
    placed = [m for n in plan for m in n.models]
    assert sorted(placed) == sorted(profiles.models)
    for node in plan:
        assert 1 <= len(node.tenants) <= 2
        assert sum(t.cores for t in node.tenants) <= profiles.node.cores
        assert node.emu == pytest.approx(
            emu([t.capacity_qps for t in node.tenants], [profiles.qps_alone(t.model) for t in node.tenants])
        )


def test_single_tenant_emu_is_one_per_node(profiles):
    plan = get_policy("single_tenant").plan(profiles.models, profiles)
    assert [n.emu for n in plan] == [1.0] * 4
    assert all(n.tenants[0].cores == profiles.best_workers(n.models[0]) for n in plan)


def test_oracle_finds_the_known_best_pairing(profiles):
    plan = get_policy("oracle").plan(profiles.models, profiles)
    assert groups(plan) == [("emb_a", "mlp_a"), ("emb_b", "mlp_b")]
    assert mean_emu(plan) == pytest.approx(1.35)


def test_hera_matches_oracle_on_known_table(profiles):
    hera = get_policy("hera").plan(profiles.models, profiles)
    oracle = get_policy("oracle").plan(profiles.models, profiles)
    assert groups(hera) == groups(oracle)
    assert mean_emu(hera) == pytest.approx(mean_emu(oracle))
    assert [n.tenants for n in sorted(hera, key=lambda n: n.models)] == [
        n.tenants for n in sorted(oracle, key=lambda n: n.models)
    ]


def test_alike_pairs_stay_apart_when_pairing_hurts(tables):
    """Two memory-heavy models (pair EMU 0.9): Hera and the oracle keep them on separate nodes."""
    keep = ["emb_a", "emb_b"]
    s = tables["scalability"][tables["scalability"].model.isin(keep)]
    p = Profiles(s, tables["pairs"][tables["pairs"].model_a.isin(keep) & tables["pairs"].model_b.isin(keep)])
    for name in ("hera", "oracle"):
        assert [n.emu for n in get_policy(name).plan(keep, p)] == [1.0, 1.0]


@pytest.mark.parametrize("seed", range(3))
def test_hera_on_random_tables_exact_equals_oracle_greedy_within_10pct(seed):
    t = random_tables(9, seed)
    p = Profiles(t["scalability"], t["pairs"])
    oracle = mean_emu(get_policy("oracle").plan(p.models, p))
    assert mean_emu(get_policy("hera").plan(p.models, p)) == pytest.approx(oracle)
    greedy_matching = mean_emu(get_policy("hera", exact_limit=0).plan(p.models, p))
    assert oracle * 0.90 <= greedy_matching <= oracle + 1e-9


def test_random_is_seeded_and_reproducible(profiles):
    pol = get_policy("random")
    a = pol.plan(profiles.models, profiles, None, np.random.default_rng(7))
    b = pol.plan(profiles.models, profiles, None, np.random.default_rng(7))
    assert a == b
    seen = {
        tuple(groups(pol.plan(profiles.models, profiles, None, np.random.default_rng(s)))) for s in range(12)
    }
    assert len(seen) > 1  # different seeds, different pairings
    for node in a:
        assert [t.cores for t in node.tenants] == [4, 4] and all(t.llc_ways is None for t in node.tenants)


def test_greedy_packs_by_load_alone(profiles):
    """Demanded cores: embedding models reach half their capacity on 2 cores, MLP models need 4; FFD puts the
    two MLP models together (4+4) and the two embedding ones together — heterogeneity-unaware."""
    from hera.policy.greedy import demanded_cores

    assert {m: demanded_cores(m, 0.5 * profiles.qps_alone(m), profiles) for m in profiles.models} == {
        "emb_a": 2,
        "emb_b": 2,
        "mlp_a": 4,
        "mlp_b": 4,
    }
    plan = get_policy("greedy").plan(profiles.models, profiles)
    assert groups(plan) == [("emb_a", "emb_b"), ("mlp_a", "mlp_b")]
    # a load that fills a node on its own keeps the model alone
    demand = {
        "emb_a": 0.5 * profiles.qps_alone("emb_a"),
        "emb_b": 0.5 * profiles.qps_alone("emb_b"),
        "mlp_a": 0.95 * profiles.qps_alone("mlp_a"),
        "mlp_b": 0.5 * profiles.qps_alone("mlp_b"),
    }
    assert ("mlp_a",) in groups(get_policy("greedy").plan(profiles.models, profiles, demand))


def test_parties_converges_to_a_feasible_split(profiles):
    from hera.policy.parties import parties_steady_split

    a, b = "emb_a", "mlp_a"
    load = {a: 0.25 * profiles.qps_alone(a), b: 0.7 * profiles.qps_alone(b)}
    s = parties_steady_split(a, b, profiles, load)
    assert s.qps_a >= load[a] and s.qps_b >= load[b]  # both tenants within SLA
    assert s.cores_a < 4  # moved cores toward the MLP tenant
    plan = get_policy("parties", pairing="random").plan(
        profiles.models, profiles, None, np.random.default_rng(0)
    )
    assert sorted(m for n in plan for m in n.models) == sorted(profiles.models)


def test_demand_validation(profiles):
    with pytest.raises(ConfigError, match="demand has no load for model 'mlp_b'"):
        get_policy("greedy").plan(profiles.models, profiles, {"emb_a": 1, "emb_b": 1, "mlp_a": 1})
    with pytest.raises(ConfigError, match="finite rate"):
        get_policy("hera").plan(["emb_a"], profiles, {"emb_a": -1.0})


def test_plan_outputs(profiles):
    plan = get_policy("hera").plan(profiles.models, profiles)
    df = plan_table(plan, "hera", "known")
    assert list(df.columns) == ["policy", "mix", "node", "tenants", "emu"] and len(df) == 2
    assert '"capacity_qps"' in plans_json({"hera": plan})


# ------------------------------------------------------------------ grouping
def test_matching_exact_vs_brute_force():
    rng = np.random.default_rng(3)
    for n in (2, 5, 7):
        w = rng.normal(size=(n, n))
        w = (w + w.T) / 2
        best = max(sum(w[g] for g in grouping if len(g) == 2) for grouping in all_groupings(range(n)))
        m = max_weight_matching(w)
        assert matching_weight(w, m) == pytest.approx(best)
        assert matching_upper_bound(w) >= best - 1e-9


def test_best_mean_grouping_ratio_objective():
    e = np.array([[np.nan, 1.5, 1.05], [1.5, np.nan, 0.8], [1.05, 0.8, np.nan]])
    # {0,1} + {2}: (1.5 + 1) / 2 = 1.25 beats {0,2}+{1}: 1.025 and all singles: 1.0
    assert best_mean_grouping(e) == [(0, 1), (2,)]
    assert best_mean_grouping(np.full((3, 3), 0.9)) == [(0,), (1,), (2,)]


def test_all_groupings_counts():
    assert [sum(1 for _ in all_groupings(range(n))) for n in range(1, 7)] == [1, 2, 4, 10, 26, 76]


# ------------------------------------------------------------------ predictor
def test_predictor_recovers_its_own_model():
    w = predictor_world(seed=0)
    p = Profiles(w["scalability"], w["pairs"], w["memory"])
    pred = PairPredictor(p).fit()
    assert pred.fitted["gain_bandwidth"] == pytest.approx(1.3, rel=1e-3)
    assert pred.fitted["gain_cache"] == pytest.approx(0.7, rel=1e-3)
    err = evaluate(w["pairs"], pred.predict_pairs())
    assert err["qps_mape"] < 0.1 and err["emu_mape"] < 0.1 and err["n_pairs"] == 6


def test_predictor_fits_missing_pressures_from_a_few_pairs():
    """O(N) profiling: pressures unknown, fitted from 3 of the 6 pairs, then all 6 predicted."""
    w = predictor_world(seed=1)
    mem = w["memory"][~w["memory"].metric.astype(str).str.startswith("pressure_")]
    few = w["pairs"][w["pairs"].model_a == "w0"]
    pred = PairPredictor(Profiles(w["scalability"], few, mem)).fit()
    err = evaluate(w["pairs"], pred.predict_pairs())
    assert err["qps_mape"] < 5.0 and err["best_emu_mape"] < 5.0


def test_predictor_with_llc_ways_and_hera_predicted_matches_oracle():
    w = predictor_world(seed=2, llc_ways=8)
    p = Profiles(w["scalability"], w["pairs"], w["memory"])
    assert p.node.llc_ways == 8 and any(s.ways_a is not None for s in p.splits("w0", "w1"))
    hera = get_policy("hera", source="predicted").plan(p.models, p)
    assert mean_emu(hera) == pytest.approx(mean_emu(get_policy("oracle").plan(p.models, p)))


def test_predictor_reports_error_on_other_data(profiles, tables):
    """The known-answer table is not built from the predictor's model: errors are reported, not zero."""
    err = evaluate(tables["pairs"], PairPredictor(profiles).fit().predict_pairs())
    assert 0.5 < err["qps_mape"] < 50 and set(err) >= {"qps_median_ape", "emu_mape", "emu_median_ape"}


def test_predictor_failure_paths(tables):
    with pytest.raises(ConfigError, match="needs the antagonist"):
        PairPredictor(Profiles(tables["scalability"], tables["pairs"]))
    mem = tables["memory"][tables["memory"].model != "mlp_b"]
    with pytest.raises(ConfigError, match="no rows for model 'mlp_b'"):
        PairPredictor(Profiles(tables["scalability"], tables["pairs"], mem))
    no_pressure = tables["memory"][~tables["memory"].metric.str.startswith("pressure_")]
    with pytest.raises(ConfigError, match="no bandwidth pressure row"):
        PairPredictor(Profiles(tables["scalability"], None, no_pressure)).fit()
    with pytest.raises(ConfigError, match="share no split"):
        evaluate(tables["pairs"], tables["pairs"].assign(cores_a=99))
    with pytest.raises(ConfigError, match="lacks column"):
        evaluate(tables["pairs"].drop(columns="qps_star_a"), tables["pairs"])


def test_hera_auto_fills_unmeasured_pairs_with_predictions(tables):
    pairs = tables["pairs"]
    some = pairs[~((pairs.model_a == "emb_b") & (pairs.model_b == "mlp_b"))]
    p = Profiles(tables["scalability"], some, tables["memory"])
    plan = get_policy("hera").plan(p.models, p)
    assert sorted(m for n in plan for m in n.models) == sorted(p.models)
    with pytest.raises(ConfigError, match="no measured co-location profile"):
        get_policy("hera", source="measured").plan(p.models, p)


def test_predictor_reads_the_profilers_memory_format():
    """hera.profile.memory writes sensitivity as ``latency_ms`` rows and pressure as ``antagonist=k,
    metric=pressure``; other rows carrying a slowdown (``model_items_per_s``, ``pressure``) are not
    sensitivities, and unobservable rows have empty values."""
    w = predictor_world(seed=4)
    rows = []
    for r in w["memory"].itertuples(index=False):
        if r.metric.startswith("pressure_"):
            kind = r.metric.removeprefix("pressure_")
            rows.append(dict(model=r.model, antagonist=kind, intensity=0.5, metric="pressure", value=r.value,
                             slowdown=9.0))
            rows.append(dict(model=r.model, antagonist=kind, intensity=0.5, metric="model_items_per_s",
                             value=1.0, slowdown=7.0))
        else:
            rows.append(dict(model=r.model, antagonist=r.antagonist, intensity=r.intensity,
                             metric="latency_ms", value=1.0, slowdown=r.slowdown))
    mem = pd.DataFrame(rows)
    pred = PairPredictor(Profiles(w["scalability"], w["pairs"], mem))
    pred.gain = dict(w["gains"])
    assert evaluate(w["pairs"], pred.predict_pairs())["qps_mape"] < 1e-6
    blind = mem.assign(slowdown=np.where(mem.metric == "latency_ms", np.nan, mem.slowdown))
    with pytest.raises(ConfigError, match="no measured antagonist slowdown for model 'w0'"):
        PairPredictor(Profiles(w["scalability"], w["pairs"], blind))
