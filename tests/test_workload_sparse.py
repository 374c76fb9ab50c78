"""Sparse-id generators: ranges, seeding, Zipf exactness (both samplers), the production profile."""

import numpy as np
import pytest
from scipy import stats

from hera.errors import ConfigError
from hera.workload import sparse
from hera.workload.sparse import LookupProfile, SparseConfig, make_generator


def rng(seed=0):
    return np.random.default_rng(seed)


@pytest.mark.parametrize("kind", ["uniform", "zipf", "production"])
def test_ids_in_range_int64_and_seeded(kind):
    g = make_generator(kind)
    a = g.generate(1000, 50_000, rng(1))
    assert a.dtype == np.int64 and a.shape == (50_000,) and a.min() >= 0 and a.max() < 1000
    assert np.array_equal(a, g.generate(1000, 50_000, rng(1)))
    assert not np.array_equal(a, g.generate(1000, 50_000, rng(2)))
    assert g.generate(1, 10, rng()).tolist() == [0] * 10
    assert g.generate(10, 0, rng()).size == 0


def test_uniform_is_uniform():
    a = make_generator("uniform").generate(50, 100_000, rng())
    assert stats.chisquare(np.bincount(a, minlength=50)).pvalue > 0.001


def _rank_frequencies(sampler, size, rng_):
    return np.bincount(sampler.ranks(size, rng_), minlength=sampler.rows) / size


@pytest.mark.parametrize("alpha", [0.7, 1.0, 1.3])
def test_zipf_exact_and_rejection_samplers_match_the_pmf(alpha):
    rows = 500
    pmf = np.arange(1, rows + 1, dtype=float) ** -alpha
    pmf /= pmf.sum()
    exact = make_generator("zipf", alpha=alpha).sampler(rows, rng(1))
    rej = make_generator("zipf", alpha=alpha, exact_max_rows=10).sampler(rows, rng(1))
    assert exact.exact and not rej.exact
    n = 200_000
    for s in (exact, rej):
        counts = np.bincount(s.ranks(n, rng(2)), minlength=rows)
        # pool the tail so every cell has enough expected counts
        cut = 60
        obs = np.r_[counts[:cut], counts[cut:].sum()]
        exp = np.r_[pmf[:cut], pmf[cut:].sum()] * n
        assert stats.chisquare(obs, exp).pvalue > 1e-4


def test_zipf_hot_rows_are_scattered():
    g = make_generator("zipf", alpha=1.2)
    ids = g.generate(100_000, 200_000, rng(3))
    top = np.argsort(np.bincount(ids, minlength=100_000))[::-1][:10]
    assert top.max() - top.min() > 10_000  # not the first rows of the table


def test_large_table_uses_affine_scatter(monkeypatch):
    monkeypatch.setattr(sparse, "PERMUTATION_MAX_ROWS", 1000)
    s = make_generator("zipf", alpha=1.0, exact_max_rows=10).sampler(1_000_003, rng(4))
    assert s.scatter.perm is None
    ranks = np.arange(1_000_003)
    mapped = s.scatter(ranks)
    assert np.unique(mapped).size == ranks.size  # a bijection


def test_production_profile_properties():
    prof = LookupProfile.from_pairs(sparse.PRODUCTION_PROFILE)
    x = np.geomspace(1e-9, 1, 200)
    f = prof.share(x)
    assert np.all(np.diff(f) > 0) and f[-1] == pytest.approx(1) and prof.share(np.array([0.0]))[0] == 0
    u = np.linspace(0.001, 0.999, 100)
    assert np.allclose(prof.share(prof.inverse(u)), u, rtol=1e-9)
    p = prof.row_probabilities(1000)
    assert p.sum() == pytest.approx(1) and np.all(p > 0)
    # skewed: the hottest 1 % of rows take over half of the lookups
    assert prof.share(np.array([0.01]))[0] > 0.5


def test_production_sampler_matches_row_probabilities():
    rows = 300
    p = LookupProfile.from_pairs(sparse.PRODUCTION_PROFILE).row_probabilities(rows)
    s = make_generator("production").sampler(rows, rng(5))
    n = 300_000
    counts = np.bincount(s.ranks(n, rng(6)), minlength=rows)
    cut = 40
    assert stats.chisquare(np.r_[counts[:cut], counts[cut:].sum()], np.r_[p[:cut], p[cut:].sum()] * n).pvalue > 1e-4


def test_sampler_keeps_popularity_across_draws():
    s = make_generator("production").sampler(10_000, rng(7))
    a, b = s.draw(100_000, rng(8)), s.draw(100_000, rng(9))
    top_a = set(np.argsort(np.bincount(a, minlength=10_000))[-5:])
    top_b = set(np.argsort(np.bincount(b, minlength=10_000))[-5:])
    assert len(top_a & top_b) >= 3


@pytest.mark.parametrize("call, needle", [
    (lambda: make_generator("pareto"), "unknown generator 'pareto'"),
    (lambda: make_generator("uniform", alpha=1), "'alpha' does not apply"),
    (lambda: make_generator("zipf", alpha=0), "alpha must be"),
    (lambda: make_generator("zipf", alpha=float("inf")), "alpha must be"),
    (lambda: make_generator("uniform").generate(0, 5, rng()), "rows must be"),
    (lambda: make_generator("zipf").generate(10, -1, rng()), "size must be"),
    (lambda: make_generator("production").generate(2**31, 5, rng()), "rows must be"),
    (lambda: LookupProfile((0.0, -1.0), (0.0, -1.0)), "strictly increasing"),
    (lambda: LookupProfile((-2.0, -1.0), (-2.0, -1.0)), "must end at x = 1"),
    (lambda: SparseConfig.from_dict({"kind": "zipf", "beta": 1}), "unknown key 'beta'"),
    (lambda: SparseConfig.from_dict({"kind": "uniform", "alpha": 1.1}), "'alpha' applies only"),
    (lambda: SparseConfig.from_dict(3), "expected a generator name"),
])
def test_bad_inputs(call, needle):
    with pytest.raises(ConfigError) as exc:
        call()
    assert needle in str(exc.value)


def test_sparse_config_round_trip():
    for d in ("uniform", {"kind": "zipf", "alpha": 1.2}, {"kind": "production"}):
        c = SparseConfig.from_dict(d)
        assert SparseConfig.from_dict(c.to_dict()) == c
        assert c.generator().kind == c.kind
    assert SparseConfig.from_dict({"kind": "zipf", "alpha": 1.2}).generator().alpha == 1.2
