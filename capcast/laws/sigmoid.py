"""``sigmoid``: score vs log10 compute between a chance floor and a ceiling (Epoch-style baseline).

    score = floor + (ceiling - floor) * sigmoid(a + b * (log10 C - x0))

fitted by maximum (binomial) likelihood weighted by ``n_items`` (MINPACK's Levenberg-Marquardt on
the deviance residuals, whose sum of squares is minus twice the log-likelihood plus a constant);
the covariance, statsmodels' ``GenericLikelihoodModel`` inverse numeric Hessian, is scaled by the
Pearson dispersion, because checkpoints scatter around the curve more than binomial sampling
alone explains. The ceiling is fitted (``ceiling=None``) or fixed. Checkpoints in the first 10% of
a model's training are dropped (Bhagia et al.: early checkpoints are off-trend).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import leastsq
from scipy.special import expit, logit, xlogy
from statsmodels.base.model import GenericLikelihoodModel

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit, near_target_mask, residual_var_z, with_size_uncertainty
from capcast.laws.signal import drop_early_checkpoints, require_score_series, score_floor

CEILING_RUNAWAY = 8.0  # a ceiling logit beyond this means "no ceiling below 1 in sight"
DEFAULT_ITEMS = 1000.0  # binomial weight when the table does not say how many items a task has


class _BoundedSigmoidLikelihood(GenericLikelihoodModel):
    """Binomial log-likelihood of a sigmoid between ``floor`` and a fitted or fixed ceiling."""

    def __init__(self, endog, exog, n_items, floor, ceiling, **kwargs):
        self.n_items = np.asarray(n_items, dtype=float)
        self.floor = floor
        self.fixed_ceiling = ceiling
        super().__init__(endog, exog, **kwargs)

    def probability(self, params, exog=None):
        exog = self.exog if exog is None else exog
        return bounded_sigmoid(params, exog[:, 0], self.floor, self.fixed_ceiling)

    def _curve(self, params):
        """(sigmoid, ceiling share, ceiling, probability) at ``params``. The optimiser asks for the
        likelihood and then its gradient at the same point: the last point's values are kept."""
        params = np.asarray(params, dtype=float)
        key = params.tobytes()
        if getattr(self, "_last_key", None) != key:
            s = expit(params[0] + params[1] * self.exog[:, 0])
            share = expit(params[2]) if self.fixed_ceiling is None else None
            top = self.floor + (1 - self.floor) * share if self.fixed_ceiling is None else self.fixed_ceiling
            self._last_key, self._last = key, (s, share, top, self.floor + (top - self.floor) * s)
        return self._last

    def loglikeobs(self, params):
        p = np.clip(self._curve(params)[3], 1e-9, 1 - 1e-9)
        y = self.endog
        return self.n_items * (y * np.log(p) + (1 - y) * np.log(1 - p))

    def score(self, params):
        """The analytic gradient of the log-likelihood: with it statsmodels' BFGS skips the
        numeric differentiation that took most of a fit's time (the Hessian for the covariance
        stays statsmodels' numeric one, so covariances are unchanged)."""
        s, share, top, p = self._curve(params)
        x, y = self.exog[:, 0], self.endog
        inside = (p > 1e-9) & (p < 1 - 1e-9)  # the clip in loglikeobs has no slope
        dll_dp = np.where(inside, self.n_items * (y / p - (1 - y) / (1 - p)), 0.0)
        slope = dll_dp * (top - self.floor) * s * (1 - s)
        grad = [slope.sum(), (slope * x).sum()]
        if self.fixed_ceiling is None:
            grad.append((dll_dp * (1 - self.floor) * share * (1 - share) * s).sum())
        return np.array(grad)

    def covariance(self, params) -> np.ndarray:
        """The inverse of the negative (numeric) Hessian, as statsmodels computes it after a fit,
        for the one start that is kept (the fits skip it); its pseudo-inverse where it is not
        positive definite (the Hessian computed once for both)."""
        hess = -self.hessian(np.asarray(params, dtype=float))
        if np.all(np.isfinite(hess)):
            eigvals, eigvecs = np.linalg.eigh(hess)
            if np.min(eigvals) > 0:
                inverse = eigvecs.dot(np.diag(1.0 / eigvals)).dot(eigvecs.T)
                return (inverse + inverse.T) / 2.0
        return np.linalg.pinv(hess)


class _BinomialDeviance:
    """The same binomial likelihood as signed deviance residuals, for MINPACK's Levenberg-Marquardt
    (scipy ``leastsq``, MINPACK's ``lmder``): the sum of squares is -2 (log-likelihood - saturated
    log-likelihood), so its minimum is the maximum-likelihood fit. Why not BFGS on the likelihood
    (statsmodels, as before): MINPACK iterates in C and its Gauss-Newton steps need fewer
    evaluations than BFGS's line searches in Python (benchmarks/backtest_scale.py compares them)."""

    CLIP = 1e-9  # as in _BoundedSigmoidLikelihood.loglikeobs

    def __init__(self, x, y, n, floor: float, ceiling: float | None):
        self.x, self.y, self.n = (np.asarray(a, dtype=float) for a in (x, y, n))
        self.floor, self.ceiling = floor, ceiling
        self.saturated = xlogy(self.y, self.y) + xlogy(1 - self.y, 1 - self.y)
        self._key = None

    def _parts(self, theta):
        """(sigmoid, ceiling share, floor-to-curve height u, clipped probability, residuals) at
        ``theta``; MINPACK asks for the residuals and then the Jacobian at the same point."""
        key = theta.tobytes()
        if key != self._key:
            s = expit(theta[0] + theta[1] * self.x)
            share = expit(theta[2]) if self.ceiling is None else None
            span = (1 - self.floor) * share if self.ceiling is None else self.ceiling - self.floor
            u = span * s
            p = np.minimum(np.maximum(self.floor + u, self.CLIP), 1 - self.CLIP)  # np.clip, at a third of its cost
            d2 = 2 * self.n * (self.saturated - xlogy(self.y, p) - xlogy(1 - self.y, 1 - p))
            self._key, self._last = key, (s, share, u, p, np.sign(self.y - p) * np.sqrt(np.maximum(d2, 0.0)))
        return self._last

    def residuals(self, theta):
        return self._parts(theta)[4]

    def loglike(self, theta) -> float:
        p = self._parts(np.asarray(theta, dtype=float))[3]
        return float(np.sum(self.n * (xlogy(self.y, p) + xlogy(1 - self.y, 1 - p))))

    def jacobian(self, theta):
        s, share, u, p, r = self._parts(theta)
        y, n = self.y, self.n
        inside = (self.floor + u > self.CLIP) & (self.floor + u < 1 - self.CLIP)  # the clip has no slope
        # dr/dp = -(dll/dp) / r; where r -> 0 (p -> y) its limit, -sqrt(n / (p (1 - p)))
        dll_dp = n * (y / p - (1 - y) / (1 - p))
        with np.errstate(divide="ignore", invalid="ignore"):
            dr_dp = np.where(np.abs(r) > 1e-6, -dll_dp / r, -np.sqrt(n / (p * (1 - p))))
        dr_dp = np.where(inside, dr_dp, 0.0)
        slope = dr_dp * u * (1 - s)  # dr/da; dr/db = slope * x
        out = np.empty((len(slope), 2 if self.ceiling is not None else 3))  # np.stack cost a third of this
        out[:, 0] = slope
        out[:, 1] = slope * self.x
        if self.ceiling is None:
            out[:, 2] = dr_dp * u * (1 - share)
        return out


def bounded_sigmoid(params, x, floor: float, ceiling: float | None):
    a, b = params[0], params[1]
    top = floor + (1 - floor) * expit(params[2]) if ceiling is None else ceiling
    return floor + (top - floor) * expit(a + b * x)


@dataclass(frozen=True)
class SigmoidFitResult:
    theta: np.ndarray
    cov: np.ndarray
    fitted: np.ndarray
    names: tuple[str, ...]
    ceiling: float | None  # None: fitted (theta[2]); else the fixed ceiling used


def lm_maximum(model: _BoundedSigmoidLikelihood, deviance: _BinomialDeviance, start: np.ndarray) -> np.ndarray:
    """The likelihood's maximum from ``start``: MINPACK's Levenberg-Marquardt on the deviance
    residuals, to relative tolerances 1e-8 (benchmarks/backtest_scale.py compares it with statsmodels'
    BFGS at gtol 1e-5; 1e-10, before, took about 10% more of a backtest's time, for forecasts that
    moved by at most 0.002 points on 200 simulated ones)."""
    return leastsq(deviance.residuals, start, Dfun=deviance.jacobian, ftol=1e-8, xtol=1e-8)[0]


maximum_from = lm_maximum  # one start's fit (benchmarks/backtest_scale.py swaps in BFGS to compare)


# Ceiling shares (of the way from the floor to 1) on the start's grid: 0.05 to 0.998.
SHARE_GRID = expit(np.linspace(-3.0, 6.0, 24))


def grid_start(x: np.ndarray, y: np.ndarray, n: np.ndarray, floor: float, ceiling: float | None) -> np.ndarray:
    """The best (a, b[, ceiling_logit]) over a grid of ceilings by the likelihood itself, (a, b) profiled out.

    For a fixed ceiling the sigmoid is a line on the logit of (y - floor) / (ceiling - floor):
    (a, b) is its weighted least-squares fit (weights n q (1 - q), the delta method), in closed form
    for every ceiling at once; each is scored by the binomial log-likelihood."""
    tops = floor + (1 - floor) * SHARE_GRID if ceiling is None else np.array([ceiling])
    q = np.clip((y[None, :] - floor) / (tops[:, None] - floor), 0.02, 0.98)  # ceilings x points
    z, w = logit(q), n[None, :] * q * (1 - q)
    s0, s1, s2 = w.sum(axis=1), (w * x).sum(axis=1), (w * x * x).sum(axis=1)
    t0, t1 = (w * z).sum(axis=1), (w * z * x).sum(axis=1)
    det = s0 * s2 - s1 ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = (s2 * t0 - s1 * t1) / det, (s0 * t1 - s1 * t0) / det
        p = np.clip(floor + (tops[:, None] - floor) * expit(a[:, None] + b[:, None] * x[None, :]), 1e-9, 1 - 1e-9)
        llf = (xlogy(n * y, p) + xlogy(n * (1 - y), 1 - p)).sum(axis=1)
    k = int(np.argmax(np.where(np.isfinite(llf), llf, -np.inf)))
    return np.array([a[k], b[k]] + ([float(logit(SHARE_GRID[k]))] if ceiling is None else []))


def fit_bounded_sigmoid(x: np.ndarray, y: np.ndarray, n: np.ndarray, floor: float, ceiling: float | None) -> SigmoidFitResult:
    """Binomial MLE of the bounded sigmoid in ``x`` (already centred); two starts (one with the ceiling fixed), best kept.

    The starts: the best point of a ceiling grid (:func:`grid_start`) and the straight line on the
    logit of the scores (ceiling share 0.73). They replaced six fixed starts at under half the cost
    (``auto`` fits this law on every fold): on 240 simulated fits the two reached the six's
    likelihood wherever the scores rise more than 10 points above chance (benchmarks/fit_starts.txt;
    on flatter series, whose likelihood has several maxima, 28 ended lower and 5 higher)."""
    starts = [list(grid_start(x, y, n, floor, ceiling))]
    if ceiling is None:  # with the ceiling fixed the grid's start is that line's own weighted fit
        q = np.clip((y - floor) / (1 - floor), 0.02, 0.98)
        slope, intercept = np.polyfit(x, logit(q), 1) if np.ptp(x) > 0 else (0.0, float(np.mean(logit(q))))
        starts.append([intercept, slope, 1.0])
    model = _BoundedSigmoidLikelihood(y, x[:, None], n, floor, ceiling)
    deviance = _BinomialDeviance(x, y, n, floor, ceiling)
    best = None
    for start in starts:
        if not np.all(np.isfinite(start)):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                found = maximum_from(model, deviance, np.array(start, dtype=float))
            except (np.linalg.LinAlgError, ValueError, TypeError):  # TypeError: leastsq on fewer points than parameters
                continue
        if np.all(np.isfinite(found)):
            llf = deviance.loglike(found)
            if best is None or llf > best[1]:
                best = (found, llf)
    if best is None:
        raise NotPredictable("the sigmoid fit did not converge")
    theta = np.asarray(best[0], dtype=float)
    if ceiling is None and theta[2] > CEILING_RUNAWAY:
        # the data do not bend toward a ceiling below 1: fix it at 1 so the fit stays identified
        return fit_bounded_sigmoid(x, y, n, floor, 1.0)
    fitted = model.probability(theta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cov = model.covariance(theta)
    # quasi-likelihood: scale by the Pearson dispersion when checkpoints scatter more than binomially
    pearson = np.sum(n * (y - fitted) ** 2 / np.clip(fitted * (1 - fitted), 1e-9, None))
    dispersion = max(pearson / max(len(y) - len(theta), 1), 1.0)
    names = ("a", "b", "ceiling_logit") if ceiling is None else ("a", "b")
    return SigmoidFitResult(theta=theta, cov=cov * dispersion, fitted=fitted, names=names, ceiling=ceiling)


@dataclass(frozen=True)
class SigmoidLaw:
    """Score vs log-compute sigmoid with a chance floor; fitted ceiling unless ``ceiling`` is set."""

    ceiling: float | None = None
    auto_candidate: bool = True  # auto chooses among the laws that say so
    name: str = "sigmoid"
    description: str = "score vs log10 compute: sigmoid above the chance floor, binomial likelihood (Epoch-style)"

    def fit(self, series: Series) -> CurveFit:
        series = drop_early_checkpoints(require_score_series(series))
        fit = self._fit(series)
        return with_size_uncertainty(fit, series, len(fit.theta), binomial_weights(series))

    def _fit(self, series: Series) -> CurveFit:
        x_raw = np.log10(series.flops)
        if len(np.unique(np.round(x_raw, 6))) < 3:
            raise NotPredictable("fewer than 3 distinct compute values to fit a sigmoid")
        floor = score_floor(series)
        x0 = float(np.mean(x_raw))
        x = x_raw - x0
        n = binomial_weights(series)
        res = fit_bounded_sigmoid(x, series.value, n, floor, self.ceiling)
        ceiling = res.ceiling

        def mean_fn(theta, target: Target) -> float:
            return float(bounded_sigmoid(theta, np.array([np.log10(target.compute) - x0]), floor, ceiling)[0])

        def curve_fn(theta, xs):
            return bounded_sigmoid(theta, xs - x0, floor, ceiling)

        k = len(res.theta)
        return CurveFit(
            law=self.name, names=res.names, theta=res.theta, cov=res.cov, floor=floor,
            resid_var=residual_var_z(series.value, res.fitted, floor, near_target_mask(x), k),
            dof=max(len(x) - k, 1), mean_fn=mean_fn, x_of=lambda t: float(np.log10(t.compute)),
            curve_fn=curve_fn, n_points=len(x),
        )


def binomial_weights(series: Series) -> np.ndarray:
    """Items behind each point, for the binomial likelihood; DEFAULT_ITEMS where unknown."""
    if series.n_items is None:
        return np.full(len(series), DEFAULT_ITEMS)
    n = np.asarray(series.n_items, dtype=float)
    return np.where(np.isfinite(n) & (n > 0), n, DEFAULT_ITEMS)
