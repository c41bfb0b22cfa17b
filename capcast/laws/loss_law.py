"""Step 1 of the two-step laws: (params N, tokens D) -> a loss, and how to find a loss in a series.

    L(N, D) = E + A * N^-alpha + B * D^-beta        (Chinchilla form, Bhagia et al. Eq. 1)
    L(C)    = E + A * C^-alpha                      (when N and D do not vary independently)

fitted with scipy ``least_squares`` on log L with a Huber loss (Bhagia: delta 1e-3 on log loss
is their choice; we use a larger delta because public tables carry noisier losses), from a small
grid of starting points. The covariance is cluster-robust by size (:func:`size_robust_cov`) and
the residual variance a new size brings is measured on size means, so a family's many
checkpoints count as its few sizes' evidence.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.optimize import least_squares

from capcast.laws.base import NotPredictable, Series

# Metric names that are losses (lower is better), and how to turn them into nats-like losses.
LOSS_TRANSFORMS = {
    "bpb_gold": lambda v: v,
    "loss": lambda v: v,
    "nll": lambda v: v,
    "bpb": lambda v: v,
    "ppl": np.log,
    "logprob_gold": lambda v: -v,
}
N_SCALE, D_SCALE, C_SCALE = 1e9, 1e11, 1e21  # keep the fitted constants near 1


# Multi-start in two stages: every start takes COARSE_EVALUATIONS evaluations, then the POLISHED
# lowest of them run to convergence. On 175 step-1 fits (simulated two-step families and their
# folds, Pythia, the mini-ladder: benchmarks/fit_starts.txt) this reached the cost of running every
# start to convergence in every fit, 2.7x faster; only exactly determined fits (as many points as
# parameters, cost 0) land elsewhere on their manifold of perfect fits.
COARSE_EVALUATIONS = 10
POLISHED = 2


def best_huber_fit(residuals, starts, lower, upper, jac="2-point", coarse_evaluations: int | None = COARSE_EVALUATIONS):
    """scipy ``least_squares`` with a Huber loss (scale 0.02 on log loss) from every start inside
    the bounds, the lowest cost kept: each start runs ``coarse_evaluations`` evaluations, the
    :data:`POLISHED` lowest of those run to convergence (``coarse_evaluations=None``: every start
    runs to convergence, the one-stage fit that benchmarks/fit_starts.py and the tests compare
    against). ``jac``: the residuals' Jacobian (a callable), or scipy's finite differences."""

    def solve(start, max_nfev=None):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return least_squares(residuals, start, jac=jac, bounds=(lower, upper), loss="huber", f_scale=0.02,
                                 max_nfev=max_nfev)

    inside = [np.clip(start, np.array(lower) + 1e-9, np.array(upper) - 1e-9) for start in starts]
    coarse = sorted((solve(start, coarse_evaluations) for start in inside), key=lambda res: res.cost)
    if coarse_evaluations is None:
        return coarse[0]
    # a coarse run that converged is final; the others continue from where they stopped
    polished = [res if res.status > 0 else solve(res.x) for res in coarse[:POLISHED]]
    return min(polished, key=lambda res: res.cost)


def loss_candidates(series: Series) -> dict[str, np.ndarray]:
    """Every loss the series carries in ``extra``: same-task metrics and ``val/*:loss`` columns."""
    out = {}
    for key, values in series.extra.items():
        metric = key.split(":")[-1]
        if metric in LOSS_TRANSFORMS:
            with np.errstate(all="ignore"):
                out[key] = np.asarray(LOSS_TRANSFORMS[metric](np.asarray(values, dtype=float)), dtype=float)
    return out


def pick_loss(series: Series, prefer: tuple[str, ...], name: str | None = None) -> tuple[str, np.ndarray]:
    """The loss to use: ``name`` if given, else the first of ``prefer`` present, else any loss.

    ``prefer`` entries match a key exactly or, with a trailing ``*``, by prefix.
    """
    losses = loss_candidates(series)
    if name is not None:
        if name not in losses:
            raise NotPredictable(f"loss {name!r} is not in the table (available: {', '.join(sorted(losses)) or 'none'})")
        return name, losses[name]
    for want in prefer:
        for key in sorted(losses):
            if (want.endswith("*") and key.startswith(want[:-1])) or key == want:
                if np.isfinite(losses[key]).sum() >= 3:
                    return key, losses[key]
    raise NotPredictable("no loss metric in the table (add bpb_gold, ppl or a val/*:loss) for a two-step law")


@dataclass(frozen=True)
class LossFit:
    """A fitted loss law. ``theta`` = (E, log A, alpha[, log B, beta])."""

    theta: np.ndarray
    cov: np.ndarray
    joint: bool  # True: L(N, D); False: L(C)
    resid_var: float
    names: tuple[str, ...]
    dof: int = 1  # the sizes less the 3 parameters that act between sizes: what resid_var is measured on

    @property
    def form(self) -> str:
        return "L(N, D)" if self.joint else "L(C)"

    def loss(self, theta: np.ndarray, params: float, tokens: float, flops: float) -> float:
        return float(loss_curve(theta, np.atleast_1d(params), np.atleast_1d(tokens), np.atleast_1d(flops), self.joint)[0])


def loss_curve(theta, params, tokens, flops, joint: bool) -> np.ndarray:
    if joint:
        e, log_a, alpha, log_b, beta = theta
        return e + np.exp(log_a) * (params / N_SCALE) ** -alpha + np.exp(log_b) * (tokens / D_SCALE) ** -beta
    e, log_a, alpha = theta
    return e + np.exp(log_a) * (flops / C_SCALE) ** -alpha


def log_loss_residuals(curve, curve_jacobian, log_loss: np.ndarray):
    """The residuals on log loss of a loss law ``curve(theta)`` and their Jacobian, from the curve's
    own (``curve_jacobian(theta)``: d curve / d theta): d log curve = d curve / curve, 0 where the
    curve is clipped at 1e-9 to keep its log finite."""

    def residuals(theta):
        with np.errstate(all="ignore"):
            return np.log(np.clip(curve(theta), 1e-9, None)) - log_loss

    def jacobian(theta):
        with np.errstate(all="ignore"):
            pred = curve(theta)
            jac = curve_jacobian(theta) / np.clip(pred, 1e-9, None)[:, None]
        jac[~(pred >= 1e-9)] = 0.0
        return jac

    return residuals, jacobian


def loss_curve_jacobian(theta, params, tokens, flops, joint: bool) -> np.ndarray:
    """d loss_curve / d theta, one row per point (analytic: scipy's finite differences were half of
    a two-step law's fit time)."""
    if joint:
        _, log_a, alpha, log_b, beta = theta
        log_n, log_d = np.log(params / N_SCALE), np.log(tokens / D_SCALE)
        by_n, by_d = np.exp(log_a - alpha * log_n), np.exp(log_b - beta * log_d)
        return np.column_stack([np.ones_like(by_n), by_n, -by_n * log_n, by_d, -by_d * log_d])
    _, log_a, alpha = theta
    log_c = np.log(flops / C_SCALE)
    by_c = np.exp(log_a - alpha * log_c)
    return np.column_stack([np.ones_like(by_c), by_c, -by_c * log_c])


def independent_n_and_d(params: np.ndarray, tokens: np.ndarray) -> bool:
    """Whether the checkpoints vary N and D independently enough to fit them separately."""
    if len(np.unique(params)) < 2 or len(np.unique(tokens)) < 3 or len(params) < 7:
        return False
    r = np.corrcoef(np.log(params), np.log(tokens))[0, 1]
    return bool(abs(r) < 0.97)


RECENT_FITS = 8  # step-1 fits kept, by their inputs


def fit_loss_law(params: np.ndarray, tokens: np.ndarray, flops: np.ndarray, loss: np.ndarray) -> LossFit:
    """Step 1's fit. ``ladder`` and ``loss-error`` fit it on the same checkpoints and loss when they
    pick the same loss (``auto`` fits both on every fold): the same inputs return the same fit
    (nothing mutates a :class:`LossFit`), fitted once."""
    return _fit_loss_law_cached(*(np.ascontiguousarray(a, dtype=float).tobytes() for a in (params, tokens, flops, loss)))


@lru_cache(maxsize=RECENT_FITS)
def _fit_loss_law_cached(*columns: bytes) -> LossFit:
    return _fit_loss_law(*(np.frombuffer(c, dtype=float).copy() for c in columns))


def _fit_loss_law(params: np.ndarray, tokens: np.ndarray, flops: np.ndarray, loss: np.ndarray) -> LossFit:
    ok = np.isfinite(loss) & (loss > 0) & (flops > 0) & (tokens > 0)
    params, tokens, flops, loss = params[ok], tokens[ok], flops[ok], loss[ok]
    if len(loss) < 4:
        raise NotPredictable("fewer than 4 checkpoints with a loss to fit step 1 (compute -> loss)")
    joint = independent_n_and_d(params, tokens)
    log_loss = np.log(loss)
    e_max = float(np.min(loss)) * 0.999

    residuals, jacobian = log_loss_residuals(lambda theta: loss_curve(theta, params, tokens, flops, joint),
                                             lambda theta: loss_curve_jacobian(theta, params, tokens, flops, joint), log_loss)

    if joint:
        lower, upper = [0, -20, 0, -20, 0], [e_max, 20, 3, 20, 3]
        starts = [[e * e_max, np.log(0.5), a, np.log(0.5), b] for e in (0.0, 0.5, 0.9) for a in (0.1, 0.4) for b in (0.1, 0.4)]
    else:
        lower, upper = [0, -20, 0], [e_max, 20, 3]
        starts = [[e * e_max, np.log(0.5), a] for e in (0.0, 0.5, 0.9) for a in (0.05, 0.15, 0.4)]
    best = best_huber_fit(residuals, starts, lower, upper, jacobian)
    theta = best.x
    resid = residuals(theta)
    cov = size_robust_cov(best.jac, resid, params)
    # the target's own deviation from the curve (loss units): the variance of a size's mean
    # deviation, over the sizes less the parameters that act between sizes (E, A, alpha; the
    # tokens term of L(N, D) is fixed within runs too)
    fitted = loss_curve(theta, params, tokens, flops, joint)
    sizes = np.unique(params)
    size_means = np.array([(loss - fitted)[params == n].mean() for n in sizes])
    dof = max(len(sizes) - 3, 1)
    resid_var = float(np.sum(size_means**2) / dof)
    names = ("E", "log_A", "alpha", "log_B", "beta") if joint else ("E", "log_A", "alpha")
    if not np.all(np.isfinite(cov)):
        raise NotPredictable("step 1's loss-law parameters are not identified by the data (covariance not finite)")
    return LossFit(theta=theta, cov=cov, joint=joint, resid_var=resid_var, names=names, dof=dof)


def size_robust_cov(jac: np.ndarray, resid: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Cluster-robust (by size) covariance of a least-squares fit, with the CR1 small-sample factor
    G/(G-1) (n-1)/(n-k): checkpoints of one size share that size's deviation from the law, so they
    count as one size's evidence, not as independent points."""
    n, k = jac.shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bread = np.linalg.pinv(jac.T @ jac)
    sizes = np.unique(params)
    meat = np.zeros((k, k))
    for size in sizes:
        g = jac[params == size].T @ resid[params == size]
        meat += np.outer(g, g)
    factor = len(sizes) / max(len(sizes) - 1, 1) * (n - 1) / max(n - k, 1)
    return factor * bread @ meat @ bread
