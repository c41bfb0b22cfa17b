"""The command line: a thin shell over the library. Parse, call, render; nothing else.

Every user mistake surfaces as a :class:`capcast.errors.CapcastError`, printed as one line on
stderr with exit status 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.table import Table

from capcast.errors import CapcastError

if TYPE_CHECKING:
    from capcast.plugins import Registry

app = typer.Typer(
    name="capcast",
    help="Forecast a large model's benchmark scores from evaluations of its small siblings.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


@dataclass
class State:
    """Per-invocation state set by the global options."""

    plugins_dir: Optional[Path] = None
    registry: Optional["Registry"] = None


state = State()


def registry() -> "Registry":
    """The plugin registry, loaded once per CLI invocation with the global --plugins-dir."""
    from capcast.plugins import load_registry

    if state.registry is None:
        state.registry = load_registry(state.plugins_dir)
        for broken in state.registry.broken:
            err_console.print(f"[yellow]warning:[/] plugin {broken.name} ({broken.source}) is broken: {broken.error}")
    return state.registry


def split_list(value: Optional[str]) -> Optional[list[str]]:
    """A comma-separated option as a list of names (blanks dropped); None when absent or empty."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def pct(x: Optional[float]) -> str:
    """A score as points (x 100, one decimal); empty when missing."""
    return "" if x is None else f"{100 * x:.1f}"


@app.callback()
def _global_options(
    plugins_dir: Optional[Path] = typer.Option(
        None, "--plugins-dir", envvar="CAPCAST_PLUGINS_DIR", help="Folder of *.py plugin files to load."
    ),
) -> None:
    # A new invocation (e.g. several in one test process) must not reuse another's plugins.
    state.plugins_dir = plugins_dir
    state.registry = None


@app.command("plugins")
def plugins_command() -> None:
    """List plugins, the tasks and laws they register, and any broken plugin with its error."""
    from capcast.plugins import load_registry

    reg = load_registry(state.plugins_dir)
    table = Table(title="capcast plugins")
    for col in ("plugin", "source", "status", "tasks", "laws"):
        table.add_column(col)
    for info in reg.plugins:
        table.add_row(info.name, info.source, "ok", ", ".join(info.tasks), ", ".join(info.laws))
    for broken in reg.broken:
        table.add_row(broken.name, broken.source, f"[red]broken[/]: {broken.error}", "", "")
    Console(width=200).print(table)


# Commands of the other rooms register themselves on `app` when their modules are imported.
from capcast import commands  # noqa: E402,F401


def main(argv: Optional[list[str]] = None) -> None:
    try:
        app(args=argv, prog_name="capcast")
    except CapcastError as exc:
        err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
