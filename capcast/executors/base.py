"""The grid of a family evaluation as immutable jobs, and what an executor must do with them.

A **job** is one (checkpoint, task) run, frozen with everything a process on another machine needs
to measure it and to tell whether it is already measured: the family spec and store paths, the
checkpoint's identity (run, weights hash), the task's identity (task hash), the evaluation settings
and the resume settings the stored run must match. ``capcast eval`` plans the grid exactly as it
does in-process (:func:`capcast.evaluation.runner.evaluate_family`: what is stored with the same
settings is skipped, a run with other settings stops the command unless ``--force``), turns what is
left into jobs (:func:`plan_grid`) and hands them to an :class:`Executor`.

**Done means validated, not exited 0.** A job is done only when its run folder exists under
``parts/``, passes the store's checks (:func:`capcast.store.verify.check_run`: manifest, record
count, checksum) and its manifest matches the job's resume settings (:func:`job_done`). Every job
commits its own part: records and manifest are written under ``store/tmp/`` and renamed into
``parts/`` in one ``os.rename`` (:meth:`capcast.store.Store.write_run`), so two jobs, or a job and
a retry of itself, can never corrupt or duplicate a run; the one that renames second finds the run
done and discards its copy. Re-running the same command finishes exactly what is not done.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

# Environment the driver's settings live in, handed to every job (Ray and SLURM workers do not
# inherit the driver's environment): offline switches, caches, benchmark data, plugins, threads.
FORWARDED_ENV = (
    "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "HF_DATASETS_CACHE", "HF_HOME", "TRANSFORMERS_OFFLINE", "TOKENIZERS_PARALLELISM",
    "CAPCAST_DATA_DIR", "CAPCAST_UNSAFE_NO_SANDBOX", "CAPCAST_PLUGINS_DIR", "TORCH_NUM_THREADS", "OMP_NUM_THREADS",
)


@dataclass(frozen=True)
class JobSettings:
    """How a job evaluates (the same for every job of a grid)."""

    spec: str  # the family spec, absolute
    store: str  # the store folder, absolute
    limit: int | None = None
    seed: int = 1234
    batch_size: int | str = 16
    device: str | None = None
    backend: str = "capcast-hf"
    dtype: str | None = None
    threads: int | None = None
    plugins_dir: str | None = None
    include_path: str | None = None  # --include-path: lm-eval task YAMLs --tasks may name
    lm_eval_options: str = "{}"  # JSON of capcast.evaluation.runner.LmEvalOptions (num_fewshot, model_args, gen_kwargs)
    env: tuple[tuple[str, str], ...] = ()  # the driver's settings (FORWARDED_ENV): a worker's own values win
    # --cache (capcast.prefetch.offline_env): set in every worker whatever it inherited, never in the driver
    forced_env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Job:
    """One (checkpoint, task) run of a grid; hashable and picklable, so it travels to any worker."""

    family: str
    run: str
    checkpoint: str
    weights_hash: str | None
    task: str
    task_hash: str | None
    settings: JobSettings
    replace: bool = False  # --force: the stored run with other settings is replaced atomically
    # JSON of the settings the stored run must match (capcast.evaluation.runner.RESUME_SETTINGS), and the task's size
    resume: str = "{}"
    task_docs: int | None = None
    kind: str = "eval"  # "eval": a capcast eval run under parts/; "sample": a PassUntil run under passuntil/ (capcast sample)
    sampling: str = "{}"  # kind "sample": JSON of its capcast.passuntil.sampler.SamplerConfig

    @property
    def label(self) -> str:
        return f"{self.checkpoint} x {self.task}"

    def run_dir(self) -> Path:
        from capcast.store import Store

        store = Store(self.settings.store)
        if self.kind == "sample":
            from capcast.passuntil.rounds import run_dir

            return run_dir(store, self.family, self.checkpoint, self.task)
        return store.run_dir(self.family, self.checkpoint, self.task)


@dataclass
class JobOutcome:
    """What became of one job: ``error`` is None when its part is committed and validates."""

    job: Job
    error: str | None = None
    attempts: int = 1
    notes: list[str] = field(default_factory=list)


class Executor(Protocol):
    """Runs the jobs of one grid somewhere (this machine, a Ray cluster, a SLURM cluster).

    ``run`` returns one outcome per job. It reports a failing job and carries on with the others; an
    error says why the job failed, for the summary line. The caller checks :func:`job_done` for every
    job afterwards, whatever the executor said."""

    name: str

    def run(self, jobs: Sequence[Job], console=None) -> list[JobOutcome]: ...


def job_done(job: Job) -> bool:
    """Whether ``job``'s run is committed, intact (the store's checks) and made with the job's settings.
    A PassUntil job (kind ``sample``) is done when its stored rounds read back, its ``run.json``
    matches the job's settings and budget, and the sampler would plan no further round."""
    if job.kind == "sample":
        return _sample_job_done(job)
    from capcast.evaluation.runner import setting_differences
    from capcast.store import Store
    from capcast.store.verify import check_run

    folder = job.run_dir()
    if not folder.is_dir() or check_run(folder) is not None:
        return False
    manifest = Store(job.settings.store).run_manifest(job.family, job.checkpoint, job.task)
    if manifest is None:
        return False
    requested = json.loads(job.resume)
    requested.setdefault("repeats", manifest.get("repeats"))  # a task planned without a model: repeats unknown before running
    return not setting_differences(manifest, requested, job.task_docs)


def _sample_job_done(job: Job) -> bool:
    from capcast.passuntil import rounds
    from capcast.passuntil.sampler import SamplerConfig, plan_round

    folder = job.run_dir()
    stored = rounds.read_manifest(folder)
    if stored is None or not rounds.has_rounds(folder):
        return False
    refused, extended = rounds.setting_differences(stored, json.loads(job.resume), job.task_docs)
    if refused or extended:
        return False
    limit, n_docs = job.settings.limit, job.task_docs or 0
    try:  # every round file must read back (a damaged one is not a finished run)
        state = rounds.load_state(folder, range(n_docs if limit is None else min(limit, n_docs)))
    except Exception:
        return False
    return not plan_round(state, SamplerConfig(**json.loads(job.sampling)))


def forwarded_env() -> tuple[tuple[str, str], ...]:
    return tuple((key, os.environ[key]) for key in FORWARDED_ENV if key in os.environ)


def job_settings(spec_path: Path, store, *, limit, seed, batch_size, device, backend, dtype, threads=None, plugins_dir=None,
                 include_path=None, lm_eval_options: dict | None = None, extra_env: dict | None = None) -> JobSettings:
    """The settings every job of one grid shares; paths absolute, so any node on the shared filesystem finds them.
    ``extra_env`` (e.g. :func:`capcast.prefetch.offline_env`) goes to the jobs only, never to this process."""
    absolute = lambda path: None if path is None else str(Path(path).resolve())  # noqa: E731
    return JobSettings(
        spec=absolute(spec_path), store=absolute(store.root), limit=limit, seed=seed, batch_size=batch_size, device=device, backend=backend,
        dtype=dtype, threads=threads, plugins_dir=absolute(plugins_dir), include_path=absolute(include_path),
        lm_eval_options=json.dumps(lm_eval_options or {}, sort_keys=True, default=str), env=forwarded_env(),
        forced_env=tuple(sorted((extra_env or {}).items())),
    )


def failure_line(failed: Sequence[tuple[Job, str]], jobs: Sequence[Job]) -> str:
    """The one line for a grid some of whose jobs failed (the committed ones stay)."""
    job, why = failed[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    return (f"{len(failed)} of {len(jobs)} jobs failed, {len(jobs) - len(failed)} committed; first: {job.label}: {why}{more}. "
            "Fix the cause and run the same command again: it finishes exactly what is missing")


def plan_grid(family, spec_path: Path, store, todo: Sequence[tuple], *, requested: dict, hashes: dict, replacing: set, task_hashes: dict,
              task_docs: dict, limit: int | None, seed: int, batch_size, device, backend: str, dtype, threads: int | None = None,
              plugins_dir=None, include_path=None, lm_eval_options: dict | None = None, extra_env: dict | None = None) -> list[Job]:
    """The jobs of ``todo`` (the runner's (checkpoint, task) pairs that are not stored with these
    settings), ordered by checkpoint so that a worker loads each checkpoint once for its tasks.
    ``requested[(checkpoint, task)]`` holds the resume settings its stored run must match."""
    settings = job_settings(spec_path, store, limit=limit, seed=seed, batch_size=batch_size, device=device, backend=backend, dtype=dtype,
                            threads=threads, plugins_dir=plugins_dir, include_path=include_path, lm_eval_options=lm_eval_options,
                            extra_env=extra_env)
    jobs = [Job(family=family.family, run=ckpt.run_name, checkpoint=ckpt.name, weights_hash=hashes.get(ckpt.name), task=task.name,
                task_hash=task_hashes.get(task.name), settings=settings, replace=(ckpt.name, task.name) in replacing,
                resume=json.dumps(requested[(ckpt.name, task.name)], sort_keys=True, default=str), task_docs=task_docs.get(task.name))
            for ckpt, task in todo]
    order = {c.name: i for i, (c, _) in enumerate(todo)}
    return sorted(jobs, key=lambda j: order[j.checkpoint])


def by_checkpoint(jobs: Sequence[Job]) -> list[list[Job]]:
    """The jobs grouped per checkpoint, in order: one group is one model load."""
    groups: dict[str, list[Job]] = {}
    for job in jobs:
        groups.setdefault(job.checkpoint, []).append(job)
    return list(groups.values())


def report_failures(console, outcomes: Sequence[JobOutcome]) -> None:
    """One line per failed job, as the executor learns of it (the others carry on)."""
    if console is None:
        return
    from rich.markup import escape

    for outcome in outcomes:
        if outcome.error:
            tries = f" (after {outcome.attempts} attempts)" if outcome.attempts > 1 else ""
            console.print(f"[red]failed:[/] {escape(outcome.job.label)}{tries}: {escape(outcome.error)}", highlight=False, soft_wrap=True)


def missing_extra(package: str, extra: str) -> str:
    """The one line for an executor whose engine is not installed."""
    return f"--executor {extra} needs {package}, which is not installed; install it with `pip install 'capcast[{extra}]'`"


ExecutorFactory = Callable[..., Executor]
