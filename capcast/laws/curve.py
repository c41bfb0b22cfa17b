"""The shared fitted-curve result every built-in law returns, and its prediction intervals.

Intervals are built in the *score link space* z = logit((p - floor) / (1 - floor)), so they
never leave [floor, 1] and widen naturally near saturation. The variance of a forecast has
three parts, all in z:

* parameter uncertainty, propagated by the delta method (numeric Jacobian x covariance);
* the scatter of the fitting checkpoints around the curve (residual variance in z over the
  checkpoints nearest the target), which also carries the target's own sampling noise;
* ``extra_var``: anything a caller adds, e.g. the leave-largest-out error of ``auto``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from scipy import stats
from scipy.special import expit, logit

from capcast.laws.base import NotPredictable, Prediction, Target

Z_CLIP = 1e-4  # keep logit finite for scores at the floor or at 1


def to_z(p, floor: float):
    q = (np.asarray(p, dtype=float) - floor) / (1.0 - floor)
    return logit(np.clip(q, Z_CLIP, 1 - Z_CLIP))


def from_z(z, floor: float):
    return floor + (1.0 - floor) * expit(z)


def numeric_jacobian(fn: Callable[[np.ndarray], float], theta: np.ndarray) -> np.ndarray:
    theta = np.asarray(theta, dtype=float)
    grad = np.zeros_like(theta)
    for i in range(len(theta)):
        h = 1e-5 * max(1.0, abs(theta[i]))
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        grad[i] = (fn(up) - fn(down)) / (2 * h)
    return grad


@dataclass(frozen=True)
class CurveFit:
    """An immutable fitted law: ``predict`` gives mean and interval, ``summary`` a text report.

    ``mean_fn(theta, target)`` returns the forecast score for a target; ``x_of(target)`` the
    value on the law's own x axis (for plots); ``curve_fn(theta, x)`` the score along that axis.
    """

    law: str
    names: tuple[str, ...]
    theta: np.ndarray
    cov: np.ndarray
    floor: float
    resid_var: float  # residual variance in z space
    dof: int
    mean_fn: Callable[[np.ndarray, Target], float] = field(repr=False)
    x_label: str = "log10 compute (FLOPs)"
    x_of: Callable[[Target], float] | None = field(default=None, repr=False)
    curve_fn: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = field(default=None, repr=False)
    # extra z-space variance as a function of the target (e.g. step-1 loss uncertainty)
    extra_var_fn: Callable[[np.ndarray, Target], float] | None = field(default=None, repr=False)
    extra_var: float = 0.0
    notes: str = ""
    n_points: int = 0
    link: str = "logit"  # "logit": intervals in z space; "identity": in score units
    # guard(theta, target) raises NotPredictable where the law must not be trusted (e.g. outside [0, 1])
    guard: Callable[[np.ndarray, Target], None] | None = field(default=None, repr=False)
    # answers the targets ``guard`` refuses (``auto``: the next law in its ranking)
    fallback: "CurveFit | None" = field(default=None, repr=False)

    def _to_z(self, p):
        return np.asarray(p, dtype=float) if self.link == "identity" else to_z(p, self.floor)

    def _from_z(self, z):
        return np.asarray(z, dtype=float) if self.link == "identity" else from_z(z, self.floor)

    @property
    def params(self) -> dict[str, float]:
        return {name: float(v) for name, v in zip(self.names, self.theta)}

    def link_slope(self, p: float) -> float:
        """d z / d score at ``p``: converts score-unit variance into the link space."""
        if self.link == "identity":
            return 1.0
        q = float(np.clip((p - self.floor) / (1 - self.floor), Z_CLIP, 1 - Z_CLIP))
        return 1.0 / ((1 - self.floor) * q * (1 - q))

    def mean(self, target: Target) -> float:
        return float(self.mean_fn(self.theta, target))

    def z_sd(self, target: Target) -> float:
        def z_of(theta):
            return float(self._to_z(self.mean_fn(theta, target)))

        cov = np.nan_to_num(np.asarray(self.cov, dtype=float), nan=0.0, posinf=0.0)
        grad = numeric_jacobian(z_of, self.theta)
        var = float(grad @ cov @ grad) if cov.size else 0.0
        var = max(var, 0.0) + self.resid_var + self.extra_var
        if self.extra_var_fn is not None:
            var += float(self.extra_var_fn(self.theta, target))
        return float(np.sqrt(var))

    def predict(self, target: Target, level: float = 0.9) -> Prediction:
        if self.guard is not None:
            try:
                self.guard(self.theta, target)
            except NotPredictable as exc:
                if self.fallback is None:
                    raise
                pred = self.fallback.predict(target, level)
                why = f"{self.law} refuses this target ({exc}); {pred.law or self.fallback.law} answers instead"
                return replace(pred, law=pred.law or self.fallback.law, notes=f"{why}. {pred.notes or self.fallback.notes}".strip())
        mean = self.mean(target)
        z = float(self._to_z(mean))
        quantile = stats.t.ppf(0.5 + level / 2, df=max(self.dof, 1))
        half = quantile * self.z_sd(target)
        lower, upper = float(self._from_z(z - half)), float(self._from_z(z + half))
        return Prediction(mean=mean, lower=min(lower, mean), upper=max(upper, mean), level=level)

    def curve(self, x: np.ndarray) -> np.ndarray | None:
        return None if self.curve_fn is None else np.asarray(self.curve_fn(self.theta, np.asarray(x, float)))

    def summary(self) -> str:
        sds = np.sqrt(np.clip(np.diag(np.nan_to_num(self.cov, nan=0.0)), 0, None)) if self.cov.size else []
        lines = [f"law {self.law}: {self.n_points} checkpoints, floor {self.floor:.3f}, residual sd (logit) {np.sqrt(self.resid_var):.3f}"]
        for name, value, sd in zip(self.names, self.theta, sds):
            lines.append(f"  {name:>10} = {value: .5g}  (sd {sd:.3g})")
        if self.notes:
            lines.append(f"  note: {self.notes}")
        return "\n".join(lines)


def residual_var_z(y: np.ndarray, fitted: np.ndarray, floor: float, weight_mask: np.ndarray | None = None, n_params: int = 0) -> float:
    """Residual variance in z space, over the checkpoints nearest the target (``weight_mask``)."""
    r = to_z(y, floor) - to_z(fitted, floor)
    if weight_mask is not None and weight_mask.sum() >= 3:
        r = r[weight_mask]
    dof = max(len(r) - min(n_params, len(r) - 2), 1)
    return float(np.sum(r**2) / dof)


def near_target_mask(x: np.ndarray, share: float = 0.5) -> np.ndarray:
    """The checkpoints in the top ``share`` of the x range: their scatter is what the target sees."""
    cut = np.quantile(x, 1 - share)
    return x >= cut
