"""What a metric is: its direction, its bounds, its scale and how its chance level is found.

    Metric("brier", higher_is_better=False, lower=0.0, upper=2.0, scale="score")

A forecast needs to know which way a metric improves (``brier`` falls, ``acc`` rises), what range
it lives in (the width rule measures an interval against it) and whether it is a bounded score or
an unbounded loss (which laws apply). The built-in metrics are described in
:data:`BUILTIN_METRICS`; a plugin describes its own through the ``register_metrics`` hook::

    from capcast.metrics import Metric

    @capcast.hookimpl
    def register_metrics(register):
        register(Metric("rouge_l", higher_is_better=True, lower=0.0, upper=1.0, description="ROUGE-L F1"))

A metric no one described is inferred conservatively (:func:`infer_metric`): values all in [0, 1]
read as a higher-is-better score, anything else is refused with one line asking for a Metric.

This module is data only (no numpy, no pandas): every room may import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from capcast.errors import CapcastError

SCALES = ("score", "loss")
CHANCE_RULES = ("table", "none")
# lm-eval names a filtered metric ``exact_match/strict-match``: it is the metric before the slash.
FILTER_SEPARATOR = "/"


@dataclass(frozen=True)
class Metric:
    """One metric's description.

    ``scale``: ``"score"`` for a bounded score (both bounds finite; ``acc``, ``brier``), forecast by
    the score laws after orientation onto [0, 1] with higher better; ``"loss"`` for an unbounded
    loss-like metric (``bpb_gold``, ``logprob_gold``), forecast by the ``power`` law on the loss
    (oriented so that lower is better, measured from its best bound).
    ``chance``: ``"table"`` takes the scores table's ``chance`` column (where it is empty, the
    worst end of the range: no floor above it); ``"none"``: the metric has no chance level.
    """

    name: str
    higher_is_better: bool
    lower: float | None = None
    upper: float | None = None
    scale: str = "score"
    description: str = ""
    chance: str = "table"

    def __post_init__(self) -> None:
        where = f"Metric {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Metric name must be a non-empty str, got {self.name!r}")
        if not isinstance(self.higher_is_better, bool):
            raise ValueError(f"{where}: higher_is_better must be True or False, got {self.higher_is_better!r}")
        for side in ("lower", "upper"):
            value = getattr(self, side)
            if value is not None and (not isinstance(value, (int, float)) or math.isnan(value)):
                raise ValueError(f"{where}: {side} must be a number or None, got {value!r}")
        if self.lower is not None and self.upper is not None and not self.lower < self.upper:
            raise ValueError(f"{where}: lower ({self.lower}) must be below upper ({self.upper})")
        if self.scale not in SCALES:
            raise ValueError(f"{where}: scale must be one of {', '.join(SCALES)}, got {self.scale!r}")
        if self.scale == "score" and not self.bounded:
            raise ValueError(f"{where}: a 'score' metric needs finite lower and upper bounds; use scale='loss' for an unbounded one")
        if self.chance not in CHANCE_RULES:
            raise ValueError(f"{where}: chance must be one of {', '.join(CHANCE_RULES)}, got {self.chance!r}")

    @property
    def bounded(self) -> bool:
        return all(b is not None and math.isfinite(b) for b in (self.lower, self.upper))

    @property
    def width(self) -> float:
        """upper - lower (infinite for an unbounded metric)."""
        return float(self.upper) - float(self.lower) if self.bounded else math.inf

    @property
    def best(self) -> float | None:
        """The bound a perfect model reaches (None when unbounded that way)."""
        return self.upper if self.higher_is_better else self.lower

    @property
    def worst(self) -> float | None:
        return self.lower if self.higher_is_better else self.upper

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def bounds_text(self) -> str:
        lo = "-inf" if self.lower is None else f"{self.lower:g}"
        hi = "inf" if self.upper is None else f"{self.upper:g}"
        return f"{'[' if self.lower is not None else '('}{lo}, {hi}{']' if self.upper is not None else ')'}"

    def contains(self, value: float) -> bool:
        return (self.lower is None or value >= self.lower) and (self.upper is None or value <= self.upper)


def _score(name: str, description: str, higher: bool = True, lower: float = 0.0, upper: float = 1.0) -> Metric:
    return Metric(name, higher, lower, upper, "score", description, "table")


def _loss(name: str, description: str, higher: bool = False, lower: float | None = 0.0, upper: float | None = None) -> Metric:
    return Metric(name, higher, lower, upper, "loss", description, "none")


BUILTIN_METRICS: tuple[Metric, ...] = (
    _score("acc", "accuracy: the gold choice has the highest log-likelihood"),
    _score("acc_norm", "accuracy on log-likelihood per character (lm-eval's acc_norm)"),
    _score("p_gold", "probability of the gold choice, renormalised over the choices"),
    _score("pass_rate", "per item the share of samples that pass the checker, averaged"),
    _score("exact_match", "share of answers equal to the reference"),
    _score("f1", "token-overlap F1 with the reference"),
    _score("brier", "multi-class Brier score, sum over choices of (p_i - y_i)^2; chance 1 - 1/k", higher=False, upper=2.0),
    _loss("bpb_gold", "bits per UTF-8 byte of the gold continuation"),
    _loss("logprob_gold", "summed log-probability of the gold continuation (<= 0); forecast as the loss -logprob",
          higher=True, lower=None, upper=0.0),
    _loss("loss", "cross-entropy loss, nats per token (validation rows val/*)"),
    _loss("nll", "negative log-likelihood"),
    _loss("bpb", "bits per byte"),
    _loss("bits_per_byte", "bits per byte (lm-eval)"),
    _loss("ppl", "perplexity, exp(loss)", lower=1.0),
    _loss("word_perplexity", "perplexity per word (lm-eval)", lower=1.0),
    _loss("byte_perplexity", "perplexity per byte (lm-eval)", lower=1.0),
)
BUILTIN_BY_NAME: dict[str, Metric] = {m.name: m for m in BUILTIN_METRICS}


def base_metric(name: str) -> str:
    """The metric before a filter suffix: ``exact_match/strict-match`` is ``exact_match``."""
    return name.split(FILTER_SEPARATOR, 1)[0]


def find_metric(name: str, known: Mapping[str, Metric] | None = None) -> Metric | None:
    """The description of ``name`` in ``known`` (default: the built-ins), else of the metric
    before a filter suffix (``exact_match/strict-match`` is ``exact_match``), else None."""
    known = BUILTIN_BY_NAME if known is None else known
    if name in known:
        return known[name]
    base = base_metric(name)
    if base != name and base in known:
        return replace(known[base], name=name)
    return None


# The description of a metric read from its values alone (:func:`infer_metric`): a forecast says so.
INFERRED = "not described; read as a score in [0, 1], higher is better"


def infer_metric(name: str, values: Iterable[float]) -> Metric:
    """A metric no one described: a higher-is-better score in [0, 1] when every value lies there;
    anything else is refused (one line) rather than guessed."""
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if finite and all(0.0 <= v <= 1.0 for v in finite):
        return Metric(name, True, 0.0, 1.0, "score", INFERRED, "table")
    shown = f" (values {min(finite):g} to {max(finite):g})" if finite else ""
    raise CapcastError(f"metric {name!r} is not described{shown} and is not a score in [0, 1]; describe its direction, bounds "
                       "and scale with a capcast.metrics.Metric registered by a plugin's register_metrics hook")


def resolve_metric(name: str, values: Iterable[float] = (), known: Mapping[str, Metric] | None = None) -> Metric:
    """``name``'s description (:func:`find_metric`), or one inferred from its ``values``."""
    found = find_metric(name, known)
    if found is None and known is not None:
        found = find_metric(name)  # a registry without the built-ins still knows them
    return found if found is not None else infer_metric(name, values)
