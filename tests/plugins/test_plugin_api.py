"""The plugin API fails loudly: each silent failure of the plugin issue, on real plugin files in a
temporary plugins folder (``load_registry`` in process, or the real CLI). The conformance checks
``capcast.testing.check_law`` / ``check_task`` are tested in test_check_law.py / test_check_task.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import capcast
from capcast.errors import CapcastError
from capcast.laws.auto import AutoLaw
from capcast.plugins.registry import load_registry
from capcast.testing import check_law, check_task


def write_plugins(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in files.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CAPCAST_PLUGINS_DIR"}
    return subprocess.run([sys.executable, "-m", "capcast", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def broken(registry) -> dict[str, str]:
    return {b.name: b.error for b in registry.broken}


GOOD = '''
import capcast

class ConstantLaw:
    name = "constant"
    description = "a third-party law"
    def fit(self, series):
        raise capcast.NotPredictable("never fits")

@capcast.hookimpl
def register_tasks(register):
    register(capcast.Task(name="good_task", lm_eval_config={"task": "good_task"}, chance=0.5))

@capcast.hookimpl
def register_laws(register):
    register(ConstantLaw())
'''

MISSPELT = '''
import capcast

@capcast.hookimpl
def register_task(register):  # the hook is register_tasks
    register(capcast.Task(name="misspelt_task", lm_eval_config={"task": "misspelt_task"}))
'''

SHADOW_AUTO = '''
import capcast

class MyAuto:
    name = "auto"
    description = "my own auto"
    def fit(self, series):
        raise capcast.NotPredictable("mine")

@capcast.hookimpl
def register_laws(register):
    register(MyAuto(){replace})
'''

NOT_A_LAW = '''
import capcast

class FineLaw:
    name = "fine_before_the_bad_one"
    description = "registered before the bad object"
    def fit(self, series):
        raise capcast.NotPredictable("no")

@capcast.hookimpl
def register_laws(register):
    register(FineLaw())
    register("not a law")
'''

MULTILINE = 'raise RuntimeError("first line of the error\\nsecond line\\n    third line, indented")\n'


def duplicate(tag: str) -> str:
    return f'''
import capcast

class DupLaw:
    name = "dup_law"
    description = "registered by {tag}"
    def fit(self, series):
        raise capcast.NotPredictable("no")

@capcast.hookimpl
def register_tasks(register):
    register(capcast.Task(name="dup_task", lm_eval_config={{"task": "dup_task"}}, description="{tag}"))

@capcast.hookimpl
def register_laws(register):
    register(DupLaw())
'''


# ------------------------------------------------------------------- registry, in process


def test_misspelt_hook_marks_the_plugin_broken_and_names_the_hook(tmp_path: Path) -> None:
    registry = load_registry(write_plugins(tmp_path, good=GOOD, misspelt=MISSPELT))
    error = broken(registry)["misspelt"]
    assert "unknown hook 'register_task'" in error and "register_tasks" in error  # names the typo and the real hooks
    assert "misspelt_task" not in registry.tasks
    assert not any(p.name == "misspelt" for p in registry.plugins)
    # everything else works
    assert registry.tasks["good_task"].chance == 0.5 and "constant" in registry.laws
    assert {"capcast_add_mc", "ref_facts"} <= set(registry.tasks) and "sigmoid" in registry.laws


def test_plugin_law_named_auto_is_refused_and_the_builtin_stays(tmp_path: Path) -> None:
    registry = load_registry(write_plugins(tmp_path, shadow=SHADOW_AUTO.format(replace=""), good=GOOD))
    error = broken(registry)["shadow"]
    assert "law 'auto' is a built-in name" in error and "replace=True" in error
    assert isinstance(registry.laws["auto"].law, AutoLaw)  # the built-in, registered by reference (LazyLaw)
    assert "constant" in registry.laws  # the other plugin is untouched


def test_plugin_law_named_auto_with_replace_true_replaces_the_builtin(tmp_path: Path) -> None:
    registry = load_registry(write_plugins(tmp_path, shadow=SHADOW_AUTO.format(replace=", replace=True")))
    assert "shadow" not in broken(registry)
    auto = registry.law("auto")
    assert type(auto).__name__ == "MyAuto" and auto.description == "my own auto"
    assert next(p for p in registry.plugins if p.name == "shadow").laws == ["auto"]


def test_a_plugin_task_shadowing_a_builtin_task_is_refused_too(tmp_path: Path) -> None:
    source = '''
    import capcast

    @capcast.hookimpl
    def register_tasks(register):
        register(capcast.Task(name="capcast_add_mc", lm_eval_config={"task": "capcast_add_mc"}, chance=0.9))
    '''
    registry = load_registry(write_plugins(tmp_path, shadow_task=source))
    assert "task 'capcast_add_mc' is a built-in name" in broken(registry)["shadow_task"]
    assert registry.tasks["capcast_add_mc"].chance == 0.25  # still the built-in


def test_registering_something_that_is_not_a_law_breaks_only_that_plugin(tmp_path: Path) -> None:
    registry = load_registry(write_plugins(tmp_path, not_a_law=NOT_A_LAW, good=GOOD))  # no exception escapes
    assert broken(registry)["not_a_law"] == (
        "TypeError: register_laws got str, expected an object with name, description and fit(series) (capcast.Law)"
    )
    assert "fine_before_the_bad_one" not in registry.laws  # a broken plugin registers nothing
    assert "constant" in registry.laws and "good_task" in registry.tasks and "auto" in registry.laws


ORDER_PLUGINS = {
    # pluggy calls the last registered first; files load in name order, so without the markers the
    # order would be z_last, m_plain, a_first
    "a_first": '''
        import capcast, plugin_order_log

        @capcast.hookimpl(tryfirst=True)
        def register_tasks(register):
            plugin_order_log.calls.append("a_first")
    ''',
    "m_plain": '''
        import capcast, plugin_order_log

        @capcast.hookimpl
        def register_tasks(register):
            plugin_order_log.calls.append("m_plain")
    ''',
    "z_last": '''
        import capcast, plugin_order_log

        @capcast.hookimpl(trylast=True)
        def register_tasks(register):
            plugin_order_log.calls.append("z_last")
    ''',
    "w_new": '''
        import capcast, plugin_order_log

        @capcast.hookimpl(wrapper=True)
        def register_tasks(register):
            plugin_order_log.calls.append("w_new before")
            result = yield
            plugin_order_log.calls.append("w_new after")
            register(capcast.Task(name="task_from_a_wrapper", lm_eval_config={"task": "task_from_a_wrapper"}))
            return result
    ''',
    "w_old": '''
        import capcast, plugin_order_log

        @capcast.hookimpl(hookwrapper=True)
        def register_tasks(register):
            plugin_order_log.calls.append("w_old before")
            outcome = yield
            outcome.get_result()
            plugin_order_log.calls.append("w_old after")
    ''',
}


def test_tryfirst_trylast_and_wrappers_run_through_pluggy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = types.SimpleNamespace(calls=[])
    monkeypatch.setitem(sys.modules, "plugin_order_log", log)
    registry = load_registry(write_plugins(tmp_path, **ORDER_PLUGINS))
    assert registry.broken == []
    assert log.calls == ["w_old before", "w_new before", "a_first", "m_plain", "z_last", "w_new after", "w_old after"]
    # a wrapper may register too (after its yield), attributed to its own plugin
    assert "task_from_a_wrapper" in registry.tasks
    assert next(p for p in registry.plugins if p.name == "w_new").tasks == ["task_from_a_wrapper"]


def test_a_failing_wrapper_breaks_only_its_plugin(tmp_path: Path) -> None:
    source = '''
    import capcast

    @capcast.hookimpl(wrapper=True)
    def register_tasks(register):
        raise RuntimeError("wrapper setup failed")
        yield
    '''
    registry = load_registry(write_plugins(tmp_path, bad_wrapper=source, good=GOOD))
    assert broken(registry) == {"bad_wrapper": "RuntimeError: wrapper setup failed (at bad_wrapper.py:6)"}
    # the implementations it wrapped still ran: built-in and third-party tasks are all there
    assert "good_task" in registry.tasks and {"capcast_add_mc", "ref_add3"} <= set(registry.tasks)


def test_public_api_is_exported_from_capcast() -> None:
    from capcast import Law, LawFit, NotPredictable, Prediction, Series, Target, Task, hookimpl  # noqa: F401
    from capcast.laws import base
    from capcast.tables import series
    from capcast.tasks import task

    assert (Law, LawFit, NotPredictable, Prediction) == (base.Law, base.LawFit, base.NotPredictable, base.Prediction)
    assert (Series, Target, Task) == (series.Series, series.Target, task.Task)
    assert hookimpl.project_name == "capcast"
    assert {"Law", "LawFit", "NotPredictable", "Prediction", "Series", "Target", "Task", "hookimpl"} <= set(capcast.__all__)
    assert capcast.testing.check_law is check_law and capcast.testing.check_task is check_task


def test_two_plugins_registering_one_name_is_an_error_naming_both(tmp_path: Path) -> None:
    registry = load_registry(write_plugins(tmp_path, dup_a=duplicate("a"), dup_b=duplicate("b")))
    assert registry.conflicts == {("task", "dup_task"): ["dup_a", "dup_b"], ("law", "dup_law"): ["dup_a", "dup_b"]}
    assert "dup_task" not in registry.tasks and "dup_law" not in registry.laws  # neither wins silently
    with pytest.raises(CapcastError, match=r"task 'dup_task' is registered by several plugins \(dup_a, dup_b\)"):
        registry.task("dup_task")
    with pytest.raises(CapcastError, match=r"law 'dup_law' is registered by several plugins \(dup_a, dup_b\)"):
        registry.law("dup_law")
    # `capcast eval` resolves task names the same way: the conflict, not "unknown task"
    from capcast.evaluation.runner import resolve_tasks

    with pytest.raises(CapcastError, match=r"task 'dup_task' is registered by several plugins \(dup_a, dup_b\)"):
        resolve_tasks(["dup_task"], registry)


YAML_TASK = """
task: my_task
dataset_path: json
dataset_kwargs:
  data_files:
    test: my_data.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{q}}"
doc_to_choice: ["no", "yes"]
doc_to_target: a
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""

RELATIVE_PLUGIN = '''
from pathlib import Path

import capcast

@capcast.hookimpl
def register_tasks(register):
    register(capcast.Task(name="my_task", lm_eval_config="my_task.yaml", kind="multiple_choice", chance=0.5))
    register(capcast.Task(name="my_task_path", lm_eval_config=Path("my_task.yaml"), chance=0.5))
    register(capcast.Task(name="my_dict_task", chance=0.5, lm_eval_config={
        "task": "my_dict_task", "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": "my_data.jsonl", "hub": "hf://datasets/someone/data.jsonl"}}}))
'''


def test_relative_yaml_and_data_paths_resolve_against_the_plugin_folder(tmp_path: Path, monkeypatch, offline_hf_env) -> None:
    from capcast.evaluation import harness

    plugins = write_plugins(tmp_path / "plugins", relative=RELATIVE_PLUGIN)
    (plugins / "my_task.yaml").write_text(YAML_TASK)
    docs = [{"q": f"{i}?", "a": i % 2} for i in range(4)]
    (plugins / "my_data.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    registry = load_registry(plugins)
    assert registry.broken == []
    yaml_path = str((plugins / "my_task.yaml").resolve())
    assert registry.tasks["my_task"].lm_eval_config == yaml_path
    assert registry.tasks["my_task_path"].lm_eval_config == yaml_path
    files = registry.tasks["my_dict_task"].lm_eval_config["dataset_kwargs"]["data_files"]
    assert files == {"test": str((plugins / "my_data.jsonl").resolve()), "hub": "hf://datasets/someone/data.jsonl"}
    check_task(registry.tasks["my_task"])  # absolute YAML, its data file exists

    # the YAML's own relative data_files are read from the YAML's folder, not from the cwd
    prepared = harness.prepare_task(registry.tasks["my_task"], tmp_path / "data")
    assert prepared.kind == "multiple_choice" and prepared.lm_eval_name == "my_task"
    assert prepared.spec["dataset_kwargs"]["data_files"] == {"test": str((plugins / "my_data.jsonl").resolve())}
    assert harness.task_docs(prepared, tmp_path / "data") == docs


# --------------------------------------------------------------------------- the real CLI


@pytest.fixture(scope="module")
def cli_plugins(tmp_path_factory) -> dict:
    """One plugins folder with a good, a broken (multi-line error), a not-a-law and two conflicting
    plugins; `capcast plugins` with --plugins-dir after and before the command, and a forecast."""
    folder = write_plugins(tmp_path_factory.mktemp("cli") / "plugins", good=GOOD, multiline=MULTILINE, not_a_law=NOT_A_LAW,
                           dup_a=duplicate("a"), dup_b=duplicate("b"))
    cwd = folder.parent
    return {
        "folder": folder,
        "after": run_cli("plugins", "--plugins-dir", str(folder), cwd=cwd),
        "before": run_cli("--plugins-dir", str(folder), "plugins", cwd=cwd),
        "forecast": run_cli("forecast", "--scores", "missing.csv", "--target-params", "1e9", "--target-tokens", "2e10",
                            f"--plugins-dir={folder}", cwd=cwd),
    }


@pytest.mark.parametrize("where", ["after", "before"])
def test_plugins_dir_works_before_and_after_the_subcommand(cli_plugins, where) -> None:
    proc = cli_plugins[where]
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "good_task" in line)
    assert " ok " in row and "constant" in row


@pytest.mark.parametrize("where", ["after", "before"])
def test_a_broken_plugin_is_listed_once_with_its_whole_error_on_one_line(cli_plugins, where) -> None:
    out = cli_plugins[where].stdout
    lines = [line for line in out.splitlines() if "first line of the error" in line]
    assert lines == [lines[0]] and lines[0].startswith("broken plugin multiline (")
    assert lines[0].endswith("): RuntimeError: first line of the error second line third line, indented (at multiline.py:1)")
    assert sum(line.startswith("broken plugin ") for line in out.splitlines()) == 2  # multiline and not_a_law
    assert "Traceback" not in out + cli_plugins[where].stderr
    assert [line for line in out.splitlines() if line.startswith("broken plugin not_a_law")] == [
        f"broken plugin not_a_law ({cli_plugins['folder'] / 'not_a_law.py'}): TypeError: register_laws got str, expected an "
        "object with name, description and fit(series) (capcast.Law)"
    ]


@pytest.mark.parametrize("where", ["after", "before"])
def test_cli_prints_a_conflict_line_per_duplicated_name(cli_plugins, where) -> None:
    lines = [line for line in cli_plugins[where].stdout.splitlines() if line.startswith("conflict:")]
    assert lines == [
        "conflict: task 'dup_task' is registered by dup_a, dup_b; it cannot be used until one is removed",
        "conflict: law 'dup_law' is registered by dup_a, dup_b; it cannot be used until one is removed",
    ]


def test_a_command_using_the_registry_warns_once_per_broken_plugin(cli_plugins) -> None:
    proc = cli_plugins["forecast"]
    assert proc.returncode == 2 and proc.stdout == ""
    lines = proc.stderr.splitlines()
    warnings = [line for line in lines if line.startswith("warning: plugin multiline ")]
    assert len(warnings) == 1 and warnings[0].endswith(
        "is broken: RuntimeError: first line of the error second line third line, indented (at multiline.py:1)")
    assert sum(line.startswith("warning: plugin not_a_law ") for line in lines) == 1
    assert lines[-1] == "error: missing.csv: no such scores file; pass a CSV or Parquet scores table"
    assert len(lines) == 3 and "Traceback" not in proc.stderr
