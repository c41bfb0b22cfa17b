"""From ``capcast eval --executor ...`` to jobs and back: choose the executor, hand it the planned grid,
and count as evaluated only the jobs whose parts validate.

:func:`evaluate_grid` is :func:`capcast.evaluation.runner.evaluate_family` with a ``dispatch``:
the runner takes the store's writer lock, plans the grid (what is stored with the same settings is
skipped; other settings stop the command unless ``--force``) and gives what is left to
:func:`dispatch_grid`, which runs it through the executor while the driver holds the lock.
"""

from __future__ import annotations

import functools
import time
from typing import Iterable

from capcast.errors import CapcastError
from capcast.executors.base import Executor, failure_line, job_done, plan_grid

EXECUTORS = ("local", "ray", "slurm")


# The options each executor honours; any other given option is refused in one line, never ignored.
APPLIES = {
    "local": ("workers", "retries", "gpus_per_job"),
    "ray": ("retries", "ray_address", "cpus_per_job", "gpus_per_job"),
    "slurm": ("retries", "cpus_per_job", "gpus_per_job", "slurm_partition", "slurm_time", "slurm_parallelism", "slurm_folder",
              "slurm_cluster"),
}


def check_options(name: str, given: dict) -> None:
    """One line for an option the chosen executor does not use (``--ray-address`` with ``--executor local``)."""
    if name not in APPLIES:
        raise CapcastError(f"--executor {name!r} is not one of {', '.join(EXECUTORS)}")
    stray = [key for key, value in given.items() if value is not None and key not in APPLIES[name]]
    if stray:
        flags = ", ".join("--" + key.replace("_", "-") for key in stray)
        where = sorted({other for key in stray for other, keys in APPLIES.items() if key in keys})
        raise CapcastError(f"{flags} {'does' if len(stray) == 1 else 'do'} not apply to --executor {name} "
                           f"(only to --executor {' or '.join(where)}); drop {'it' if len(stray) == 1 else 'them'} or change --executor")


def make_executor(name: str = "local", *, workers: int | None = None, retries: int | None = None, ray_address: str | None = None,
                  cpus_per_job: float | None = None, gpus_per_job: float | None = None, slurm_partition: str | None = None,
                  slurm_time: int | None = None, slurm_parallelism: int | None = None, slurm_folder=None,
                  slurm_cluster: str | None = None, in_workers: bool = False) -> Executor | None:
    """The executor for ``--executor NAME`` and its options; None for today's in-process loop
    (``local`` with one worker), unless ``in_workers`` (the jobs need an environment of their own,
    e.g. ``--cache``: then one worker process). Options the executor does not use are refused."""
    check_options(name, dict(workers=workers, retries=retries, ray_address=ray_address, cpus_per_job=cpus_per_job, gpus_per_job=gpus_per_job,
                             slurm_partition=slurm_partition, slurm_time=slurm_time, slurm_parallelism=slurm_parallelism,
                             slurm_folder=slurm_folder, slurm_cluster=slurm_cluster))
    workers = 1 if workers is None else workers
    if name == "local":
        if workers <= 1 and not retries and not in_workers and gpus_per_job is None:
            return None
        from capcast.executors.local import LocalExecutor

        return LocalExecutor(workers=workers, retries=retries or 0, gpus_per_worker=1 if gpus_per_job is None else gpus_per_job)
    if name == "ray":
        from capcast.executors.ray import RayExecutor, _import_ray

        _import_ray()  # one line now, before the grid is planned, if Ray is not installed
        options = {k: v for k, v in (("retries", retries), ("cpus_per_job", cpus_per_job), ("gpus_per_job", gpus_per_job)) if v is not None}
        return RayExecutor(address=ray_address, **options)
    if name == "slurm":
        from capcast.executors.slurm import SlurmExecutor, _import_submitit

        _import_submitit()
        options = {k: v for k, v in (("retries", retries), ("partition", slurm_partition), ("time_min", slurm_time),
                                      ("parallelism", slurm_parallelism), ("folder", slurm_folder), ("cluster", slurm_cluster),
                                      ("cpus_per_job", None if cpus_per_job is None else int(cpus_per_job)),
                                      ("gpus_per_job", None if gpus_per_job is None else int(gpus_per_job))) if v is not None}
        return SlurmExecutor(**options)
    raise CapcastError(f"--executor {name!r} is not one of {', '.join(EXECUTORS)}")


def evaluate_grid(executor: Executor | None, family, task_names: Iterable[str], store_dir, *, threads: int | None = None,
                  plugins_dir=None, extra_env: dict | None = None, **options):
    """``capcast eval`` through ``executor`` (None: in this process). Options as ``evaluate_family``;
    ``extra_env`` is set in every job's process (``--cache``), never in this one."""
    from capcast.evaluation.runner import evaluate_family

    if executor is None:
        return evaluate_family(family, list(task_names), store_dir, **options)
    settings = {k: options.get(k, default) for k, default in (("limit", None), ("seed", 1234), ("batch_size", 16), ("device", None),
                                                              ("backend", "capcast-hf"), ("dtype", None))}
    dispatch = functools.partial(dispatch_grid, executor, settings, threads, plugins_dir, options.get("include_path"), options.get("console"),
                                 extra_env=extra_env)
    return evaluate_family(family, list(task_names), store_dir, dispatch=dispatch, **options)


def dispatch_grid(executor: Executor, settings: dict, threads, plugins_dir, include_path, console, *, store, family, spec_path, todo,
                  prepared, plans, hashes, replacing, summary, started, opts=None, extra_env=None):
    """Run the runner's planned ``todo`` as jobs; fill and return its summary. Raises one line
    naming the failed jobs (the committed ones stay: re-running finishes the rest)."""
    from dataclasses import asdict

    from capcast.evaluation import harness

    plans, few_shots = dict(plans), {}
    for task in {t.name: t for _, t in todo}.values():  # every job carries its task hash and the settings its run must match
        if plans.get(task.name) is None and task.name in prepared:
            try:
                plans[task.name] = harness.plan_run(prepared[task.name], limit=settings["limit"], seed=settings["seed"])
            except Exception:  # a task lm-eval cannot plan without a model: its job records the hash it measures
                pass
        if plans.get(task.name) is not None:
            few_shots[task.name] = harness.effective_num_fewshot(prepared[task.name])
    gen_kwargs = (opts.gen_kwargs or None) if opts is not None else None
    requested = {}
    for ckpt, task in todo:  # as the runner's resume check asks them (capcast.evaluation.runner.setting_differences)
        plan = plans.get(task.name)
        requested[(ckpt.name, task.name)] = {
            "model": ckpt.model, "revision": ckpt.revision, "weights_hash": hashes.get(ckpt.name), "limit": settings["limit"],
            "seed": settings["seed"], **({"repeats": plan.repeats, "task_hash": plan.task_hash} if plan else {}),
            "num_fewshot": few_shots.get(task.name), "gen_kwargs": gen_kwargs if prepared[task.name].kind == "generate" else None,
        }
    jobs = plan_grid(family, spec_path, store, todo, requested=requested, hashes=hashes, replacing=replacing,
                     task_hashes={name: p.task_hash for name, p in plans.items() if p is not None},
                     task_docs={name: p.task_docs for name, p in plans.items() if p is not None}, threads=threads, plugins_dir=plugins_dir,
                     include_path=include_path, lm_eval_options=asdict(opts) if opts is not None else None, extra_env=extra_env, **settings)
    outcomes = {o.job: o for o in executor.run(jobs, console=console)}
    failed = []
    for job in jobs:
        if job_done(job):  # done means committed and valid, whatever the executor said
            summary.evaluated.append((job.checkpoint, job.task))
            if job.replace:
                summary.replaced.append((job.checkpoint, job.task))
        else:
            outcome = outcomes.get(job)
            failed.append((job, outcome.error if outcome and outcome.error else "its run is missing from the store or does not validate"))
    summary.seconds = time.perf_counter() - started
    if failed:
        raise CapcastError(failure_line(failed, jobs))
    return summary
