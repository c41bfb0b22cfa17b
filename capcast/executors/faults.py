"""Faults on purpose, for the executors' tests and for drills on a real cluster.

:class:`FailOnce` wraps the per-job function: the first attempt of each job raises (a marker file
under ``folder`` remembers it), every later attempt runs the job. It pickles by reference to this
module, so Ray workers and SLURM tasks can run it like :func:`capcast.executors.work.run_job`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from capcast.executors.base import Job


class InjectedFault(RuntimeError):
    """The failure :class:`FailOnce` raises."""


@dataclass(frozen=True)
class FailOnce:
    folder: str
    tasks: tuple[str, ...] = ()  # only these tasks' jobs fail (default: every job)

    def __call__(self, job: Job) -> str:
        from capcast.executors.work import run_job
        from capcast.store import path_slug

        if self.tasks and job.task not in self.tasks:
            return run_job(job)
        marker = Path(self.folder) / f"{path_slug(job.checkpoint)}--{path_slug(job.task)}"
        if not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("failed once\n")
            raise InjectedFault(f"injected failure of the first attempt of {job.label}")
        return run_job(job)
