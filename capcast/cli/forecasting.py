"""CLI commands for forecasting: ``capcast forecast`` and ``capcast backtest``.

Thin shells over :mod:`capcast.forecasting.forecast` and :mod:`capcast.forecasting.backtest`; heavy imports happen inside
the commands so ``capcast --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from capcast.cli.common import (
    CACHE_OPTION, CPUS_PER_JOB_OPTION, GPUS_PER_JOB_OPTION, RAY_ADDRESS_OPTION, RETRIES_OPTION, SLURM_CLUSTER_OPTION,
    SLURM_FOLDER_OPTION, SLURM_PARALLELISM_OPTION, SLURM_PARTITION_OPTION, SLURM_TIME_OPTION, WORKERS_OPTION, make_executor,
    check_output_file, check_output_folder, console, err_console, pct, progress_bars, registry, split_list, wide_console,
)
from capcast.errors import CapcastError
from capcast.plugins.builtin.laws import BUILTIN_LAWS

FORMATS = ("table", "json", "csv")
# --method's help names every built-in law from the built-in plugin's own table (light: its laws are
# registered by reference), so that a new built-in is listed without anyone editing this line.
METHOD_HELP = ("Law: " + ", ".join(law.name for law in BUILTIN_LAWS) +
               ", passuntil_instance (--samples), cod (per-instance records: --samples or FAMILY.yaml's store) "
               "or a plugin's (`capcast plugins` lists them).")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise CapcastError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def forecast_command(
    family: Optional[Path] = typer.Argument(None, help="Family spec YAML: evaluate what is missing, then forecast its target."),
    scores: Optional[Path] = typer.Option(None, "--scores", help="Scores table (CSV or Parquet) instead of a family."),
    samples: Optional[Path] = typer.Option(None, "--samples", help="Samples table (per-instance n_samples, n_correct) instead of a family: forecasts pass_rate."),
    store: Optional[Path] = typer.Option(None, "--store", help="Record store folder for FAMILY.yaml (default capcast-store)."),
    target: Optional[str] = typer.Option(None, "--target", help="Model in the table to forecast (never used for fitting)."),
    target_params: Optional[float] = typer.Option(None, "--target-params", help="Target parameter count."),
    target_tokens: Optional[float] = typer.Option(None, "--target-tokens", help="Target training tokens."),
    target_flops: Optional[float] = typer.Option(None, "--target-flops", help="Target training compute (FLOPs)."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Comma-separated tasks (default: every task with --metric, or every task without it)."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Score metric to forecast (default: each task's own, e.g. acc_norm for HellaSwag, pass_rate for generative tasks; noted on stderr)."),
    method: str = typer.Option("auto", "--method", help=METHOD_HELP),
    interval: float = typer.Option(0.9, "--interval", help="Prediction interval level."),
    max_step: Optional[int] = typer.Option(None, "--max-step", help="Fit only checkpoints up to this training step."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write one PNG per task into this folder."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="With FAMILY.yaml: evaluate only N items per task."),
    device: Optional[str] = typer.Option(None, "--device", help="With FAMILY.yaml: cpu or cuda."),
    interpolate: bool = typer.Option(False, "--interpolate", help="Also fit checkpoints at or above the target's compute (interpolation, not a forecast)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the table, JSON or CSV to this file (default: stdout)."),
    # scale-out of FAMILY.yaml's evaluation (docs/scale-out.md)
    executor: Optional[str] = typer.Option(None, "--executor", help="With FAMILY.yaml: where its checkpoint x task jobs run: local, ray or slurm (docs/scale-out.md)."),
    workers: Optional[int] = WORKERS_OPTION,
    retries: Optional[int] = RETRIES_OPTION,
    ray_address: Optional[str] = RAY_ADDRESS_OPTION,
    cpus_per_job: Optional[float] = CPUS_PER_JOB_OPTION,
    gpus_per_job: Optional[float] = GPUS_PER_JOB_OPTION,
    slurm_partition: Optional[str] = SLURM_PARTITION_OPTION,
    slurm_time: Optional[int] = SLURM_TIME_OPTION,
    slurm_parallelism: Optional[int] = SLURM_PARALLELISM_OPTION,
    slurm_folder: Optional[Path] = SLURM_FOLDER_OPTION,
    slurm_cluster: Optional[str] = SLURM_CLUSTER_OPTION,
    cache: Optional[Path] = CACHE_OPTION,
) -> None:
    """Forecast the target's scores, with prediction intervals, from the smaller checkpoints."""
    from capcast import api
    from capcast.forecasting.forecast import rows_frame

    _check_format(fmt)
    scale_out = dict(workers=workers, retries=retries, ray_address=ray_address, cpus_per_job=cpus_per_job, gpus_per_job=gpus_per_job,
                     slurm_partition=slurm_partition, slurm_time=slurm_time, slurm_parallelism=slurm_parallelism, slurm_folder=slurm_folder,
                     slurm_cluster=slurm_cluster)
    if executor is None and any(v is not None for v in scale_out.values()):
        executor = "local"  # the executor's options alone choose the default executor (and are checked against it)
    runner = make_executor(executor, **scale_out) if executor is not None else None
    if executor is not None and runner is None:
        from capcast.executors.local import LocalExecutor

        runner = LocalExecutor(workers=1)  # --executor local alone: one worker process (a FAMILY.yaml is what it applies to)
    check_output_file(output)  # before any work, like `capcast scores -o`
    check_output_folder(plot, "--plot")  # before any work: a file there would fail after the forecasts
    with progress_bars():
        results = api.forecast(
            family, scores=scores, samples=samples, store=store, target=target, target_params=target_params,
            target_tokens=target_tokens, target_flops=target_flops, tasks=split_list(tasks), metric=metric, method=method,
            interval=interval, max_step=max_step, limit=limit, device=device, registry=registry(), console=err_console,
            interpolate=interpolate, executor=runner, cache=cache,
        )
    rows = [r.row for r in results]
    if plot is not None:
        from capcast.forecasting.plots import plot_forecasts

        written = plot_forecasts(results, plot, interval)
        err_console.print(f"wrote {len(written)} plot(s) to {plot}")
    with _output(output) as out:
        if fmt == "json":
            print(json.dumps({"interval": interval, "rows": [r.to_dict() for r in rows]}, indent=2), file=out)
        elif fmt == "csv":
            rows_frame(rows).to_csv(out, index=False)
        else:
            _render_forecast_table(rows, interval, None if output is None else out)
    if output is not None:
        err_console.print(f"wrote {len(rows)} forecast rows to {output}", highlight=False)


def top_level_clauses(text: str) -> list[str]:
    """``text`` split at the "; " that no parenthesis encloses (a reason's clauses)."""
    clauses, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and text.startswith("; ", i):
            clauses.append(text[start:i])
            start = i + 2
    clauses.append(text[start:])
    return [c for c in clauses if c]


@contextmanager
def _output(output: Optional[Path]):
    """stdout, or the -o file (written whole, then closed)."""
    if output is None:
        yield sys.stdout
        return
    with Path(output).open("w", encoding="utf-8") as fh:
        yield fh


def _render_forecast_table(rows, interval: float, file=None) -> None:
    from capcast.metrics import find_metric

    title = f"forecast of {rows[0].model or 'target'} ({int(interval * 100)}% intervals; [0, 1] scores in points)" if rows else "forecast"
    table = Table(title=title)
    for col in ("family", "task", "metric", "law", "forecast", "lower", "upper", "actual", "status"):
        table.add_column(col, justify="right" if col in ("forecast", "lower", "upper", "actual") else "left")
    for r in rows:
        metric = find_metric(r.metric)
        in_points = metric is None or (metric.lower == 0 and metric.upper == 1)
        show = pct if in_points else (lambda v: "" if v is None else f"{v:.4g}")  # losses in their own units
        table.add_row(r.family or "", r.task, r.metric, r.law, show(r.forecast), show(r.lower), show(r.upper), show(r.actual), r.status)
    wide = wide_console(150, file)
    wide.print(table)
    # why: the reason behind every answer, a number or not; a part several reasons share (auto's
    # "ladder skipped (no loss metric ...)" on a table without losses) once, with the tasks it is for
    reasons = [(f"{r.family or ''} {r.task}".strip(), top_level_clauses(r.reason)) for r in rows if r.reason]
    rows_of: dict[str, list[str]] = {}  # each clause -> the rows whose reason has it, in the rows' order
    for name, clauses in reasons:
        for c in dict.fromkeys(clauses):
            rows_of.setdefault(c, []).append(name)
    for name, clauses in reasons:
        own = [c for c in clauses if len(rows_of[c]) < 2]
        if own:
            wide.print(f"{name}: {'; '.join(own)}", highlight=False, markup=False)
    # a clause several rows share, once, with the rows it belongs to
    by_rows: dict[tuple, list[str]] = {}
    for clause, names in rows_of.items():
        if len(names) >= 2:
            by_rows.setdefault(tuple(dict.fromkeys(names)), []).append(clause)
    for names, clauses in by_rows.items():
        who = ("every task" if len(names) == len(rows) else ", ".join(names) if len(names) <= 8 else
               f"{len(names)} tasks ({', '.join(names[:4])}, ...)")
        wide.print(f"{who}: {'; '.join(clauses)}", highlight=False, markup=False)
    # what each fit saw: the checkpoints given to the law (one line per distinct set)
    for fitted in dict.fromkeys((r.family, r.fitted) for r in rows if r.fitted):
        family, names = fitted
        shown = ", ".join(names) if len(names) <= 12 else ", ".join(names[:6]) + f", ... ({len(names) - 9} more), " + ", ".join(names[-3:])
        wide.print(f"{family or ''} fitted on {len(names)} checkpoints: {shown}".strip(), highlight=False, markup=False)



def backtest_command(
    scores: Optional[Path] = typer.Option(None, "--scores", help="Scores table (CSV or Parquet) with the large models included."),
    samples: Optional[Path] = typer.Option(None, "--samples", help="Samples table instead of --scores (forecasts pass_rate; methods passuntil, passuntil_instance, ...)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Record store instead of --scores: its scores, and per-choice / per-sample records for cod."),
    holdout_largest: int = typer.Option(1, "--holdout-largest", help="Hold out the K largest model sizes of each family."),
    methods: str = typer.Option("auto", "--methods", "--method", help="Comma-separated laws to compare (as forecast --method; cod needs --samples or --store)."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Comma-separated tasks (default: every task with --metric, or every task without it)."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Score metric to forecast (default: each task's own, e.g. acc_norm for HellaSwag, pass_rate for generative tasks; noted on stderr)."),
    interval: float = typer.Option(0.9, "--interval", help="Prediction interval level."),
    max_step: Optional[int] = typer.Option(None, "--max-step", help="Fit only checkpoints up to this training step."),
    all_steps: bool = typer.Option(False, "--all-steps", help="Forecast every checkpoint of the held-out models."),
    families: Optional[str] = typer.Option(None, "--families", help="Comma-separated families (default: all)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="Processes to spread the families of a --scores or --store backtest over (default: the available cores; 1: this process). The rows are the same."),
    schedules: Optional[Path] = typer.Option(None, "--schedules", help="A family spec (YAML) whose schedules: the schedule-aware laws (ladder-schedule) use."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv (csv: the rows)."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write the table, JSON or CSV to this file (default: stdout)."),
) -> None:
    """Hide each family's largest models, forecast them from the rest, and score every method."""
    from capcast import api

    _check_format(fmt)
    check_output_file(output)
    with progress_bars():
        report = api.backtest(
            scores=scores, samples=samples, store=store, holdout_largest=holdout_largest, methods=split_list(methods),
            tasks=split_list(tasks), metric=metric, interval=interval, max_step=max_step, all_steps=all_steps,
            families=split_list(families), registry=registry(), console=err_console, workers=workers, schedules_from=schedules,
        )
    with _output(output) as out:
        _render_backtest(report, fmt, holdout_largest, interval, out, output is not None)
    if output is not None:
        err_console.print(f"wrote the backtest ({len(report.rows)} rows) to {output}", highlight=False)


def _render_backtest(report, fmt: str, holdout_largest: int, interval: float, out, to_file: bool) -> None:
    if fmt == "json":
        print(json.dumps(report.to_dict(), indent=2), file=out)
        return
    if fmt == "csv":
        report.frame().to_csv(out, index=False)
        return
    table = Table(title=f"backtest: {holdout_largest} largest size(s) held out, {int(interval * 100)}% intervals")
    for col in ("method", "MAE (pts)", "bias", "max error", "coverage", "median width", "forecasts", "not predictable", "failed"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, s in report.methods.items():
        table.add_row(name, *_score_cells(s), str(s.n), str(s.unpredictable), str(s.failed))
    shown = wide_console(150, out) if to_file else console
    shown.print(table)
    for name, s in report.methods.items():  # the counts say how many; this says why
        if s.refusals:
            shown.print(f"{name} gave no number for {sum(s.refusals.values())}: "
                        + "; ".join(f"{kind} ({n})" for kind, n in s.refusals.items()), highlight=False, soft_wrap=True)
    if len(report.methods) < 2:
        return
    # Methods compared on the same forecasts: on its own answered set, a method that abstains on
    # the hard forecasts looks better than it is.
    keys, common = report.common_set()
    first = next(iter(report.methods))
    versus = report.against_first()
    table = Table(title=f"common set: the {len(keys)} forecasts every method answered")
    for col in ("method", "MAE (pts)", "bias", "max error", "coverage", "median width", f"vs {first} (pts, ± s.e. over fits)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for name, s in common.items():
        diff = versus.get(name)
        table.add_row(name, *_score_cells(s), "" if diff is None else
                      f"{diff.mean:+.2f}" + ("" if diff.standard_error is None else f" ± {diff.standard_error:.2f}") + f" ({diff.fits} fits)")
    shown.print(table)


def _score_cells(s) -> tuple[str, str, str, str, str]:
    """MAE, bias (mean signed error), max error, coverage and median width of a
    :class:`capcast.forecasting.backtest.MethodScore`."""
    return ("" if s.mae is None else f"{s.mae:.2f}", "" if s.bias is None else f"{s.bias:+.2f}",
            "" if s.max_error is None else f"{s.max_error:.2f}",
            "" if s.coverage is None else f"{100 * s.coverage:.0f}%", "" if s.median_width is None else f"{s.median_width:.1f}")
