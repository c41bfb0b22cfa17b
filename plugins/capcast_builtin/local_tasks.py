"""Built-in local tasks: arithmetic whose data capcast generates itself (no download).

Registered through the same ``register_tasks`` hook a third-party plugin uses. To add a variant
(other digits, more items), copy this pattern in your own plugin::

    from capcast_tasks.arithmetic import exact_answer, task_builder

    @capcast.hookimpl
    def register_tasks(register):
        register(capcast.Task(name="my_add_gen_2d", lm_eval_config=task_builder("add_gen", "my_add_gen_2d", digits=2),
                              kind="generate", checker=exact_answer, repeats=8))
"""

from __future__ import annotations

import capcast
from capcast_tasks.arithmetic import exact_answer, task_builder


@capcast.hookimpl
def register_tasks(register) -> None:
    register(
        capcast.Task(
            name="capcast_add_mc",
            lm_eval_config=task_builder("add_mc", "capcast_add_mc", digits=3, n=1000),
            kind="multiple_choice",
            chance=0.25,
            description="3-digit addition: pick the right sum among 4 (generated locally)",
        )
    )
    register(
        capcast.Task(
            name="capcast_compare_mc",
            lm_eval_config=task_builder("compare_mc", "capcast_compare_mc", digits=3, n=1000),
            kind="multiple_choice",
            chance=0.5,
            description="max(a,b) of two 3-digit numbers: pick the larger (generated locally)",
        )
    )
    register(
        capcast.Task(
            name="capcast_add_gen",
            lm_eval_config=task_builder("add_gen", "capcast_add_gen", digits=3, n=500),
            kind="generate",
            chance=0.0,
            checker=exact_answer,
            repeats=4,
            description="3-digit addition: generate the sum, 4 samples per item (generated locally)",
        )
    )
