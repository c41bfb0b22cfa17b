"""A run's learning-rate schedule and its two areas (Tissue et al. 2024, "Scaling law with learning
rate annealing"), per checkpoint:

    S1(s) = sum_{i < s} eta_i                       forward area: how far the run has travelled
    S2(s) = sum_{i < s} m_i,  m_i = lambda * m_{i-1} + max(eta_{i-1} - eta_i, 0)
                                                    annealing area: momentum-smoothed LR drops

Both are returned in **peak-LR-equivalent tokens**: divided by the run's peak learning rate and
multiplied by its tokens per step. A constant schedule then has S1 = tokens seen and S2 = 0, so the
areas of runs with different peak LRs, batch sizes and lengths sit on one axis, and a *relative*
schedule (peak 1, final 0.1) is as good as the absolute one. Only drops count toward S2: the
warm-up's rises are not annealing (Tissue et al. fit after warm-up). ``lambda`` (default 0.999,
their choice) acts per optimiser step, as in the paper.

A schedule here is anything with the fields of :class:`capcast.spec.Schedule` (``warmup_steps``,
``peak_lr``, ``final_lr``, ``decay``, ``decay_fraction``, ``total_steps``, ``tokens_per_step``),
so the laws need not import the spec. :func:`attach_areas` puts the areas of every checkpoint of a
:class:`Series` into ``series.extra`` under :data:`LR_AREA` and :data:`ANNEAL_AREA` (NaN for runs
without a schedule), which is how schedule-aware laws see them.
"""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Mapping, Protocol

import numpy as np
from scipy.signal import lfilter

from capcast.laws.base import Series

LR_AREA = "schedule:lr_area"
ANNEAL_AREA = "schedule:anneal_area"
AREA_KEYS = (LR_AREA, ANNEAL_AREA)
ANNEAL_DECAY = 0.999  # Tissue et al.'s momentum factor lambda, per optimiser step
DECAYS = ("cosine", "linear", "constant", "wsd")


class ScheduleLike(Protocol):
    warmup_steps: int
    peak_lr: float
    final_lr: float
    decay: str
    decay_fraction: float | None
    total_steps: int
    tokens_per_step: float


def learning_rates(schedule: ScheduleLike, n_steps: int | None = None) -> np.ndarray:
    """The learning rate of optimiser steps 0 .. n_steps - 1 (default: the whole run).

    Linear warm-up ``eta_i = peak (i + 1) / warmup`` for ``i < warmup``, then the decay from peak to
    ``final_lr`` over the rest of the run: ``cosine`` (half a cosine), ``linear``, ``constant``
    (stays at peak), or ``wsd`` (warm-up, stable at peak, then a linear decay over the last
    ``decay_fraction`` of the total steps). Steps past ``total_steps`` keep the final rate. This is
    the reference mini-ladder's schedule (capcast/reference/train.py) exactly, for ``cosine``.
    """
    total = int(schedule.total_steps)
    n = total if n_steps is None else int(n_steps)
    i = np.arange(max(n, 0), dtype=float)
    peak, final = float(schedule.peak_lr), float(schedule.final_lr)
    warmup = int(schedule.warmup_steps)
    if schedule.decay == "constant":
        after = np.full_like(i, peak)
    elif schedule.decay == "wsd":
        start = total - float(schedule.decay_fraction) * total
        progress = np.clip((i - start) / max(total - start, 1.0), 0.0, 1.0)
        after = peak - (peak - final) * progress
    else:
        progress = np.clip((i - warmup) / max(total - warmup, 1), 0.0, 1.0)
        shape = 0.5 * (1 + np.cos(np.pi * progress)) if schedule.decay == "cosine" else 1 - progress
        after = final + (peak - final) * shape
    rates = after if warmup <= 0 else np.where(i < warmup, peak * (i + 1) / warmup, after)
    return rates


def schedule_areas(schedule: ScheduleLike, steps, anneal_decay: float = ANNEAL_DECAY) -> tuple[np.ndarray, np.ndarray]:
    """(S1, S2) in peak-LR-equivalent tokens after each of ``steps`` optimiser steps."""
    steps = np.atleast_1d(np.asarray(steps, dtype=float))
    if np.any(~np.isfinite(steps)) or np.any(steps < 0):
        raise ValueError("steps must be finite and non-negative")
    last = int(np.max(steps)) if steps.size else 0
    rates = learning_rates(schedule, max(last, 1)) / float(schedule.peak_lr)
    drops = np.maximum(np.concatenate([[0.0], rates[:-1] - rates[1:]]), 0.0)
    momentum = lfilter([1.0], [1.0, -anneal_decay], drops)  # m_i = lambda m_{i-1} + drop_i
    # areas after s steps: sums over steps 0 .. s-1 (a leading 0 for s = 0)
    s1 = np.concatenate([[0.0], np.cumsum(rates)])
    s2 = np.concatenate([[0.0], np.cumsum(momentum)])
    index = np.round(steps).astype(int)
    per_step = float(schedule.tokens_per_step)
    return s1[index] * per_step, s2[index] * per_step


def final_areas(schedule: ScheduleLike, tokens: float | None = None, anneal_decay: float = ANNEAL_DECAY) -> tuple[float, float]:
    """(S1, S2) at the end of a run with ``schedule`` (at ``tokens`` seen, default the whole run)."""
    steps = schedule.total_steps if tokens is None else round(float(tokens) / float(schedule.tokens_per_step))
    s1, s2 = schedule_areas(schedule, [steps], anneal_decay)
    return float(s1[0]), float(s2[0])


def stretched(schedule: ScheduleLike, tokens: float) -> SimpleNamespace:
    """``schedule``'s shape over a run of ``tokens``: same rates, tokens per step, decay and warm-up
    share, ``total_steps`` = tokens / tokens per step (a target that follows the fitting runs' shape)."""
    total = max(int(round(float(tokens) / float(schedule.tokens_per_step))), 1)
    warmup = min(int(round(int(schedule.warmup_steps) * total / int(schedule.total_steps))), total - 1)
    return SimpleNamespace(warmup_steps=warmup, peak_lr=float(schedule.peak_lr), final_lr=float(schedule.final_lr),
                           decay=schedule.decay, decay_fraction=schedule.decay_fraction, total_steps=total,
                           tokens_per_step=float(schedule.tokens_per_step))


def checkpoint_steps(series: Series, schedule: ScheduleLike, rows: np.ndarray) -> np.ndarray:
    """Optimiser steps of the checkpoints ``rows``: the table's ``step`` where known, else
    tokens / tokens per step."""
    by_tokens = np.round(np.asarray(series.tokens, dtype=float)[rows] / float(schedule.tokens_per_step))
    if series.step is None:
        return by_tokens
    step = np.asarray(series.step, dtype=float)[rows]
    return np.where(np.isfinite(step), step, by_tokens)


def attach_areas(series: Series, schedules: Mapping[str, ScheduleLike] | None,
                 anneal_decay: float = ANNEAL_DECAY) -> Series:
    """``series`` with each checkpoint's (S1, S2) in ``extra`` (:data:`AREA_KEYS`), from its run's
    schedule in ``schedules`` (run name -> schedule); NaN for runs without one. Without any
    schedule for the series' runs, ``series`` unchanged."""
    if not schedules:
        return series
    runs = series.runs
    s1, s2 = np.full(len(series), np.nan), np.full(len(series), np.nan)
    for run in np.unique(runs):
        schedule = schedules.get(str(run))
        if schedule is None:
            continue
        rows = np.flatnonzero(runs == run)
        s1[rows], s2[rows] = schedule_areas(schedule, checkpoint_steps(series, schedule, rows), anneal_decay)
    if not np.isfinite(s1).any():
        return series
    return replace(series, extra={**series.extra, LR_AREA: s1, ANNEAL_AREA: s2})
