"""Estimators checked against simulations of the sampling designs they claim to handle."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capcast.passuntil import estimators as est


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def test_simulator_matches_negative_binomial_mean(rng):
    c, n = est.simulate_passuntil(np.full(20000, 0.01), r=3, cap=10**9, rng=rng)
    assert np.all(c == 3)
    # E[K] = r/p for the r-th success.
    assert abs(n.mean() - 300) < 5 * 300 * math.sqrt(0.99 / 3) / math.sqrt(20000) + 1


@pytest.mark.parametrize("p", [1e-5, 1e-3, 0.05])
def test_unbiased_estimator_is_unbiased_and_mle_is_not(rng, p):
    trials = 40000
    c, n = est.simulate_passuntil(np.full(trials, p), r=2, cap=10**9, rng=rng)
    unbiased = est.unbiased_pass_rate(c, n, r=2)
    mle = est.mle_pass_rate(c, n)
    se = unbiased.std() / math.sqrt(trials)
    assert abs(unbiased.mean() - p) < 4 * se
    # r/K overshoots: E[2/K] is well above p for the negative binomial.
    assert mle.mean() > p * 1.15


def test_r1_mle_bias_matches_geometric_formula(rng):
    # With r = 1, E[1/K] = p ln(1/p) / (1 - p) for geometric K (the methods note: ~11x at 1e-5).
    p = 1e-3
    c, n = est.simulate_passuntil(np.full(200000, p), r=1, cap=10**9, rng=rng)
    expected = p * math.log(1 / p) / (1 - p)
    assert est.mle_pass_rate(c, n).mean() == pytest.approx(expected, rel=0.05)


def test_unbiased_with_cap_censoring(rng):
    # Cap hit often (p * cap = 1.5 < r = 3): mixture of inverse and binomial outcomes stays unbiased.
    p, cap, trials = 1e-3, 1500, 60000
    c, n = est.simulate_passuntil(np.full(trials, p), r=3, cap=cap, rng=rng)
    assert 0.1 < np.mean(c < 3) < 0.9
    unbiased = est.unbiased_pass_rate(c, n, r=3)
    assert abs(unbiased.mean() - p) < 4 * unbiased.std() / math.sqrt(trials)


def test_truncate_at_rth_success_recovers_sequential_counts():
    outcomes = [False, True, False, False, True, True, False, True]
    assert est.truncate_at_rth_success(outcomes, 2) == (2, 5)
    assert est.truncate_at_rth_success(outcomes, 5) == (4, 8)
    with pytest.raises(ValueError, match="truncate"):
        est.unbiased_pass_rate([4], [8], r=2)


@pytest.mark.parametrize("p", [2e-4, 0.01, 0.2])
def test_passuntil_interval_coverage(rng, p):
    level, trials = 0.9, 4000
    c, n = est.simulate_passuntil(np.full(trials, p), r=3, cap=5000, rng=rng)
    lo, hi = est.passuntil_interval(c, n, r=3, level=level)
    coverage = np.mean((lo <= p) & (p <= hi))
    # Exact intervals are conservative: coverage at least nominal (minus Monte Carlo slack).
    assert coverage >= level - 3 * math.sqrt(level * (1 - level) / trials)
    assert coverage < 0.995  # and not trivially wide


def test_clopper_pearson_and_jeffreys_coverage(rng):
    p, n_samples, trials = 0.03, 200, 5000
    c = rng.binomial(n_samples, p, size=trials)
    n = np.full(trials, n_samples)
    for lo, hi in (est.clopper_pearson(c, n, 0.9), est.jeffreys_interval(c, n, 0.9)):
        assert np.mean((lo <= p) & (p <= hi)) >= 0.88
    lo, hi = est.clopper_pearson([0, 10], [10, 10], 0.9)
    assert lo[0] == 0.0 and hi[1] == 1.0
    assert hi[0] == pytest.approx(1 - 0.05 ** (1 / 10))  # closed form for c = 0


def test_negative_binomial_interval_tighter_than_binomial_above():
    lo_nb, hi_nb = est.negative_binomial_interval([3], [1000], 0.9)
    lo_cp, hi_cp = est.clopper_pearson([3], [1000], 0.9)
    assert lo_nb[0] == pytest.approx(lo_cp[0])
    assert hi_nb[0] < hi_cp[0]


def test_pass_at_k_matches_combinatorics_and_edges():
    n, c = np.array([20, 20, 20, 5]), np.array([0, 3, 18, 5])
    for k in (1, 2, 5):
        expected = [1 - math.comb(int(ni - ci), k) / math.comb(int(ni), k) for ni, ci in zip(n, c)]
        assert est.pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
    assert est.pass_at_k([100], [7], 1)[0] == pytest.approx(0.07)
    with pytest.raises(ValueError, match="beta-binomial"):
        est.pass_at_k([3], [1], 4)


def test_pass_at_k_unbiased_in_simulation(rng):
    p, n_samples, k, trials = 0.02, 50, 10, 20000
    c = rng.binomial(n_samples, p, size=trials)
    values = est.pass_at_k(np.full(trials, n_samples), c, k)
    truth = 1 - (1 - p) ** k
    assert abs(values.mean() - truth) < 4 * values.std() / math.sqrt(trials)


def test_beta_binomial_recovers_pass_at_k_beyond_samples(rng):
    a, b, m = 0.4, 30.0, 400
    p = rng.beta(a, b, size=m)
    n = rng.integers(50, 200, size=m)
    c = rng.binomial(n, p)
    fit = est.fit_beta_binomial(c, n)
    truth = est.BetaBinomialFit(a, b, 0.0)
    for k in (1, 100, 1000):  # k far above the 50-200 samples drawn
        assert fit.pass_at_k(k) == pytest.approx(float(truth.pass_at_k(k)), rel=0.15)
    # the closed form equals the expectation it claims to be
    grid = rng.beta(a, b, size=400000)
    assert float(truth.pass_at_k(50)) == pytest.approx(np.mean(1 - (1 - grid) ** 50), rel=0.01)


def test_precision_priority_prefers_hardest_unresolved():
    c = np.array([3, 0, 1, 0])
    n = np.array([100, 1000, 1000, 100])
    priority = est.precision_priority(c, n, r=3)
    assert priority[0] == 0.0  # resolved
    assert priority[3] > priority[1] > 0  # fewer samples spent on an equally unsolved instance
    assert priority[1] > priority[2]  # unsolved beats partly solved at equal spend


def test_task_score_interval_covers_true_mean(rng):
    p = rng.beta(0.3, 50, size=100)
    covered = 0
    for _ in range(60):
        c, n = est.simulate_passuntil(p, r=3, cap=20000, rng=rng)
        score = est.task_score(c, n, r=3, level=0.9)
        covered += score.lower <= p.mean() <= score.upper
        assert score.n_instances == 100
    assert covered >= 50  # nominal 54 of 60; the r >= 3 variance bound makes it conservative
    mle = est.task_score(c, n, r=3, estimator="mle")
    assert mle.value > score.value  # r/K overshoots the unbiased mean


def test_bad_counts_raise():
    with pytest.raises(ValueError):
        est.mle_pass_rate([5], [3])
