"""The sigmoid fit by Levenberg-Marquardt on deviance residuals (the backtests' fast path) finds
the maximum of the same binomial likelihood as BFGS on it (statsmodels, the path before)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from capcast.laws.sigmoid import _BinomialDeviance, _BoundedSigmoidLikelihood, fit_bounded_sigmoid


def _points(seed: int, floor: float = 0.25, top: float = 0.85, a: float = 0.3, b: float = 1.4):
    rng = np.random.default_rng(seed)
    x = np.repeat(np.linspace(-1.5, 0.5, 5), 3) + np.tile([-0.1, 0.0, 0.1], 5)
    p = floor + (top - floor) / (1 + np.exp(-(a + b * x)))
    return x, rng.binomial(400, p) / 400, np.full(len(x), 400.0), floor


def _bfgs_best(x, y, n, floor, ceiling, starts):
    """The likelihood's maximum by statsmodels' BFGS from every start, to a tight gradient tolerance."""
    model = _BoundedSigmoidLikelihood(y, x[:, None], n, floor, ceiling)
    best = None
    for start in starts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(start_params=np.array(start, dtype=float), method="bfgs", maxiter=5000, disp=0, gtol=1e-10,
                            skip_hessian=True)
        if best is None or res.llf > best.llf:
            best = res
    return best


@pytest.mark.parametrize("ceiling", [None, 1.0])
def test_deviance_jacobian_is_the_numeric_one(ceiling) -> None:
    x, y, n, floor = _points(0)
    deviance = _BinomialDeviance(x, y, n, floor, ceiling)
    for theta in ([0.1, 1.0, 2.0], [-1.0, 3.0, 0.5], [2.0, 0.2, 4.0]):
        theta = np.array(theta[: 3 if ceiling is None else 2])
        numeric = np.array([approx_fprime(theta, lambda t, i=i: deviance.residuals(t)[i], 1e-7) for i in range(len(y))])
        np.testing.assert_allclose(deviance.jacobian(theta), numeric, rtol=1e-4, atol=1e-4)


def test_squared_deviance_is_minus_twice_the_log_likelihood_up_to_a_constant() -> None:
    x, y, n, floor = _points(1)
    deviance = _BinomialDeviance(x, y, n, floor, None)
    model = _BoundedSigmoidLikelihood(y, x[:, None], n, floor, None)
    gaps = [np.sum(deviance.residuals(np.array(t)) ** 2) + 2 * model.loglike(np.array(t))
            for t in ([0.1, 1.0, 2.0], [-1.0, 3.0, 0.5], [2.0, 0.2, 4.0])]
    assert np.ptp(gaps) < 1e-6 * abs(gaps[0])


@pytest.mark.parametrize("seed,ceiling", [(0, None), (1, None), (2, 1.0), (3, 0.9)])
def test_fit_is_the_likelihood_maximum(seed, ceiling) -> None:
    """On data that identify the curve: the same parameters as BFGS to a tight tolerance (1e-5
    relative) and a log-likelihood no lower."""
    x, y, n, floor = _points(seed)
    fit = fit_bounded_sigmoid(x, y, n, floor, ceiling)
    assert fit.ceiling == ceiling  # the ceiling stays fitted (or fixed as asked): no runaway here
    k = 3 if ceiling is None else 2
    reference = _bfgs_best(x, y, n, floor, ceiling, [[0.0, 1.0, 1.0][:k], [0.5, 2.0, 3.0][:k]])
    np.testing.assert_allclose(fit.theta, reference.params, rtol=1e-5, atol=1e-6)
    model = _BoundedSigmoidLikelihood(y, x[:, None], n, floor, ceiling)
    assert model.loglike(fit.theta) >= reference.llf - 1e-7


def test_saturated_steps_still_reach_the_likelihood_of_bfgs() -> None:
    """A near step (chance, then the ceiling): parameters are not identified, so any optimiser
    stops somewhere along a flat valley; the fit is at least as likely as BFGS's."""
    x, y, n, floor = _points(4, a=0.0, b=25.0)
    fit = fit_bounded_sigmoid(x, y, n, floor, None)
    model = _BoundedSigmoidLikelihood(y, x[:, None], n, floor, fit.ceiling)
    k = 3 if fit.ceiling is None else 2
    reference = _bfgs_best(x, y, n, floor, fit.ceiling, [[0.0, 1.0, 1.0][:k], [0.0, 5.0, 3.0][:k]])
    assert model.loglike(fit.theta) >= reference.llf - 1e-4
