"""``capcast sample`` through the executors: two local worker processes and submitit's local mode
(the SLURM code path) store the same PassUntil rounds as the in-process loop, draw for draw; a rerun
finds every job done and draws nothing; a run cut short is finished by rerunning."""

from __future__ import annotations

import shutil

import pytest

from capcast import api
from capcast.errors import CapcastError
from capcast.executors.local import LocalExecutor
from capcast.executors.slurm import SlurmExecutor
from capcast.passuntil.sampler import SamplerConfig

pytestmark = pytest.mark.slow


def test_two_local_workers_store_the_serial_rounds_and_a_rerun_draws_nothing(grid, sampled, tmp_path, offline_hf_env):
    store, rounds_of = tmp_path / "store", sampled.rounds_of
    got = api.sample(grid.spec, [sampled.task], store, sampled.config, executor=LocalExecutor(workers=2), **sampled.options)
    assert got == sampled.summaries
    assert rounds_of(store) == rounds_of(sampled.store) and sampled.manifests_of(store) == sampled.manifests_of(sampled.store)
    # A run cut short (its last round lost) beside a finished one: the rerun draws exactly the missing round.
    last = sorted((store / "passuntil").glob("*/tiny-s/*/rounds/*.parquet"))[-1]
    last.unlink()
    again = api.sample(grid.spec, [sampled.task], store, sampled.config, executor=LocalExecutor(workers=2), **sampled.options)
    assert again == sampled.summaries and rounds_of(store) == rounds_of(sampled.store)


def test_submitit_local_mode_stores_the_serial_rounds(grid, sampled, tmp_path, offline_hf_env):
    store = tmp_path / "store"
    executor = SlurmExecutor(cluster="local", folder=tmp_path / "slurm")
    got = api.sample(grid.spec, [sampled.task], store, sampled.config, executor=executor, checkpoints=["tiny-xs"], **sampled.options)
    assert got == sampled.summaries[:1]
    assert sampled.rounds_of(store) == [row for row in sampled.rounds_of(sampled.store) if row[1] == "tiny-xs"]
    assert list((tmp_path / "slurm").iterdir())  # it went through submitit


def test_a_forced_restart_through_workers_replaces_the_stored_run(grid, sampled, tmp_path, offline_hf_env):
    store = tmp_path / "store"
    shutil.copytree(sampled.store, store)
    other = SamplerConfig(successes=2, max_samples_per_instance=6, first_batch=2)  # another r: refused without --force
    one = dict(executor=LocalExecutor(workers=2), checkpoints=["tiny-xs"], **sampled.options)
    with pytest.raises(CapcastError, match="--force"):
        api.sample(grid.spec, [sampled.task], store, other, **one)
    [summary] = api.sample(grid.spec, [sampled.task], store, other, force=True, **one)
    assert summary.checkpoint == "tiny-xs" and summary.samples > 0
    [manifest] = [m for key, m in sampled.manifests_of(store).items() if "tiny-xs" in key]
    assert manifest["successes"] == 2
