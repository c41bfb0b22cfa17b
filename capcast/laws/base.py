"""The one interface every law follows, like scikit-learn estimators and statsmodels results.

    fit = law.fit(series)                 # an immutable LawFit
    fit.params, fit.cov                   # named parameters and their covariance
    fit.predict(target, level=0.9)        # Prediction(mean, lower, upper)
    print(fit.summary())

A law sees a :class:`Series`: one (task, metric) value per checkpoint plus whatever other metrics
the scores table holds for the same checkpoints (``series.extra``), so two-step laws can use a
loss metric as the intermediate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from capcast.tables.series import Series, Target

__all__ = ["Law", "LawFit", "NotPredictable", "Prediction", "Series", "Target"]


@dataclass(frozen=True)
class Prediction:
    """A forecast: point estimate and prediction interval at ``level``.

    ``law`` and ``notes`` are set only when another law than the fit's own answered (a fallback,
    see :attr:`capcast.laws.curve.CurveFit.fallback`): the forecast row reports them instead.
    """

    mean: float
    lower: float
    upper: float
    level: float
    law: str | None = None
    notes: str | None = None


class LawFit(Protocol):
    """What ``Law.fit`` returns. Implementations are frozen dataclasses."""

    law: str
    params: dict[str, float]
    cov: np.ndarray

    def predict(self, target: Target, level: float = 0.9) -> Prediction: ...

    def summary(self) -> str: ...


@runtime_checkable
class Law(Protocol):
    """A functional form that maps compute-like inputs to a task score.

    ``fit`` raises :class:`NotPredictable` when the series carries no usable signal (for example
    all points at chance within noise); the forecast then reports "not predictable yet" with the
    exception's message as the reason.
    """

    name: str
    description: str

    def fit(self, series: Series) -> LawFit: ...


class NotPredictable(Exception):
    """The data cannot support a forecast; the message says why (shown to the user)."""


# What a law's fit raises when it refuses a series rather than breaks: NotPredictable, and the
# numerical failures of its optimiser (numpy's LinAlgError is a ValueError). auto scores a fold
# that raises one as a refusal; LazyLaw keeps them like fits.
FIT_REFUSALS = (NotPredictable, ArithmeticError, ValueError)
