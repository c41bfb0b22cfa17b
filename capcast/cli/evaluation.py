"""CLI commands for evaluation: ``capcast eval`` and ``capcast scores``.

Thin shells over :func:`capcast.evaluation.runner.evaluate_family` and
:func:`capcast.evaluation.scores.scores_from_store`. Heavy imports (lm-eval, torch) happen inside the
commands, so ``capcast --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from capcast.cli.common import (
    CACHE_OPTION, CPUS_PER_JOB_OPTION, DATA_DIR_OPTION, EXECUTOR_OPTION, GEN_KWARGS_OPTION, GPUS_PER_JOB_OPTION, INCLUDE_PATH_OPTION,
    MODEL_ARGS_OPTION, NUM_FEWSHOT_OPTION, RAY_ADDRESS_OPTION, RETRIES_OPTION, SLURM_CLUSTER_OPTION, SLURM_FOLDER_OPTION,
    SLURM_PARALLELISM_OPTION, SLURM_PARTITION_OPTION, SLURM_TIME_OPTION, UNSAFE_NO_SANDBOX_OPTION, WORKERS_OPTION, check_output_file,
    console, err_console, make_executor, registry, wide_console,
)
from capcast.errors import CapcastError

FORMATS = ("table", "csv", "parquet")


def _batch_size(value: str) -> int | str:
    if value == "auto" or value.startswith("auto:"):
        return value
    try:
        size = int(value)
    except ValueError:
        raise CapcastError(f"--batch-size {value!r} is not a number; pass a positive integer or 'auto'") from None
    if size < 1:
        raise CapcastError("--batch-size must be at least 1")
    return size



def eval_command(
    family: Path = typer.Argument(..., help="Family spec YAML naming the checkpoints."),
    tasks: str = typer.Option(..., "--tasks", "-t", help="Comma-separated task names (capcast tasks or lm-eval tasks)."),
    store: Path = typer.Option(Path("capcast-store"), "--store", help="Record store folder (created if missing)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate only the first N items of each task."),
    batch_size: str = typer.Option("16", "--batch-size", help="Batch size (an integer, or 'auto' on GPU)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: cuda if available)."),
    backend: str = typer.Option(
        "capcast-hf", "--backend",
        help="lm-eval model backend: capcast-hf (lm-eval's hf, each shared context encoded once; same numbers), hf (lm-eval's own) or vllm.",
    ),
    threads: Optional[int] = typer.Option(
        None, "--threads", min=1, help="CPU threads for torch (default: TORCH_NUM_THREADS/OMP_NUM_THREADS, else 1 for models under 100M)."
    ),
    dtype: Optional[str] = typer.Option(None, "--dtype", help="Model dtype (default: float32 on CPU, the checkpoint's own on GPU)."),
    seed: int = typer.Option(1234, "--seed", help="Seed for sampling (generative tasks)."),
    force: bool = typer.Option(
        False, "--force", help="Re-run stored runs whose settings differ from this command's and replace them (atomically)."
    ),
    data_dir: Optional[Path] = DATA_DIR_OPTION,
    unsafe_no_sandbox: bool = UNSAFE_NO_SANDBOX_OPTION,
    num_fewshot: Optional[int] = NUM_FEWSHOT_OPTION,
    model_args: Optional[str] = MODEL_ARGS_OPTION,
    gen_kwargs: Optional[str] = GEN_KWARGS_OPTION,
    include_path: Optional[Path] = INCLUDE_PATH_OPTION,
    # scale-out (docs/scale-out.md)
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
    """Evaluate every checkpoint of FAMILY on --tasks; per-instance records go to --store.

    Runs already in the store with the same settings (limit, seed, repeats, task hash, model,
    revision, weights) are skipped, so an interrupted run resumes where it stopped. A stored run
    with other settings stops the command with one line, unless --force re-runs and replaces it.
    """
    from capcast import api
    from capcast.api import use_benchmark_data
    from capcast.cli.common import state

    with use_benchmark_data(data_dir, allow_unsafe_code=unsafe_no_sandbox):  # for this command only (in-process callers)
        from capcast.evaluation.threads import request_threads

        request_threads(threads)
        runner = make_executor(executor, workers=workers, retries=retries, ray_address=ray_address, cpus_per_job=cpus_per_job,
                               gpus_per_job=gpus_per_job, slurm_partition=slurm_partition, slurm_time=slurm_time,
                               slurm_parallelism=slurm_parallelism, slurm_folder=slurm_folder, slurm_cluster=slurm_cluster)
        summary = api.evaluate(
            family,
            tasks.split(","),
            store,
            executor=runner,
            cache=cache,
            threads=threads,
            plugins_dir=state.plugins_dir,
            limit=limit,
            batch_size=_batch_size(batch_size),
            device=device,
            registry=registry(),
            backend=backend,
            dtype=dtype,
            seed=seed,
            console=err_console,
            force=force,
            num_fewshot=num_fewshot,
            model_args=model_args,
            gen_kwargs=gen_kwargs,
            include_path=include_path,
        )
        console.print(str(summary), highlight=False, soft_wrap=True)



def scores_command(
    store: Path = typer.Option(Path("capcast-store"), "--store", help="Record store folder written by `capcast eval`."),
    fmt: str = typer.Option("table", "--format", "-f", help="table, csv or parquet."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Write to this file (default: stdout; parquet needs -o)."),
) -> None:
    """Compute the scores table (acc, acc_norm, brier, p_gold, logprob_gold, bpb_gold, pass_rate)."""
    from capcast.evaluation.scores import scores_from_store

    if fmt not in FORMATS:
        raise CapcastError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if not store.is_dir():
        what = "is a file, not a folder" if store.exists() else "does not exist"
        raise CapcastError(f"store {store} {what}; run `capcast eval ... --store {store}` first")
    check_output_file(output)
    if fmt == "parquet" and output is None:
        raise CapcastError("--format parquet needs -o FILE")
    df = scores_from_store(store)
    if fmt == "parquet":
        if output is None:
            raise CapcastError("--format parquet needs -o FILE")
        df.to_parquet(output, index=False)
    elif fmt == "csv":
        if output is None:
            df.to_csv(sys.stdout, index=False)
        else:
            df.to_csv(output, index=False)
    else:
        from rich.table import Table

        table = Table(title=f"scores ({store})")  # names are escaped by the console (control characters)
        for col in df.columns:
            table.add_column(col, justify="right" if df[col].dtype.kind in "fiu" else "left")
        for row in df.itertuples(index=False):
            table.add_row(*("" if _missing(v) else (f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row))
        if output is not None:
            with output.open("w") as fh:
                wide_console(200, file=fh).print(table)
        else:
            # Never squeeze the table below a readable width; piped, it is never cut.
            wide_console(160).print(table)
    if output is not None:
        err_console.print(f"wrote {len(df)} rows to {output}", highlight=False)


def _missing(value) -> bool:
    """None, NaN, NaT or pandas' NA (a checkpoint without the optional step)."""
    import pandas as pd

    return not isinstance(value, (list, tuple)) and bool(pd.isna(value))
