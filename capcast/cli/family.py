"""CLI commands for family specs: ``capcast family init`` (a thin shell over :func:`capcast.api.family_init`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from capcast.cli.common import check_output_file, err_console, wide_console

family_app = typer.Typer(help="Family specs: describe a folder of checkpoints as a family YAML.", no_args_is_help=True)


@family_app.command("init")
def init_command(
    source: Path = typer.Argument(..., help="A folder with one subfolder per checkpoint (or run/checkpoint), or a text file "
                                            "of `MODEL [REVISION]` lines (hub ids or local paths)."),
    tokens_per_step: Optional[float] = typer.Option(None, "--tokens-per-step", help="Training tokens per optimizer step "
                                                    "(batch size x sequence length): tokens = step x N."),
    family: Optional[str] = typer.Option(None, "--family", help="Family name (default: the folder's or file's name)."),
    output: Path = typer.Option(Path("family.yaml"), "--output", "-o", help="Where to write the family YAML."),
    force: bool = typer.Option(False, "--force", help="Overwrite the output file if it exists."),
) -> None:
    """Write a family YAML from checkpoints: params from each config.json, tokens, run and step; FILL IN where unknown."""
    from capcast import api
    from capcast.errors import CapcastError

    check_output_file(output)
    if output.exists() and not force:
        raise CapcastError(f"-o {output} exists; pass --force to overwrite it or choose another file")
    draft = api.family_init(source, output, tokens_per_step=tokens_per_step, family=family)
    table = Table(title=f"family {draft.family}: {len(draft.checkpoints)} checkpoints (params: non-embedding)")
    for col in ("checkpoint", "run", "step", "params", "total params", "tokens", "tokens from"):
        table.add_column(col, justify="right" if col in ("step", "params", "total params", "tokens") else "left")
    for c in draft.checkpoints:
        table.add_row(c.name, c.run, "" if c.step is None else str(c.step), f"{c.params:,}", f"{c.total_params:,}",
                      "FILL IN" if c.tokens is None else f"{c.tokens:,.0f}", c.tokens_from)
    wide_console().print(table)
    if draft.skipped:
        err_console.print(f"skipped (no config.json): {', '.join(draft.skipped)}", markup=False, highlight=False, soft_wrap=True)
    if draft.missing:
        err_console.print(f"wrote {output}; {len(draft.missing)} value(s) to fill in (lines marked FILL IN): "
                          + ", ".join(draft.missing[:5]) + (" ..." if len(draft.missing) > 5 else ""),
                          markup=False, highlight=False, soft_wrap=True)
    else:
        err_console.print(f"wrote {output}; every value was inferred: check it, then `capcast eval {output} --tasks ...`",
                          markup=False, highlight=False, soft_wrap=True)
