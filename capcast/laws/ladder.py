"""``ladder``: the two-step law of Bhagia et al. (2024), "model ladders", as the paper fits it.

Step 1: (N, D) -> task loss, ``L = E + A/N^alpha + B/D^beta`` (or ``E + A/C^alpha``), see
:mod:`capcast.laws.loss_law`, fitted on **one point per run**: the mean loss of the run's
checkpoints in the final 10% of its tokens (the final one at least; Bhagia et al. average the
last 5 checkpoints), at the run's final (N, D). Intermediate checkpoints of a cosine or WSD run
have not annealed: their loss sits above what a run stopped there would reach, and fitting them
as finished runs biases the law (``step_one="all"`` keeps that older fit, for comparison).
It needs 4 runs with the loss (L(C)'s 3 parameters and its scatter), 7 for L(N, D).

Step 2: loss -> score, a sigmoid in the loss between the chance floor and a fitted ceiling,
fitted over **all** checkpoints past the first 10% (intermediate ones included) with a binomial
likelihood, on the loss and the score smoothed within each run by a centred moving average of
``smooth_width`` checkpoints (default 3: the checkpoint and its neighbours; Bhagia et al. use 5
on their denser checkpoints; a run's ends average over the neighbours there are).

The forecast chains both; the interval propagates both parameter covariances (one joint delta
method), step 2's residual scatter, and step 1's residual scatter pushed through the slope of
step 2 (:func:`capcast.laws.two_step.chain`). The loss is the task's own (``bpb_gold``,
LAMBADA's ``ppl``, ...) when the table has one, else a family-wide validation loss (``val/*``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capcast.laws.base import Series
from capcast.laws.curve import CurveFit
from capcast.laws.sigmoid import binomial_weights, bounded_sigmoid, fit_bounded_sigmoid
from capcast.laws.two_step import StepOne, chain, fit_step_one

TASK_LOSS_FIRST = ("bpb_gold", "loss", "nll", "bpb", "ppl", "logprob_gold", "val/c4:loss", "val/*")
SMOOTH_WIDTH = 3  # checkpoints in step 2's centred moving average within a run


def sigmoid_step_two(name: str, one: StepOne) -> CurveFit:
    """Step 2 of ``ladder`` (and ``ladder-schedule``): a sigmoid in -(loss - mean loss) (lower loss
    -> higher score) over step 2's checkpoints, chained to step 1."""
    l0 = float(np.mean(one.loss))
    step2 = fit_bounded_sigmoid(-(one.loss - l0), one.series.value, binomial_weights(one.series), one.floor, None)
    ceiling = step2.ceiling

    def score_fn(theta2, losses):
        return bounded_sigmoid(theta2, -(np.asarray(losses) - l0), one.floor, ceiling)

    return chain(name, one, step2.theta, step2.cov, step2.names, score_fn, step2.fitted)


@dataclass(frozen=True)
class LadderLaw:
    """Compute -> task loss -> score. ``loss`` names the loss column to use (default: auto);
    ``step_one``: ``"final"`` (one point per run, the paper's fit) or ``"all"`` (every checkpoint,
    capcast's fit before issue 11); ``smooth_width``: step 2's moving average (1: none)."""

    loss: str | None = None
    prefer: tuple[str, ...] = TASK_LOSS_FIRST
    step_one: str = "final"
    smooth_width: int = SMOOTH_WIDTH
    auto_candidate: bool = True  # auto chooses among the laws that say so
    name: str = "ladder"
    description: str = ("two-step (Bhagia et al. 2024): (params, tokens) -> task loss on each run's final checkpoints "
                        "-> score sigmoid over all checkpoints")

    def fit(self, series: Series) -> CurveFit:
        one = fit_step_one(series, self.prefer, self.loss, self.step_one, self.smooth_width)
        return sigmoid_step_two(self.name, one)
