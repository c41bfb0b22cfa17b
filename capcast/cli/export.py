"""CLI command ``capcast export-samples``: stored runs as lm-eval's per-sample JSONL
(what ``lm-eval --log_samples`` writes); a thin shell over :func:`capcast.api.export_samples`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from capcast.cli.common import check_output_folder, err_console, registry, split_list


def export_samples_command(
    store: Path = typer.Option(Path("capcast-store"), "--store", help="Record store folder written by `capcast eval`."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for OUT/<family>/<checkpoint>/samples_<task>_<date>.jsonl."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Comma-separated tasks (default: every stored task)."),
    families: Optional[str] = typer.Option(None, "--families", help="Comma-separated families (default: all)."),
    checkpoints: Optional[str] = typer.Option(None, "--checkpoints", help="Comma-separated checkpoints (default: all)."),
    include_path: Optional[Path] = typer.Option(None, "--include-path", help="The --include-path the runs were evaluated with."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="The --data-dir the runs were evaluated with (standard benchmarks)."),
) -> None:
    """Write the stored records of `capcast eval` runs in lm-eval's --log_samples JSONL format."""
    from capcast import api

    check_output_folder(output, "-o")
    with api.use_benchmark_data(data_dir):  # for this command only (in-process callers)
        written = api.export_samples(store, output, tasks=split_list(tasks), families=split_list(families),
                                     checkpoints=split_list(checkpoints), registry=registry(), include_path=include_path)
        for run in written:
            err_console.print(f"{run.checkpoint} x {run.task}: {run.lines} samples -> {run.path}", markup=False, highlight=False, soft_wrap=True)
        err_console.print(f"wrote {len(written)} file(s) under {output}", highlight=False)
