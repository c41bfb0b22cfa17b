"""Running lm-eval (``simple_evaluate(..., log_samples=True)``) and turning its logged samples into
per-instance records; and rebuilding a stored run's logged samples through lm-eval for export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from capcast.errors import CapcastError
from capcast.evaluation.harness.checks import CONTINUATION_HINT, ContinuationTooLong
from capcast.evaluation.harness.filters import context_choices, metric_verdict, response_filter
from capcast.evaluation.harness.model import LoadedModel
from capcast.evaluation.harness.tasks import PreparedTask, _task_object
from capcast.evaluation.records import CheckerErrors, by_doc, choice_table, numeric_metrics, sample_table, task_hash


@dataclass
class TaskRun:
    """What one (model, task) run produced, ready for the store."""

    kind: str
    records: pa.Table  # choices (multiple choice) or samples (generative), without key columns
    n_docs: int
    lm_eval_metrics: dict[str, float]
    settings: dict[str, Any]


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
        if isinstance(exc, AssertionError):
            _explain_lm_eval_assertion(exc, loaded, prepared)
        if isinstance(exc, ContinuationTooLong):  # raised by capcast-hf, which does not know the task
            raise CapcastError(f"task {prepared.task.name!r}: {exc}; nothing was stored for this run") from None
        raise
    return results, task_obj


def _explain_lm_eval_assertion(exc: AssertionError, loaded: LoadedModel, prepared: PreparedTask) -> None:
    """One line for a bare ``assert`` of lm-eval's own code (its ``hf`` backend checks that every
    continuation fits the model's context): which check, where, and the model's context length.
    Returns (the caller re-raises) when the assertion is not lm-eval's."""
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames or "lm_eval" not in frames[-1].filename.replace("\\", "/").split("/"):
        return
    frame = frames[-1]
    check = (frame.line or "").strip()
    where = f"{frame.filename.rsplit('lm_eval', 1)[-1].lstrip('/')}:{frame.lineno}"
    context = getattr(loaded.lm, "max_length", None)
    hint = f": a continuation longer than the model's context of {context} tokens ({CONTINUATION_HINT})" if "max_length" in check and context else ""
    raise CapcastError(f"task {prepared.task.name!r}: lm-eval's own check `{check}` failed (lm_eval/{where}){hint}; "
                       "nothing was stored for this run") from None


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
