"""Sampled generations of a generative task: through ``simple_evaluate`` with ``repeats`` set, or
in one call of the backend per PassUntil round."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from capcast.errors import CapcastError
from capcast.evaluation.harness.model import LoadedModel, load_model
from capcast.evaluation.harness.running import _evaluate
from capcast.evaluation.harness.tasks import PreparedTask, check_sampling, prepare_task
from capcast.evaluation.records import by_doc
from capcast.tasks.task import Task


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


def draw_generations(loaded: LoadedModel, requests: dict[int, Any], counts: dict[int, int], *, seed: int,
                     batch_size: int) -> dict[int, list[str]]:
    """``counts[d]`` sampled generations of each doc's request, all in ONE call (``batch_size``
    rows per ``generate``), seeded with ``seed``.

    The same requests lm-eval's ``repeats`` would send (each instance repeated), with lm-eval's
    prompts, stop sequences, ``max_gen_toks``, truncation and post-processing, without a
    ``simple_evaluate`` per call. On the HF backend the rows go through
    :func:`capcast.evaluation.harness.hf_draws.generate_until` (lm-eval's batches and texts, each
    row stopped at its own stop sequence; lm-eval's ``generate_until`` itself where that path
    cannot honour a setting). On the ``vllm`` backend each instance is one request for its own
    count of samples (:mod:`capcast.evaluation.harness.vllm_draws`).
    """
    if loaded.backend == "vllm":
        from capcast.evaluation.harness.vllm_draws import draw_vllm

        return draw_vllm(loaded.lm, requests, counts, seed=seed)
    import torch

    from capcast.evaluation.harness.hf_draws import generate_until

    order = [d for d in sorted(counts) for _ in range(int(counts[d]))]
    if not order:
        return {int(d): [] for d in counts}
    torch.manual_seed(seed)
    lm = loaded.lm
    previous = getattr(lm, "batch_size_per_gpu", None)
    if previous is not None and not str(previous).startswith("auto"):
        lm.batch_size_per_gpu = int(batch_size)
    try:
        texts = generate_until(lm, [requests[d] for d in order])
    finally:
        if previous is not None:
            lm.batch_size_per_gpu = previous
    out: dict[int, list[str]] = {int(d): [] for d in counts}
    for d, text in zip(order, texts):
        out[d].append(str(text))
    return out
