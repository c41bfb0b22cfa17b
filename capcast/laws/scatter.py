"""How far a new size, and a new run, fall from a law: the random-effects estimates behind every
built-in law's interval (:mod:`capcast.laws.curve`), and what they were estimated from.

* :func:`size_scatter`: the variance of a size's deviation from the law, the DerSimonian-Laird
  estimate over the sizes' mean residuals in the empirical logit (:func:`empirical_z`, finite at 0
  and 1), each size weighed by its item noise (:func:`link_noise_var`), with the law's own design
  so that the share of the scatter the fit absorbed is netted out (:func:`dersimonian_laird`);
* :func:`run_scatter`: the same for a run's deviation from its size's, where sizes have several
  runs (other seeds, or other token counts);
* :class:`ScatterEvidence`: the size scatter's evidence, for the interval rules that draw the
  scatter from its confidence distribution or posterior instead of Satterthwaite's t
  (``capcast.laws.curve.SCATTER_INTERVAL``; docs/forecasting.md "Intervals").

Functions take the fit for its link (``link``, ``floor``) only, so this module needs no
:class:`~capcast.laws.curve.CurveFit` at import.
"""

from __future__ import annotations

import collections
import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

if TYPE_CHECKING:
    from capcast.laws.curve import CurveFit

# The scatter's distributions (:class:`ScatterEvidence`) for the "confidence-distribution" and
# "posterior" interval rules: the half-normal prior's scale on the scatter's sd (0.1: the type-II
# maximum likelihood over Pythia's fits, computed by benchmarks/scatter_interval.py), the quantiles
# the mixture averages over and their levels, and the top of the scatter's range.
SCATTER_PRIOR_SD = 0.1
CD_POINTS = 64  # the confidence distribution's quantiles the mixture averages over
CD_LEVELS = (np.arange(CD_POINTS) + 0.5) / CD_POINTS  # their levels: (j + 1/2) / CD_POINTS
SCATTER_MAX = 25.0  # link-space variance of a size's deviation (sd 5 in logit): the distribution's top


@dataclass(frozen=True)
class ScatterEvidence:
    """What the size scatter was estimated from: each size's mean residual (``deviations``, link
    space), its item-noise variance (``noise``), the sizes' design (sizes x parameters, None: an
    intercept) and the residual degrees of freedom (sizes - parameters).

    :meth:`q` is the generalised Q statistic at a scatter ``tau2``; at the true scatter it is
    chi-square on ``dof`` (for a model linear near the fit), so ``H(tau2) = P(chi2_dof > Q(tau2))``
    is the scatter's confidence distribution (Q-profile, Viechtbauer 2007): a mass ``H(0)`` at 0
    where the deviations are no larger than their item noise says, spread upwards otherwise.
    """

    deviations: np.ndarray
    noise: np.ndarray
    design: np.ndarray | None
    dof: int

    def _weights(self, tau2: float) -> np.ndarray:
        return 1.0 / np.maximum(np.asarray(self.noise, dtype=float) + tau2, 1e-12)

    def q(self, tau2: float) -> float:
        r = np.asarray(self.deviations, dtype=float)
        return float(r @ _residual_projection(self._weights(tau2), self.design) @ r)

    def restricted_loglik(self, tau2: float) -> float:
        """The restricted (REML) log-likelihood of the scatter ``tau2``, up to a constant:
        ``-(sum log(noise + tau2) + log |X'WX| + Q(tau2)) / 2``."""
        w = self._weights(tau2)
        x = np.ones((len(w), 1)) if self.design is None else np.asarray(self.design, dtype=float)
        sign, logdet = np.linalg.slogdet(x.T @ (w[:, None] * x))
        return float(0.5 * np.sum(np.log(w)) - 0.5 * (logdet if sign > 0 else 0.0) - 0.5 * self.q(tau2))

    @functools.cached_property
    def posterior_quantiles(self) -> np.ndarray:
        """The scatter at the same levels as :attr:`quantiles`, from its posterior: the restricted
        likelihood times a half-normal prior of scale SCATTER_PRIOR_SD on its sd, on a grid of sds
        (kept, like :attr:`quantiles`: the scale at the first use is the one that holds)."""
        tau = np.concatenate([[0.0], np.logspace(-4, np.log10(np.sqrt(SCATTER_MAX)), 160)])
        loglik = np.array([self.restricted_loglik(t * t) for t in tau])
        density = np.exp(loglik - loglik.max() - 0.5 * (tau / SCATTER_PRIOR_SD) ** 2)
        mass = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(tau))])
        return np.interp(CD_LEVELS, mass / mass[-1], tau) ** 2

    @functools.cached_property
    def quantiles(self) -> np.ndarray:
        """The scatter at the confidence levels CD_LEVELS."""
        grid = np.concatenate([[0.0], np.logspace(-6, np.log10(SCATTER_MAX), 121)])
        confidence = np.maximum.accumulate(stats.chi2.sf([self.q(t) for t in grid], max(self.dof, 1)))
        out = np.interp(CD_LEVELS, confidence, grid, left=0.0, right=SCATTER_MAX)
        out[CD_LEVELS <= confidence[0]] = 0.0
        return out


def empirical_z(value: np.ndarray, n_items: np.ndarray, floor: float) -> np.ndarray:
    """The empirical logit of scores above the floor, log((k + 1/2) / (n - k + 1/2)) with k the
    passes above the floor: finite at 0 and 1 and about as far out as n items can tell (a score of
    1.000 on 500 items sits at logit 6.9, not at a clip's arbitrary 9.2 or 13.8)."""
    n = np.asarray(n_items, dtype=float)
    k = np.clip((np.asarray(value, dtype=float) - floor) / (1 - floor), 0, 1) * n
    return np.log((k + 0.5) / (n - k + 0.5))


def size_scatter(fit: CurveFit, value: np.ndarray, fitted: np.ndarray, params: np.ndarray, n_items: np.ndarray,
                 dof: int, jac: np.ndarray | None = None, runs: "RunScatter | None" = None) -> tuple[float, np.ndarray, ScatterEvidence]:
    """(the variance of a size's deviation from the law in the fit's link space, each checkpoint's
    item noise there, what the variance was estimated from: :class:`ScatterEvidence`).

    Each size's mean residual (empirical logit) carries the size's deviation plus item noise whose
    variance differs hugely between sizes (near the chance floor the logit of a guessing score is
    mostly noise). So the deviation's variance is the DerSimonian-Laird random-effects estimate
    over sizes, ``max(0, (Q - dof) / tr P)`` with ``w`` = 1 / item noise of the size's mean and
    ``Q = sum w m^2``: noisy sizes weigh little instead of masking the scatter of the precise ones.
    ``jac`` (checkpoints x parameters, link space): the law's design, so that ``tr P`` nets out the
    share of the scatter the fit absorbed (:func:`dersimonian_laird`); without, an intercept's.
    ``runs`` (:func:`run_scatter`): a size's mean carries its runs' deviations too, as noise."""
    sizes = np.unique(params)
    value, fitted, n_items = (np.asarray(a, dtype=float) for a in (value, fitted, n_items))
    noise = link_noise_var(fit, fitted, n_items)
    if fit.link == "identity":
        size_means = np.array([(value - fitted)[params == s].mean() for s in sizes])
    else:
        # the link of the size's mean score, not the mean of its checkpoints' links: a checkpoint at
        # or below chance has an empirical logit far beyond what its item noise says (the logit's
        # steepest stretch), which read as scatter on families that follow the law exactly
        size_means = np.array([float(empirical_z(value[m].mean(), n_items[m].sum(), fit.floor) -
                                     empirical_z(fitted[m].mean(), n_items[m].sum(), fit.floor))
                               for m in (params == s for s in sizes)])
    design = None if jac is None else size_design(jac, params)
    mean_noise = size_mean_noise(noise, params) + (0.0 if runs is None else runs.var * runs.size_mean_share)
    evidence = ScatterEvidence(size_means, mean_noise, design, dof)
    return dersimonian_laird(size_means, evidence.noise, dof, design), noise, evidence


# The runs the run scatter is measured on: those whose fitted score is this far into the range
# above the floor (q = (score - floor) / (1 - floor)). Nearer the floor or 1 a run's empirical logit
# is far from normal at its item noise (at q = 0.05 on 400 items the noise is 60% of q), and the
# estimate read those tails as scatter on families that have none: on 3 runs a size with no run
# scatter, a mean estimate of 0.004 (sigmoid) and 0.008 (logit-linear) in logit^2 over all runs,
# 0.001 and 0.005 over these (40 simulated families each).
RUN_SCATTER_RANGE = (0.05, 0.95)


@dataclass(frozen=True)
class RunScatter:
    """The scatter of a run within its size (:func:`run_scatter`): its estimate ``var`` (link
    space) and per size (``np.unique(params)`` order) the share of it a size's mean carries,
    ``sum_r (checkpoints of r / checkpoints of the size)^2``."""

    var: float
    size_mean_share: np.ndarray

    def fields(self, cov_per_run: np.ndarray) -> dict:
        """The :class:`CurveFit` fields it sets (none where nothing was measured)."""
        return {"run_var": self.var, "cov_per_run_scatter": cov_per_run} if self.var > 0 else {}


def run_scatter(fit: CurveFit, value: np.ndarray, fitted: np.ndarray, params: np.ndarray, runs: np.ndarray,
                n_items: np.ndarray) -> RunScatter:
    """The variance of a run's deviation from its size's, where sizes have several runs (other
    seeds, or other token counts as in OpenLM's grid): the DerSimonian-Laird estimate over the
    run-mean residuals (empirical logit of the run's mean score, as for sizes) with one intercept
    per size as the design, so that only differences between runs of one size count, on runs -
    sizes degrees of freedom. A size's scatter (:func:`size_scatter`) cannot see it: a size's mean
    averages its runs. A target is a new run at a new size, so its deviation carries both. 0 (and
    nothing estimated) where no size has two runs, as in a family of one run per size."""
    sizes = np.unique(params)
    runs = np.asarray(runs, dtype=object)
    value, fitted, n_items = (np.asarray(a, dtype=float) for a in (value, fitted, n_items))
    keys = list(dict.fromkeys(zip(params.tolist(), runs.tolist())))
    members = {key: (params == key[0]) & (runs == key[1]) for key in keys}
    share = np.zeros(len(sizes))
    for (size, _), m in members.items():
        share[np.searchsorted(sizes, size)] += (m.sum() / np.sum(params == size)) ** 2

    def in_range(m) -> bool:
        q = 0.5 if fit.link == "identity" else (float(fitted[m].mean()) - fit.floor) / (1 - fit.floor)
        return RUN_SCATTER_RANGE[0] <= q <= RUN_SCATTER_RANGE[1]

    kept = [key for key in keys if in_range(members[key])]
    per_size = collections.Counter(size for size, _ in kept)
    kept = [key for key in kept if per_size[key[0]] >= 2]  # a size's runs differ only where it has two
    groups = sorted({size for size, _ in kept})
    dof = len(kept) - len(groups)
    if dof < 1:
        return RunScatter(0.0, share)
    noise = link_noise_var(fit, fitted, n_items)
    deviations, run_noise, design = [], [], np.zeros((len(kept), len(groups)))
    for i, key in enumerate(kept):
        m = members[key]
        if fit.link == "identity":
            deviations.append(float((value - fitted)[m].mean()))
        else:
            deviations.append(float(empirical_z(value[m].mean(), n_items[m].sum(), fit.floor) -
                                    empirical_z(fitted[m].mean(), n_items[m].sum(), fit.floor)))
        run_noise.append(float(noise[m].mean() / m.sum()))
        design[i, groups.index(key[0])] = 1.0
    deviations, run_noise = np.array(deviations), np.array(run_noise)
    # each run's deviation from its size's (weighted) mean: the residuals of the per-size design
    w = 1.0 / np.maximum(run_noise, 1e-12)
    size_mean = (design.T @ (w * deviations)) / (design.T @ w)
    return RunScatter(dersimonian_laird(deviations - design @ size_mean, run_noise, dof, design), share)


def size_mean_noise(noise: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The item noise of each size's mean residual, from its checkpoints' noise (per size, in
    ``np.unique(params)`` order)."""
    return np.array([noise[params == s].mean() / np.sum(params == s) for s in np.unique(params)])


def dersimonian_laird(deviations: np.ndarray, noise: np.ndarray, dof: int, design: np.ndarray | None = None) -> float:
    """The DerSimonian-Laird between-group variance of ``deviations`` (each with its own noise
    variance ``noise``) on ``dof`` degrees of freedom: ``max(0, (Q - dof) / tr P)``, ``Q = sum w d^2``,
    ``w = 1 / noise``, ``P = W - W X (X'WX)^-1 X'W`` with ``X`` = ``design`` (groups x parameters:
    the law's Jacobian at each group; default a column of ones, where ``tr P = sum w - sum w^2 / sum w``).
    With the law's own design ``tr P`` is what the scatter adds to ``E[Q]`` once the fit has absorbed
    its share (the meta-regression estimator); the intercept's larger ``tr P`` underestimated it."""
    w = 1.0 / np.maximum(np.asarray(noise, dtype=float), 1e-12)
    q = float(np.sum(w * np.asarray(deviations, dtype=float) ** 2))
    trace = float(np.trace(_residual_projection(w, design)))
    return float(max((q - max(dof, 1)) / trace, 0.0)) if trace > 0 else 0.0


def dersimonian_laird_var(noise: np.ndarray, scatter: float, design: np.ndarray | None = None) -> float:
    """The sampling variance of :func:`dersimonian_laird`'s estimate ``scatter``: ``var Q / (tr P)^2``
    with ``var Q = 2 tr(P V P V)``, ``V = diag(noise + scatter)`` (Biggerstaff and Tweedie 1997, for
    the meta-regression's ``P``), evaluated at the estimate. Not 0 without scatter: ``Q`` carries item
    noise too, so an estimate of 0 from a few groups is uncertain."""
    noise = np.asarray(noise, dtype=float)
    proj = _residual_projection(1.0 / np.maximum(noise, 1e-12), design)
    trace = float(np.trace(proj))
    if not trace > 0:
        return 0.0
    pv = proj * (noise + scatter)[None, :]
    return float(2 * np.trace(pv @ pv) / trace**2)


def _residual_projection(w: np.ndarray, design: np.ndarray | None) -> np.ndarray:
    """``P = W - W X (X'WX)^-1 X'W``: a weighted least-squares fit of ``y`` on ``X`` leaves
    residuals whose weighted sum of squares is ``y' P y``."""
    x = np.ones((len(w), 1)) if design is None else np.asarray(design, dtype=float)
    wx = w[:, None] * x
    return np.diag(w) - wx @ np.linalg.pinv(x.T @ wx) @ wx.T


def size_design(jac: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Each size's mean Jacobian row (sizes x parameters, in ``np.unique(params)`` order): the
    design of the size-mean residuals."""
    return np.array([jac[params == s].mean(axis=0) for s in np.unique(params)])


def link_noise_var(fit: CurveFit, score: np.ndarray, n_items: np.ndarray) -> np.ndarray:
    """Item-sampling variance of scores in the fit's link space: var(score) <= p(1 - p) / n, through
    the link's slope dz/dp = 1 / ((1 - floor) q (1 - q)); q kept half an item from the bounds."""
    n = np.asarray(n_items, dtype=float)
    score = np.asarray(score, dtype=float)
    if fit.link == "identity":
        inside = (score > 0) & (score < 1)
        return np.where(inside, score * (1 - score), 0.25) / n
    q = np.clip((score - fit.floor) / (1 - fit.floor), 0.5 / n, 1 - 0.5 / n)
    p = fit.floor + (1 - fit.floor) * q
    return p * (1 - p) / n / ((1 - fit.floor) * q * (1 - q)) ** 2
