"""The Ray executor on a local Ray runtime (2 CPUs, one session for the module): per-job failures are
reported while the other jobs finish, a job that failed once is retried, and the store equals the
in-process loop's record for record."""

from __future__ import annotations

import pytest

from capcast import api
from capcast.errors import CapcastError
from capcast.executors.faults import FailOnce

TASKS = ("capcast_add_mc", "capcast_add_gen")

ray = pytest.importorskip("ray", reason="the Ray executor needs `pip install 'capcast[ray]'` (in the test extra)")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_reports_failed_jobs_finishes_the_others_then_retries_complete_the_grid(ray_session, grid, tmp_path, offline_hf_env):
    from capcast.executors.ray import RayExecutor

    spec, reference, records_of, options = grid.spec, grid.records, grid.records_of, grid.options
    store = tmp_path / "store"
    failing = RayExecutor(retries=0, function=FailOnce(str(tmp_path / "first"), ("capcast_add_mc",)))
    with pytest.raises(CapcastError, match=r"2 of 4 jobs failed, 2 committed; first: tiny-\w+ x capcast_add_mc: InjectedFault"):
        api.evaluate(spec, TASKS, store, executor=failing, **options)
    stored = sorted(p.parent.name + "/" + p.name for p in (store / "parts").glob("*/*/*"))
    assert stored == ["tiny-s/capcast_add_gen", "tiny-xs/capcast_add_gen"]  # the other jobs finished

    # A fresh fault: every remaining job fails its first attempt, Ray retries it, the run completes.
    markers = tmp_path / "second"
    retrying = RayExecutor(retries=1, function=FailOnce(str(markers)))
    summary = api.evaluate(spec, TASKS, store, executor=retrying, **options)
    assert sorted(summary.evaluated) == [("tiny-s", "capcast_add_mc"), ("tiny-xs", "capcast_add_mc")]
    assert len(summary.skipped) == 2
    assert sorted(p.name for p in markers.iterdir()) == ["tiny-s--capcast_add_mc", "tiny-xs--capcast_add_mc"]
    assert grid.same(records_of(store), reference)


def test_ray_samples_store_the_serial_rounds(ray_session, grid, sampled, tmp_path, offline_hf_env):
    from capcast.executors.ray import RayExecutor

    store = tmp_path / "store"
    got = api.sample(grid.spec, [sampled.task], store, sampled.config, executor=RayExecutor(), checkpoints=["tiny-xs"], **sampled.options)
    assert got == sampled.summaries[:1]
    assert sampled.rounds_of(store) == [row for row in sampled.rounds_of(sampled.store) if row[1] == "tiny-xs"]
