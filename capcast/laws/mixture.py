"""A weighted combination of fitted laws: ``auto``'s forecast when it combines its candidates.

The forecast is the weighted mixture of the members' own predictive distributions: the point is
the mixture's median (each member's point is its own median) and the interval the mixture's
quantiles, so members that disagree widen it (their spread is uncertainty a single law's interval
cannot show) and a member's own interval (already checked against the folds by ``auto``) is kept
as it was. Members too wide to mean anything at a target do not vote there, unless only one other
member is left and they disagree with it (:data:`MEMBER_MAX_WIDTH`).

A member that does not answer a target (its guard refuses it, or it gives no interval) drops out
of that target's mixture and the other weights are renormalised; the forecast's notes say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import brentq
from scipy.special import expit, logit, stdtr, stdtrit

from capcast.laws.base import NotPredictable, Prediction, Target
from capcast.laws.curve import to_item_resolution

NORMAL_90 = float(stats.norm.ppf(0.95))
# A member whose own 90% interval spans more than this share of the score range [0, 1] says nothing
# at that target (a forecast row would call it "too wide to mean anything": the same 50% as
# ``capcast.forecasting.forecast.MAX_RELATIVE_WIDTH``, tested equal): it does not vote there, or
# its tails (a t on 1-2 degrees of freedom) would stretch the whole mixture. Chosen on the
# mini-ladder (development), where such members turned the demo's covering forecasts into refusals.
# Unless a single narrow member is left and the wide members' mixture has its median outside its
# 90% interval: dropping them there made one law look sure of a forecast 84 points off (the
# mini-ladder's emergent ref_add2 at size l). Where two or more narrow members remain they check each
# other: a disagreement test there turned the demo's covering ref_facts forecast (its smooth task)
# into a refusal, for one weakly identified member just outside the others' interval.
MEMBER_MAX_WIDTH = 0.5  # auto's folds use it too: a fold forecast this wide is a refusal (capcast.laws.auto._fold_forecast)
# When the members too wide to vote keep their votes (``MixtureFit.wide_members``): "lone" (the
# default, the rule above), and the variants measured against it in benchmarks/member_width.py:
# "disagree" (wherever the wide members' median lies outside the narrow members' 90% interval,
# however many narrow members are left) and "always" (no member-width rule).
WIDE_MEMBER_RULES = ("lone", "disagree", "always")


@dataclass(frozen=True)
class Member:
    """One law's share of the mixture: its fit, weight, and the fold error behind the weight."""

    name: str
    fit: object
    weight: float
    fold_error: float | None = None  # mean absolute fold error (score units); None without folds
    folds_answered: int | None = None  # the folds it answered (the rest scored as refusals); None without folds


class _Distribution:
    """One member's forecast at one target as a distribution over scores (CDF and quantiles)."""

    def __init__(self, fit, target: Target):
        predictive = getattr(fit, "predictive", None)
        if callable(predictive):  # a CurveFit: t in its link space
            refusal = fit.refusal(target)
            if refusal is not None:
                raise refusal
            self.mean, self.z, self.sd, self.dof = predictive(target)
            self.floor = float(fit.floor) if fit.link != "identity" else None
        else:  # any other LawFit: normal in score units, sd from its 90% interval
            pred = fit.predict(target, level=0.9)
            self.mean, self.z = float(pred.mean), float(pred.mean)
            self.sd, self.dof = max(float(pred.upper - pred.lower) / (2 * NORMAL_90), 1e-12), 10**6
            self.floor = None

    # The link without CurveFit's clip (kept finite there for fitting): the CDF and the quantile
    # must be exact inverses, or the mixture's quantile is not bracketed by its members'.
    def _to_z(self, y: float) -> float:
        if self.floor is None:
            return float(y)
        q = (y - self.floor) / (1 - self.floor)
        return -np.inf if q <= 0 else np.inf if q >= 1 else float(logit(q))

    def _from_z(self, z: float) -> float:
        return float(z) if self.floor is None else float(self.floor + (1 - self.floor) * expit(z))

    def cdf(self, y: float) -> float:
        # scipy.special's Student t (what stats.t calls, without its 50 us of argument checks per call)
        return float(stdtr(self.dof, (self._to_z(y) - self.z) / max(self.sd, 1e-12)))

    def quantile(self, p: float) -> float:
        return self._from_z(self.z + self.sd * stdtrit(self.dof, p))


@dataclass(frozen=True)
class MixtureFit:
    """``auto``'s combined fit: ``members`` with weights summing to 1 (see module docstring)."""

    law: str
    members: tuple[Member, ...]
    notes: str = ""
    wide_members: str = "lone"  # one of WIDE_MEMBER_RULES

    def __post_init__(self) -> None:
        if self.wide_members not in WIDE_MEMBER_RULES:
            raise ValueError(f"wide_members {self.wide_members!r} is not one of {', '.join(WIDE_MEMBER_RULES)}")

    @property
    def params(self) -> dict[str, float]:
        return {f"weight:{m.name}": float(m.weight) for m in self.members}

    @property
    def cov(self) -> np.ndarray:
        """The weights are computed from the folds, not estimated by a likelihood: no sampling
        covariance is claimed for them (zeros); each member's ``fit.cov`` has its own."""
        return np.zeros((len(self.members), len(self.members)))

    @property
    def _unchecked(self) -> set[str]:
        """The members that answered none of their folds (there were folds)."""
        return {m.name for m in self.members if m.folds_answered == 0}

    def _answering(self, target: Target) -> tuple[list[tuple[float, _Distribution]], list[str]]:
        parts, dropped, wide = [], [], []
        for m in self.members:
            try:
                member = _Distribution(m.fit, target)
            except NotPredictable as exc:
                dropped.append(f"{m.name} does not answer ({exc})")
                continue
            width = member.quantile(0.95) - member.quantile(0.05)
            (wide if width > MEMBER_MAX_WIDTH else parts).append((m.name, m.weight, member, width))
        def voters(members):
            return [(w, d) for _, w, d, _ in members]

        if not parts:  # every member too wide (or none answers): the mixture of them all (the row's width rule speaks)
            return voters(wide), dropped
        # Where one narrow member is left it would answer alone, unchecked: the wide members, as a
        # block, keep their votes there if their mixture's median lies outside its 90% interval (they
        # disagree with it, which is evidence it may be wrong, not mere uncertainty). Two or more
        # narrow members check each other, and the wide ones do not vote.
        if wide and self.wide_members == "always":
            return voters(parts + wide), dropped
        if wide:
            why = "too wide to vote"
            if len(parts) < 2 and parts[0][0] in self._unchecked:
                # a lone member that answered none of the folds has nothing to vouch for its
                # extrapolation of this task (its weight is the other members' worst fold error):
                # it does not answer alone, the wide members keep their votes (docs/forecasting.md:
                # a guard; the development tables read the same without it)
                return voters(parts + wide), dropped
            if len(parts) < 2 or self.wide_members == "disagree":
                point = _quantile(voters(wide), 0.5)
                if not _quantile(voters(parts), 0.05) <= point <= _quantile(voters(parts), 0.95):
                    return voters(parts + wide), dropped
                others = "one other's" if len(parts) < 2 else "others'"
                why += f"; the wide members' median {point:.3g} lies within the {others} interval"
            dropped += [f"{name}'s own 90% interval is {100 * width:.0f}% of the range ({why})" for name, _, _, width in wide]
        return voters(parts), dropped

    def mean(self, target: Target) -> float:
        """The point forecast: the mixture's median (see :meth:`predict`)."""
        parts, _ = self._answering(target)
        if not parts:
            raise NotPredictable("no law of the combination answers this target")
        return _quantile(parts, 0.5)

    def predict(self, target: Target, level: float = 0.9) -> Prediction:
        parts, dropped = self._answering(target)
        if not parts:
            raise NotPredictable("no law of the combination answers this target: " + "; ".join(dropped))
        # The point is the mixture's median, as each member's point is its own (the centre of a t in
        # the link space): near a bound the members' distributions are skewed, and the weighted mean
        # of their points sat away from the mass of the mixture (the median minimises the absolute
        # error every table reports).
        mean = _quantile(parts, 0.5)

        def quantile(p: float) -> float:
            return _quantile(parts, p)

        # members forecast scores in [0, 1]; a score-unit member's tail may leave it, the interval does not
        lower, upper = max(quantile(0.5 - level / 2), 0.0), min(quantile(0.5 + level / 2), 1.0)
        items = [n for n in (getattr(m.fit, "target_items", None) for m in self.members) if n]
        lower, upper = to_item_resolution(lower, upper, max(items) if items else None)
        notes = None
        if dropped:
            notes = (f"{self.notes}; for this target: " + "; ".join(dropped) + ", the other weights renormalised").lstrip("; ")
        return Prediction(mean=mean, lower=min(lower, mean), upper=max(upper, mean), level=level,
                          law=self.law if dropped else None, notes=notes)

    def summary(self) -> str:
        lines = [f"law {self.law}: a weighted mixture of {len(self.members)} laws"]
        for m in self.members:
            error = "" if m.fold_error is None else f", mean fold error {100 * m.fold_error:.2f} pts"
            lines.append(f"  {m.name:>18}  weight {m.weight:.3f}{error}")
        if self.notes:
            lines.append(f"  note: {self.notes}")
        return "\n".join(lines)


def _quantile(parts: list[tuple[float, _Distribution]], p: float) -> float:
    """The ``p``-quantile of the weighted mixture of ``parts`` ((weight, distribution) pairs)."""
    total = sum(w for w, _ in parts)

    def mixture_cdf(y: float) -> float:
        return sum(w * d.cdf(y) for w, d in parts) / total

    # The mixture's p-quantile lies between its members' p-quantiles (up to rounding).
    lo, hi = min(d.quantile(p) for _, d in parts), max(d.quantile(p) for _, d in parts)
    if hi - lo < 1e-12 or mixture_cdf(lo) >= p:
        return lo
    if mixture_cdf(hi) <= p:
        return hi
    return brentq(lambda y: mixture_cdf(y) - p, lo, hi, xtol=1e-9)
