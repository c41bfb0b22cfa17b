"""The sigmoid fit's fast path (analytic gradient, each distinct start fitted once, the covariance
computed for the kept start only) gives what statsmodels' numeric path gives."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from statsmodels.base.model import GenericLikelihoodModel
from statsmodels.tools.numdiff import approx_fprime

from capcast.laws.sigmoid import _BoundedSigmoidLikelihood, fit_bounded_sigmoid


def _points(seed: int = 0, floor: float = 0.25):
    rng = np.random.default_rng(seed)
    x = np.repeat(np.linspace(-1.5, 0.5, 5), 3) + np.tile([-0.1, 0.0, 0.1], 5)
    p = floor + (0.85 - floor) / (1 + np.exp(-(0.3 + 1.4 * x)))
    n = np.full(len(x), 400.0)
    return x, rng.binomial(400, p) / 400, n, floor


@pytest.mark.parametrize("ceiling", [None, 1.0, 0.9])
def test_analytic_gradient_is_the_numeric_one(ceiling) -> None:
    x, y, n, floor = _points()
    model = _BoundedSigmoidLikelihood(y, x[:, None], n, floor, ceiling)
    for theta in ([0.1, 1.0, 2.0], [-1.0, 3.0, 0.5], [2.0, 0.2, 4.0], [-12.0, 0.5, 1.0]):  # the last: the clip at 1e-9
        theta = np.array(theta[: 3 if ceiling is None else 2])
        numeric = approx_fprime(theta, model.loglike, centered=True)
        assert model.score(theta) == pytest.approx(numeric, rel=1e-5, abs=1e-4)


class _NumericLikelihood(_BoundedSigmoidLikelihood):
    score = GenericLikelihoodModel.score  # statsmodels' numeric gradient, as before the fast path


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_fit_equals_statsmodels_numeric_multistart_fit(seed) -> None:
    """Every start (repeats included), numeric gradients, statsmodels' own covariance: the same
    parameters and covariance within 1e-6 relative."""
    x, y, n, floor = _points(seed)
    fast = fit_bounded_sigmoid(x, y, n, floor, 1.0)
    from scipy.special import logit

    q = np.clip((y - floor) / (1 - floor), 0.02, 0.98)
    slope, intercept = np.polyfit(x, logit(q), 1)
    assert slope > 0.5  # so the first two starts repeat each other: the case the fast path skips
    model = _NumericLikelihood(y, x[:, None], n, floor, 1.0)
    best = None
    for start in ([intercept, slope], [intercept, max(slope, 0.5)], [0.0, 1.0]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(start_params=np.array(start), method="bfgs", maxiter=2000, disp=0)
        if best is None or res.llf > best.llf:
            best = res
    pearson = np.sum(n * (y - fast.fitted) ** 2 / (fast.fitted * (1 - fast.fitted)))
    dispersion = max(pearson / (len(y) - 2), 1.0)
    assert fast.theta == pytest.approx(best.params, rel=1e-6)
    np.testing.assert_allclose(fast.cov, best.cov_params() * dispersion, rtol=1e-5)


def test_covariance_is_statsmodels_inverse_hessian_at_the_same_point() -> None:
    x, y, n, floor = _points(3)
    model = _BoundedSigmoidLikelihood(y, x[:, None], n, floor, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model.fit(start_params=np.array([0.0, 1.0, 1.0]), method="bfgs", maxiter=2000, disp=0)
    np.testing.assert_array_equal(model.covariance(res.params), res.cov_params())
