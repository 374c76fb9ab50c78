"""Policies, profile tables, grouping and prediction accuracy on synthetic tables with known answers (no nodes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hera.errors import ConfigError, HeraError
from hera.policy import POLICIES, Profiles, emu, get_policy, mean_emu, plan_table, plans_json
from hera.policy.accuracy import prediction_errors, prediction_summary, signed_error
from hera.policy.grouping import (
    all_groupings,
    best_mean_grouping,
    matching_upper_bound,
    matching_weight,
    max_weight_matching,
)
from hera.policy.synthetic import (
    KNOWN_BEST,
    KNOWN_CLASSES,
    known_answer_tables,
    prediction_world,
    random_tables,
)


@pytest.fixture()
def tables():
    return known_answer_tables()


@pytest.fixture()
def profiles(tables):
    return Profiles(tables["scalability"], tables["pairs"], tables["predicted"])


def groups(plan):
    return sorted(tuple(sorted(n.models)) for n in plan)


# ------------------------------------------------------------------ EMU and profiles
def test_emu_formula():
    assert emu([50.0], [50.0]) == 1.0
    assert emu([30.0, 40.0], [60.0, 50.0]) == pytest.approx(0.5 + 0.8)
    with pytest.raises(ConfigError, match="positive alone capacity"):
        emu([1.0], [0.0])
    with pytest.raises(ConfigError, match="one alone capacity per co-located tenant"):
        emu([1.0, 2.0], [3.0])


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
    with pytest.raises(ConfigError, match="pair prediction table lacks column.*qps_star_b"):
        Profiles(tables["scalability"], tables["pairs"], tables["predicted"].drop(columns="qps_star_b"))


def test_unknown_model_errors(tables, profiles):
    pairs = tables["pairs"].copy()
    pairs.loc[0, "model_a"] = "dlrm_rmc9"
    with pytest.raises(
        ConfigError, match="measured co-location table.*names model.*dlrm_rmc9.*no isolated profile"
    ):
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
    with pytest.raises(
        ConfigError,
        match=r"measured co-location table \(colocation/pairs.csv\) has no rows for "
        r"pair \(emb_a, mlp_a\)",
    ):
        p.splits("emb_a", "mlp_a")
    with pytest.raises(ConfigError, match=r"has no rows for pair \(emb_a, mlp_a\)"):
        get_policy("oracle").plan(p.models, p)
    with pytest.raises(ConfigError, match="does not exist"):
        Profiles.from_files(tmp_path / "scalability.csv")


def test_from_files_round_trip(tables, tmp_path):
    for k, df in tables.items():
        df.to_csv(tmp_path / f"{k}.csv", index=False)
    p = Profiles.from_files(tmp_path / "scalability.csv", tmp_path / "pairs.csv", tmp_path / "predicted.csv")
    assert p.best_split("emb_a", "mlp_a").emu == pytest.approx(1.35)
    assert p.best_split("emb_a", "mlp_a", source="predicted").emu == pytest.approx(1.35)


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


def test_hera_with_exact_predictions_matches_oracle_on_known_table(profiles):
    hera = get_policy("hera").plan(profiles.models, profiles)
    assert {(n.decided_on, n.evaluated_on) for n in hera} == {("predicted", "measured")}
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
    pair, pred = (
        t[t.model_a.isin(keep) & t.model_b.isin(keep)] for t in (tables["pairs"], tables["predicted"])
    )
    p = Profiles(s, pair, pred)
    for name in ("hera", "oracle"):
        assert [n.emu for n in get_policy(name).plan(keep, p)] == [1.0, 1.0]
    assert {n.decided_on for n in get_policy("hera").plan(keep, p)} == {"predicted"}  # kept apart on predictions


@pytest.mark.parametrize("seed", range(3))
def test_hera_on_random_tables_exact_equals_oracle_greedy_within_10pct(seed):
    t = random_tables(9, seed)
    p = Profiles(t["scalability"], t["pairs"])
    oracle = mean_emu(get_policy("oracle").plan(p.models, p))
    # Hera's matching on the measured table (the ablation source="measured") is the oracle's optimum
    assert mean_emu(get_policy("hera", source="measured").plan(p.models, p)) == pytest.approx(oracle)
    greedy_matching = mean_emu(get_policy("hera", source="measured", exact_limit=0).plan(p.models, p))
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
    assert (
        list(df.columns)
        == ["policy", "mix", "node", "tenants", "emu", "decided_on", "evaluated_on", "predicted_emu"]
        and len(df) == 2
    )
    assert set(df["decided_on"]) == {"predicted"} and df["predicted_emu"].notna().all()
    text = plans_json({"hera": plan})
    assert (
        '"capacity_qps"' in text
        and '"decided_on": "predicted"' in text
        and '"evaluated_on": "measured"' in text
    )


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


# ------------------------------------------------------------------ points of several rays
def point_rows(a, b, points, cores=(4, 4), ways=(np.nan, np.nan), **extra):
    """Measured rows of one split of (a, b): ``points`` = [(share_a, qps_a, qps_b), ...]."""
    return pd.DataFrame(
        [
            {
                "model_a": a,
                "model_b": b,
                "cores_a": cores[0],
                "cores_b": cores[1],
                "ways_a": ways[0],
                "ways_b": ways[1],
                "share_a": s,
                "qps_star_a": qa,
                "qps_star_b": qb,
                **extra,
            }
            for s, qa, qb in points
        ]
    )


def test_rays_of_one_split_are_distinct_points_and_repeats_average(tables):
    rows = pd.concat(
        [
            point_rows("emb_a", "mlp_a", [(0.25, 60.0, 300.0), (0.5, 150.0, 200.0), (0.75, 240.0, 90.0)]),
            point_rows("emb_a", "mlp_a", [(0.5, 170.0, 220.0)]),  # a repeat of the balanced ray
            point_rows("mlp_a", "emb_a", [(0.75, 80.0, 50.0)], cores=(2, 6)),
        ]
    )  # stored b-first
    p = Profiles(tables["scalability"], rows)
    pts = sorted(p.splits("emb_a", "mlp_a"), key=lambda s: (s.cores_a, s.share_a))
    assert [(s.cores_a, s.share_a, s.qps_a, s.qps_b) for s in pts] == [
        (4, 0.25, 60.0, 300.0),
        (4, 0.5, 160.0, 210.0),
        (4, 0.75, 240.0, 90.0),
        (6, 0.25, 50.0, 80.0),
    ]
    flipped = p.splits("mlp_a", "emb_a")
    assert {(s.cores_a, s.share_a) for s in flipped} == {(4, 0.75), (4, 0.5), (4, 0.25), (2, 0.75)}
    # a split's best point per demand: highest EMU among points meeting it, else most headroom
    best = p.best_split("emb_a", "mlp_a")
    assert (best.share_a, best.emu) == (0.5, pytest.approx(160 / 294.5053 + 210 / 400.0, rel=1e-4))
    assert p.best_split("emb_a", "mlp_a", {"emb_a": 200.0, "mlp_a": 50.0}).share_a == 0.75
    assert p.nearest_split("emb_a", "mlp_a", 4, None, (20.0, 280.0)).share_a == 0.25
    assert p.nearest_split("emb_a", "mlp_a", 4, None, (500.0, 500.0)).share_a == 0.5  # none meets: headroom
    # each tenant's capacity while the partner carries its load (the staircase below the points)
    assert p.capacity("emb_a", "mlp_a", 4, None, (0.0, 250.0)) == (60.0, 300.0)
    assert p.capacity("emb_a", "mlp_a", 4, None, (100.0, 100.0)) == (160.0, 210.0)
    assert p.capacity("emb_a", "mlp_a", 4) == (160.0, 210.0)


def test_hera_decides_from_predictions_only_and_is_evaluated_on_measurements(tables):
    """The measured table says emb_a+mlp_b / emb_b+mlp_a is best, the predictions say emb_a+mlp_a /
    emb_b+mlp_b: Hera follows the predictions, the oracle the measurements, and Hera's nodes carry the
    measured capacities of the splits it chose."""
    meas = tables["pairs"].copy()
    swap = {
        ("emb_a", "mlp_a"): 0.8,
        ("emb_b", "mlp_b"): 0.8,
        ("emb_a", "mlp_b"): 1.3,
        ("emb_b", "mlp_a"): 1.3,
    }
    for (a, b), f in swap.items():
        sel = (meas.model_a == a) & (meas.model_b == b)
        meas.loc[sel, ["qps_star_a", "qps_star_b"]] *= f / KNOWN_BEST[(a, b)]
    p = Profiles(tables["scalability"], meas, tables["predicted"])
    hera, oracle = (get_policy(n).plan(p.models, p) for n in ("hera", "oracle"))
    assert groups(hera) == [("emb_a", "mlp_a"), ("emb_b", "mlp_b")]
    assert groups(oracle) == [("emb_a", "mlp_b"), ("emb_b", "mlp_a")]
    for n in hera:
        assert n.decided_on == "predicted" and n.evaluated_on == "measured"
        assert n.predicted_emu == pytest.approx(1.35) and n.emu == pytest.approx(0.8)
        t = n.tenants
        m = p.nearest_split(t[0].model, t[1].model, t[0].cores, t[0].llc_ways)
        assert (t[0].capacity_qps, t[1].capacity_qps) == (m.qps_a, m.qps_b) and m.source == "measured"
    assert mean_emu(hera) < mean_emu(oracle)


def test_hera_on_guided_measurements_with_prediction_error():
    """Predictions 30% off (log-normal) and pairs measured only around the predicted-best split, as the
    pipeline does: every Hera node is decided on predictions and evaluated on measured points; Hera never
    beats the oracle on the same measurements."""
    for seed in range(4):
        w = prediction_world(error=0.3, seed=seed)
        p = Profiles(w["scalability"], w["pairs"], w["predicted"])
        hera = get_policy("hera").plan(p.models, p)
        pairs = [n for n in hera if len(n.tenants) == 2]
        assert all(n.decided_on == "predicted" and n.evaluated_on.startswith("measured") for n in pairs)
        assert mean_emu(hera) <= mean_emu(get_policy("oracle").plan(p.models, p)) + 1e-9


def test_hera_keeps_predicted_capacities_for_a_pair_never_measured(tables):
    pairs = tables["pairs"]
    some = pairs[~((pairs.model_a == "emb_b") & (pairs.model_b == "mlp_b"))]
    p = Profiles(tables["scalability"], some, tables["predicted"])
    plan = {n.models: n for n in get_policy("hera").plan(p.models, p)}
    assert plan[("emb_b", "mlp_b")].evaluated_on == "predicted"
    assert plan[("emb_a", "mlp_a")].evaluated_on == "measured"
    with pytest.raises(ConfigError, match=r"has no rows for pair \(emb_b, mlp_b\)"):
        get_policy("oracle").plan(p.models, p)


def test_hera_evaluates_an_unmeasured_split_on_the_nearest_measured_one(tables):
    pairs = tables["pairs"]
    best = tables["predicted"].query("model_a == 'emb_a' and model_b == 'mlp_a'").sort_values("emu").iloc[-1]
    p = Profiles(tables["scalability"], pairs[pairs.cores_a != best.cores_a], tables["predicted"])
    node = next(n for n in get_policy("hera").plan(p.models, p) if n.models == ("emb_a", "mlp_a"))
    assert node.evaluated_on == "measured, nearest split" and abs(node.tenants[0].cores - best.cores_a) == 1


def test_memory_class_breaks_ties_between_equal_predictions(tables):
    """All pairs predicted equal: without classes any grouping is optimal; with T1's classes Hera pairs a
    memory-leaning model with a compute-leaning one."""
    pred = tables["predicted"].copy()
    for (a, b), g in pred.groupby(["model_a", "model_b"]):
        pred.loc[g.index, ["qps_star_a", "qps_star_b"]] = (
            g[["qps_star_a", "qps_star_b"]].to_numpy() / g["emu"].max() * 1.2
        )
    alike = {("emb_a", "emb_b"), ("mlp_a", "mlp_b")}
    p = Profiles(tables["scalability"], tables["pairs"], pred, classes=KNOWN_CLASSES)
    plan = get_policy("hera").plan(p.models, p)
    assert [n.predicted_emu for n in plan] == [pytest.approx(1.2)] * 2
    assert not alike & set(groups(plan))


def test_bad_input_is_a_one_line_error(tables):
    scal, pairs, pred = tables["scalability"], tables["pairs"], tables["predicted"]
    # a predicted table missing a pair of the mix
    p = Profiles(scal, pairs, pred[~((pred.model_a == "emb_a") & (pred.model_b == "mlp_b"))])
    with pytest.raises(
        ConfigError,
        match=r"pair prediction table \(colocation/predicted.csv\) has no rows for pair "
        r"\(emb_a, mlp_b\)",
    ) as e:
        get_policy("hera").plan(p.models, p)
    assert "\n" not in str(e.value)
    p = Profiles(scal, pairs, pred[(pred.model_a != "mlp_b") & (pred.model_b != "mlp_b")])
    with pytest.raises(ConfigError, match="pair prediction table.*has no pair with model 'mlp_b' of the mix"):
        get_policy("hera").plan(p.models, p)
    with pytest.raises(ConfigError, match="no pair predictions were given"):
        get_policy("hera").plan(p.models, Profiles(scal, pairs))
    # a measured table without a model of the mix
    p = Profiles(scal, pairs[(pairs.model_a != "mlp_b") & (pairs.model_b != "mlp_b")], pred)
    for name in ("oracle", "greedy", "random", "parties"):
        with pytest.raises(
            ConfigError,
            match="measured co-location table .* has no pair with model 'mlp_b' of "
            "the mix; the oracle and the baselines plan on measured pairs",
        ):
            get_policy(name).plan(p.models, p, None, np.random.default_rng(0))
    # splits that do not fit the node
    with pytest.raises(
        ConfigError, match="inconsistent node size: the pair prediction table .* splits a 9-core node"
    ):
        Profiles(scal, pairs, pred.assign(cores_b=pred.cores_b + 1))
    with pytest.raises(ConfigError, match=r"split that does not fit a node: emb_a on 0 and \w+ on 8 cores"):
        Profiles(scal, None, pred.assign(cores_a=0, cores_b=8))
    with pytest.raises(ConfigError, match="LLC split that does not fit a node"):
        Profiles(scal, pairs.assign(ways_a=4.0, ways_b=np.nan))
    with pytest.raises(ConfigError, match="scalability has 8 workers on a 4-core node"):
        Profiles(scal, None, pred.assign(cores_a=2, cores_b=2))
    with pytest.raises(ConfigError, match="hera source must be"):
        get_policy("hera", source="auto")


# ------------------------------------------------------------------ prediction accuracy
def test_signed_error_never_divides_by_zero():
    err, rel = signed_error([110.0, 5.0, 0.0], [100.0, 0.0, 0.0])
    assert err.tolist() == pytest.approx([0.1, 5.0, 0.0]) and rel.tolist() == [True, False, False]


def test_prediction_errors_and_summary(tmp_path):
    w = prediction_world(error=0.2, seed=1)
    pairs = w["pairs"].copy()
    pairs.loc[0, "qps_star_b"] = 0.0  # a point where b met no rate: absolute error
    pairs.loc[1, "qps_star_a"] = np.nan  # a failed point: left out
    err = prediction_errors(pairs)
    assert len(err) == len(pairs) - 1 and not err.loc[0, "relative_b"]
    assert err.loc[0, "error_b"] == pytest.approx(pairs.loc[0, "predicted_qps_star_b"])
    r = err.iloc[2]
    assert r.error_a == pytest.approx((r.predicted_qps_star_a - r.qps_star_a) / r.qps_star_a)
    assert r.emu_error == pytest.approx(r.predicted_emu - r.emu)
    s = prediction_summary(err)
    assert set(s) == {"median_abs_rel_error", "mean_abs_emu_error", "points", "pairs", "zero_measured"}
    assert s["points"] == len(err) and s["pairs"] == 6 and s["zero_measured"] == 1
    assert 0.02 < s["median_abs_rel_error"] < 0.5 and s["mean_abs_emu_error"] > 0
    err.to_csv(Path(tmp_path) / "e.csv", index=False)
    assert prediction_summary(pd.read_csv(Path(tmp_path) / "e.csv").astype({"relative_b": str})) == s  # read back
    exact = prediction_summary(prediction_errors(prediction_world()["pairs"]))
    assert exact["median_abs_rel_error"] == pytest.approx(0.0) and exact[
        "mean_abs_emu_error"
    ] == pytest.approx(0.0)
    with pytest.raises(ConfigError, match="lacks column.*predicted_emu"):
        prediction_errors(pairs.drop(columns="predicted_emu"))


def test_served_prediction_errors_sit_beside_the_headline():
    """A table with the served prediction: its errors come beside the headline's, relative only (a measured 0
    gives NaN, not a division), and the headline is unchanged."""
    w = prediction_world(error=0.2, seed=1)
    pairs = w["pairs"].copy()
    head = prediction_summary(prediction_errors(pairs))
    served = pairs.assign(predicted_served_qps_star_a=pairs["qps_star_a"] * 1.1,
                          predicted_served_qps_star_b=pairs["qps_star_b"] * 0.95,
                          predicted_served_emu=pairs["emu"] + 0.02)
    served.loc[0, "qps_star_b"] = 0.0
    err = prediction_errors(served)
    assert err.loc[1, "served_error_a"] == pytest.approx(0.1) and err.loc[1, "served_error_b"] == pytest.approx(-0.05)
    assert np.isnan(err.loc[0, "served_error_b"]) and err["served_emu_error"].dropna().round(6).eq(0.02).all()
    s = prediction_summary(err)
    # a's n errors of 0.1 and b's n - 1 of 0.05 (b's measured 0 has none): the median is 0.1
    assert s["served_median_abs_rel_error"] == pytest.approx(0.1) and s["served_points"] == len(err)
    assert s["served_mean_abs_emu_error"] == pytest.approx(0.02)
    assert {k: v for k, v in prediction_summary(prediction_errors(pairs)).items()} == head  # old tables: no served
    assert "served_points" not in head


def test_drift_decomposition_splits_the_log_drift_by_pair_and_by_model():
    """Two pairs of two points each: a drift that is constant within each pair leaves no within-pair variance,
    and one that is constant per model none within the model; a table without drifts gives nothing."""
    from hera.policy.accuracy import drift_decomposition

    pairs = pd.DataFrame({"model_a": ["x", "x", "x", "x"], "model_b": ["y", "y", "z", "z"],
                          "service_drift_a": [1.2, 1.2, 0.8, 0.8], "service_drift_b": [1.0, 1.0, 1.0, 1.0]})
    d = drift_decomposition(pairs)
    assert d["values"] == 8 and d["within_pair"] == pytest.approx(0.0)
    logs = np.log([1.2, 1.2, 0.8, 0.8, 1, 1, 1, 1])
    assert d["total"] == pytest.approx(np.var(logs, ddof=1)) and d["mean_log"] == pytest.approx(logs.mean())
    # x's drift differs between its pairs: within the model it varies, within each pair it does not
    assert d["within_model"] > 0.5 * d["total"] and np.isnan(d["corr_a_b"])  # b constant: no correlation
    same = drift_decomposition(pairs.assign(service_drift_a=1.1, service_drift_b=[0.9, 1.1, 0.9, 1.1]))
    assert same["within_model"] == pytest.approx(same["within_pair"]) and same["total"] > 0
    assert drift_decomposition(pairs.drop(columns="service_drift_a")) == {}
    assert drift_decomposition(pairs.iloc[:1]) == {}


def _unloadable_world():
    """A 2-core node where model x meets no rate alone on 1 core (QPS*(1) = 0, as RMC1 did in run 35), so no
    split loads x beside a partner: the co-location stage measured nothing for x; y and z pair normally."""
    scal = pd.DataFrame([{"model": m, "workers": w, "qps_star": q, "sla_ms": 50.0, "percentile": 0.95}
                         for m, qs in {"x": (0.0, 200.0), "y": (30.0, 55.0), "z": (20.0, 38.0)}.items()
                         for w, q in zip((1, 2), qs)])
    base = {"cores_a": 1, "cores_b": 1, "ways_a": np.nan, "ways_b": np.nan}
    pairs = pd.DataFrame([{"model_a": "y", "model_b": "z", **base, "qps_star_a": 24.0, "qps_star_b": 16.0}])
    nan = {"qps_star_a": np.nan, "qps_star_b": np.nan}
    predicted = pd.DataFrame([{"model_a": "y", "model_b": "z", **base, "qps_star_a": 25.0, "qps_star_b": 15.0},
                              {"model_a": "x", "model_b": "y", **base, **nan},
                              {"model_a": "x", "model_b": "z", **base, **nan}])
    return Profiles(scal, pairs, predicted)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_model_that_meets_no_rate_on_any_split_is_never_a_measured_pair_and_plans_still_work(name):
    from hera.policy.cluster import provision_plan

    p = _unloadable_world()
    assert p.unloadable("x", "y") and p.unloadable("z", "x") and not p.unloadable("y", "z")
    pts = p.splits("x", "y")
    assert [(s.cores_a, s.cores_b, s.qps_a, s.qps_b, s.emu, s.source) for s in pts] == [
        (1, 1, 0.0, 0.0, 0.0, "unloadable")]
    assert p.splits("y", "x", "predicted")  # the predicted rows (NaN) are read as they are
    plan = get_policy(name).plan(["x", "y", "z"], p, rng=np.random.default_rng(3))
    assert sorted(m for n in plan for m in n.models) == ["x", "y", "z"]
    for node in plan:
        if "x" in node.models and len(node.models) == 2:  # only random may pair x: a node serving nothing
            assert name == "random" and node.emu == 0.0
    if name in ("oracle", "hera", "greedy", "parties", "single_tenant"):
        assert ("x",) in [tuple(n.models) for n in plan]
    prov = provision_plan(name, ["x", "y", "z"], p, {"x": 300.0, "y": 40.0, "z": 30.0})
    served = {m: 0.0 for m in "xyz"}
    for node, k in prov.nodes:
        for t in node.tenants:
            served[t.model] += k * t.capacity_qps
    assert served["x"] >= 300.0 and served["y"] >= 40.0 and served["z"] >= 30.0


def test_a_missing_pair_of_loadable_models_is_still_an_error():
    p = _unloadable_world()
    q = Profiles(p._scal, p.pairs.iloc[0:0])
    with pytest.raises(ConfigError, match=r"has no pair with model 'y'"):
        q.splits("y", "z")


def test_with_predictions_rescores_measured_points_against_another_prediction_table(capsys):
    from hera.cli import main
    from hera.policy.accuracy import with_predictions

    key = {"model_a": "x", "model_b": "y", "cores_a": 1, "cores_b": 1, "llc": "shared", "ways_a": np.nan,
           "ways_b": np.nan}
    pairs = pd.DataFrame([{**key, "share_a": s, "qps_star_a": 10.0, "qps_star_b": 10.0, "emu": 0.5,
                           "predicted_qps_star_a": 1.0, "predicted_qps_star_b": 1.0, "predicted_emu": 0.05}
                          for s in (0.25, 0.5, 0.75)])
    new = pd.DataFrame([{**key, "share_a": s, "qps_star_a": 9.0, "qps_star_b": 11.0, "emu": 0.5, "emu_lo": 0.4,
                         "emu_hi": 0.6} for s in (0.25000001, 0.5, 0.1)])  # 0.75 not predicted; 0.1 measured nowhere
    got = with_predictions(pairs, new)
    assert len(got) == 3 and list(got["predicted_qps_star_a"][:2]) == [9.0, 9.0]
    assert list(got["predicted_emu_hi"][:2]) == [0.6, 0.6] and got["predicted_emu"].isna().tolist() == [False, False, True]
    summary = prediction_summary(prediction_errors(got))
    assert summary["median_abs_rel_error"] == pytest.approx(0.1)  # |9-10|/10 and |11-10|/10
    with pytest.raises(ConfigError, match="lacks column"):
        with_predictions(pairs, new.drop(columns="emu"))
    assert main(["bench", "pair-prediction", "--predicted", "p.csv"]) != 0
    assert "give --from-results DIR too" in capsys.readouterr().err
