"""``auto``: choose a law per task by leave-largest-out cross-validation inside the fitting family.

Folds: fit on all sizes but the largest, forecast the largest size's last checkpoint; with 4+
sizes also fit on all but the two largest and forecast the second largest. The candidate with the
smallest mean absolute fold error wins (ties go to the earlier candidate). When the winner refuses
a target (a law's guard: ``loss-error`` outside [0, 1]), the next law in that ranking answers it,
and the forecast row names that law and says why.

The folds also calibrate the interval. Each fold's squared error (in score points), divided by
how far that fold extrapolated (decades of compute), estimates how fast forecast variance grows
with distance; times the target's own distance, it is added to the forecast variance (converted to
the logit link at the forecast). Extrapolating further widens the interval, as backtests show it
should; variance growing linearly in distance (not the error itself) keeps a noisy short fold
from exploding the interval of a long extrapolation.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from capcast.laws.base import Law, NotPredictable, Series, Target
from capcast.laws.curve import CurveFit
from capcast.laws.signal import subset


@dataclass(frozen=True)
class Fold:
    train: Series
    target: Target
    actual: float
    distance: float  # decades of compute from the largest training checkpoint to the target


def leave_largest_out_folds(series: Series, max_folds: int = 2) -> list[Fold]:
    sizes = np.unique(series.params)
    folds = []
    for k in range(1, max_folds + 1):
        if len(sizes) - k < 2:  # keep at least two sizes to fit
            break
        held = sizes[-k]
        train = subset(series, series.params < held)
        rows = np.flatnonzero(series.params == held)
        last = rows[np.argmax(series.tokens[rows])]
        target = Target(name=str(series.model[last]), params=float(series.params[last]),
                        tokens=float(series.tokens[last]), flops=float(series.flops[last]))
        distance = float(np.log10(series.flops[last]) - np.log10(np.max(train.flops)))
        folds.append(Fold(train=train, target=target, actual=float(series.value[last]), distance=max(distance, 0.1)))
    return folds


def _distance(fit_series: Series, target: Target) -> float:
    if target.compute is None:
        return 0.0
    return max(float(np.log10(target.compute) - np.log10(np.max(fit_series.flops))), 0.0)


@dataclass(frozen=True)
class AutoLaw:
    candidates: tuple[Law, ...]
    name: str = "auto"
    description: str = "chooses among the built-in laws per task by leave-largest-out cross-validation"

    def evaluate(self, series: Series) -> dict[str, dict]:
        """Per candidate: its full fit (or why not) and its fold errors."""
        folds = leave_largest_out_folds(series)
        report: dict[str, dict] = {}
        for law in self.candidates:
            entry: dict = {"law": law}
            try:
                entry["fit"] = law.fit(series)
            except NotPredictable as exc:
                entry["reason"] = str(exc)
                report[law.name] = entry
                continue
            errors, var_rates = [], []
            for fold in folds:
                try:
                    pred = law.fit(fold.train).predict(fold.target)
                except NotPredictable:
                    continue
                errors.append(abs(pred.mean - fold.actual))
                var_rates.append((pred.mean - fold.actual) ** 2 / fold.distance)
            entry["errors"], entry["var_rates"] = errors, var_rates
            report[law.name] = entry
        return report

    def fit(self, series: Series) -> CurveFit:
        report = self.evaluate(series)
        usable = {name: e for name, e in report.items() if "fit" in e}
        if not usable:
            raise NotPredictable("; ".join(f"{name}: {e['reason']}" for name, e in report.items()))
        scored = {name: e for name, e in usable.items() if e["errors"]}
        if scored:
            # best fold error first (ties: the earlier candidate); laws without folds after them
            ranking = sorted(scored, key=lambda name: np.mean(scored[name]["errors"]))
            ranking += [name for name in usable if name not in scored]
            why = "leave-largest-out error " + ", ".join(
                f"{name} {100 * np.mean(e['errors']):.1f} pts" for name, e in scored.items()
            )
        else:
            ranking = list(usable)
            why = "too few sizes for cross-validation; first law that fits"
        skipped = [f"{name} skipped ({e['reason']})" for name, e in report.items() if "fit" not in e]
        fallback = None
        # A law may refuse a target its guard distrusts (loss-error outside [0, 1]): the next law
        # in the ranking answers it then (CurveFit.fallback), and the row names that law.
        for rank, name in reversed(list(enumerate(ranking))):
            notes = f"auto {'chose' if rank == 0 else 'fell back to'} {name}: {why}" + ("; " + "; ".join(skipped) if skipped else "")
            fallback = self._calibrated(usable[name], name, series, notes, fallback)
        return fallback

    @staticmethod
    def _calibrated(entry: dict, name: str, series: Series, notes: str, fallback: CurveFit | None) -> CurveFit:
        """The candidate's full fit with the interval its folds measured (see the module docstring)."""
        fit: CurveFit = entry["fit"]
        rates = entry.get("var_rates") or []
        var_rate = float(np.mean(rates)) if rates else 0.0
        base_extra = fit.extra_var_fn

        def extra_var(theta, target: Target) -> float:
            score_var = var_rate * _distance(series, target)
            # score units -> logit link, through the link's slope at the forecast
            slope = fit.link_slope(fit.mean_fn(theta, target))
            return score_var * slope**2 + (base_extra(theta, target) if base_extra else 0.0)

        return replace(fit, law=f"auto:{name}", extra_var_fn=extra_var, notes=notes, fallback=fallback)
