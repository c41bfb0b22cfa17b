"""The plugin API fails loudly: each silent failure of the plugin issue, on real plugin files in a
temporary plugins folder (``load_registry`` in process, or the real CLI), and the conformance checks
``capcast.testing.check_law`` / ``check_task`` on every built-in law and task."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import capcast
from capcast.errors import CapcastError
from capcast.laws.auto import AutoLaw
from capcast.laws.base import Prediction, Target
from capcast.plugins.registry import load_registry
from capcast.tasks.arithmetic import task_builder
from capcast.testing import check_law, check_task
from capcast.laws.schedule import attach_areas
from capcast.testing.checks import clean_series, flat_series
from tests.laws.test_ladder_schedule import BIG as BIG_SCHEDULED, annealing_family


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


# ------------------------------------------------------------------------ check_law on laws


def pass_rate_series(seed: int = 0):
    """Pass rates following the PassUntil law exp(-60 N^-0.25), with a little noise."""
    series = clean_series(chance=0.0)
    rate = np.exp(-60.0 * series.params**-0.25) * np.exp(np.random.default_rng(seed).normal(0, 0.02, len(series)))
    return dataclasses.replace(series, metric="pass_rate", value=rate, n_items=None)


def loss_series(seed: int = 0, flat: bool = False):
    """A bpb_gold loss falling as 0.6 + 0.9 (C / 1e19)^-0.12 with 0.5% noise (``flat``: about 1.2 throughout)."""
    series = clean_series()
    truth = np.full(len(series), 1.2) if flat else 0.6 + 0.9 * (series.flops / 1e19) ** -0.12
    value = truth * np.exp(np.random.default_rng(seed).normal(0, 0.005, len(series)))
    return dataclasses.replace(series, metric="bpb_gold", value=value, n_items=None, chance=0.0)


def largest_checkpoint(series) -> Target:
    i = int(np.argmax(series.flops))
    return Target(name="largest", params=float(series.params[i]), tokens=float(series.tokens[i]), flops=float(series.flops[i]))


ANNEALING = annealing_family(np.random.default_rng(0))  # (a series of cosine runs, their schedules)
SCHEDULED_SERIES = attach_areas(*ANNEALING)  # each checkpoint's learning-rate areas
SCHEDULED_TARGET = BIG_SCHEDULED


BUILTIN_LAW_INPUTS = {
    "sigmoid": {},
    "logit-linear": {},
    "logacc-power": {},
    "saturating-power": {},
    "auto": {},
    "ladder": {"series": clean_series(loss="bpb_gold"), "flat_series": flat_series(loss="bpb_gold")},
    "ladder-schedule": {"series": SCHEDULED_SERIES, "flat_series": flat_series(loss="bpb_gold"), "targets": [SCHEDULED_TARGET]},
    "loss-error": {"series": clean_series(loss="val/c4:loss"), "flat_series": flat_series(loss="val/c4:loss")},
    "passuntil": {"series": pass_rate_series()},
    "passuntil_compute": {"series": pass_rate_series()},
    "power": {"series": loss_series(), "flat_series": loss_series(flat=True)},
    # a straight line leaves [0, 1] when extrapolated (see the test below): checked where it holds
    "linear": {"targets": [largest_checkpoint(clean_series())]},
}


def test_every_builtin_law_has_inputs_for_check_law() -> None:
    assert set(load_registry().laws) == set(BUILTIN_LAW_INPUTS)


@pytest.mark.parametrize("name", sorted(BUILTIN_LAW_INPUTS))
def test_check_law_passes_every_builtin_law(name) -> None:
    check_law(load_registry().laws[name], **BUILTIN_LAW_INPUTS[name])


def test_check_law_catches_the_linear_baseline_forecasting_above_one() -> None:
    with pytest.raises(AssertionError, match=r"law 'linear': predict\('check-target', level=0.5\): a score forecast must lie in \[0, 1\]"):
        check_law(load_registry().laws["linear"])


def test_check_law_asks_for_a_loss_when_a_two_step_law_has_none() -> None:
    with pytest.raises(AssertionError, match="law 'ladder': fit raised NotPredictable on the clean series .*no loss metric"):
        check_law(load_registry().laws["ladder"])


@dataclass(frozen=True)
class MeanFit:
    law: str
    params: dict
    cov: np.ndarray

    def predict(self, target: Target, level: float = 0.9) -> Prediction:
        mean, half = self.params["mean"], stats.norm.ppf(0.5 + level / 2) * math.sqrt(self.cov[0, 0])
        return Prediction(mean=mean, lower=max(mean - half, 0.0), upper=min(mean + half, 1.0), level=level)

    def summary(self) -> str:
        return f"law {self.law}: mean {self.params['mean']:.3f}"


class LastValueLaw:
    """A small correct law (the largest checkpoint's value, binomial-ish spread) to derive bad ones from."""

    name = "last-value"
    description = "the largest checkpoint's value"
    fit_type = MeanFit

    def fit(self, series):
        value = float(series.value[int(np.argmax(series.flops))])
        return self.fit_type(self.name, {"mean": value}, np.array([[max(value * (1 - value), 1e-4) / 100]]))


class PlainFit:  # not frozen
    def __init__(self, law, params, cov):
        self.law, self.params, self.cov = law, params, cov

    predict, summary = MeanFit.predict, MeanFit.summary


@dataclass(frozen=True)
class MemoFit(MeanFit):
    def predict(self, target, level=0.9):
        self.params["last_level"] = level  # a cache in a frozen fit's dict: still a mutation
        return super().predict(target, level)


@dataclass(frozen=True)
class InvertedFit(MeanFit):
    def predict(self, target, level=0.9):
        pred = super().predict(target, level)
        return dataclasses.replace(pred, lower=pred.mean + 0.01, upper=pred.mean + 0.02)


@dataclass(frozen=True)
class FixedWidthFit(MeanFit):
    def predict(self, target, level=0.9):
        mean = self.params["mean"]
        return Prediction(mean=mean, lower=mean - 0.05, upper=mean + 0.05, level=level)


@dataclass(frozen=True)
class TupleFit(MeanFit):
    def predict(self, target, level=0.9):
        pred = super().predict(target, level)
        return (pred.mean, pred.lower, pred.upper)


class SeriesMutatingLaw(LastValueLaw):
    def fit(self, series):
        series.extra["seen_by_law"] = np.ones(len(series))
        return super().fit(series)


class CrashesOnFlatLaw(LastValueLaw):
    def fit(self, series):
        if np.ptp(series.value) < 0.01:
            raise ValueError("cannot fit a constant")
        return super().fit(series)


def law_with(cls=LastValueLaw, **attributes):
    law = cls()
    for key, value in attributes.items():
        setattr(law, key, value)
    return law


# An undescribed metric outside [0, 1] gets no signal gate (a described loss such as "loss" now has one).
LOSS_FLAT = dataclasses.replace(flat_series(), metric="my_loss", value=np.full(7, 3.0))


@pytest.mark.parametrize(
    "law, kwargs, message",
    [
        (law_with(description=""), {}, "description must be a non-empty str"),
        (law_with(fit_type=PlainFit), {}, r"the fit is mutable \(setting fit.law worked\)"),
        (law_with(fit_type=MemoFit), {}, r"predict mutated the fit \(params"),
        (law_with(fit_type=InvertedFit), {}, "expected lower <= mean <= upper"),
        (law_with(fit_type=FixedWidthFit), {}, "interval for 'largest' .* is not wider than the 0.5 one"),
        (law_with(fit_type=TupleFit), {}, "returned tuple, expected capcast.Prediction"),
        (law_with(SeriesMutatingLaw), {}, r"fit mutated its input series \(extra\)"),
        (law_with(CrashesOnFlatLaw), {}, "fit on flat data at chance raised ValueError: cannot fit a constant"),
        (law_with(), {"flat_series": LOSS_FLAT}, "on flat data at chance capcast's forecast answered 'ok'"),
    ],
    ids=["no-description", "mutable-fit", "predict-mutates", "lower-above-mean", "fixed-width", "not-a-prediction",
         "fit-mutates-series", "crash-on-flat", "fits-flat-non-score"],
)
def test_check_law_reports_each_violation(law, kwargs, message) -> None:
    targets = [largest_checkpoint(clean_series())]
    with pytest.raises(AssertionError, match=message):
        check_law(law, targets=targets, **kwargs)


def test_check_law_accepts_a_correct_law() -> None:
    check_law(LastValueLaw())


# ----------------------------------------------------------------------- check_task on tasks


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
