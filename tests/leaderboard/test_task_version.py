"""A forecast carries its task's content hash: a changed task is a new registration, and the actuals
of the new task never resolve (or clash with) the old task's registration (issue 17, item 4)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from capcast.leaderboard.published import task_versions
from capcast.leaderboard.registry import load_registry, registration_id, resolve
from capcast.plugins.registry import load_registry as load_plugins
from capcast.tasks.task import Task

ROW = {"family": "fam", "model": "big", "task": "t", "metric": "acc", "law": "auto", "forecast": None, "lower": None, "upper": None,
       "status": "not predictable yet", "reason": "no signal above chance", "fitted": ["small"]}


def _build(tmp_path: Path, version: str | None, name: str) -> Path:
    """One registration through the real site build: a forecast JSON whose row may carry a task version."""
    from capcast.leaderboard.site import build_leaderboard

    row = dict(ROW, actual=None, **({"task_version": version} if version else {}))
    source = tmp_path / f"{name}.json"
    source.write_text(json.dumps({"interval": 0.9, "rows": [row]}))
    build_leaderboard([source], tmp_path / "site", registry=tmp_path / "registry.jsonl", title="t")
    return tmp_path / "registry.jsonl"


def test_a_changed_task_is_a_new_registration_and_old_ids_stay(tmp_path):
    assert registration_id(ROW, 0.9) == registration_id(dict(ROW, task_version=None), 0.9)  # older registrations keep their ids
    assert registration_id(dict(ROW, task_version="a"), 0.9) != registration_id(dict(ROW, task_version="b"), 0.9)
    registry_path = _build(tmp_path, "v150", "old")
    _build(tmp_path, "v450", "new")  # the same numbers on the changed task
    registry = load_registry(registry_path)
    assert [r["forecast"]["task_version"] for r in registry.registrations] == ["v150", "v450"]
    old, new = (r["id"] for r in registry.registrations)
    actuals = tmp_path / "actuals.csv"
    pd.DataFrame([{"family": "fam", "model": "big", "task": "t", "metric": "acc", "value": 0.4}]).to_csv(actuals, index=False)
    summary = resolve(registry_path, actuals, task_versions={"t": "v450"})
    registry = load_registry(registry_path)
    assert summary.resolved == 1 and summary.waiting == 1
    assert new in registry.resolutions and old not in registry.resolutions
    # a second actual for the old task (e.g. from its own 150 items) resolves the old one: no clash
    pd.DataFrame([{"family": "fam", "model": "big", "task": "t", "metric": "acc", "value": 0.3}]).to_csv(actuals, index=False)
    resolve(registry_path, actuals, task_versions={"t": "v150"})
    registry = load_registry(registry_path)
    assert registry.resolutions[old]["actual"] == 0.3 and registry.resolutions[new]["actual"] == 0.4


def test_task_versions_follow_the_task_content(tmp_path):
    plugins = load_plugins()
    first = task_versions(["ref_add2", "ref_copy"], plugins)
    assert first == task_versions(["ref_add2", "ref_copy"], plugins)  # stable: scratch folders do not enter it
    assert len(set(first.values())) == 2
    data = tmp_path / "items.jsonl"
    config = {"task": "mine", "dataset_kwargs": {"data_files": {"test": str(data)}}}
    plugins.tasks["mine"] = Task(name="mine", lm_eval_config=config)
    data.write_text('{"q": 1}\n')
    one = task_versions(["mine"], plugins)["mine"]
    data.write_text('{"q": 1}\n{"q": 2}\n')  # one more item: another task
    assert task_versions(["mine"], plugins)["mine"] != one
    assert "not-registered" not in task_versions(["not-registered"], plugins)
