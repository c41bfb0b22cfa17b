"""The shared fitted-curve result every built-in law returns, and its prediction intervals.

Intervals are built in the *score link space* z = logit((p - floor) / (1 - floor)), so they
never leave [floor, 1] and widen naturally near saturation. The variance of a forecast has
four parts, all in z:

* parameter uncertainty, propagated by the delta method (numeric Jacobian x covariance), with
  the covariance of :func:`with_size_uncertainty`: a sandwich that counts sizes, not checkpoints;
* the scatter a new size brings (``resid_var``: the variance of a size's deviation from the law,
  measured on size-mean residuals in the empirical logit, which stays finite at 0 and 1, as a
  random-effects (DerSimonian-Laird) variance that weighs each size by its item noise);
* the scatter a new run brings within its size (``run_var``: where a size has several runs, at
  other seeds or token counts, the variance of a run's deviation from its size's, measured the
  same way on run-mean residuals; :func:`capcast.laws.scatter.run_scatter`);
* the target's own item noise (``target_items``);
* ``extra_var`` / ``extra_var_fn``: anything a law adds (e.g. step-1 loss uncertainty).

The t quantile's degrees of freedom say how much of that variance is estimated: only the size
scatter is (on sizes - parameters degrees of freedom); the item noise is known. So ``dof`` =
sizes - parameters is the floor, and where the known part dominates, Satterthwaite's
approximation gives more (:meth:`CurveFit.scatter_dof`). See docs/forecasting.md "Intervals".
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from scipy import stats
from scipy.linalg import block_diag
from scipy.optimize import brentq
from scipy.special import expit, logit, stdtr, stdtrit

from capcast.laws.base import NotPredictable, Prediction, Target
from capcast.laws.scatter import (RunScatter, ScatterEvidence, dersimonian_laird_var, link_noise_var, run_scatter,
                                  size_scatter)

Z_CLIP = 1e-4  # keep logit finite for scores at the floor or at 1
MAX_DOF = 10**6  # a t on this many degrees of freedom is the normal

# How a forecast's distribution accounts for the size scatter being estimated, not known
# (docs/forecasting.md "Intervals"; benchmarks/scatter_interval.py measures the three):
# * "satterthwaite" (the default): a t whose degrees of freedom count the estimated share of the
#   variance (:meth:`CurveFit.scatter_dof`), never fewer than sizes - parameters;
# * "confidence-distribution" (Nagashima, Noma and Furukawa 2019, for random-effects prediction
#   intervals): the scatter drawn from its Q-profile confidence distribution (Viechtbauer 2007),
#   the forecast the scale mixture of normals that follows (:meth:`CurveFit.confidence_distribution_t`);
# * "posterior": the same mixture over the scatter's posterior under a half-normal prior on its sd
#   of scale ``capcast.laws.scatter.SCATTER_PRIOR_SD`` (0.1: the type-II maximum likelihood over
#   Pythia's fits, computed by the benchmark).
# The scatters' estimates and evidence are :mod:`capcast.laws.scatter`'s.
# Neither alternative kept more of the calibration cases within their bounds; they stay measurable.
SCATTER_INTERVALS = ("satterthwaite", "confidence-distribution", "posterior")
SCATTER_INTERVAL = "satterthwaite"


def to_z(p, floor: float):
    q = (np.asarray(p, dtype=float) - floor) / (1.0 - floor)
    return logit(np.clip(q, Z_CLIP, 1 - Z_CLIP))


def from_z(z, floor: float):
    return floor + (1.0 - floor) * expit(z)


def numeric_jacobian(fn: Callable[[np.ndarray], float | np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Central differences of ``fn`` at ``theta``: the gradient of a scalar ``fn``, or (outputs x
    parameters) for one that returns an array."""
    theta = np.asarray(theta, dtype=float)
    columns = []
    for i in range(len(theta)):
        h = 1e-5 * max(1.0, abs(theta[i]))
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        columns.append((np.asarray(fn(up), dtype=float) - np.asarray(fn(down), dtype=float)) / (2 * h))
    return np.stack(columns, axis=-1) if columns else np.zeros(0)


@dataclass(frozen=True)
class CurveFit:
    """An immutable fitted law: ``predict`` gives mean and interval, ``summary`` a text report.

    ``mean_fn(theta, target)`` returns the forecast score for a target; ``x_of(target)`` the
    value on the law's own x axis (for plots); ``curve_fn(theta, x)`` the score along that axis.
    """

    law: str
    names: tuple[str, ...]
    theta: np.ndarray
    cov: np.ndarray
    floor: float
    resid_var: float  # residual variance in z space
    dof: int
    mean_fn: Callable[[np.ndarray, Target], float] = field(repr=False)
    x_label: str = "log10 compute (FLOPs)"
    x_of: Callable[[Target], float] | None = field(default=None, repr=False)
    curve_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    # extra z-space variance as a function of the target (e.g. step-1 loss uncertainty)
    extra_var_fn: Callable[[np.ndarray, Target], float] | None = field(default=None, repr=False)
    extra_var: float = 0.0
    notes: str = ""
    n_points: int = 0
    link: str = "logit"  # "logit": intervals in z space; "identity": in score units
    # guard(theta, target) raises NotPredictable where the law must not be trusted (e.g. outside [0, 1])
    guard: Callable[[np.ndarray, Target], None] | None = field(default=None, repr=False)
    # answers the targets ``guard`` refuses (``auto``: the next law in its ranking)
    fallback: "CurveFit | None" = field(default=None, repr=False)
    # items behind the target's score (its own sampling noise); None: not added
    target_items: float | None = None
    # a variance measured outside the fit (``auto``'s folds), as a multiple of the fit's own, and its
    # degrees of freedom: the interval uses whichever of it and the fit's own variance is larger,
    # with that one's t quantile (0: none measured)
    variance_check_ratio: float = 0.0
    variance_check_dof: int = 0
    # why this fit gives point forecasts only (e.g. as many sizes as parameters); "" when it can
    no_interval: str = ""
    # an identity-link fit whose interval is clipped to [0, 1] (``flat``); the logit link needs none
    bounded: bool = False
    # the sampling variance of ``resid_var`` (an estimate) and d cov / d resid_var: with both, the
    # t quantile's degrees of freedom count only the estimated share of the variance (``scatter_dof``);
    # without (0 / None), the t uses ``dof``
    resid_var_var: float = 0.0
    cov_per_scatter: np.ndarray | None = field(default=None, repr=False)
    # the scatter of a run within its size (``capcast.laws.scatter.run_scatter``; a target is a new
    # run as well as a new size; 0 where no size has two runs) and d cov / d run_var. The t's
    # degrees of freedom count it as known: it is measured on runs - sizes degrees of freedom, many
    # more than the size scatter's sizes - parameters on the grids that have it (OpenLM's: 3-8 runs
    # a size). Counting its sampling variance in them was measured (stop 33) and moved coverage
    # away from 90% on the "runs" shape (logacc-power 90.6% -> 94.8%, logit-linear 93.5% -> 94.0%)
    # and cost the mini-ladder a covered forecast (83% -> 78%)
    run_var: float = 0.0
    cov_per_run_scatter: np.ndarray | None = field(default=None, repr=False)
    # another estimated share of the variance, given the link gradient at the target: (its variance,
    # its degrees of freedom), e.g. a two-step law's step 1 (:func:`capcast.laws.two_step.chain`)
    estimated_var_fn: Callable[[np.ndarray, Target], tuple[float, float]] | None = field(default=None, repr=False)
    # what ``resid_var`` was estimated from, for the rules other than Satterthwaite's (SCATTER_INTERVAL)
    scatter_evidence: ScatterEvidence | None = field(default=None, repr=False)

    def _to_z(self, p):
        return np.asarray(p, dtype=float) if self.link == "identity" else to_z(p, self.floor)

    def _from_z(self, z):
        return np.asarray(z, dtype=float) if self.link == "identity" else from_z(z, self.floor)

    @property
    def params(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.names, self.theta)}

    def link_slope(self, p: float) -> float:
        """d z / d score at ``p``: converts score-unit variance into the link space."""
        if self.link == "identity":
            return 1.0
        q = float(np.clip((p - self.floor) / (1 - self.floor), Z_CLIP, 1 - Z_CLIP))
        return 1.0 / ((1 - self.floor) * q * (1 - q))

    def mean(self, target: Target) -> float:
        return float(self.mean_fn(self.theta, target))

    def parameter_var(self, target: Target, grad: np.ndarray | None = None) -> float:
        """Variance of the fitted curve at ``target`` (link space) by the delta method; parameters
        the data do not identify make the forecast not predictable rather than certain. ``grad``:
        the link gradient at ``target`` where the caller has it (:meth:`predictive`)."""

        cov = np.asarray(self.cov, dtype=float)
        if cov.size and not np.all(np.isfinite(cov)):
            raise NotPredictable("the fit's covariance is not finite: some parameters are not identified by the data")
        if not cov.size:
            return 0.0
        grad = self._z_gradient(target) if grad is None else grad
        return max(float(grad @ cov @ grad), 0.0)

    def _z_gradient(self, target: Target) -> np.ndarray:
        return numeric_jacobian(lambda theta: float(self._to_z(self.mean_fn(theta, target))), self.theta)

    def scatter_dof(self, target: Target, var: float, grad: np.ndarray | None = None) -> float:
        """The t degrees of freedom of the forecast variance ``var`` at ``target`` (Welch-Satterthwaite).

        Of ``var``, the size scatter's share, ``resid_var * (1 + g' C1 g)`` (the new size's
        deviation plus the scatter part of the parameter covariance, ``C1`` = ``cov_per_scatter``),
        is estimated, with sampling variance ``resid_var_var``; so is ``estimated_var_fn``'s share
        (a two-step law's step 1, on its own degrees of freedom); the item noise is known. So
        ``dof_eff = var^2 / ((1 + g' C1 g)^2 resid_var_var / 2 + part^2 / part_dof)``, never below
        ``dof`` (what it would be were all of the variance estimated). Where the known item noise
        dominates the quantile approaches the normal one; where the scatter's estimate is as
        uncertain as the variance itself (few sizes, one checkpoint each) it stays near ``dof``."""
        if not self.resid_var_var > 0 or self.cov_per_scatter is None:
            return float(self.dof)
        grad = self._z_gradient(target) if grad is None else grad
        per_scatter = 1.0 + max(float(grad @ self.cov_per_scatter @ grad), 0.0)
        denominator = per_scatter**2 * self.resid_var_var / 2.0
        if self.estimated_var_fn is not None:
            part, part_dof = self.estimated_var_fn(grad, target)
            denominator += part**2 / max(float(part_dof), 1.0)
        return max(float(self.dof), var**2 / denominator)

    def confidence_distribution_t(self, target: Target, var: float, grad: np.ndarray | None = None) -> tuple[float, float]:
        """(variance, degrees of freedom) of the t that matches, at its 5% and 95% quantiles (the
        90% interval), the forecast's distribution when the scatter is drawn from its confidence
        distribution (:class:`ScatterEvidence`): a mixture of normals whose variance is ``var``
        with the estimate ``resid_var`` replaced by each drawn scatter (its share is linear in the
        scatter: the new size's deviation plus ``g' C1 g`` of the parameter covariance); with
        ``estimated_var_fn`` (a two-step law's step 1), each a t on that share's Satterthwaite
        degrees of freedom. The variance stays ``var`` where the matched t needs no more than
        MAX_DOF or 1 degree of freedom; beyond, it is scaled to the mixture's quantile."""
        grad = self._z_gradient(target) if grad is None else grad
        per_scatter = 1.0 + max(float(grad @ self.cov_per_scatter @ grad), 0.0)
        known = max(var - self.resid_var * per_scatter, 1e-12)
        draws = self.scatter_evidence.posterior_quantiles if SCATTER_INTERVAL == "posterior" else self.scatter_evidence.quantiles
        variances = known + draws * per_scatter
        dofs = np.full(len(variances), float(MAX_DOF))
        if self.estimated_var_fn is not None:
            part, part_dof = self.estimated_var_fn(grad, target)
            if part > 0:
                dofs = np.clip(variances**2 / (part**2 / max(float(part_dof), 1.0)), float(part_dof), MAX_DOF)
        sds = np.sqrt(variances)

        def tail(x: float) -> float:
            return float(np.mean(stdtr(dofs, x / sds))) - 0.95

        upper = float(np.max(stdtrit(dofs, 0.95) * sds))
        lower = float(np.min(stdtrit(dofs, 0.95) * sds))
        quantile = lower if upper - lower < 1e-12 * max(upper, 1.0) else brentq(tail, lower, upper, xtol=1e-10 * upper)
        sd = float(np.sqrt(var))
        normal, widest = float(stdtrit(MAX_DOF, 0.95)), float(stdtrit(1.0, 0.95))
        if quantile <= normal * sd:
            return (quantile / normal) ** 2, float(MAX_DOF)
        if quantile >= widest * sd:
            return (quantile / widest) ** 2, 1.0
        dof = brentq(lambda log_dof: float(stdtrit(np.exp(log_dof), 0.95)) * sd - quantile, 0.0, np.log(MAX_DOF), xtol=1e-6)
        return var, float(np.exp(dof))

    def target_noise_var(self, target: Target, mean: float | None = None) -> float:
        """The target's own item-sampling variance (link space) when its item count is known."""
        if self.target_items is None:
            return 0.0
        mean = self.mean(target) if mean is None else mean
        return float(link_noise_var(self, np.array([mean]), np.array([float(self.target_items)]))[0])

    def z_sd(self, target: Target, mean: float | None = None, grad: np.ndarray | None = None) -> float:
        """The forecast's link-space sd at ``target`` (the fit's own; ``mean`` and ``grad``: the
        forecast and the link gradient there, where the caller has them)."""
        var = self.parameter_var(target, grad) + self.resid_var + self.run_var + self.extra_var + self.target_noise_var(target, mean)
        if self.extra_var_fn is not None:
            var += float(self.extra_var_fn(self.theta, target))
        return float(np.sqrt(var))

    def predict(self, target: Target, level: float = 0.9) -> Prediction:
        if self.guard is not None:
            try:
                self.guard(self.theta, target)
            except NotPredictable as exc:
                return self._fallen_back(target, level, exc, f"{self.law} refuses this target ({exc})")
        if self.no_interval:
            return self._fallen_back(target, level, NotPredictable(self.no_interval), f"{self.law} gives no interval ({self.no_interval})")
        mean, z, sd, dof = self.predictive(target)
        half = stats.t.ppf(0.5 + level / 2, df=dof) * sd
        lower, upper = float(self._from_z(z - half)), float(self._from_z(z + half))
        if self.bounded:  # a score's interval in score units, kept in [0, 1]
            lower, upper = max(lower, 0.0), min(upper, 1.0)
        lower, upper = to_item_resolution(lower, upper, self.target_items)
        return Prediction(mean=mean, lower=min(lower, mean), upper=max(upper, mean), level=level)

    def predictive(self, target: Target) -> tuple[float, float, float, float]:
        """The forecast's distribution: (mean score, its link value z, the link-space sd, the t
        degrees of freedom, fractional where Satterthwaite's, :meth:`scatter_dof`): the score is
        ``_from_z(z + sd * T_dof)``. Guards and ``no_interval`` are :meth:`predict`'s to apply."""
        mean = self.mean(target)
        z = float(self._to_z(mean))
        # the link gradient once: the parameter variance and the degrees of freedom both need it
        grad = self._z_gradient(target) if np.asarray(self.cov).size else None
        var = self.z_sd(target, mean, grad) ** 2
        if SCATTER_INTERVAL != "satterthwaite" and self.scatter_evidence is not None and self.cov_per_scatter is not None:
            var, dof = self.confidence_distribution_t(target, var, grad)
        else:
            dof = self.scatter_dof(target, var, grad)
        if self.variance_check_ratio > 1:
            var, dof = self.variance_check_ratio * var, self.variance_check_dof
        return mean, z, float(np.sqrt(var)), float(np.clip(dof, 1.0, MAX_DOF))

    def refusal(self, target: Target) -> NotPredictable | None:
        """Why this fit itself does not answer ``target`` (its guard, or no interval), or None."""
        if self.guard is not None:
            try:
                self.guard(self.theta, target)
            except NotPredictable as exc:
                return exc
        return NotPredictable(self.no_interval) if self.no_interval else None

    def _fallen_back(self, target: Target, level: float, refusal: NotPredictable, why: str) -> Prediction:
        """The next law's prediction (``auto``'s ranking) where this fit cannot answer; else ``refusal``."""
        if self.fallback is None:
            raise refusal
        pred = self.fallback.predict(target, level)
        why = f"{why}; {pred.law or self.fallback.law} answers instead"
        return replace(pred, law=pred.law or self.fallback.law, notes=f"{why}. {pred.notes or self.fallback.notes}".strip())

    def curve(self, x: np.ndarray) -> np.ndarray | None:
        return None if self.curve_fn is None else np.asarray(self.curve_fn(self.theta, np.asarray(x, float)))

    def summary(self) -> str:
        sds = np.sqrt(np.clip(np.diag(np.nan_to_num(self.cov, nan=0.0)), 0, None)) if self.cov.size else []
        runs = f", run-within-size sd {np.sqrt(self.run_var):.3f}" if self.run_var > 0 else ""
        lines = [f"law {self.law}: {self.n_points} checkpoints, floor {self.floor:.3f}, residual sd (logit) {np.sqrt(self.resid_var):.3f}{runs}"]
        for name, value, sd in zip(self.names, self.theta, sds):
            lines.append(f"  {name:>10} = {value: .5g}  (sd {sd:.3g})")
        if self.notes:
            lines.append(f"  note: {self.notes}")
        return "\n".join(lines)


def to_item_resolution(lower: float, upper: float, n_items: float | None) -> tuple[float, float]:
    """An interval for a score observed on ``n_items`` items, which is k / n: a bound within half
    an item of 0 or 1 includes it (a logit interval approaches 1 but never reaches it, so a target
    that gets every item right, as a saturated task's often does, would always fall outside)."""
    if n_items is None or not n_items > 0:
        return lower, upper
    half = 0.5 / float(n_items)
    return (min(lower, 0.0) if lower < half else lower), (max(upper, 1.0) if upper > 1 - half else upper)


def with_size_uncertainty(fit: CurveFit, series, n_params: int, n_items: np.ndarray, weights: np.ndarray | None = None) -> CurveFit:
    """``fit`` with intervals that count sizes, not checkpoints, as the independent evidence.

    Checkpoints of one size (its runs, and their checkpoints, all scored on the same items) share
    that size's deviation from any law. So, in the fit's link space:

    * scatter: the variance of a size's deviation from the law, which the target's size brings
      anew: the DerSimonian-Laird estimate over the sizes' mean residuals in the empirical logit,
      each weighed by its item noise (:func:`capcast.laws.scatter.size_scatter`);
    * parameter covariance: ``B M B`` with the fit's working bread
      ``B = (J'WJ)^-1`` (``W``: the estimator's weights per checkpoint, default 1/noise, as a
      binomial likelihood weighs them) and the meat ``M = J'W (noise + scatter in same-size blocks) W J``,
      so a size's checkpoints count as one size's evidence, not as independent points;
    * where a size has several runs, the scatter of a run within its size
      (:func:`capcast.laws.scatter.run_scatter`),
      which a target (a new run) brings too, and its blocks in the meat;
    * the target's own item noise (``target_items``) added at prediction;
    * ``sizes - n_params`` degrees of freedom for the t quantile where the scatter dominates, more
      where the known item noise does (``resid_var_var``, :meth:`CurveFit.scatter_dof`).

    A singular information matrix (parameters the data do not identify) raises NotPredictable.
    """
    params = np.asarray(series.params, dtype=float)
    sizes = np.unique(params)
    dof = len(sizes) - n_params
    if dof < 1:  # point forecasts still serve auto's folds; an interval needs one more size
        return replace(fit, no_interval=f"{len(sizes)} sizes cannot both fix the law's {n_params} parameters and measure "
                                        "its scatter; add a size")
    targets = [Target(params=float(n), tokens=float(d), flops=float(c)) for n, d, c in zip(series.params, series.tokens, series.flops)]
    fitted = np.array([fit.mean(t) for t in targets])
    jac = link_jacobian(fit, targets)
    measured = size_uncertainty(fit, series.value, fitted, params, series.runs, n_items, dof, jac, weights)
    return replace(fit, cov=measured.cov, dof=dof, target_items=float(np.median(n_items)), **measured.fields())


@dataclass(frozen=True)
class SizeUncertainty:
    """What :func:`size_uncertainty` measured: the size scatter (``scatter``, its sampling variance
    and evidence), the run scatter (``runs``) and the size-honest parameter covariance ``cov``,
    ``known + scatter * cov_per_scatter + runs.var * cov_per_run``."""

    cov: np.ndarray
    scatter: float
    scatter_var: float
    cov_per_scatter: np.ndarray
    cov_per_run: np.ndarray
    evidence: ScatterEvidence
    runs: RunScatter

    def fields(self, pad: int = 0) -> dict:
        """The :class:`CurveFit` fields they set but ``cov`` (whose caller may join it to another),
        each per-unit covariance after ``pad`` zero rows and columns for parameters fitted before (a
        two-step law's step 1, which has its own)."""
        def padded(cov: np.ndarray) -> np.ndarray:
            return block_diag(np.zeros((pad, pad)), cov) if pad else cov

        return {"resid_var": self.scatter, "resid_var_var": self.scatter_var, "cov_per_scatter": padded(self.cov_per_scatter),
                "scatter_evidence": self.evidence, **self.runs.fields(padded(self.cov_per_run))}


def size_uncertainty(fit: CurveFit, value: np.ndarray, fitted: np.ndarray, params: np.ndarray, runs: np.ndarray,
                     n_items: np.ndarray, dof: int, jac: np.ndarray, weights: np.ndarray | None = None) -> SizeUncertainty:
    """The scatters a new size and a new run bring (:func:`capcast.laws.scatter.run_scatter`,
    :func:`capcast.laws.scatter.size_scatter`) and the parameter covariance that counts sizes
    (:func:`size_sandwich_parts`), in ``fit``'s link space; ``jac`` (checkpoints x parameters) and
    ``weights`` the fit's design and estimator weights (see :func:`with_size_uncertainty`)."""
    run = run_scatter(fit, value, fitted, params, runs, n_items)
    scatter, noise, evidence = size_scatter(fit, value, fitted, params, n_items, dof, jac, run)
    # the sandwich is linear in the scatters: its known part and its parts per unit of each
    known, per_scatter, per_run = size_sandwich_parts(jac, noise, params, runs, weights)
    return SizeUncertainty(known + scatter * per_scatter + run.var * per_run, scatter,
                           dersimonian_laird_var(evidence.noise, scatter, evidence.design), per_scatter, per_run, evidence, run)


def link_jacobian(fit: CurveFit, targets: list[Target]) -> np.ndarray:
    """d z / d theta at each target (targets x parameters), by :func:`numeric_jacobian`. Through the law's vectorised ``curve_fn`` (one call per parameter and side, not
    one per target: this was a sixth of a backtest's time) where it gives the law's mean at the
    first target; else target by target through ``mean_fn``."""
    theta = np.asarray(fit.theta, dtype=float)
    if fit.curve_fn is not None and targets:
        xs = np.array([fit.x_of(t) for t in targets], dtype=float)
        try:
            same = np.isclose(float(fit.curve_fn(theta, xs[:1])[0]), float(fit.mean_fn(theta, targets[0])), rtol=1e-12, atol=1e-14)
        except NotPredictable:
            same = False
        if same:
            return numeric_jacobian(lambda th: fit._to_z(fit.curve_fn(th, xs)), theta)
    return np.array([numeric_jacobian(lambda th, t=t: float(fit._to_z(fit.mean_fn(th, t))), theta) for t in targets])


def size_sandwich_parts(jac: np.ndarray, noise: np.ndarray, params: np.ndarray, runs: np.ndarray,
                        weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The parameter covariance ``B M B`` that counts a size's checkpoints as one size's evidence
    (and a run's as one run's), as its three terms: ``B M_noise B`` (the item noise), ``B M_size B``
    (the same-size blocks, per unit of size scatter) and ``B M_run B`` (the same-run blocks, per
    unit of run scatter, :func:`capcast.laws.scatter.run_scatter`), so that the covariance is
    ``known + scatter * per_scatter + run_var * per_run``. ``jac`` (checkpoints x parameters) of the
    link-space curve, the working bread ``B = (J'WJ)^-1`` (``W`` = ``weights``, default 1/noise) and
    the meat ``M = J'W (noise + scatter in same-size blocks + run scatter in same-run blocks) W J``.
    A singular information matrix raises NotPredictable."""
    w = 1.0 / noise if weights is None else np.asarray(weights, dtype=float)
    info = jac.T @ (w[:, None] * jac)
    if not np.all(np.isfinite(info)) or np.linalg.cond(info) > 1e12:
        raise NotPredictable("the data do not identify every parameter of the law (singular information matrix)")
    bread = np.linalg.inv(info)
    meat_noise = jac.T @ ((w**2 * noise)[:, None] * jac)

    def blocks(groups) -> np.ndarray:  # the meat of a deviation shared within each group, per unit
        groups = np.asarray(groups, dtype=object)
        meat = np.zeros_like(meat_noise)
        for g in dict.fromkeys(groups.tolist()):
            v = (w[groups == g, None] * jac[groups == g]).sum(axis=0)
            meat += np.outer(v, v)
        return bread @ meat @ bread

    return bread @ meat_noise @ bread, blocks(params), blocks(runs)


def residual_var_z(y: np.ndarray, fitted: np.ndarray, floor: float, weight_mask: np.ndarray | None = None, n_params: int = 0) -> float:
    """Residual variance in z space, over the checkpoints nearest the target (``weight_mask``)."""
    r = to_z(y, floor) - to_z(fitted, floor)
    if weight_mask is not None and weight_mask.sum() >= 3:
        r = r[weight_mask]
    dof = max(len(r) - min(n_params, len(r) - 2), 1)
    return float(np.sum(r**2) / dof)


def near_target_mask(x: np.ndarray, share: float = 0.5) -> np.ndarray:
    """The checkpoints in the top ``share`` of the x range: their scatter is what the target sees."""
    cut = np.quantile(x, 1 - share)
    return x >= cut
