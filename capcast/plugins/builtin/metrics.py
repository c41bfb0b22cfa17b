"""Built-in metric descriptions (:data:`capcast.metrics.BUILTIN_METRICS`), registered through the
same ``register_metrics`` hook a third-party plugin uses."""

from capcast import hookimpl
from capcast.metrics import BUILTIN_METRICS


@hookimpl
def register_metrics(register):
    for metric in BUILTIN_METRICS:
        register(metric)
