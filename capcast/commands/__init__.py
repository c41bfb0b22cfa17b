"""CLI commands, one module per room; each adds its commands to ``capcast.cli.app``.

Keep these thin: parse options, call the library, render the result.
"""

from capcast.commands import evaluation, forecasting, sampling, reference  # noqa: F401
