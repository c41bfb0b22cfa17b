"""``--executor slurm``: the grid as one SLURM job array through submitit, one array task per checkpoint.

Each array task loads one checkpoint and runs its jobs (:func:`capcast.executors.work.run_jobs`,
each job retried ``--retries`` times in place). ``--slurm-parallelism`` caps how many array tasks
run at once, ``--slurm-time`` (minutes) and ``--slurm-partition`` go to ``sbatch``, and
``--gpus-per-job`` / ``--cpus-per-job`` size each task. A preempted or timed-out task is requeued
by submitit (:meth:`Bundle.checkpoint`) and, since a job is done only when its part validates,
the requeued task skips what its first life committed. submitit's logs and pickles go to
``--slurm-folder`` (default ``<store>/slurm``), which, like the store, must be on a filesystem the
compute nodes share. ``cluster="local"`` (``--slurm-cluster local``) runs the very same code as
local subprocesses: the tests use it. Needs ``pip install 'capcast[slurm]'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from capcast.errors import CapcastError
from capcast.executors.base import Job, JobOutcome, by_checkpoint, missing_extra, report_failures


def _import_submitit():
    try:
        import submitit
    except ImportError:
        raise CapcastError(missing_extra("submitit", "slurm")) from None
    return submitit


@dataclass
class Bundle:
    """What one array task runs: one checkpoint's jobs. Requeued as itself on preemption."""

    retries: int = 0
    function: Callable[[Job], str] | None = None

    def __call__(self, jobs: list[Job]) -> list[JobOutcome]:
        from capcast.executors.work import run_jobs

        return run_jobs(jobs, self.retries, self.function)

    def checkpoint(self, jobs: list[Job]):
        """submitit calls this on preemption or timeout: resubmit the same jobs (the done ones are skipped)."""
        submitit = _import_submitit()
        return submitit.helpers.DelayedSubmission(self, jobs)


@dataclass
class SlurmExecutor:
    """One job array per grid, through submitit."""

    folder: str | Path | None = None  # submitit's logs and pickles (default: <store>/slurm)
    partition: str | None = None
    time_min: int = 240
    parallelism: int = 32
    cpus_per_job: int = 1
    gpus_per_job: int = 0
    mem_gb: float | None = None
    retries: int = 1
    cluster: str | None = None  # None: SLURM if sbatch is here; "local": subprocesses on this machine (tests); "slurm"
    function: Callable[[Job], str] | None = None
    name: str = "slurm"

    def run(self, jobs: Sequence[Job], console=None) -> list[JobOutcome]:
        submitit = _import_submitit()
        groups = by_checkpoint(jobs)
        if not groups:
            return []
        folder = Path(self.folder) if self.folder else Path(jobs[0].settings.store) / "slurm"
        executor = submitit.AutoExecutor(folder=folder / "%j", cluster=self.cluster)
        parameters = dict(timeout_min=self.time_min, cpus_per_task=self.cpus_per_job, gpus_per_node=self.gpus_per_job,
                          slurm_array_parallelism=self.parallelism, name=f"capcast-{jobs[0].family}")
        if self.partition:
            parameters["slurm_partition"] = self.partition
        if self.mem_gb:
            parameters["mem_gb"] = self.mem_gb
        executor.update_parameters(**parameters)
        if executor.cluster == "debug":
            raise CapcastError("--slurm-cluster debug runs in this process; use local or slurm")
        submitted = executor.map_array(Bundle(self.retries, self.function), groups)
        outcomes = []
        for array_task, group in zip(submitted, groups):
            try:
                done = array_task.result()
            except Exception as exc:  # the array task itself died (killed, out of memory, time limit after requeues)
                line = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
                done = [JobOutcome(job, error=f"array task {array_task.job_id} failed: {line}") for job in group]
            outcomes.extend(done)
            report_failures(console, done)
        return outcomes
