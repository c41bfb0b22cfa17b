"""``ladder-schedule``: ``ladder`` with a schedule-aware step 1 (Tissue et al. 2024, "Scaling law
with learning rate annealing", extended with a model-size term as they and Wang et al. 2025 do).

Step 1, on **every** checkpoint past the first 10% of its run (not one point per run)::

    L = E + A * (N / N0)^-alpha + B * (S1 / S0)^-beta - C * (S2 / S0)

``S1`` (forward area) and ``S2`` (annealing area) are the checkpoint's learning-rate areas in
peak-LR-equivalent tokens (:mod:`capcast.laws.schedule`; a constant-LR run has S1 = tokens and
S2 = 0), so one (B, beta, C) serves every size, batch size and run length. ``N0`` and ``S0`` are
the fitting checkpoints' median N and S1 (they keep the constants near 1; the forecast does not
depend on them). With the areas, an intermediate checkpoint of a cosine run is evidence about the
law, not an off-trend point: its S2 says how far it is from annealed. Fitted like ``ladder``'s
step 1 (scipy ``least_squares`` on log L, Huber, a grid of starts; covariance cluster-robust by
size, the scatter a new size brings measured on size-mean residuals).

The forecast predicts the loss at the target from its params and the areas of its own schedule
(``Target.schedule``) at its tokens. ``capcast forecast FAMILY.yaml`` fills it from the spec's
``schedules``: the target run's own, else the longest fitting run's schedule stretched to the
target's tokens (same shape; :func:`capcast.laws.schedule.stretched`). A target without a
schedule is not predictable (S2's time constant is in steps, so the areas do not simply scale
with tokens). Step 2 (loss -> score) is ``ladder``'s: a sigmoid over every checkpoint, loss and
score smoothed within runs (:func:`capcast.laws.ladder.sigmoid_step_two`); intervals chain both
steps (:func:`capcast.laws.two_step.chain`).

Without areas in the series (no ``schedules`` in the family spec) it is not predictable, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit
from capcast.laws.ladder import SMOOTH_WIDTH, TASK_LOSS_FIRST, sigmoid_step_two
from capcast.laws.loss_law import best_huber_fit, log_loss_residuals, size_robust_cov
from capcast.laws.schedule import ANNEAL_AREA, LR_AREA, final_areas
from capcast.laws.signal import score_floor
from capcast.laws.two_step import StepOne, smooth_within_runs, step_two_data

NAMES = ("E", "log_A", "alpha", "log_B", "beta", "C")
MIN_SIZES = 4  # the size term's 3 parameters and its scatter
MIN_CHECKPOINTS = 8
NO_SCHEDULE = ("no schedule: give schedules in the family spec (schedules: run -> warmup_steps, peak_lr, final_lr, "
               "decay, total_steps, tokens_per_step) so each checkpoint's learning-rate areas are known; "
               "capcast backtest takes them with --schedules FAMILY.yaml")
NO_TARGET_SCHEDULE = ("the target has no schedule: give its run's schedule in the family spec, or Target(schedule=...); "
                      "capcast forecast gives a target without one the longest fitting run's schedule shape")


def annealing_loss(theta, params, s1, s2, n0: float, s0: float) -> np.ndarray:
    e, log_a, alpha, log_b, beta, c = theta
    return e + np.exp(log_a) * (params / n0) ** -alpha + np.exp(log_b) * (s1 / s0) ** -beta - c * (s2 / s0)


def annealing_loss_jacobian(theta, params, s1, s2, n0: float, s0: float) -> np.ndarray:
    """d annealing_loss / d theta, one row per checkpoint (analytic, as :mod:`capcast.laws.loss_law`'s)."""
    _, log_a, alpha, log_b, beta, _ = theta
    log_n, log_s1 = np.log(np.asarray(params, float) / n0), np.log(np.asarray(s1, float) / s0)
    by_n, by_s1 = np.exp(log_a - alpha * log_n), np.exp(log_b - beta * log_s1)
    return np.column_stack([np.ones_like(by_n), by_n, -by_n * log_n, by_s1, -by_s1 * log_s1, -np.asarray(s2, float) / s0])


@dataclass(frozen=True)
class ScheduleLossFit:
    """Step 1's fit: ``theta`` = (E, log A, alpha, log B, beta, C), its size-robust covariance, the
    variance of a size's deviation (loss units) and the scales N0, S0."""

    theta: np.ndarray
    cov: np.ndarray
    resid_var: float
    n0: float
    s0: float
    dof: int = 1  # the sizes less the 3 parameters that act between sizes: what resid_var is measured on
    names: tuple[str, ...] = NAMES
    joint: bool = True
    form: str = "L(N, S1, S2) (LR annealing)"

    def target_areas(self, target: Target) -> tuple[float, float]:
        if target.schedule is None:
            raise NotPredictable(NO_TARGET_SCHEDULE)
        schedule = target.schedule
        if isinstance(schedule, dict):
            schedule = SimpleNamespace(**{"decay_fraction": None, **schedule})
        return final_areas(schedule, target.tokens)

    def loss_at(self, theta: np.ndarray, target: Target) -> float:
        if target.params is None or target.tokens is None:
            raise NotPredictable("ladder-schedule predicts the loss from params and the schedule's areas; give the target's params and tokens")
        s1, s2 = self.target_areas(target)
        return float(annealing_loss(theta, float(target.params), s1, s2, self.n0, self.s0))


def fit_annealing_loss(params, s1, s2, loss) -> ScheduleLossFit:
    """Least squares on log L (Huber, as :mod:`capcast.laws.loss_law`) from a grid of starts."""
    n0, s0 = float(np.median(params)), float(np.median(s1))
    log_loss = np.log(loss)
    e_max = float(np.min(loss)) * 0.999

    residuals, jacobian = log_loss_residuals(lambda theta: annealing_loss(theta, params, s1, s2, n0, s0),
                                             lambda theta: annealing_loss_jacobian(theta, params, s1, s2, n0, s0), log_loss)

    lower, upper = [0, -20, 0, -20, 0, 0], [e_max, 20, 3, 20, 3, 50]
    starts = [[e * e_max, np.log(0.3), alpha, np.log(0.3), beta, c]
              for e in (0.0, 0.5, 0.9) for alpha in (0.1, 0.4) for beta in (0.2, 0.6) for c in (0.0, 0.3)]
    best = best_huber_fit(residuals, starts, lower, upper, jacobian)
    theta = best.x
    cov = size_robust_cov(best.jac, residuals(theta), params)
    if not np.all(np.isfinite(cov)):
        raise NotPredictable("step 1's annealing-law parameters are not identified by the data (covariance not finite)")
    deviation = loss - annealing_loss(theta, params, s1, s2, n0, s0)
    sizes = np.unique(params)
    size_means = np.array([deviation[params == n].mean() for n in sizes])
    dof = max(len(sizes) - 3, 1)
    resid_var = float(np.sum(size_means**2) / dof)
    return ScheduleLossFit(theta=theta, cov=cov, resid_var=resid_var, n0=n0, s0=s0, dof=dof)


@dataclass(frozen=True)
class LadderScheduleLaw:
    """Schedule-aware compute -> task loss -> score; ``loss`` names the loss column (default: auto)."""

    loss: str | None = None
    prefer: tuple[str, ...] = TASK_LOSS_FIRST
    smooth_width: int = SMOOTH_WIDTH
    auto_candidate: bool = True  # auto combines the laws that say so (it skips this one without schedules)
    name: str = "ladder-schedule"
    description: str = ("two-step, schedule-aware: task loss = E + A/N^alpha + B*S1^-beta - C*S2 (Tissue et al. 2024 LR areas) on every "
                        "checkpoint -> score sigmoid; needs schedules in the family spec")

    def fit(self, series: Series) -> CurveFit:
        one = fit_schedule_step_one(series, self.prefer, self.loss, self.smooth_width)
        fit = sigmoid_step_two(self.name, one)
        e, _, alpha, _, beta, c = one.fit.theta
        return replace(fit, notes=f"{fit.notes}; alpha {alpha:.3g}, beta {beta:.3g}, C {c:.3g} (areas scaled by S0 = {one.fit.s0:.3g} "
                                  f"tokens)")


def fit_schedule_step_one(series: Series, prefer: tuple[str, ...], loss_name: str | None, smooth_width: int = SMOOTH_WIDTH) -> StepOne:
    """Step 1 on every checkpoint with LR areas; step 2's data smoothed as ``ladder``'s."""
    if LR_AREA not in series.extra or not np.isfinite(np.asarray(series.extra[LR_AREA], dtype=float)).any():
        raise NotPredictable(NO_SCHEDULE)
    series, loss_key, loss = step_two_data(series, prefer, loss_name)
    s1 = np.asarray(series.extra[LR_AREA], dtype=float)
    s2 = np.asarray(series.extra[ANNEAL_AREA], dtype=float)
    known = np.isfinite(s1) & np.isfinite(s2) & (s1 > 0)
    sizes = len(np.unique(series.params[known]))
    if known.sum() < MIN_CHECKPOINTS or sizes < MIN_SIZES:
        raise NotPredictable(f"step 1 (LR annealing) needs {MIN_CHECKPOINTS} checkpoints of {MIN_SIZES} sizes with a schedule and "
                             f"{loss_key}; there are {int(known.sum())} of {sizes}")
    step1 = fit_annealing_loss(series.params[known], s1[known], s2[known], loss[known])
    floor = score_floor(series)
    if smooth_width > 1:
        runs = series.runs
        series = replace(series, value=smooth_within_runs(series.value, runs, series.tokens, smooth_width))
        loss = smooth_within_runs(loss, runs, series.tokens, smooth_width)
    return StepOne(series=series, loss_key=loss_key, loss=loss, fit=step1, floor=floor, loss_fn=step1.loss_at)
