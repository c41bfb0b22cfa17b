"""CLI commands for PassUntil sampling: ``capcast sample`` and ``capcast samples``.

Thin shells over :func:`capcast.passuntil.sampler.sample_family` and
:func:`capcast.passuntil.rounds.export_samples_table`; heavy imports stay inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from capcast.cli.common import (
    CACHE_OPTION, CPUS_PER_JOB_OPTION, EXECUTOR_OPTION, GPUS_PER_JOB_OPTION, RAY_ADDRESS_OPTION, RETRIES_OPTION, SLURM_CLUSTER_OPTION,
    SLURM_FOLDER_OPTION, SLURM_PARALLELISM_OPTION, SLURM_PARTITION_OPTION, SLURM_TIME_OPTION, WORKERS_OPTION, make_executor,
    DATA_DIR_OPTION, GEN_KWARGS_OPTION, INCLUDE_PATH_OPTION, MODEL_ARGS_OPTION, NUM_FEWSHOT_OPTION, UNSAFE_NO_SANDBOX_OPTION,
    check_output_file, console, err_console, registry,
)
from capcast.errors import CapcastError



def sample_command(
    family: Path = typer.Argument(..., help="Family spec YAML naming the checkpoints."),
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma-separated generative task names (with a checker)."),
    successes: int = typer.Option(3, "--successes", "-r", help="Stop sampling an instance after this many passing samples."),
    max_samples: int = typer.Option(10_000, "--max-samples-per-instance", help="Cap on samples per instance (unsolved below it)."),
    total_budget: Optional[int] = typer.Option(
        None, "--total-budget",
        help="Cap on samples per checkpoint and task; when it binds, the last round is spread evenly over the open instances.",
    ),
    batch: int = typer.Option(8, "--batch", help="Samples per instance in the first round; each round doubles it."),
    seed: int = typer.Option(1234, "--seed", help="Base seed; round j uses seed + 7919 j."),
    store: Path = typer.Option(Path("capcast-store"), "--store", help="Record store folder (created if missing)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Sample only the first N instances of each task."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Model batch size (generations per forward batch)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda if available)."),
    backend: str = typer.Option("hf", "--backend", help="lm-eval model backend: hf, capcast-hf, or vllm on a GPU."),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="CPU threads for torch (default: TORCH_NUM_THREADS/OMP_NUM_THREADS, else 1 for models under 100M)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Start stored runs whose settings differ from this command's afresh (their rounds are deleted)."
    ),
    data_dir: Optional[Path] = DATA_DIR_OPTION,
    unsafe_no_sandbox: bool = UNSAFE_NO_SANDBOX_OPTION,
    num_fewshot: Optional[int] = NUM_FEWSHOT_OPTION,
    model_args: Optional[str] = MODEL_ARGS_OPTION,
    gen_kwargs: Optional[str] = GEN_KWARGS_OPTION,
    include_path: Optional[Path] = INCLUDE_PATH_OPTION,
    # scale-out (docs/scale-out.md): one job per (checkpoint, task) PassUntil run
    executor: str = EXECUTOR_OPTION,
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
    """Sample each instance until it passes --successes times (PassUntil), for every checkpoint.

    Only still-unsolved instances are sent each round; every sample is stored; an interrupted run
    resumes from the rounds already in --store when its settings match (raising
    --max-samples-per-instance or --total-budget continues it). Other differences stop the command
    with one line, unless --force starts those runs afresh.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from capcast import api
    from capcast.api import use_benchmark_data
    from capcast.cli.common import state
    from capcast.evaluation.threads import request_threads
    from capcast.passuntil.runner import SamplerConfig

    with use_benchmark_data(data_dir, allow_unsafe_code=unsafe_no_sandbox):  # for this command only (in-process callers)
        request_threads(threads)

        runner = make_executor(executor, workers=workers, retries=retries, ray_address=ray_address, cpus_per_job=cpus_per_job,
                               gpus_per_job=gpus_per_job, slurm_partition=slurm_partition, slurm_time=slurm_time,
                               slurm_parallelism=slurm_parallelism, slurm_folder=slurm_folder, slurm_cluster=slurm_cluster)
        config = SamplerConfig(successes=successes, max_samples_per_instance=max_samples, total_budget=total_budget, first_batch=batch)
        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("solved {task.fields[solved]} / unsolved {task.fields[unsolved]}"),
            TextColumn("samples {task.fields[spent]:,}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,  # the table below replaces it; an error leaves only its own line
        )
        jobs: dict[str, int] = {}

        def progress(name: str, report) -> None:
            total = report.solved + report.unresolved
            if name not in jobs:
                jobs[name] = bar.add_task(name, total=total, solved=0, unsolved=total, spent=0)
            bar.update(jobs[name], completed=report.solved, solved=report.solved, unsolved=report.unresolved, spent=report.samples_spent)

        with bar:
            summaries = api.sample(
                family, tasks.split(","), store, config, executor=runner, cache=cache, threads=threads, plugins_dir=state.plugins_dir,
                seed=seed, batch_size=batch_size, device=device, backend=backend,
                limit=limit, registry=registry(), on_progress=progress, force=force,
                num_fewshot=num_fewshot, model_args=model_args, gen_kwargs=gen_kwargs, include_path=include_path,
                log=lambda line: err_console.print(line, markup=False, highlight=False, soft_wrap=True),
            )
    from rich.table import Table

    table = Table(title=f"PassUntil (r = {successes}, cap {max_samples:,} per instance)")
    for col in ("checkpoint", "task", "solved", "samples", "pass rate", "90% interval", "rounds", "checker errors"):
        table.add_column(col, justify="left" if col in ("checkpoint", "task") else "right")
    for s in summaries:
        table.add_row(s.checkpoint, s.task, f"{s.solved}/{s.instances}", f"{s.samples:,}", f"{s.pass_rate:.3g}",
                      f"{s.lower:.3g} to {s.upper:.3g}", str(s.rounds), f"{s.checker_errors:,}")
    console.print(table)
    for s in summaries:
        if s.checker_errors:
            err_console.print(f"warning: {s.checkpoint} x {s.task}: the checker raised on {s.checker_errors:,} samples "
                              f"(counted as failures); first: {s.checker_error}", markup=False, highlight=False, soft_wrap=True)



def samples_command(
    store: Path = typer.Option(Path("capcast-store"), "--store", help="Record store written by capcast sample / eval."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write CSV or Parquet (by suffix); default: CSV to stdout."),
) -> None:
    """Export the per-instance samples table (family, model, ..., doc_id, n_samples, n_correct)."""
    from capcast.passuntil.rounds import export_samples_table
    from capcast.tables.samples import write_samples

    if not store.is_dir():
        raise CapcastError(f"store {store} does not exist; run `capcast sample ... --store {store}` first")
    check_output_file(output)
    frame = export_samples_table(store)
    if output is None:
        frame.to_csv(sys.stdout, index=False)
    else:
        write_samples(frame, output)
        err_console.print(f"wrote {len(frame)} rows to {output}", highlight=False)
