"""The scatter's confidence distribution and posterior (``capcast.laws.scatter.ScatterEvidence``)
and the forecast distribution they give (``CurveFit.confidence_distribution_t``): the
alternatives to Satterthwaite's t that benchmarks/scatter_interval.py measures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import capcast.laws.curve as curve
import capcast.laws.scatter as scatter
from capcast.laws.scatter import ScatterEvidence


def _draw(rng, tau2: float, noise: np.ndarray, design: np.ndarray) -> ScatterEvidence:
    """Size deviations from a linear model's weighted least-squares fit, the sizes' true
    deviations drawn with variance ``tau2`` around it."""
    y = design @ np.array([0.3, -0.5]) + rng.normal(0, np.sqrt(noise + tau2))
    w = 1 / noise
    beta = np.linalg.lstsq(design * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    return ScatterEvidence(y - design @ beta, noise, design, dof=len(y) - design.shape[1])


def test_q_at_the_true_scatter_is_chi_square_on_the_residual_degrees_of_freedom():
    """So its survival function there is uniform: the confidence distribution holds the true
    scatter below its u-quantile in a share u of the draws (what its use as a distribution rests on)."""
    rng = np.random.default_rng(7)
    noise = np.array([0.5, 0.1, 0.02, 0.01, 0.005, 0.004])
    design = np.column_stack([np.ones(6), np.linspace(-1, 1, 6)])
    tau2 = 0.03
    levels = np.array([stats.chi2.sf(_draw(rng, tau2, noise, design).q(tau2), 4) for _ in range(3000)])
    for u in (0.1, 0.5, 0.9):
        assert np.mean(levels <= u) == pytest.approx(u, abs=0.025)


def test_the_confidence_quantiles_rise_from_a_mass_at_zero_where_the_deviations_are_small():
    noise = np.full(5, 0.01)
    design = np.column_stack([np.ones(5), np.linspace(-1, 1, 5)])
    quiet = ScatterEvidence(np.zeros(5), noise, design, dof=3)
    assert np.all(quiet.quantiles == 0.0)  # Q(0) = 0: the scatter's distribution is all at 0
    loud = ScatterEvidence(np.array([0.5, -0.6, 0.4, -0.5, 0.3]), noise, design, dof=3)
    q = loud.quantiles
    assert np.all(np.diff(q) >= 0) and q[0] > 0  # Q(0) far above its dof: no mass at 0
    # equal noise v: Q(tau2) = S / (v + tau2), S the residual sum of squares, so the u-quantile
    # solves S / (v + tau2) = chi2.isf(u, dof)
    residual = loud.deviations - design @ np.linalg.lstsq(design, loud.deviations, rcond=None)[0]
    j = len(q) // 2
    level = (j + 0.5) / len(q)
    assert q[j] == pytest.approx(residual @ residual / stats.chi2.isf(level, 3) - 0.01, rel=0.02)


def test_the_posterior_follows_the_data_where_they_measure_the_scatter_and_the_prior_where_they_cannot(monkeypatch):
    rng = np.random.default_rng(3)
    design = np.ones((40, 1))
    precise = ScatterEvidence(rng.normal(0, np.sqrt(0.25 + 1e-4), 40), np.full(40, 1e-4), design, dof=39)
    monkeypatch.setattr(scatter, "SCATTER_PRIOR_SD", 0.1)
    median = precise.posterior_quantiles[scatter.CD_POINTS // 2]
    assert np.sqrt(median) == pytest.approx(0.5, rel=0.25)  # 40 precise sizes: the prior's 0.1 does not hold it down
    vague = ScatterEvidence(np.array([2.0, -2.0, 1.0]), np.full(3, 100.0), np.ones((3, 1)), dof=2)
    prior_median = 0.1 * stats.halfnorm.ppf(0.5)
    assert np.sqrt(vague.posterior_quantiles[scatter.CD_POINTS // 2]) == pytest.approx(prior_median, rel=0.1)


def test_the_confidence_distribution_t_matches_the_scale_mixture_at_its_90_percent_quantiles(monkeypatch):
    """One sigmoid fit on a simulated family: the t the rule returns has the 95% quantile of the
    mixture of normals over the scatter's confidence quantiles; Satterthwaite's t keeps at least
    sizes - parameters degrees of freedom."""
    from capcast.laws.sigmoid import SigmoidLaw
    from capcast.testing.simulate import simulate_family
    from capcast.tables.scores import build_series, read_scores

    family = simulate_family(np.random.default_rng(5), n_sizes=5, regime="mid")
    frame = read_scores(family.scores)
    fit = SigmoidLaw().fit(build_series(frame[frame["run"] != "target"], "task", "acc"))
    target = family.target
    monkeypatch.setattr(curve, "SCATTER_INTERVAL", "satterthwaite")
    _, _, sd_s, dof_s = fit.predictive(target)
    monkeypatch.setattr(curve, "SCATTER_INTERVAL", "confidence-distribution")
    _, _, sd_c, dof_c = fit.predictive(target)
    assert dof_s >= fit.dof
    quantile_c = sd_c * stats.t.ppf(0.95, dof_c)
    # the mixture's 95% quantile: the known variance at the quantiles' share at 0, more above
    evidence = fit.scatter_evidence
    grad = fit._z_gradient(target)
    per_scatter = 1 + grad @ fit.cov_per_scatter @ grad
    known = sd_s**2 - fit.resid_var * per_scatter
    sds = np.sqrt(known + evidence.quantiles * per_scatter)
    assert np.mean(stats.norm.cdf(quantile_c / sds)) == pytest.approx(0.95, abs=1e-6)
