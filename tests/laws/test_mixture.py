"""``auto``'s weighted combination: weights from the folds, the mixture's point and interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from capcast.laws.auto import ERROR_FLOOR, WEIGHTINGS, AutoLaw, _fold_errors
from capcast.laws.base import NotPredictable, Prediction
from capcast.laws.ladder import LadderLaw
from capcast.laws.loss_error import LossErrorLaw
from capcast.laws.mixture import Member, MixtureFit
from capcast.laws.sigmoid import SigmoidLaw
from tests.laws.test_laws import BIG, ladder_case, runaway_case, sigmoid_case


def test_weights_are_the_inverse_mean_fold_errors_and_the_point_the_mixtures_median() -> None:
    series, _ = ladder_case(np.random.default_rng(4))
    auto = AutoLaw(candidates=(SigmoidLaw(), LadderLaw(), LossErrorLaw()))
    fit = auto.fit(series)
    report = auto.evaluate(series)
    names = [n for n, e in report.items() if "fit" in e]
    errors = _fold_errors(report, names).mean(axis=1)
    expected = 1 / np.maximum(errors, ERROR_FLOOR)
    expected /= expected.sum()
    assert fit.law == "auto:weighted" and [m.name for m in fit.members] == names
    assert [m.weight for m in fit.members] == pytest.approx(list(expected))
    assert sum(fit.params.values()) == pytest.approx(1.0)
    assert "inverse mean fold error" in fit.notes and all(n in fit.notes for n in names)
    from capcast.laws.mixture import MEMBER_MAX_WIDTH

    answering = []
    for m in fit.members:
        try:
            answering.append((m.weight, m.fit.predict(BIG)))
        except NotPredictable:
            pass  # this member drops out of the target's mixture (its own test below)
    assert len(answering) >= 2
    pred = fit.predict(BIG)
    # a member whose own interval is wider than MEMBER_MAX_WIDTH and agrees with the rest does not
    # vote (the notes name it); the others do
    voting = [(w, p) for (w, p), m in zip(answering, fit.members)
              if f"{m.name}'s own 90% interval" not in (pred.notes or "")]
    assert all(p.upper - p.lower <= MEMBER_MAX_WIDTH for w, p in answering if (w, p) not in voting) or len(voting) == len(answering)
    members = [p for _, p in voting]
    # the point is the mixture's median: between its members' points, and what ``mean`` gives
    assert min(p.mean for p in members) - 1e-9 <= pred.mean <= max(p.mean for p in members) + 1e-9
    assert fit.mean(BIG) == pytest.approx(pred.mean)
    # the mixture's quantiles lie between its members' quantiles
    assert min(p.lower for p in members) - 1e-9 <= pred.lower <= max(p.lower for p in members) + 1e-9
    assert min(p.upper for p in members) - 1e-9 <= pred.upper <= max(p.upper for p in members) + 1e-9
    assert "weight" in fit.summary()


@pytest.mark.parametrize("weighting", ["inverse-squared-error", "equal", "stacking"])
def test_the_other_weightings_give_the_weights_they_name(weighting) -> None:
    from scipy.stats import t as student

    series, _ = ladder_case(np.random.default_rng(4))
    auto = AutoLaw(candidates=(SigmoidLaw(), LadderLaw(), LossErrorLaw()), weighting=weighting)
    fit, report = auto.fit(series), auto.evaluate(series)
    names = [n for n, e in report.items() if "fit" in e]
    weights = np.array([m.weight for m in fit.members])
    assert sum(weights) == pytest.approx(1.0) and [m.name for m in fit.members] == names
    errors = _fold_errors(report, names)
    if weighting == "equal":
        assert weights == pytest.approx(np.full(len(names), 1 / len(names)))
    elif weighting == "inverse-squared-error":
        expected = 1 / np.maximum((errors**2).mean(axis=1), ERROR_FLOOR**2)
        assert weights == pytest.approx(expected / expected.sum())
    else:  # stacking: the maximum of the folds' mixture log density (its optimality conditions)
        density = []
        for f in range(len(report[names[0]]["folds"])):
            preds = [report[name]["fold_predictions"][f] for name in names]
            for i in range(max((len(p) for p in preds if p is not None), default=0)):
                row = []
                for name, p in zip(names, preds):
                    if p is None or p[i][2] is None:  # refused, or no interval: the worst answered density
                        row.append(np.nan)
                        continue
                    point, actual, (sd, dof) = p[i]
                    z = report[name]["fit"]._to_z
                    row.append(student.pdf((float(z(actual)) - float(z(point))) / sd, dof) / sd)
                if not np.all(np.isnan(row)):
                    density.append(np.where(np.isnan(row), np.nanmin(row), row))
        density = np.array(density).T
        gradient = (density / (weights @ density)).mean(axis=1)  # d/dw_k of the mean log density
        # at the maximum on the simplex: 1 where w_k > 0, at most 1 where w_k = 0
        assert np.all(gradient[weights > 1e-3] == pytest.approx(1.0, abs=2e-3)) and np.all(gradient <= 1 + 2e-3)
    assert WEIGHTINGS[weighting] in fit.notes
    with pytest.raises(ValueError, match="weighting 'median' is not one of"):
        AutoLaw(candidates=(SigmoidLaw(),), weighting="median")


def test_a_mixture_of_one_law_twice_is_that_law_and_disagreement_widens_it() -> None:
    series, _ = sigmoid_case(np.random.default_rng(3))
    one = SigmoidLaw().fit(series)
    same = MixtureFit("auto:weighted", (Member("a", one, 0.5), Member("b", one, 0.5)))
    alone, mixed = one.predict(BIG), same.predict(BIG)
    assert (mixed.mean, mixed.lower, mixed.upper) == pytest.approx((alone.mean, alone.lower, alone.upper), abs=1e-7)
    shifted = _Fixed(mean=alone.mean + 0.1, sd=(alone.upper - alone.lower) / (2 * stats.norm.ppf(0.95)))
    apart = MixtureFit("auto:weighted", (Member("a", one, 0.5), Member("b", shifted, 0.5))).predict(BIG)
    assert apart.upper - apart.lower > alone.upper - alone.lower + 0.05
    # the median of two equally weighted members 0.1 apart lies between them, near the midpoint
    assert alone.mean + 0.02 < apart.mean < alone.mean + 0.08


def test_a_member_that_refuses_the_target_drops_out_and_the_row_says_so() -> None:
    from capcast.forecasting.forecast import STATUS_OK, forecast_one

    series = runaway_case(np.random.default_rng(10))
    auto = AutoLaw(candidates=(LossErrorLaw(), SigmoidLaw()))
    fit = auto.fit(series)
    assert fit.law == "auto:weighted"
    pred = fit.predict(BIG)
    sigmoid_alone = next(m for m in fit.members if m.name == "sigmoid").fit.predict(BIG)
    assert pred.mean == pytest.approx(sigmoid_alone.mean) and pred.lower == pytest.approx(sigmoid_alone.lower)
    assert "loss-error does not answer" in pred.notes and "renormalised" in pred.notes
    row = forecast_one(series, BIG, auto, 0.9, None, "synthetic", max_width=1.0).row
    assert row.status == STATUS_OK and "loss-error does not answer" in row.reason


def test_no_member_answering_is_not_predictable() -> None:
    series = runaway_case(np.random.default_rng(10))
    only = LossErrorLaw().fit(series)
    with pytest.raises(NotPredictable, match="no law of the combination answers"):
        MixtureFit("auto:weighted", (Member("loss-error", only, 1.0),)).predict(BIG)


def test_select_keeps_the_single_law_rule() -> None:
    series, _ = ladder_case(np.random.default_rng(4))
    fit = AutoLaw(candidates=(SigmoidLaw(), LadderLaw()), combine="select").fit(series)
    assert fit.law in ("auto:sigmoid", "auto:ladder")


@dataclass(frozen=True)
class _Fixed:
    """A plugin-style fit without a link space: normal forecast, 90% interval +-1.645 sd."""

    mean: float
    sd: float
    law: str = "fixed"

    def predict(self, target, level=0.9):
        half = stats.norm.ppf(0.5 + level / 2) * self.sd
        return Prediction(self.mean, self.mean - half, self.mean + half, level)


@dataclass(frozen=True)
class _LinkStub:
    """A CurveFit-like member given by its predictive distribution in the logit link."""

    z: float
    sd: float
    floor: float = 0.0
    link: str = "logit"

    def refusal(self, target):
        return None

    def predictive(self, target):
        return float(self.floor + (1 - self.floor) / (1 + np.exp(-self.z))), self.z, self.sd, 3


def test_members_beyond_the_links_clip_near_1_still_give_an_interval() -> None:
    # z = 12 is past CurveFit's clip (logit 9.2): the mixture must invert the unclipped link
    mixed = MixtureFit("auto:weighted", (Member("a", _LinkStub(12.0, 2.0), 0.5), Member("b", _LinkStub(8.0, 1.5), 0.5)))
    pred = mixed.predict(BIG)
    assert 0.99 < pred.lower <= pred.mean <= pred.upper <= 1.0
    assert pred.lower < _LinkStub(8.0, 1.5).predictive(BIG)[0]  # the lower member's quantile pulls it down


def test_a_member_too_wide_to_mean_anything_does_not_vote_unless_all_are_or_it_disagrees_with_a_lone_one() -> None:
    from capcast.forecasting.forecast import MAX_RELATIVE_WIDTH
    from capcast.laws.mixture import MEMBER_MAX_WIDTH

    assert MEMBER_MAX_WIDTH == MAX_RELATIVE_WIDTH  # the rows' own width rule
    # 90% widths of ~0.12 and ~0.85 of the range; the vague member's point inside the sharp one's interval
    sharp, vague = _LinkStub(1.0, 0.3), _LinkStub(1.1, 3.0)
    pred = MixtureFit("auto:weighted", (Member("sharp", sharp, 0.5), Member("vague", vague, 0.5))).predict(BIG)
    alone = MixtureFit("auto:weighted", (Member("sharp", sharp, 1.0),)).predict(BIG)
    assert (pred.mean, pred.lower, pred.upper) == pytest.approx((alone.mean, alone.lower, alone.upper))
    assert "vague's own 90% interval is" in pred.notes and "too wide to vote" in pred.notes
    # beside a single narrow member, a vague one whose point lies outside its interval disagrees: it votes
    elsewhere = _LinkStub(-1.0, 3.0)
    apart = MixtureFit("auto:weighted", (Member("sharp", sharp, 0.5), Member("elsewhere", elsewhere, 0.5))).predict(BIG)
    assert apart.lower < alone.lower - 0.1 and apart.mean < alone.mean
    assert apart.notes is None  # nobody dropped
    # two narrow members check each other: the disagreeing vague one does not vote
    second = _LinkStub(1.1, 0.3)
    checked = MixtureFit("auto:weighted", (Member("sharp", sharp, 0.4), Member("second", second, 0.4),
                                           Member("elsewhere", elsewhere, 0.2))).predict(BIG)
    pair = MixtureFit("auto:weighted", (Member("sharp", sharp, 0.5), Member("second", second, 0.5))).predict(BIG)
    assert (checked.mean, checked.lower, checked.upper) == pytest.approx((pair.mean, pair.lower, pair.upper))
    assert "elsewhere's own 90% interval" in checked.notes
    # every member too wide: the mixture of them all
    both = MixtureFit("auto:weighted", (Member("vague", vague, 0.5), Member("elsewhere", elsewhere, 0.5))).predict(BIG)
    assert both.upper - both.lower > MEMBER_MAX_WIDTH


def test_a_lone_narrow_member_that_answered_no_fold_does_not_answer_alone() -> None:
    """Its weight is the other members' worst fold error, not evidence of its own: beside it the
    wide members keep their votes (with an intermediate version of the run scatter, the mini-ladder's
    emergent ref_add2 at size l: saturating-power, which refused both folds, forecast 15.5% for a
    model that scored 99.6%)."""
    sharp, vague = _LinkStub(1.0, 0.3), _LinkStub(1.1, 3.0)

    def mixture(answered):
        return MixtureFit("auto:weighted", (Member("sharp", sharp, 0.5, 0.01, answered),
                                            Member("vague", vague, 0.5, 0.01, 2))).predict(BIG)

    alone = MixtureFit("auto:weighted", (Member("sharp", sharp, 1.0),)).predict(BIG)
    checked = mixture(answered=1)  # it answered a fold: it answers alone, as before
    assert (checked.lower, checked.upper) == pytest.approx((alone.lower, alone.upper))
    unchecked = mixture(answered=0)
    assert unchecked.upper - unchecked.lower > 2 * (alone.upper - alone.lower) and unchecked.notes is None


def test_auto_tells_the_mixture_how_many_folds_each_member_answered() -> None:
    series, _ = ladder_case(np.random.default_rng(4))
    auto = AutoLaw(candidates=(SigmoidLaw(), LadderLaw(), LossErrorLaw()))
    fit, report = auto.fit(series), auto.evaluate(series)
    for m in fit.members:
        assert m.folds_answered == sum(p is not None for p in report[m.name]["fold_predictions"])


def test_the_measured_variants_of_the_member_width_rule() -> None:
    """benchmarks/member_width.py's variants: "disagree" lets a disagreeing wide member vote however
    many narrow members are left, "always" lets every wide member vote; an unknown rule is refused."""
    sharp, second, vague, elsewhere = _LinkStub(1.0, 0.3), _LinkStub(1.1, 0.3), _LinkStub(1.1, 3.0), _LinkStub(-1.0, 3.0)

    def mixture(members, rule):
        return MixtureFit("auto:weighted", tuple(Member(n, f, w) for n, f, w in members), wide_members=rule).predict(BIG)

    pair = mixture([("sharp", sharp, 0.5), ("second", second, 0.5)], "lone")
    disagreeing = [("sharp", sharp, 0.4), ("second", second, 0.4), ("elsewhere", elsewhere, 0.2)]
    assert mixture(disagreeing, "lone").lower == pytest.approx(pair.lower)
    voted = mixture(disagreeing, "disagree")
    assert voted.lower < pair.lower - 0.1 and voted.notes is None
    agreeing = [("sharp", sharp, 0.4), ("second", second, 0.4), ("vague", vague, 0.2)]
    kept_out = mixture(agreeing, "disagree")
    assert kept_out.lower == pytest.approx(pair.lower) and "lies within the others' interval" in kept_out.notes
    assert mixture(agreeing, "always").lower < pair.lower - 0.05
    with pytest.raises(ValueError, match="wide_members"):
        MixtureFit("auto:weighted", (Member("sharp", sharp, 1.0),), wide_members="sometimes")
    with pytest.raises(ValueError, match="wide_members"):
        AutoLaw(candidates=(SigmoidLaw(),), wide_members="sometimes")


def rising_from_chance(n, d, c):
    """A sigmoid in log compute whose smallest fitting size is 1.6% of the way from chance and whose
    largest is 90%: a sigmoid fitted on the 4 smallest sizes spans 61% of the range at the 5th,
    on the 3 smallest 32% at the 4th; saturating-power gives a point only on the 2 smallest."""
    from tests.laws.test_laws import CHANCE, SIZES

    return CHANCE + (1 - CHANCE) / (1 + np.exp(-(2.0 * (np.log10(c) - np.log10(120 * SIZES[-1] ** 2)) + 2.25)))


def test_a_fold_forecast_too_wide_to_mean_anything_is_scored_as_a_refusal() -> None:
    """A fold is scored on what a user would get: a fold fit whose 90% interval spans more than
    MEMBER_MAX_WIDTH of the range (a forecast row would say "too wide to mean anything") refuses
    that fold, whatever its point, and takes the fold's worst answered error."""
    from capcast.laws.auto import forward_chaining_folds
    from capcast.laws.mixture import MEMBER_MAX_WIDTH
    from capcast.laws.saturating_power import SaturatingPowerLaw
    from tests.laws.test_laws import make_series

    series = make_series(rising_from_chance, np.random.default_rng(0))
    auto = AutoLaw(candidates=(SigmoidLaw(), SaturatingPowerLaw()))
    report = auto.evaluate(series)
    fold = forward_chaining_folds(series)[2]  # fit the 4 smallest sizes, forecast the 5th
    (target, actual), = fold.targets
    wide = SigmoidLaw().fit(fold.train).predict(target, level=0.9)
    assert wide.upper - wide.lower > MEMBER_MAX_WIDTH
    assert report["sigmoid"]["fold_predictions"][2] is None
    # saturating-power answers that fold, with an interval narrow enough
    (point, scored_actual, spread), = report["saturating-power"]["fold_predictions"][2]
    assert spread is not None and scored_actual == actual
    errors = _fold_errors(report, ["sigmoid", "saturating-power"])
    assert errors[0, 2] == pytest.approx(abs(point - actual))  # the refusal takes the fold's worst answered error
    # the fold before it: sigmoid's forecast is narrow enough, and scored on its own error
    (narrow_point, _, narrow_spread), = report["sigmoid"]["fold_predictions"][1]
    smaller = forward_chaining_folds(series)[1]
    narrow = SigmoidLaw().fit(smaller.train).predict(smaller.targets[0][0], level=0.9)
    assert narrow.upper - narrow.lower <= MEMBER_MAX_WIDTH and narrow_spread is not None
    assert narrow_point == pytest.approx(narrow.mean)
    # the row's notes say which candidate's fold error is a refusal's
    notes = auto.fit(series).notes
    refused = sum(p is None for p in report["sigmoid"]["fold_predictions"])
    assert refused == 1 and "saturating-power 0 of" not in notes
    assert "folds refused (not predictable, or an interval too wide to mean anything" in notes
    assert f"sigmoid {refused} of {len(forward_chaining_folds(series))}" in notes


def test_the_measured_fold_refusal_rules() -> None:
    """"guarded" scores a too-wide fold forecast on its own error (the rule before stop 30);
    "point-only" also refuses a fold forecast without an interval; another name is refused."""
    from capcast.laws.auto import FOLD_REFUSAL_RULES, forward_chaining_folds
    from capcast.laws.saturating_power import SaturatingPowerLaw
    from tests.laws.test_laws import make_series

    assert AutoLaw(candidates=(SigmoidLaw(),)).fold_refusals == "too-wide" and set(FOLD_REFUSAL_RULES) == {"too-wide", "guarded", "point-only"}
    series = make_series(rising_from_chance, np.random.default_rng(0))
    candidates = (SigmoidLaw(), SaturatingPowerLaw())
    guarded = AutoLaw(candidates=candidates, fold_refusals="guarded").evaluate(series)
    (point, actual, spread), = guarded["sigmoid"]["fold_predictions"][2]  # too wide, scored all the same
    fold = forward_chaining_folds(series)[2]
    assert spread is not None and point == pytest.approx(SigmoidLaw().fit(fold.train).predict(fold.targets[0][0]).mean)
    point_only = AutoLaw(candidates=candidates, fold_refusals="point-only").evaluate(series)
    default = AutoLaw(candidates=candidates).evaluate(series)
    for name in ("sigmoid", "saturating-power"):
        for f, preds in enumerate(default[name]["fold_predictions"]):
            without_interval = preds is not None and any(s is None for _, _, s in preds)
            # point-only refuses exactly the default's point-only folds, and keeps the rest as they are
            assert (point_only[name]["fold_predictions"][f] is None) == (preds is None or without_interval)
    assert any(s is None for preds in default["saturating-power"]["fold_predictions"] if preds for _, _, s in preds)
    with pytest.raises(ValueError, match="fold_refusals"):
        AutoLaw(candidates=candidates, fold_refusals="sometimes")
