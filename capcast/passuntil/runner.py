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

A checker that raises counts the sample as a failure, and every such exception is counted
(:class:`CheckerErrors`; reported per run in :class:`SampleRunSummary` and kept in ``run.json`` as
``checker_errors``). A checker that raises on every sample of the first round drawn stops the run
with one :class:`CapcastError` line naming the exception, before that round is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from capcast.errors import CapcastError
from capcast.evaluation.records import CheckerErrors  # one tally for eval's and sample's checkers
from capcast.passuntil.estimators import task_score
from capcast.passuntil.sampler import (
    ALLOCATION, LEGACY_ALLOCATION, RoundReport, SamplerConfig, plan_round, run_passuntil,
)
from capcast.store import show_setting

# Round j draws all its samples (every instance, whatever its count) in one call seeded seed + 7919 j.
# (Older capcast drew a round in groups of equal counts, group g with seed + 7919 j + 1000003 g.)
ROUND_SEED_STEP = 7919


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
    checker_errors: int = 0  # samples whose checker raised in this invocation (counted as failures)
    checker_error: str | None = None  # the first of those exceptions, "Type: message"


def _safe_check(checker, text: str, doc: dict, tally: CheckerErrors | None = None) -> bool:
    """A checker that raises counts the sample as a failure (and is counted in ``tally``); the run goes on."""
    if tally is not None:
        tally.checked += 1
    try:
        return bool(checker(text, doc))
    except Exception as exc:
        if tally is not None:
            tally.note(exc)
        return False


def _uses_legacy_allocation(stored: dict | None) -> bool:
    """Whether stored rounds may hold a budget allocated by the instances' own counts (older capcast)."""
    if stored is None:
        return False
    if "allocation" in stored:
        return stored["allocation"] == LEGACY_ALLOCATION
    budgets = [stored.get("total_budget"), *(e.get("total_budget") for e in stored.get("extended", []) if "total_budget" in e)]
    return any(b is not None for b in budgets)


def _task_hash(harness, prepared, limit: int | None, seed: int) -> str | None:
    """lm-eval's hash of the sampled docs, prompts and targets (None when it cannot be built)."""
    try:
        return harness.plan_run(prepared, limit=limit, seed=seed).task_hash
    except Exception:
        return None


class _RoundDraw:
    """The sampler's ``draw``, answering a whole round from ONE generate call.

    :func:`~capcast.passuntil.sampler.run_passuntil` asks for a round in groups of equal n; on a
    round's first call this plans the round itself (:func:`plan_round` on the same, not yet
    advanced state: the same plan), draws every instance's samples in one ``draw_generations``
    call on lm-eval's requests (per-instance counts, ``batch_size`` rows per ``generate``, seed
    ``seed + 7919 j``), checks them, and serves the groups from that.
    """

    def __init__(self, harness, loaded, requests, state, config, checker, docs, tally, seed: int, batch_size: int):
        self.harness, self.loaded, self.requests, self.state, self.config = harness, loaded, requests, state, config
        self.checker, self.docs, self.tally, self.seed, self.batch_size = checker, docs, tally, seed, batch_size
        self.round_index: int | None = None
        self.drawn: dict[int, list] = {}

    def __call__(self, doc_subset, n, round_index):
        if round_index != self.round_index:
            plan = plan_round(self.state, self.config)
            texts = self.harness.draw_generations(self.loaded, self.requests, plan, seed=self.seed + ROUND_SEED_STEP * round_index,
                                                  batch_size=self.batch_size)
            self.drawn = {d: [(t, _safe_check(self.checker, t, self.docs[d], self.tally)) for t in texts[d]] for d in plan}
            self.round_index = round_index
        return {d: self.drawn[d] for d in doc_subset if len(self.drawn.get(d, ())) == n}


def _mismatch_message(store, mismatched: list) -> str:
    from capcast.store import describe_mismatch

    return (
        f"store {store} holds PassUntil rounds of {describe_mismatch(mismatched)}; "
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
    num_fewshot: int | None = None,
    model_args: str | dict | None = None,
    gen_kwargs: str | dict | None = None,
    include_path=None,
    dispatch: Callable | None = None,
    hold_lock: bool = True,
) -> list[SampleRunSummary]:
    """PassUntil-sample every checkpoint x task of ``family`` (a spec path or Family) into the store.

    Resumes from the rounds already committed; a finished (checkpoint, task) costs nothing.
    ``limit`` keeps the first ``limit`` instances of each task. Stored runs with other settings
    raise one :class:`CapcastError` line before anything is sampled, unless ``force``: then they
    restart from nothing. ``log`` receives one line per run resumed with a raised budget.

    Scale-out (:mod:`capcast.executors.sampling`): ``dispatch`` gets the planned runs, once every
    stored run is checked, and returns the summaries (its jobs sample elsewhere while this call
    holds the lock); a job runs this function on one checkpoint and task with ``hold_lock=False``
    (its driver holds the store's writer lock).
    """
    from pathlib import Path

    from capcast.evaluation import harness
    from capcast.passuntil import rounds as pstore
    from capcast.evaluation.runner import lm_eval_options, resolve_tasks
    from capcast.spec import open_family, resolve_model_path
    from capcast.store import Store

    harness.check_device(device)
    harness.check_backend(backend)
    harness.check_seed(seed)
    spec_path, fam = open_family(family)
    opts = lm_eval_options(harness, num_fewshot, model_args, gen_kwargs)  # lm-eval's options, checked before any work
    tasks = resolve_tasks(task_names, registry, include_path)
    for task in tasks:
        if task.checker is None:
            raise CapcastError(f"task {task.name!r} has no checker; PassUntil needs a task whose plugin gives checker(sample, doc) -> bool")
    chosen = [fam.checkpoint(n) for n in checkpoints] if checkpoints else list(fam.checkpoints)
    store = Store(store_dir)
    # Held until this function returns (one writer per store; it also finishes a --force restart a
    # crash interrupted, see Store.replace_dir); a read-only or missing store stops here in one line.
    _lock = store.open_for_writing("capcast sample", on_wait=log) if hold_lock else None  # noqa: F841
    models = {c.name: resolve_model_path(spec_path, c.model) for c in chosen}
    harness.prepare_environment(store.root, local_tasks=all(not t.is_builtin_lm_eval for t in tasks),
                                local_models=all(Path(m).exists() for m in models.values()))
    prepared = {t.name: opts.prepare(harness, t, store.task_data_dir(t.name)) for t in tasks}
    docs = {t.name: harness.task_docs(prepared[t.name], store.task_data_dir(t.name)) for t in tasks}
    if any(p.kind != "generate" for p in prepared.values()):
        bad = next(name for name, p in prepared.items() if p.kind != "generate")
        raise CapcastError(f"task {bad!r} is multiple choice; capcast sample needs a generative task")
    known_hashes = store.load_weights_hash_cache()
    cached = len(known_hashes)
    hashes = {c.name: harness.weights_hash(models[c.name], c.revision, known_hashes) for c in chosen}
    if len(known_hashes) != cached:
        store.save_weights_hash_cache(known_hashes)
    task_hashes = {t.name: _task_hash(harness, prepared[t.name], limit, seed) for t in tasks}
    few_shots = {t.name: harness.effective_num_fewshot(prepared[t.name]) for t in tasks}

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
                "num_fewshot": few_shots[task.name], "gen_kwargs": opts.gen_kwargs or None, "model_args": opts.model_args or None,
                "versions": harness.versions(),
            }
            stored = pstore.read_manifest(folder) if pstore.has_rounds(folder) else None
            refused, extended = pstore.setting_differences(stored, manifest, n_docs) if stored is not None else ([], [])
            if refused:
                mismatched.append((ckpt.name, task.name, refused))
            elif stored is not None and (extended or stored.get("extended")):
                # Each raise of the budget is kept: the budget before it, and (below) the round it came at.
                manifest["extended"] = [*stored.get("extended", []), *([{key: have for key, have, _ in extended}] if extended else [])]
            if stored is not None and not refused:
                # Rounds of older capcast under a budget may have been allocated by the instances' own
                # counts: the run keeps that mark (the samples table flags its counts as biased).
                manifest["allocation"] = LEGACY_ALLOCATION if _uses_legacy_allocation(stored) else ALLOCATION
                if stored.get("checker_errors"):
                    manifest["checker_errors"] = int(stored["checker_errors"])
            else:
                manifest["allocation"] = ALLOCATION
            runs.append((ckpt, task, doc_ids, folder, manifest, bool(refused), extended))
    if mismatched and not force:
        raise CapcastError(_mismatch_message(store.root, mismatched))
    if dispatch is not None:
        return dispatch(store=store, family=fam, spec_path=spec_path, runs=runs, config=config, opts=opts,
                        n_docs={t.name: len(docs[t.name]) for t in tasks})

    summaries = []
    requests: dict[str, dict] = {}
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
                        raised = ", ".join(f"{key} {show_setting(key, have)} -> {show_setting(key, want)}" for key, have, want in extended)
                        log(f"{ckpt.name} x {task.name}: {raised}; continuing from {state.rounds_done} stored rounds")
                pstore.write_manifest(folder, manifest)
            tally = CheckerErrors()
            if plan_round(state, config):
                if loaded is None:
                    loaded = harness.load_model(models[ckpt.name], ckpt.revision, backend=backend, device=device, batch_size=batch_size,
                                                model_args=opts.model_args)
                task_docs = docs[task.name]
                if task.name not in requests:  # lm-eval builds the prompts once per task, not once per round
                    requests[task.name] = harness.generation_requests(prepared[task.name], doc_ids, seed=seed)
                draw = _RoundDraw(harness, loaded, requests[task.name], state, config, task.checker, task_docs, tally, seed, batch_size)

                keys = (fam.family, ckpt.name, task.name)
                seen = {"rounds": 0, "checked": 0, "errors": 0}

                def commit(idx, samples, _s=state, _f=folder, _k=keys, _m=manifest, _tally=tally, _seen=seen, _ckpt=ckpt.name, _task=task.name):
                    checked, errors = _tally.checked - _seen["checked"], _tally.errors - _seen["errors"]
                    if _seen["rounds"] == 0 and checked > 0 and errors == checked:
                        raise CapcastError(
                            f"the checker of task {_task!r} raised on every one of the {checked} samples of the first round on "
                            f"{_ckpt} ({_tally.first}); nothing of that round was stored; fix the checker (called as checker(sample, doc))"
                        )
                    pstore.write_round(_f, _k, idx, samples, _s)
                    if errors:
                        _m["checker_errors"] = int(_m.get("checker_errors", 0)) + errors
                        pstore.write_manifest(_f, _m)
                    _seen.update(rounds=_seen["rounds"] + 1, checked=_tally.checked, errors=_tally.errors)

                state = run_passuntil(
                    draw, doc_ids, config, state, on_round=commit,
                    on_progress=(lambda report, _n=f"{ckpt.name} x {task.name}": on_progress(_n, report)) if on_progress else None,
                )
            summaries.append(run_summary(ckpt.name, task.name, doc_ids, state, config, tally.errors, tally.first))
    return summaries


def run_summary(checkpoint: str, task: str, doc_ids, state, config: SamplerConfig, checker_errors: int = 0,
                checker_error: str | None = None) -> SampleRunSummary:
    """The summary ``capcast sample`` reports for one run's state."""
    _, c, n = state.counts(config.successes)
    sampled = n > 0
    score = task_score(c[sampled], n[sampled], r=config.successes) if sampled.any() else None
    return SampleRunSummary(
        checkpoint=checkpoint, task=task, instances=len(doc_ids), solved=state.solved(config.successes),
        samples=state.samples_spent, pass_rate=score.value if score else float("nan"),
        lower=score.lower if score else float("nan"), upper=score.upper if score else float("nan"), rounds=state.rounds_done,
        checker_errors=checker_errors, checker_error=checker_error,
    )
