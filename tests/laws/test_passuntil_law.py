"""The PassUntil law, the acceleration test and instance-level fits, on data simulated from the law."""

from __future__ import annotations

import numpy as np
import pytest

from capcast.passuntil import estimators as est
from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.passuntil import PassUntilLaw, acceleration_test, fit_instances, from_f, to_f

SIZES = np.array([1e6, 3e6, 1e7, 3e7, 1e8, 3e8])
TARGET = 3e9


def law_rate(n, c=60.0, alpha=0.25):
    return np.exp(-c * np.asarray(n, float) ** (-alpha))


def series_of(values, params=SIZES, tokens=1e9) -> Series:
    params = np.asarray(params, float)
    return Series(
        task="t",
        metric="pass_rate",
        model=np.array([f"m{i}" for i in range(len(params))]),
        params=params,
        tokens=np.full(len(params), tokens),
        flops=6 * params * tokens,
        value=np.asarray(values, float),
    )


def test_transform_round_trip():
    p = np.array([1e-6, 0.01, 0.5, 0.99])
    assert from_f(to_f(p)) == pytest.approx(p)
    assert np.isnan(to_f([0.0, 1.0])).all()


def test_law_recovers_exact_parameters_and_extrapolates():
    fit = PassUntilLaw().fit(series_of(law_rate(SIZES)))
    assert fit.params["alpha"] == pytest.approx(0.25, rel=1e-6)
    assert fit.params["intercept"] == pytest.approx(np.log(60.0), rel=1e-6)
    pred = fit.predict(Target(params=TARGET))
    assert pred.mean == pytest.approx(float(law_rate(TARGET)), rel=1e-6)
    assert "alpha" in fit.summary()


def test_law_on_measured_passuntil_rates_covers_truth():
    """Rates from 1e-5 up, measured by simulated PassUntil sampling of 50 instances per size."""
    rng = np.random.default_rng(7)
    difficulty = rng.normal(0, 0.4, size=50)  # per-instance shift in F space
    covered, errors = 0, []
    for _ in range(40):
        measured = []
        for n in SIZES:
            p_inst = from_f(to_f(law_rate(n)) + difficulty)
            c, k = est.simulate_passuntil(p_inst, r=3, cap=10**7, rng=rng)
            measured.append(est.task_score(c, k, r=3).value)
        fit = PassUntilLaw().fit(series_of(measured))
        truth = float(np.mean(from_f(to_f(law_rate(TARGET)) + difficulty)))
        pred = fit.predict(Target(params=TARGET), level=0.9)
        covered += pred.lower <= truth <= pred.upper
        errors.append(abs(np.log(pred.mean / truth)))
    assert np.median(errors) < 0.25
    assert covered >= 30  # nominal 36 of 40


def test_compute_axis_and_missing_target_size():
    law = PassUntilLaw(axis="compute", name="passuntil_compute")
    fit = law.fit(series_of(law_rate(SIZES)))
    assert fit.predict(Target(params=TARGET, tokens=1e9)).mean == pytest.approx(float(law_rate(TARGET)), rel=1e-6)
    with pytest.raises(NotPredictable, match="no params"):
        PassUntilLaw().fit(series_of(law_rate(SIZES))).predict(Target(flops=1e20))


def test_zeros_make_it_not_predictable():
    values = np.array([0, 0, 0, 0, 1e-4, 1e-3])
    with pytest.raises(NotPredictable, match="between 0 and 1"):
        PassUntilLaw().fit(series_of(values))
    fit = PassUntilLaw().fit(series_of(np.r_[0.0, law_rate(SIZES[1:])]))
    assert fit.n_dropped == 1 and fit.n_points == 5


def test_acceleration_test_verdicts():
    x = np.log(np.geomspace(1e6, 1e9, 8))
    noise = np.random.default_rng(0).normal(0, 0.01, size=8)
    line = 5.0 - 0.3 * x
    xc = x - x.mean()
    linear = acceleration_test(x, from_f(line + noise))
    convex = acceleration_test(x, from_f(line + 0.05 * xc**2 + noise))
    concave = acceleration_test(x, from_f(line - 0.05 * xc**2 + noise))
    assert linear.verdict.startswith("scaling-law growth")
    assert convex.verdict.startswith("sub-scaling") and convex.curvature > 0
    assert concave.verdict.startswith("super-scaling") and "accelerated emergence" in concave.verdict
    assert acceleration_test(x[:3], from_f(line[:3])).verdict.startswith("undetermined")


def test_instance_fit_recovers_task_mean():
    rng = np.random.default_rng(3)
    intercepts = np.log(60.0) + rng.normal(0, 0.3, size=40)
    rows_x, rows_doc, rows_rate = [], [], []
    for n in SIZES:
        p = from_f(intercepts - 0.25 * np.log(n))
        c, k = est.simulate_passuntil(p, r=5, cap=10**8, rng=rng)
        rows_x += [np.log(n)] * len(p)
        rows_doc += list(range(len(p)))
        rows_rate += list(est.unbiased_pass_rate(c, k, r=5))
    # one instance never solved: it stays in the denominator and forecasts 0
    rows_x += list(np.log(SIZES))
    rows_doc += [999] * len(SIZES)
    rows_rate += [0.0] * len(SIZES)
    fit = fit_instances(np.array(rows_x), np.array(rows_doc), np.array(rows_rate), n_boot=200)
    truth = float(np.sum(from_f(intercepts - 0.25 * np.log(TARGET))) / 41)
    pred = fit.predict(Target(params=TARGET))
    assert fit.n_instances == 41 and len(fit.intercepts) == 40
    assert fit.alpha == pytest.approx(0.25, abs=0.03)
    assert pred.lower <= truth <= pred.upper
    assert pred.mean == pytest.approx(truth, rel=0.3)
