"""``capcast demo``: evaluate the committed mini-ladder on its tasks, tabulate, plot.

The library call behind the CLI command; later capabilities (forecast, PassUntil, COD,
leaderboard) extend :func:`run_demo` with their own steps on the same store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capcast.reference.ladder import FAMILY_NAME, check_ladder, load_manifest
from capcast.reference.plots import main_metric_rows, plot_all
from capcast.reference.tasks import reference_tasks

DEFAULT_OUT = Path("demo-out")


@dataclass
class DemoResult:
    out_dir: Path
    ladder_dir: Path
    store: Path
    scores: pd.DataFrame  # long-format scores table of the ladder
    table: pd.DataFrame  # one row per checkpoint, one column per task (its main metric)
    metrics: dict[str, str]  # task -> metric shown
    plots: list[Path] = field(default_factory=list)
    target: str | None = None
    eval_seconds: float = 0.0
    seconds: float = 0.0


def wide_table(rows: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """Checkpoints (by compute) x tasks, from :func:`main_metric_rows` output."""
    table = rows.pivot_table(index=["model", "params", "tokens", "flops"], columns="task", values="value", aggfunc="first")
    table = table.reset_index().sort_values(["flops", "model"]).reset_index(drop=True)
    return table[["model", "params", "tokens", "flops"] + [t for t in tasks if t in table.columns]]


def run_demo(
    out_dir: str | Path = DEFAULT_OUT,
    ladder_dir: str | Path | None = None,
    tasks: list[str] | None = None,
    checkpoints: list[str] | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    console=None,
    progress: bool = True,
) -> DemoResult:
    """Verify the ladder's weights, evaluate it into ``out_dir/store``, plot into ``out_dir/plots``.

    ``tasks``, ``checkpoints`` and ``limit`` shrink the run (tests use the smallest members).
    Already stored (checkpoint, task) runs are reused, so a second demo only re-tabulates.
    """
    from capcast.evaluate import evaluate_family
    from capcast.scores import scores_from_store

    started = time.perf_counter()
    out = Path(out_dir)
    ladder = check_ladder(ladder_dir)
    manifest = load_manifest(ladder)
    all_tasks = {t.name: t for t in reference_tasks()}
    names = tasks or list(all_tasks)
    store = out / "store"
    evaluate_family(
        ladder / "ladder.yaml",
        names,
        store_dir=store,
        limit=limit,
        batch_size=batch_size,
        device="cpu",
        checkpoints=checkpoints,
        console=console,
        progress=progress,
    )
    eval_seconds = time.perf_counter() - started
    scores = scores_from_store(store)
    scores = scores[(scores["family"] == manifest["family"]) & scores["task"].isin(names)]
    if checkpoints:
        scores = scores[scores["model"].isin(checkpoints)]
    metrics = {n: (all_tasks[n].default_metric if n in all_tasks else "acc") for n in names}
    rows = main_metric_rows(scores, metrics)
    target = _target_name(ladder)
    plots = plot_all(rows, metrics, out / "plots", target=target)
    return DemoResult(
        out_dir=out,
        ladder_dir=ladder,
        store=store,
        scores=scores.reset_index(drop=True),
        table=wide_table(rows, names),
        metrics=metrics,
        plots=plots,
        target=target,
        eval_seconds=eval_seconds,
        seconds=time.perf_counter() - started,
    )


def _target_name(ladder: Path) -> str | None:
    from capcast.family import load_family

    family = load_family(ladder / "family.yaml")
    return family.target.name if family.target else None


__all__ = ["DemoResult", "run_demo", "wide_table", "FAMILY_NAME"]
