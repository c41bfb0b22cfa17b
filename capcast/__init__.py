"""capcast: forecast a large model's benchmark scores from evaluations of its small siblings."""

from typing import TYPE_CHECKING

from capcast.hookspecs import hookimpl

if TYPE_CHECKING:
    from capcast.task import Task

__all__ = ["Task", "hookimpl", "__version__"]
__version__ = "0.1.0"


def __getattr__(name: str):
    # `Task` is a pydantic model: imported on first use, so `import capcast` (and every
    # `capcast --help`) does not pay for pydantic.
    if name == "Task":
        from capcast.task import Task

        return Task
    raise AttributeError(f"module 'capcast' has no attribute {name!r}")
