"""The simulated families the calibration benchmark and test draw from follow the law they claim."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from capcast.laws.schedule import schedule_areas
from capcast.testing.simulate import REGIMES, SIM_SCHEDULE, simulate_family


def test_the_saturating_shape_is_saturating_powers_law_at_the_regimes_level_and_slope():
    """Without lack of fit the expected score at any compute is chance + (1 - chance) q with
    q = exp(-A (C/C_top)^-alpha - c): its level at the largest fitting size is the regime's, and it
    stays below its ceiling exp(-c) < 1 (a sigmoid's would reach 1)."""
    rng = np.random.default_rng(0)
    near, far = (simulate_family(rng, shape="saturating", target_decades=d, n_items=20000) for d in (1e-6, 6.0))
    a, _ = REGIMES["mid"]
    q0 = float(expit(a))
    ceiling = q0 + 0.8 * (1 - q0)
    assert (near.true_score - 0.25) / 0.75 == pytest.approx(q0, abs=1e-6)
    assert (far.true_score - 0.25) / 0.75 == pytest.approx(ceiling, abs=5e-3)  # saturated below 1


def test_the_exponential_shape_accelerates_as_the_loss_falls():
    """loss-error's form: the normalised score grows as exp(gamma (L_top - L)), so its logit rises
    faster per unit of loss where the loss is lower, unlike ladder's logit-linear form."""
    rng = np.random.default_rng(1)
    linear = simulate_family(rng, loss_metric="bpb_gold", target_decades=0.8, n_items=20000)
    rng = np.random.default_rng(1)
    exponential = simulate_family(rng, loss_metric="bpb_gold", shape="exponential", target_decades=0.8, n_items=20000)
    assert exponential.true_score > linear.true_score + 0.03


def test_schedules_give_every_run_a_cosine_schedule_and_the_annealing_laws_losses():
    family = simulate_family(np.random.default_rng(2), loss_metric="bpb_gold", schedules=True, seeds=2)
    scores = family.scores
    runs = set(scores["run"])
    assert set(family.schedules) == runs
    loss = scores[scores["metric"] == "bpb_gold"]
    for run, rows in loss.groupby("run"):
        schedule = family.schedules[run]
        assert list(rows["step"]) == [500, 1000, SIM_SCHEDULE["total_steps"]]
        n = float(rows["params"].iloc[0])
        s1, s2 = schedule_areas(schedule, rows["step"].to_numpy())
        law = 1.7 + 0.6 * (n / 1e9) ** -0.3 + 0.5 * (s1 / 1e11) ** -0.25 - 0.3 * s2 / 1e11
        assert rows["value"].to_numpy() == pytest.approx(law)
        # an intermediate checkpoint of a cosine run sits above the loss a constant rate would give
        constant = 1.7 + 0.6 * (n / 1e9) ** -0.3 + 0.5 * (rows["tokens"].to_numpy() / 1e11) ** -0.25
        assert rows["value"].iloc[1] > constant[1]
    target = scores[scores["run"] == "target"]
    assert int(target["step"].iloc[0]) == SIM_SCHEDULE["total_steps"]
    assert family.schedules["target"].tokens_per_step * SIM_SCHEDULE["total_steps"] == pytest.approx(family.target.tokens)


@pytest.mark.parametrize("kwargs", [{"shape": "exponential"}, {"schedules": True}, {"shape": "nonsense"}])
def test_a_shape_the_simulation_cannot_give_is_a_clear_error(kwargs):
    with pytest.raises(ValueError):
        simulate_family(np.random.default_rng(0), **kwargs)
