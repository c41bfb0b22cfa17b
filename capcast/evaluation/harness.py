"""The one adapter between capcast and lm-evaluation-harness: the ONLY module that imports ``lm_eval``.

It loads a checkpoint through one of lm-eval's model backends (``hf`` by default, ``vllm`` on a
GPU), runs ``lm_eval.simple_evaluate(..., log_samples=True)`` (the Python API, never the CLI) and
turns ``results["samples"]`` into typed column tables:

- multiple choice: one row per (doc, choice) with the summed log-likelihood, the number of
  continuation tokens exactly as lm-eval tokenised them, UTF-8 bytes, is_greedy and is_gold;
- generative: one row per (doc, sample) for ALL ``repeats`` samples (lm-eval's default
  ``take_first`` filter keeps only the first: capcast reads ``resps``, not ``filtered_resps``)
  with the task checker's verdict.

Capcast's own tasks run with ``TaskManager(include_defaults=False)`` on local data, so nothing is
downloaded; an lm-eval built-in task (a :class:`capcast.Task` with ``lm_eval_config=None``) goes
through the default task index and may download its dataset from the hub.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import pyarrow as pa
import yaml

from capcast.errors import CapcastError
# weights_hash is re-exported: run manifests and callers fingerprint checkpoints through the harness.
from capcast.evaluation.records import by_doc, choice_table, numeric_metrics, sample_table, task_hash, weights_hash  # noqa: F401
from capcast.tasks.task import Task

BACKENDS = ("hf", "vllm")


def check_device(device: str | None) -> None:
    """A one-line error for a device name that is none of cpu, cuda, cuda:N or mps (None: auto)."""
    if device is not None and not (device == "cpu" or device.startswith("cuda") or device == "mps"):
        raise CapcastError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N")


def resolve_device(device: str | None) -> str:
    """``None`` means auto: ``cuda`` when a GPU is visible, else ``cpu``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def prepare_environment(store_dir: Path, *, local_tasks: bool, local_models: bool) -> None:
    """Keep runs of local tasks offline and their dataset cache inside the store.

    Hugging Face libraries read these variables when first imported, so this must run before
    them (``capcast eval`` does); values the user set are left alone.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if local_tasks:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_CACHE", str(Path(store_dir).resolve() / "cache" / "hf-datasets"))
        if local_models:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")


@functools.lru_cache(maxsize=1)
def _quiet_libraries() -> None:
    """Mute log lines and progress bars of the libraries underneath capcast's own progress bar.

    Cosmetic only: lm-eval's per-task request-building bar has no switch, and its git lookup
    prints "fatal: not a git repository" outside a repo, so both are swapped for silent
    equivalents inside lm-eval's modules (same results).
    """
    import subprocess

    for name in ("lm_eval", "lm-eval", "transformers", "datasets", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except Exception:
        pass
    try:
        import lm_eval.api.task
        import lm_eval.evaluator
        from tqdm import tqdm

        def git_hash_quietly() -> str | None:
            try:
                out = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, check=False)
                return out.stdout.strip() or None
            except OSError:
                return None

        lm_eval.evaluator.get_git_commit_hash = git_hash_quietly
        lm_eval.api.task.tqdm = functools.partial(tqdm, disable=True)
    except Exception:
        pass


def versions() -> dict[str, str]:
    """Versions of the parts that change numbers: recorded in every run manifest."""
    return dict(_installed_versions())


@functools.lru_cache(maxsize=1)  # installed versions do not change within a process
def _installed_versions() -> dict[str, str]:
    out = {}
    for dist in ("lm_eval", "transformers", "torch", "tokenizers", "datasets", "vllm"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


# --------------------------------------------------------------------------------------- models


@dataclass
class LoadedModel:
    """An lm-eval model instance plus what capcast records about it."""

    lm: Any
    model: str
    revision: str | None
    backend: str
    dtype: str
    device: str
    batch_size: int | str
    # (context, continuation) -> number of continuation tokens, as lm-eval tokenised them.
    continuation_tokens: dict = field(default_factory=dict)
    # with batch_size "auto": the sizes lm-eval's backend detected during the current run
    detected_batch_sizes: list = field(default_factory=list)

    def used_batch_size(self) -> str:
        """The batch size of the current run, for the manifest: the one given, or for ``auto``
        the size(s) lm-eval detected (largest first); ``auto`` when the backend exposes none (vllm)."""
        if not str(self.batch_size).startswith("auto"):
            return str(self.batch_size)
        sizes = set(self.detected_batch_sizes) | {int(v) for v in (getattr(self.lm, "batch_sizes", None) or {}).values()}
        return ",".join(str(v) for v in sorted(sizes, reverse=True)) if sizes else str(self.batch_size)

    def count_tokens(self, context: str, continuation: str) -> int | None:
        """Continuation tokens of a scored pair: recorded during the run, else re-tokenised."""
        tokens = self.continuation_tokens.get((context, continuation))
        return tokens if tokens is not None else _continuation_tokens_fallback(self.lm, context, continuation)


def load_model(
    model: str,
    revision: str | None = None,
    *,
    backend: str = "hf",
    dtype: str | None = None,
    device: str | None = None,
    batch_size: int | str = 16,
    quiet: bool = True,
) -> LoadedModel:
    """Load ``model`` (local path or hub id) through lm-eval's ``backend``.

    ``dtype=None`` picks float32 on CPU (exact, and as fast there) and the checkpoint's own
    dtype (``auto``) elsewhere.
    """
    if backend not in BACKENDS:
        raise CapcastError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    device = resolve_device(device)
    dtype = dtype or ("float32" if device == "cpu" else "auto")
    if quiet:
        _quiet_libraries()
    from lm_eval.api.registry import get_model

    args: dict[str, Any] = {"pretrained": model, "dtype": dtype}
    if revision:
        args["revision"] = revision
    try:
        lm = get_model(backend).create_from_arg_obj(args, {"batch_size": batch_size, "device": device})
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CapcastError(f"cannot load model {model!r} (revision {revision or 'default'}) with backend {backend}: {first}") from None
    loaded = LoadedModel(lm=lm, model=model, revision=revision, backend=backend, dtype=dtype, device=device, batch_size=batch_size)
    _instrument(loaded, quiet)
    return loaded


def _instrument(loaded: LoadedModel, quiet: bool) -> None:
    """Record continuation token counts where lm-eval computes them, and mute its progress bars.

    Every TemplateLM backend (hf, vllm) tokenises each (context, continuation) pair once and hands
    ``(pair, context_ids, continuation_ids)`` to ``_loglikelihood_tokens``; reading the lengths
    there costs nothing and matches lm-eval's tokenisation exactly (trailing-space moves, empty
    contexts, special tokens).
    """
    lm = loaded.lm
    sink = loaded.continuation_tokens
    if hasattr(lm, "_loglikelihood_tokens"):
        original = lm._loglikelihood_tokens

        def recording(requests, *args, **kwargs):
            for pair, _context_ids, continuation_ids in requests:
                sink[tuple(pair)] = len(continuation_ids)
            if quiet:
                kwargs["disable_tqdm"] = True
            return original(requests, *args, **kwargs)

        lm._loglikelihood_tokens = recording
    if str(loaded.batch_size).startswith("auto") and hasattr(lm, "_detect_batch_size"):
        # HFLM finds the largest batch that fits (per loglikelihood call, and once per
        # generate_until call) but keeps only the former (lm.batch_sizes): record both here.
        detect = lm._detect_batch_size

        def detecting(*args, **kwargs):
            size = detect(*args, **kwargs)
            loaded.detected_batch_sizes.append(int(size))
            return size

        lm._detect_batch_size = detecting
    if quiet:
        for method in ("loglikelihood", "generate_until", "loglikelihood_rolling"):
            if hasattr(lm, method):
                setattr(lm, method, functools.partial(getattr(lm, method), disable_tqdm=True))


def _continuation_tokens_fallback(lm: Any, context: str, continuation: str) -> int | None:
    """Token count of a continuation the way TemplateLM.loglikelihood encodes it."""
    try:
        if context == "":
            ids = lm.tok_encode(continuation, add_special_tokens=False)
            return len(ids) if lm.prefix_token_id != ids[0] else len(ids) - 1
        return len(lm._encode_pair(context, continuation)[1])
    except Exception:
        return None


# ---------------------------------------------------------------------------------------- tasks


@functools.lru_cache(maxsize=1)
def _builtin_task_manager():
    """lm-eval's full task index (~9 s to build): only made when a built-in task is named."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def is_lm_eval_task(name: str) -> bool:
    """Whether lm-eval ships a task or group of this name (builds the full index)."""
    return name in set(_builtin_task_manager().all_tasks)


@dataclass
class PreparedTask:
    """A task ready for ``simple_evaluate``: its spec, task manager and kind."""

    task: Task
    spec: Any  # config dict, lm-eval task name, or lm-eval Task object
    task_manager: Any
    kind: str  # "multiple_choice" | "generate"
    lm_eval_name: str
    target_delimiter: str = " "

    def with_repeats(self, repeats: int) -> "PreparedTask":
        if isinstance(self.spec, dict):
            return PreparedTask(self.task, {**self.spec, "repeats": repeats}, self.task_manager, self.kind, self.lm_eval_name, self.target_delimiter)
        obj = self.task_manager.load([self.lm_eval_name])["tasks"][self.lm_eval_name]
        obj.config.repeats = repeats
        return PreparedTask(self.task, obj, self.task_manager, self.kind, self.lm_eval_name, self.target_delimiter)


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
        raw = yaml.load(path.read_text(), Loader=_IgnoreTags)  # noqa: S506 - SafeLoader subclass
    except (OSError, yaml.YAMLError) as exc:
        raise CapcastError(f"task YAML {path} cannot be read ({type(exc).__name__}); fix the file") from None
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


def prepare_task(task: Task, data_dir: Path, repeats: int | None = None) -> PreparedTask:
    """Build the task's data and config (or find the lm-eval built-in) without running a model.

    Raises a one-line :class:`CapcastError` for unknown tasks and for built-in tasks whose
    dataset cannot be fetched (offline).
    """
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


# ------------------------------------------------------------------------------------------ runs


@dataclass
class TaskRun:
    """What one (model, task) run produced, ready for the store."""

    kind: str
    records: pa.Table  # choices (multiple choice) or samples (generative), without key columns
    n_docs: int
    lm_eval_metrics: dict[str, float]
    settings: dict[str, Any]


def _task_object(prepared: PreparedTask) -> Any:
    """A fresh lm-eval Task for one run (Task objects are stateful: never reuse one)."""
    spec = prepared.spec
    if isinstance(spec, dict):
        return prepared.task_manager.load([spec])["tasks"][prepared.lm_eval_name]
    return prepared.with_repeats(spec.config.repeats).spec


def _evaluate(loaded: LoadedModel, prepared: PreparedTask, *, limit=None, samples=None, seed: int = 1234) -> tuple[dict, Any]:
    """lm-eval's results (with logged samples) and the Task object that produced them."""
    import lm_eval

    loaded.continuation_tokens.clear()
    loaded.detected_batch_sizes.clear()
    if isinstance(getattr(loaded.lm, "batch_sizes", None), dict):
        loaded.lm.batch_sizes.clear()  # HFLM's detected sizes of the previous run
    task_obj = _task_object(prepared)
    try:
        results = lm_eval.simple_evaluate(
            model=loaded.lm,
            tasks=[task_obj],
            task_manager=prepared.task_manager,
            limit=limit,
            samples=samples,
            log_samples=True,
            bootstrap_iters=0,
            random_seed=seed,
            numpy_random_seed=seed,
            torch_random_seed=seed,
            fewshot_random_seed=seed,
        )
    except Exception as exc:
        # Runtime failures (out of memory, a broken tokenizer) are real errors, not user mistakes,
        # but a missing data file is: name it in one line.
        if isinstance(exc, FileNotFoundError):
            raise CapcastError(f"task {prepared.task.name!r}: {exc}") from None
        raise
    return results, task_obj


def context_choices(task_obj: Any):
    """For lm-eval's ``multiple_input`` tasks (e.g. winogrande: the choices sit in the contexts and
    one continuation is shared), ``doc -> (gold, choices)`` as lm-eval scores them: the gold index
    comes from ``doc_to_text`` and the choice texts (acc_norm's lengths) from ``doc_to_choice``.
    ``None`` for ordinary multiple-choice tasks, whose logged target names the gold choice."""
    if not getattr(task_obj, "multiple_input", 0):
        return None
    return lambda doc: (task_obj.doc_to_text(doc), list(task_obj.doc_to_choice(doc)))


def run_task(loaded: LoadedModel, prepared: PreparedTask, *, limit: int | None = None, seed: int = 1234) -> TaskRun:
    """Evaluate one loaded model on one prepared task; return its per-instance records."""
    res, task_obj = _evaluate(loaded, prepared, limit=limit, seed=seed)
    name = prepared.lm_eval_name
    samples = res["samples"][name]
    if prepared.kind == "multiple_choice":
        records = choice_table(samples, prepared.target_delimiter, loaded.count_tokens, context_choices(task_obj))
    else:
        records = sample_table(prepared.task, samples)
    repeats = prepared.spec.get("repeats", 1) if isinstance(prepared.spec, dict) else prepared.spec.config.repeats
    settings = {
        "backend": loaded.backend,
        "dtype": loaded.dtype,
        "device": loaded.device,
        "batch_size": loaded.used_batch_size(),
        "batch_size_requested": str(loaded.batch_size),
        "seed": seed,
        "limit": limit,
        "repeats": int(repeats or 1),
        "task_hash": task_hash(samples),
    }
    return TaskRun(
        kind=prepared.kind,
        records=records,
        n_docs=len(by_doc(samples)),
        lm_eval_metrics=numeric_metrics(res["results"].get(name, {})),
        settings=settings,
    )


@dataclass
class PlannedRun:
    """What :func:`run_task` will measure for a prepared task, known before any model is loaded."""

    repeats: int
    task_hash: str  # equals the ``task_hash`` run_task records for the same limit and seed
    task_docs: int  # docs in the task (before --limit)


def plan_run(prepared: PreparedTask, *, limit: int | None = None, seed: int = 1234) -> PlannedRun:
    """The settings :func:`run_task` ``(loaded, prepared, limit=limit, seed=seed)`` will record
    that depend on the task alone: repeats, and lm-eval's task hash of docs + prompts + targets.

    The hash is computed before running, the way lm-eval computes it after: a fresh Task object
    gets lm-eval's defaults (``num_fewshot`` 0 unless the task sets it, the few-shot seed),
    builds its requests for the first ``limit`` docs (no model needed: this is lm-eval's own
    prompt construction, few-shot examples included) and hashes each doc, its first request's
    context and its target as ``evaluate(..., log_samples=True)`` does, once per filter. It costs
    lm-eval's request building, no forward pass (about 0.7 s for 1000 docs on a CPU).
    """
    import hashlib
    import json
    from collections import defaultdict

    from lm_eval.utils import handle_non_serializable, hash_string

    obj = _task_object(prepared)
    if obj.get_config("num_fewshot") is None:  # simple_evaluate's default
        obj.set_config(key="num_fewshot", value=0)
    obj.set_fewshot_seed(seed=seed)
    obj.build_all_requests(limit=limit, rank=0, world_size=1)
    by_doc_id: dict[int, list] = defaultdict(list)
    for inst in obj.instances:
        by_doc_id[inst.doc_id].append(inst)
    parts = []
    for doc_id, doc in obj.doc_iterator(rank=0, limit=limit, world_size=1):
        first = min(by_doc_id[doc_id], key=lambda inst: inst.idx)
        doc_json = json.dumps(first.doc, indent=2, default=handle_non_serializable, ensure_ascii=False)
        parts.append(hash_string(doc_json) + hash_string(first.arguments[0]) + hash_string(str(obj.doc_to_target(doc))))
    # lm-eval logs every doc once per filter (results["samples"] holds all of them).
    n_filters = len(dict.fromkeys(f.name for f in getattr(obj, "_filters", [])))
    repeats = prepared.spec.get("repeats", 1) if isinstance(prepared.spec, dict) else prepared.spec.config.repeats
    return PlannedRun(
        repeats=int(repeats or 1),
        task_hash=hashlib.sha256("".join(parts * n_filters).encode("utf-8")).hexdigest(),
        task_docs=len(obj.eval_docs),
    )


def generate_samples(
    checkpoint_model: str | LoadedModel,
    revision: str | None,
    task: Task | PreparedTask,
    data_dir: Path | str,
    doc_ids: Sequence[int],
    n_per_doc: int,
    seed: int = 1234,
    batch_size: int = 64,
    device: str | None = None,
    backend: str = "hf",
) -> dict[int, list[str]]:
    """Draw ``n_per_doc`` sampled generations for each of ``doc_ids`` of a generative task.

    Runs through lm-eval (``simple_evaluate(samples={task: doc_ids})`` with the task's
    ``repeats`` set to ``n_per_doc``), so any lm-eval backend works (``vllm`` on a GPU). Pass a
    :class:`LoadedModel` (from :func:`load_model`) to reuse one model over many calls. Samples
    depend on seed, batch size and backend: fix them for reproducible draws.
    """
    if n_per_doc < 1 or not doc_ids:
        return {int(d): [] for d in doc_ids}
    loaded = (
        checkpoint_model
        if isinstance(checkpoint_model, LoadedModel)
        else load_model(checkpoint_model, revision, backend=backend, device=device, batch_size=batch_size)
    )
    prepared = task if isinstance(task, PreparedTask) else prepare_task(task, Path(data_dir))
    if prepared.kind != "generate":
        raise CapcastError(f"task {prepared.task.name!r} is multiple choice; sampling needs a generative task")
    prepared = prepared.with_repeats(n_per_doc)
    wanted = sorted({int(d) for d in doc_ids})
    res, _ = _evaluate(loaded, prepared, samples={prepared.lm_eval_name: wanted}, seed=seed)
    out: dict[int, list[str]] = {d: [] for d in wanted}
    for sample in by_doc(res["samples"][prepared.lm_eval_name]):
        out[int(sample["doc_id"])] = [str(s) for s in sample["resps"][0]]
    return out


def task_docs(task: Task | PreparedTask, data_dir: Path | str) -> list[dict]:
    """The task's evaluation docs in doc_id order (for checkers and difficulty analyses)."""
    prepared = task if isinstance(task, PreparedTask) else prepare_task(task, Path(data_dir))
    spec = prepared.spec
    if isinstance(spec, dict):
        obj = prepared.task_manager.load([spec])["tasks"][prepared.lm_eval_name]
    else:
        obj = spec
    return list(obj.eval_docs)
