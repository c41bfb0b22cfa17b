"""``capcast.testing.check_law``, the laws' conformance check: it passes every built-in law and
reports each violation of a plugin law's contract, one message each."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from capcast.laws.base import Prediction, Target
from capcast.plugins.registry import load_registry
from capcast.testing import check_law
from capcast.laws.schedule import attach_areas
from capcast.testing.checks import clean_series, flat_series
from tests.laws.test_ladder_schedule import BIG as BIG_SCHEDULED, annealing_family


def pass_rate_series(seed: int = 0):
    """Pass rates following the PassUntil law exp(-60 N^-0.25), with a little noise."""
    series = clean_series(chance=0.0)
    rate = np.exp(-60.0 * series.params**-0.25) * np.exp(np.random.default_rng(seed).normal(0, 0.02, len(series)))
    return dataclasses.replace(series, metric="pass_rate", value=rate, n_items=None)


def loss_series(seed: int = 0, flat: bool = False):
    """A bpb_gold loss falling as 0.6 + 0.9 (C / 1e19)^-0.12 with 0.5% noise (``flat``: about 1.2 throughout)."""
    series = clean_series()
    truth = np.full(len(series), 1.2) if flat else 0.6 + 0.9 * (series.flops / 1e19) ** -0.12
    value = truth * np.exp(np.random.default_rng(seed).normal(0, 0.005, len(series)))
    return dataclasses.replace(series, metric="bpb_gold", value=value, n_items=None, chance=0.0)


def largest_checkpoint(series) -> Target:
    i = int(np.argmax(series.flops))
    return Target(name="largest", params=float(series.params[i]), tokens=float(series.tokens[i]), flops=float(series.flops[i]))


ANNEALING = annealing_family(np.random.default_rng(0))  # (a series of cosine runs, their schedules)
SCHEDULED_SERIES = attach_areas(*ANNEALING)  # each checkpoint's learning-rate areas
SCHEDULED_TARGET = BIG_SCHEDULED


BUILTIN_LAW_INPUTS = {
    "sigmoid": {},
    "logit-linear": {},
    "logacc-power": {},
    "saturating-power": {},
    "auto": {},
    "ladder": {"series": clean_series(loss="bpb_gold"), "flat_series": flat_series(loss="bpb_gold")},
    "ladder-schedule": {"series": SCHEDULED_SERIES, "flat_series": flat_series(loss="bpb_gold"), "targets": [SCHEDULED_TARGET]},
    "loss-error": {"series": clean_series(loss="val/c4:loss"), "flat_series": flat_series(loss="val/c4:loss")},
    "passuntil": {"series": pass_rate_series()},
    "passuntil_compute": {"series": pass_rate_series()},
    "power": {"series": loss_series(), "flat_series": loss_series(flat=True)},
    # a straight line leaves [0, 1] when extrapolated (see the test below): checked where it holds
    "linear": {"targets": [largest_checkpoint(clean_series())]},
}


def test_every_builtin_law_has_inputs_for_check_law() -> None:
    assert set(load_registry().laws) == set(BUILTIN_LAW_INPUTS)


@pytest.mark.parametrize("name", sorted(BUILTIN_LAW_INPUTS))
def test_check_law_passes_every_builtin_law(name) -> None:
    check_law(load_registry().laws[name], **BUILTIN_LAW_INPUTS[name])


def test_check_law_catches_the_linear_baseline_forecasting_above_one() -> None:
    with pytest.raises(AssertionError, match=r"law 'linear': predict\('check-target', level=0.5\): a score forecast must lie in \[0, 1\]"):
        check_law(load_registry().laws["linear"])


def test_check_law_asks_for_a_loss_when_a_two_step_law_has_none() -> None:
    with pytest.raises(AssertionError, match="law 'ladder': fit raised NotPredictable on the clean series .*no loss metric"):
        check_law(load_registry().laws["ladder"])


@dataclass(frozen=True)
class MeanFit:
    law: str
    params: dict
    cov: np.ndarray

    def predict(self, target: Target, level: float = 0.9) -> Prediction:
        mean, half = self.params["mean"], stats.norm.ppf(0.5 + level / 2) * math.sqrt(self.cov[0, 0])
        return Prediction(mean=mean, lower=max(mean - half, 0.0), upper=min(mean + half, 1.0), level=level)

    def summary(self) -> str:
        return f"law {self.law}: mean {self.params['mean']:.3f}"


class LastValueLaw:
    """A small correct law (the largest checkpoint's value, binomial-ish spread) to derive bad ones from."""

    name = "last-value"
    description = "the largest checkpoint's value"
    fit_type = MeanFit

    def fit(self, series):
        value = float(series.value[int(np.argmax(series.flops))])
        return self.fit_type(self.name, {"mean": value}, np.array([[max(value * (1 - value), 1e-4) / 100]]))


class PlainFit:  # not frozen
    def __init__(self, law, params, cov):
        self.law, self.params, self.cov = law, params, cov

    predict, summary = MeanFit.predict, MeanFit.summary


@dataclass(frozen=True)
class MemoFit(MeanFit):
    def predict(self, target, level=0.9):
        self.params["last_level"] = level  # a cache in a frozen fit's dict: still a mutation
        return super().predict(target, level)


@dataclass(frozen=True)
class InvertedFit(MeanFit):
    def predict(self, target, level=0.9):
        pred = super().predict(target, level)
        return dataclasses.replace(pred, lower=pred.mean + 0.01, upper=pred.mean + 0.02)


@dataclass(frozen=True)
class FixedWidthFit(MeanFit):
    def predict(self, target, level=0.9):
        mean = self.params["mean"]
        return Prediction(mean=mean, lower=mean - 0.05, upper=mean + 0.05, level=level)


@dataclass(frozen=True)
class TupleFit(MeanFit):
    def predict(self, target, level=0.9):
        pred = super().predict(target, level)
        return (pred.mean, pred.lower, pred.upper)


class SeriesMutatingLaw(LastValueLaw):
    def fit(self, series):
        series.extra["seen_by_law"] = np.ones(len(series))
        return super().fit(series)


class CrashesOnFlatLaw(LastValueLaw):
    def fit(self, series):
        if np.ptp(series.value) < 0.01:
            raise ValueError("cannot fit a constant")
        return super().fit(series)


def law_with(cls=LastValueLaw, **attributes):
    law = cls()
    for key, value in attributes.items():
        setattr(law, key, value)
    return law


# An undescribed metric outside [0, 1] gets no signal gate (a described loss such as "loss" now has one).
LOSS_FLAT = dataclasses.replace(flat_series(), metric="my_loss", value=np.full(7, 3.0))


@pytest.mark.parametrize(
    "law, kwargs, message",
    [
        (law_with(description=""), {}, "description must be a non-empty str"),
        (law_with(fit_type=PlainFit), {}, r"the fit is mutable \(setting fit.law worked\)"),
        (law_with(fit_type=MemoFit), {}, r"predict mutated the fit \(params"),
        (law_with(fit_type=InvertedFit), {}, "expected lower <= mean <= upper"),
        (law_with(fit_type=FixedWidthFit), {}, "interval for 'largest' .* is not wider than the 0.5 one"),
        (law_with(fit_type=TupleFit), {}, "returned tuple, expected capcast.Prediction"),
        (law_with(SeriesMutatingLaw), {}, r"fit mutated its input series \(extra\)"),
        (law_with(CrashesOnFlatLaw), {}, "fit on flat data at chance raised ValueError: cannot fit a constant"),
        (law_with(), {"flat_series": LOSS_FLAT}, "on flat data at chance capcast's forecast answered 'ok'"),
    ],
    ids=["no-description", "mutable-fit", "predict-mutates", "lower-above-mean", "fixed-width", "not-a-prediction",
         "fit-mutates-series", "crash-on-flat", "fits-flat-non-score"],
)
def test_check_law_reports_each_violation(law, kwargs, message) -> None:
    targets = [largest_checkpoint(clean_series())]
    with pytest.raises(AssertionError, match=message):
        check_law(law, targets=targets, **kwargs)


def test_check_law_accepts_a_correct_law() -> None:
    check_law(LastValueLaw())
