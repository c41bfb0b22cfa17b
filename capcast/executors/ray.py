"""``--executor ray [--ray-address ADDR]``: one Ray task per job, on a local Ray runtime or a cluster.

Each job is a Ray task with its resource request (``--cpus-per-job``, ``--gpus-per-job``; by
default one GPU per job where the cluster has GPUs and ``--device`` is not ``cpu``). A failing job is
retried by Ray (``--retries``, default 2: exceptions and lost workers alike); a job that still fails
is reported on its own line while the others finish. Workers keep the last model they loaded, and
jobs are submitted checkpoint by checkpoint, so a worker that gets several tasks of one checkpoint
loads it once. Every node must see the store and the checkpoints at the same paths (a shared
filesystem; docs/scale-out.md). Needs ``pip install 'capcast[ray]'``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from capcast.errors import CapcastError
from capcast.executors.base import Job, JobOutcome, missing_extra, report_failures


def _import_ray():
    try:
        import ray
    except ImportError:
        raise CapcastError(missing_extra("ray", "ray")) from None
    return ray


def _run_on_worker(function: Callable[[Job], str], job: Job) -> str:
    return function(job)


def _error_line(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None)  # a RayTaskError wraps the job's own exception
    if cause is not None:
        from capcast.executors.work import describe_error

        return describe_error(cause)
    return (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]


@dataclass
class RayExecutor:
    """Jobs as Ray tasks. Uses the Ray session already started in this process, else starts or joins one."""

    address: str | None = None  # None: a local runtime (or RAY_ADDRESS); "auto": the cluster this node belongs to
    retries: int = 2
    cpus_per_job: float = 1.0
    gpus_per_job: float | None = None  # None: 1 where the cluster has GPUs and the device is not cpu
    function: Callable[[Job], str] | None = None  # what a worker runs per job (default: capcast.executors.work.run_job)
    name: str = "ray"

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise CapcastError("--retries must be 0 or more")

    def run(self, jobs: Sequence[Job], console=None) -> list[JobOutcome]:
        ray = _import_ray()
        from capcast.executors.work import run_job

        started_here = not ray.is_initialized()
        if started_here:
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:
                raise CapcastError(f"cannot reach the Ray cluster at {self.address or 'RAY_ADDRESS'} ({exc}); start it with "
                                   "`ray start --head` or fix --ray-address") from None
        try:
            gpus = self.gpus_per_job
            if gpus is None:
                device = jobs[0].settings.device if jobs else None
                gpus = 1.0 if ray.cluster_resources().get("GPU", 0) > 0 and device != "cpu" else 0.0
            remote = ray.remote(_run_on_worker).options(num_cpus=self.cpus_per_job, num_gpus=gpus, max_retries=self.retries,
                                                        retry_exceptions=True)
            function = self.function or run_job
            pending = {remote.remote(function, job): job for job in jobs}
            outcomes = []
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                job = pending.pop(ready[0])
                try:
                    outcome = JobOutcome(job, notes=[ray.get(ready[0])])
                except Exception as exc:  # the job failed after its retries; the others carry on
                    outcome = JobOutcome(job, error=_error_line(exc), attempts=1 + self.retries)
                outcomes.append(outcome)
                report_failures(console, [outcome])
            return outcomes
        finally:
            if started_here:
                ray.shutdown()
