"""``logacc-power``: a power law on normalised log-accuracy (Krajewski et al., arXiv 2512.08894, ICLR 2026).

With ``Q' = (Q - chance) / (1 - chance)`` (the score above the chance floor, as a share of the room
above it):

    -log Q' = A * C^-alpha                          (one tokens-per-parameter ratio)
    -log Q' = A / N^alpha + B / D^beta              (several ratios: N and D vary independently)

i.e. ``Q = chance + (1 - chance) * exp(-A C^-alpha)``: no irreducible term, the score is assumed
to reach 1. As the paper does it:

* which points: the paper fits one point per trained model (``checkpoints="final"``); the default
  ``"all"`` uses every checkpoint after the first 10% of each run, as ``sigmoid`` does, because on
  Pythia (the development data, where every size trains on the same 300B tokens, so final
  checkpoints give only 5 points) an exploration run forecast 6.9b and 12b at 1.73 points MAE (12
  of 18) against 3.57 (10 of 18) for final checkpoints only (the final report, with later code:
  2.29 then; its current figure is its row in ``benchmarks/forecast_accuracy.md``); with intermediate checkpoints N and D
  vary independently, so the two-ratio form below applies;
* only points more than 5% above chance (``Q' > 0.05``, their rule: nearer chance log(-log Q')
  is noise);
* the one-ratio form by ordinary least squares of ``log(-log Q')`` on ``log C``; the two-ratio form
  (chosen when the runs vary N and D independently, :func:`capcast.laws.loss_law.independent_n_and_d`)
  by a Huber loss (delta 1e-3) on ``log(-log Q')`` from a grid of 81 (alpha, beta) starting
  points (A and B solved linearly at each; the best one refined).

Intervals are capcast's own (the paper gives none), built like every score law's
(:func:`capcast.laws.curve.with_size_uncertainty`): the fit is least squares in ``u = log(-log Q')``,
which is weighted least squares in the logit link with weights ``(du/dz)^2 = ((1 - q) / log q)^2``;
the size sandwich, the size-level scatter and sizes - parameters degrees of freedom follow.
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, nnls

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit, with_size_uncertainty
from capcast.laws.loss_law import C_SCALE, D_SCALE, N_SCALE, independent_n_and_d
from capcast.laws.sigmoid import binomial_weights
from capcast.laws.signal import drop_early_checkpoints, final_checkpoints, require_score_series, score_floor, subset

MIN_ABOVE_CHANCE = 0.05  # Krajewski et al.: fit only points with Q' > 0.05
HUBER_DELTA = 1e-3  # Krajewski et al.'s Huber delta on log(-log Q') for the two-ratio form
EXPONENT_MAX = 3.0


def normalised(value: np.ndarray, floor: float, n_items: np.ndarray) -> np.ndarray:
    """Q' = (Q - floor) / (1 - floor), kept half an item below 1 so that log(-log Q') stays finite."""
    q = (np.asarray(value, dtype=float) - floor) / (1.0 - floor)
    return np.minimum(q, 1.0 - 0.5 / np.asarray(n_items, dtype=float))


def fitting_points(series: Series, checkpoints: str) -> Series:
    """The checkpoints a fit uses: each run's final one (``"final"``) or all after the first 10%."""
    series = require_score_series(series)
    if checkpoints == "final":
        return subset(series, final_checkpoints(series))
    if checkpoints == "all":
        return drop_early_checkpoints(series)
    raise ValueError(f"checkpoints must be 'final' or 'all', got {checkpoints!r}")


def power_curve(theta: np.ndarray, params, tokens, flops, joint: bool) -> np.ndarray:
    """-log Q' at the given inputs: A (C/C_SCALE)^-alpha, or A (N/N_SCALE)^-alpha + B (D/D_SCALE)^-beta."""
    if joint:
        log_a, alpha, log_b, beta = theta
        return np.exp(log_a) * (np.asarray(params, float) / N_SCALE) ** -alpha + np.exp(log_b) * (np.asarray(tokens, float) / D_SCALE) ** -beta
    log_a, alpha = theta
    return np.exp(log_a) * (np.asarray(flops, float) / C_SCALE) ** -alpha


def fit_one_ratio(flops: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(log A, alpha) by OLS of u = log(-log Q') on log C (their fit)."""
    slope, intercept = np.polyfit(np.log(flops / C_SCALE), u, 1)
    return np.array([intercept, -slope])


def fit_two_ratios(params: np.ndarray, tokens: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(log A, alpha, log B, beta) by a Huber loss on u = log(-log Q').

    Starts: their grid of 81 points, as 9 x 9 (alpha, beta) pairs with A and B solved by
    non-negative least squares on -log Q' at each (linear there, so a grid point costs a
    microsecond); the best pair is refined (a full Huber fit from each of 81 starts took
    seconds per fit, too slow for ``auto``'s folds; refining the 3 best, as before, reached the same
    Huber cost to 1e-6 from all three on each of 12 simulated fits, at three times the cost: an
    exploration on the backtest_scale families, not a committed benchmark)."""

    def residuals(theta):
        with np.errstate(all="ignore"):
            return np.log(np.clip(power_curve(theta, params, tokens, None, True), 1e-300, None)) - u

    x_n, x_d, target = np.log(params / N_SCALE), np.log(tokens / D_SCALE), np.exp(u)

    def jacobian(theta):  # analytic: finite differences made these refinements a third of auto's time
        log_a, alpha, log_b, beta = theta
        with np.errstate(all="ignore"):
            by_n, by_d = np.exp(log_a - alpha * x_n), np.exp(log_b - beta * x_d)
            total = np.clip(by_n + by_d, 1e-300, None)
            return np.column_stack([by_n, -by_n * x_n, by_d, -by_d * x_d]) / total[:, None]
    grid = []
    for alpha, beta in itertools.product(np.linspace(0.05, 1.2, 9), np.linspace(0.05, 1.2, 9)):
        design = np.column_stack([np.exp(-alpha * x_n), np.exp(-beta * x_d)])
        coef, _ = nnls(design, target)
        coef = np.maximum(coef, 1e-6 * max(float(np.mean(target)), 1e-12))
        theta = np.array([np.log(coef[0]), alpha, np.log(coef[1]), beta])
        grid.append((float(np.sum(residuals(theta) ** 2)), theta))
    lower, upper = [-30.0, 0.0, -30.0, 0.0], [30.0, EXPONENT_MAX, 30.0, EXPONENT_MAX]
    # the first of the sorted grid (not min(): where a cost is NaN the two pick different points)
    start = np.clip(sorted(grid, key=lambda g: g[0])[0][1], np.array(lower) + 1e-9, np.array(upper) - 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            res = least_squares(residuals, start, jac=jacobian, bounds=(lower, upper), loss="huber", f_scale=HUBER_DELTA,
                                x_scale="jac")  # scaled by the Jacobian: never a higher cost here, 1.4x faster
        except (ValueError, FloatingPointError):
            res = None
    if res is None or not np.all(np.isfinite(res.x)):
        raise NotPredictable("the two-ratio log-accuracy power law did not converge")
    return res.x


@dataclass(frozen=True)
class LogAccPowerLaw:
    """-log Q' = A C^-alpha (or A/N^alpha + B/D^beta across tokens-per-parameter ratios)."""

    checkpoints: str = "all"  # chosen on Pythia (see the module docstring); "final": the paper's one point per run
    auto_candidate: bool = True  # auto combines the laws that say so
    name: str = "logacc-power"
    description: str = ("Krajewski et al. 2025: -log((score - chance)/(1 - chance)) = A*C^-alpha, or A/N^alpha + B/D^beta "
                        "across tokens-per-parameter ratios; points > 5% above chance")

    def fit(self, series: Series) -> CurveFit:
        series = fitting_points(series, self.checkpoints)
        floor = score_floor(series)
        n_items = binomial_weights(series)
        q = normalised(series.value, floor, n_items)
        keep = q > MIN_ABOVE_CHANCE
        if len(np.unique(series.params[keep])) < 3:
            raise NotPredictable(f"fewer than 3 model sizes more than {MIN_ABOVE_CHANCE:.0%} of the way from chance to 1 "
                                 "(Krajewski et al.'s rule for this law)")
        series, q, n_items = subset(series, keep), q[keep], n_items[keep]
        u = np.log(-np.log(q))
        joint = independent_n_and_d(series.params, series.tokens) and len(np.unique(series.params)) >= 5
        theta = fit_two_ratios(series.params, series.tokens, u) if joint else fit_one_ratio(series.flops, u)
        names = ("log_A", "alpha", "log_B", "beta") if joint else ("log_A", "alpha")

        def mean_fn(th, target: Target) -> float:
            if joint and (target.params is None or target.tokens is None):
                raise NotPredictable("this family varies tokens per parameter: give the target's params and tokens, not only flops")
            minus_log = power_curve(th, [target.params or 0.0], [target.tokens or 0.0], [target.compute or 0.0], joint)[0]
            return float(floor + (1.0 - floor) * np.exp(-minus_log))

        def curve_fn(th, xs):
            return floor + (1.0 - floor) * np.exp(-power_curve(th, None, None, 10.0 ** np.asarray(xs, float), False))

        fit = CurveFit(
            law=self.name, names=names, theta=np.asarray(theta, dtype=float), cov=np.zeros((len(theta), len(theta))),
            floor=floor, resid_var=0.0, dof=1, mean_fn=mean_fn, x_of=lambda t: float(np.log10(t.compute)),
            curve_fn=None if joint else curve_fn, n_points=len(series),
            notes=("-log Q' = A/N^alpha + B/D^beta (several tokens-per-parameter ratios)" if joint else "-log Q' = A (C/1e21)^-alpha")
            + f"; {len(series)} points more than {MIN_ABOVE_CHANCE:.0%} above chance",
        )
        # Least squares in u = log(-log q) is weighted least squares in z = logit(q) with (du/dz)^2.
        q_fit = np.clip(np.exp(-power_curve(fit.theta, series.params, series.tokens, series.flops, joint)), 1e-9, 1 - 1e-9)
        weights = ((1.0 - q_fit) / np.log(q_fit)) ** 2
        return with_size_uncertainty(fit, series, len(theta), n_items, weights=weights)
