"""Each law on synthetic data drawn from that law: the forecast recovers the truth and the 90%
interval covers held-out observations at about the stated rate."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.special import expit

from capcast.laws.auto import AutoLaw
from capcast.laws.base import NotPredictable, Series, Target
from capcast.laws.baselines import LinearLaw, LogitLinearLaw
from capcast.laws.ladder import LadderLaw
from capcast.laws.loss_error import LossErrorLaw
from capcast.laws.signal import check_signal
from capcast.laws.sigmoid import SigmoidLaw

SIZES = np.geomspace(2e7, 1e9, 5)
FRACTIONS = (0.25, 0.5, 0.75, 1.0)  # checkpoints per size, as fractions of 20 tokens/param
N_ITEMS = 3000
CHANCE = 0.25


def true_sigmoid(flops):
    return CHANCE + (0.9 - CHANCE) * expit(-0.4 + 1.3 * (np.log10(flops) - 18.3))


def true_loss(params, tokens):
    return 1.7 + 0.6 * (params / 1e9) ** -0.3 + 0.5 * (tokens / 1e11) ** -0.25


def true_score_of_loss(loss):
    return CHANCE + (1.0 - CHANCE) * expit(-4.0 * (loss - 3.3))


def make_series(score_fn, rng, extra_fn=None, sizes=SIZES) -> Series:
    params, tokens = np.meshgrid(sizes, FRACTIONS, indexing="ij")
    params, tokens = params.ravel(), (tokens * 20 * params).ravel()
    flops = 6 * params * tokens
    p = score_fn(params, tokens, flops)
    value = rng.binomial(N_ITEMS, p) / N_ITEMS
    extra = extra_fn(params, tokens, rng) if extra_fn else {}
    return Series(
        task="synthetic", metric="acc", model=np.array([f"m{int(n)}" for n in params], dtype=object),
        params=params, tokens=tokens, flops=flops, value=value, n_items=np.full(len(value), N_ITEMS),
        chance=CHANCE, extra=extra,
    )


BIG = Target(name="big", params=8e9, tokens=20 * 8e9)  # almost one decade beyond the largest size


def sigmoid_case(rng):
    return make_series(lambda n, d, c: true_sigmoid(c), rng), float(true_sigmoid(BIG.compute))


def loss_extra(key):
    def fn(params, tokens, rng):
        return {key: true_loss(params, tokens) * np.exp(rng.normal(0, 0.003, len(params)))}

    return fn


def ladder_case(rng, key="bpb_gold"):
    series = make_series(lambda n, d, c: true_score_of_loss(true_loss(n, d)), rng, loss_extra(key))
    return series, float(true_score_of_loss(true_loss(BIG.params, BIG.tokens)))


def loss_error_case(rng):
    def score(n, d, c):
        return 1 - 0.78 + 3.0 * np.exp(-1.1 * true_loss(n, d))

    series = make_series(score, rng, loss_extra("val/c4:loss"))
    return series, float(score(BIG.params, BIG.tokens, None))


@pytest.mark.parametrize(
    "law, case, tolerance",
    [(SigmoidLaw(), sigmoid_case, 0.02), (LadderLaw(), ladder_case, 0.03), (LossErrorLaw(), loss_error_case, 0.04)],
    ids=["sigmoid", "ladder", "loss-error"],
)
def test_law_recovers_a_forecast_from_its_own_form(law, case, tolerance) -> None:
    rng = np.random.default_rng(0)
    series, truth = case(rng)
    fit = law.fit(series)
    pred = fit.predict(BIG, level=0.9)
    assert abs(pred.mean - truth) < tolerance, fit.summary()
    assert pred.lower < pred.mean < pred.upper  # coverage is tested over many draws below
    assert pred.upper - pred.lower < 0.2  # 5 sizes: t with 5 - 3 = 2 degrees of freedom for the two-step laws
    assert set(fit.params) and fit.cov.shape == (len(fit.params), len(fit.params))
    assert law.name in fit.summary()


def test_sigmoid_recovers_its_ceiling_and_slope() -> None:
    rng = np.random.default_rng(1)
    sizes = np.geomspace(1e7, 3e10, 7)  # spans the whole S so the ceiling is identified
    series = make_series(lambda n, d, c: true_sigmoid(c), rng, sizes=sizes)
    fit = SigmoidLaw().fit(series)
    ceiling = CHANCE + (1 - CHANCE) * expit(fit.params["ceiling_logit"])
    assert ceiling == pytest.approx(0.9, abs=0.03)
    assert fit.params["b"] == pytest.approx(1.3, rel=0.15)


@pytest.mark.parametrize("law, case", [(SigmoidLaw(), sigmoid_case), (LadderLaw(), ladder_case), (LossErrorLaw(), loss_error_case)],
                         ids=["sigmoid", "ladder", "loss-error"])
def test_interval_covers_new_observations_at_about_the_stated_rate(law, case) -> None:
    rng = np.random.default_rng(2)
    hits = 0
    draws = 30
    for _ in range(draws):
        series, truth = case(rng)
        pred = law.fit(series).predict(BIG, level=0.9)
        observed = rng.binomial(N_ITEMS, truth) / N_ITEMS
        hits += pred.lower <= observed <= pred.upper
    assert hits / draws >= 0.75


def test_interval_widens_with_extrapolation_distance() -> None:
    series, _ = sigmoid_case(np.random.default_rng(3))
    fit = SigmoidLaw().fit(series)
    near = fit.predict(Target(params=2e9, tokens=4e10))
    far = fit.predict(Target(params=5e10, tokens=1e12))
    assert far.upper - far.lower > near.upper - near.lower


def test_every_later_folds_score_each_fold_fit_at_every_larger_size() -> None:
    from capcast.laws.auto import _fold_errors, forward_chaining_folds

    series, _ = ladder_case(np.random.default_rng(4))
    sizes = np.unique(series.params)
    assert all(fold.later == () for fold in forward_chaining_folds(series))  # asked for only by "every-later"
    folds = forward_chaining_folds(series, later=True)
    for fold in folds:  # the later targets: each run of every larger size, its final checkpoint
        assert {t.params for t, _ in fold.later} == set(sizes[sizes > fold.size])
    assert folds[-1].later == ()
    candidates = (SigmoidLaw(), LadderLaw())
    nearest = AutoLaw(candidates=candidates).evaluate(series)
    every = AutoLaw(candidates=candidates, fold_horizon="every-later").evaluate(series)
    names = list(every)
    assert all(later == [] if preds is not None else later is None  # "next": nothing forecast beyond the next size
               for preds, later in zip(nearest["sigmoid"]["fold_predictions"], nearest["sigmoid"]["fold_later_predictions"]))
    # the first fold's sigmoid error is the mean over its next size and every larger one
    first = every["sigmoid"]
    assert first["fold_predictions"][0] is not None and first["fold_later_predictions"][0] is not None
    errors = [abs(p - a) for p, a, _ in first["fold_predictions"][0]] + [abs(p - a) for p, a in first["fold_later_predictions"][0]]
    assert _fold_errors(every, names)[0, 0] == pytest.approx(np.mean(errors))
    assert _fold_errors(every, names)[0, 0] != pytest.approx(_fold_errors(nearest, names)[0, 0])
    with pytest.raises(ValueError, match="fold_horizon 'far' is not one of next, every-later"):
        AutoLaw(candidates=candidates, fold_horizon="far")


def test_auto_selects_on_forward_chaining_folds_only_beyond_noise_and_says_why() -> None:
    from capcast.laws.auto import _fold_errors, forward_chaining_folds

    series, truth = ladder_case(np.random.default_rng(4))
    auto = AutoLaw(candidates=(SigmoidLaw(), LadderLaw(), LossErrorLaw()), combine="select")
    folds = forward_chaining_folds(series)
    assert [f.size for f in folds] == list(np.unique(series.params)[2:])  # every size from the third up
    assert all(f.train.params.max() < f.size for f in folds)
    fit = auto.fit(series)
    assert fit.law.startswith("auto:")
    assert "forward-chaining fold" in fit.notes and all(n in fit.notes for n in ("sigmoid", "ladder", "loss-error"))
    report = auto.evaluate(series)
    names = [n for n, e in report.items() if "fit" in e]
    errors = _fold_errors(report, names)
    best = names[int(np.argmin(errors.mean(axis=1)))]
    diff = errors[0] - errors[names.index(best)]
    beats_noise = best != names[0] and diff.mean() > np.std(diff, ddof=1) / np.sqrt(len(diff))
    assert fit.law == f"auto:{best if beats_noise else names[0]}"
    if not beats_noise and best != names[0]:
        assert "within its standard error" in fit.notes
    # the folds check the chosen law's variance: auto's variance is never below the law's own (its t
    # quantile may be smaller: the pooled variance has the folds' degrees of freedom besides the law's)
    pred = fit.predict(BIG)
    answering = (pred.law or fit.law).split(":", 1)[1]  # the chosen law, or the next where its guard refuses BIG
    checked = fit if fit.law == f"auto:{answering}" else fit.fallback
    own = report[answering]["fit"]
    assert "folds measured" in (pred.notes or fit.notes)
    assert checked.predictive(BIG)[2] >= own.predictive(BIG)[2]
    # exactly the larger of the law's variance and the pooled ratio times it
    assert checked.variance_check_ratio > 0 and f"pooled {checked.variance_check_ratio:.2f}x" in checked.notes
    assert checked.predictive(BIG)[2] ** 2 == pytest.approx(max(1.0, checked.variance_check_ratio) * own.predictive(BIG)[2] ** 2)
    assert pred.mean == pytest.approx(own.predict(BIG).mean)


def test_two_step_laws_need_a_loss() -> None:
    series, _ = sigmoid_case(np.random.default_rng(5))
    for law in (LadderLaw(), LossErrorLaw()):
        with pytest.raises(NotPredictable, match="no loss metric"):
            law.fit(series)


def test_ladder_uses_a_named_loss_and_rejects_an_absent_one() -> None:
    series, _ = ladder_case(np.random.default_rng(6), key="ppl")
    with pytest.raises(NotPredictable, match="not in the table"):
        LadderLaw(loss="bpb_gold").fit(series)
    # ppl is a loss too (log taken): found without naming it
    assert "loss ppl" in LadderLaw().fit(series).notes


def test_no_signal_above_chance_is_not_predictable() -> None:
    rng = np.random.default_rng(7)
    series = make_series(lambda n, d, c: np.full(len(n), CHANCE), rng)
    with pytest.raises(NotPredictable, match="no signal above chance"):
        check_signal(series)
    rising, _ = sigmoid_case(rng)
    check_signal(rising)  # real signal passes


def test_baselines_fit_final_checkpoints_only() -> None:
    series, _ = sigmoid_case(np.random.default_rng(8))
    for law in (LinearLaw(), LogitLinearLaw()):
        fit = law.fit(series)
        assert fit.n_points == len(SIZES)
        pred = fit.predict(BIG)
        assert pred.lower < pred.mean < pred.upper


def test_fits_are_immutable() -> None:
    fit = SigmoidLaw().fit(sigmoid_case(np.random.default_rng(9))[0])
    with pytest.raises(AttributeError):
        fit.theta = np.zeros(3)


def runaway_case(rng):
    """A hard generative task (chance 0) rising as a steep exponential in the loss over the fitting
    band (like OpenLM's Jeopardy, where an unconstrained loss-error fit forecast 100% for 2.4%)."""
    top_loss = float(true_loss(SIZES[-1], 20 * SIZES[-1]))

    def score(n, d, c):
        return 0.04 * np.exp(-8.0 * (true_loss(n, d) - top_loss))

    return replace(make_series(score, rng, loss_extra("val/c4:loss")), chance=0.0)


def test_loss_error_refuses_a_runaway_extrapolation_instead_of_clipping_it() -> None:
    from capcast.forecasting.forecast import STATUS_UNPREDICTABLE, forecast_one

    series = runaway_case(np.random.default_rng(10))
    fit = LossErrorLaw().fit(series)
    eps, lift, gamma = (fit.params[f"step2.{n}"] for n in ("eps", "lift", "gamma"))
    assert 0 <= eps <= 1 and 0 < lift <= 1 and 0 < gamma <= 10  # bounded step 2
    assert np.all(np.isfinite(fit.cov))
    # on the fitting band the curve stays a score, and it tracks the data
    fitted = fit.curve(series.extra["val/c4:loss"])
    assert np.all((fitted >= 0) & (fitted <= 1))
    # within two binomial standard errors of every observed score (3000 items; floor of one item)
    se = np.sqrt(np.maximum(series.value * (1 - series.value), 1 / N_ITEMS) / N_ITEMS)
    assert np.all(np.abs(fitted - series.value) < 2 * se + 1 / N_ITEMS)
    # a near target (inside the band) is answered ...
    near = Target(params=float(SIZES[-2]), tokens=20 * float(SIZES[-2]))
    pred = fit.predict(near)
    assert 0 <= pred.lower <= pred.mean <= pred.upper <= 1 and pred.mean < 0.05
    # ... one decade out the exponential leaves [0, 1]: refused with the reason, not clipped to 100%
    with pytest.raises(NotPredictable, match=r"loss-error leaves \[0, 1\] at the target: score \d"):
        fit.predict(BIG)
    row = forecast_one(series, BIG, LossErrorLaw(), 0.9, None, "synthetic").row
    assert row.status == STATUS_UNPREDICTABLE and row.forecast is None and "leaves [0, 1]" in row.reason


def test_auto_falls_back_to_the_next_law_when_its_choice_refuses_the_target() -> None:
    from capcast.forecasting.forecast import STATUS_OK, forecast_one

    series, truth = ladder_case(np.random.default_rng(4))
    # loss-error first: it is the default, and its exponential leaves [0, 1] at BIG
    auto = AutoLaw(candidates=(LossErrorLaw(), SigmoidLaw()), combine="select")
    fit = auto.fit(series)
    report = auto.evaluate(series)
    with pytest.raises(NotPredictable):
        report["loss-error"]["fit"].predict(BIG)
    assert fit.law == "auto:loss-error"
    pred = fit.predict(BIG)
    assert pred.law == "auto:sigmoid"
    assert pred.mean == pytest.approx(report["sigmoid"]["fit"].predict(BIG).mean)  # the runner-up's forecast
    assert pred.lower <= pred.mean <= pred.upper
    row = forecast_one(series, BIG, auto, 0.9, truth, "synthetic", max_width=1.0).row
    assert row.status == STATUS_OK and row.law == "auto:sigmoid"
    assert "auto:loss-error refuses this target" in row.reason and "auto fell back to sigmoid" in row.reason


