"""``capcast prefetch`` and ``--cache``: what a grid needs is listed (local checkpoints as already
local), a hub checkpoint missing from the cache stops the command in one line naming the prefetch
command, and one that is in the cache runs fully offline from it in a worker process, whose
environment never reaches this process. No network: the cache is filled in the layout
``huggingface_hub.snapshot_download`` writes, from a local checkpoint."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from capcast.testing.cli import run_in_process

HUB_ID = "capcast-test/tiny-xs"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache_with(cache: Path, repo_id: str, folder: Path) -> Path:
    """``folder`` as the hub cache holds a downloaded repository (``models--ORG--NAME``: refs/main -> snapshots/COMMIT)."""
    repo = cache / "hub" / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return repo


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from capcast.testing import build_tiny_family

    spec = build_tiny_family(tmp_path_factory.mktemp("prefetch") / "family", sizes=("xs",))
    return spec, spec.parent / "tiny-xs"


def hub_spec(tmp_path: Path, model: str = HUB_ID) -> Path:
    spec = tmp_path / "hub-family.yaml"
    spec.write_text(f"family: hub\ncheckpoints:\n  - {{name: hub-xs, model: {model}, params: 1.0e5, tokens: 2.0e6, step: 1000}}\n")
    return spec


def test_prefetch_records_local_checkpoints_and_capcast_tasks_as_local(checkpoint, tmp_path, capsys):
    spec, _ = checkpoint
    cache = tmp_path / "cache"
    code, out, err = run_in_process(["prefetch", str(spec), "--tasks", "capcast_add_mc,capcast_add_gen", "--cache", str(cache)], capsys)
    assert code == 0, err
    assert "checkpoint " in err and ": local" in err and "dataset capcast_add_gen: local data" in err
    items = json.loads((cache / "capcast-prefetch.json").read_text())["items"]
    assert {(i["kind"], i["status"]) for i in items} == {("checkpoint", "local"), ("dataset", "local data")}
    assert len(items) == 3 and "3 items ready" in out


def test_a_hub_checkpoint_missing_from_the_cache_is_one_line_naming_the_prefetch_command(tmp_path, capsys):
    spec, cache = hub_spec(tmp_path, "capcast-test/absent-model"), tmp_path / "cache"
    (cache / "hub").mkdir(parents=True)
    for command, task in (("eval", "capcast_add_mc"), ("sample", "capcast_add_gen")):
        code, _, err = run_in_process([command, str(spec), "--tasks", task, "--store", str(tmp_path / "store"), "--cache", str(cache)], capsys)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1, err
        assert "checkpoint hub-xs (capcast-test/absent-model, revision default) is not in --cache" in lines[0]
        assert f"capcast prefetch {spec} --tasks {task} --cache {cache}" in lines[0]
    code, _, err = run_in_process(["eval", str(spec), "--tasks", "capcast_add_mc", "--cache", str(tmp_path / "nowhere")], capsys)
    assert code == 2 and "--cache" in err and "does not exist" in err and "capcast prefetch" in err


def test_an_lm_eval_dataset_never_prefetched_is_one_line(checkpoint, tmp_path, capsys, monkeypatch):
    spec, _ = checkpoint
    (tmp_path / "cache").mkdir()
    monkeypatch.delenv("CAPCAST_DATA_DIR", raising=False)
    code, _, err = run_in_process(["eval", str(spec), "--tasks", "openbookqa", "--cache", str(tmp_path / "cache")], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "the dataset of task openbookqa is not in --cache" in err and "capcast prefetch" in err
    code, _, err = run_in_process(["eval", str(spec), "--tasks", "arc_easy", "--cache", str(tmp_path / "cache")], capsys)
    assert code == 2 and "task arc_easy is one of capcast's standard benchmarks" in err and "--data-dir" in err


@pytest.mark.slow
def test_a_cached_hub_checkpoint_runs_offline_from_the_cache_in_a_worker(checkpoint, tmp_path, capsys, monkeypatch):
    from capcast import api
    from capcast.store import Store

    _, folder = checkpoint
    cache = tmp_path / "cache"
    hub_cache_with(cache, HUB_ID, folder)
    spec = hub_spec(tmp_path)
    # prefetch finds it in the cache (no network call) and says so
    code, _, err = run_in_process(["prefetch", str(spec), "--tasks", "capcast_add_mc", "--cache", str(cache)], capsys)
    assert code == 0 and f"checkpoint {HUB_ID}: cached" in err, err
    for key in ("HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_CACHE"):
        monkeypatch.delenv(key, raising=False)
    summary = api.evaluate(spec, ["capcast_add_mc"], tmp_path / "store", cache=cache, limit=2, batch_size=4, device="cpu")
    assert summary.evaluated == [("hub-xs", "capcast_add_mc")]
    # the cache's offline environment was the worker's only (the runner's own local-task defaults aside)
    assert not [key for key, value in os.environ.items() if str(cache.resolve()) in value]
    assert not {"HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"} & set(os.environ)
    manifest = Store(tmp_path / "store").run_manifest("hub", "hub-xs", "capcast_add_mc")
    assert manifest["model"] == HUB_ID and manifest["weights_hash"]  # hashed from the cache's snapshot, inside the worker


def test_prefetch_bad_inputs_are_one_line_before_any_download(checkpoint, tmp_path, capsys):
    spec, _ = checkpoint
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for args, words in (
        (["--tasks", "no_such_task_xyz", "--cache", str(tmp_path / "cache")], "unknown task"),
        (["--tasks", "capcast_add_mc", "--cache", str(a_file)], "is a file"),
        (["--tasks", " , ", "--cache", str(tmp_path / "cache")], "no tasks given"),
    ):
        code, out, err = run_in_process(["prefetch", str(spec), *args], capsys)
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and words in lines[0] and "Traceback" not in err + out, (args, err)
    assert not (tmp_path / "cache").exists()
