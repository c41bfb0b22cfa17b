"""What a law sees: a :class:`Series` (one task-metric value per checkpoint) and the :class:`Target`.

These are data, not models: the tables build them, the laws (:mod:`capcast.laws`) consume them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields

import numpy as np

from capcast.schema import default_flops


@dataclass(frozen=True)
class Target:
    """The model to forecast. ``flops`` defaults to 6 * params * tokens. ``schedule``: the target
    run's learning-rate schedule (a :class:`capcast.spec.Schedule` or anything with its fields),
    for schedule-aware laws (``ladder-schedule``); ``capcast forecast`` fills it from the family
    spec's ``schedules``."""

    name: str | None = None
    params: float | None = None
    tokens: float | None = None
    flops: float | None = None
    schedule: object | None = field(default=None, compare=False)  # not hashed: schedules need not be hashable

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

    ``model`` names each checkpoint; ``run`` the training run it belongs to (None: one run per
    model name, as in tables without a ``run`` column). ``extra`` maps other metric names of the
    same task (e.g. ``bpb_gold``) to arrays aligned with ``value``; NaN where a checkpoint lacks
    that metric.
    """

    task: str
    metric: str
    model: np.ndarray  # checkpoint (or run) names
    params: np.ndarray
    tokens: np.ndarray
    flops: np.ndarray
    value: np.ndarray
    n_items: np.ndarray | None = None
    chance: float = 0.0
    step: np.ndarray | None = None
    family: str | None = None
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    run: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.value)

    @property
    def runs(self) -> np.ndarray:
        """The training run of each checkpoint (``model`` where no run was given)."""
        return np.asarray(self.model if self.run is None else self.run, dtype=object)

    @property
    def log_compute(self) -> np.ndarray:
        return np.log10(self.flops)

    def fingerprint(self) -> bytes:
        """A digest of everything a law can read: two series with equal fingerprints fit alike
        (:class:`capcast.plugins.builtin.laws.LazyLaw` keeps recent fits by it)."""
        digest = hashlib.blake2b(digest_size=16)

        def add(value) -> None:
            if value is None:
                digest.update(b"\x00none")
            elif isinstance(value, dict):
                digest.update(b"\x00dict%d" % len(value))
                for key in sorted(value):
                    add(str(key))
                    add(value[key])
            elif isinstance(value, np.ndarray) and value.dtype != object:
                digest.update(b"\x00array" + value.dtype.str.encode() + repr(value.shape).encode())
                digest.update(np.ascontiguousarray(value).tobytes())
            elif isinstance(value, (np.ndarray, list, tuple)):
                digest.update(b"\x00items%d" % len(value))
                for item in value:
                    add(item)
            else:
                digest.update(b"\x00" + type(value).__name__.encode() + b":" + repr(value).encode())

        for f in fields(self):
            add(f.name)
            add(getattr(self, f.name))
        return digest.digest()
