"""Built-in standard benchmarks (ARC, HellaSwag, MMLU and its 57 subjects, PIQA, SciQ, WinoGrande,
LAMBADA, BoolQ, GSM8K, HumanEval) on lm-eval's own task configs, online or from ``--data-dir``
(see capcast.tasks.standard and docs/benchmarks.md), registered through the same hook a
third-party plugin uses."""

from __future__ import annotations

import capcast
from capcast.tasks.standard import standard_tasks


@capcast.hookimpl
def register_tasks(register) -> None:
    for task in standard_tasks():
        register(task)
