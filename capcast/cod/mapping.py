"""From the predictable subset's score to the full benchmark's: a monotone cubic spline through (0,0), (1,1).

COD's mapping (Xu et al., Stage (d), v4): a cubic smoothing spline, monotone increasing, forced
through (0, 0) and (1, 1), fitted on the fitting checkpoints' (subset score, full score) pairs,
with knots added until the fit's RMSE is below T = 0.005 (T = 0.0025 overfits, 0.02 underfits in
their Fig. A1). Optional anchors (models outside the family whose subset and full scores are
known, e.g. a public large model evaluated on the same instances) are added as further pairs; the
paper's error without one is about 1.7x larger (2.65 vs 1.55 points).

The spline is a clamped cubic B-spline on [0, 1] whose coefficients start at 0, end at 1 and never
decrease (a sufficient condition for a monotone spline), fitted by bounded linear least squares
(scipy ``lsq_linear``) on the non-negative coefficient steps; interior knots sit at quantiles of the
subset scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import BSpline
from scipy.optimize import lsq_linear

RMSE_TARGET = 0.005
MAX_KNOTS = 12
DEGREE = 3


@dataclass(frozen=True)
class Mapping:
    knots: np.ndarray  # the full knot vector
    coefs: np.ndarray
    rmse: float
    n_points: int
    n_anchors: int
    reached_target: bool

    def __call__(self, x) -> np.ndarray:
        x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
        return np.clip(BSpline(self.knots, self.coefs, DEGREE, extrapolate=False)(x), 0.0, 1.0)

    @property
    def interior_knots(self) -> int:
        return len(self.knots) - 2 * (DEGREE + 1)

    def to_dict(self) -> dict:
        return {"knots": self.knots.tolist(), "coefs": self.coefs.tolist(), "rmse": self.rmse, "n_points": self.n_points,
                "n_anchors": self.n_anchors, "reached_target": self.reached_target, "interior_knots": self.interior_knots}

    @classmethod
    def from_dict(cls, d: dict) -> "Mapping":
        return cls(np.asarray(d["knots"], float), np.asarray(d["coefs"], float), float(d["rmse"]), int(d["n_points"]),
                   int(d["n_anchors"]), bool(d["reached_target"]))


def _knot_vector(x: np.ndarray, n_interior: int) -> np.ndarray:
    inside = np.unique(x[(x > 0) & (x < 1)])
    interior = np.quantile(inside, np.linspace(0, 1, n_interior + 2)[1:-1]) if n_interior and len(inside) else np.array([])
    interior = np.unique(interior[(interior > 0) & (interior < 1)])
    return np.concatenate([np.zeros(DEGREE + 1), interior, np.ones(DEGREE + 1)])


def _fit_once(x: np.ndarray, y: np.ndarray, knots: np.ndarray) -> tuple[np.ndarray, float]:
    n_coef = len(knots) - DEGREE - 1
    design = BSpline.design_matrix(np.clip(x, 0.0, 1.0), knots, DEGREE).toarray()
    # c_0 = 0, c_i = sum of steps d_1..d_i (d >= 0), and the steps sum to 1 (a heavily weighted row).
    steps = np.tril(np.ones((n_coef, n_coef - 1)), k=-1)
    A = np.vstack([design @ steps, 1e4 * np.ones((1, n_coef - 1))])
    b = np.concatenate([y, [1e4]])
    d = lsq_linear(A, b, bounds=(0.0, np.inf), method="bvls").x
    d = d / d.sum() if d.sum() > 0 else np.full_like(d, 1.0 / len(d))
    coefs = steps @ d
    rmse = float(np.sqrt(np.mean((design @ coefs - y) ** 2)))
    return coefs, rmse


def fit_mapping(subset, full, anchors: list[tuple[float, float]] | None = None, rmse_target: float = RMSE_TARGET,
                max_knots: int = MAX_KNOTS) -> Mapping:
    """The monotone spline from subset scores to full scores; knots added until RMSE < ``rmse_target``."""
    x = np.asarray(subset, dtype=float)
    y = np.asarray(full, dtype=float)
    anchors = list(anchors or [])
    if anchors:
        x = np.concatenate([x, [a for a, _ in anchors]])
        y = np.concatenate([y, [f for _, f in anchors]])
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    best = None
    for n_interior in range(0, min(max_knots, max(len(np.unique(x)) - 1, 0)) + 1):
        knots = _knot_vector(x, n_interior)
        coefs, rmse = _fit_once(x, y, knots) if len(x) else (np.linspace(0, 1, len(knots) - DEGREE - 1), 0.0)
        best = Mapping(knots, coefs, rmse, len(x) - len(anchors), len(anchors), rmse < rmse_target)
        if rmse < rmse_target:
            break
    return best
