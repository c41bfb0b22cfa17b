"""Drive the pure PassUntil sampler over a family: the harness draws, the store keeps every round.

:func:`sample_family` runs :func:`capcast.passuntil.sampler.run_passuntil` for every checkpoint x
task of a family through :mod:`capcast.evaluation.harness` (lm-eval's backends: ``hf``, or ``vllm``
on a GPU) and commits each round atomically to the store (see :mod:`capcast.passuntil.rounds`), so
a killed run resumes where it stopped and nothing measured is lost.

A run resumes only when its settings match the stored ones (successes, seed, limit, round schedule,
model, revision, weights and task hash; :func:`capcast.passuntil.rounds.setting_differences`);
raising ``max_samples_per_instance`` or ``total_budget`` continues it (and is logged). Any other
difference stops before sampling anything, with one :class:`CapcastError` line, unless ``force``
starts the differing runs afresh. Batch size, backend and device are informational: they change
the random stream of the draws, not the distribution sampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from capcast.errors import CapcastError
from capcast.passuntil.estimators import task_score
from capcast.passuntil.sampler import RoundReport, SamplerConfig, plan_round, run_passuntil


@dataclass
class SampleRunSummary:
    """One (checkpoint, task) PassUntil run as ``capcast sample`` reports it."""

    checkpoint: str
    task: str
    instances: int
    solved: int
    samples: int
    pass_rate: float
    lower: float
    upper: float
    rounds: int


def _safe_check(checker, text: str, doc: dict) -> bool:
    """A checker that raises counts the sample as a failure; the run goes on."""
    try:
        return bool(checker(text, doc))
    except Exception:
        return False


def _task_hash(harness, prepared, limit: int | None, seed: int) -> str | None:
    """lm-eval's hash of the sampled docs, prompts and targets (None when it cannot be built)."""
    try:
        return harness.plan_run(prepared, limit=limit, seed=seed).task_hash
    except Exception:
        return None


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, str) and len(value) == 64:  # a sha256
        return value[:12]
    return repr(value) if isinstance(value, str) else str(value)


def _mismatch_message(store, mismatched: list) -> str:
    checkpoint, task, diffs = mismatched[0]
    what = "; ".join(f"{key} stored {_show(have)}, requested {_show(want)}" for key, have, want in diffs)
    others = len(mismatched) - 1
    more = f" (and {others} more stored run{'s' if others > 1 else ''} with other settings)" if others else ""
    return (
        f"store {store} holds PassUntil rounds of {checkpoint} x {task} made with other settings: {what}{more}; "
        "nothing was sampled (only --max-samples-per-instance and --total-budget may be raised on a stored run). "
        "Re-run with --force to start the differing runs afresh (their stored rounds are deleted), or use another --store"
    )


def sample_family(
    family,
    task_names: Iterable[str],
    store_dir,
    config: SamplerConfig,
    *,
    seed: int = 1234,
    batch_size: int = 64,
    device: str | None = None,
    backend: str = "hf",
    limit: int | None = None,
    checkpoints: Iterable[str] | None = None,
    registry=None,
    on_progress: Callable[[str, RoundReport], None] | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[SampleRunSummary]:
    """PassUntil-sample every checkpoint x task of ``family`` (a spec path or Family) into the store.

    Resumes from the rounds already committed; a finished (checkpoint, task) costs nothing.
    ``limit`` keeps the first ``limit`` instances of each task. Stored runs with other settings
    raise one :class:`CapcastError` line before anything is sampled, unless ``force``: then they
    restart from nothing. ``log`` receives one line per run resumed with a raised budget.
    """
    from pathlib import Path

    from capcast.evaluation import harness
    from capcast.passuntil import rounds as pstore
    from capcast.evaluation.runner import resolve_tasks
    from capcast.spec import open_family, resolve_model_path
    from capcast.store import Store

    harness.check_device(device)
    spec_path, fam = open_family(family)
    tasks = resolve_tasks(task_names, registry)
    for task in tasks:
        if task.checker is None:
            raise CapcastError(f"task {task.name!r} has no checker; PassUntil needs a task whose plugin gives checker(sample, doc) -> bool")
    chosen = [fam.checkpoint(n) for n in checkpoints] if checkpoints else list(fam.checkpoints)
    store = Store(store_dir)
    models = {c.name: resolve_model_path(spec_path, c.model) for c in chosen}
    harness.prepare_environment(store.root, local_tasks=all(not t.is_builtin_lm_eval for t in tasks),
                                local_models=all(Path(m).exists() for m in models.values()))
    prepared = {t.name: harness.prepare_task(t, store.task_data_dir(t.name)) for t in tasks}
    docs = {t.name: harness.task_docs(prepared[t.name], store.task_data_dir(t.name)) for t in tasks}
    if any(p.kind != "generate" for p in prepared.values()):
        bad = next(name for name, p in prepared.items() if p.kind != "generate")
        raise CapcastError(f"task {bad!r} is multiple choice; capcast sample needs a generative task")
    store.recover_tmp()  # finish a --force restart that a crash interrupted (see Store.replace_dir)
    known_hashes = store.load_weights_hash_cache()
    cached = len(known_hashes)
    hashes = {c.name: harness.weights_hash(models[c.name], c.revision, known_hashes) for c in chosen}
    if len(known_hashes) != cached:
        store.save_weights_hash_cache(known_hashes)
    task_hashes = {t.name: _task_hash(harness, prepared[t.name], limit, seed) for t in tasks}

    # Check every stored run against this command before sampling anything.
    runs, mismatched = [], []
    for ckpt in chosen:
        for task in tasks:
            n_docs = len(docs[task.name])
            doc_ids = list(range(n_docs if limit is None else min(limit, n_docs)))
            folder = pstore.run_dir(store, fam.family, ckpt.name, task.name)
            manifest = {
                "family": fam.family, "checkpoint": ckpt.name, "task": task.name, "run": ckpt.run_name, "model": ckpt.model, "revision": ckpt.revision,
                "params": ckpt.params, "tokens": ckpt.tokens, "flops": ckpt.compute, "step": ckpt.step,
                "weights_hash": hashes[ckpt.name], "task_hash": task_hashes[task.name],
                "successes": config.successes, "max_samples_per_instance": config.max_samples_per_instance,
                "total_budget": config.total_budget, "first_batch": config.first_batch, "growth": config.growth,
                "max_batch": config.max_batch, "seed": seed, "batch_size": batch_size, "backend": backend, "device": device, "limit": limit,
                "versions": harness.versions(),
            }
            stored = pstore.read_manifest(folder) if pstore.has_rounds(folder) else None
            refused, extended = pstore.setting_differences(stored, manifest, n_docs) if stored is not None else ([], [])
            if refused:
                mismatched.append((ckpt.name, task.name, refused))
            elif stored is not None and (extended or stored.get("extended")):
                # Each raise of the budget is kept: the budget before it, and (below) the round it came at.
                manifest["extended"] = [*stored.get("extended", []), *([{key: have for key, have, _ in extended}] if extended else [])]
            runs.append((ckpt, task, doc_ids, folder, manifest, bool(refused), extended))
    if mismatched and not force:
        raise CapcastError(_mismatch_message(store.root, mismatched))

    summaries = []
    for ckpt in chosen:
        loaded = None
        for _ckpt, task, doc_ids, folder, manifest, restart, extended in (r for r in runs if r[0] is ckpt):
            if restart:
                pstore.restart(store, folder, manifest)
                state = pstore.load_state(folder, doc_ids)
            else:
                state = pstore.load_state(folder, doc_ids)
                if extended:
                    manifest["extended"][-1]["at_round"] = state.rounds_done
                    if log is not None:
                        raised = ", ".join(f"{key} {_show(have)} -> {_show(want)}" for key, have, want in extended)
                        log(f"{ckpt.name} x {task.name}: {raised}; continuing from {state.rounds_done} stored rounds")
                pstore.write_manifest(folder, manifest)
            if plan_round(state, config)[0]:
                if loaded is None:
                    loaded = harness.load_model(models[ckpt.name], ckpt.revision, backend=backend, device=device, batch_size=batch_size)
                task_docs = docs[task.name]

                def draw(doc_subset, n, round_index, _task=task, _docs=task_docs):
                    # A distinct, reproducible seed per round: resumed runs draw fresh samples.
                    texts = harness.generate_samples(loaded, None, prepared[_task.name], store.task_data_dir(_task.name),
                                                     doc_subset, n, seed=seed + 7919 * round_index, batch_size=batch_size)
                    return {d: [(t, _safe_check(_task.checker, t, _docs[d])) for t in texts[d]] for d in doc_subset}

                keys = (fam.family, ckpt.name, task.name)
                state = run_passuntil(
                    draw, doc_ids, config, state,
                    on_round=lambda idx, samples, _s=state, _f=folder, _k=keys: pstore.write_round(_f, _k, idx, samples, _s),
                    on_progress=(lambda report, _n=f"{ckpt.name} x {task.name}": on_progress(_n, report)) if on_progress else None,
                )
            _, c, n = state.counts(config.successes)
            sampled = n > 0
            score = task_score(c[sampled], n[sampled], r=config.successes) if sampled.any() else None
            summaries.append(SampleRunSummary(
                checkpoint=ckpt.name, task=task.name, instances=len(doc_ids), solved=state.solved(config.successes),
                samples=state.samples_spent, pass_rate=score.value if score else float("nan"),
                lower=score.lower if score else float("nan"), upper=score.upper if score else float("nan"), rounds=state.rounds_done,
            ))
    return summaries
