"""``power``: a loss that falls as a power of compute toward a floor.

    loss = E + A * (C / C0)^-alpha        E >= 0, A > 0, 0 <= alpha <= 3

for loss-like metrics (lower is better, bounded below by 0): ``bpb_gold``, ``loss``, and, as
capcast's forecasts orient them (``capcast.forecasting.orient``), ``-logprob_gold`` and
``ppl - 1``. ``C0`` is the geometric mean of the fitting compute (it keeps A near the data).

Fitted on each run's final checkpoint (a run's earlier checkpoints are not compute-optimal points
of the same curve, and their scatter is not independent) with scipy ``least_squares`` on
log loss, from a small grid of starts. The interval is the delta method (the Jacobian at the
optimum, scaled by the residual variance) plus the residual scatter, with a t quantile on
``n_sizes - 3`` degrees of freedom (at least 1): checkpoints of one size are not independent
evidence. Fewer than 4 sizes, data that do not fall with compute, or a fit whose covariance is
not finite (the floor and the amplitude trade off) are not predictable.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit
from capcast.laws.signal import check_loss_signal, final_checkpoints, require_loss_series, subset

MIN_SIZES = 4  # three parameters and at least one degree of freedom
ALPHA_MAX = 3.0


def power_curve(theta: np.ndarray, compute: np.ndarray, c0: float) -> np.ndarray:
    e, log_a, alpha = theta
    return e + np.exp(log_a) * (np.asarray(compute, dtype=float) / c0) ** -alpha


@dataclass(frozen=True)
class PowerLaw:
    """E + A * C^-alpha on each run's final checkpoint (see the module docstring)."""

    name: str = "power"
    description: str = "loss vs compute: E + A * C^-alpha toward a floor E >= 0 (least squares on log loss), for losses"
    scale: str = "loss"  # the metrics it forecasts: losses, lower is better (capcast.metrics)

    def fit(self, series: Series) -> CurveFit:
        series = require_loss_series(series)
        if np.any(series.value <= 0):
            raise NotPredictable(f"metric {series.metric!r} has values <= 0; the power law fits positive losses (lower is better)")
        check_loss_signal(series)
        series = subset(series, final_checkpoints(series))
        n_sizes = len(np.unique(series.params))
        if n_sizes < MIN_SIZES:
            raise NotPredictable(f"{n_sizes} model sizes; the power law (floor, amplitude, exponent) needs at least {MIN_SIZES}")
        flops, loss = np.asarray(series.flops, float), np.asarray(series.value, float)
        c0 = float(np.exp(np.mean(np.log(flops))))
        theta, cov, s2 = _fit(flops, loss, c0)
        fitted = power_curve(theta, flops, c0)
        k = len(theta)
        resid_var = float(np.sum((loss - fitted) ** 2) / max(len(loss) - k, 1))

        def mean_fn(theta, target: Target) -> float:
            if target.compute is None:
                raise NotPredictable("the power law needs the target's compute (params and tokens, or flops)")
            return float(power_curve(theta, np.array([target.compute]), c0)[0])

        return CurveFit(
            law=self.name, names=("E", "log_A", "alpha"), theta=theta, cov=cov, floor=0.0, resid_var=resid_var,
            dof=max(n_sizes - k, 1), mean_fn=mean_fn, x_of=lambda t: float(np.log10(t.compute)),
            curve_fn=lambda theta, xs: power_curve(theta, 10.0 ** np.asarray(xs, dtype=float), c0),
            n_points=len(loss), link="identity",
            notes=f"power law on {len(loss)} final checkpoints of {n_sizes} sizes; log residual sd {np.sqrt(s2):.3g}",
        )


def _fit(flops: np.ndarray, loss: np.ndarray, c0: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(theta, covariance, residual variance of log loss); NotPredictable when not identified."""
    log_loss = np.log(loss)
    e_max = float(np.min(loss)) * (1 - 1e-3)

    def residuals(theta):
        with np.errstate(all="ignore"):
            pred = power_curve(theta, flops, c0)
        return np.log(np.clip(pred, 1e-12, None)) - log_loss

    lower, upper = np.array([0.0, -30.0, 0.0]), np.array([e_max, 30.0, ALPHA_MAX])
    best = None
    for e_share in (0.0, 0.5, 0.9):
        for alpha in (0.05, 0.2, 0.5):
            e = e_share * e_max
            log_a = float(np.log(max(float(np.max(loss)) - e, 1e-6)))
            start = np.clip([e, log_a, alpha], lower + 1e-9, upper - 1e-9)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = least_squares(residuals, start, bounds=(lower, upper), x_scale="jac")
            if best is None or res.cost < best.cost:
                best = res
    theta = np.asarray(best.x, dtype=float)
    resid = residuals(theta)
    s2 = float(np.sum(resid**2) / max(len(resid) - len(theta), 1))
    jac = np.asarray(best.jac, dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            info = jac.T @ jac
            cov = np.linalg.inv(info) * max(s2, 1e-12) if np.linalg.cond(info) < 1e14 else np.full((3, 3), np.nan)
        except np.linalg.LinAlgError:
            cov = np.full((3, 3), np.nan)
    if not np.all(np.isfinite(cov)):
        raise NotPredictable("the power law is not identified on these sizes (its floor and amplitude trade off); "
                             "add sizes that show the loss bending toward its floor")
    return theta, cov, s2
