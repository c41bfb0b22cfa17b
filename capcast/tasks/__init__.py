"""Tasks: :class:`Task` (what a plugin registers), the generated local arithmetic tasks
(:mod:`.arithmetic`, with their lm-eval YAML templates) and the sandbox that runs generated code
(:mod:`.sandbox`)."""

from capcast.tasks.task import Checker, Task  # noqa: F401
