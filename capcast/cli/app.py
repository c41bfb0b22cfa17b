"""The command line: a thin shell over :mod:`capcast.api`. Parse, call, render; nothing else.

Every user mistake surfaces as a :class:`capcast.errors.CapcastError`, printed as one line on
stderr with exit status 2. Commands live one room per module (:mod:`.evaluation`,
:mod:`.forecasting`, :mod:`.sampling`, :mod:`.reference`, :mod:`.tables`); each imports only
:mod:`.common`, and this module adds them to the app.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from capcast.cli import evaluation, forecasting, reference, sampling, store, tables
from capcast.cli.leaderboard import leaderboard_app
from capcast.cli.family import family_app
from capcast.cli import cod
from capcast.cli import export
from capcast.cli import prefetch
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
DEBUG_OPTION = "--debug"


def _print_version(value: bool) -> None:
    """``capcast --version``, like ``lm-eval --version``: an eager option, so no command is needed."""
    if not value:
        return
    import importlib.metadata

    def installed(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    typer.echo(f"capcast {installed('capcast')} (lm-eval {installed('lm_eval')})")
    raise typer.Exit()


@app.callback()
def _global_options(
    plugins_dir: Optional[Path] = typer.Option(
        None, PLUGINS_DIR_OPTION, envvar="CAPCAST_PLUGINS_DIR", help="Folder of *.py plugin files to load (before or after the command)."
    ),
    debug: bool = typer.Option(False, DEBUG_OPTION, envvar="CAPCAST_DEBUG", help="Show the traceback of an unexpected error (a capcast bug)."),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_print_version, help="Print capcast's and lm-eval's versions and exit."
    ),
) -> None:
    # A new invocation (e.g. several in one test process) must not reuse another's plugins.
    state.plugins_dir = plugins_dir
    state.registry = None
    state.debug = debug


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
app.command("export-samples")(export.export_samples_command)
app.command("import")(tables.import_command)
app.command("demo")(reference.demo_command)
app.command("prefetch")(prefetch.prefetch_command)
app.add_typer(reference.reference_app, name="reference-family")
app.add_typer(leaderboard_app, name="leaderboard")
app.add_typer(store.store_app, name="store")
app.add_typer(cod.cluster_app, name="cluster")
app.add_typer(family_app, name="family")


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move ``--plugins-dir DIR`` (or ``--plugins-dir=DIR``) and ``--debug`` given after the command
    to the front, so the global options work before or after the subcommand."""
    out, hoisted, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == PLUGINS_DIR_OPTION and i + 1 < len(argv):
            hoisted += argv[i : i + 2]
            i += 2
            continue
        if arg == DEBUG_OPTION or arg.startswith(PLUGINS_DIR_OPTION + "="):
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
    state.debug = DEBUG_OPTION in args or bool(os.environ.get("CAPCAST_DEBUG"))
    try:
        try:
            code = app(args=args, prog_name="capcast", standalone_mode=False)
        except BaseException as exc:
            code = _one_line_error(exc)  # re-raises what it does not handle
        if code == 130:  # typer turns Ctrl-C into exit status 130
            _error("interrupted; what was stored is kept: run the same command again to resume")
        if not code:
            for message in notes.messages:
                err_console.print(f"note: {message}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(code if isinstance(code, int) else 0)
    finally:
        logger.removeHandler(notes)


def _error(line: str) -> None:
    err_console.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)


def _one_line_error(exc: BaseException) -> int:
    """Print what went wrong as one line on stderr and return the exit status: 2 for the user's
    mistakes (options, inputs, disk full, read-only or missing paths), 130 for Ctrl-C, 1 with a
    pointer to ``--debug`` for anything else (a capcast bug); ``--debug`` re-raises those."""
    from typer import Abort
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    from capcast.errors import describe, os_error_line

    if isinstance(exc, NoArgsIsHelpError):
        exc.show()
        return exc.exit_code
    if isinstance(exc, UsageError):
        command = exc.ctx.command_path if exc.ctx is not None else "capcast"
        _error(f"{exc.format_message()}; see `{command} --help`".replace("\n", " "))
        return 2
    if isinstance(exc, CapcastError):
        _error(str(exc))
        return exc.exit_code
    if isinstance(exc, (Abort, KeyboardInterrupt)):
        _error("interrupted; what was stored is kept: run the same command again to resume")
        return 130
    if isinstance(exc, (SystemExit, GeneratorExit)) or state.debug or not isinstance(exc, Exception):
        raise exc
    if isinstance(exc, OSError):
        _error(os_error_line(exc))
        return 2
    _error(f"unexpected {describe(exc)}; this is a capcast bug: re-run with --debug for the traceback and report it")
    return 1
