"""What a worker does with jobs: the same code on this machine, on a Ray worker and in a SLURM task.

:func:`run_job` measures one job and commits its part, unless the job is done already (a retry,
a requeued SLURM task, a rerun after the driver died); :func:`run_jobs` runs one checkpoint's jobs
in a row, reporting each failure and carrying on. A worker process keeps the last model it loaded
(and the tasks and registry it built), so consecutive jobs of one checkpoint load it once.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from types import SimpleNamespace
from typing import Callable, Sequence

from capcast.executors.base import Job, JobOutcome, job_done

_cache: dict = {}  # per worker process: the registry, prepared tasks, and the one loaded model


def _apply_env(job: Job) -> None:
    for key, value in job.settings.env:
        os.environ.setdefault(key, value)
    for key, value in job.settings.forced_env:  # --cache: this worker runs offline from the prefetched folder
        os.environ[key] = value


def _registry(plugins_dir):
    key = ("registry", plugins_dir)
    if key not in _cache:
        from capcast.plugins.registry import load_registry

        _cache[key] = load_registry(plugins_dir)
    return _cache[key]


def _prepared(job: Job, store):
    key = ("task", job.task, job.settings)
    if key not in _cache:
        from capcast.evaluation import harness
        from capcast.evaluation.runner import resolve_tasks

        task = resolve_tasks([job.task], _registry(job.settings.plugins_dir), job.settings.include_path)[0]
        _cache[key] = (task, _options(job).prepare(harness, task, store.task_data_dir(task.name)))
    return _cache[key]


def _options(job: Job):
    from capcast.evaluation.runner import LmEvalOptions

    return LmEvalOptions(**json.loads(job.settings.lm_eval_options))


def _model(job: Job, path: str, revision: str | None):
    from capcast.evaluation import harness

    s = job.settings
    key = ("model", path, revision, s.backend, s.dtype, s.device, str(s.batch_size), s.lm_eval_options)
    if _cache.get("model_key") != key:
        _cache.pop("model", None)  # free the previous checkpoint before loading the next
        _cache["model"] = harness.load_model(path, revision, backend=s.backend, dtype=s.dtype, device=s.device, batch_size=s.batch_size,
                                             model_args=_options(job).model_args)
        _cache["model_key"] = key
    return _cache["model"]


def run_job(job: Job):
    """Measure ``job`` and commit its part; returns ``"evaluated"`` or ``"already done"`` (a PassUntil
    job: its :class:`capcast.passuntil.runner.SampleRunSummary`). Raises on failure."""
    _apply_env(job)
    if job.kind == "sample":  # capcast sample: a PassUntil run (capcast.executors.sampling)
        from capcast.executors.sampling import run_sample_job

        return run_sample_job(job)
    if job_done(job):
        return "already done"
    from capcast.errors import CapcastError
    from capcast.evaluation import harness
    from capcast.evaluation.records import weights_hash
    from capcast.evaluation.runner import _now, commit_run
    from capcast.evaluation.threads import request_threads
    from capcast.spec import open_family, resolve_model_path
    from capcast.store import Store

    request_threads(job.settings.threads)
    spec_path, fam = open_family(job.settings.spec)
    ckpt = fam.checkpoint(job.checkpoint)
    store = Store(job.settings.store)
    # (the driver's harness.prepare_environment ran before planning: its offline switches and caches arrive in settings.env)
    task, prepared = _prepared(job, store)
    path = resolve_model_path(spec_path, ckpt.model)
    loaded = _model(job, path, ckpt.revision)
    started_at, t0 = _now(), time.perf_counter()
    run = harness.run_task(loaded, prepared, limit=job.settings.limit, seed=job.settings.seed)
    digest = job.weights_hash or weights_hash(path, ckpt.revision, {})
    plan = SimpleNamespace(task_hash=job.task_hash) if job.task_hash else None
    try:
        commit_run(store, fam, ckpt, task, run, weights_hash=digest, versions=harness.versions(), started_at=started_at, t0=t0, plan=plan,
                   replace=job.replace, console=None)
    except (CapcastError, OSError):
        if job_done(job):  # another attempt of this job committed first: its run stands, this copy is dropped
            return "already done"
        raise
    return "evaluated"


def describe_error(exc: BaseException) -> str:
    """One line for a failed job: the user-facing message, or the exception and where it was raised."""
    from capcast.errors import CapcastError

    if isinstance(exc, CapcastError):
        return str(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {os.path.basename(frame[0].filename)}:{frame[0].lineno}" if frame else ""
    return f"{type(exc).__name__}: {str(exc)[:300]}{where}"


def run_jobs(jobs: Sequence[Job], retries: int = 0, function: Callable[[Job], str] | None = None) -> list[JobOutcome]:
    """Run one checkpoint's jobs in this process with ``function`` (default :func:`run_job`), each up
    to ``1 + retries`` times; a failing job is reported in its outcome and the others still run."""
    function = function or run_job
    outcomes = []
    for job in jobs:
        outcome = JobOutcome(job, attempts=0)
        for _ in range(1 + retries):
            outcome.attempts += 1
            try:
                outcome.notes.append(function(job))
                outcome.error = None
                break
            except Exception as exc:  # one job's failure must not stop the others
                outcome.error = describe_error(exc)
        outcomes.append(outcome)
    return outcomes
