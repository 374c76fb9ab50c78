"""Query sizes: kinds, caps, seeding, config validation."""

import numpy as np
import pytest

from hera.errors import ConfigError, HeraError
from hera.workload.sizes import PRODUCTION_QUANTILES, QuerySizes, summarize


def rng(seed=0):
    return np.random.default_rng(seed)


def test_fixed_and_alias():
    s = QuerySizes("fixed", 256, items=64).sample(10, rng())
    assert s.dtype == np.int64 and s.tolist() == [64] * 10
    assert QuerySizes("fixed", 256, n_items=7).sample(3, rng()).tolist() == [7, 7, 7]


def test_normal_matches_deeprecsys_defaults():
    s = QuerySizes("normal", 1024).sample(50_000, rng())
    assert abs(s.mean() - 165) < 1 and abs(s.std() - 16) < 1
    assert s.min() >= 1 and s.max() <= 1024


def test_lognormal_matches_deeprecsys_and_is_clipped():
    s = QuerySizes("lognormal", 1024).sample(50_000, rng())
    # lognormal(5.1, 0.2): median exp(5.1) = 164, mean exp(5.1 + 0.02) = 167
    assert abs(np.median(s) - np.exp(5.1)) < 2 and abs(s.mean() - np.exp(5.12)) < 2
    big = QuerySizes("lognormal", 1024, mu=8.0, sigma=0.5).sample(1000, rng())
    assert big.max() == 1024  # DeepRecSys' clip to 1..1024


def test_production_is_uniform_over_the_20_quantile_points():
    assert len(PRODUCTION_QUANTILES) == 20 and np.mean(PRODUCTION_QUANTILES) == 270
    s = QuerySizes("production", 1024).sample(100_000, rng())
    values, counts = np.unique(s, return_counts=True)
    assert values.tolist() == [100, 200, 300, 400, 500, 600, 700]
    expected = np.array([2, 12, 2, 1, 1, 1, 1]) / 20
    assert np.allclose(counts / s.size, expected, atol=0.006)
    assert abs(s.mean() - 270) < 3


@pytest.mark.parametrize("kind", ["fixed", "normal", "lognormal", "production"])
def test_every_kind_capped_by_max_items_and_seeded(kind):
    params = {"items": 50} if kind == "fixed" else {}
    q = QuerySizes(kind, 150, **params)
    a, b = q.sample(2000, rng(3)), q.sample(2000, rng(3))
    assert (a == b).all() and a.max() <= 150 and a.min() >= 1
    assert not (q.sample(2000, rng(4)) == a).all() or kind == "fixed"


def test_from_dict_round_trip_and_summary():
    q = QuerySizes.from_dict({"kind": "normal", "max_items": 512, "mean_items": 100, "sd_items": 5})
    assert QuerySizes.from_dict(q.to_dict()) == q
    st = summarize(q.sample(1000, rng()))
    assert st["n"] == 1000 and 90 < st["mean"] < 110 and st["max"] <= 512
    assert q.expected_mean() == 100.0


@pytest.mark.parametrize("d, needle", [
    ({"kind": "poisson"}, "unknown kind 'poisson'"),
    ({"kind": "normal", "mean": 3}, "parameter 'mean'"),
    ({"kind": "fixed", "mean_items": 3}, "does not apply to kind 'fixed'"),
    ({"kind": "fixed", "items": 2000, "max_items": 1024}, "exceeds max_items"),
    ({"kind": "fixed", "items": 0}, "items must be > 0"),
    ({"kind": "normal", "sd_items": -1}, "sd_items"),
    ({"kind": "production", "max_items": 0}, "max_items"),
    ({"kind": "production", "max_items": 10.5}, "max_items must be an integer"),
    ({"kind": "lognormal", "sigma": "big"}, "sigma"),
])
def test_bad_configs_raise_config_error_naming_the_problem(d, needle):
    with pytest.raises(ConfigError, match=None) as exc:
        QuerySizes.from_dict(d)
    assert needle in str(exc.value) and isinstance(exc.value, HeraError)
    assert "\n" not in str(exc.value)


def test_bad_n():
    with pytest.raises(ConfigError, match="n must be"):
        QuerySizes().sample(-1, rng())
    with pytest.raises(ConfigError, match="expected a mapping"):
        QuerySizes.from_dict(["production"])
