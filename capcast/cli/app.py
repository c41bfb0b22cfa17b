"""The command line: a thin shell over :mod:`capcast.api`. Parse, call, render; nothing else.

Every user mistake surfaces as a :class:`capcast.errors.CapcastError`, printed as one line on
stderr with exit status 2. Commands live one room per module (:mod:`.evaluation`,
:mod:`.forecasting`, :mod:`.sampling`, :mod:`.reference`, :mod:`.tables`); each imports only
:mod:`.common`, and this module adds them to the app.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from capcast.cli import evaluation, forecasting, reference, sampling, tables
from capcast.cli.common import err_console, state
from capcast.errors import CapcastError

app = typer.Typer(
    name="capcast",
    help="Forecast a large model's benchmark scores from evaluations of its small siblings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
PLUGINS_DIR_OPTION = "--plugins-dir"


@app.callback()
def _global_options(
    plugins_dir: Optional[Path] = typer.Option(
        None, PLUGINS_DIR_OPTION, envvar="CAPCAST_PLUGINS_DIR", help="Folder of *.py plugin files to load (before or after the command)."
    ),
) -> None:
    # A new invocation (e.g. several in one test process) must not reuse another's plugins.
    state.plugins_dir = plugins_dir
    state.registry = None


@app.command("plugins")
def plugins_command() -> None:
    """List plugins, the tasks, laws and readers they register, and any broken plugin with its error."""
    from capcast.plugins.registry import load_registry

    reg = load_registry(state.plugins_dir)
    wide = Console(width=200)
    table = Table(title="capcast plugins")
    for col in ("plugin", "source", "status", "tasks", "laws", "readers", "metrics"):
        # names and sources whole (people grep them); the lists fold
        table.add_column(col, no_wrap=col in ("plugin", "source", "status"), overflow="fold")
    for info in reg.plugins:
        table.add_row(info.name, info.source, "ok", ", ".join(info.tasks), ", ".join(info.laws), ", ".join(info.readers),
                      ", ".join(info.metrics))
    for broken in reg.broken:
        table.add_row(broken.name, broken.source, "[red]broken[/] (below)", "", "", "", "")
    wide.print(table)
    # Errors go below the table, one unwrapped line each, so the whole error can be read and grepped.
    for broken in reg.broken:
        wide.print(f"broken plugin {broken.name} ({broken.source}): {broken.error}", markup=False, highlight=False, soft_wrap=True)
    for (kind, name), owners in reg.conflicts.items():
        wide.print(f"conflict: {kind} {name!r} is registered by {', '.join(owners)}; it cannot be used until one is removed",
                   markup=False, highlight=False, soft_wrap=True)


app.command("eval")(evaluation.eval_command)
app.command("scores")(evaluation.scores_command)
app.command("forecast")(forecasting.forecast_command)
app.command("backtest")(forecasting.backtest_command)
app.command("sample")(sampling.sample_command)
app.command("samples")(sampling.samples_command)
app.command("import")(tables.import_command)
app.command("demo")(reference.demo_command)
app.add_typer(reference.reference_app, name="reference-family")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--plugins-dir DIR`` (or ``--plugins-dir=DIR``) given after the command to the front,
    so the option works before or after the subcommand."""
    out, hoisted, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == PLUGINS_DIR_OPTION and i + 1 < len(argv):
            hoisted += argv[i : i + 2]
            i += 2
            continue
        if arg.startswith(PLUGINS_DIR_OPTION + "="):
            hoisted.append(arg)
        else:
            out.append(arg)
        i += 1
    return hoisted + out


class _Notes(logging.Handler):
    """Collects the library's one-line notes (logger ``capcast``, :func:`capcast.errors.note`) so
    the CLI prints them once each after the command's output; an error prints only its line."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message not in self.messages:
            self.messages.append(message)


def main(argv: Optional[list[str]] = None) -> None:
    logger = logging.getLogger("capcast")
    notes = _Notes()
    logger.addHandler(notes)
    logger.setLevel(logging.INFO)
    args = hoist_global_options(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=args, prog_name="capcast")  # click ends with SystemExit, success included
    except CapcastError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except SystemExit as exc:
        if not exc.code:
            for message in notes.messages:
                err_console.print(f"note: {message}", markup=False, highlight=False, soft_wrap=True)
        raise
    finally:
        logger.removeHandler(notes)
