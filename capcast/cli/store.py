"""CLI commands for the record store: ``capcast store verify [--repair]``.

A thin shell over :func:`capcast.api.verify_store` (see docs/store.md).
"""

from __future__ import annotations

from pathlib import Path

import typer

from capcast.cli.common import console, err_console

store_app = typer.Typer(help="Check the record store.", no_args_is_help=True)


@store_app.command("verify")
def verify_command(
    store: Path = typer.Option(Path("capcast-store"), "--store", help="Record store folder written by `capcast eval`."),
    repair: bool = typer.Option(False, "--repair", help="Move damaged or incomplete runs aside (to STORE/damaged/<time>/; never deleted)."),
) -> None:
    """List damaged or incomplete runs (exit 1 if any); --repair moves them aside so the next eval measures them again."""
    from capcast import api

    damage, moved_to = api.verify_store(store, repair=repair)
    for item in damage:
        console.print(f"damaged: {item}", markup=False, highlight=False, soft_wrap=True)
    if not damage:
        console.print(f"store {store}: every run is whole", markup=False, highlight=False)
        return
    if moved_to is not None:
        err_console.print(f"moved {len(damage)} damaged run(s) to {moved_to}; the next `capcast eval` measures them again",
                          markup=False, highlight=False, soft_wrap=True)
        return
    err_console.print(f"{len(damage)} damaged run(s); `capcast store verify --store {store} --repair` moves them aside",
                      markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(1)
