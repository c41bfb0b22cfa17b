"""Orientation: every law sees a metric the way it expects, and every row speaks the metric's units.

The score laws (sigmoid, ladder, ...) expect a score in [0, 1] that rises with compute; the loss
law (``power``) a loss bounded below by 0 that falls with compute. A :class:`capcast.metrics.Metric`
says which way its values go, so a series is mapped by one affine map ``s = offset + slope * v``:

========================  ==========================================  ====================
metric                    oriented value                              for
========================  ==========================================  ====================
score, higher is better   (v - lower) / (upper - lower)               ``acc`` (identity)
score, lower is better    (upper - v) / (upper - lower)               ``brier`` on [0, 2]
loss, lower is better     v - lower (v when unbounded)                ``bpb_gold``, ``ppl``
loss, higher is better    upper - v (-v when unbounded)               ``logprob_gold``
========================  ==========================================  ====================

The chance level is mapped the same way (a metric's chance outside its range, e.g. ``brier``'s 0.0
where the table gives none, means no chance level: the worst end of the range). The law is
fitted on the oriented series and its fit is wrapped (:class:`OrientedFit`) so that ``predict``
answers in the metric's own units: a lower-is-better metric's interval bounds swap, and every
value is clipped into the metric's bounds. An identity orientation of a score (``acc``) leaves
the fit as the law returned it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

import numpy as np

from capcast.laws.base import Prediction, Series, Target
from capcast.metrics import Metric


@dataclass(frozen=True)
class Orientation:
    """``s = offset + slope * v`` for one metric (see the module docstring)."""

    metric: Metric
    offset: float = 0.0
    slope: float = 1.0

    @property
    def identity(self) -> bool:
        return self.offset == 0.0 and self.slope == 1.0

    @property
    def wraps(self) -> bool:
        """Whether fits are wrapped: any map but the identity, and every loss (clipped to its bounds)."""
        return not self.identity or self.metric.scale == "loss"

    def oriented(self, value):
        return self.offset + self.slope * np.asarray(value, dtype=float)

    def to_metric(self, s):
        return (np.asarray(s, dtype=float) - self.offset) / self.slope

    def to_metric_value(self, s: float) -> float:
        return float(self.to_metric(s))

    @property
    def label(self) -> str:
        """What the laws see, in words: ``(2 - brier) / 2``, ``-logprob_gold``, ``ppl - 1``."""
        name, m = self.metric.name, self.metric
        if self.identity:
            return name
        if m.scale == "score":
            if m.higher_is_better:
                return f"({name} - {m.lower:g}) / {m.width:g}"
            return f"({m.upper:g} - {name}) / {m.width:g}"
        if self.slope > 0:
            return f"{name} - {-self.offset:g}"
        return f"-{name}" if self.offset == 0 else f"{self.offset:g} - {name}"

    def chance(self, series_chance: float | None) -> float:
        """The oriented chance level: the series' chance where the metric uses the table's and it
        lies inside the range short of the best end; else the worst end (0)."""
        m = self.metric
        if m.scale == "loss" or m.chance == "none" or series_chance is None or not math.isfinite(series_chance):
            return 0.0
        s = float(self.oriented(series_chance))
        return s if 0.0 <= s < 1.0 else 0.0

    def series(self, series: Series) -> Series:
        """``series`` with its values and chance oriented; everything else (``extra`` too) as is."""
        if self.identity:
            return series
        return replace(series, value=self.oriented(series.value), chance=self.chance(series.chance))

    def clip(self, value: float) -> float:
        m = self.metric
        lo = -math.inf if m.lower is None else m.lower
        hi = math.inf if m.upper is None else m.upper
        return float(min(max(value, lo), hi))

    def prediction(self, pred: Prediction) -> Prediction:
        """An oriented prediction in the metric's units: mapped back, bounds swapped when the map
        reverses the direction, clipped into the metric's bounds."""
        mean = self.clip(self.to_metric_value(pred.mean))
        ends = sorted(self.clip(self.to_metric_value(v)) for v in (pred.lower, pred.upper))
        return replace(pred, mean=mean, lower=min(ends[0], mean), upper=max(ends[1], mean))

    def wrap(self, fit):
        return OrientedFit(fit, self) if self.wraps and fit is not None else fit


def orientation_for(metric: Metric) -> Orientation:
    """The map onto what the laws expect (see the module docstring)."""
    if metric.scale == "score":
        width = metric.width
        if metric.higher_is_better:
            return Orientation(metric, offset=-metric.lower / width, slope=1.0 / width)
        return Orientation(metric, offset=metric.upper / width, slope=-1.0 / width)
    if metric.higher_is_better:
        return Orientation(metric, offset=0.0 if metric.upper is None else float(metric.upper), slope=-1.0)
    return Orientation(metric, offset=0.0 if metric.lower is None else -float(metric.lower), slope=1.0)


@dataclass(frozen=True)
class OrientedFit:
    """A law's fit on an oriented series, answering in the metric's units.

    ``law_name`` renames the fit (``auto:power``); ``orientation`` None passes predictions through.
    Everything else (``params``, ``cov``, ``notes``, ``x_of``, ...) is the law's own fit.
    """

    inner: Any
    orientation: Orientation | None = None
    law_name: str | None = None
    extra_notes: str = ""

    @property
    def law(self) -> str:
        return self.law_name or getattr(self.inner, "law", "")

    @property
    def params(self) -> dict[str, float]:
        return self.inner.params

    @property
    def cov(self) -> np.ndarray:
        return self.inner.cov

    @property
    def notes(self) -> str:
        own = getattr(self.inner, "notes", "") or ""
        return "; ".join(n for n in (self.extra_notes, own) if n)

    def predict(self, target: Target, level: float = 0.9) -> Prediction:
        pred = self.inner.predict(target, level=level)
        return pred if self.orientation is None else self.orientation.prediction(pred)

    def curve(self, x):
        inner = getattr(self.inner, "curve", None)
        values = None if inner is None else inner(x)
        if values is None or self.orientation is None:
            return values
        return np.asarray([self.orientation.clip(v) for v in self.orientation.to_metric(values)], dtype=float)

    def summary(self) -> str:
        text = self.inner.summary()
        if self.orientation is not None and not self.orientation.identity:
            text += f"\n  fitted on {self.orientation.label} ({self.orientation.metric.name}: {self.orientation.metric.direction})"
        return text

    def __getattr__(self, name: str):
        if name in ("inner", "orientation", "law_name", "extra_notes") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)


def relabel(fit, law: str, notes: str = ""):
    """``fit`` under another law name (``auto:power``), with ``notes`` first in its reason."""
    if is_dataclass(fit) and {"law", "notes"} <= {f.name for f in fields(fit)}:
        own = getattr(fit, "notes", "") or ""
        return replace(fit, law=law, notes="; ".join(n for n in (notes, own) if n))
    return OrientedFit(fit, None, law, notes)
