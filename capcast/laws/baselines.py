"""Naive baselines every report compares against, fitted on each model's final checkpoint only.

``linear``: a straight line in score vs log10 compute (statsmodels OLS; interval from the OLS
prediction of a new observation). ``logit-linear``: the same line in the (empirical) logit of
the score above chance, weighted by each point's item noise, so it saturates at 1 and never falls
below the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm

from capcast.laws.base import NotPredictable, Series
from capcast.laws.curve import CurveFit, from_z, with_size_uncertainty
from capcast.laws.scatter import empirical_z, link_noise_var
from capcast.laws.sigmoid import binomial_weights
from capcast.laws.signal import final_checkpoints, require_score_series, score_floor, subset


def _ols(x: np.ndarray, y: np.ndarray):
    if len(np.unique(x)) < 2:
        raise NotPredictable("fewer than 2 distinct model sizes")
    return sm.OLS(y, sm.add_constant(x)).fit()


def fit_line(law: str, series: Series, logit: bool) -> CurveFit:
    """OLS line vs log10 compute over final checkpoints: on the score itself (``logit=False``,
    intervals in score units) or on logit of the score above the floor (``logit=True``)."""
    series = subset(series, final_checkpoints(require_score_series(series)))
    floor = score_floor(series)
    x = np.log10(series.flops)
    items = binomial_weights(series)

    def line(theta, xs):
        z = theta[0] + theta[1] * np.asarray(xs, dtype=float)
        return from_z(z, floor) if logit else z

    def fit_of(res):
        return CurveFit(
            law=law, names=("intercept", "slope"), theta=np.asarray(res.params), cov=np.asarray(res.cov_params()),
            floor=floor, resid_var=float(res.scale), dof=max(int(res.df_resid), 1),
            mean_fn=lambda theta, target: float(line(theta, np.log10(target.compute))),
            x_of=lambda t: float(np.log10(t.compute)), curve_fn=line, n_points=len(x), link="logit" if logit else "identity",
        )

    if not logit:  # OLS weighs every final checkpoint alike: the sandwich uses those weights, sizes as clusters
        return with_size_uncertainty(fit_of(_ols(x, series.value)), series, 2, items, weights=np.ones(len(series)))
    # The logit line: on the empirical logit (finite at the floor and at 1, the scale its scatter is
    # measured on), weighted by each point's item noise there (a guessing score near chance is
    # mostly noise in logit), from an unweighted start; the sandwich uses the same weights.
    z = empirical_z(series.value, items, floor)
    start = fit_of(_ols(x, z))
    weights = 1.0 / link_noise_var(start, np.array([start.mean_fn(start.theta, t) for t in _targets(series)]), items)
    res = sm.WLS(z, sm.add_constant(x), weights=weights).fit()
    return with_size_uncertainty(fit_of(res), series, 2, items, weights=weights)


def _targets(series: Series) -> list:
    from capcast.laws.base import Target

    return [Target(params=float(n), tokens=float(d), flops=float(c)) for n, d, c in zip(series.params, series.tokens, series.flops)]


@dataclass(frozen=True)
class LinearLaw:
    name: str = "linear"
    description: str = "baseline: straight line in score vs log10 compute over final checkpoints (OLS)"

    def fit(self, series: Series) -> CurveFit:
        return fit_line(self.name, series, logit=False)


@dataclass(frozen=True)
class LogitLinearLaw:
    name: str = "logit-linear"
    description: str = "baseline: line in logit(score above chance) vs log10 compute over final checkpoints (OLS)"

    def fit(self, series: Series) -> CurveFit:
        return fit_line(self.name, series, logit=True)
