"""capcast: forecast a large model's benchmark scores from evaluations of its small siblings."""

from capcast.hookspecs import hookimpl
from capcast.task import Task

__all__ = ["Task", "hookimpl", "__version__"]
__version__ = "0.1.0"
