"""CLI commands for the reference mini-ladder: `capcast demo` and `capcast reference-family ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from capcast.cli import app, console
from capcast.errors import CapcastError

reference_app = typer.Typer(help="The reference mini-ladder: build (train) it, verify its weights.", no_args_is_help=True)
app.add_typer(reference_app, name="reference-family")


def _csv(value: Optional[str]) -> Optional[list[str]]:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _fmt(value: float, metric: str) -> str:
    if value != value:  # NaN
        return ""
    return f"{value:.4f}" if metric == "pass_rate" and 0 < value < 0.01 else f"{value:.3f}"


@app.command("demo")
def demo_command(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for the store and the plots."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help="Comma-separated reference tasks (default: all)."),
    checkpoints: Optional[str] = typer.Option(None, "--checkpoints", help="Comma-separated checkpoint names (default: all)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Items per task (default: all)."),
    ladder: Optional[Path] = typer.Option(None, "--ladder", help="A built ladder folder (default: the committed one)."),
) -> None:
    """Evaluate the reference mini-ladder on its tasks; print the scores table; plot score vs compute."""
    from capcast.reference.demo import run_demo

    result = run_demo(out, ladder_dir=ladder, tasks=_csv(tasks), checkpoints=_csv(checkpoints), limit=limit, console=console)
    table = Table(title=f"capcast-mini: score per checkpoint (rows by training compute); target = {result.target}")
    table.add_column("checkpoint", no_wrap=True)
    table.add_column("params", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("FLOPs", justify="right")
    tasks_shown = [c for c in result.table.columns if c in result.metrics]
    for task in tasks_shown:
        table.add_column(f"{task.removeprefix('ref_')}\n{result.metrics[task]}", justify="right")
    for _, row in result.table.iterrows():
        name = f"[bold red]{row['model']}[/]" if row["model"] == result.target else row["model"]
        cells = [_fmt(row[t], result.metrics[t]) for t in tasks_shown]
        table.add_row(name, f"{row['params']:,.0f}", f"{row['tokens']:,.0f}", f"{row['flops']:.2e}", *cells)
    # Wide enough for every task column even when stdout is not a terminal (make demo | tee).
    Console(width=max(console.width, 170)).print(table)
    console.print(f"plots: {out / 'plots'} ({len(result.plots)} PNG); store: {result.store}")
    console.print(f"demo took {result.seconds:.0f} s (evaluation {result.eval_seconds:.0f} s)")


@reference_app.command("build")
def build_command(
    out: Path = typer.Option(..., "--out", help="Folder to write the checkpoints, manifest.json and family specs into."),
    jobs: int = typer.Option(2, "--jobs", help="Training processes in parallel (does not change the weights)."),
    check: bool = typer.Option(True, "--check/--no-check", help="Compare the hashes with the committed manifest."),
) -> None:
    """Train the mini-ladder from scratch on CPU (deterministic; about 10-15 minutes on 2 cores)."""
    from capcast.reference.ladder import build_ladder, compare_manifests, load_manifest

    manifest = build_ladder(out, jobs=jobs, log=lambda line: console.print(line, highlight=False))
    console.print(f"built {len(manifest['checkpoints'])} checkpoints into {out} in {manifest['build_seconds']:.0f} s")
    if not check:
        return
    differ = compare_manifests(manifest, load_manifest())
    if differ:
        raise CapcastError(
            f"{len(differ)} of {len(manifest['checkpoints'])} checkpoints differ from the committed hashes "
            f"(first: {differ[0]}); expected with another torch version or CPU kind, see docs/reference-family.md"
        )
    console.print("all weights hashes match the committed manifest: the build reproduced bit for bit")


@reference_app.command("verify")
def verify_command(
    ladder: Optional[Path] = typer.Option(None, "--ladder", help="A built ladder folder (default: the committed one)."),
) -> None:
    """Check every checkpoint's weights against the sha256 in the ladder's manifest.json."""
    from capcast.reference.ladder import check_ladder, load_manifest

    folder = check_ladder(ladder)
    console.print(f"{folder}: all {len(load_manifest(folder)['checkpoints'])} checkpoints match manifest.json")
