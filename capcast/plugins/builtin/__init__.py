"""The built-in plugins of capcast, registered through the same hooks as third-party ones.

Each module here is one plugin: :mod:`.local_tasks` (generated arithmetic), :mod:`.reference_tasks`
(the mini-ladder's tasks), :mod:`.standard_tasks` (ARC, MMLU, ... on lm-eval's configs), :mod:`.laws` (every built-in law), :mod:`.readers` (readers of
external results) and :mod:`.metrics` (the descriptions of the built-in metrics).
"""

from __future__ import annotations

from types import ModuleType


def plugins() -> dict[str, ModuleType]:
    """The built-in plugin modules by short name, imported on first use."""
    from capcast.plugins.builtin import laws, local_tasks, metrics, readers, reference_tasks, standard_tasks

    return {"local_tasks": local_tasks, "reference_tasks": reference_tasks, "standard_tasks": standard_tasks,
            "laws": laws, "readers": readers, "metrics": metrics}
