"""The scatter of a run within its size: measured where sizes have several runs, brought by a
target (a new run), invisible to the size scatter (a size's mean averages its runs)."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from capcast.laws.curve import from_z, to_z
from capcast.laws.scatter import RUN_SCATTER_RANGE, run_scatter
from capcast.laws.sigmoid import SigmoidLaw
from capcast.tables.scores import build_series
from capcast.testing.simulate import simulate_family

LOGIT = SimpleNamespace(link="logit", floor=0.25)  # what run_scatter reads of a fit


def _grid(rng, run_sd: float, sizes: int = 40, runs: int = 3, fitted: float = 0.6, n_items: float = 1e7):
    params = np.repeat(np.arange(1.0, sizes + 1), runs)
    run = np.array([f"{int(p)}-{i}" for p, i in zip(params, np.tile(np.arange(runs), sizes))], dtype=object)
    fit_value = np.full(len(params), fitted)
    value = from_z(to_z(fit_value, LOGIT.floor) + rng.normal(0.0, run_sd, len(params)), LOGIT.floor)
    return value, fit_value, params, run, np.full(len(params), n_items)


def test_the_run_scatter_recovers_a_known_variance_and_ignores_what_sizes_share():
    rng = np.random.default_rng(0)
    value, fitted, params, runs, items = _grid(rng, 0.3)
    assert run_scatter(LOGIT, value, fitted, params, runs, items).var == pytest.approx(0.09, rel=0.25)
    # a deviation every run of a size shares is the size's scatter, not the runs'
    shift = np.repeat(rng.normal(0.0, 1.0, 40), 3)
    shifted = from_z(to_z(value, LOGIT.floor) + shift, LOGIT.floor)
    assert run_scatter(LOGIT, shifted, fitted, params, runs, items).var == pytest.approx(0.09, rel=0.25)
    # no deviation beyond the item noise: (nearly) nothing
    quiet, fitted, params, runs, items = _grid(rng, 0.0, n_items=400)
    quiet = rng.binomial(400, quiet) / 400
    assert run_scatter(LOGIT, quiet, fitted, params, runs, items).var < 0.01


def test_no_run_scatter_with_one_run_a_size_or_with_runs_outside_its_range():
    rng = np.random.default_rng(1)
    value, fitted, params, runs, items = _grid(rng, 0.3, runs=1)
    assert run_scatter(LOGIT, value, fitted, params, runs, items).var == 0.0
    low = LOGIT.floor + (1 - LOGIT.floor) * RUN_SCATTER_RANGE[0] / 2  # nearer the floor than the range
    value, fitted, params, runs, items = _grid(rng, 0.3, fitted=low)
    assert run_scatter(LOGIT, value, fitted, params, runs, items).var == 0.0


def _series(family):
    frame = family.scores[family.scores["run"] != "target"]
    return build_series(frame, task="task", metric="acc")


def test_a_target_brings_its_runs_scatter_too():
    """On OpenLM's grid (3 runs a size at 10-40 tokens per parameter, each off its size's curve by
    0.3 in logit) sigmoid measures the run scatter and its interval widens by it."""
    family = simulate_family(np.random.default_rng(3), n_sizes=6, seeds=3, tokens_per_param=(10.0, 20.0, 40.0),
                             run_lack_of_fit_sd=0.3)
    fit = SigmoidLaw().fit(_series(family))
    assert 0.02 < fit.run_var < 0.5 and fit.cov_per_run_scatter is not None
    without = replace(fit, run_var=0.0, cov=fit.cov - fit.run_var * fit.cov_per_run_scatter)
    wide, narrow = fit.predict(family.target), without.predict(family.target)
    assert wide.mean == pytest.approx(narrow.mean)
    assert wide.upper - wide.lower > 1.2 * (narrow.upper - narrow.lower)
    assert f"run-within-size sd {np.sqrt(fit.run_var):.3f}" in fit.summary()
    # one run a size: nothing to measure, nothing added
    single = SigmoidLaw().fit(_series(simulate_family(np.random.default_rng(3), n_sizes=6, seeds=1)))
    assert single.run_var == 0.0 and single.cov_per_run_scatter is None
