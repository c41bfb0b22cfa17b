"""What every CLI command shares: the consoles, the per-invocation state (the plugin registry)
and small option parsers. Command modules import this, never the app, so there is no circle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from rich.console import Console

if TYPE_CHECKING:
    from capcast.plugins.registry import Registry

console = Console()
err_console = Console(stderr=True)


@dataclass
class State:
    """Per-invocation state set by the global options."""

    plugins_dir: Optional[Path] = None
    registry: Optional["Registry"] = None


state = State()


def registry() -> "Registry":
    """The plugin registry, loaded once per CLI invocation with the global --plugins-dir;
    each broken plugin is reported once, with its whole error."""
    from capcast.plugins.registry import load_registry

    if state.registry is None:
        state.registry = load_registry(state.plugins_dir)
        for broken in state.registry.broken:
            err_console.print(f"warning: plugin {broken.name} ({broken.source}) is broken: {broken.error}",
                              markup=False, highlight=False, soft_wrap=True)
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
