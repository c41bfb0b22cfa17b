"""``loss-error``: Gadre et al. (2024), Eq. 5: downstream error as an exponential in a loss.

    error(L) = eps - k * exp(-gamma * L)        i.e. score = 1 - eps + k * exp(-gamma * L)

Step 1 maps (N, D) to the loss (a validation loss such as C4 by default, or the task's own loss)
with :mod:`capcast.laws.loss_law` (shared with ``ladder``: :mod:`capcast.laws.two_step`); step 2
is fitted with scipy ``curve_fit`` (their choice) on the fitting checkpoints. Intervals: joint
delta method through both steps plus residual scatter.

An exponential fitted on a narrow band of losses runs away when extrapolated (on OpenLM an
unconstrained fit forecast 100% for tasks scoring 2%), so step 2 is constrained:

* ``eps`` (the error of a useless model, L -> infinity) lies in [0, 1 - floor + 0.05]: no worse
  than guessing, give or take noise;
* step 2 is fitted as ``score = 1 - eps + lift * eps * exp(-gamma (L - L_min))`` with ``lift`` in
  (0, 1] and ``gamma`` in (0, 10]: on the fitting losses (L >= L_min, the best checkpoint's loss)
  the curve stays within [1 - eps, 1], and k = lift * eps * exp(gamma L_min) > 0;
* starts from a small grid around Gadre et al.'s fitted constants (eps 0.86, gamma 0.715);
* a fit whose covariance is not finite (parameters not identified) is not predictable, and so is
  any target where the curve leaves [0, 1]: a :class:`NotPredictable` with the reason, never a
  clipped number with a collapsed interval.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import curve_fit

from capcast.laws.base import NotPredictable, Series
from capcast.laws.curve import CurveFit
from capcast.laws.two_step import chain, fit_step_one

VALIDATION_LOSS_FIRST = ("val/c4:loss", "val/*", "bpb_gold", "loss", "nll", "bpb", "ppl", "logprob_gold")
EPS_SLACK = 0.05  # eps may exceed the chance error 1 - floor by this much (noise)
GAMMA_MAX = 10.0  # per unit of loss: beyond this the exponential is a step, not a trend
GAMMA_STARTS = (0.3, 0.715, 2.0, 5.0)  # 0.715: Gadre et al.'s 17-task fit


def fit_step_two(loss: np.ndarray, value: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(eps, lift, gamma), their covariance, and L_min: the constrained least-squares fit.

    ``score = 1 - eps + lift * eps * exp(-gamma (L - L_min))``; raises NotPredictable when no
    start converges or the covariance is not finite.
    """
    l_min = float(np.min(loss))
    eps_max = min(1.0, 1.0 - floor + EPS_SLACK)

    def model(x, eps, lift, gamma):
        return 1.0 - eps + lift * eps * np.exp(-gamma * (x - l_min))

    def jacobian(x, eps, lift, gamma):  # analytic: finite differences were a third of the fit's time
        decay = np.exp(-gamma * (x - l_min))
        return np.column_stack([lift * decay - 1.0, eps * decay, -lift * eps * (x - l_min) * decay])

    lower, upper = [0.0, 1e-9, 1e-6], [eps_max, 1.0, GAMMA_MAX]
    top = float(np.max(value))
    best = None
    for eps0 in (eps_max, min(0.86, eps_max), 0.5 * (eps_max + max(1.0 - top, 0.0))):
        lift0 = float(np.clip((top - (1.0 - eps0)) / max(eps0, 1e-6), 0.01, 0.99))
        for gamma0 in GAMMA_STARTS:
            start = np.clip([eps0, lift0, gamma0], np.array(lower) + 1e-9, np.array(upper) - 1e-9)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    popt, pcov = curve_fit(model, loss, value, p0=start, jac=jacobian, bounds=(lower, upper), maxfev=10000)
                except (RuntimeError, ValueError):
                    continue
            sse = float(np.sum((model(loss, *popt) - value) ** 2))
            if best is None or sse < best[2]:
                best = (popt, pcov, sse)
    if best is None:
        raise NotPredictable("the loss-error fit did not converge")
    popt, pcov, _ = best
    if not np.all(np.isfinite(pcov)):
        raise NotPredictable("the loss-error parameters are not identified by the data (infinite covariance)")
    return popt, pcov, l_min


@dataclass(frozen=True)
class LossErrorLaw:
    loss: str | None = None
    prefer: tuple[str, ...] = VALIDATION_LOSS_FIRST
    auto_candidate: bool = True  # auto chooses among the laws that say so
    name: str = "loss-error"
    description: str = "two-step (Gadre et al. 2024): (params, tokens) -> validation loss -> error = eps - k exp(-gamma L)"

    def fit(self, series: Series) -> CurveFit:
        one = fit_step_one(series, self.prefer, self.loss)
        popt, pcov, l_min = fit_step_two(one.loss, one.series.value, one.floor)
        l_max = float(np.max(one.loss))

        def score_fn(theta2, losses):
            eps, lift, gamma = theta2
            return 1.0 - eps + lift * eps * np.exp(-gamma * (np.asarray(losses, dtype=float) - l_min))

        def guard(theta2, loss_value: float) -> None:
            raw = float(score_fn(theta2, np.array([loss_value]))[0])
            if not (np.isfinite(raw) and 0.0 <= raw <= 1.0):
                raise NotPredictable(
                    f"loss-error leaves [0, 1] at the target: score {raw:.3g} at predicted {one.loss_key} {loss_value:.3f} "
                    f"(fitted on {l_min:.3f} to {l_max:.3f}); the exponential does not extrapolate that far"
                )

        fitted = score_fn(popt, one.loss)
        # curve_fit's least squares in score units weighs each checkpoint by (dscore/dz)^2 in the link space
        q = np.clip((fitted - one.floor) / (1 - one.floor), 1e-4, 1 - 1e-4)
        fit = chain(self.name, one, popt, pcov, ("eps", "lift", "gamma"), score_fn, fitted, guard,
                    weights=((1 - one.floor) * q * (1 - q)) ** 2)
        eps, lift, gamma = popt
        k = lift * eps * np.exp(gamma * l_min)
        return replace(fit, notes=f"{fit.notes}; eps {eps:.3g}, k {k:.3g}, gamma {gamma:.3g} (error = eps - k exp(-gamma L))")
