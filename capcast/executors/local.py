"""``--executor local --workers N``: N worker processes on this machine, one checkpoint per worker at a time.

Each worker is a fresh (spawned) interpreter that takes one checkpoint's jobs, loads the model
once and runs its tasks (:func:`capcast.executors.work.run_jobs`). Where CUDA is present and the
device is not pinned, each worker gets its own GPU (``CUDA_VISIBLE_DEVICES``, round robin over the
visible ones; ``--gpus-per-job N`` gives each worker N of them, for ``--model-args parallelize=True`` or
vLLM's ``tensor_parallel_size``), set before torch is imported. ``--workers 1`` without an executor is today's
in-process loop (:func:`capcast.evaluation.runner.evaluate_family`).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Sequence

from capcast.errors import CapcastError
from capcast.executors.base import Job, JobOutcome, by_checkpoint, report_failures


def visible_gpus() -> list[str]:
    """The GPU ids this process may use, without initialising CUDA in the driver."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g for g in listed.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    except Exception:  # no usable torch CUDA: CPU workers
        return []


def _init_worker(gpu_queue) -> None:
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu_queue.get()


@dataclass
class LocalExecutor:
    """Worker processes on this machine."""

    workers: int = 2
    retries: int = 0
    gpus: bool = True  # GPUs per worker where CUDA is present (and --device does not name one)
    gpus_per_worker: int = 1  # --gpus-per-job: e.g. 2 for --model-args parallelize=True or tensor_parallel_size=2
    function: Callable[[Job], str] | None = None  # what a worker runs per job (default: capcast.executors.work.run_job)
    name: str = "local"

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise CapcastError("--workers must be at least 1")
        if self.gpus_per_worker < 1 or self.gpus_per_worker != int(self.gpus_per_worker):
            raise CapcastError("--gpus-per-job with --executor local must be a whole number of GPUs, at least 1")

    def run(self, jobs: Sequence[Job], console=None) -> list[JobOutcome]:
        from capcast.executors.work import run_jobs

        groups = by_checkpoint(jobs)
        context = multiprocessing.get_context("spawn")  # never fork a process that may hold CUDA or threads
        gpu_queue = None
        device = jobs[0].settings.device if jobs else None
        gpus = visible_gpus() if self.gpus and (device is None or device == "cuda") else []
        workers = min(self.workers, len(groups)) or 1
        if gpus:
            per = int(self.gpus_per_worker)
            if per > len(gpus):
                raise CapcastError(f"--gpus-per-job {per}: this machine shows {len(gpus)} GPU(s); ask for at most {len(gpus)}")
            workers = max(1, min(workers, len(gpus) // per)) if per > 1 else workers  # whole GPUs only: no two workers share a group
            gpu_queue = context.Queue()
            for i in range(workers):  # worker i gets GPUs [i*per, (i+1)*per) round robin
                gpu_queue.put(",".join(gpus[(i * per + k) % len(gpus)] for k in range(per)))
        outcomes: list[JobOutcome] = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(gpu_queue,)) as pool:
            futures = {pool.submit(run_jobs, group, self.retries, self.function): group for group in groups}
            for future in as_completed(futures):
                try:
                    done = future.result()
                except Exception as exc:  # the worker process died (killed, out of memory)
                    done = [JobOutcome(job, error=f"worker process died ({type(exc).__name__}: {exc})") for job in futures[future]]
                outcomes.extend(done)
                report_failures(console, done)
        return outcomes

