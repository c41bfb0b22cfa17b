"""``loss-error``: Gadre et al. (2024), Eq. 5: downstream error as an exponential in a loss.

    error(L) = eps - k * exp(-gamma * L)        i.e. score = 1 - eps + k * exp(-gamma * L)

Step 1 maps (N, D) to the loss (a validation loss such as C4 by default, or the task's own loss)
with :mod:`capcast.laws.loss_law`; step 2 is fitted with scipy ``curve_fit`` (their choice) on the
fitting checkpoints. Intervals: joint delta method through both steps plus residual scatter.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.linalg import block_diag
from scipy.optimize import curve_fit

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit, near_target_mask, numeric_jacobian, residual_var_z, to_z
from capcast.laws.ladder import needs_params_and_tokens
from capcast.laws.loss_law import fit_loss_law, loss_curve, pick_loss
from capcast.laws.signal import drop_early_checkpoints, require_score_series, score_floor, subset

VALIDATION_LOSS_FIRST = ("val/c4:loss", "val/*", "bpb_gold", "loss", "nll", "bpb", "ppl", "logprob_gold")


def score_of_loss(loss, eps, k, gamma):
    return 1.0 - eps + k * np.exp(-gamma * np.asarray(loss, dtype=float))


@dataclass(frozen=True)
class LossErrorLaw:
    loss: str | None = None
    prefer: tuple[str, ...] = VALIDATION_LOSS_FIRST
    name: str = "loss-error"
    description: str = "two-step (Gadre et al. 2024): (params, tokens) -> validation loss -> error = eps - k exp(-gamma L)"

    def fit(self, series: Series) -> CurveFit:
        series = drop_early_checkpoints(require_score_series(series))
        loss_key, loss = pick_loss(series, self.prefer, self.loss)
        ok = np.isfinite(loss) & (loss > 0)
        series, loss = subset(series, ok), loss[ok]
        if len(series) < 4:
            raise NotPredictable(f"fewer than 4 checkpoints with both a score and {loss_key}")
        step1 = fit_loss_law(series.params, series.tokens, series.flops, loss)
        floor = score_floor(series)
        best = None
        for start in ([1 - floor, 2.0, 0.7], [0.86, 2.2, 0.715], [1 - floor, 20.0, 2.0], [1 - floor, 0.5, 0.3]):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    popt, pcov = curve_fit(score_of_loss, loss, series.value, p0=start,
                                           bounds=([0, 0, 0], [1.5, np.inf, 20]), maxfev=10000)
                except (RuntimeError, ValueError):
                    continue
            sse = float(np.sum((score_of_loss(loss, *popt) - series.value) ** 2))
            if best is None or sse < best[2]:
                best = (popt, pcov, sse)
        if best is None:
            raise NotPredictable("the loss-error fit did not converge")
        popt, pcov, _ = best
        fitted = score_of_loss(loss, *popt)
        k1 = len(step1.theta)
        theta = np.concatenate([step1.theta, popt])
        cov = block_diag(np.nan_to_num(step1.cov), np.nan_to_num(pcov))
        joint = step1.joint

        def predicted_loss(theta, target: Target) -> float:
            needs_params_and_tokens(target, joint)
            return float(loss_curve(theta[:k1], np.atleast_1d(target.params or 0.0), np.atleast_1d(target.tokens or 0.0),
                                    np.atleast_1d(target.compute or 0.0), joint)[0])

        def clipped(theta, loss_value):
            return float(np.clip(score_of_loss(loss_value, *theta[k1:]), 0.0, 1.0))

        def mean_fn(theta, target: Target) -> float:
            return clipped(theta, predicted_loss(theta, target))

        def step1_var(theta, target: Target) -> float:
            at = np.array([predicted_loss(theta, target)])
            slope = numeric_jacobian(lambda v: float(to_z(clipped(theta, v[0]), floor)), at)[0]
            return float(slope**2 * step1.resid_var)

        names = tuple(f"step1.{n}" for n in step1.names) + ("eps", "k", "gamma")
        return CurveFit(
            law=self.name, names=names, theta=theta, cov=cov, floor=floor,
            resid_var=residual_var_z(series.value, fitted, floor, near_target_mask(-loss), 3),
            dof=max(len(series) - 3, 1), mean_fn=mean_fn,
            x_label=f"predicted {loss_key}", x_of=lambda t: predicted_loss(theta, t),
            curve_fn=lambda th, xs: np.clip(score_of_loss(xs, *th[k1:]), 0, 1),
            extra_var_fn=step1_var, n_points=len(series),
            notes=f"loss {loss_key}; step 1 {'L(N, D)' if joint else 'L(C)'}",
        )
