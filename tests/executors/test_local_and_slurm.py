"""Worker processes and submitit's local mode (the SLURM code path) write the same store as the
in-process loop, record for record; a job that fails once is retried; a grid whose driver is
killed is finished by re-running it, with nothing lost or duplicated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capcast import api
from capcast.executors.faults import FailOnce
from capcast.executors.local import LocalExecutor
from capcast.executors.slurm import SlurmExecutor

TASKS = ("capcast_add_mc", "capcast_add_gen")

pytestmark = pytest.mark.slow


def test_two_local_workers_write_what_the_in_process_loop_writes(grid, tmp_path, offline_hf_env):
    spec, reference, records_of, options = grid.spec, grid.records, grid.records_of, grid.options
    summary = api.evaluate(spec, TASKS, tmp_path / "store", executor=LocalExecutor(workers=2), **options)
    assert sorted(summary.evaluated) == sorted((c, t) for c in ("tiny-xs", "tiny-s") for t in TASKS)
    assert grid.same(records_of(tmp_path / "store"), reference)
    staging = tmp_path / "store" / "tmp"
    assert not staging.exists() or not any(staging.iterdir())  # every job's staging folder was renamed into parts/


def test_slurm_local_mode_retries_a_job_that_failed_once_and_matches(grid, tmp_path, offline_hf_env):
    spec, reference, records_of, options = grid.spec, grid.records, grid.records_of, grid.options
    markers = tmp_path / "failed-once"
    executor = SlurmExecutor(cluster="local", retries=1, folder=tmp_path / "slurm", function=FailOnce(str(markers), ("capcast_add_mc",)))
    summary = api.evaluate(spec, TASKS, tmp_path / "store", executor=executor, **options)
    assert len(summary.evaluated) == 4
    assert sorted(p.name for p in markers.iterdir()) == ["tiny-s--capcast_add_mc", "tiny-xs--capcast_add_mc"]  # both first attempts raised
    assert grid.same(records_of(tmp_path / "store"), reference)
    assert list((tmp_path / "slurm").iterdir())  # it went through submitit: one folder per array task


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_a_killed_driver_is_finished_by_rerunning_with_nothing_lost_or_duplicated(grid, tmp_path, offline_hf_env):
    spec, reference, records_of, options = grid.spec, grid.records, grid.records_of, grid.options
    store = tmp_path / "store"
    command = [sys.executable, "-m", "capcast", "eval", str(spec), "--tasks", ",".join(TASKS), "--store", str(store), "--limit", "4",
               "--batch-size", "8", "--device", "cpu", "--executor", "local", "--workers", "2"]
    # Its own session: the driver and its workers die together, as when the node goes down.
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 240
    while not list((store / "parts").glob("*/*/*/run.json")) if (store / "parts").is_dir() else True:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no job committed in time"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(100):  # the group is gone (the kernel reaps it within moments)
        if not any(_alive(int(p.name)) for p in Path("/proc").iterdir() if p.name.isdigit() and _pgid(int(p.name)) == proc.pid):
            break
        time.sleep(0.05)
    committed = len(list((store / "parts").glob("*/*/*/run.json")))
    assert 1 <= committed < 4, committed
    summary = api.evaluate(spec, TASKS, store, executor=LocalExecutor(workers=2), **options)
    assert len(summary.evaluated) == 4 - committed and len(summary.skipped) == committed
    assert grid.same(records_of(store), reference)  # every record once: none lost, none twice
    again = api.evaluate(spec, TASKS, store, executor=LocalExecutor(workers=2), **options)
    assert again.evaluated == [] and len(again.skipped) == 4


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
