"""The PassUntil task scaling law (Hu et al. 2023): PU(N) = exp(-c * N^(-alpha)).

Equivalently F = log(-log PU) is linear in log N (or log C). The law is fitted by ordinary least
squares in F space, per task (:class:`PassUntilLaw`, the shared law interface) or per instance
(:func:`fit_instances`: one slope shared by all instances, one intercept each, the task forecast
being the mean of the per-instance forecasts). :func:`acceleration_test` fits a quadratic in F
and reads its curvature the way Hu et al. (Sec. 6, Definition 1) define emergence:

* linear F: "scaling-law growth";
* convex F (curvature > 0): "sub-scaling growth";
* concave F (curvature < 0): "super-scaling growth", i.e. accelerated emergence.

Points with PU = 0 (nothing ever passed) or PU = 1 carry no value of F and are left out; the fit
says how many were dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import statsmodels.api as sm
from scipy import stats

from capcast.laws.base import NotPredictable, Prediction, Series, Target
from capcast.schema import default_flops

AXES = ("params", "compute")
MIN_POINTS = 3


def to_f(pass_rate) -> np.ndarray:
    """F = log(-log PU); NaN outside (0, 1)."""
    p = np.asarray(pass_rate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((p > 0) & (p < 1), np.log(-np.log(p)), np.nan)


def from_f(f) -> np.ndarray:
    return np.exp(-np.exp(np.asarray(f, dtype=float)))


def _axis_values(series: Series, axis: str) -> np.ndarray:
    if axis == "params":
        return np.log(np.asarray(series.params, dtype=float))
    compute = np.where(np.isfinite(np.asarray(series.flops, dtype=float)), series.flops, default_flops(series.params, series.tokens))
    return np.log(np.asarray(compute, dtype=float))


def _target_x(target: Target, axis: str) -> float:
    value = target.params if axis == "params" else target.compute
    if value is None:
        need = "params" if axis == "params" else "flops, or params and tokens"
        raise NotPredictable(f"the target has no {need}; the PassUntil law on {axis} needs it")
    return float(np.log(value))


@dataclass(frozen=True)
class PassUntilFit:
    """F = intercept - alpha * x with x = ln N (or ln C); PU = exp(-exp(F))."""

    law: str
    axis: str
    params: dict[str, float]
    cov: np.ndarray
    resid_var: float
    dof: int
    x_mean: float
    n_points: int
    n_dropped: int = 0
    notes: str = ""

    def f_at(self, x: float) -> float:
        return self.params["intercept"] - self.params["alpha"] * x

    def predict(self, target: Target, level: float = 0.9) -> Prediction:
        x = _target_x(target, self.axis)
        f = self.f_at(x)
        design = np.array([1.0, -x])
        var = float(design @ self.cov @ design) + self.resid_var  # new observation, not just the line
        half = stats.t.ppf(0.5 + level / 2, df=max(self.dof, 1)) * np.sqrt(max(var, 0.0))
        mean = float(from_f(f))
        # PU falls as F rises, so the upper end of F gives the lower end of PU.
        return Prediction(mean=mean, lower=float(from_f(f + half)), upper=float(from_f(f - half)), level=level)

    def curve(self, x_log: np.ndarray) -> np.ndarray:
        return from_f(self.params["intercept"] - self.params["alpha"] * np.asarray(x_log, dtype=float))

    def summary(self) -> str:
        sd = np.sqrt(np.clip(np.diag(self.cov), 0, None))
        lines = [
            f"law {self.law}: log(-log PU) = intercept - alpha * ln {'N' if self.axis == 'params' else 'C'}; "
            f"{self.n_points} points ({self.n_dropped} dropped at PU = 0 or 1), residual sd {np.sqrt(self.resid_var):.3f}",
            f"  intercept = {self.params['intercept']:.5g} (sd {sd[0]:.3g})",
            f"  alpha     = {self.params['alpha']:.5g} (sd {sd[1]:.3g})",
        ]
        if self.notes:
            lines.append(f"  note: {self.notes}")
        return "\n".join(lines)


def fit_f_line(x: np.ndarray, pass_rate: np.ndarray, law: str = "passuntil", axis: str = "params") -> PassUntilFit:
    """OLS of F = log(-log PU) on x, dropping points where F is undefined."""
    x = np.asarray(x, dtype=float)
    f = to_f(pass_rate)
    keep = np.isfinite(f) & np.isfinite(x)
    dropped = int(len(f) - keep.sum())
    if keep.sum() < MIN_POINTS:
        raise NotPredictable(
            f"only {int(keep.sum())} checkpoints have a pass rate strictly between 0 and 1 (need {MIN_POINTS}); "
            "sample more (capcast sample) so small models' rare successes are measured"
        )
    if np.ptp(x[keep]) == 0:
        raise NotPredictable("all usable checkpoints share one size; the law needs several sizes")
    design = np.column_stack([np.ones(keep.sum()), -x[keep]])
    res = sm.OLS(f[keep], design).fit()
    dof = int(res.df_resid)
    resid_var = float(res.scale) if dof > 0 else 0.0
    notes = ""
    if res.params[1] <= 0:
        notes = "alpha <= 0: the pass rate does not rise with scale across these checkpoints"
    return PassUntilFit(
        law=law,
        axis=axis,
        params={"intercept": float(res.params[0]), "alpha": float(res.params[1])},
        cov=np.asarray(res.cov_params(), dtype=float) if dof > 0 else np.zeros((2, 2)),
        resid_var=resid_var,
        dof=dof,
        x_mean=float(x[keep].mean()),
        n_points=int(keep.sum()),
        n_dropped=dropped,
        notes=notes,
    )


@dataclass
class PassUntilLaw:
    """Task-level PassUntil law on the shared interface; ``axis`` is ``params`` (Hu et al.) or ``compute``."""

    axis: str = "params"
    name: str = "passuntil"
    description: str = "Hu et al. 2023: log(-log pass rate) linear in log N; for pass rates measured by PassUntil"

    def __post_init__(self) -> None:
        if self.axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}")

    def fit(self, series: Series) -> PassUntilFit:
        if self.axis == "params" and len(np.unique(series.runs)) < len(series):
            # On the params axis only each run's final checkpoint belongs (Hu et al. fit final
            # models); intermediate checkpoints of one size would pile up at one x.
            from capcast.laws.signal import final_checkpoints, subset

            series = subset(series, final_checkpoints(series))
        return fit_f_line(_axis_values(series, self.axis), np.asarray(series.value, dtype=float), self.name, self.axis)


# --- emergence: the acceleration test -----------------------------------------------------


@dataclass(frozen=True)
class AccelerationTest:
    """Curvature of F = log(-log PU) against ln N, read as Hu et al.'s Definition 1."""

    curvature: float  # coefficient of x^2 in F = a + b x + c x^2
    se: float
    p_value: float
    verdict: str  # "scaling-law growth", "sub-scaling growth", "super-scaling growth (accelerated emergence)", or "undetermined"
    n_points: int
    alpha: float = 0.1
    n_held_out: int = 0  # points given but not fitting points (left out of the test)

    def summary(self) -> str:
        held = f"; {self.n_held_out} held-out points left out" if self.n_held_out else ""
        return (
            f"acceleration test on the fitting points: curvature {self.curvature:+.4g} (se {self.se:.3g}, p = {self.p_value:.3g}, "
            f"{self.n_points} points{held}): {self.verdict}"
        )


def acceleration_test(
    x: np.ndarray, pass_rate: np.ndarray, alpha: float = 0.1, *, fitting: np.ndarray | None = None
) -> AccelerationTest:
    """Two-sided t-test of the quadratic term of F on x; significant at ``alpha`` names the shape.

    The test belongs to a forecast: it may see only the points the forecast is fitted on, never the
    target or anything held out with it (a checkpoint past an emergence makes any curve look
    concave in hindsight). Pass ``fitting`` (a boolean mask over the points) to drop the rest; they
    are counted in ``n_held_out``. Without it every point given is taken as a fitting point, so
    give only those.
    """
    x = np.asarray(x, dtype=float)
    f = to_f(pass_rate)
    if fitting is None:
        use = np.ones(len(x), dtype=bool)
    else:
        use = np.asarray(fitting, dtype=bool)
        if use.shape != x.shape:
            raise ValueError(f"fitting has {use.shape[0] if use.ndim else 0} entries for {len(x)} points")
    held_out = int((~use).sum())
    keep = use & np.isfinite(f) & np.isfinite(x)
    n = int(keep.sum())
    if n < 4:
        return AccelerationTest(np.nan, np.nan, np.nan, "undetermined (needs 4 fitting points with 0 < PU < 1)", n, alpha, held_out)
    xc = x[keep] - x[keep].mean()  # centring keeps the quadratic design well conditioned
    design = np.column_stack([np.ones(n), xc, xc**2])
    res = sm.OLS(f[keep], design).fit()
    c, se, p = float(res.params[2]), float(res.bse[2]), float(res.pvalues[2])
    if not np.isfinite(p) or p >= alpha:
        verdict = "scaling-law growth (no significant curvature)"
    elif c > 0:
        verdict = "sub-scaling growth (convex)"
    else:
        verdict = "super-scaling growth (concave): accelerated emergence"
    return AccelerationTest(c, se, p, verdict, n, alpha, held_out)


# --- instance level -----------------------------------------------------------------------


@dataclass(frozen=True)
class InstanceFit:
    """Per-instance PassUntil laws with one shared slope; task forecast = mean over instances."""

    axis: str
    alpha: float
    intercepts: dict[object, float]  # doc_id -> intercept, for instances with any usable point
    n_instances: int  # all instances, including those never solved (forecast 0 for them)
    model_sd: float  # scatter of whole checkpoints around the fit (shared by every instance)
    level_x: np.ndarray = field(repr=False)  # the distinct x values of the fitting checkpoints
    boot_alpha: np.ndarray = field(repr=False)
    boot_intercepts: np.ndarray = field(repr=False)  # (boot, instances) aligned with `intercepts`
    boot_weights: np.ndarray = field(repr=False)  # how often each instance was drawn in a replicate
    law: str = "passuntil_instance"

    @property
    def params(self) -> dict[str, float]:
        return {"alpha": self.alpha, "instances_fitted": float(len(self.intercepts)), "model_sd": self.model_sd}

    @property
    def cov(self) -> np.ndarray:
        return np.array([[float(np.var(self.boot_alpha))]])

    def _mean_pu(self, alpha, intercepts, x: float, shift: float = 0.0, weights=None) -> float:
        # Instances never solved contribute 0 (their rate is below what was measured).
        pu = from_f(np.asarray(intercepts) - alpha * x + shift)
        w = np.ones_like(pu) if weights is None else np.asarray(weights)
        return float(np.sum(w * pu) / self.n_instances)

    def predict(self, target: Target, level: float = 0.9, seed: int = 0) -> Prediction:
        x = _target_x(target, self.axis)
        mean = self._mean_pu(self.alpha, list(self.intercepts.values()), x)
        rng = np.random.default_rng(seed)
        # A whole checkpoint sits off the line by a shared shift; extrapolating that scatter
        # widens with distance like an OLS prediction interval over the checkpoint sizes.
        lx = self.level_x
        spread = np.sum((lx - lx.mean()) ** 2)
        sd = self.model_sd * np.sqrt(1 + 1 / len(lx) + ((x - lx.mean()) ** 2 / spread if spread > 0 else 0.0))
        shifts = sd * rng.standard_t(max(len(lx) - 2, 1), size=len(self.boot_alpha))
        sims = [
            self._mean_pu(a, row, x, s, w)
            for a, row, s, w in zip(self.boot_alpha, self.boot_intercepts, shifts, self.boot_weights)
        ]
        lo, hi = np.quantile(sims, [(1 - level) / 2, (1 + level) / 2])
        return Prediction(mean=mean, lower=float(min(lo, mean)), upper=float(max(hi, mean)), level=level)

    def summary(self) -> str:
        return (
            f"law {self.law}: shared alpha = {self.alpha:.4g} (bootstrap sd {np.std(self.boot_alpha):.3g}); "
            f"{len(self.intercepts)} of {self.n_instances} instances have a usable point; checkpoint scatter sd {self.model_sd:.3f}"
        )


def fit_instances(
    x: np.ndarray, doc_id: np.ndarray, pass_rate: np.ndarray, axis: str = "params", n_boot: int = 300, seed: int = 0
) -> InstanceFit:
    """Fit F_s = a_s - alpha * x over (checkpoint, instance) points, one row per pair.

    The shared slope comes from the within-instance regression (fixed effects), which stays
    stable when most instances have only two or three non-zero points. Intervals bootstrap the
    instances and add the scatter of whole checkpoints around the fit.
    """
    x, doc_id, f = np.asarray(x, float), np.asarray(doc_id), to_f(pass_rate)
    all_docs = np.unique(doc_id)
    keep = np.isfinite(f)
    if np.unique(x[keep]).size < 2 or keep.sum() < MIN_POINTS:
        raise NotPredictable("too few (checkpoint, instance) pass rates strictly between 0 and 1 to fit instance laws")
    docs, inverse = np.unique(doc_id[keep], return_inverse=True)
    xk, fk = x[keep], f[keep]

    def solve(weights: np.ndarray) -> tuple[float, np.ndarray]:
        w = weights[inverse]
        sw = np.bincount(inverse, weights=w, minlength=len(docs))
        ok = sw > 0
        x_bar = np.bincount(inverse, weights=w * xk, minlength=len(docs)) / np.where(ok, sw, 1)
        f_bar = np.bincount(inverse, weights=w * fk, minlength=len(docs)) / np.where(ok, sw, 1)
        dx, df = xk - x_bar[inverse], fk - f_bar[inverse]
        denom = np.sum(w * dx * dx)
        alpha = -np.sum(w * dx * df) / denom if denom > 0 else 0.0
        return float(alpha), f_bar + alpha * x_bar

    alpha, intercepts = solve(np.ones(len(docs)))
    resid = fk - (intercepts[inverse] - alpha * xk)
    # Scatter of whole checkpoints: the mean residual per checkpoint size, over instances.
    levels, level_idx = np.unique(xk, return_inverse=True)
    per_level = np.bincount(level_idx, weights=resid) / np.bincount(level_idx)
    model_sd = float(np.sqrt(np.sum(per_level**2) / max(len(levels) - 2, 1)))
    rng = np.random.default_rng(seed)
    boot_alpha, boot_icpt, boot_weights = np.empty(n_boot), np.empty((n_boot, len(docs))), np.empty((n_boot, len(docs)))
    for b in range(n_boot):
        counts = np.bincount(rng.integers(0, len(all_docs), len(all_docs)), minlength=len(all_docs)).astype(float)
        weights = counts[np.searchsorted(all_docs, docs)]
        a_b, i_b = solve(weights)
        boot_alpha[b] = a_b
        # resampled instances: each fitted instance appears `weights` times (unsolved ones add zeros)
        boot_icpt[b] = i_b
        boot_weights[b] = weights
    return InstanceFit(
        axis=axis,
        alpha=alpha,
        intercepts=dict(zip(docs.tolist(), intercepts.tolist())),
        n_instances=len(all_docs),
        model_sd=model_sd,
        level_x=levels,
        boot_alpha=boot_alpha,
        boot_intercepts=boot_icpt,
        boot_weights=boot_weights,
    )
