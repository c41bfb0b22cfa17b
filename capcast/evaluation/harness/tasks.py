"""Preparing lm-eval tasks without a model: capcast's own tasks on local data
(``TaskManager(include_defaults=False)``), lm-eval's built-in tasks through its full index,
``--include-path`` folders of task YAMLs, fresh Task objects per run, and the checks that stop a
broken or greedy task in one line."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from capcast.errors import CapcastError
from capcast.evaluation.harness.environment import _quiet_libraries
from capcast.evaluation.harness.options import apply_lm_eval_options
from capcast.tasks.task import Task


@functools.lru_cache(maxsize=1)
def _builtin_task_manager():
    """lm-eval's full task index (~9 s to build): only made when a built-in task is named."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def is_lm_eval_task(name: str) -> bool:
    """Whether lm-eval ships a task or group of this name (builds the full index)."""
    return name in set(_builtin_task_manager().all_tasks)


def include_path_tasks(folder: Path | str) -> dict[str, Path]:
    """``--include-path DIR``: the lm-eval tasks that ``TaskManager(include_path=DIR)`` finds in
    the folder's YAMLs (groups and tags left out), each with the YAML that defines it."""
    from lm_eval.tasks import TaskManager

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise CapcastError(f"--include-path {folder} is not a folder; give the folder of your lm-eval task YAMLs")
    _quiet_libraries()
    manager = TaskManager(include_path=str(folder.resolve()), include_defaults=False)
    found = {name: manager.task_index[name].yaml_path for name in manager.all_subtasks}
    return {name: Path(path) for name, path in found.items() if path is not None}


@dataclass
class PreparedTask:
    """A task ready for ``simple_evaluate``: its spec, task manager and kind."""

    task: Task
    spec: Any  # config dict, lm-eval task name, or lm-eval Task object
    task_manager: Any
    kind: str  # "multiple_choice" | "generate"
    lm_eval_name: str
    target_delimiter: str = " "
    # --num-fewshot and --gen-kwargs, applied to every Task object made for this task the way
    # simple_evaluate applies its own arguments (see apply_lm_eval_options)
    num_fewshot: int | None = None
    gen_kwargs: dict | None = None

    def with_repeats(self, repeats: int) -> "PreparedTask":
        import dataclasses

        if isinstance(self.spec, dict):
            return dataclasses.replace(self, spec={**self.spec, "repeats": repeats})
        obj = self.task_manager.load([self.lm_eval_name])["tasks"][self.lm_eval_name]
        obj.config.repeats = repeats
        return dataclasses.replace(self, spec=obj)


_KINDS = {"multiple_choice": "multiple_choice", "generate_until": "generate"}


def _kind(task: Task, output_type: str) -> str:
    kind = _KINDS.get(output_type)
    if kind is None:
        raise CapcastError(
            f"task {task.name!r} has output_type {output_type!r}; capcast evaluates multiple_choice and generate_until tasks"
        )
    if task.kind and task.kind != kind:
        raise CapcastError(f"task {task.name!r} is registered as {task.kind} but its lm-eval config says {output_type}; fix one of them")
    return kind


def _yaml_task_name(path: Path) -> str:
    class _IgnoreTags(yaml.SafeLoader):
        pass

    _IgnoreTags.add_multi_constructor("!", lambda loader, suffix, node: None)
    try:
        raw = yaml.load(path.read_bytes().decode("utf-8"), Loader=_IgnoreTags)  # noqa: S506 - SafeLoader subclass
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CapcastError(f"task YAML {path} cannot be read ({type(exc).__name__}); fix the file (UTF-8 YAML)") from None
    if not isinstance(raw, dict) or not raw.get("task"):
        raise CapcastError(f"task YAML {path} has no `task:` name; add one")
    return str(raw["task"])


def _with_local_data_files(path: Path) -> dict | None:
    """The task YAML at ``path`` as lm-eval reads it (includes merged, ``!function`` resolved), with
    relative ``dataset_kwargs.data_files`` made absolute against the YAML's own folder; None when
    it names no relative data file (lm-eval then loads the YAML itself)."""
    from capcast.plugins.registry import resolve_task_paths

    try:
        from lm_eval.tasks._yaml_loader import load_yaml

        config = load_yaml(path, resolve_func=True, recursive=True)
    except ImportError:  # older lm-eval 0.4
        from lm_eval.utils import load_yaml_config

        config = load_yaml_config(str(path), mode="full")
    resolved = resolve_task_paths(Task(name="yaml", lm_eval_config=config), path.parent).lm_eval_config
    return None if resolved == config else resolved


def prepare_task(task: Task, data_dir: Path, repeats: int | None = None, *, num_fewshot: int | None = None,
                 gen_kwargs: dict | None = None) -> PreparedTask:
    """Build the task's data and config (or find the lm-eval built-in) without running a model.

    ``num_fewshot`` and ``gen_kwargs`` (``--num-fewshot``, ``--gen-kwargs``) apply to every run of
    the prepared task as simple_evaluate applies them (:func:`apply_lm_eval_options`).
    Raises a one-line :class:`CapcastError` for unknown tasks and for built-in tasks whose
    dataset cannot be fetched (offline).
    """
    if num_fewshot is not None or gen_kwargs:
        if num_fewshot is not None and num_fewshot < 0:
            raise CapcastError(f"--num-fewshot {num_fewshot} is negative; use 0 or more")
        import dataclasses

        return dataclasses.replace(prepare_task(task, data_dir, repeats), num_fewshot=num_fewshot, gen_kwargs=dict(gen_kwargs or {}) or None)
    from lm_eval.tasks import TaskManager

    _quiet_libraries()
    config = task.lm_eval_config
    if callable(config) and not isinstance(config, (str, Path)):
        config = config(Path(data_dir))
    if isinstance(config, dict):
        spec = {**config, "task": task.name}
        if spec.get("dataset_path") == "json" and isinstance(spec.get("dataset_kwargs"), dict):
            # Keep the datasets cache of generated data inside the store, whatever the env says.
            spec["dataset_kwargs"] = {"cache_dir": str(Path(data_dir).resolve() / ".hf-cache"), **spec["dataset_kwargs"]}
        repeats = repeats or (task.repeats if spec.get("output_type") == "generate_until" else None)
        if repeats:
            spec["repeats"] = repeats
        kind = _kind(task, spec.get("output_type", "generate_until"))
        return PreparedTask(task, spec, TaskManager(include_defaults=False), kind, task.name, spec.get("target_delimiter", " "))
    if isinstance(config, (str, Path)):
        path = Path(config).expanduser().resolve()
        if not path.is_file():
            raise CapcastError(f"task {task.name!r}: YAML {path} does not exist; fix lm_eval_config in the plugin")
        local = _with_local_data_files(path)
        if local is not None:  # relative data_files: lm-eval would look for them in the current directory
            return prepare_task(task.model_copy(update={"lm_eval_config": local}), data_dir, repeats)
        manager = TaskManager(include_path=str(path.parent), include_defaults=False)
        name = _yaml_task_name(path)
    elif config is None:
        if not is_lm_eval_task(task.name):
            raise CapcastError(f"unknown task {task.name!r}; it is neither a capcast task nor an lm-eval task")
        manager = _builtin_task_manager()
        name = task.name
    else:
        raise CapcastError(f"task {task.name!r}: lm_eval_config must be a YAML path, a dict, a build(data_dir) callable or None")
    try:
        loaded = manager.load([name])["tasks"]
    except Exception as exc:
        if config is None:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise CapcastError(
                f"task {task.name!r} is an lm-eval built-in whose dataset is on the hub and could not be loaded ({reason}); "
                "connect to the internet (unset HF_HUB_OFFLINE/HF_DATASETS_OFFLINE) or use a local task"
            ) from None
        raise CapcastError(f"task {task.name!r}: lm-eval cannot load it ({type(exc).__name__}: {str(exc)[:160]})") from None
    if name not in loaded:
        raise CapcastError(f"task {task.name!r} is a group of lm-eval tasks ({', '.join(sorted(loaded))}); name the tasks one by one")
    obj = loaded[name]
    kind = _kind(task, obj.config.output_type)
    prepared = PreparedTask(task, obj, manager, kind, name, obj.config.target_delimiter)
    repeats = repeats or (task.repeats if kind == "generate" else None)
    return prepared.with_repeats(repeats) if repeats else prepared


def _task_object(prepared: PreparedTask) -> Any:
    """A fresh lm-eval Task for one run (Task objects are stateful: never reuse one)."""
    spec = prepared.spec
    if isinstance(spec, dict):
        obj = prepared.task_manager.load([spec])["tasks"][prepared.lm_eval_name]
    else:
        obj = prepared.with_repeats(spec.config.repeats).spec
    return apply_lm_eval_options(obj, prepared.num_fewshot, prepared.gen_kwargs)


def effective_num_fewshot(prepared: "PreparedTask") -> int:
    """The number of few-shot examples lm-eval will put in each context of this task."""
    value = _task_object(prepared).get_config("num_fewshot")
    return int(value or 0)


def task_docs(task: Task | PreparedTask, data_dir: Path | str) -> list[dict]:
    """The task's evaluation docs in doc_id order (for checkers and difficulty analyses)."""
    prepared = task if isinstance(task, PreparedTask) else prepare_task(task, Path(data_dir))
    spec = prepared.spec
    if isinstance(spec, dict):
        obj = prepared.task_manager.load([spec])["tasks"][prepared.lm_eval_name]
    else:
        obj = spec
    return list(obj.eval_docs)


def check_task(prepared: PreparedTask, docs: int = 2) -> None:
    """Build the prompts of the task's first ``docs`` docs (no model needed) so that a broken task
    (bad Jinja, a field its templates name that the docs lack, a gold answer outside the choices)
    stops with one line before any model is loaded."""
    import jinja2

    name = prepared.task.name
    try:
        obj = _task_object(prepared)
        if obj.get_config("num_fewshot") is None:
            obj.set_config(key="num_fewshot", value=0)
        obj.build_all_requests(limit=docs, rank=0, world_size=1)
        for _doc_id, doc in obj.doc_iterator(rank=0, limit=docs, world_size=1):
            target = obj.doc_to_target(doc)
            if prepared.kind == "multiple_choice" and not getattr(obj, "multiple_input", 0):
                choices = list(obj.doc_to_choice(doc))
                gold = target if isinstance(target, list) else [target]
                for g in gold:
                    if isinstance(g, int) and not 0 <= g < len(choices):
                        raise IndexError(f"doc_to_target gives {g} but the doc has {len(choices)} choices (0 to {len(choices) - 1})")
                    if isinstance(g, str) and g not in choices and g.strip() not in [c.strip() for c in choices]:
                        raise ValueError(f"doc_to_target gives {g!r}, none of the choices {choices}")
    except CapcastError:
        raise
    except jinja2.TemplateError as exc:
        raise CapcastError(f"task {name!r}: its Jinja template is broken ({type(exc).__name__}: {exc}); fix doc_to_text / doc_to_target") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise CapcastError(f"task {name!r} cannot build its prompts ({type(exc).__name__}: {str(exc)[:200]}); "
                           "fix its doc_to_text, doc_to_target or doc_to_choice (and the fields of its docs)") from None


def check_sampling(prepared: PreparedTask) -> None:
    """Refuse a generative task that does not sample (greedy decoding: every repeat is the same text,
    so repeated sampling measures nothing)."""
    spec = prepared.spec
    kwargs = dict(spec.get("generation_kwargs") or {}) if isinstance(spec, dict) else dict(spec.config.generation_kwargs or {})
    kwargs.update(prepared.gen_kwargs or {})  # --gen-kwargs
    temperature = kwargs.get("temperature")
    if not kwargs.get("do_sample") or (temperature is not None and float(temperature) <= 0):
        raise CapcastError(f"task {prepared.task.name!r} decodes greedily (generation_kwargs need do_sample: true and a temperature above 0, "
                           f"got do_sample={kwargs.get('do_sample')!r}, temperature={temperature!r}); repeated samples would all be the same text")
