"""Built-in local tasks: arithmetic whose data capcast generates itself (no download).

Registered through the same ``register_tasks`` hook a third-party plugin uses. To add a variant
(other digits, more items), copy this pattern in your own plugin::

    from capcast.tasks.arithmetic import exact_answer, task_builder

    @capcast.hookimpl
    def register_tasks(register):
        register(capcast.Task(name="my_add_gen_2d", lm_eval_config=task_builder("add_gen", "my_add_gen_2d", digits=2),
                              kind="generate", checker=exact_answer, repeats=8))
"""

from __future__ import annotations

import capcast
from capcast.tasks.arithmetic import exact_answer, task_builder


# name, generator in capcast.tasks.arithmetic, items, and the Task fields that differ (3 digits each)
LOCAL_TASKS = (
    ("capcast_add_mc", "add_mc", 1000,
     dict(kind="multiple_choice", chance=0.25, description="3-digit addition: pick the right sum among 4 (generated locally)")),
    ("capcast_compare_mc", "compare_mc", 1000,
     dict(kind="multiple_choice", chance=0.5, description="max(a,b) of two 3-digit numbers: pick the larger (generated locally)")),
    ("capcast_add_gen", "add_gen", 500,
     dict(kind="generate", chance=0.0, checker=exact_answer, repeats=4,
          description="3-digit addition: generate the sum, 4 samples per item (generated locally)")),
)


@capcast.hookimpl
def register_tasks(register) -> None:
    for name, generator, n, fields in LOCAL_TASKS:
        register(capcast.Task(name=name, lm_eval_config=task_builder(generator, name, digits=3, n=n), **fields))
