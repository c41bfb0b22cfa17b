"""Intervals cover what they claim at the width they need, on families that look like real ones
(shared items, several checkpoints per run, lack of fit, scores near 1): 200 draws per law.

The per-condition figures, and the harder item-mixture shape, are in benchmarks/calibration.txt.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.slow

CONDITIONS = [(0.0, "mid"), (0.0, "high"), (0.15, "mid"), (0.15, "high")]
DRAWS_PER_CONDITION = 50  # x 4 conditions = 200 draws per law


@pytest.fixture(scope="module")
def measured():
    import importlib.util
    from pathlib import Path

    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    from capcast.forecasting.backtest import available_cores

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # forked workers find its functions by name
    spec.loader.exec_module(bench)
    warnings.simplefilter("ignore")
    # each condition is its own seeded stream, so the figures do not depend on the processes
    with ProcessPoolExecutor(max_workers=min(2, available_cores()), mp_context=multiprocessing.get_context("fork")) as pool:
        jobs = {(lof, regime): pool.submit(bench.measure, "law", lof, regime, DRAWS_PER_CONDITION,
                                           laws=("sigmoid", "logit-linear", "auto"), seed=101)
                for lof, regime in CONDITIONS}
        return {condition: job.result() for condition, job in jobs.items()}


def pooled(measured, law: str) -> tuple[float, int]:
    n = sum(m[law]["n"] for m in measured.values())
    covered = sum(m[law]["coverage"] * m[law]["n"] for m in measured.values())
    return covered / n, n


@pytest.mark.parametrize("law", ["sigmoid", "logit-linear", "auto"])
def test_90_percent_intervals_cover_at_least_85_percent(measured, law):
    coverage, n = pooled(measured, law)
    assert n >= 190  # the check can fail: nearly every draw answered
    assert coverage >= 0.85, {k: round(v[law]["coverage"], 3) for k, v in measured.items()}
    # no condition collapses (a looser per-condition floor: 50 draws each, standard error ~0.04)
    assert all(m[law]["coverage"] >= 0.76 for m in measured.values()), {k: v[law]["coverage"] for k, v in measured.items()}


OVER_WIDE = pytest.mark.xfail(strict=True, reason=(
    "issue 9, not met: with lack of fit 0 the t quantile on sizes - parameters (2-4 degrees of freedom) "
    "makes logit-linear's 90% intervals cover 96-99.5% (benchmarks/calibration.txt); a "
    "Satterthwaite quantile narrowed them but under-covered with lack of fit 0.15 (docs/forecasting.md, Known limits)"))


@pytest.mark.parametrize("law", ["sigmoid", pytest.param("logit-linear", marks=OVER_WIDE), "auto"])
def test_90_percent_intervals_cover_at_most_96_percent(measured, law):
    coverage, _ = pooled(measured, law)
    assert coverage <= 0.96, {k: round(v[law]["coverage"], 3) for k, v in measured.items()}


def test_auto_is_at_most_1_3_times_as_wide_as_the_true_law_alone(measured):
    ratios = [m["auto"]["median_width"] / m["sigmoid"]["median_width"] for m in measured.values()]
    assert np.median(ratios) <= 1.3, ratios
