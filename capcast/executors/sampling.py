"""``capcast sample --executor ...``: PassUntil runs as jobs, one (checkpoint, task) run per job.

:func:`sample_grid` is :func:`capcast.passuntil.runner.sample_family` with a ``dispatch``: the
runner takes the store's writer lock, checks every stored run against the command (other settings
stop it in one line unless ``--force``) and hands its planned runs to :func:`dispatch_samples`,
which turns the unfinished ones into jobs (kind ``sample``) for the executor while the driver
holds the lock. A worker runs its job with the same runner (:func:`run_sample_job`: one
checkpoint, one task, no lock of its own), so the rounds it commits are the in-process loop's,
seed for seed; each round is one atomic file, so a retry or a rerun continues from the rounds on
disk and nothing is drawn twice. A job is done when its ``run.json`` matches the job's settings,
its rounds read back and the sampler would plan no further round (:func:`capcast.executors.base.job_done`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict
from typing import Iterable

from capcast.errors import CapcastError
from capcast.executors.base import Executor, Job, failure_line, job_done, job_settings

# run.json keys that are not settings a finished run must match
_NOT_SETTINGS = ("versions", "extended", "allocation", "checker_errors")


def sample_grid(executor: Executor | None, family, task_names: Iterable[str], store_dir, config, *, threads: int | None = None,
                plugins_dir=None, console=None, extra_env: dict | None = None, **options):
    """``capcast sample`` through ``executor`` (None: in this process). Options as ``sample_family``."""
    from capcast.passuntil.runner import sample_family

    if executor is None:
        return sample_family(family, list(task_names), store_dir, config, **options)
    dispatch = functools.partial(dispatch_samples, executor, options, threads, plugins_dir, console, extra_env)
    return sample_family(family, list(task_names), store_dir, config, dispatch=dispatch, **options)


def dispatch_samples(executor: Executor, options: dict, threads, plugins_dir, console, extra_env, *, store, family, spec_path, runs, config,
                     opts, n_docs):
    """Run the runner's planned ``runs`` that are not finished as jobs; one summary per run, in order."""
    from capcast.passuntil import rounds
    from capcast.passuntil.runner import run_summary

    settings = job_settings(spec_path, store, limit=options.get("limit"), seed=options.get("seed", 1234),
                            batch_size=options.get("batch_size", 64), device=options.get("device"), backend=options.get("backend", "hf"),
                            dtype=None, threads=threads, plugins_dir=plugins_dir, include_path=options.get("include_path"),
                            lm_eval_options=asdict(opts), extra_env=extra_env)
    sampling = json.dumps(asdict(config), sort_keys=True)
    planned = []
    log = options.get("log")
    for ckpt, task, doc_ids, folder, manifest, restart, extended in runs:
        if extended and log is not None:  # as the in-process loop says it (the worker continues the stored rounds)
            from capcast.store import show_setting

            raised = ", ".join(f"{key} {show_setting(key, have)} -> {show_setting(key, want)}" for key, have, want in extended)
            log(f"{ckpt.name} x {task.name}: {raised}; continuing from the stored rounds")
        resume = {key: value for key, value in manifest.items() if key not in _NOT_SETTINGS}
        planned.append((Job(family=family.family, run=ckpt.run_name, checkpoint=ckpt.name, weights_hash=manifest.get("weights_hash"),
                            task=task.name, task_hash=manifest.get("task_hash"), settings=settings, replace=restart,
                            resume=json.dumps(resume, sort_keys=True, default=str), task_docs=n_docs[task.name], kind="sample",
                            sampling=sampling), doc_ids, folder))
    jobs = [job for job, _, _ in planned if job.replace or not job_done(job)]
    outcomes = {o.job: o for o in executor.run(jobs, console=console)} if jobs else {}
    summaries, failed, sent = [], [], set(jobs)
    for job, doc_ids, folder in planned:
        outcome = outcomes.get(job)
        if job in sent and not job_done(job):  # done means its rounds are stored and finished, whatever the executor said
            failed.append((job, (outcome.error if outcome else None) or "its rounds are missing from the store or unfinished"))
            continue
        told = next((note for note in (outcome.notes if outcome else []) if hasattr(note, "checker_errors")), None)
        summaries.append(told or run_summary(job.checkpoint, job.task, doc_ids, rounds.load_state(folder, doc_ids), config))
    if failed:
        raise CapcastError(failure_line(failed, jobs))
    return summaries


def run_sample_job(job: Job):
    """Measure one PassUntil job in this process (a worker): the runner on one checkpoint and task,
    continuing from its stored rounds. Returns its summary, or ``"already done"``."""
    if job_done(job):
        return "already done"
    from capcast.evaluation.threads import request_threads
    from capcast.executors.work import _registry
    from capcast.passuntil.runner import sample_family
    from capcast.passuntil.sampler import SamplerConfig

    s = job.settings
    request_threads(s.threads)
    [summary] = sample_family(
        s.spec, [job.task], s.store, SamplerConfig(**json.loads(job.sampling)), seed=s.seed, batch_size=s.batch_size, device=s.device,
        backend=s.backend, limit=s.limit, checkpoints=[job.checkpoint], registry=_registry(s.plugins_dir), force=job.replace,
        include_path=s.include_path, hold_lock=False, **json.loads(s.lm_eval_options),
    )
    return summary
