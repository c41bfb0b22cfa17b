"""CLI command for air-gapped clusters: ``capcast prefetch`` (a thin shell over :func:`capcast.api.prefetch`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from capcast.cli.common import INCLUDE_PATH_OPTION, console, err_console, registry, split_list
from capcast.errors import CapcastError


def prefetch_command(
    family: Path = typer.Argument(..., help="Family spec YAML naming the checkpoints (hub ids with their revisions, or local paths)."),
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma-separated tasks whose datasets to fetch (lm-eval tasks; capcast's are local)."),
    cache: Path = typer.Option(..., "--cache", help="Folder to fill; copy it to the cluster and pass it as --cache to eval, sample and forecast."),
    include_path: Optional[Path] = INCLUDE_PATH_OPTION,
) -> None:
    """On a machine with internet: download every checkpoint, tokenizer and task dataset FAMILY x --tasks needs into --cache."""
    from rich.markup import escape

    from capcast import api
    from capcast.cli.common import state

    names = split_list(tasks)
    if not names:
        raise CapcastError("no tasks given; pass --tasks NAME[,NAME...]")
    items = api.prefetch(family, names, cache, registry=registry(), include_path=include_path, plugins_dir=state.plugins_dir,
                         on_item=lambda item: err_console.print(f"{item.kind} {escape(item.name)}: {item.status}", highlight=False))
    fetched = sum(item.status == "downloaded" for item in items)
    console.print(f"{len(items)} items ready in {cache} ({fetched} downloaded now); on the cluster pass --cache {cache}", highlight=False,
                  soft_wrap=True)
