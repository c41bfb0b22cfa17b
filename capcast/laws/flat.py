"""``flat``: persistence, the forecast of a family whose scores show no trend with compute.

Where the signal test finds nothing to extrapolate (the largest fitting size within noise of
chance, or scores that do not rise with compute), the trend to continue is a flat one: the score
stays where the largest fitting size's runs end. ``auto`` answers such a series with this law
(``auto:flat``) and says so; like every trend law, it cannot foresee a rise that starts beyond the
fitting compute (emergence), and its rows say that too.

    forecast = mean of the final checkpoints of the largest size's runs

Interval (score units, clipped to [0, 1]: ``CurveFit.bounded``): the target's deviation from the level has

* the scatter of a size around a flat line (``size_scatter``: the DerSimonian-Laird variance of
  the sizes' final-checkpoint means around their weighted mean, net of item noise), once for the
  target's size and once for the largest fitting size the level comes from;
* the level's item noise (one run's items: seeds share items) and the target's own item noise;

with a t quantile on sizes - 1 degrees of freedom. ``auto`` then checks that variance against its
forward-chaining folds as it does any law's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capcast.laws.base import NotPredictable, Series
from capcast.laws.curve import CurveFit
from capcast.laws.scatter import dersimonian_laird
from capcast.laws.signal import final_checkpoints, items_of


@dataclass(frozen=True)
class FlatLaw:
    name: str = "flat"
    description: str = "persistence: the score stays at the largest fitting size's (for series with no trend to extrapolate)"
    auto_candidate: bool = False  # auto uses it only where the signal test finds no trend

    def fit(self, series: Series) -> CurveFit:
        final = final_checkpoints(series)
        params, value = np.asarray(series.params, dtype=float)[final], np.asarray(series.value, dtype=float)[final]
        sizes = np.unique(params)
        if len(sizes) < 2:
            raise NotPredictable("persistence needs at least 2 sizes to measure how much a size scatters")
        n = items_of(series)
        n_final = np.full(len(value), np.inf) if n is None else np.asarray(n, dtype=float)[final]
        means = np.array([value[params == s].mean() for s in sizes])
        level = float(means[-1])
        p = float(np.clip(level, 0.5 / np.nanmax(n_final) if np.isfinite(np.nanmax(n_final)) else 1e-6, 1.0))
        p = min(p, 1 - 1e-6)
        # item noise of each size's mean: seeds share the items, so one run's count
        noise = np.array([p * (1 - p) / float(np.max(n_final[params == s])) for s in sizes])
        scatter = _dl_scatter(means, noise)
        level_var = noise[-1] + scatter
        target_items = None if n is None else float(np.max(n_final[params == sizes[-1]]))

        def mean_fn(theta, target):
            return float(theta[0])

        return CurveFit(
            law=self.name, names=("level",), theta=np.array([level]), cov=np.array([[level_var]]), floor=0.0,
            resid_var=scatter, dof=len(sizes) - 1, mean_fn=mean_fn, link="identity", n_points=int(final.sum()),
            target_items=target_items, x_label="log10 compute (FLOPs)", bounded=True,
            notes=(f"persistence at the largest fitting size's level {level:.3f} over {len(sizes)} sizes "
                   f"(size scatter sd {np.sqrt(scatter):.3f}); a rise that starts beyond the fitting compute is not foreseen"),
        )


def _dl_scatter(means: np.ndarray, noise: np.ndarray) -> float:
    """The DerSimonian-Laird between-size variance of ``means`` around their weighted mean."""
    w = 1.0 / np.maximum(noise, 1e-12)
    return dersimonian_laird(means - float(np.sum(w * means) / np.sum(w)), noise, len(means) - 1)
