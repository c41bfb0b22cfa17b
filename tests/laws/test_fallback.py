"""A fit that cannot answer a target hands it to ``auto``'s next law (CurveFit.fallback): both when
its guard refuses the target and when it gives point forecasts only (no interval)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from capcast.laws.base import NotPredictable
from capcast.plugins.registry import load_registry
from capcast.tables.scores import build_series, read_scores
from capcast.testing.simulate import simulate_family


@pytest.fixture(scope="module")
def fits():
    family = simulate_family(np.random.default_rng(3), n_sizes=5)
    table = read_scores(family.scores)
    series = build_series(table[table["model"] != "target"], "task", "acc")
    registry = load_registry()
    return registry.law("sigmoid").fit(series), registry.law("logit-linear").fit(series), family.target


def test_a_fit_without_interval_hands_the_target_to_the_next_law(fits) -> None:
    sigmoid, logit_linear, target = fits
    pointwise = replace(sigmoid, law="auto:sigmoid", no_interval="5 sizes cannot fix 5 parameters", fallback=logit_linear)
    pred = pointwise.predict(target)
    expected = logit_linear.predict(target)
    assert (pred.mean, pred.lower, pred.upper) == (expected.mean, expected.lower, expected.upper)
    assert pred.law == "logit-linear" and "auto:sigmoid gives no interval (5 sizes cannot fix 5 parameters)" in pred.notes


def test_without_a_next_law_the_refusal_stands(fits) -> None:
    sigmoid, _, target = fits
    with pytest.raises(NotPredictable, match="5 sizes cannot fix"):
        replace(sigmoid, no_interval="5 sizes cannot fix 5 parameters").predict(target)
