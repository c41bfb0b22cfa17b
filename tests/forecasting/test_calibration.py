"""Intervals cover what they claim at the width they need, on families that look like real ones
(shared items, several checkpoints per run, several runs per size, lack of fit of sizes and of runs,
scores near 1): at least 200 draws per law,
the same draws for every law of a shape, both bounds of issue 9 ([85%, 96%] pooled) asserted for
every built-in law, each on the shape whose true law it is, and for ``auto`` on the score shapes and both two-step shapes.

The per-condition figures, each law on the shapes it does not follow, and the harder item-mixture
shape are in benchmarks/calibration.txt.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest


@functools.cache
def benchmark():
    """benchmarks/calibration.py, loaded as a module."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "calibration.py"
    spec = importlib.util.spec_from_file_location("calibration_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # forked workers find its functions by name
    spec.loader.exec_module(bench)
    return bench


# The matrix (shapes, draws, laws, conditions, seed) lives in the benchmark, which
# benchmarks/scatter_interval.py re-measures under other interval rules.
SHAPES = benchmark().BOUNDED_SHAPES
CONDITIONS = benchmark().BOUNDED_CONDITIONS
SEED = benchmark().BOUNDED_SEED
# (law, the shape its coverage is bounded on)
CASES = [(law, shape) for shape, (_, laws) in SHAPES.items() for law in laws]

# Cases that miss a bound, each with its measured figure (seed 101, the draws below). Strict: a fix
# that brings one inside the bounds fails the test until its mark is removed.
TOO_NARROW = {
    ("auto", "loss-exp"): "issue 9, not met: 53.8% of 240 (23-78% per condition): the score accelerates past the fitting "
                          "sizes as only loss-error's exponential does; the folds weigh loss-error 0.15-0.45 and the "
                          "member-width rule drops it where its own interval is wider than half the range",
}
TOO_WIDE = {
    ("loss-error", "loss-exp"): "issue 9, not met: on its own form 96.3% of its 214 answered draws (of 240; 100% in both "
                                "'mid' conditions at median widths of 53-59 points): its variance is about right there "
                                "(a Monte Carlo at fixed structure: claimed sd 0.50, forecast sd 0.32-0.58 in the logit) "
                                "but its t has sizes - 3 = 1-3 degrees of freedom; the scatter's confidence distribution "
                                "instead of the t brings it to 94.9% and takes saturating-power out (83.3%; "
                                "benchmarks/scatter_interval.txt)",
    ("auto", "loss"): "issue 9, not met: 98.5% of 200 (96-100% per condition) at 0.71x ladder's width (median over conditions)",
}


@pytest.fixture(scope="module")
def measured() -> dict[str, dict[tuple, dict]]:
    """Per shape: per condition, :func:`benchmarks.calibration.measure`'s figures per law."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from capcast.forecasting.backtest import available_cores

    bench = benchmark()
    warnings.simplefilter("ignore")
    # each condition is its own seeded stream, so the figures do not depend on the processes
    with ProcessPoolExecutor(max_workers=min(2, available_cores()), mp_context=multiprocessing.get_context("fork")) as pool:
        # the costliest conditions first (auto on the two-step shapes, about 1 s a draw), so that
        # neither process is left alone with one at the end
        jobs = {(shape, condition): pool.submit(bench.measure, shape, *condition, draws, laws=laws, seed=SEED)
                for shape, (draws, laws) in SHAPES.items() for condition in CONDITIONS}
        return {shape: {condition: jobs[shape, condition].result() for condition in CONDITIONS} for shape in SHAPES}


def of_law(measured, law: str, shape: str) -> dict[tuple, dict]:
    """Per condition, ``law``'s figures on ``shape``."""
    return {condition: figures[law] for condition, figures in measured[shape].items()}


def pooled(measured, law: str, shape: str) -> tuple[float, int]:
    """(coverage over every answered draw of the 4 conditions, answered draws)."""
    return benchmark().pooled(list(of_law(measured, law, shape).values()))


def per_condition(measured, law: str, shape: str) -> dict:
    return {k: (round(v["coverage"], 3), v["n"], round(100 * v["median_width"], 1)) for k, v in of_law(measured, law, shape).items()}


def known(table: dict[tuple, str]) -> list:
    return [pytest.param(*case, marks=pytest.mark.xfail(strict=True, reason=table[case])) if case in table else case
            for case in CASES]


@pytest.mark.slow
@pytest.mark.parametrize(("law", "shape"), known(TOO_NARROW))
def test_90_percent_intervals_cover_at_least_85_percent(measured, law, shape):
    coverage, n = pooled(measured, law, shape)
    assert n >= 190, per_condition(measured, law, shape)  # the check can fail: nearly every draw answered
    assert coverage >= 0.85, (coverage, per_condition(measured, law, shape))
    # no condition collapses (a looser per-condition floor: 50-60 draws each, standard error ~0.04)
    assert all(m["coverage"] >= 0.76 for m in of_law(measured, law, shape).values()), per_condition(measured, law, shape)


@pytest.mark.slow
@pytest.mark.parametrize(("law", "shape"), known(TOO_WIDE))
def test_90_percent_intervals_cover_at_most_96_percent(measured, law, shape):
    coverage, n = pooled(measured, law, shape)
    assert n > 0
    assert coverage <= 0.96, (coverage, per_condition(measured, law, shape))


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["law", "saturating", "loss", "loss-exp", "runs"])
def test_auto_is_at_most_1_3_times_as_wide_as_the_true_law_alone(measured, shape):
    true_law = SHAPES[shape][1][0]
    ratios = [m["auto"]["median_width"] / m[true_law]["median_width"] for m in measured[shape].values()]
    assert np.median(ratios) <= 1.3, ratios


def test_the_scatter_estimate_nets_out_what_the_fit_absorbs_and_knows_its_own_variance():
    """On 5 sizes with a 3-parameter design and a known scatter, the meta-regression
    DerSimonian-Laird estimate is unbiased and varies as :func:`dersimonian_laird_var` says; the
    intercept-only estimate falls short by tr P (intercept) / tr P (design)."""
    from capcast.laws.scatter import _residual_projection, dersimonian_laird, dersimonian_laird_var

    rng = np.random.default_rng(3)
    noise = np.array([0.02, 0.01, 0.005, 0.004, 0.003])
    x = np.linspace(-1, 1, 5)
    design = np.column_stack([np.ones(5), x, x**2])
    scatter, dof = 0.05, 2  # large beside the noise, so truncation at 0 is rare
    w = 1 / noise
    estimates, intercept_only = [], []
    for _ in range(4000):
        y = rng.normal(0, np.sqrt(noise + scatter))
        beta = np.linalg.lstsq(design * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
        residual = y - design @ beta
        estimates.append(dersimonian_laird(residual, noise, dof, design))
        intercept_only.append(dersimonian_laird(residual, noise, dof))
    assert np.mean(estimates) == pytest.approx(scatter, rel=0.05)
    assert np.var(estimates) == pytest.approx(dersimonian_laird_var(noise, scatter, design), rel=0.15)
    shortfall = np.trace(_residual_projection(w, design)) / np.trace(_residual_projection(w, None))
    assert np.mean(intercept_only) == pytest.approx(scatter * shortfall, rel=0.1)
    assert shortfall < 0.8
