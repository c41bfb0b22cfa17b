"""Series helpers shared by the laws: subsetting, early-checkpoint trimming, chance floors, and
the signal tests behind the "not predictable yet" answer: "is there any signal above chance?"
for scores (:func:`check_signal`) and "does the loss fall with compute?" for losses
(:func:`check_loss_signal`).

Both see *oriented* series (``capcast.forecasting.orient``): a score with higher better in [0, 1]
(``brier`` arrives as (2 - brier) / 2), a loss with lower better (``logprob_gold`` arrives as
-logprob). ``to_metric`` maps an oriented value back, so the reasons speak the metric's units.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
from scipy import stats

from capcast.laws.base import NotPredictable, Series

EARLY_FRACTION = 0.1  # Bhagia et al. drop the first 10% of checkpoints of each run
SIGNAL_Z = 2.5  # how many binomial standard errors above chance counts as signal
FLOOR_Z = 3.0  # how many binomial standard errors below chance a checkpoint must sit to lower the floor
SLOPE_P = 0.1  # scores rise where the noise-weighted slope test (slope_pvalue) gives this one-sided p or below
LOSS_SIGNAL_P = 0.2  # a loss "falls with compute" when Spearman's rho < 0 at this p-value or below


def subset(series: Series, mask: np.ndarray) -> Series:
    """The checkpoints of ``series`` where ``mask`` is true (every aligned array filtered)."""
    mask = np.asarray(mask, dtype=bool)

    def cut(arr):
        return None if arr is None else np.asarray(arr)[mask]

    return replace(
        series, model=cut(series.model), run=cut(series.run), params=cut(series.params), tokens=cut(series.tokens),
        flops=cut(series.flops), value=cut(series.value), n_items=cut(series.n_items), step=cut(series.step),
        extra={k: np.asarray(v)[mask] for k, v in series.extra.items()},
    )


def drop_early_checkpoints(series: Series, fraction: float = EARLY_FRACTION) -> Series:
    """Drop checkpoints in the first ``fraction`` of each run's training (by tokens)."""
    keep = np.ones(len(series), dtype=bool)
    runs = series.runs
    for run in np.unique(runs):
        rows = runs == run
        final = np.max(series.tokens[rows])
        keep &= ~rows | (series.tokens >= fraction * final)
    return subset(series, keep)


def final_checkpoints(series: Series) -> np.ndarray:
    """Mask of each run's final checkpoint (the most tokens)."""
    keep = np.zeros(len(series), dtype=bool)
    runs = series.runs
    for run in np.unique(runs):
        rows = np.flatnonzero(runs == run)
        keep[rows[np.argmax(series.tokens[rows])]] = True
    return keep


def require_score_series(series: Series) -> Series:
    """Checks that laws on scores need: values in [0, 1] and positive compute."""
    if len(series) == 0:
        raise NotPredictable("no fitting checkpoints")
    if np.any(series.value < 0) or np.any(series.value > 1):
        raise NotPredictable(f"metric {series.metric!r} is not a score in [0, 1]; this law forecasts scores")
    ok = np.isfinite(series.flops) & (series.flops > 0) & np.isfinite(series.value)
    series = subset(series, ok)
    if len(np.unique(series.params)) < 2:
        raise NotPredictable("fewer than 2 model sizes to fit")
    return series


def score_floor(series: Series) -> float:
    """The chance floor; lowered to the data when a metric sits below chance (e.g. acc_norm).

    With item counts known, only a checkpoint more than ``FLOOR_Z`` binomial standard errors
    below chance lowers it: near chance, item sampling alone puts some of many checkpoints a
    little below chance, and a floor lowered by that noise bends every extrapolation (in
    simulated families with 6 sizes it cost 5 points of bias)."""
    chance = float(series.chance) if np.isfinite(series.chance) else 0.0
    value = np.asarray(series.value, dtype=float)
    items = items_of(series)
    if items is not None:
        below = value < chance - FLOOR_Z * np.sqrt(chance * (1 - chance) / items)
    else:
        below = value < chance
    return min(chance, max(float(np.min(value[below])) - 0.01, 0.0)) if below.any() else chance


def items_of(series: Series) -> np.ndarray | None:
    if series.n_items is None:
        return None
    n = np.asarray(series.n_items, dtype=float)
    return n if np.all(np.isfinite(n) & (n > 0)) else None


def check_signal(series: Series, z: float = SIGNAL_Z, to_metric: Callable[[float], float] | None = None) -> None:
    """Raise NotPredictable when the fitting data show no signal above chance within noise.

    Signal means both: the final checkpoint of a largest-size run sits more than ``z`` binomial
    standard errors above chance (when the item count is known), and scores rise with compute
    (positive Spearman correlation over the final checkpoints, or, with fewer than 4 of them, over
    every checkpoint after the first 10% of each run; or a positive slope over the sizes' item
    noise: :func:`rises_with_compute`). ``series`` is a
    score, higher better in [0, 1]; ``to_metric`` (an oriented value -> the metric's own units)
    words the reasons in the metric's units.
    """
    series = require_score_series(series)
    chance = float(series.chance) if np.isfinite(series.chance) else 0.0
    final = final_checkpoints(series)
    # The final checkpoints of the largest size's runs, averaged: several runs (seeds) may share
    # a size, and picking the best of them would find signal in noise.
    largest = np.flatnonzero(final & (series.params == np.max(series.params[final])))
    top = float(np.mean(series.value[largest]))
    shown = to_metric or (lambda v: v)
    scores = "scores" if to_metric is None else f"has {series.metric}"
    n = items_of(series)
    if n is not None:
        # Seeds are scored on the same items, so their mean has (at most) one run's item count.
        se = np.sqrt(max(chance * (1 - chance), top * (1 - top), 1e-6) / float(np.max(n[largest])))
        if top - chance < z * se:
            se_shown = abs(shown(top + se) - shown(top))
            raise NotPredictable(
                f"no signal above chance: the largest fitting model {scores} {shown(top):.3f} vs chance {shown(chance):.3f} "
                f"(within {z} standard errors of {se_shown:.3f})"
            )
    elif top <= chance:
        raise NotPredictable(f"no signal above chance: the largest fitting model {scores} {shown(top):.3f} vs chance {shown(chance):.3f}")
    trend = rises_with_compute(series)
    if not trend.rising:
        what = "scores do not rise" if to_metric is None or shown(1.0) > shown(0.0) else f"{series.metric} does not fall"
        raise NotPredictable(f"{what} with compute ({trend.text})")


@dataclass(frozen=True)
class Trend:
    """What :func:`rises_with_compute` found: whether scores rise, Spearman's rho and p value, and
    the noise-weighted slope test's one-sided p value (NaN where it was not needed or not possible)."""

    rising: bool
    rho: float
    pvalue: float
    slope_pvalue: float = float("nan")

    @property
    def text(self) -> str:
        slope = "" if np.isnan(self.slope_pvalue) else f"; slope over the sizes' item noise p {self.slope_pvalue:.2f}"
        return f"Spearman rho {self.rho:.2f}, p {self.pvalue:.2f}{slope}"


def rises_with_compute(series: Series) -> Trend:
    """Whether scores rise with compute: a positive rank correlation over the final checkpoints
    (when there are fewer than 4, over every checkpoint after the first 10% of each run, the points
    the laws fit), significant at p <= 0.2 when there are at least 4 points; or, where that rank
    test fails with 4 or more sizes and known item counts, a positive slope
    (:func:`slope_pvalue` <= ``SLOPE_P``).

    The slope test is there because a rank test cannot see a rise over few sizes: over 4 final
    checkpoints Spearman's p is at most 0.2 only for a perfect order, so one swap within noise
    (OPT's SciQ, 0.75 -> 0.86 over 4 sizes with 1,000 items: rho 0.8, p 0.20) read as no trend.
    The item counts say how much a size's score can move by chance; the rank test ignores them.

    Over final checkpoints the rank test takes one point per compute: seeds of one size trained on
    the same tokens share the size's lack of fit and the items, so counting each as a point of its
    own raised its false alarms on flat simulated families from about 10% to 16-20% (2 seeds a
    size, lack of fit sd 0.15 in logit; benchmarks/trend_test.py). Runs of one size at other token
    counts (OpenLM's grid) stay points of their own."""
    final = final_checkpoints(series)
    points = subset(series, final) if final.sum() >= 4 else drop_early_checkpoints(series)
    if np.ptp(points.value) == 0:  # every score the same (e.g. all 0): no rank correlation to take
        return Trend(False, float("nan"), 1.0)
    x, y = np.log10(points.flops), np.asarray(points.value, dtype=float)
    if final.sum() >= 4:
        compute, at = np.unique(np.round(x, 9), return_inverse=True)
        if len(compute) >= 4:  # seeds of one size at one compute: one point, their mean
            x, y = compute, np.bincount(at, weights=y) / np.bincount(at)
    rho, pvalue = stats.spearmanr(x, y)
    rising = bool(rho > 0) and not (len(x) >= 4 and pvalue > 0.2)
    if rising or final.sum() < 4:
        return Trend(rising, float(rho), float(pvalue))
    slope_p = slope_pvalue(points)
    return Trend(bool(slope_p <= SLOPE_P), float(rho), float(pvalue), slope_p)


def slope_pvalue(series: Series) -> float:
    """One-sided p value of a positive slope of score on log compute over the sizes: each size's
    mean final score (its runs' mean, at their mean log compute) weighted by its item noise
    p(1 - p)/n (one run's items: seeds share them) plus the sizes' scatter about the line (the
    DerSimonian-Laird estimate, :func:`capcast.laws.scatter.dersimonian_laird`), a t on sizes - 2
    degrees of freedom. NaN with fewer than 4 sizes or unknown item counts."""
    from capcast.laws.scatter import dersimonian_laird

    n = items_of(series)
    sizes = np.unique(series.params)
    if n is None or len(sizes) < 4:
        return float("nan")
    at = [series.params == size for size in sizes]
    x = np.array([np.log10(series.flops[rows]).mean() for rows in at])
    y = np.array([series.value[rows].mean() for rows in at])
    items = np.array([n[rows].max() for rows in at])
    p = np.clip(y, 0.5 / items, 1 - 0.5 / items)
    noise = p * (1 - p) / items
    design = np.column_stack([np.ones_like(x), x - x.mean()])

    def wls(variance):
        w = 1.0 / variance
        cov = np.linalg.inv(design.T @ (design * w[:, None]))
        return cov @ design.T @ (w * y), cov

    beta, _ = wls(noise)
    scatter = dersimonian_laird(y - design @ beta, noise, len(sizes) - 2, design)
    beta, cov = wls(noise + scatter)
    return float(stats.t.sf(beta[1] / np.sqrt(cov[1, 1]), len(sizes) - 2))


def require_loss_series(series: Series) -> Series:
    """Checks that laws on losses need: finite values, positive compute, at least 2 model sizes."""
    if len(series) == 0:
        raise NotPredictable("no fitting checkpoints")
    ok = np.isfinite(series.flops) & (series.flops > 0) & np.isfinite(series.value)
    series = subset(series, ok)
    if len(np.unique(series.params)) < 2:
        raise NotPredictable("fewer than 2 model sizes to fit")
    return series


def check_loss_signal(series: Series, p_max: float = LOSS_SIGNAL_P, label: str | None = None) -> None:
    """Raise NotPredictable unless the loss falls with compute: Spearman's rho between log compute
    and the loss (lower better) is negative, with p <= ``p_max`` when there are 4+ points, over
    each run's final checkpoint (over all checkpoints when fewer than 4 runs). ``label`` names the
    loss in the reason (default: the series' metric)."""
    series = require_loss_series(series)
    final = final_checkpoints(series)
    use = final if final.sum() >= 4 else np.ones(len(series), dtype=bool)
    x, y = np.log10(series.flops[use]), series.value[use]
    rho, pvalue = (np.nan, np.nan) if np.ptp(y) == 0 or np.ptp(x) == 0 else stats.spearmanr(x, y)
    if not (rho < 0) or (use.sum() >= 4 and pvalue > p_max):
        raise NotPredictable(f"{label or series.metric} does not improve with compute: no falling loss "
                             f"(Spearman rho {rho:.2f}, p {pvalue:.2f})")
