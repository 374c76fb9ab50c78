"""Arrivals: Poisson in continuous time, thinning for λ(t), traces, config validation."""

import numpy as np
import pytest
from scipy import stats

from hera.errors import ConfigError
from hera.workload import arrivals
from hera.workload.arrivals import ArrivalConfig, Diurnal, Steps, Trace


def rng(seed=0):
    return np.random.default_rng(seed)


def test_poisson_mean_rate_and_exponential_gaps():
    rate = 250.0
    t = arrivals.poisson(rate, 20_000, rng(1))
    assert t.dtype == np.float64 and t.size == 20_000 and np.all(np.diff(t) > 0) and t[0] > 0
    gaps = np.diff(np.r_[0.0, t])
    assert abs(t.size / t[-1] - rate) / rate < 0.03
    assert stats.kstest(gaps, "expon", args=(0, 1 / rate)).pvalue > 0.01
    # continuous time, not DeepRecSys' integer-millisecond gaps
    assert np.mean(np.isclose(gaps * 1e3, np.round(gaps * 1e3), atol=1e-9)) < 0.01
    # the KS test has power: integer-ms gaps at 250 qps are rejected
    ms = np.random.default_rng(1).poisson(1000 / rate, 20_000) / 1e3
    assert stats.kstest(ms, "expon", args=(0, 1 / rate)).pvalue < 1e-6


def test_poisson_seeded_and_validated():
    assert np.array_equal(arrivals.poisson(10, 50, rng(5)), arrivals.poisson(10, 50, rng(5)))
    for bad in (0, -1, float("nan"), True):
        with pytest.raises(ConfigError, match="rate_qps"):
            arrivals.poisson(bad, 10, rng())
    with pytest.raises(ConfigError, match="n must be"):
        arrivals.poisson(10, -3, rng())


def test_poisson_until_covers_duration():
    t = arrivals.poisson_until(500.0, 20.0, rng(2))
    assert t.max() <= 20.0 and abs(t.size - 10_000) < 4 * 100


def _window_check(t, rate, duration, window):
    """Observed arrivals per window vs the integral of λ: each within 4 sigma (Poisson)."""
    edges = np.arange(0, duration + 1e-9, window)
    counts, _ = np.histogram(t, edges)
    expected = np.array([rate.integral(a, b) for a, b in zip(edges[:-1], edges[1:])])
    z = (counts - expected) / np.sqrt(expected)
    assert np.all(np.abs(z) < 4), z
    return counts, expected


def test_thinning_diurnal_matches_rate_in_windows():
    rate = Diurnal(mean_qps=400.0, amplitude=0.8, period_s=20.0)
    t = arrivals.time_varying(rate, 40.0, rng(3))
    assert np.all(np.diff(t) >= 0) and t.max() <= 40.0
    counts, expected = _window_check(t, rate, 40.0, 2.0)
    assert counts.max() > 3 * counts.min()  # the curve really varies
    assert abs(t.size - rate.integral(0, 40)) < 4 * np.sqrt(rate.integral(0, 40))


def test_thinning_steps_and_plain_callable():
    steps = Steps((0.0, 5.0, 10.0), (100.0, 800.0, 0.0))
    t = arrivals.time_varying(steps, 15.0, rng(4))
    _window_check(t[t < 10], steps, 10.0, 1.0)
    assert not np.any(t > 10.0)  # zero rate after 10 s
    fn = lambda x: 300.0 + 200.0 * np.cos(x)  # noqa: E731  (a plain callable: bound from a grid)
    t2 = arrivals.time_varying(fn, 30.0, rng(5))
    expected = 300 * 30 + 200 * np.sin(30.0)
    assert abs(t2.size - expected) < 4 * np.sqrt(expected)


def test_thinning_refuses_a_bound_that_is_too_low():
    with pytest.raises(ConfigError, match="exceeds the thinning bound"):
        arrivals.time_varying(lambda x: np.full_like(x, 50.0), 10.0, rng(), rate_max_qps=10.0)
    with pytest.raises(ConfigError, match="negative"):
        arrivals.time_varying(lambda x: -np.ones_like(x), 10.0, rng())


def test_trace_csv_constant_and_linear(tmp_path):
    p = tmp_path / "trace.csv"
    p.write_text("t_s,rate_qps\n0,100\n10,300\n20,300\n")
    lin, const = Trace.from_csv(p, "linear"), Trace.from_csv(p, "constant")
    assert np.allclose(lin(np.array([0, 5, 10, 25])), [100, 200, 300, 300])
    assert np.allclose(const(np.array([0, 5, 9.99, 10, 25])), [100, 100, 100, 300, 300])
    assert lin.max_qps(30) == 300 and const.max_qps(5) == 100
    t = arrivals.time_varying(str(p), 20.0, rng(6))  # a path: linear trace
    expected = (100 + 300) / 2 * 10 + 300 * 10  # ∫ λ over [0, 20]
    assert abs(t.size - expected) < 4 * np.sqrt(expected)


@pytest.mark.parametrize("text, needle", [
    ("time,rate\n0,1\n", "lacks column"),
    ("t_s,rate_qps\n0,1\n1,abc\n", "line 3: rate_qps 'abc'"),
    ("t_s,rate_qps\n0,1\n5,2\n3,2\n", "line 4: t_s must increase"),
    ("t_s,rate_qps\n0,1\n5,-2\n", "line 3: rate_qps must be >= 0"),
    ("t_s,rate_qps\n", "no data rows"),
])
def test_bad_trace_files(tmp_path, text, needle):
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        Trace.from_csv(p)
    assert needle in str(exc.value)


def test_missing_trace_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        arrivals.time_varying(tmp_path / "nope.csv", 1.0, rng())


def test_arrival_config(tmp_path):
    c = ArrivalConfig.from_dict({"kind": "diurnal", "rate_qps": 50, "amplitude": 0.2, "period_s": 10})
    assert ArrivalConfig.from_dict(c.to_dict()) == c
    t = c.generate(rng(), duration_s=20)
    assert 600 < t.size < 1400
    p = ArrivalConfig()
    assert p.generate(rng(), n=5).size == 5
    s = ArrivalConfig.from_dict({"kind": "steps", "step_times_s": [0, 1], "step_rates_qps": [10, 20]})
    assert s.rate_function()(np.array([0.5, 1.5])).tolist() == [10, 20]
    with pytest.raises(ConfigError, match="unknown key 'rate'"):
        ArrivalConfig.from_dict({"kind": "poisson", "rate": 3})
    with pytest.raises(ConfigError, match="'amplitude' does not apply to kind 'poisson'"):
        ArrivalConfig.from_dict({"kind": "poisson", "amplitude": 0.3})
    with pytest.raises(ConfigError, match="unknown kind"):
        ArrivalConfig.from_dict({"kind": "bursty"})
    with pytest.raises(ConfigError, match="amplitude"):
        ArrivalConfig.from_dict({"kind": "diurnal", "amplitude": 2})
    with pytest.raises(ConfigError, match="needs trace_path"):
        ArrivalConfig.from_dict({"kind": "trace"})
    with pytest.raises(ConfigError, match="start at 0"):
        ArrivalConfig.from_dict({"kind": "steps", "step_times_s": [1], "step_rates_qps": [3]})
    with pytest.raises(ConfigError, match="needs duration_s"):
        s.generate(rng())


def test_summarize_and_windows():
    t = arrivals.poisson(100, 3000, rng(7))
    st = arrivals.summarize(t, 100)
    assert st["n"] == 3000 and abs(st["gap_cv"] - 1) < 0.1 and st["ks_pvalue_exponential"] > 0.01
    w = arrivals.windowed_rates(t, float(t[-1]), 5.0)
    assert w["arrivals"].sum() == 3000
