"""The step-1 loss laws' and loss-error's analytic Jacobians are their residuals' derivatives
(checked against finite differences), and step 1 reaches the same fit with them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from capcast.laws.ladder_schedule import annealing_loss, annealing_loss_jacobian
from capcast.laws.loss_law import _fit_loss_law, log_loss_residuals, loss_curve, loss_curve_jacobian

RNG = np.random.default_rng(0)
PARAMS = 10 ** RNG.uniform(7, 10, 12)
TOKENS = 10 ** RNG.uniform(9, 12, 12)
FLOPS = 6 * PARAMS * TOKENS


def numeric(function, theta) -> np.ndarray:
    return np.stack([approx_fprime(theta, lambda th, i=i: function(th)[i], 1e-7) for i in range(len(PARAMS))])


@pytest.mark.parametrize(("joint", "theta"), [(True, np.array([1.5, -0.5, 0.3, 0.2, 0.25])), (False, np.array([1.7, 0.1, 0.15]))],
                         ids=["L(N, D)", "L(C)"])
def test_the_loss_law_jacobian_matches_finite_differences(joint, theta) -> None:
    log_loss = np.log(loss_curve(theta, PARAMS, TOKENS, FLOPS, joint)) + RNG.normal(0, 0.01, len(PARAMS))
    residuals, jacobian = log_loss_residuals(lambda th: loss_curve(th, PARAMS, TOKENS, FLOPS, joint),
                                             lambda th: loss_curve_jacobian(th, PARAMS, TOKENS, FLOPS, joint), log_loss)
    assert jacobian(theta) == pytest.approx(numeric(residuals, theta), rel=1e-5, abs=1e-7)


def test_the_annealing_law_jacobian_matches_finite_differences() -> None:
    s1, s2 = 10 ** RNG.uniform(10, 12, 12), 10 ** RNG.uniform(9, 11, 12)
    theta = np.array([1.5, -0.5, 0.3, 0.2, 0.25, 0.3])

    def curve(th):
        return annealing_loss(th, PARAMS, s1, s2, 1e9, 1e11)

    assert annealing_loss_jacobian(theta, PARAMS, s1, s2, 1e9, 1e11) == pytest.approx(numeric(curve, theta), rel=1e-5, abs=1e-7)


def test_loss_error_step_two_jacobian_matches_finite_differences(monkeypatch) -> None:
    import capcast.laws.loss_error as loss_error

    seen = {}
    original = loss_error.curve_fit

    def spy(model, x, y, p0, jac, **kwargs):  # the model and Jacobian step two hands curve_fit
        seen.setdefault("pair", (model, jac, x))
        return original(model, x, y, p0=p0, jac=jac, **kwargs)

    loss = np.linspace(2.5, 4.0, 10)
    score = 1 - 0.7 + 0.5 * 0.7 * np.exp(-1.2 * (loss - loss.min())) + RNG.normal(0, 0.005, 10)
    monkeypatch.setattr(loss_error, "curve_fit", spy)
    loss_error.fit_step_two(loss, score, 0.25)
    model, jac, x = seen["pair"]
    theta = np.array([0.7, 0.5, 1.2])
    finite = np.stack([approx_fprime(theta, lambda th, i=i: model(x, *th)[i], 1e-7) for i in range(len(x))])
    assert jac(x, *theta) == pytest.approx(finite, rel=1e-5, abs=1e-7)


def test_step_one_with_the_jacobian_reaches_the_finite_difference_fit(monkeypatch) -> None:
    """The analytic Jacobian changes the path, not the optimum: the same fit as scipy's 2-point
    differences on a noisy Chinchilla-form family (three tokens-per-parameter ratios, so L(N, D))."""
    import capcast.laws.loss_law as loss_law

    params = np.repeat(np.geomspace(1e7, 3e9, 6), 3)
    tokens = params * np.tile([5.0, 10.0, 20.0], 6)
    flops = 6 * params * tokens
    loss = 1.7 + 0.6 * (params / 1e9) ** -0.3 + 0.5 * (tokens / 1e11) ** -0.25
    loss = loss * np.exp(RNG.normal(0, 0.003, len(loss)))
    with_jacobian = _fit_loss_law(params, tokens, flops, loss)
    original = loss_law.best_huber_fit
    monkeypatch.setattr(loss_law, "best_huber_fit", lambda residuals, starts, lower, upper, jac=None: original(residuals, starts, lower, upper))
    finite = _fit_loss_law(params, tokens, flops, loss)
    assert with_jacobian.joint and finite.joint
    assert with_jacobian.theta == pytest.approx(finite.theta, rel=1e-3, abs=1e-4)
    assert with_jacobian.resid_var == pytest.approx(finite.resid_var, rel=1e-2, abs=1e-9)


@pytest.mark.parametrize("joint", [True, False], ids=["L(N, D)", "L(C)"])
def test_step_one_two_stage_starts_reach_the_cost_of_running_every_start(monkeypatch, joint) -> None:
    """best_huber_fit polishes only the best starts after a few evaluations each: on noisy families
    of either form (where the starts end in different minima) it ends where running every start to
    convergence ends, and on fewer evaluations."""
    import capcast.laws.loss_law as loss_law

    calls = []
    original = loss_law.best_huber_fit
    monkeypatch.setattr(loss_law, "best_huber_fit", lambda *args: calls.append(args) or original(*args))
    rng = np.random.default_rng(5)
    for _ in range(6):
        params = np.repeat(np.geomspace(1e7, 3e9, int(rng.integers(4, 7))), 3)
        tokens = params * (np.tile([5.0, 10.0, 20.0], len(params) // 3) if joint else 20.0)
        loss = 1.7 + 0.6 * (params / 1e9) ** -0.3 + 0.5 * (tokens / 1e11) ** -0.25
        _fit_loss_law(params, tokens, 6 * params * tokens, loss * np.exp(rng.normal(0, 0.01, len(loss))))
    assert len(calls) == 6 and all(len(c[1]) == (12 if joint else 9) for c in calls)  # the form asked for
    for residuals, starts, lower, upper, jac in calls:
        counted = {"one stage": [], "two stages": []}
        exhaustive = original(lambda theta: counted["one stage"].append(1) or residuals(theta), starts, lower, upper, jac,
                              coarse_evaluations=None)
        two_stage = original(lambda theta: counted["two stages"].append(1) or residuals(theta), starts, lower, upper, jac)
        assert two_stage.cost == pytest.approx(exhaustive.cost, rel=1e-6)
        assert len(counted["two stages"]) < len(counted["one stage"])
