"""Evaluate every checkpoint of a family on a list of tasks into the record store.

``evaluate_family`` walks checkpoints x tasks, skips every (checkpoint, task) already in the
store with the same settings, loads each checkpoint once for all of its missing tasks, and commits
one atomic part per run (see :mod:`capcast.store`). Killing it at any moment and running it again
finishes the rest.

**Resume rule.** A stored run is reused only when it measured what this command asks for: the
settings in :data:`RESUME_SETTINGS` match (limit, seed, repeats, task hash, model, revision,
weights hash; see :func:`setting_differences`). Otherwise nothing is evaluated and one
:class:`CapcastError` line names the (checkpoint, task), the setting, the stored and the requested
value; ``force=True`` (``--force``) re-runs exactly those runs and replaces them atomically (the old
run stays intact until the new one is committed). Backend, dtype, device and batch size are
recorded but informational: they change how the numbers are computed (floating-point rounding,
padding, for sampled generations the random stream), not what is measured (the same items, prompts,
targets and weights), so runs that differ only there are reused.
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
from rich.markup import escape

import capcast
from capcast.errors import CapcastError
from capcast.progress import counting_bar
from capcast.spec import Family, open_family, resolve_model_path
from capcast.evaluation.records import weights_hash
from capcast.store import Store
from capcast.tasks.task import Task

DEFAULT_STORE = Path("capcast-store")


# Settings that decide whether a stored run answers this command (see setting_differences).
RESUME_SETTINGS = ("model", "revision", "weights_hash", "limit", "seed", "repeats", "task_hash", "num_fewshot", "gen_kwargs")


class DuplicateWeightsWarning(UserWarning):
    """Two checkpoints with different names have byte-identical weights."""


class CheckerErrorWarning(UserWarning):
    """A task's checker raised on some samples (each counted as a failure)."""


class ResumeCheckWarning(UserWarning):
    """A stored run's settings could be checked only in part (the task hash could not be computed)."""


@dataclass
class EvalSummary:
    """What ``evaluate_family`` did: runs written, runs skipped, duplicate-weight groups."""

    store: Path
    evaluated: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    duplicates: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0
    # evaluated runs that replaced a stored run with other settings (force=True)
    replaced: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        replaced = f" ({len(self.replaced)} replacing stored runs with other settings)" if self.replaced else ""
        return (
            f"evaluated {len(self.evaluated)} (checkpoint, task) runs{replaced}, skipped {len(self.skipped)} already stored; "
            f"store: {self.store} ({self.seconds:.1f} s)"
        )


INCLUDED = "from --include-path"  # the description of a task read from an --include-path YAML


def resolve_tasks(task_names: Iterable[str], registry=None, include_path: str | Path | None = None) -> list[Task]:
    """Registered capcast tasks by name; other names must be lm-eval built-in tasks, or tasks of
    the lm-eval YAMLs in ``include_path`` (``--include-path``; these come first, as in lm-eval)."""
    from capcast.evaluation import harness

    if registry is None:
        from capcast.plugins.registry import load_registry

        registry = load_registry()
    names = [n.strip() for n in task_names if n and n.strip()]
    if not names:
        raise CapcastError("no tasks given; pass --tasks NAME[,NAME...]")
    included = harness.include_path_tasks(include_path) if include_path is not None else {}
    tasks = []
    for name in dict.fromkeys(names):
        if name in included:  # used as-is: lm-eval's own YAML, no capcast metadata (chance 0, default metric)
            tasks.append(Task(name=name, lm_eval_config=str(included[name]), description=f"{INCLUDED} {included[name]}"))
        elif ("task", name) in registry.conflicts:
            tasks.append(registry.task(name))  # raises the error that names both plugins
        elif name in registry.tasks:
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


def setting_differences(stored: dict, requested: dict, task_docs: int | None = None) -> list[tuple[str, object, object]]:
    """``(setting, stored value, requested value)`` for each of :data:`RESUME_SETTINGS` on which a
    stored run's manifest and the requested run differ; empty when the stored run can be reused.

    - ``model`` (as written in the family spec) and ``revision``: compared as given (None = none).
    - ``weights_hash``: compared when both are known (a hub checkpoint not downloaded yet has none).
    - ``limit``: a limit at or above the task's ``task_docs`` means the whole task, like none.
    - ``seed``, ``repeats``, ``gen_kwargs`` (``--gen-kwargs``; None when not given): compared as given.
    - ``num_fewshot`` (as lm-eval applied it): compared when both are known (runs of older capcast
      lack it; their task hash covers the few-shot contexts).
    - ``task_hash`` (lm-eval's hash of the evaluated docs, prompts and targets; the requested one is
      computed before running, see :func:`capcast.evaluation.harness.plan_run`): compared when the
      limits agree (different limits hash different docs) and both are known.
    """

    def whole(limit):
        return None if limit is None or (task_docs is not None and int(limit) >= task_docs) else int(limit)

    out = []
    limits_agree = whole(stored.get("limit")) == whole(requested.get("limit"))
    for key in RESUME_SETTINGS:
        have, want = stored.get(key), requested.get(key)
        if key == "limit":
            differs = not limits_agree
        elif key in ("weights_hash", "task_hash", "num_fewshot"):
            differs = have is not None and want is not None and have != want and (key != "task_hash" or limits_agree)
        else:
            differs = have != want
        if differs:
            out.append((key, have, want))
    return out


def mismatch_message(store: Path, mismatched: list[tuple[str, str, list]]) -> str:
    """The one line that refuses to reuse stored runs whose settings differ."""
    from capcast.store import describe_mismatch

    return (
        f"store {store} holds {describe_mismatch(mismatched)}; nothing was evaluated. "
        "Re-run with --force (`capcast eval --force`) to evaluate them again and replace the stored runs, or use another --store"
    )


def _plan(harness, prepared, limit: int | None, seed: int, console: Console | None):
    """The task's planned settings for the resume check; None (with a warning) when lm-eval
    cannot build the task's requests without a model: then its task hash and repeats go unchecked."""
    try:
        return harness.plan_run(prepared, limit=limit, seed=seed)
    except Exception as exc:  # an lm-eval task this check does not understand must not block resuming
        _warn_partial_check(prepared.task.name, f"has no task hash before running ({type(exc).__name__}: {str(exc)[:120]})", console)
        return None


def _warn_partial_check(task: str, why: str, console: Console | None) -> None:
    message = f"task {task!r} {why}; its stored runs are checked without task hash and repeats"
    warnings.warn(message, ResumeCheckWarning, stacklevel=4)
    if console is not None:
        console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def _warn_unreproducible_hash(task: str, console: Console | None) -> None:
    message = (f"task {task!r}: the task hash computed before running differs from lm-eval's; resuming this task will "
               "report a task_hash difference (please report this as a capcast bug)")
    warnings.warn(message, ResumeCheckWarning, stacklevel=3)
    if console is not None:
        console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


def _warn_checker_errors(checkpoint: str, task: str, settings: dict, console: Console | None) -> None:
    message = (f"{checkpoint} x {task}: the checker raised on {settings['checker_errors']} samples (counted as failures); "
               f"first: {settings.get('checker_error')}")
    warnings.warn(message, CheckerErrorWarning, stacklevel=3)
    if console is not None:
        console.print(f"[yellow]warning:[/] {escape(message)}", highlight=False)


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
    force: bool = False,
    dispatch=None,
    num_fewshot: int | None = None,
    model_args: str | dict | None = None,
    gen_kwargs: str | dict | None = None,
    include_path: str | Path | None = None,
) -> EvalSummary:
    """Evaluate ``family`` (spec path or :class:`Family`) on ``task_names`` into ``store_dir``.

    ``device=None`` picks ``cuda`` when available, else ``cpu``. ``checkpoints`` restricts the
    run to some checkpoint names. Stored runs with the same settings are skipped; stored runs with
    other settings raise one :class:`CapcastError` line before anything is evaluated, unless
    ``force``: then they are re-run and replaced (module docstring). Returns an :class:`EvalSummary`.
    ``dispatch`` (set by :mod:`capcast.executors`) receives the planned grid instead of this process
    evaluating it: see :func:`capcast.executors.grid.dispatch_grid`.
    ``num_fewshot``, ``model_args``, ``gen_kwargs`` (``k=v,...`` strings or dicts) and
    ``include_path`` are lm-eval's options of those names (docs/evaluation.md, "Options lm-eval users know").
    """
    from capcast.evaluation import harness

    harness.check_device(device)
    harness.check_backend(backend)
    harness.check_dtype(dtype)
    harness.check_seed(seed)
    opts = lm_eval_options(harness, num_fewshot, model_args, gen_kwargs, dtype)
    started = time.perf_counter()
    spec_path, fam = open_family(family)
    tasks = resolve_tasks(task_names, registry, include_path)
    chosen = [fam.checkpoint(n) for n in checkpoints] if checkpoints else list(fam.checkpoints)
    models = {c.name: resolve_model_path(spec_path, c.model) for c in chosen}
    for path in models.values():
        harness.check_weights(path)
    store = Store(store_dir)
    for c in chosen:  # every run folder name must fit the filesystem (one line, before any work)
        for t in tasks:
            store.run_dir(fam.family, c.name, t.name)
    # One writer at a time: a second eval waits, then finds the first one's runs stored and skips them.
    with store.open_for_writing("capcast eval", on_wait=lambda message: _say(message, console)):
        return _evaluate_locked(harness, store, fam, spec_path, tasks, chosen, models, started, limit=limit, batch_size=batch_size,
                                device=device, backend=backend, dtype=dtype, seed=seed, console=console, progress=progress, force=force,
                                dispatch=dispatch, opts=opts)


@dataclass(frozen=True)
class LmEvalOptions:
    """``--num-fewshot``, ``--model-args`` and ``--gen-kwargs``, parsed as lm-eval parses them."""

    num_fewshot: int | None = None
    model_args: dict = field(default_factory=dict)
    gen_kwargs: dict = field(default_factory=dict)

    def prepare(self, harness, task: Task, data_dir: Path):
        return harness.prepare_task(task, data_dir, num_fewshot=self.num_fewshot, gen_kwargs=self.gen_kwargs or None)


def lm_eval_options(harness, num_fewshot=None, model_args=None, gen_kwargs=None, dtype=None) -> LmEvalOptions:
    """The options checked before any work (one line for a malformed one)."""
    if num_fewshot is not None and int(num_fewshot) < 0:
        raise CapcastError(f"--num-fewshot {num_fewshot} is negative; use 0 or more")

    def parsed(value, option):
        return dict(value) if isinstance(value, dict) else harness.parse_args_string(value, option)

    model = harness.check_model_args(parsed(model_args, "--model-args"), dtype)
    return LmEvalOptions(num_fewshot, model, parsed(gen_kwargs, "--gen-kwargs"))


def _say(message: str, console: Console | None) -> None:
    (console or Console(stderr=True)).print(f"note: {escape(message)}", highlight=False, soft_wrap=True)


def _evaluate_locked(harness, store: Store, fam: Family, spec_path: Path, tasks: list[Task], chosen: list, models: dict, started: float,
                     *, limit, batch_size, device, backend, dtype, seed, console, progress, force, dispatch=None,
                     opts: LmEvalOptions = LmEvalOptions()) -> EvalSummary:
    """:func:`evaluate_family` once the store's writer lock is held."""
    from capcast.store.verify import refuse_damaged

    refuse_damaged(store, [store.run_dir(fam.family, c.name, t.name) for c in chosen for t in tasks])
    harness.prepare_environment(
        store.root,
        local_tasks=all(not t.is_builtin_lm_eval and not t.description.startswith(INCLUDED) for t in tasks),
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

    # Build task data and configs once (and fail early, before loading any model).
    stored = {(c.name, t.name): m for c in chosen for t in tasks if (m := store.run_manifest(fam.family, c.name, t.name)) is not None}
    prepared, unprepared, plans, few_shots = {}, {}, {}, {}
    for t in tasks:
        has_stored = any(k[1] == t.name for k in stored)
        try:
            prepared[t.name] = opts.prepare(harness, t, store.task_data_dir(t.name))
            if not has_stored:
                harness.check_task(prepared[t.name])
        except CapcastError as exc:
            if not has_stored:
                raise
            # e.g. a built-in task offline: its stored runs may still be reused, checked in part.
            unprepared[t.name] = exc
            _warn_partial_check(t.name, f"cannot be loaded ({exc})", console)
            plans[t.name] = None
            continue
        if has_stored:
            plans[t.name] = _plan(harness, prepared[t.name], limit, seed, console)
            if plans[t.name] is not None:
                few_shots[t.name] = harness.effective_num_fewshot(prepared[t.name])

    todo, mismatched = [], []
    for c in chosen:
        for t in tasks:
            manifest = stored.get((c.name, t.name))
            if manifest is None:
                todo.append((c, t))
                continue
            plan = plans[t.name]
            requested = {
                "model": c.model, "revision": c.revision, "weights_hash": hashes.get(c.name), "limit": limit, "seed": seed,
                "repeats": plan.repeats if plan else manifest.get("repeats"), "task_hash": plan.task_hash if plan else None,
                "num_fewshot": few_shots.get(t.name),
                "gen_kwargs": (opts.gen_kwargs or None) if (prepared[t.name].kind if t.name in prepared else manifest.get("kind")) == "generate" else None,
            }
            diffs = setting_differences(manifest, requested, plan.task_docs if plan else None)
            if not diffs:
                summary.skipped.append((c.name, t.name))
            else:
                mismatched.append((c.name, t.name, diffs))
                todo.append((c, t))
    if mismatched and not force:
        raise CapcastError(mismatch_message(store.root, mismatched))
    for _, t in todo:
        if t.name in unprepared:
            raise unprepared[t.name]
    replacing = {(name, task) for name, task, _ in mismatched}
    if not todo:
        summary.seconds = time.perf_counter() - started
        return summary
    if dispatch is not None:  # scale-out: each (checkpoint, task) becomes a job that commits its own part
        return dispatch(store=store, family=fam, spec_path=spec_path, todo=todo, prepared=prepared, plans=plans, hashes=hashes,
                        replacing=replacing, summary=summary, started=started, opts=opts)

    versions = harness.versions()
    bar = counting_bar(console or Console(stderr=True), disable=not progress)
    with bar:
        job = bar.add_task("evaluating", total=len(todo))
        for ckpt in chosen:
            mine = [t for c, t in todo if c.name == ckpt.name]
            if not mine:
                continue
            bar.update(job, description=f"{ckpt.name}: loading")
            loaded = harness.load_model(models[ckpt.name], ckpt.revision, backend=backend, dtype=dtype, device=device, batch_size=batch_size,
                                        model_args=opts.model_args)
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
                replace = (ckpt.name, task.name) in replacing
                commit_run(store, fam, ckpt, task, run, weights_hash=hashes.get(ckpt.name), versions=versions, started_at=start_time,
                           t0=t0, plan=plans.get(task.name), replace=replace, console=console)
                summary.evaluated.append((ckpt.name, task.name))
                if replace:
                    summary.replaced.append((ckpt.name, task.name))
                bar.advance(job)
            del loaded
    summary.seconds = time.perf_counter() - started
    return summary


def commit_run(store: Store, fam: Family, ckpt, task: Task, run, *, weights_hash: str | None, versions: dict, started_at: str,
               t0: float, plan, replace: bool, console: Console | None) -> Path:
    """Check one finished (checkpoint, task) run and commit it as one part (:meth:`Store.write_run`):
    the loop of :func:`evaluate_family` and the jobs of :mod:`capcast.executors` share it."""
    from capcast.store.verify import degenerate_logliks

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
        "weights_hash": weights_hash,
        **run.settings,
        "n_docs": run.n_docs,
        "lm_eval_version": versions.get("lm_eval"),
        "transformers_version": versions.get("transformers"),
        "torch_version": versions.get("torch"),
        "capcast_version": capcast.__version__,
        "lm_eval_metrics": json.dumps(run.lm_eval_metrics, sort_keys=True),
        "started_at": started_at,
        "finished_at": _now(),
        "duration_s": time.perf_counter() - t0,
        "versions": versions,
    }
    if run.kind == "multiple_choice" and (problem := degenerate_logliks(run.records.column("loglik"))):
        raise CapcastError(f"{ckpt.name} x {task.name}: {problem}; nothing was stored for it. Check the checkpoint "
                           f"(NaN weights?) and the backend, then run `capcast eval` again")
    if run.settings.get("checker_errors"):
        _warn_checker_errors(ckpt.name, task.name, run.settings, console)
    if plan is not None and plan.task_hash != run.settings["task_hash"]:
        _warn_unreproducible_hash(task.name, console)
    return store.write_run(manifest, run.kind, run.records, replace=replace)
