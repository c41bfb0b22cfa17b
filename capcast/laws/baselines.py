"""Naive baselines every report compares against, fitted on each model's final checkpoint only.

``linear``: a straight line in score vs log10 compute (statsmodels OLS; interval from the OLS
prediction of a new observation). ``logit-linear``: the same line in logit of the score above
chance, so it saturates at 1 and never falls below the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import statsmodels.api as sm

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit, from_z, to_z
from capcast.laws.signal import final_checkpoints, require_score_series, score_floor, subset


def _ols(x: np.ndarray, y: np.ndarray):
    if len(np.unique(x)) < 2:
        raise NotPredictable("fewer than 2 distinct model sizes")
    return sm.OLS(y, sm.add_constant(x)).fit()


@dataclass(frozen=True)
class LinearLaw:
    name: str = "linear"
    description: str = "baseline: straight line in score vs log10 compute over final checkpoints (OLS)"

    def fit(self, series: Series) -> CurveFit:
        series = subset(series, final_checkpoints(require_score_series(series)))
        x = np.log10(series.flops)
        res = _ols(x, series.value)

        def mean_fn(theta, target: Target) -> float:
            return float(theta[0] + theta[1] * np.log10(target.compute))

        dof = max(int(res.df_resid), 1)
        return CurveFit(
            law=self.name, names=("intercept", "slope"), theta=np.asarray(res.params), cov=np.asarray(res.cov_params()),
            floor=score_floor(series), resid_var=float(res.scale) if dof > 0 else 0.0, dof=dof, mean_fn=mean_fn,
            x_of=lambda t: float(np.log10(t.compute)), curve_fn=lambda th, xs: th[0] + th[1] * xs,
            n_points=len(x), link="identity",
        )


@dataclass(frozen=True)
class LogitLinearLaw:
    name: str = "logit-linear"
    description: str = "baseline: line in logit(score above chance) vs log10 compute over final checkpoints (OLS)"

    def fit(self, series: Series) -> CurveFit:
        series = subset(series, final_checkpoints(require_score_series(series)))
        floor = score_floor(series)
        x = np.log10(series.flops)
        res = _ols(x, to_z(series.value, floor))

        def mean_fn(theta, target: Target) -> float:
            return float(from_z(theta[0] + theta[1] * np.log10(target.compute), floor))

        return CurveFit(
            law=self.name, names=("intercept", "slope"), theta=np.asarray(res.params), cov=np.asarray(res.cov_params()),
            floor=floor, resid_var=float(res.scale), dof=max(int(res.df_resid), 1), mean_fn=mean_fn,
            x_of=lambda t: float(np.log10(t.compute)), curve_fn=lambda th, xs: from_z(th[0] + th[1] * xs, floor),
            n_points=len(x),
        )
