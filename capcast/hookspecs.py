"""The hooks a capcast plugin implements.

A plugin is any module (or object) with functions decorated by ``capcast.hookimpl`` whose names
match the specs below. Built-in plugins in ``plugins/capcast_builtin`` use exactly these hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    from capcast.laws.base import Law
    from capcast.task import Task

hookspec = pluggy.HookspecMarker("capcast")
hookimpl = pluggy.HookimplMarker("capcast")


@hookspec
def register_tasks(register: Callable[["Task"], None]) -> None:
    """Register evaluation tasks by calling ``register(capcast.Task(...))`` once per task."""


@hookspec
def register_laws(register: Callable[["Law"], None]) -> None:
    """Register forecasting laws by calling ``register(law)`` with an object that follows
    :class:`capcast.laws.base.Law` (a ``name`` and a ``fit(series) -> LawFit``)."""
