"""The per-cluster law of COD and the paper's filter for extrapolatable clusters.

    y(C) = g + (1 - g) * exp(-a * C^-b - c)        (Xu et al., Eq. 4)

fitted by least squares (scipy ``least_squares``, several deterministic starts) on a cluster's mean
score at each fitting checkpoint; ``C`` is training compute in units of ``compute_unit`` FLOPs
(default 1e18, the paper's "Compute (BB)" axis), so that the thresholds on ``a`` mean what they
meant in the paper. A cluster is kept (extrapolatable) when ``a > 1``, ``b > 0.1`` and
``0 <= c < 1`` (:class:`Thresholds`, configurable): near-zero a or b is negligible growth, a large
c a low ceiling. A law flat over the fitting compute (its growth term underflows there, so the
fit is the constant g whatever a and b say: an optimiser left at a start point) is dropped too.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import least_squares

COMPUTE_UNIT = 1e18
# A fitted law whose values over the fitting compute span less than this is flat there (numerically:
# far below one instance of any benchmark), whatever its a and b: nothing was fitted to grow.
FLAT_SPAN = 1e-6
BOUNDS = (np.array([0.0, 0.0, -5.0, 0.0]), np.array([1e4, 3.0, 30.0, 0.999]))  # a, b, c, g


@dataclass(frozen=True)
class Thresholds:
    """The paper's filter: keep a cluster when a > a_min, b > b_min and c_min <= c < c_max."""

    a_min: float = 1.0
    b_min: float = 0.1
    c_min: float = 0.0
    c_max: float = 1.0

    def text(self) -> str:
        return f"a > {self.a_min:g}, b > {self.b_min:g}, {self.c_min:g} <= c < {self.c_max:g}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ClusterFit:
    a: float
    b: float
    c: float
    g: float
    rmse: float
    ok: bool  # the optimiser converged to finite parameters

    def predict(self, compute, unit: float = COMPUTE_UNIT) -> np.ndarray:
        return law(np.asarray(compute, dtype=float) / unit, self.a, self.b, self.c, self.g)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def params(self) -> np.ndarray:
        return np.array([self.a, self.b, self.c, self.g])


def law(x, a, b, c, g):
    """``g + (1 - g) * exp(-a * x^-b - c)`` with x = compute / unit."""
    x = np.maximum(np.asarray(x, dtype=float), 1e-300)
    return g + (1.0 - g) * np.exp(-a * x ** (-b) - c)


def _residuals(p, x, y):
    return law(x, *p) - y


def _jacobian(p, x, y):
    """d law / d(a, b, c, g), analytic: finite differences cost twice the evaluations and dominated
    COD's run time (the bootstrap refits every kept cluster hundreds of times)."""
    a, b, c, g = p
    x = np.maximum(x, 1e-300)
    u = x ** (-b)
    e = np.exp(-a * u - c)
    return np.column_stack([-(1 - g) * e * u, (1 - g) * e * a * u * np.log(x), -(1 - g) * e, 1 - e])


def _starts(y: np.ndarray):
    floor = float(np.clip(np.nanmin(y), 0.0, 0.9))
    for a, b, c, g in itertools.product((0.5, 5.0), (0.05, 0.3, 1.0), (0.0, 2.0), (0.0, floor)):
        yield np.array([a, b, c, g])


def fit_cluster(compute, y, unit: float = COMPUTE_UNIT, start: np.ndarray | None = None) -> ClusterFit:
    """Least-squares fit of the law to mean scores ``y`` at ``compute`` (FLOPs); NaNs skipped.

    ``start`` (a previous fit's parameters) replaces the grid of starts: the bootstrap warm-starts.
    """
    x = np.asarray(compute, dtype=float) / unit
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 2:
        return ClusterFit(np.nan, np.nan, np.nan, np.nan, np.nan, False)
    best = None
    starts = [np.clip(start, BOUNDS[0], BOUNDS[1])] if start is not None else list(_starts(y))
    for p0 in starts:
        try:
            res = least_squares(_residuals, p0, jac=_jacobian, bounds=BOUNDS, args=(x, y), method="trf", max_nfev=400)
        except (ValueError, FloatingPointError):
            continue
        if best is None or res.cost < best.cost:
            best = res
    if best is None or not np.all(np.isfinite(best.x)):
        return ClusterFit(np.nan, np.nan, np.nan, np.nan, np.nan, False)
    a, b, c, g = (float(v) for v in best.x)
    rmse = float(np.sqrt(np.mean(best.fun ** 2)))
    return ClusterFit(a, b, c, g, rmse, True)


def keep_reason(fit: ClusterFit, thresholds: Thresholds = Thresholds(), compute=None,
                unit: float = COMPUTE_UNIT) -> tuple[bool, str]:
    """(kept, why): the paper's filter in words. ``compute`` (the fitting checkpoints' FLOPs, where
    known): a law flat over them (values spanning less than :data:`FLAT_SPAN`) fails the growth
    condition too, wherever a threshold on a or b is set: on tiny computes ``exp(-a C^-b)``
    underflows, and a start point's a and b then pass the filter on a fit that is the constant g.
    Without thresholds on growth (the paper's "no thresholds" ablation) every cluster is kept."""
    if not fit.ok:
        return False, "the law could not be fitted"
    failed = []
    growth_thresholds = np.isfinite(thresholds.a_min) or np.isfinite(thresholds.b_min)
    if growth_thresholds and compute is not None and len(compute):
        values = fit.predict(compute, unit)
        span = float(np.nanmax(values) - np.nanmin(values))
        if not span >= FLAT_SPAN:
            failed.append(f"flat over the fitting compute (the law spans {span:.2g}: exp(-a C^-b) underflows there)")
    if not fit.a > thresholds.a_min:
        failed.append(f"a = {fit.a:.3g} <= {thresholds.a_min:g} (growth negligible)")
    if not fit.b > thresholds.b_min:
        failed.append(f"b = {fit.b:.3g} <= {thresholds.b_min:g} (growth negligible)")
    if fit.c < thresholds.c_min:
        failed.append(f"c = {fit.c:.3g} < {thresholds.c_min:g} (ceiling above 1)")
    if not fit.c < thresholds.c_max:
        failed.append(f"c = {fit.c:.3g} >= {thresholds.c_max:g} (ceiling too low: non-scalable)")
    if failed:
        return False, "; ".join(failed)
    return True, f"kept: {thresholds.text()}"
