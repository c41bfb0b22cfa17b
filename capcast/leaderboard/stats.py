"""The figures a leaderboard ranks by: MAE with a bootstrap 95% interval over forecasts, the
probability of being best, bias (mean signed error), answered fraction, interval coverage and
median interval width.

Errors are in score points (x100 the metric's units), as ``capcast backtest`` reports them. The
bootstrap resamples *forecast targets* (family, model, task, metric, step) with replacement, the
same draw for every method, so methods are compared on the same resampled targets; a method's MAE
in a draw is over the drawn targets it answered with a number. Fixed seed: the same inputs give the
same site.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ITEM_KEY = ("family", "model", "task", "metric", "step")
DRAWS = 2000
SEED = 0


@dataclass(frozen=True)
class MethodFigures:
    method: str
    family: str | None  # None: over every family
    rows: int
    answered: int
    scored: int  # answered with a known actual
    mae: float | None
    mae_low: float | None
    mae_high: float | None
    p_best: float | None
    coverage: float | None
    median_width: float | None
    max_error: float | None
    bias: float | None = None  # mean signed error (forecast - actual, points): above 0, too high

    @property
    def answered_fraction(self) -> float | None:
        return self.answered / self.rows if self.rows else None


def _key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ITEM_KEY)


def is_scored(row: dict) -> bool:
    return row["status"] == "ok" and row["forecast"] is not None and row["actual"] is not None


def error_points(row: dict) -> float | None:
    return abs(row["forecast"] - row["actual"]) * 100 if is_scored(row) else None


def method_figures(rows: list[dict], family: str | None = None, draws: int = DRAWS, seed: int = SEED) -> list[MethodFigures]:
    """One :class:`MethodFigures` per method in ``rows`` (backtest rows with a ``method``), ranked
    by MAE (methods with no scored forecast last)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    items = list(dict.fromkeys(_key(r) for r in rows))
    index = {k: i for i, k in enumerate(items)}
    errors = np.full((len(items), len(methods)), np.nan)
    for r in rows:
        e = error_points(r)
        if e is not None:
            errors[index[_key(r)], methods.index(r["method"])] = e
    boot = _bootstrap_mae(errors, draws, seed)
    p_best = _probability_best(boot)
    out = []
    for j, method in enumerate(methods):
        mine = [r for r in rows if r["method"] == method]
        ok = [r for r in mine if r["status"] == "ok" and r["forecast"] is not None]
        scored = [r for r in ok if r["actual"] is not None]
        errs = np.array([error_points(r) for r in scored])
        widths = np.array([(r["upper"] - r["lower"]) * 100 for r in ok])
        low, high = (np.nanpercentile(boot[:, j], [2.5, 97.5]) if len(scored) else (None, None))
        out.append(MethodFigures(
            method=method, family=family, rows=len(mine), answered=len(ok), scored=len(scored),
            mae=float(errs.mean()) if len(scored) else None, mae_low=None if low is None else float(low),
            mae_high=None if high is None else float(high), p_best=float(p_best[j]) if len(scored) else None,
            coverage=float(np.mean([r["lower"] <= r["actual"] <= r["upper"] for r in scored])) if scored else None,
            median_width=float(np.median(widths)) if len(widths) else None,
            max_error=float(errs.max()) if len(scored) else None,
            bias=float(np.mean([(r["forecast"] - r["actual"]) * 100 for r in scored])) if scored else None,
        ))
    return sorted(out, key=lambda f: (f.mae is None, f.mae if f.mae is not None else 0.0, f.method))


def _bootstrap_mae(errors: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """(draws, methods) MAE of each method on each resample of the targets (NaN: none answered)."""
    n_items, n_methods = errors.shape
    if n_items == 0:
        return np.full((draws, n_methods), np.nan)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_items, np.full(n_items, 1.0 / n_items), size=draws).astype(float)
    answered = ~np.isnan(errors)
    filled = np.where(answered, errors, 0.0)
    total = counts @ filled
    weight = counts @ answered.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, np.nan)


def _probability_best(boot: np.ndarray) -> np.ndarray:
    """Share of draws in which each method has the lowest MAE (ties shared equally)."""
    draws, n_methods = boot.shape
    if n_methods == 0:
        return np.zeros(0)
    valid = ~np.isnan(boot)
    masked = np.where(valid, boot, np.inf)
    best = masked.min(axis=1, keepdims=True)
    winners = (masked == best) & valid & np.isfinite(best)
    share = winners / np.maximum(winners.sum(axis=1, keepdims=True), 1)
    return share.sum(axis=0) / draws


def per_family(rows: list[dict], draws: int = DRAWS, seed: int = SEED) -> list[MethodFigures]:
    """:func:`method_figures` within each family, families in order of appearance."""
    out = []
    for family in dict.fromkeys(r["family"] for r in rows):
        out += method_figures([r for r in rows if r["family"] == family], family=family, draws=draws, seed=seed)
    return out
