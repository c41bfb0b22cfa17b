"""CLI command for tables: ``capcast import``.

A thin shell over :func:`capcast.tables.readers.import_scores`; the readers come from the plugin
registry (built-ins and third-party ``register_readers`` plugins alike). See ``docs/readers.md``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import typer

from capcast.cli.common import err_console, registry
from capcast.errors import CapcastError

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")


def _check_output(output: Path) -> None:
    suffix = output.suffix.lower()
    if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES:
        raise CapcastError(f"-o {output}: unknown table type {output.suffix or '(no suffix)'!r}; end the name in .csv or .parquet")
    if output.is_dir():
        raise CapcastError(f"-o {output} is a folder; give a file name ending in .csv or .parquet")


def _write(frame, output: Path) -> None:
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.suffix.lower() in PARQUET_SUFFIXES:
            frame.to_parquet(output, index=False)
        else:
            frame.to_csv(output, index=False)
    except OSError as exc:
        raise CapcastError(f"-o {output}: cannot write it ({exc.strerror or type(exc).__name__}); choose a writable path") from None


def import_command(
    source: Path = typer.Argument(..., help="Results to import: a folder (or file) in a format some reader knows."),
    reader: Optional[str] = typer.Option(None, "--reader", help="Reader name (lm-eval-results, pythia, openlm or a plugin's; default: detect)."),
    spec: Optional[Path] = typer.Option(None, "--spec", help="Family spec YAML naming the checkpoints (params, tokens) for lm-eval results."),
    output: Path = typer.Option(..., "-o", "--output", help="Scores table to write: .csv or .parquet."),
) -> None:
    """Make a scores table from external results (lm-eval results*.json, the Pythia or OpenLM suites, a plugin's format)."""
    from capcast.tables.readers import import_scores

    _check_output(output)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = import_scores(source, reader=reader, spec=spec, registry=registry())
    for warning in caught:
        if not issubclass(warning.category, UserWarning):  # library deprecations are not the user's business
            continue
        err_console.print(f"warning: {warning.message}", markup=False, highlight=False, soft_wrap=True)
    _write(frame, output)
    checkpoints = len(frame.drop_duplicates(["family", "run", "model", "tokens"]))
    tasks = frame["task"].nunique()
    err_console.print(f"wrote {len(frame)} rows ({checkpoints} checkpoints, {tasks} tasks) to {output}",
                      markup=False, highlight=False, soft_wrap=True)
