"""``capcast.testing.check_task``, the tasks' conformance check: it passes every built-in task and
reports each violation of a plugin task's contract, one message each."""

from __future__ import annotations

from pathlib import Path

import pytest

import capcast
from capcast.plugins.registry import load_registry
from capcast.tasks.arithmetic import task_builder
from capcast.testing import check_task
from tests.plugins.test_plugin_api import broken, write_plugins


def test_check_task_passes_every_builtin_task(monkeypatch) -> None:
    # an in-process `capcast eval` earlier in the session sets HF_DATASETS_OFFLINE=1, under which
    # the standard benchmarks (data on the hub) refuse to build without --data-dir
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("CAPCAST_DATA_DIR", raising=False)
    tasks = load_registry().tasks
    assert {"capcast_add_mc", "capcast_compare_mc", "capcast_add_gen", "ref_facts", "ref_add3"} <= set(tasks)
    # The standard benchmarks' data is on the hub (or under --data-dir): their checkers get one doc each.
    standard_docs = {"gsm8k": [{"question": "1+1?", "answer": "1+1=2\n#### 2"}],
                     "humaneval": [{"prompt": "def f():\n", "test": "def check(g):\n    assert g() is None\n", "entry_point": "f"}]}
    for task in tasks.values():
        check_task(task, docs=standard_docs[task.name]) if task.name in standard_docs else check_task(task)


def gen_task(checker, **fields) -> capcast.Task:
    return capcast.Task(name="gen_check", lm_eval_config=task_builder("add_gen", "gen_check", digits=1, n=5),
                        kind="generate", checker=checker, **fields)


def missing_data_builder(data_dir: Path) -> dict:
    return {"task": "t", "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(Path(data_dir) / "nope.jsonl")}}}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: gen_task(lambda sample, doc: int(sample) == int(doc["answer"])),
         r"checker\(''\, doc\) raised ValueError"),
        (lambda tmp: gen_task(lambda sample, doc: sample.strip()), r"checker\(''\, doc\) returned str '', expected a bool"),
        (lambda tmp: gen_task(lambda sample: True), r"checker cannot be called as checker\(sample, doc\)"),
        (lambda tmp: capcast.Task(name="t", lm_eval_config="my_task.yaml"), "'my_task.yaml' is a relative path"),
        (lambda tmp: capcast.Task(name="t", lm_eval_config=str(tmp / "absent.yaml")), "absent.yaml does not exist"),
        (lambda tmp: capcast.Task(name="t", lm_eval_config=lambda d: {"dataset_path": "json"}), "must return a dict with a 'task' key"),
        (lambda tmp: capcast.Task(name="t", lm_eval_config=missing_data_builder), "nope.jsonl does not exist"),
        (lambda tmp: capcast.Task(name="t", lm_eval_config={"task": "t", "dataset_kwargs": {"data_files": "rel.jsonl"}}),
         "data file 'rel.jsonl' is relative"),
        (lambda tmp: capcast.Task(name="t", kind="generate", lm_eval_config=task_builder("add_mc", "t", digits=1, n=5)),
         "kind 'generate' but the config's output_type is 'multiple_choice'"),
        (lambda tmp: capcast.Task(name="t", kind="generate", checker=lambda s, d: False), r"pass check_task\(task, docs=\[...\]\)"),
    ],
    ids=["checker-raises", "checker-not-bool", "checker-one-arg", "relative-yaml", "missing-yaml", "builder-no-task",
         "builder-missing-data", "dict-relative-data", "kind-mismatch", "checker-without-docs"],
)
def test_check_task_reports_each_violation(tmp_path: Path, make, message) -> None:
    with pytest.raises(AssertionError, match=message):
        check_task(make(tmp_path))


def test_check_task_accepts_a_checker_given_docs() -> None:
    task = capcast.Task(name="t", kind="generate", checker=lambda sample, doc: sample.strip() == doc["answer"])
    check_task(task, docs=[{"answer": "42"}])


AUTO_CANDIDATE = '''
from dataclasses import dataclass

import capcast
from capcast.laws.sigmoid import SigmoidLaw


@dataclass(frozen=True)
class Mine(SigmoidLaw):
    name: str = "my-candidate"


@dataclass(frozen=True)
class NotACandidate(SigmoidLaw):
    auto_candidate: bool = False
    name: str = "not-a-candidate"


@capcast.hookimpl
def register_laws(register):
    register(Mine())
    register(NotACandidate())
    register(SigmoidLaw(ceiling=1.0), replace=True)  # a replaced built-in candidate
'''


def test_auto_takes_its_candidates_from_the_registry(tmp_path: Path) -> None:
    from capcast.plugins.registry import load_registry

    registry = load_registry(write_plugins(tmp_path, candidate=AUTO_CANDIDATE))
    assert broken(registry) == {}
    names = [law.name for law in registry.laws["auto"].candidates]
    assert names == ["sigmoid", "ladder", "loss-error", "logacc-power", "saturating-power", "ladder-schedule", "my-candidate"]
    sigmoid = registry.laws["auto"].candidates[0]
    assert sigmoid.ceiling == 1.0 and sigmoid is registry.laws["sigmoid"]  # the plugin's replacement, not the built-in
