"""``saturating-power``: the log-accuracy power law with an irreducible term, on whole-benchmark scores.

    score = g + (1 - g) * exp(-a * (C / C0)^-b - c)

the per-cluster law of Clustering-On-Difficulty (Xu et al., arXiv 2502.17262, Eq. 4), here fitted
to a whole benchmark's score. ``exp(-c)`` is the ceiling the score saturates at (COD's ablation:
dropping c costs 0.47 -> 8.85 points on BBH); with c = 0 it is ``logacc-power``'s form. ``C0`` is
the geometric mean of the fitting compute (it only conditions the fit: a is per C0).

The guess floor g is not fitted but fixed at the chance floor (:func:`capcast.laws.signal.score_floor`),
as for ``sigmoid``: with the 4-6 sizes of a typical family a fourth parameter would leave 0-2
degrees of freedom for the interval. a, b, c are fitted by minimum Pearson chi-square (asymptotically the binomial
maximum likelihood, weighted by each task's item count; scipy ``least_squares`` from the best point of a (b, c) grid) with b in (0, 3] and c >= 0; when c
settles on 0 (no ceiling below 1 in sight) it is fixed there, so the fit stays identified (as
``sigmoid`` fixes its ceiling at 1). ``checkpoints`` chooses the points: every checkpoint after the
first 10% of each run (``"all"``, as ``sigmoid``; the default, chosen on Pythia, the development
data: in an exploration run with an earlier L-BFGS-B fit, 1.73 points MAE on 14 of 18 forecasts
against 3.29 on 12 for ``"final"``; the final report: 2.07 on 14) or each run's final one.

Not predictable while no fitting checkpoint is more than 5% of the way from chance to 1
(``Q' > 0.05``, :data:`capcast.laws.logacc_power.MIN_ABOVE_CHANCE`, Krajewski et al.'s rule for the
same form without c): below that the fit's shape comes from ``-log Q'`` where it is noise. On a big
benchmark (MMLU's 14,000 items) the signal test finds a rise of a point or two above chance
significant, and the law then extrapolated a takeoff that sizes at 24.4-26.9% for a
25% chance do not show: Pythia's 12b forecast 36.7% (actual 26.8%) when fitted on final
checkpoints. Chosen on the development data (Pythia, the mini-ladder; benchmarks/forecast_accuracy.md).

Intervals: :func:`capcast.laws.curve.with_size_uncertainty` (size sandwich with binomial weights,
size-level scatter, sizes - parameters degrees of freedom).

The COD pipeline fits the same form per cluster (``capcast/cod/cluster_law.py``, least squares with g
fitted); it is not imported here because ``cod`` sits above ``laws`` in the package layers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares, leastsq

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit, with_size_uncertainty
from capcast.laws.logacc_power import MIN_ABOVE_CHANCE, fitting_points, normalised
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
    last: dict = {}

    def parts(theta):
        """(a (C/C0)^-b, the curve, it clipped, the Pearson weight) at ``theta``: MINPACK asks for the
        residuals and then the Jacobian at the same point, so they are computed once (the caller
        silences exp's overflow, which here only means a curve at its floor)."""
        key = theta.tobytes()
        if last.get("key") != key:
            t = np.exp(theta[0] - theta[1] * log_x)
            raw = floor + (1.0 - floor) * np.exp(-t - (theta[2] if len(theta) > 2 else 0.0))
            p = np.minimum(np.maximum(raw, 1e-6), 1 - 1e-6)  # np.clip, cheaper
            last.update(key=key, value=(t, raw, p, np.sqrt(n / (p * (1 - p)))))
        return last["value"]

    def residuals(theta):
        _, _, p, w = parts(theta)
        return (value - p) * w

    def jacobian(theta):
        t, raw, p, w = parts(theta)
        dr_dp = np.where(p == raw, -w - (value - p) * w * (1 - 2 * p) / (2 * p * (1 - p)), 0.0)  # the clip has no slope
        de = (raw - floor) * dr_dp  # (1 - g) exp(-t - c): dp/dt = -de, dp/dc = -de
        out = np.empty((len(t), len(theta)))
        out[:, 0] = -de * t
        out[:, 1] = de * t * log_x
        if len(theta) > 2:
            out[:, 2] = -de
        return out

    return residuals, jacobian


# The start's grid (b, c): b over its whole range, c at 0 and over two decades up to exp(-c) = 0.05.
B_GRID = np.linspace(0.02, B_MAX, 50)
C_GRID = np.concatenate([[0.0], np.geomspace(0.005, 3.0, 24)])


def grid_start(flops: np.ndarray, value: np.ndarray, n: np.ndarray, c0: float, floor: float, with_c: bool) -> np.ndarray:
    """The best (log_a, b[, c]) on a (b, c) grid by the fit's own objective, a profiled out.

    For fixed b and c the law is linear in a on the log-accuracy scale, -log Q' - c = a (C/C0)^-b, so
    a has a closed form there (weighted least squares, delta-method weights n Q' / (1 - Q')); every
    grid point is then scored by the Pearson chi-square on the score scale, in one array operation.
    One bounded solve from this start finds the minimum that six solves from fixed starts found, at a
    fifth of the cost (``auto`` fits this law on every fold): on 240 simulated fits (benchmarks/fit_starts.txt) it reached the same
    or a lower chi-square wherever the scores rise at least 10 points above chance."""
    x = np.asarray(flops, dtype=float) / c0
    q = np.clip((value - floor) / (1 - floor), 1e-3, 1 - 1e-3)
    weight = n * q / (1 - q)
    powers = x[None, :] ** (-B_GRID[:, None])  # b x points
    ceilings = C_GRID if with_c else np.zeros(1)
    excess = -np.log(q)[None, :] - ceilings[:, None]  # c x points
    a = np.maximum((powers * weight) @ excess.T / (powers ** 2 * weight).sum(axis=1)[:, None], 1e-12)  # b x c
    with np.errstate(over="ignore", under="ignore"):
        p = floor + (1 - floor) * np.exp(-a[:, :, None] * powers[:, None, :] - ceilings[None, :, None])
    p = np.clip(p, 1e-6, 1 - 1e-6)
    chi2 = ((value - p) ** 2 * n / (p * (1 - p))).sum(axis=-1)
    i, j = np.unravel_index(np.argmin(chi2), chi2.shape)
    return np.array([np.log(a[i, j]), B_GRID[i]] + ([ceilings[j]] if with_c else []))


# Below this rise above chance (score units) a series has no shape to fit, and its chi-square many
# local minima: there the bounded solver, elsewhere MINPACK (see fit_saturating).
FLAT_RISE = 0.10
# The bounded solver's evaluations on such a series. Its chi-square is flat along a valley: 5% of
# the fits walked it to scipy's default cap (300) without converging, a third of the solver's
# time. At 100 (with the sigmoid's tolerances, same commit), of the 1,000 forecasts of
# benchmarks/backtest_scale.py's 100 families 4 moved by more than 0.01 points (a bound by at most
# 0.3) and one flat series went from a number to "not predictable yet" (its mixture at the width
# rule's edge); Pythia's headline figures did not move.
FLAT_MAX_EVALUATIONS = 100


def fit_saturating(flops: np.ndarray, value: np.ndarray, n: np.ndarray, c0: float, floor: float, with_c: bool) -> np.ndarray:
    """(log_a, b[, c]) by minimum Pearson chi-square, sum n (y - p)^2 / (p (1 - p)) (asymptotically the
    binomial MLE), from :func:`grid_start`; raises NotPredictable when it does not converge.

    The solver: MINPACK's Levenberg-Marquardt, its bounds b in (0, B_MAX] and c in [0, C_MAX] kept by
    MINUIT's transform x = lo + (hi - lo) (sin phi + 1) / 2, five times faster than scipy's bounded
    ``least_squares`` (trust region reflective); on 240 simulated fits the two reached the same
    chi-square wherever the scores rise more than :data:`FLAT_RISE` above chance. Below that the law
    has nothing to fit and MINPACK stopped at a worse local minimum in a third of the fits, so there
    the bounded solver is used."""

    residuals, jacobian = pearson_residuals(flops, value, n, c0, floor)
    lower = np.array([-30.0, 1e-4] + ([0.0] if with_c else []))
    upper = np.array([30.0, B_MAX] + ([C_MAX] if with_c else []))
    start = np.clip(grid_start(flops, value, n, c0, floor, with_c), lower + 1e-9, upper - 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            try:
                if float(np.max(value)) - floor > FLAT_RISE:
                    theta = _minpack_within_bounds(residuals, jacobian, start, lower, upper)
                else:
                    theta = least_squares(residuals, start, jac=jacobian, bounds=(lower, upper), method="trf",
                                          max_nfev=FLAT_MAX_EVALUATIONS).x
            except (ValueError, FloatingPointError, TypeError):  # TypeError: MINPACK on fewer points than parameters
                theta = None
    if theta is None or not np.all(np.isfinite(theta)):
        raise NotPredictable("the saturating power law did not converge")
    return np.asarray(theta, dtype=float)


def _minpack_within_bounds(residuals, jacobian, start: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """MINPACK's ``leastsq`` on phi, with theta = lo + (hi - lo) (sin phi + 1) / 2 for the bounded
    parameters (all but log_a, which is only clipped)."""
    span = upper - lower

    def theta_of(phi):
        theta = lower + span * (np.sin(phi) + 1) / 2
        theta[0] = min(max(phi[0], lower[0]), upper[0])
        return theta

    def phi_residuals(phi):
        return residuals(theta_of(phi))

    def phi_jacobian(phi):
        scale = span * np.cos(phi) / 2
        scale[0] = 1.0
        return jacobian(theta_of(phi)) * scale[None, :]

    phi0 = np.arcsin(np.clip(2 * (start - lower) / span - 1, -0.999, 0.999))
    phi0[0] = start[0]
    phi0[2:] = np.where(start[2:] > 0, phi0[2:], np.arcsin(2 * 1e-3 / span[2:] - 1))  # c off its bound, or it has no slope
    return theta_of(leastsq(phi_residuals, phi0, Dfun=phi_jacobian, ftol=1e-8, xtol=1e-8)[0])


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
        rise = float(np.max(normalised(series.value, floor, n)))  # Q', as logacc-power reads it
        if not rise > MIN_ABOVE_CHANCE:
            raise NotPredictable(f"no fitting checkpoint is more than {MIN_ABOVE_CHANCE:.0%} of the way from chance to 1 (the best is "
                                 f"{max(rise, 0.0):.1%}): the curve's shape above chance is not seen yet")
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
