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
from capcast.evaluation.records import (  # noqa: F401
    CheckerErrors, by_doc, choice_table, numeric_metrics, sample_table, task_hash, weights_hash,
)
from capcast.tasks.task import Task

BACKENDS = ("hf", "vllm", "capcast-hf")
# capcast-hf (capcast.evaluation.backend): lm-eval's hf backend that encodes each shared context once.
SHARED_CONTEXT_BACKEND = "capcast-hf"


def check_device(device: str | None) -> None:
    """A one-line error for a device that is none of cpu, cuda, cuda:N or mps (None: auto), or that
    this machine does not have (lm-eval would fall back to the CPU and the run would be mislabelled)."""
    import re

    if device is None or device == "cpu":
        return
    if not (re.fullmatch(r"cuda(:\d+)?", device) or device == "mps"):
        raise CapcastError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N")
    import torch

    if device == "mps":
        if not torch.backends.mps.is_available():
            raise CapcastError("--device mps: this machine has no Apple GPU; use --device cpu")
        return
    if not torch.cuda.is_available():
        raise CapcastError(f"--device {device}: no CUDA GPU is visible on this machine; use --device cpu (or leave --device out)")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise CapcastError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s), cuda:0 to "
                           f"cuda:{torch.cuda.device_count() - 1}; pick one of those")


def check_backend(backend: str) -> None:
    """A one-line error for an unknown backend, or for vllm where vLLM is not installed."""
    import importlib.util

    if backend not in BACKENDS:
        raise CapcastError(f"--backend {backend!r} is unknown; use one of {', '.join(BACKENDS)}")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise CapcastError("--backend vllm needs vLLM, which is not installed here; `pip install vllm` on a GPU machine, or use --backend hf")


def check_dtype(dtype: str | None) -> None:
    """A one-line error for a dtype torch does not know as a floating type (None and auto are fine)."""
    if dtype is None or dtype == "auto":
        return
    import torch

    value = getattr(torch, dtype, None) if dtype.isidentifier() else None
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise CapcastError(f"--dtype {dtype!r} is not a floating-point torch dtype; use auto, float32, float16 or bfloat16")


def check_weights(model: str) -> None:
    """A local checkpoint must hold safetensors weights: pickle weights (``pytorch_model.bin``,
    ``.pt``) can run code when loaded, so capcast refuses them in one line, before any work."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return  # a hub id: the hub's files are checked when downloaded
    files = [p for p in folder.rglob("*") if p.is_file()]
    if any(p.suffix == ".safetensors" for p in files):
        return
    pickled = sorted(p.name for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
    if pickled:
        raise CapcastError(f"checkpoint {model} holds only pickle weights ({', '.join(pickled[:3])}), which can run code when loaded; "
                           "convert it to safetensors (transformers: model.save_pretrained(folder, safe_serialization=True))")


# Set by capcast itself: the family spec names the checkpoint, --batch-size and --device the rest.
_OWN_MODEL_ARGS = {"pretrained": "the family spec's model", "revision": "the family spec's revision",
                   "batch_size": "--batch-size", "device": "--device"}


def check_model_args(model_args: dict | None, dtype: str | None = None) -> dict:
    """``--model-args`` as given, or one line for a key capcast sets from elsewhere (or dtype twice)."""
    model_args = dict(model_args or {})
    for key, where in _OWN_MODEL_ARGS.items():
        if key in model_args:
            raise CapcastError(f"--model-args {key}=... is not allowed: capcast takes it from {where}; drop it from --model-args")
    if "dtype" in model_args:
        if dtype is not None:
            raise CapcastError("dtype is given twice (--dtype and --model-args dtype=...); keep one")
        check_dtype(str(model_args["dtype"]))
    return model_args


def check_seed(seed: int) -> None:
    if not 0 <= seed < 2**32:
        raise CapcastError(f"--seed {seed} is out of range; use a whole number from 0 to {2**32 - 1}")


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
    model_args: dict = field(default_factory=dict)  # --model-args given to the backend's constructor

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
    model_args: dict | None = None,
) -> LoadedModel:
    """Load ``model`` (local path or hub id) through lm-eval's ``backend``.

    ``dtype=None`` picks float32 on CPU (exact, and as fast there) and the checkpoint's own
    dtype (``auto``) elsewhere. ``model_args`` (``--model-args``, see :func:`check_model_args`)
    go to the backend's constructor beside ``pretrained``, as lm-eval's ``--model_args`` do.
    """
    given_args = check_model_args(model_args, dtype)
    model_args = dict(given_args)
    if "dtype" in model_args:
        dtype = str(model_args.pop("dtype"))
    if backend not in BACKENDS:
        raise CapcastError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    device = resolve_device(device)
    dtype = dtype or ("float32" if device == "cpu" else "auto")
    if quiet:
        _quiet_libraries()
    from lm_eval.api.registry import get_model

    if backend == SHARED_CONTEXT_BACKEND:
        import capcast.evaluation.backend  # noqa: F401 - registers the backend with lm-eval
    args: dict[str, Any] = {"pretrained": model, "dtype": dtype, **model_args}
    if revision:
        args["revision"] = revision
    try:
        lm = get_model(backend).create_from_arg_obj(args, {"batch_size": batch_size, "device": device})
    except Exception as exc:  # truncated or pickled weights, a broken config, no memory: all say why in one line
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise CapcastError(f"cannot load model {model!r} (revision {revision or 'default'}) with backend {backend}: "
                           f"{type(exc).__name__}: {first}; check the checkpoint's files (safetensors weights, config.json)") from None
    used_device, used_dtype = _used_device_and_dtype(lm, device, dtype)
    loaded = LoadedModel(lm=lm, model=model, revision=revision, backend=backend, dtype=used_dtype, device=used_device,
                         batch_size=batch_size, model_args=given_args)
    from capcast.evaluation.threads import apply_threads

    apply_threads(getattr(lm, "_model", None))  # --threads, TORCH_NUM_THREADS/OMP_NUM_THREADS, or one for small models
    _instrument(loaded, quiet)
    return loaded


def _used_device_and_dtype(lm: Any, device: str, dtype: str) -> tuple[str, str]:
    """The device and dtype the loaded weights are actually on (recorded in the manifest; ``auto``
    becomes the checkpoint's own dtype), or the requested ones where the backend hides its model (vllm)."""
    model = getattr(lm, "_model", None)
    try:
        weight = next(model.parameters())
        return str(weight.device), str(weight.dtype).removeprefix("torch.")
    except (AttributeError, StopIteration, TypeError):
        return str(getattr(lm, "device", device)), dtype


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
        obj = prepared.task_manager.load([spec])["tasks"][prepared.lm_eval_name]
    else:
        obj = prepared.with_repeats(spec.config.repeats).spec
    return apply_lm_eval_options(obj, prepared.num_fewshot, prepared.gen_kwargs)


def apply_lm_eval_options(obj: Any, num_fewshot: int | None, gen_kwargs: dict | None) -> Any:
    """``--num-fewshot`` and ``--gen-kwargs`` on an lm-eval Task object, by simple_evaluate's own
    rules: gen_kwargs update a generative task's ``generation_kwargs``; num_fewshot replaces the
    task's setting, except where its config sets ``num_fewshot: 0`` (lm-eval never overrides that)."""
    if gen_kwargs and obj.get_config("output_type") == "generate_until":
        obj.set_config(key="generation_kwargs", value=dict(gen_kwargs), update=True)
    if num_fewshot is not None and obj.get_config("num_fewshot") != 0:
        obj.set_config(key="num_fewshot", value=int(num_fewshot))
    return obj


def effective_num_fewshot(prepared: "PreparedTask") -> int:
    """The number of few-shot examples lm-eval will put in each context of this task."""
    value = _task_object(prepared).get_config("num_fewshot")
    return int(value or 0)


def parse_args_string(text: str | None, option: str) -> dict:
    """``k=v,k2=v2`` parsed as lm-eval's CLI parses ``--model_args`` and ``--gen_kwargs``
    (``true``/``false``/numbers become bools/numbers); one line for an item without ``=``."""
    from lm_eval.utils import simple_parse_args_string

    if text is None or not text.strip():
        return {}
    bad = [item for item in text.split(",") if item.strip() and "=" not in item]
    if bad:
        raise CapcastError(f"{option} {text!r}: {bad[0]!r} is not key=value; write it as key=value,key2=value2")
    return simple_parse_args_string(text)


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
            num_fewshot=prepared.num_fewshot,
            gen_kwargs=prepared.gen_kwargs or None,
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


_REDUCING_FILTERS = ("TakeFirstFilter", "TakeKFilter", "MajorityVoteFilter")


def response_filter(task_obj: Any) -> tuple[str | None, Any]:
    """``(filter name, responses(doc, outputs))`` for the task's first ``filter_list`` entry, the one
    capcast scores generative samples by: every step but those that pick among the repeats
    (take_first, take_first_k, majority_vote), applied to each of the K samples, so the checker (or
    the task's own metric) sees what lm-eval's metric sees. ``(None, None)`` without filters."""
    ensembles = list(getattr(task_obj, "_filters", None) or [])
    if not ensembles:
        return None, None
    ensemble = ensembles[0]
    steps = [make() for make in ensemble.filters]
    steps = [f for f in steps if type(f).__name__ not in _REDUCING_FILTERS]

    def responses(doc: dict, outputs: list) -> list:
        resps: Any = [list(outputs)]
        for step in steps:
            resps = list(step.apply(resps, [doc]))
        out = resps[0]
        out = [out] if isinstance(out, str) else list(out)
        if len(out) != len(outputs):
            raise CapcastError(f"task {getattr(task_obj, 'config', None) and task_obj.config.task!r}: filter {ensemble.name!r} does not "
                               "keep one response per sample; capcast scores each sample, so use per-response filters")
        return out

    return ensemble.name, responses


def metric_verdict(task_obj: Any):
    """``verdict(doc, response)``: the task's first lm-eval metric (exact_match, say) on one filtered
    response, passing when it scores 1; None when the task has no metric capcast can call."""
    names = list(getattr(task_obj, "_metric_fn_list", {}) or {})
    if not names:
        return None

    def verdict(doc: dict, response: str) -> bool:
        value = task_obj.process_results(doc, [response]).get(names[0])
        return bool(value is not None and float(value) >= 1.0)

    return verdict


def run_task(loaded: LoadedModel, prepared: PreparedTask, *, limit: int | None = None, seed: int = 1234) -> TaskRun:
    """Evaluate one loaded model on one prepared task; return its per-instance records."""
    res, task_obj = _evaluate(loaded, prepared, limit=limit, seed=seed)
    name = prepared.lm_eval_name
    samples = res["samples"][name]
    extra: dict[str, Any] = {}
    if prepared.kind == "multiple_choice":
        records = choice_table(samples, prepared.target_delimiter, loaded.count_tokens, context_choices(task_obj))
    else:
        filter_name, responses = response_filter(task_obj)
        errors = CheckerErrors()
        records = sample_table(prepared.task, samples, responses, None if prepared.task.checker else metric_verdict(task_obj), errors)
        if errors.checked and errors.errors == errors.checked:
            raise CapcastError(f"the checker of task {prepared.task.name!r} raised on every one of the {errors.checked} samples "
                               f"({errors.first}); nothing was stored; fix the checker (called as checker(response, doc))")
        extra = {"filter": filter_name, "checker_errors": errors.errors, "checker_error": errors.first}
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
        # --num-fewshot as lm-eval applied it, --gen-kwargs, --model-args (docs/evaluation.md)
        "num_fewshot": int(task_obj.get_config("num_fewshot") or 0),
        "gen_kwargs": prepared.gen_kwargs if prepared.kind == "generate" and prepared.gen_kwargs else None,
        "model_args": loaded.model_args or None,
        **extra,
    }
    return TaskRun(
        kind=prepared.kind,
        records=records,
        n_docs=len(by_doc(samples)),
        lm_eval_metrics=numeric_metrics(res["results"].get(name, {})),
        settings=settings,
    )


def replay_samples(prepared: PreparedTask, answers: dict, *, limit: int | None, seed: int, repeats: int = 1) -> list[dict]:
    """lm-eval's logged samples (``results["samples"][task]``: doc, target, arguments, resps,
    filtered_resps, metrics, hashes) of a stored run, rebuilt by lm-eval itself: ``simple_evaluate``
    with the run's limit, seed and few-shot setting, on a model that answers each request from the
    stored records instead of computing. ``answers``: ``{(doc_id, idx): (loglik, is_greedy)}`` for a
    multiple-choice task, ``{doc_id: [text, ...]}`` (all ``repeats`` samples) for a generative one."""
    from lm_eval.api.model import LM

    class StoredAnswers(LM):
        def __init__(self):
            super().__init__()
            self.drawn: dict[int, int] = {}

        def _answer(self, key):
            try:
                return answers[key]
            except KeyError:
                raise CapcastError(f"task {prepared.task.name!r}: the store holds no record for request {key} of this run; "
                                   "run `capcast store verify`, or evaluate it again with `capcast eval --force`") from None

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            return [tuple(self._answer((int(r.doc_id), int(r.idx)))) for r in requests]

        def generate_until(self, requests, disable_tqdm: bool = False):
            out = []
            for r in requests:  # lm-eval sends each instance `repeats` times in a row
                texts, i = self._answer(int(r.doc_id)), self.drawn.get(int(r.doc_id), 0)
                self.drawn[int(r.doc_id)] = i + 1
                out.append(texts[i] if i < len(texts) else "")
            return out

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise CapcastError(f"task {prepared.task.name!r} scores rolling log-likelihoods; capcast does not store those")

    if prepared.kind == "generate":
        prepared = prepared.with_repeats(repeats)
    loaded = LoadedModel(lm=StoredAnswers(), model="stored", revision=None, backend="stored", dtype="", device="cpu", batch_size=1)
    res, _ = _evaluate(loaded, prepared, limit=limit, seed=seed)
    return list(res["samples"][prepared.lm_eval_name])


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


def build_requests(prepared: PreparedTask, *, limit: int | None = None, num_fewshot: int | None = None,
                   seed: int = 1234) -> list[tuple[int, int, tuple]]:
    """``(doc_id, idx, arguments)`` of every request lm-eval sends to the model for this task, in
    order, built the way :func:`run_task`'s ``simple_evaluate`` builds them (few-shot contexts
    included; ``num_fewshot=None``: the task's own setting, else 0). No model is needed."""
    obj = _task_object(prepared)
    if num_fewshot is not None:
        obj.set_config(key="num_fewshot", value=num_fewshot)
    elif obj.get_config("num_fewshot") is None:
        obj.set_config(key="num_fewshot", value=0)
    obj.set_fewshot_seed(seed=seed)
    obj.build_all_requests(limit=limit, rank=0, world_size=1)
    return sorted((int(inst.doc_id), int(inst.idx), tuple(inst.arguments)) for inst in obj.instances)


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
    if isinstance(task, PreparedTask):
        check_sampling(task)
    loaded = (
        checkpoint_model
        if isinstance(checkpoint_model, LoadedModel)
        else load_model(checkpoint_model, revision, backend=backend, device=device, batch_size=batch_size)
    )
    prepared = task if isinstance(task, PreparedTask) else prepare_task(task, Path(data_dir))
    if prepared.kind != "generate":
        raise CapcastError(f"task {prepared.task.name!r} is multiple choice; sampling needs a generative task")
    check_sampling(prepared)
    prepared = prepared.with_repeats(n_per_doc)
    wanted = sorted({int(d) for d in doc_ids})
    res, _ = _evaluate(loaded, prepared, samples={prepared.lm_eval_name: wanted}, seed=seed)
    out: dict[int, list[str]] = {d: [] for d in wanted}
    for sample in by_doc(res["samples"][prepared.lm_eval_name]):
        out[int(sample["doc_id"])] = [str(s) for s in sample["resps"][0]]
    return out


def generation_requests(prepared: PreparedTask, doc_ids: Sequence[int], *, seed: int = 1234) -> dict[int, Any]:
    """lm-eval's ``generate_until`` request (an Instance: prompt, few-shot examples, generation
    kwargs) for each of ``doc_ids``, built once the way ``simple_evaluate(..., fewshot_random_seed=seed)``
    builds them (``num_fewshot`` 0 unless the task sets it), for :func:`draw_generations`."""
    if prepared.kind != "generate":
        raise CapcastError(f"task {prepared.task.name!r} is multiple choice; sampling needs a generative task")
    check_sampling(prepared)  # greedy decoding would repeat one text: refuse before any round
    obj = _task_object(prepared)
    if obj.get_config("num_fewshot") is None:  # simple_evaluate's default
        obj.set_config(key="num_fewshot", value=0)
    obj.set_fewshot_seed(seed=seed)
    wanted = sorted({int(d) for d in doc_ids})
    # limit, not samples=: lm-eval numbers a samples= selection 0..k-1, and the doc ids must stay the task's
    obj.build_all_requests(limit=(max(wanted) + 1) if wanted else 0, rank=0, world_size=1)
    found = {int(inst.doc_id): inst for inst in obj.instances}
    missing = [d for d in wanted if d not in found]
    if missing:
        raise CapcastError(f"task {prepared.task.name!r} has no docs {missing[:5]}; lower --limit")
    return {d: found[d] for d in wanted}


def draw_generations(loaded: LoadedModel, requests: dict[int, Any], counts: dict[int, int], *, seed: int,
                     batch_size: int) -> dict[int, list[str]]:
    """``counts[d]`` sampled generations of each doc's request, all in ONE ``generate_until`` call
    of lm-eval's backend (``batch_size`` rows per ``generate``), seeded with ``seed``.

    The same requests lm-eval's ``repeats`` would send (each instance repeated), so the texts are
    lm-eval's (stop sequences, ``max_gen_toks``, truncation), without a ``simple_evaluate`` per call.
    """
    import torch

    order = [d for d in sorted(counts) for _ in range(int(counts[d]))]
    if not order:
        return {int(d): [] for d in counts}
    torch.manual_seed(seed)
    lm = loaded.lm
    previous = getattr(lm, "batch_size_per_gpu", None)
    if previous is not None and not str(previous).startswith("auto"):
        lm.batch_size_per_gpu = int(batch_size)
    try:
        texts = lm.generate_until([requests[d] for d in order])
    finally:
        if previous is not None:
            lm.batch_size_per_gpu = previous
    out: dict[int, list[str]] = {int(d): [] for d in counts}
    for d, text in zip(order, texts):
        out[d].append(str(text))
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
