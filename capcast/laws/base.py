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

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from capcast.schema import default_flops


@dataclass(frozen=True)
class Target:
    """The model to forecast. ``flops`` defaults to 6 * params * tokens."""

    name: str | None = None
    params: float | None = None
    tokens: float | None = None
    flops: float | None = None

    @property
    def compute(self) -> float | None:
        if self.flops is not None:
            return float(self.flops)
        if self.params is not None and self.tokens is not None:
            return default_flops(float(self.params), float(self.tokens))
        return None


@dataclass(frozen=True)
class Series:
    """One (task, metric) series over the fitting checkpoints, ordered as given.

    ``extra`` maps other metric names of the same task (e.g. ``bpb_gold``) to arrays aligned with
    ``value``; NaN where a checkpoint lacks that metric.
    """

    task: str
    metric: str
    model: np.ndarray  # model names
    params: np.ndarray
    tokens: np.ndarray
    flops: np.ndarray
    value: np.ndarray
    n_items: np.ndarray | None = None
    chance: float = 0.0
    step: np.ndarray | None = None
    family: str | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.value)

    @property
    def log_compute(self) -> np.ndarray:
        return np.log10(self.flops)


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
