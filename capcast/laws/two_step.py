"""What the two-step laws (``ladder``, ``loss-error``, ``ladder-schedule``) share: step 1 and the
chaining of both steps.

Step 1 (:func:`fit_step_one`): trim early checkpoints, pick the loss (:func:`pick_loss`), keep the
checkpoints that have it and fit (N, D) -> loss (:mod:`capcast.laws.loss_law`), either on every
checkpoint (``step_one="all"``) or, as Bhagia et al. do, on one point per run
(``step_one="final"``, :func:`run_final_points`): intermediate checkpoints of a cosine or WSD
run have not annealed and sit above the loss a run stopped there would reach, so fitting them
as finished runs biases the law. Step 2's data can be smoothed within runs
(:func:`smooth_within_runs`, a centred moving average). Step 2 is each
law's own map from loss to score; :func:`chain` joins the two into one :class:`CurveFit`: the
forecast is step 2 at step 1's predicted loss; the interval propagates both parameter covariances
(one joint delta method), step 2's residual scatter, and step 1's residual scatter pushed through
the slope of step 2. Like the one-step laws (:func:`capcast.laws.curve.with_size_uncertainty`),
both steps count sizes, not checkpoints, as the independent evidence: step 1's covariance is
cluster-robust by size, step 2's a size sandwich in the score's link space, each step's scatter
is measured on size means, and the t quantile has sizes - step 2's parameters degrees of freedom.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import pandas as pd
from scipy.linalg import block_diag

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit, numeric_jacobian, size_uncertainty, to_z
from capcast.laws.loss_law import LossFit, fit_loss_law, pick_loss
from capcast.laws.signal import drop_early_checkpoints, require_score_series, score_floor, subset
from capcast.laws.sigmoid import binomial_weights

# score_fn(step-2 parameters, losses) -> scores
ScoreOfLoss = Callable[[np.ndarray, np.ndarray], np.ndarray]
STEP_ONE_MODES = ("final", "all")
# "the last few checkpoints" of a run: those in the final 10% of its tokens (the final one at least)
FINAL_SHARE = 0.1
MIN_RUNS = 4  # L(C) has 3 parameters: one run more measures its scatter


def needs_params_and_tokens(target: Target, joint: bool) -> None:
    if joint and (target.params is None or target.tokens is None):
        raise NotPredictable("step 1 fits loss on params and tokens separately; give the target's params and tokens, not only flops")


@dataclass(frozen=True)
class StepOne:
    """The fitting checkpoints that carry a score and the loss, the loss, and step 1's fit.

    ``series`` and ``loss`` are step 2's data (smoothed within runs when asked); ``fit`` is step 1's
    fit, whatever points it was fitted on; ``loss_fn(theta1, target)``, if given, replaces the
    loss law's own prediction (``ladder-schedule`` predicts from the target's schedule).
    """

    series: Series
    loss_key: str
    loss: np.ndarray
    fit: LossFit
    floor: float
    loss_fn: Callable[[np.ndarray, Target], float] | None = None

    def predicted_loss(self, theta1: np.ndarray, target: Target) -> float:
        if self.loss_fn is not None:
            return self.loss_fn(theta1, target)
        needs_params_and_tokens(target, self.fit.joint)
        return self.fit.loss(theta1, target.params or 0.0, target.tokens or 0.0, target.compute or 0.0)


def step_two_data(series: Series, prefer: tuple[str, ...], loss_name: str | None) -> tuple[Series, str, np.ndarray]:
    """(the checkpoints past the early 10% with a score and a positive loss, the loss's name, the loss)."""
    series = drop_early_checkpoints(require_score_series(series))
    loss_key, loss = pick_loss(series, prefer, loss_name)
    ok = np.isfinite(loss) & (loss > 0)
    series, loss = subset(series, ok), loss[ok]
    if len(series) < 4:
        raise NotPredictable(f"fewer than 4 checkpoints with both a score and {loss_key}")
    return series, loss_key, loss


def fit_step_one(series: Series, prefer: tuple[str, ...], loss_name: str | None, step_one: str = "all",
                 smooth_width: int = 1) -> StepOne:
    """Step 1 on every checkpoint (``step_one="all"``) or on each run's final point (``"final"``);
    step 2's loss and score smoothed over ``smooth_width`` neighbouring checkpoints of a run."""
    if step_one not in STEP_ONE_MODES:
        raise ValueError(f"step_one must be one of {STEP_ONE_MODES}, not {step_one!r}")
    series, loss_key, loss = step_two_data(series, prefer, loss_name)
    if step_one == "all":
        step1 = fit_loss_law(series.params, series.tokens, series.flops, loss)
    else:
        params, tokens, flops, final_loss = run_final_points(series, loss)
        if len(final_loss) < MIN_RUNS:
            raise NotPredictable(f"step 1 fits one point per run (its final {loss_key}): {len(final_loss)} run(s), fewer than the "
                                 f"{MIN_RUNS} L(C) needs (3 parameters and its scatter); add a run")
        step1 = fit_loss_law(params, tokens, flops, final_loss)
    floor = score_floor(series)
    if smooth_width > 1:
        runs = series.runs
        series = replace(series, value=smooth_within_runs(series.value, runs, series.tokens, smooth_width))
        loss = smooth_within_runs(loss, runs, series.tokens, smooth_width)
    return StepOne(series=series, loss_key=loss_key, loss=loss, fit=step1, floor=floor)


def run_final_points(series: Series, loss: np.ndarray, share: float = FINAL_SHARE):
    """One point per run: (params, tokens, flops, loss), the loss the mean over the run's
    checkpoints in the final ``share`` of its tokens (the final checkpoint at least), at the
    run's final (N, D) and compute."""
    runs = series.runs
    out = []
    for run in pd.unique(runs):
        rows = np.flatnonzero(runs == run)
        final = rows[np.argmax(series.tokens[rows])]
        last = rows[series.tokens[rows] >= (1 - share) * series.tokens[final]]
        out.append((series.params[final], series.tokens[final], series.flops[final], float(np.mean(loss[last]))))
    return tuple(np.array(col, dtype=float) for col in zip(*out)) if out else tuple(np.array([]) for _ in range(4))


def smooth_within_runs(values: np.ndarray, runs: np.ndarray, tokens: np.ndarray, width: int) -> np.ndarray:
    """A centred moving average of ``width`` checkpoints within each run (in token order); at a
    run's ends the window shrinks to the checkpoints there are (a run's final checkpoint
    averages with the one before it only)."""
    values = np.asarray(values, dtype=float)
    out = values.copy()
    for run in pd.unique(runs):
        rows = np.flatnonzero(runs == run)
        rows = rows[np.argsort(tokens[rows], kind="stable")]
        out[rows] = pd.Series(values[rows]).rolling(width, center=True, min_periods=1).mean().to_numpy()
    return out


def chain(law: str, one: StepOne, theta2: np.ndarray, cov2: np.ndarray, names2: tuple[str, ...], score_fn: ScoreOfLoss,
          fitted: np.ndarray, guard: Callable[[np.ndarray, float], None] | None = None,
          weights: np.ndarray | None = None) -> CurveFit:
    """One :class:`CurveFit` for step 1 followed by step 2 (``score_fn`` with ``theta2``).

    ``fitted``: step 2's scores at the fitting checkpoints (for the residual scatter).
    ``guard(theta2, predicted_loss)``, if given, raises NotPredictable for targets step 2 must not
    answer. ``weights``: step 2's weight per checkpoint in the link space (default: 1 / item
    noise, as a binomial likelihood weighs them).
    """
    step1, floor = one.fit, one.floor
    k1 = len(step1.theta)
    params = np.asarray(one.series.params, dtype=float)
    n_items = binomial_weights(one.series)
    dof = len(np.unique(params)) - len(theta2)
    theta = np.concatenate([step1.theta, theta2])

    def predicted_loss(theta, target: Target) -> float:
        return one.predicted_loss(theta[:k1], target)

    def score_at_loss(theta, loss_value: float) -> float:
        return float(score_fn(theta[k1:], np.array([loss_value]))[0])

    def mean_fn(theta, target: Target) -> float:
        return score_at_loss(theta, predicted_loss(theta, target))

    def step1_var(theta, target: Target) -> float:
        # the target's own deviation from the step-1 curve, seen through step 2's slope
        at = np.array([predicted_loss(theta, target)])
        slope = numeric_jacobian(lambda v: float(to_z(score_at_loss(theta, v[0]), floor)), at)[0]
        return float(slope**2 * step1.resid_var)

    def check(theta, target: Target) -> None:
        guard(theta[k1:], predicted_loss(theta, target))

    def step1_estimated(grad: np.ndarray, target: Target) -> tuple[float, float]:
        # step 1's share of the variance (its parameters and its scatter) is estimated on its own sizes
        part = max(float(grad[:k1] @ step1.cov @ grad[:k1]), 0.0) + step1_var(theta, target)
        return part, float(step1.dof)

    fit = CurveFit(
        law=law, names=tuple(f"step1.{n}" for n in step1.names) + tuple(f"step2.{n}" for n in names2), theta=theta,
        cov=block_diag(step1.cov, cov2), floor=floor, resid_var=0.0, dof=max(dof, 1), mean_fn=mean_fn,
        target_items=float(np.median(n_items)),
        no_interval="" if dof >= 1 else (f"{len(np.unique(params))} sizes cannot both fix step 2's {len(theta2)} parameters "
                                         "and measure its scatter; add a size"),
        x_label=f"predicted {one.loss_key}", x_of=lambda t: predicted_loss(theta, t),
        curve_fn=lambda th, xs: np.clip(score_fn(th[k1:], np.asarray(xs, dtype=float)), 0.0, 1.0),
        extra_var_fn=step1_var, n_points=len(one.series), guard=None if guard is None else check,
        notes=f"loss {one.loss_key}; step 1 {step1.form}",
    )
    def require_identified(cov2: np.ndarray) -> None:
        if not (np.all(np.isfinite(step1.cov)) and np.all(np.isfinite(cov2))):
            raise NotPredictable("the data do not identify every parameter of the two steps (covariance not finite)")

    if dof < 1:  # point forecasts only (auto's folds use them)
        require_identified(cov2)
        return fit
    # Step 2 counts sizes, as the one-step laws do (capcast.laws.curve.with_size_uncertainty): its
    # scatter, its covariance and the t's degrees of freedom from the fit's own link space.
    losses = np.asarray(one.loss, dtype=float)
    jac2 = numeric_jacobian(lambda th: to_z(score_fn(th, losses), floor), np.asarray(theta2, float))
    measured = size_uncertainty(fit, one.series.value, np.asarray(fitted, dtype=float), params, one.series.runs, n_items, dof,
                                jac2, weights)
    require_identified(measured.cov)
    return replace(fit, cov=block_diag(step1.cov, measured.cov), estimated_var_fn=step1_estimated, **measured.fields(pad=k1))
