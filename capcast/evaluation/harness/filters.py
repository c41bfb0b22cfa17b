"""How capcast reads a task's scoring of each instance the way lm-eval's metric does: the choices of
``multiple_input`` tasks, the task's ``filter_list`` applied to every sample, and its metric as a
per-response verdict."""

from __future__ import annotations

from typing import Any

from capcast.errors import CapcastError


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
