"""Evaluate every checkpoint of a family on a list of tasks into the record store.

``evaluate_family`` walks checkpoints x tasks, skips every (checkpoint, task) already in the
store, loads each checkpoint once for all of its missing tasks, and commits one atomic part per
run (see :mod:`capcast.store`). Killing it at any moment and running it again finishes the rest.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import capcast
from capcast.errors import CapcastError
from capcast.spec import Family, open_family, resolve_model_path
from capcast.evaluation.records import weights_hash
from capcast.store import Store
from capcast.tasks.task import Task

DEFAULT_STORE = Path("capcast-store")


class DuplicateWeightsWarning(UserWarning):
    """Two checkpoints with different names have byte-identical weights."""


@dataclass
class EvalSummary:
    """What ``evaluate_family`` did: runs written, runs skipped, duplicate-weight groups."""

    store: Path
    evaluated: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"evaluated {len(self.evaluated)} (checkpoint, task) runs, skipped {len(self.skipped)} already stored; "
            f"store: {self.store} ({self.seconds:.1f} s)"
        )


def resolve_tasks(task_names: Iterable[str], registry=None) -> list[Task]:
    """Registered capcast tasks by name; other names must be lm-eval built-in tasks."""
    from capcast.evaluation import harness

    if registry is None:
        from capcast.plugins.registry import load_registry

        registry = load_registry()
    names = [n.strip() for n in task_names if n and n.strip()]
    if not names:
        raise CapcastError("no tasks given; pass --tasks NAME[,NAME...]")
    tasks = []
    for name in dict.fromkeys(names):
        if name in registry.tasks:
            tasks.append(registry.tasks[name])
        elif harness.is_lm_eval_task(name):
            tasks.append(registry.task(name))
        else:
            known = ", ".join(sorted(registry.tasks)) or "none"
            raise CapcastError(f"unknown task {name!r}; capcast tasks: {known} (or any lm-eval task name, see `lm-eval ls tasks`)")
    return tasks


def _duplicate_groups(hashes: dict[str, str | None]) -> list[list[str]]:
    by_hash: dict[str, list[str]] = {}
    for name, digest in hashes.items():
        if digest:
            by_hash.setdefault(digest, []).append(name)
    return [sorted(names) for names in by_hash.values() if len(names) > 1]


def _warn_duplicates(groups: list[list[str]], console: Console | None) -> None:
    for names in groups:
        message = f"checkpoints {', '.join(names)} have identical weights (same sha256); check the family spec"
        warnings.warn(message, DuplicateWeightsWarning, stacklevel=3)
        if console is not None:
            console.print(f"[yellow]warning:[/] {message}", highlight=False)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def evaluate_family(
    family: str | Path | Family,
    task_names: Iterable[str],
    store_dir: str | Path = DEFAULT_STORE,
    limit: int | None = None,
    batch_size: int | str = 16,
    device: str | None = None,
    registry=None,
    *,
    backend: str = "hf",
    dtype: str | None = None,
    seed: int = 1234,
    checkpoints: Iterable[str] | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> EvalSummary:
    """Evaluate ``family`` (spec path or :class:`Family`) on ``task_names`` into ``store_dir``.

    ``device=None`` picks ``cuda`` when available, else ``cpu``. ``checkpoints`` restricts the
    run to some checkpoint names. Returns an :class:`EvalSummary`.
    """
    from capcast.evaluation import harness

    harness.check_device(device)
    started = time.perf_counter()
    spec_path, fam = open_family(family)
    tasks = resolve_tasks(task_names, registry)
    chosen = [fam.checkpoint(n) for n in checkpoints] if checkpoints else list(fam.checkpoints)
    models = {c.name: resolve_model_path(spec_path, c.model) for c in chosen}
    store = Store(store_dir)
    store.clean_tmp()
    harness.prepare_environment(
        store.root,
        local_tasks=all(not t.is_builtin_lm_eval for t in tasks),
        local_models=all(Path(m).exists() for m in models.values()),
    )
    summary = EvalSummary(store=store.root)

    # Duplicate weights under different names usually mean a mislabelled checkpoint (e.g. Pythia
    # revisions that serve the final weights): warn before spending time on them.
    known_hashes = store.load_weights_hash_cache()
    cached = len(known_hashes)
    hashes = {c.name: weights_hash(models[c.name], c.revision, known_hashes) for c in chosen}
    if len(known_hashes) != cached:
        store.save_weights_hash_cache(known_hashes)
    for name, digest in store.weight_hashes(fam.family).items():
        hashes.setdefault(name, digest)
    summary.duplicates = _duplicate_groups(hashes)
    _warn_duplicates(summary.duplicates, console)

    todo = []
    for c in chosen:
        for t in tasks:
            if store.has_run(fam.family, c.name, t.name):
                summary.skipped.append((c.name, t.name))
            else:
                todo.append((c, t))
    if not todo:
        summary.seconds = time.perf_counter() - started
        return summary

    # Build task data and configs once (and fail early, before loading any model).
    prepared = {t.name: harness.prepare_task(t, store.task_data_dir(t.name)) for t in {t.name: t for _, t in todo}.values()}
    versions = harness.versions()
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        disable=not progress,
        transient=False,
    )
    with bar:
        job = bar.add_task("evaluating", total=len(todo))
        for ckpt in chosen:
            mine = [t for c, t in todo if c.name == ckpt.name]
            if not mine:
                continue
            bar.update(job, description=f"{ckpt.name}: loading")
            loaded = harness.load_model(models[ckpt.name], ckpt.revision, backend=backend, dtype=dtype, device=device, batch_size=batch_size)
            if hashes.get(ckpt.name) is None:  # hub checkpoints: hashable once downloaded
                hashes[ckpt.name] = weights_hash(models[ckpt.name], ckpt.revision, known_hashes)
                store.save_weights_hash_cache(known_hashes)
                new_groups = [g for g in _duplicate_groups(hashes) if ckpt.name in g]
                _warn_duplicates(new_groups, console)
                summary.duplicates.extend(new_groups)
            for task in mine:
                bar.update(job, description=f"{ckpt.name} x {task.name}")
                start_time, t0 = _now(), time.perf_counter()
                run = harness.run_task(loaded, prepared[task.name], limit=limit, seed=seed)
                manifest = {
                    "family": fam.family,
                    "checkpoint": ckpt.name,
                    "task": task.name,
                    "run": ckpt.run_name,
                    "model": ckpt.model,
                    "revision": ckpt.revision,
                    "params": ckpt.params,
                    "tokens": ckpt.tokens,
                    "flops": ckpt.compute,
                    "step": ckpt.step,
                    "chance": task.chance,
                    "weights_hash": hashes.get(ckpt.name),
                    **run.settings,
                    "n_docs": run.n_docs,
                    "lm_eval_version": versions.get("lm_eval"),
                    "transformers_version": versions.get("transformers"),
                    "torch_version": versions.get("torch"),
                    "capcast_version": capcast.__version__,
                    "lm_eval_metrics": json.dumps(run.lm_eval_metrics, sort_keys=True),
                    "started_at": start_time,
                    "finished_at": _now(),
                    "duration_s": time.perf_counter() - t0,
                    "versions": versions,
                }
                store.write_run(manifest, run.kind, run.records)
                summary.evaluated.append((ckpt.name, task.name))
                bar.advance(job)
            del loaded
    summary.seconds = time.perf_counter() - started
    return summary
