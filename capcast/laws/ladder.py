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

from capcast.laws.base import Series
from capcast.laws.curve import CurveFit
from capcast.laws.sigmoid import binomial_weights, bounded_sigmoid, fit_bounded_sigmoid
from capcast.laws.two_step import chain, fit_step_one

TASK_LOSS_FIRST = ("bpb_gold", "loss", "nll", "bpb", "ppl", "logprob_gold", "val/c4:loss", "val/*")


@dataclass(frozen=True)
class LadderLaw:
    """Compute -> task loss -> score. ``loss`` names the loss column to use (default: auto)."""

    loss: str | None = None
    prefer: tuple[str, ...] = TASK_LOSS_FIRST
    auto_candidate: bool = True  # auto chooses among the laws that say so
    name: str = "ladder"
    description: str = "two-step (Bhagia et al. 2024): (params, tokens) -> task loss -> score sigmoid over all checkpoints"

    def fit(self, series: Series) -> CurveFit:
        one = fit_step_one(series, self.prefer, self.loss)
        l0 = float(np.mean(one.loss))
        # step 2: a sigmoid in -(loss - mean loss) (lower loss -> higher score) over all checkpoints
        step2 = fit_bounded_sigmoid(-(one.loss - l0), one.series.value, binomial_weights(one.series), one.floor, None)
        ceiling = step2.ceiling

        def score_fn(theta2, losses):
            return bounded_sigmoid(theta2, -(np.asarray(losses) - l0), one.floor, ceiling)

        return chain(self.name, one, step2.theta, step2.cov, step2.names, score_fn, step2.fitted)
