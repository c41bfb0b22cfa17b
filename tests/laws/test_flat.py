"""Persistence (``flat``): ``auto``'s forecast where the signal test finds no trend."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from capcast.forecasting.forecast import STATUS_OK, STATUS_UNPREDICTABLE, run_forecasts
from capcast.laws.base import NotPredictable
from capcast.laws.flat import FlatLaw
from capcast.plugins.registry import load_registry
from capcast.tables.series import Series
from capcast.tables.scores import build_series, read_scores
from capcast.testing.simulate import simulate_family

REGISTRY = load_registry()


def _forecast(family, law):
    (result,) = run_forecasts(family.scores, "target", ["task"], "acc", law, 0.9, None, REGISTRY)
    return result.row


def test_auto_forecasts_persistence_where_there_is_no_trend_and_says_what_it_cannot_see() -> None:
    family = simulate_family(np.random.default_rng(1), regime="flat", n_sizes=5, seeds=2, lack_of_fit_sd=0.15)
    row = _forecast(family, "auto")
    assert row.status == STATUS_OK and row.law == "auto:flat"
    assert "no trend to extrapolate (no signal above chance" in row.reason and "not foreseen" in row.reason
    table = read_scores(family.scores)
    fitted = table[table["model"] != "target"]
    top = fitted[fitted["params"] == fitted["params"].max()]
    level = top[top.groupby("run")["tokens"].transform("max") == top["tokens"]]["value"].mean()
    assert row.forecast == pytest.approx(level)
    assert row.lower < row.forecast < row.upper
    # a law without a persistence forecast keeps saying why it has none
    sigmoid = _forecast(family, "sigmoid")
    assert sigmoid.status == STATUS_UNPREDICTABLE and sigmoid.reason.startswith("no signal above chance")


def test_persistence_intervals_cover_flat_families_at_about_the_stated_rate() -> None:
    rng = np.random.default_rng(7)
    hits, widths, draws, answered = 0, [], 60, 0
    for _ in range(draws):
        family = simulate_family(rng, regime="flat", n_sizes=int(rng.integers(4, 7)), seeds=int(rng.integers(1, 3)),
                                 lack_of_fit_sd=0.15)
        row = _forecast(family, "auto")
        if row.status != STATUS_OK:  # item noise alone sometimes ranks the sizes as rising: then no persistence
            assert "but scores rise with compute" in row.reason
            continue
        assert row.law == "auto:flat"
        answered += 1
        hits += row.lower <= family.actual <= row.upper
        widths.append(row.upper - row.lower)
    assert answered >= 0.8 * draws
    assert 0.82 <= hits / answered <= 1.0
    # not vacuous: the intervals are a few points wide on 400 items near chance, not the whole range
    assert np.median(widths) < 0.15


def test_persistence_needs_two_sizes() -> None:
    family = simulate_family(np.random.default_rng(2), regime="flat", n_sizes=2)
    table = read_scores(family.scores)
    series = build_series(table[(table["model"] != "target") & (table["params"] == table["params"].min())], "task", "acc")
    with pytest.raises(NotPredictable, match="at least 2 sizes"):
        FlatLaw().fit(series)


def test_no_persistence_for_a_series_that_climbs_toward_chance_or_sits_at_a_floor_of_0() -> None:
    from capcast.laws.auto import AutoLaw

    family = simulate_family(np.random.default_rng(3), regime="flat", n_sizes=5, lack_of_fit_sd=0.0)
    table = read_scores(family.scores)
    series = build_series(table[table["model"] != "target"], "task", "acc")
    order = np.argsort(series.flops)
    climbing = replace(series, value=np.interp(np.arange(len(series)), [0, len(series) - 1], [0.15, 0.26])[np.argsort(order)])
    with pytest.raises(NotPredictable, match="but scores rise with compute"):
        AutoLaw(candidates=()).without_trend(climbing, "no signal above chance")
    at_zero = replace(series, value=np.zeros(len(series)), chance=0.0)
    with pytest.raises(NotPredictable, match="PassUntil"):
        AutoLaw(candidates=()).without_trend(at_zero, "no signal above chance")


def test_the_trend_test_reads_the_checkpoints_the_laws_fit_not_the_first_tenth_of_each_run() -> None:
    """Three sizes (too few final checkpoints for a rank test of their own): the trend is read
    over every checkpoint after the first 10% of each run. Pythia's ARC-Challenge acc_norm at
    70m-410m is this shape: the first checkpoints sit at chance or above it, then every size dips
    below chance and climbs (0.221, 0.233, 0.243 at the end). Over all checkpoints Spearman's rho
    was -0.42, so persistence forecast 24.3% for 6.9b and 12b (actual 35%); over the checkpoints
    the laws fit it is 0.77."""
    from capcast.laws.auto import AutoLaw
    from capcast.laws.signal import rises_with_compute

    params = np.repeat([7e7, 1.6e8, 4.1e8], 5)
    tokens = np.tile([3e9, 1.5e10, 6e10, 1.5e11, 3e11], 3)  # the first checkpoint of each run within its first 10%
    late = {7e7: (0.212, 0.216, 0.219, 0.221), 1.6e8: (0.222, 0.227, 0.230, 0.233), 4.1e8: (0.230, 0.236, 0.240, 0.243)}
    value = np.concatenate([[0.262, *late[n]] for n in (7e7, 1.6e8, 4.1e8)])
    series = Series(task="arc_challenge", metric="acc_norm", model=np.array([f"m{n:g}-{t:g}" for n, t in zip(params, tokens)], dtype=object),
                    params=params, tokens=tokens, flops=6 * params * tokens, value=value, n_items=np.full(15, 1172), chance=0.25,
                    run=np.array([f"m{n:g}" for n in params], dtype=object))
    trend = rises_with_compute(series)
    assert trend.rising and trend.rho > 0.5
    with pytest.raises(NotPredictable, match="but scores rise with compute"):
        AutoLaw(candidates=()).without_trend(series, "no signal above chance")


def test_a_rise_over_four_sizes_is_read_from_the_item_noise_not_from_ranks_alone() -> None:
    """OPT's SciQ at 125m-2.7b (1,000 items, one final checkpoint a size): 0.751, 0.748, 0.845,
    0.858. One swap within noise at the bottom leaves Spearman rho 0.8, p 0.20, which over 4 points
    read as "scores do not rise", and persistence forecast 85.8 for 6.7b-66b (actual 90-93). The
    slope over the sizes' item noise sees the rise; four sizes within noise of one level stay flat."""
    from capcast.laws.signal import check_signal, rises_with_compute
    from capcast.plugins.registry import load_registry

    params = np.array([8.5e7, 3.0e8, 1.2e9, 2.5e9])

    def sizes(value):
        names = np.array([f"opt-{n:g}" for n in params], dtype=object)
        return Series(task="sciq", metric="acc", model=names, run=names, params=params, tokens=np.full(4, 1.8e11),
                      flops=6 * params * 1.8e11, value=np.array(value), n_items=np.full(4, 1000), chance=0.25)

    sciq = sizes([0.751, 0.748, 0.845, 0.858])
    trend = rises_with_compute(sciq)
    assert trend.rho == pytest.approx(0.8) and trend.pvalue >= 0.2  # the rank test alone said no
    assert trend.rising and trend.slope_pvalue < 0.05
    check_signal(sciq)  # no refusal: the laws fit it
    assert load_registry().law("auto").fit(sciq).law != "auto:flat"

    level = sizes([0.601, 0.590, 0.612, 0.598])  # within 1.4 binomial standard errors of 0.60
    trend = rises_with_compute(level)
    assert not trend.rising and trend.slope_pvalue > 0.1
    with pytest.raises(NotPredictable, match=r"scores do not rise with compute \(Spearman rho .*slope over the sizes' item noise p"):
        check_signal(level)


def test_seeds_at_one_compute_are_one_point_of_the_rank_test() -> None:
    """Two seeds a size share the size's lack of fit and the items: counted as 8 points, four flat
    sizes whose seeds agree read as a rank correlation (p < 0.2); as 4 points (the seeds' means)
    they do not, and the slope over the item noise sees no rise either."""
    from scipy import stats

    from capcast.laws.signal import rises_with_compute

    params = np.repeat([8.5e7, 3.0e8, 1.2e9, 2.5e9], 2)
    value = np.array([0.598, 0.602, 0.588, 0.592, 0.608, 0.612, 0.603, 0.607])
    runs = np.array([f"m{n:g}-s{i % 2}" for i, n in enumerate(params)], dtype=object)
    series = Series(task="sciq", metric="acc", model=runs, run=runs, params=params, tokens=np.full(8, 1.8e11),
                    flops=6 * params * 1.8e11, value=value, n_items=np.full(8, 1000), chance=0.25)
    as_eight = stats.spearmanr(np.log10(series.flops), value)
    assert as_eight.statistic > 0 and as_eight.pvalue < 0.2  # what the rank test read before
    trend = rises_with_compute(series)
    assert trend.rho == pytest.approx(0.6) and trend.pvalue > 0.2
    assert not trend.rising and trend.slope_pvalue > 0.1
