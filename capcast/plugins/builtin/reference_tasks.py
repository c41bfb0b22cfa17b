"""Built-in tasks of the reference mini-ladder (see capcast.reference.tasks and
docs/reference-family.md), registered through the same hook a third-party plugin uses."""

from __future__ import annotations

import capcast
from capcast.reference.tasks import reference_tasks


@capcast.hookimpl
def register_tasks(register) -> None:
    for task in reference_tasks():
        register(task)
