"""``saturating-power``: the log-accuracy power law with an irreducible term, on whole-benchmark scores.

    score = g + (1 - g) * exp(-a * (C / C0)^-b - c)

the per-cluster law of Clustering-On-Difficulty (Xu et al., arXiv 2502.17262, Eq. 4), here fitted
to a whole benchmark's score. ``exp(-c)`` is the ceiling the score saturates at (COD's ablation:
dropping c costs 0.47 -> 8.85 points on BBH); with c = 0 it is ``logacc-power``'s form. ``C0`` is
the geometric mean of the fitting compute (it only conditions the fit: a is per C0).

The guess floor g is not fitted but fixed at the chance floor (:func:`capcast.laws.signal.score_floor`),
as for ``sigmoid``: with the 4-6 sizes of a typical family a fourth parameter would leave 0-2
degrees of freedom for the interval. a, b, c are fitted by minimum Pearson chi-square (asymptotically the binomial
maximum likelihood, weighted by each task's item count; scipy ``least_squares`` from a small grid of starts) with b in (0, 3] and c >= 0; when c
settles on 0 (no ceiling below 1 in sight) it is fixed there, so the fit stays identified (as
``sigmoid`` fixes its ceiling at 1). ``checkpoints`` chooses the points: every checkpoint after the
first 10% of each run (``"all"``, as ``sigmoid``; the default, chosen on Pythia, the development
data: in an exploration run with an earlier L-BFGS-B fit, 1.73 points MAE on 14 of 18 forecasts
against 3.29 on 12 for ``"final"``; the final report: 2.07 on 14) or each run's final one.

Intervals: :func:`capcast.laws.curve.with_size_uncertainty` (size sandwich with binomial weights,
size-level scatter, sizes - parameters degrees of freedom).

The COD pipeline fits the same form per cluster (``capcast/cod/cluster_law.py``, least squares with g
fitted); it is not imported here because ``cod`` sits above ``laws`` in the package layers.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit, with_size_uncertainty
from capcast.laws.logacc_power import fitting_points
from capcast.laws.sigmoid import binomial_weights
from capcast.laws.signal import score_floor

B_MAX = 3.0
C_MAX = 10.0
C_AT_ZERO = 1e-4  # a fitted c below this is "no ceiling below 1": fixed at 0


def saturating(theta: np.ndarray, flops, c0: float, floor: float) -> np.ndarray:
    """g + (1 - g) exp(-exp(log_a) (C/C0)^-b - c); ``theta`` = (log_a, b[, c])."""
    log_a, b = theta[0], theta[1]
    c = theta[2] if len(theta) > 2 else 0.0
    x = np.asarray(flops, dtype=float) / c0
    with np.errstate(over="ignore"):
        return floor + (1.0 - floor) * np.exp(-np.exp(log_a) * x ** (-b) - c)


def pearson_residuals(flops: np.ndarray, value: np.ndarray, n: np.ndarray, c0: float, floor: float):
    """(residuals, jacobian) of the Pearson chi-square, ``(y - p) sqrt(n / (p (1 - p)))``, in ``theta``
    = (log_a, b[, c]); the Jacobian analytic (scipy's finite differences took half the fit's time,
    and ``auto`` fits this law on every fold)."""
    log_x = np.log(np.asarray(flops, dtype=float) / c0)

    def residuals(theta):
        p = np.clip(saturating(theta, flops, c0, floor), 1e-6, 1 - 1e-6)
        return (value - p) * np.sqrt(n / (p * (1 - p)))

    def jacobian(theta):
        raw = saturating(theta, flops, c0, floor)
        p = np.clip(raw, 1e-6, 1 - 1e-6)
        w = np.sqrt(n / (p * (1 - p)))
        dr_dp = np.where(p == raw, -w - (value - p) * w * (1 - 2 * p) / (2 * p * (1 - p)), 0.0)  # the clip has no slope
        t = np.exp(theta[0] - theta[1] * log_x)  # a (C/C0)^-b
        de = raw - floor  # (1 - g) exp(-t - c): dp/dt = -de, dp/dc = -de
        columns = [-de * t, de * t * log_x] + ([-de] if len(theta) > 2 else [])
        return dr_dp[:, None] * np.stack(columns, axis=1)

    return residuals, jacobian


def fit_saturating(flops: np.ndarray, value: np.ndarray, n: np.ndarray, c0: float, floor: float, with_c: bool) -> np.ndarray:
    """(log_a, b[, c]) by minimum Pearson chi-square, sum n (y - p)^2 / (p (1 - p)) (asymptotically the
    binomial MLE; scipy ``least_squares``, which is far faster here than L-BFGS-B on the likelihood),
    from a small grid of starts; raises NotPredictable when none converges."""

    residuals, jacobian = pearson_residuals(flops, value, n, c0, floor)

    q = np.clip((value - floor) / (1 - floor), 1e-3, 1 - 1e-3)
    level = float(np.log(np.median(-np.log(q))))  # log of -log Q' at C0, where b does not matter
    lower, upper = [-30.0, 1e-4] + ([0.0] if with_c else []), [30.0, B_MAX] + ([C_MAX] if with_c else [])
    grids = [(level,), (0.1, 0.3, 1.0)] + ([(0.0, 0.3)] if with_c else [])  # a at C0 is the data's level: b and c vary
    best = None
    for start in itertools.product(*grids):
        start = np.clip(start, np.array(lower) + 1e-9, np.array(upper) - 1e-9)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                res = least_squares(residuals, start, jac=jacobian, bounds=(lower, upper), method="trf")
            except (ValueError, FloatingPointError):
                continue
        if np.all(np.isfinite(res.x)) and (best is None or res.cost < best.cost):
            best = res
    if best is None:
        raise NotPredictable("the saturating power law did not converge")
    return np.asarray(best.x, dtype=float)


@dataclass(frozen=True)
class SaturatingPowerLaw:
    """score = g + (1 - g) exp(-a C^-b - c), g the chance floor (COD's per-cluster law, whole benchmark)."""

    checkpoints: str = "all"  # chosen on Pythia (see the module docstring)
    auto_candidate: bool = True  # auto combines the laws that say so
    name: str = "saturating-power"
    description: str = ("COD (Xu et al. 2025) per-cluster law on the whole benchmark: score = chance + (1 - chance)*exp(-a*C^-b - c), "
                        "binomial likelihood; exp(-c) is the ceiling")

    def fit(self, series: Series) -> CurveFit:
        series = fitting_points(series, self.checkpoints)
        if len(np.unique(np.round(np.log10(series.flops), 6))) < 3:
            raise NotPredictable("fewer than 3 distinct compute values to fit a saturating power law")
        floor = score_floor(series)
        n = binomial_weights(series)
        c0 = float(np.exp(np.mean(np.log(series.flops))))
        theta = fit_saturating(series.flops, series.value, n, c0, floor, with_c=True)
        if theta[2] < C_AT_ZERO:  # no ceiling below 1 in sight: drop c so the fit stays identified
            theta = fit_saturating(series.flops, series.value, n, c0, floor, with_c=False)
        names = ("log_a", "b", "c")[: len(theta)]

        def mean_fn(th, target: Target) -> float:
            return float(saturating(th, [target.compute], c0, floor)[0])

        fit = CurveFit(
            law=self.name, names=names, theta=theta, cov=np.zeros((len(theta), len(theta))), floor=floor, resid_var=0.0, dof=1,
            mean_fn=mean_fn, x_of=lambda t: float(np.log10(t.compute)),
            curve_fn=lambda th, xs: saturating(th, 10.0 ** np.asarray(xs, float), c0, floor), n_points=len(series),
            notes=f"C0 = {c0:.3g} FLOPs; " + (f"ceiling exp(-c) = {np.exp(-theta[2]):.3f}" if len(theta) > 2 else "c fixed at 0 (ceiling 1)"),
        )
        return with_size_uncertainty(fit, series, len(theta), n)
