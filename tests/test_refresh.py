"""The refreshed prediction (hera.profile.refresh): each model's solo speed from its anchors in the pass's other
sittings (never the point's own), the split predicted again with it, pooled over visits and merged beside each
pooled point; its errors beside the headline (hera.policy.accuracy)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hera.policy.accuracy import prediction_errors, prediction_summary
from hera.profile import common, refresh


def _point(visit, a, b, share, anchor_a, anchor_b, **extra):
    return {"visit": visit, "pair": f"{a}__{b}", "model_a": a, "model_b": b, "cores_a": 1, "cores_b": 1,
            "ways_a": np.nan, "ways_b": np.nan, "llc": "shared", "share_a": share, "anchor_a": anchor_a,
            "anchor_b": anchor_b, **extra}


def _visits() -> pd.DataFrame:
    rows = []
    for visit, (ab, ac, bc) in ((1, ((1.1, 0.9), (1.2, 1.3), (0.8, 1.5))), (2, ((1.0, 1.0), (2.0, 0.5), (1.0, 1.0)))):
        for s in (0.5, 0.75, 0.25):
            rows += [_point(visit, "a", "b", s, *ab), _point(visit, "a", "c", s, *ac), _point(visit, "b", "c", s, *bc)]
    return pd.DataFrame(rows)


def test_a_models_refreshed_speed_comes_from_the_other_sittings_of_the_same_pass():
    speeds = refresh.pass_speeds(_visits())
    # a in a__b, visit 1: only a__c's anchor of a (1.2); b: only b__c's (0.8)
    assert speeds[(1, "a__b", "a")] == (pytest.approx(1.2), 1)
    assert speeds[(1, "a__b", "b")] == (pytest.approx(0.8), 1)
    # c in a__c: b__c's anchor of c (1.5); visit 2 is its own pass
    assert speeds[(1, "a__c", "c")] == (pytest.approx(1.5), 1)
    assert speeds[(2, "a__c", "c")] == (pytest.approx(1.0), 1)
    # with two other sittings: the geometric mean
    four = pd.concat([_visits(), pd.DataFrame([_point(1, "a", "d", 0.5, 0.6, 1.0)])], ignore_index=True)
    assert four.pipe(refresh.pass_speeds)[(1, "a__b", "a")] == (pytest.approx(math.sqrt(1.2 * 0.6)), 2)
    # no other sitting with an anchor (d is in one pair; NaN anchors are no measurement): none
    assert refresh.pass_speeds(four)[(1, "a__d", "d")][1] == 0
    assert math.isnan(refresh.pass_speeds(four)[(1, "a__d", "d")][0])
    nan = _visits().assign(anchor_a=np.nan)  # anchoring off: no refreshed speed for anyone in side a only
    assert refresh.pass_speeds(nan)[(1, "a__b", "a")][1] == 0


def test_the_split_is_predicted_again_with_the_refreshed_speeds(monkeypatch):
    """Each (visit, pair, split) is predicted once with its tenants' refreshed speeds (by tenant name, as the
    anchor is), each ray taken from it; a pair with a lone model is not refreshed and says why."""
    from hera.profile import colocation

    seen = []

    def fake(config, models, split, anchor, names, scal, services, sla, interference, resctrl_root=None):
        seen.append((models, dict(anchor.factor), split.key()))
        fa, fb = anchor.factor[names[0]], anchor.factor[names[1]]
        return pd.DataFrame({"share_a": [0.5, 0.75, 0.25], "qps_star_a": [100 / fa] * 3,
                             "qps_star_b": [50 / fb] * 3, "emu": [0.5 / fa] * 3})

    monkeypatch.setattr(colocation, "anchored_predictions", fake)
    pts = pd.concat([_visits(), pd.DataFrame([_point(1, "a", "d", 0.5, 0.6, 1.0)])], ignore_index=True)
    out = refresh.refreshed({}, pts, {}, pd.DataFrame(), {}, None)
    assert len(seen) == 6  # 3 pairs x 2 visits; a__d not predicted
    assert seen[0][0] == ("a", "b") and seen[0][2] == {"cores_a": 1, "cores_b": 1, "ways_a": None, "ways_b": None}
    ab1 = out[(out["visit"] == 1) & (out["model_b"] == "b")]
    assert len(ab1) == 3 and ab1["refresh_a"].iloc[0] == pytest.approx(math.sqrt(1.2 * 0.6))
    assert ab1["refreshed_qps_star_a"].iloc[0] == pytest.approx(100 / math.sqrt(1.2 * 0.6))
    ad = out[out["model_b"] == "d"]
    assert len(ad) == 1 and ad["refreshed_emu"].isna().all()
    assert ad["refresh_note"].iloc[0] == "not refreshed: d anchored in no other sitting of visit 1"
    pool = refresh.pooled(out)
    ab = pool[(pool["model_b"] == "b") & np.isclose(pool["share_a"], 0.5)].iloc[0]
    # visit 1: a's factor sqrt(1.2 * 0.6) (a__c and a__d), visit 2: 2.0 (a__c): geometric mean; predictions mean
    assert ab["refresh_a"] == pytest.approx(math.exp((math.log(math.sqrt(0.72)) + math.log(2.0)) / 2))
    assert ab["refreshed_qps_star_a"] == pytest.approx((100 / math.sqrt(0.72) + 100 / 2.0) / 2)
    assert ab["refresh_sittings"] == 1


def test_refreshed_columns_join_each_pooled_point_and_score_beside_the_headline():
    pairs = pd.DataFrame([{"model_a": "a", "model_b": "b", "cores_a": 1, "cores_b": 1, "ways_a": np.nan,
                           "ways_b": np.nan, "llc": "shared", "share_a": s, "qps_star_a": 100.0, "qps_star_b": 50.0,
                           "emu": 0.5, "predicted_qps_star_a": 150.0, "predicted_qps_star_b": 50.0,
                           "predicted_emu": 0.7} for s in (0.5, 0.75, 0.25)])
    pool = pd.DataFrame([{"model_a": "a", "model_b": "b", "cores_a": "1", "cores_b": "1", "llc": "shared",
                          "share_a": 0.5000001, "refresh_a": 1.2, "refresh_b": 1.0, "refresh_sittings": 2,
                          "refreshed_qps_star_a": 110.0, "refreshed_qps_star_b": 40.0, "refreshed_emu": 0.45,
                          "refresh_note": ""}])
    out = refresh.with_refreshed(pairs, pool)
    assert list(out["share_a"]) == [0.5, 0.75, 0.25] and out["cores_a"].dtype.kind in "iu"
    assert out.loc[0, "refreshed_emu"] == 0.45 and out.loc[1:, "refreshed_emu"].isna().all()
    assert out.loc[1, "refresh_note"].startswith("not refreshed: no visit of this point")
    fig = prediction_summary(prediction_errors(out))
    assert fig["median_abs_rel_error"] == pytest.approx(0.25)  # the headline: a-priori (0.5, 0, ... over 6)
    assert fig["refreshed_median_abs_rel_error"] == pytest.approx(0.15)  # 0.1 and 0.2: only the refreshed point
    assert fig["refreshed_mean_abs_emu_error"] == pytest.approx(0.05) and fig["refreshed_points"] == 1


def test_bad_visit_files_are_one_line_errors(tmp_path):
    bad = tmp_path / "visits" / "1" / "a__b.trials.csv"
    bad.parent.mkdir(parents=True)
    pd.DataFrame({"model_a": ["a"], "model_b": ["b"], "trial": [0]}).to_csv(bad, index=False)
    with pytest.raises(common.ProfileError, match="is not a visit's points file .* lacks cores_a"):
        refresh.read_visits([bad])
    loose = tmp_path / "a__b.csv"
    pd.DataFrame([_point(1, "a", "b", 0.5, 1.0, 1.0)]).to_csv(loose, index=False)
    with pytest.raises(common.ProfileError, match="is not in a visit's folder"):
        refresh.read_visits([loose])
    with pytest.raises(common.ProfileError, match="needs the pooled points of at least one pair"):
        refresh.run({}, [], [], "t1", "scal", {}, None, tmp_path / "out.csv")


def test_the_bars_are_judged_on_the_refreshed_prediction_where_every_point_has_it():
    from hera.policy.accuracy import HEADLINE, headline

    s = {"median_abs_rel_error": 0.3, "mean_abs_emu_error": 0.2, "points": 45, "refreshed_points": 45,
         "refreshed_median_abs_rel_error": 0.1, "refreshed_mean_abs_emu_error": 0.09}
    assert HEADLINE == "refreshed"
    assert headline(s) == {"headline": "refreshed", "median_abs_rel_error": 0.1, "mean_abs_emu_error": 0.09,
                           "apriori_median_abs_rel_error": 0.3, "apriori_mean_abs_emu_error": 0.2}
    for other in ({**s, "refreshed_points": 44}, {k: v for k, v in s.items() if not k.startswith("refreshed")}):
        assert headline(other)["headline"] == "apriori" and headline(other)["median_abs_rel_error"] == 0.3
    # scored against another prediction table: the run's refreshed columns do not belong to it
    assert headline(s, refreshed_ok=False)["headline"] == "apriori"
