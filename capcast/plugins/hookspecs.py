"""The hooks a capcast plugin implements.

A plugin is any module (or object) with functions decorated by ``capcast.hookimpl`` whose names
match the specs below. The built-in plugins in :mod:`capcast.plugins.builtin` use exactly these
hooks. A function decorated with ``hookimpl`` whose name matches no spec (a misspelt hook such as
``register_task``) marks its plugin broken: it would otherwise register nothing without a word.

Each hook receives ``register``; call it once per object. It takes ``replace=True`` to replace a
built-in of the same name on purpose (without it, shadowing a built-in is refused).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    from capcast.laws.base import Law
    from capcast.metrics import Metric
    from capcast.tables.readers.base import Reader
    from capcast.tasks.task import Task

PROJECT = "capcast"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_tasks(register: Callable[["Task"], None]) -> None:
    """Register evaluation tasks by calling ``register(capcast.Task(...))`` once per task."""


@hookspec
def register_laws(register: Callable[["Law"], None]) -> None:
    """Register forecasting laws by calling ``register(law)`` with an object that follows
    :class:`capcast.Law` (a ``name``, a ``description`` and a ``fit(series) -> LawFit``)."""


@hookspec
def register_readers(register: Callable[["Reader"], None]) -> None:
    """Register readers of external results by calling ``register(capcast.Reader(...))``: each
    turns a file or folder (lm-eval ``results*.json``, a published suite) into a scores table."""


@hookspec
def register_metrics(register: Callable[["Metric"], None]) -> None:
    """Describe metrics by calling ``register(capcast.metrics.Metric(...))``: a metric's direction
    (higher or lower is better), bounds, scale (bounded ``score`` or unbounded ``loss``) and chance
    rule. Forecasts of a metric nobody described infer it conservatively (a score in [0, 1]) or
    refuse it."""
