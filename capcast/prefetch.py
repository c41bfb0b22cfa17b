"""``capcast prefetch FAMILY.yaml --tasks ... --cache DIR``: everything a family's grid downloads, fetched once
on a machine with internet, so that compute nodes without it run from ``DIR`` alone (docs/scale-out.md).

What is fetched, through the libraries' own calls:

- every checkpoint named by a hub id, at its revision:
  ``huggingface_hub.snapshot_download`` into ``DIR/hub`` (weights, config and tokenizer files);
  checkpoints that are local paths are recorded as already local;
- every lm-eval built-in task's dataset: the task is built by lm-eval itself (the same
  ``datasets.load_dataset`` call a run makes) in a child process whose Hugging Face caches are
  ``DIR`` (``HF_HOME``, ``HF_HUB_CACHE``, ``HF_DATASETS_CACHE``); capcast's own tasks read local data,
  and capcast's standard benchmarks (ARC, MMLU, ...) read their release files from ``--data-dir``
  on machines without internet (docs/benchmarks.md), so prefetch lists them as ``use --data-dir``.

``DIR/capcast-prefetch.json`` lists what is there. ``capcast eval|sample|forecast ... --cache DIR``
checks first that every hub checkpoint and dataset the command needs is in ``DIR`` (one line naming
the missing one and the prefetch command), then runs its jobs in worker processes whose environment
is :func:`offline_env` (offline switches on, caches in ``DIR``); this process's environment is
never changed.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from capcast.errors import CapcastError

MANIFEST = "capcast-prefetch.json"
OFFLINE_SWITCHES = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


@dataclass(frozen=True)
class Prefetched:
    """One thing a grid needs: ``kind`` checkpoint or dataset; ``status`` downloaded, cached (already
    in the cache folder), local (a local path, nothing to fetch) or local data (a capcast task)."""

    kind: str
    name: str
    revision: str | None
    status: str
    path: str | None = None


def cache_env(cache: str | Path) -> dict[str, str]:
    """The Hugging Face caches inside ``cache`` (hub files under ``hub/``, datasets under ``datasets/``)."""
    root = Path(cache).expanduser().resolve()
    return {"HF_HOME": str(root), "HF_HUB_CACHE": str(root / "hub"), "HF_DATASETS_CACHE": str(root / "datasets")}


def offline_env(cache: str | Path) -> dict[str, str]:
    """The environment of a job that runs offline from a prefetched ``cache``."""
    return {**cache_env(cache), **OFFLINE_SWITCHES}


def _hub_checkpoints(family) -> tuple[Path, list[tuple[str, str, str | None]]]:
    """``(spec path, [(name, model, revision)])`` of every checkpoint (the grid's; the target is never run)."""
    from capcast.spec import open_family

    spec_path, fam = open_family(family)
    return spec_path, [(c.name, c.model, c.revision) for c in fam.checkpoints]


def _is_local(spec_path: Path, model: str) -> bool:
    from capcast.spec import resolve_model_path

    return Path(resolve_model_path(spec_path, model)).exists()


def _cached_snapshot(model: str, revision: str | None, hub_cache: Path) -> str | None:
    """The cached snapshot folder of ``model`` at ``revision``, or None (no network: local files only)."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(model, revision=revision, cache_dir=str(hub_cache), local_files_only=True)
    except Exception:  # LocalEntryNotFoundError, an unknown revision, a half-written entry: not there
        return None


def prefetch_command(spec, tasks: Iterable[str], cache) -> str:
    return f"capcast prefetch {shlex.quote(str(spec))} --tasks {shlex.quote(','.join(tasks))} --cache {shlex.quote(str(cache))}"


def prefetch(family, tasks: Iterable[str], cache: str | Path, *, registry=None, include_path=None, plugins_dir=None,
             on_item=None) -> list[Prefetched]:
    """Download what ``family`` x ``tasks`` needs into ``cache``; one :class:`Prefetched` per item
    (``on_item`` hears of each as it is done). Re-running fetches only what is not there yet."""
    tasks = list(tasks)
    root = Path(cache).expanduser()
    if root.exists() and not root.is_dir():
        raise CapcastError(f"--cache {root} is a file; give a folder")
    spec_path, named = _hub_checkpoints(family)
    resolved = _resolve(tasks, registry, include_path)  # unknown task names stop here, before any download
    root.mkdir(parents=True, exist_ok=True)
    hub_cache = Path(cache_env(root)["HF_HUB_CACHE"])
    items: list[Prefetched] = []

    def done(item: Prefetched) -> None:
        items.append(item)
        if on_item is not None:
            on_item(item)

    seen = set()
    for _name, model, revision in named:
        if (model, revision) in seen:
            continue
        seen.add((model, revision))
        if _is_local(spec_path, model):
            done(Prefetched("checkpoint", model, revision, "local"))
            continue
        cached = _cached_snapshot(model, revision, hub_cache)
        if cached is not None:
            done(Prefetched("checkpoint", model, revision, "cached", cached))
            continue
        from huggingface_hub import snapshot_download

        try:  # the whole repository at that revision: weights, config, tokenizer files
            path = snapshot_download(model, revision=revision, cache_dir=str(hub_cache))
        except Exception as exc:
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise CapcastError(f"cannot download checkpoint {model} (revision {revision or 'default'}): {type(exc).__name__}: {line}; "
                               "prefetch needs a machine that reaches the Hugging Face hub") from None
        done(Prefetched("checkpoint", model, revision, "downloaded", path))
    for name in _standard(tasks):
        done(Prefetched("dataset", name, None, "use --data-dir"))
    for task in resolved:
        if not task.is_builtin_lm_eval:
            done(Prefetched("dataset", task.name, None, "local data"))
            continue
        _download_dataset(task.name, root, plugins_dir, include_path)
        done(Prefetched("dataset", task.name, None, "downloaded", str(root / "datasets")))
    _write_manifest(root, items)
    return items


def _standard(tasks) -> list[str]:
    """The tasks among ``tasks`` that are capcast's standard benchmarks: offline, they read their
    release files from ``--data-dir`` (docs/benchmarks.md), which capcast checks itself."""
    from capcast.tasks.standard import benchmarks

    names = {b.name for b in benchmarks()}
    return [t for t in tasks if t in names]


def _resolve(tasks, registry, include_path):
    """The tasks whose data a grid reads (capcast's standard benchmarks left out: see :func:`_standard`)."""
    from capcast.evaluation.runner import resolve_tasks

    standard = set(_standard(tasks))
    rest = [t for t in tasks if t not in standard]
    return resolve_tasks(rest, registry, include_path) if rest else []


def _download_dataset(task: str, root: Path, plugins_dir=None, include_path=None) -> None:
    """Build ``task`` with lm-eval in a child process whose Hugging Face caches are ``root`` (online):
    its dataset lands there exactly as a run loads it. The child has the environment; this process not."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    env = {**cache_env(root), "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0"}
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=_set_env, initargs=(env,)) as pool:
        try:
            pool.submit(_build_task, task, str(root), *(None if p is None else str(p) for p in (include_path, plugins_dir))).result()
        except CapcastError:
            raise
        except Exception as exc:
            line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise CapcastError(f"cannot download the dataset of task {task}: {type(exc).__name__}: {line}; "
                               "prefetch needs a machine that reaches the Hugging Face hub") from None


def _set_env(env: dict) -> None:
    os.environ.update(env)


def _build_task(task_name: str, root: str, include_path: str | None, plugins_dir: str | None) -> None:
    from capcast.evaluation import harness
    from capcast.evaluation.runner import resolve_tasks
    from capcast.plugins.registry import load_registry

    task = resolve_tasks([task_name], load_registry(plugins_dir), include_path)[0]
    harness.prepare_task(task, Path(root) / "task-data" / task.name)


def _write_manifest(root: Path, items: list[Prefetched]) -> None:
    from capcast.store import write_atomically, write_json

    path = root / MANIFEST
    known = {}
    if path.is_file():
        try:
            known = {(i["kind"], i["name"], i.get("revision")): i for i in json.loads(path.read_text()).get("items", [])}
        except (OSError, ValueError, AttributeError, KeyError):
            known = {}
    for item in items:
        known[(item.kind, item.name, item.revision)] = asdict(item)
    write_atomically(path, lambda tmp: write_json({"items": list(known.values())}, tmp))


def prefetched_datasets(cache: str | Path) -> set[str]:
    """The tasks whose datasets ``capcast prefetch`` put into ``cache``."""
    try:
        items = json.loads((Path(cache).expanduser() / MANIFEST).read_text()).get("items", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {i["name"] for i in items if isinstance(i, dict) and i.get("kind") == "dataset" and i.get("status") in ("downloaded", "cached")}


def check_cache(family, tasks: Iterable[str], cache: str | Path, *, registry=None, include_path=None) -> None:
    """One line, before any work, for the first hub checkpoint or dataset of ``family`` x ``tasks``
    that ``cache`` lacks, naming it and the prefetch command that fetches it."""
    tasks = list(tasks)
    root = Path(cache).expanduser()
    spec_path, named = _hub_checkpoints(family)
    command = prefetch_command(spec_path, tasks, root)
    if not root.is_dir():
        raise CapcastError(f"--cache {root} does not exist; on a machine with internet run `{command}`, then copy {root} here")
    hub_cache = Path(cache_env(root)["HF_HUB_CACHE"])
    for name, model, revision in named:
        if not _is_local(spec_path, model) and _cached_snapshot(model, revision, hub_cache) is None:
            raise CapcastError(f"checkpoint {name} ({model}, revision {revision or 'default'}) is not in --cache {root}; "
                               f"on a machine with internet run `{command}`")
    standard = _standard(tasks)
    if standard and os.environ.get("CAPCAST_DATA_DIR") is None:
        raise CapcastError(f"task {standard[0]} is one of capcast's standard benchmarks: offline it reads its release files from "
                           "--data-dir DIR (docs/benchmarks.md), not from --cache; pass --data-dir")
    have = prefetched_datasets(root)
    for task in _resolve(tasks, registry, include_path):
        if task.is_builtin_lm_eval and task.name not in have:
            raise CapcastError(f"the dataset of task {task.name} is not in --cache {root}; on a machine with internet run `{command}`")
