"""Which metric each task forecasts when ``--metric`` is not given.

A scores table carries no task metadata, so the choice is made per task, in this order: the
registered task's own default metric (:attr:`capcast.Task.default_metric`: ``acc_norm`` for
HellaSwag, ``pass_rate`` for a generative task) where the table has it; else the table's only
metric for that task; else ``acc``. A task with several metrics, none of them chosen so, is left
out (or, when named in ``--tasks``, refused in one line asking for ``--metric``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import pandas as pd

from capcast.errors import CapcastError
from capcast.tables.scores import VALIDATION_PREFIX

FALLBACK = "acc"


@dataclass(frozen=True)
class TaskMetric:
    task: str
    metric: str
    why: str  # "the task's default", "the table's only metric for it", "the fallback: no default known"


def task_metrics(frame: pd.DataFrame, tasks: Iterable[str] | None, registry=None) -> tuple[list[TaskMetric], list[str]]:
    """``(one TaskMetric per task, tasks left out)`` for ``tasks`` (default: every task of the table)."""
    named = list(tasks) if tasks else None
    all_tasks = sorted(t for t in frame["task"].unique() if not str(t).startswith(VALIDATION_PREFIX))
    unknown = [t for t in named or () if t not in set(frame["task"])]
    if unknown:
        raise CapcastError(f"task(s) {', '.join(unknown)} have no {FALLBACK!r} scores, nor any other, in the scores table; "
                           f"available: {', '.join(all_tasks[:20])}")
    registered = getattr(registry, "tasks", {}) or {}
    chosen, left_out = [], []
    for task in named or all_tasks:
        have = sorted(set(frame.loc[frame["task"] == task, "metric"]))
        default = registered[task].default_metric if task in registered else None
        if default in have:
            chosen.append(TaskMetric(task, default, "the task's default"))
        elif len(have) == 1:
            chosen.append(TaskMetric(task, have[0], "the table's only metric for it"))
        elif FALLBACK in have:
            chosen.append(TaskMetric(task, FALLBACK, "the fallback: no default known"))
        elif named:
            raise CapcastError(f"task {task!r} has several metrics ({', '.join(have)}) and no default among them; pass --metric")
        else:
            left_out.append(task)
    return chosen, left_out


def by_metric(chosen: list[TaskMetric]) -> dict[str, list[str]]:
    """The tasks of each chosen metric, in the order first met."""
    out: dict[str, list[str]] = {}
    for c in chosen:
        out.setdefault(c.metric, []).append(c.task)
    return out


def describe(chosen: list[TaskMetric], left_out: list[str]) -> str:
    """The note saying which metric each task used (and which tasks were left out)."""
    parts = [f"{c.task} {c.metric} ({c.why})" for c in chosen]
    note = "no --metric: each task forecasts its own default metric: " + ", ".join(parts)
    if left_out:
        note += f"; left out (several metrics, none a default; pass --metric): {', '.join(left_out)}"
    return note
