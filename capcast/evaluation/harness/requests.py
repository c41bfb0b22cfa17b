"""The requests lm-eval sends to a model for a task, built by lm-eval itself without a model: the
plan of a run (its task hash, before running), every request with its few-shot context, and the
``generate_until`` requests that PassUntil's rounds draw from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from capcast.errors import CapcastError
from capcast.evaluation.harness.tasks import PreparedTask, _task_object, check_sampling


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
