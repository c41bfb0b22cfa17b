"""capcast: forecast a large model's benchmark scores from evaluations of its small siblings.

The public API a plugin author needs lives here: ``Task`` and ``hookimpl`` for tasks, ``Law``,
``LawFit``, ``Prediction``, ``Series``, ``Target`` and ``NotPredictable`` for laws, ``Reader`` for
readers of external results, ``Metric`` to describe a metric (direction, bounds, scale). :mod:`capcast.api` holds one library function per command.
"""

from typing import TYPE_CHECKING

from capcast.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    from capcast.laws.base import Law, LawFit, NotPredictable, Prediction
    from capcast.metrics import Metric
    from capcast.tables.readers.base import Reader
    from capcast.tables.series import Series, Target
    from capcast.tasks.task import Task

__all__ = ["Task", "Metric", "Law", "LawFit", "NotPredictable", "Prediction", "Reader", "Series", "Target", "hookimpl", "__version__"]
__version__ = "0.1.0"

# Imported on first use, so `import capcast` (and every `capcast --help`) pays for neither
# pydantic nor numpy.
_LAZY = {
    "Task": "capcast.tasks.task",
    "Law": "capcast.laws.base",
    "LawFit": "capcast.laws.base",
    "NotPredictable": "capcast.laws.base",
    "Prediction": "capcast.laws.base",
    "Series": "capcast.tables.series",
    "Target": "capcast.tables.series",
    "Reader": "capcast.tables.readers.base",
    "Metric": "capcast.metrics",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'capcast' has no attribute {name!r}")
