"""``auto``: combine the candidate laws per task on evidence from forward-chaining folds inside the
fitting family.

Folds. Sizes sorted by parameters; fold ``j`` (for every size from the third up) fits the sizes
below size ``j`` and forecasts the final checkpoint of each of size ``j``'s runs. Every candidate
is scored on the same folds; a candidate that refuses a fold (not predictable, its fit fails, or
its fold forecast's interval is too wide to mean anything, as a forecast row's would be) is scored
as a failure: that fold's worst answered error. Folds no candidate answers are dropped.
With ``fold_horizon="every-later"`` (measured, not the default: :data:`FOLD_HORIZONS`) each fold
fit also forecasts every larger size, and a candidate's fold error is the mean over all of them.
Candidates come in the registry's order: the built-ins ``sigmoid``, ``ladder``, ``loss-error``,
``logacc-power``, ``saturating-power``, ``ladder-schedule``, then plugins that declare
``auto_candidate = True``.

Combination (the default, ``combine="weighted"``). Every candidate that fits the whole series is
a member of a mixture (:mod:`capcast.laws.mixture`), weighted by the inverse of its mean fold error
(floored at :data:`ERROR_FLOOR`; equal weights without folds). The forecast is the mixture of the
members' predictive distributions. ``weighting`` names the other rules measured against that one
(:data:`WEIGHTINGS`: inverse squared error, equal weights, stacking of the folds' predictive
densities; benchmarks/auto_weighting.py). ``combine="select"`` keeps the earlier rule: the first
candidate, replaced only by one whose mean fold error is lower by more than the paired
differences' standard error; when it refuses a target, the next in the ranking answers.

Intervals. The folds check each member's own variance (its parameters, the scatter a new size
brings, the target's item noise; see :mod:`capcast.laws.curve`): each fold forecast's link-space
error as the normal quantile of its tail probability under its own fold fit's t, squared (1 on
average for an honest fold, whatever its degrees of freedom), pooled with the law's degrees of
freedom (which count as that many observations of ratio 1). The larger of the law's variance and
that ratio times it is used, with the matching t quantile.

No trend. Where the signal test finds nothing to extrapolate, :meth:`AutoLaw.without_trend`
forecasts persistence (:mod:`capcast.laws.flat`), checked on the same folds.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import ndtri, stdtr
from scipy.stats import t as _student

from capcast.laws.base import FIT_REFUSALS, Law, NotPredictable, Series, Target
from capcast.laws.curve import CurveFit
from capcast.laws.mixture import MEMBER_MAX_WIDTH, WIDE_MEMBER_RULES, Member, MixtureFit
from capcast.laws.signal import subset

# auto's combination weights (``AutoLaw.weighting``): the default and the rules it was measured
# against on the development data (benchmarks/auto_weighting.txt; docs/forecasting.md).
WEIGHTINGS = {
    "inverse-error": "weights by inverse mean fold error",
    "inverse-squared-error": "weights by inverse mean squared fold error (Bates and Granger 1969)",
    "inverse-recent-error": "weights by inverse mean fold error, fold j of k counting j times (the latest folds extrapolate most like the target)",
    "equal": "equal weights (the folds check the intervals only)",
    "stacking": "stacking weights (Yao et al. 2018: those maximising the mixture's log predictive density of the fold outcomes)",
}

# Which fold forecasts count as refusals (``AutoLaw.fold_refusals``): the default and the rules it
# was measured against (benchmarks/fold_rules.py; docs/forecasting.md).
FOLD_REFUSAL_RULES = {
    "too-wide": "a fold the fit's guard refuses, or whose 90% interval spans more than MEMBER_MAX_WIDTH of the range",
    "guarded": "only a fold the fit's guard refuses (the rule until stop 30)",
    "point-only": "as too-wide, and a fold forecast with no interval (a fold fit on too few sizes for one)",
}

# How far a fold forecasts (``AutoLaw.fold_horizon``): the default and the rule measured against it
# (benchmarks/fold_horizon.py; docs/forecasting.md).
FOLD_HORIZONS = {
    "next": "each fold forecasts the next size only",
    "every-later": "each fold also forecasts every larger size, so the weights see extrapolations as long as the target's",
}

# The smallest mean fold error a weight is computed from (score units): below half a point the
# folds' own item noise decides, so no candidate takes over on a lucky fold. Chosen on Pythia.
ERROR_FLOOR = 0.005


@dataclass(frozen=True)
class Fold:
    train: Series
    targets: tuple[tuple[Target, float], ...]  # (each held-out run's final checkpoint, its score)
    size: float
    later: tuple[tuple[Target, float], ...] = ()  # the same for every run of every larger size


def _final_checkpoints(series: Series, rows: np.ndarray) -> list[tuple[Target, float]]:
    """(Target, score) of the final checkpoint of each run among ``rows``."""
    runs = series.runs
    out = []
    for run in dict.fromkeys(runs[rows]):
        mine = rows[runs[rows] == run]
        last = mine[np.argmax(series.tokens[mine])]
        out.append((Target(name=str(series.model[last]), params=float(series.params[last]),
                           tokens=float(series.tokens[last]), flops=float(series.flops[last])), float(series.value[last])))
    return out


def forward_chaining_folds(series: Series, first: int = 3, later: bool = False) -> list[Fold]:
    """One fold per size from the ``first``-th up: fit the smaller sizes, forecast this one (and,
    with ``later``, every larger size: ``Fold.later``, for ``fold_horizon="every-later"``)."""
    sizes = np.unique(series.params)
    folds = []
    for j in range(first - 1, len(sizes)):
        train = subset(series, series.params < sizes[j])
        targets = _final_checkpoints(series, np.flatnonzero(series.params == sizes[j]))
        larger = _final_checkpoints(series, np.flatnonzero(series.params > sizes[j])) if later else []
        folds.append(Fold(train=train, targets=tuple(targets), size=float(sizes[j]), later=tuple(larger)))
    return folds


def _fold_forecast(fit, target: Target, refusals: str = "too-wide") -> tuple[float, tuple[float, float] | None]:
    """A fold fit's point forecast at a fold target, and the link-space scale and t degrees of
    freedom it claims there (None where it has no interval: a small fold may give a point only).
    A fold is scored on the forecast a user would get, so NotPredictable is raised where a user
    would get none: a target the fit's guard refuses (loss-error's exponential, unguarded,
    forecast scores of 100 and more), and a forecast whose 90% interval is too wide to mean
    anything (wider than :data:`capcast.laws.mixture.MEMBER_MAX_WIDTH` of the score range, the
    forecast rows' width rule). Such a fold fit has not told the size apart from most other
    scores, so its point is luck: scored as an error, a flat point from a fold fitted on sizes
    at chance (an interval of 0.25-1.0) won a law most of the weight. ``refusals`` names the rule
    (:data:`FOLD_REFUSAL_RULES`)."""
    guard = getattr(fit, "guard", None)
    if guard is not None:
        guard(fit.theta, target)
    if not getattr(fit, "no_interval", "") and hasattr(fit, "predictive"):
        try:
            mean, _, sd, dof = fit.predictive(target)
        except NotPredictable:  # a covariance that is not finite: the point still serves the fold
            pass
        else:
            if sd > 0:
                if refusals != "guarded":
                    pred = fit.predict(target, level=0.9)
                    if float(pred.upper - pred.lower) > MEMBER_MAX_WIDTH:
                        raise NotPredictable(f"the fold forecast's 90% interval spans {pred.upper - pred.lower:.0%} of the range")
                return float(mean), (float(sd), float(dof))
            if refusals != "point-only":
                return float(mean), None
    if refusals == "point-only":
        raise NotPredictable("the fold fit gives a point without an interval")
    mean = getattr(fit, "mean", None)
    return (float(mean(target)) if callable(mean) else float(fit.predict(target).mean)), None


@dataclass(frozen=True)
class AutoLaw:
    candidates: tuple[Law, ...]
    name: str = "auto"
    description: str = "combines the candidate laws per task, weighted by their forward-chaining fold errors; persistence where there is no trend"

    combine: str = "weighted"  # "weighted": the mixture below; "select": one law, the rule above
    # how "weighted" sets the weights: one of WEIGHTINGS (benchmarks/auto_weighting.py compares them)
    weighting: str = "inverse-error"
    # when members too wide to vote keep their votes: one of capcast.laws.mixture.WIDE_MEMBER_RULES
    # (benchmarks/member_width.py compares them)
    wide_members: str = "lone"
    # which fold forecasts are refusals: one of FOLD_REFUSAL_RULES (benchmarks/fold_rules.py compares them)
    fold_refusals: str = "too-wide"
    # how far each fold forecasts: one of FOLD_HORIZONS (benchmarks/fold_horizon.py compares them)
    fold_horizon: str = "next"

    def __post_init__(self) -> None:
        if self.fold_horizon not in FOLD_HORIZONS:
            raise ValueError(f"fold_horizon {self.fold_horizon!r} is not one of {', '.join(FOLD_HORIZONS)}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting {self.weighting!r} is not one of {', '.join(WEIGHTINGS)}")
        if self.fold_refusals not in FOLD_REFUSAL_RULES:
            raise ValueError(f"fold_refusals {self.fold_refusals!r} is not one of {', '.join(FOLD_REFUSAL_RULES)}")
        if self.wide_members not in WIDE_MEMBER_RULES:
            raise ValueError(f"wide_members {self.wide_members!r} is not one of {', '.join(WIDE_MEMBER_RULES)}")

    def with_candidates(self, candidates: tuple[Law, ...]) -> "AutoLaw":
        return replace(self, candidates=tuple(candidates))

    def without_trend(self, series: Series, why: str) -> CurveFit:
        """The forecast where the signal test finds no trend (``why``): persistence (``flat``),
        its interval checked on the same folds as any candidate's."""
        from capcast.laws.flat import FlatLaw
        from capcast.laws.signal import require_score_series, rises_with_compute

        series = require_score_series(series)
        trend = rises_with_compute(series)
        if trend.rising:  # near chance but climbing: when it leaves chance is what no flat line can tell
            raise NotPredictable(f"{why}, but scores rise with compute ({trend.text}): "
                                 "persistence would ignore that trend")
        if not float(series.chance) > 0:  # a pass rate at 0: the floor hides any trend below it
            raise NotPredictable(f"{why}; at a floor of 0 greedy decoding cannot show a trend: measure the pass rates "
                                 "with PassUntil (capcast sample)")
        entry = AutoLaw(candidates=(FlatLaw(),), fold_refusals=self.fold_refusals).evaluate(series)["flat"]
        if "fit" not in entry:
            raise NotPredictable(f"{why}; persistence: {entry['reason']}")
        return self._checked(entry, "flat", series, f"no trend to extrapolate ({why}): {entry['fit'].notes}", None)

    def evaluate(self, series: Series) -> dict[str, dict]:
        """Per candidate: its full fit (or why not) and its error on every fold (None: refused)."""
        folds = forward_chaining_folds(series, later=self.fold_horizon == "every-later")
        report: dict[str, dict] = {}
        for law in self.candidates:
            entry: dict = {"law": law, "folds": folds}
            try:
                entry["fit"] = law.fit(series)
            except NotPredictable as exc:
                entry["reason"] = str(exc)
            errors, later = [], []
            for fold in folds:
                try:
                    fold_fit = law.fit(fold.train)
                    preds = []
                    for t, actual in fold.targets:
                        point, spread = _fold_forecast(fold_fit, t, self.fold_refusals)
                        preds.append((point, actual, spread))
                except FIT_REFUSALS:
                    errors.append(None)
                    later.append(None)
                    continue
                errors.append(preds if all(np.isfinite(p) for p, _, _ in preds) else None)
                later.append(self._later_predictions(fold_fit, fold) if self.fold_horizon == "every-later" else [])
            entry["fold_predictions"] = errors
            # (point, actual) at every larger size ("every-later"; None: refused): the weights only,
            # not the variance check, whose ratios would repeat one fold fit's error many times
            entry["fold_later_predictions"] = later
            report[law.name] = entry
        return report

    def _later_predictions(self, fold_fit, fold: Fold) -> list[tuple[float, float]] | None:
        try:
            preds = [(_fold_forecast(fold_fit, t, self.fold_refusals)[0], actual) for t, actual in fold.later]
        except FIT_REFUSALS:
            return None
        return preds if all(np.isfinite(p) for p, _ in preds) else None

    def fit(self, series: Series) -> CurveFit | MixtureFit:
        report = self.evaluate(series)
        usable = [name for name, e in report.items() if "fit" in e]
        if not usable:
            raise NotPredictable("no candidate law fits: " + "; ".join(f"{name}: {e['reason']}" for name, e in report.items()))
        errors = _fold_errors(report, usable)  # (candidates x folds) in score units, refusals as failures
        if self.combine == "weighted" and len(usable) > 1:
            return self._weighted(report, usable, errors, series)
        default = usable[0]
        if errors.shape[1]:
            means = errors.mean(axis=1)
            best = usable[int(np.argmin(means))]
            why = "fold error " + ", ".join(f"{name} {100 * m:.1f} pts" for name, m in zip(usable, means))
            why += f" over {errors.shape[1]} forward-chaining fold(s)" + _refused_folds(report, usable)
            chosen = default
            if best != default and errors.shape[1] >= 2:
                diff = errors[usable.index(default)] - errors[usable.index(best)]
                se = float(np.std(diff, ddof=1) / np.sqrt(len(diff)))
                if diff.mean() > se:
                    chosen = best
                else:
                    why += f"; {best}'s margin {100 * diff.mean():.1f} pts is within its standard error {100 * se:.1f}: default kept"
            ranking = [chosen] + sorted((n for n in usable if n != chosen), key=lambda n: means[usable.index(n)])
        else:
            ranking = list(usable)
            why = "too few sizes for folds (a fold needs 2 smaller sizes); the default law"
        skipped = [f"{name} skipped ({e['reason']})" for name, e in report.items() if "fit" not in e]
        fallback = None
        # A law may refuse a target its guard distrusts (loss-error outside [0, 1]): the next law
        # in the ranking answers it then (CurveFit.fallback), and the row names that law.
        for rank, name in reversed(list(enumerate(ranking))):
            notes = f"auto {'chose' if rank == 0 else 'fell back to'} {name}: {why}" + ("; " + "; ".join(skipped) if skipped else "")
            fallback = self._checked(report[name], name, series, notes, fallback)
        return fallback

    def _weighted(self, report: dict[str, dict], usable: list[str], errors: np.ndarray, series: Series) -> MixtureFit:
        """Every usable candidate, weighted by the inverse of its mean fold error (equal weights
        without folds); each member's interval checked against its folds as a chosen law's is."""
        if errors.shape[1]:
            means = errors.mean(axis=1)
            weights = _weights(self.weighting, report, usable, errors)
            why = (f"{WEIGHTINGS[self.weighting]} over {errors.shape[1]} forward-chaining fold(s) (mean fold error " +
                   ", ".join(f"{name} {100 * m:.1f} pts" for name, m in zip(usable, means)) + _refused_folds(report, usable) + ")")
        else:
            means, weights = [None] * len(usable), np.ones(len(usable))
            why = "equal weights: too few sizes for folds (a fold needs 2 smaller sizes)"
        weights = weights / weights.sum()
        answered = _answered_counts(report, usable) if errors.shape[1] else {name: None for name in usable}
        members = tuple(Member(name, self._checked(report[name], name, series, "", None), float(w), m, answered[name])
                        for name, w, m in zip(usable, weights, means))
        skipped = [f"{name} skipped ({e['reason']})" for name, e in report.items() if "fit" not in e]
        notes = ("auto weighted " + ", ".join(f"{m.name} {m.weight:.2f}" for m in members) + f": {why}" +
                 ("; " + "; ".join(skipped) if skipped else ""))
        return MixtureFit(law="auto:weighted", members=members, notes=notes, wide_members=self.wide_members)

    @staticmethod
    def _checked(entry: dict, name: str, series: Series, notes: str, fallback: CurveFit | None) -> CurveFit:
        """The candidate's full fit, whose interval is checked against its fold errors."""
        fit: CurveFit = entry["fit"]
        # Each fold forecast's link-space error on the scale its own fit claimed, as the normal
        # quantile of the same tail probability under that fit's t (so that an honest fold averages
        # 1 whatever its degrees of freedom: a t on 1-2 has no finite variance, and raw squared
        # errors over sd^2 read heavy but honest tails as an under-stated variance), squared.
        ratios = []
        for preds in entry["fold_predictions"]:
            for pred, actual, spread in preds or ():
                if spread is not None:
                    sd, dof = spread
                    tail = float(np.clip(stdtr(dof, float(fit._to_z(actual) - fit._to_z(pred)) / sd), 1e-12, 1 - 1e-12))
                    ratios.append(float(ndtri(tail)) ** 2)
        if not ratios or not hasattr(fit, "variance_check_ratio"):
            return replace(fit, law=f"auto:{name}", notes=notes, fallback=fallback)
        # The law's own variance and the folds' measurement estimate one thing: pool them by their
        # degrees of freedom (the law's counts as that many observations of ratio 1).
        own = max(int(getattr(fit, "dof", 1)), 1)
        ratio = (float(np.sum(ratios)) + own) / (len(ratios) + own)
        notes += (f"; folds measured {np.mean(ratios):.2f}x the variance the law claims over {len(ratios)} fold forecast(s), "
                  f"pooled {ratio:.2f}x")
        return replace(fit, law=f"auto:{name}", notes=notes, fallback=fallback, variance_check_ratio=ratio,
                       variance_check_dof=own + len(ratios))


def _answered_folds(report: dict[str, dict], names: list[str]) -> list[int]:
    """The folds at least one of ``names`` answered (the columns of :func:`_fold_errors`)."""
    n_folds = len(next(iter(report.values()))["folds"])
    return [f for f in range(n_folds) if any(report[name]["fold_predictions"][f] is not None for name in names)]


def _answered_counts(report: dict[str, dict], names: list[str]) -> dict[str, int]:
    """Per candidate, the folds of :func:`_answered_folds` it answered."""
    folds = _answered_folds(report, names)
    return {name: sum(report[name]["fold_predictions"][f] is not None for f in folds) for name in names}


def _refused_folds(report: dict[str, dict], names: list[str]) -> str:
    """"; folds refused (...): sigmoid 1 of 3": which candidates' fold errors are the folds' worst
    answered errors, so that a weight read from the notes is not taken for the law's own error."""
    folds = _answered_folds(report, names)
    refused = {name: len(folds) - n for name, n in _answered_counts(report, names).items()}
    parts = [f"{name} {n} of {len(folds)}" for name, n in refused.items() if n]
    if not parts:
        return ""
    return ("; folds refused (not predictable, or an interval too wide to mean anything; each scored as the fold's "
            "worst answered error): " + ", ".join(parts))


def _fold_errors(report: dict[str, dict], names: list[str]) -> np.ndarray:
    """Absolute fold errors, candidates x answered folds; a refusal scores the fold's worst error."""
    columns = []
    for f in _answered_folds(report, names):
        per, nearest = {}, {}
        for name in names:
            preds = report[name]["fold_predictions"][f]
            later = report[name]["fold_later_predictions"][f]
            near = None if preds is None else [abs(p - a) for p, a, _ in preds]
            nearest[name] = None if near is None else float(np.mean(near))
            per[name] = None if near is None or later is None else float(np.mean(near + [abs(p - a) for p, a in later]))
        if all(v is None for v in per.values()):  # every candidate refused the larger sizes: the next size alone
            per = nearest
        worst = max(v for v in per.values() if v is not None)
        columns.append([worst if per[name] is None else per[name] for name in names])
    return np.array(columns, dtype=float).T if columns else np.zeros((len(names), 0))


def _weights(rule: str, report: dict[str, dict], names: list[str], errors: np.ndarray) -> np.ndarray:
    """Unnormalised weights of ``names`` by ``rule`` (see :data:`WEIGHTINGS`); ``errors`` as
    :func:`_fold_errors` gives them."""
    if rule == "inverse-error":
        return 1.0 / np.maximum(errors.mean(axis=1), ERROR_FLOOR)
    if rule == "inverse-recent-error":
        recency = np.arange(1, errors.shape[1] + 1, dtype=float)
        return 1.0 / np.maximum(errors @ recency / recency.sum(), ERROR_FLOOR)
    if rule == "inverse-squared-error":
        return 1.0 / np.maximum(np.mean(errors**2, axis=1), ERROR_FLOOR**2)
    if rule == "equal":
        return np.ones(len(names))
    return _stacking_weights(report, names)


def _stacking_weights(report: dict[str, dict], names: list[str], iterations: int = 500) -> np.ndarray:
    """Stacking of predictive distributions (Yao et al. 2018): the simplex weights maximising
    sum_i log sum_k w_k p_k(y_i) over every fold forecast i, p_k being law k's fold fit's t density
    at the fold's actual score, in the link space of law k's full fit (the logit above chance for
    every built-in candidate, so the link's Jacobian is common to all laws and cancels). A law that
    refused a fold forecast, or gave it no interval, gets that forecast's worst answered density
    (as a refused fold scores the worst error). The objective is concave in w: the EM fixed point
    w_k <- mean_i w_k p_ki / sum_j w_j p_ji reaches its maximum."""
    n_folds = len(next(iter(report.values()))["folds"])
    rows = []
    for f in range(n_folds):
        preds = {name: report[name]["fold_predictions"][f] for name in names}
        n_targets = max((len(p) for p in preds.values() if p is not None), default=0)
        for i in range(n_targets):
            density = np.full(len(names), np.nan)
            for k, name in enumerate(names):
                p = preds[name]
                if p is None or p[i][2] is None:
                    continue
                point, actual, (sd, dof) = p[i]
                fit = report[name]["fit"]
                t = (float(fit._to_z(actual)) - float(fit._to_z(point))) / sd
                density[k] = float(_student.pdf(t, dof)) / sd
            if np.all(np.isnan(density)):
                continue
            density[np.isnan(density)] = np.nanmin(density)
            rows.append(np.maximum(density, 1e-300))
    if not rows:
        return np.ones(len(names))
    density = np.array(rows).T  # laws x fold forecasts
    w = np.full(len(names), 1.0 / len(names))
    for _ in range(iterations):
        share = w[:, None] * density
        w = (share / share.sum(axis=0, keepdims=True)).mean(axis=1)
    return w
