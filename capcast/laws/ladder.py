"""``ladder``: the two-step law of Bhagia et al. (2024), "model ladders".

Step 1: (N, D) -> task loss, ``L = E + A/N^alpha + B/D^beta`` (or ``E + A/C^alpha``), see
:mod:`capcast.laws.loss_law`. Step 2: loss -> score, a sigmoid in the loss between the chance floor
and a fitted ceiling, fitted over *all* checkpoints (intermediate ones included) with a binomial
likelihood. The forecast chains both; the interval propagates both parameter covariances (one
joint delta method), step 2's residual scatter, and step 1's residual scatter pushed through the
slope of step 2.

The loss is the task's own (``bpb_gold``, LAMBADA's ``ppl``, ...) when the table has one, else a
family-wide validation loss (``val/*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import block_diag

from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.curve import CurveFit, near_target_mask, numeric_jacobian, residual_var_z, to_z
from capcast.laws.loss_law import fit_loss_law, loss_curve, pick_loss
from capcast.laws.sigmoid import _items, bounded_sigmoid, fit_bounded_sigmoid
from capcast.laws.signal import drop_early_checkpoints, require_score_series, score_floor, subset

TASK_LOSS_FIRST = ("bpb_gold", "loss", "nll", "bpb", "ppl", "logprob_gold", "val/c4:loss", "val/*")


def needs_params_and_tokens(target: Target, joint: bool) -> None:
    if joint and (target.params is None or target.tokens is None):
        raise NotPredictable("step 1 fits loss on params and tokens separately; give the target's params and tokens, not only flops")


@dataclass(frozen=True)
class LadderLaw:
    """Compute -> task loss -> score. ``loss`` names the loss column to use (default: auto)."""

    loss: str | None = None
    prefer: tuple[str, ...] = TASK_LOSS_FIRST
    name: str = "ladder"
    description: str = "two-step (Bhagia et al. 2024): (params, tokens) -> task loss -> score sigmoid over all checkpoints"

    def fit(self, series: Series) -> CurveFit:
        series = drop_early_checkpoints(require_score_series(series))
        loss_key, loss = pick_loss(series, self.prefer, self.loss)
        ok = np.isfinite(loss) & (loss > 0)
        series, loss = subset(series, ok), loss[ok]
        if len(series) < 4:
            raise NotPredictable(f"fewer than 4 checkpoints with both a score and {loss_key}")
        step1 = fit_loss_law(series.params, series.tokens, series.flops, loss)
        floor = score_floor(series)
        l0 = float(np.mean(loss))
        x = -(loss - l0)  # lower loss -> higher score
        step2 = fit_bounded_sigmoid(x, series.value, _items(series), floor, None)
        ceiling = step2.ceiling
        k1 = len(step1.theta)
        theta = np.concatenate([step1.theta, step2.theta])
        cov = block_diag(np.nan_to_num(step1.cov), np.nan_to_num(step2.cov))
        joint = step1.joint

        def predicted_loss(theta, target: Target) -> float:
            needs_params_and_tokens(target, joint)
            return float(loss_curve(theta[:k1], np.atleast_1d(target.params or 0.0), np.atleast_1d(target.tokens or 0.0),
                                    np.atleast_1d(target.compute or 0.0), joint)[0])

        def score_at_loss(theta, loss_value: float) -> float:
            return float(bounded_sigmoid(theta[k1:], np.array([-(loss_value - l0)]), floor, ceiling)[0])

        def mean_fn(theta, target: Target) -> float:
            return score_at_loss(theta, predicted_loss(theta, target))

        def step1_var(theta, target: Target) -> float:
            # the target's own deviation from the step-1 curve, seen through step 2's slope
            at = np.array([predicted_loss(theta, target)])
            slope = numeric_jacobian(lambda v: float(to_z(score_at_loss(theta, v[0]), floor)), at)[0]
            return float(slope**2 * step1.resid_var)

        names = tuple(f"step1.{n}" for n in step1.names) + tuple(f"step2.{n}" for n in step2.names)
        return CurveFit(
            law=self.name, names=names, theta=theta, cov=cov, floor=floor,
            resid_var=residual_var_z(series.value, step2.fitted, floor, near_target_mask(x), len(step2.theta)),
            dof=max(len(series) - len(step2.theta), 1), mean_fn=mean_fn,
            x_label=f"predicted {loss_key}", x_of=lambda t: predicted_loss(theta, t),
            curve_fn=lambda th, xs: bounded_sigmoid(th[k1:], -(np.asarray(xs) - l0), floor, ceiling),
            extra_var_fn=step1_var, n_points=len(series),
            notes=f"loss {loss_key}; step 1 {'L(N, D)' if joint else 'L(C)'}",
        )
