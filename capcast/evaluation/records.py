"""From lm-eval's logged samples to typed record columns, and checkpoint fingerprints.

Pure data handling with no ``lm_eval`` import (:mod:`capcast.evaluation.harness` owns that): the functions
here take the in-memory ``results["samples"][task]`` list that ``simple_evaluate(...,
log_samples=True)`` returns and build pyarrow tables column-wise.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import pyarrow as pa

from capcast.errors import CapcastError
from capcast.tasks.task import Task

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
# (context, continuation) -> number of continuation tokens (None when unknown).
TokenCounter = Callable[[str, str], "int | None"]
# doc -> (lm-eval's gold: an index, indices or the gold text; the choice texts) for tasks whose
# choices sit in the contexts (lm-eval's multiple_input, e.g. winogrande): capcast.evaluation.harness.context_choices
ContextChoices = Callable[[dict], "tuple[Any, list[str]]"]


def by_doc(samples: Sequence[dict]) -> list[dict]:
    """One logged sample per doc (lm-eval logs one per filter), in doc order."""
    seen: dict[int, dict] = {}
    for sample in samples:
        seen.setdefault(int(sample["doc_id"]), sample)
    return [seen[k] for k in sorted(seen)]


def gold_indices(target: Any, choices: list[str]) -> set[int]:
    """The gold choice indices from lm-eval's logged target (an index, a list, or the gold text)."""
    if isinstance(target, bool):
        target = int(target)
    if isinstance(target, int):
        return {target}
    if isinstance(target, (list, tuple)):
        return {int(t) for t in target}
    text = str(target)
    return {i for i, c in enumerate(choices) if c == text or c.strip() == text.strip()}


def choice_table(samples: Sequence[dict], target_delimiter: str, count_tokens: TokenCounter,
                 context_choices: ContextChoices | None = None) -> pa.Table:
    """Per-(doc, choice) columns from lm-eval's logged multiple-choice samples.

    Ordinary tasks score one context with each choice as continuation; the logged target names
    the gold. ``multiple_input`` tasks (``context_choices`` given) put each choice into its own
    context and score one shared continuation: there the logged target is that continuation, so
    gold and choice texts come from ``context_choices(doc)``, as lm-eval's own scoring takes them.
    """
    cols: dict[str, list] = {k: [] for k in ("doc_id", "choice_idx", "loglik", "n_tokens", "n_bytes", "n_chars", "is_greedy", "is_gold")}
    for sample in by_doc(samples):
        arguments = [tuple(a) for a in sample["arguments"]]
        resps = sample["resps"]
        n = len(arguments)
        # acc_mutual_info appends one unconditional ("", choice) request per choice: drop them.
        if n % 2 == 0 and n and all(a[0] == "" for a in arguments[n // 2 :]) and any(a[0] for a in arguments[: n // 2]):
            n //= 2
        if context_choices is None:
            # lm-eval scores target_delimiter + choice; its acc_norm divides by the choice's length.
            choices = [c[len(target_delimiter) :] if target_delimiter and c.startswith(target_delimiter) else c for _, c in arguments[:n]]
            gold = gold_indices(sample["target"], choices)
        else:
            gold_spec, choices = context_choices(sample["doc"])
            if len(choices) != n:
                raise ValueError(f"doc {sample['doc_id']}: {len(choices)} choices but {n} scored contexts")
            gold = gold_indices(gold_spec, choices)
        doc_id = int(sample["doc_id"])
        if not gold or any(not 0 <= g < n for g in gold):
            raise CapcastError(f"doc {doc_id}: the gold answer {sample['target']!r} is none of its {n} choices; "
                               "fix the task's doc_to_target (an index from 0, or the text of one choice)")
        for i in range(n):
            context, continuation = arguments[i]
            loglik, greedy = resps[i][0]
            cols["doc_id"].append(doc_id)
            cols["choice_idx"].append(i)
            cols["loglik"].append(float(loglik))
            cols["n_tokens"].append(count_tokens(context, continuation))
            cols["n_bytes"].append(len(continuation.encode("utf-8")))
            cols["n_chars"].append(len(choices[i]))
            cols["is_greedy"].append(bool(greedy))
            cols["is_gold"].append(i in gold)
    return pa.table(
        {
            "doc_id": pa.array(cols["doc_id"], pa.int64()),
            "choice_idx": pa.array(cols["choice_idx"], pa.int32()),
            "loglik": pa.array(cols["loglik"], pa.float64()),
            "n_tokens": pa.array(cols["n_tokens"], pa.int32()),
            "n_bytes": pa.array(cols["n_bytes"], pa.int32()),
            "n_chars": pa.array(cols["n_chars"], pa.int32()),
            "is_greedy": pa.array(cols["is_greedy"], pa.bool_()),
            "is_gold": pa.array(cols["is_gold"], pa.bool_()),
        }
    )


def default_checker(sample: str, doc: dict, target: Any) -> bool:
    """Exact match after strip against lm-eval's target (for tasks with neither a checker nor a metric)."""
    return sample.strip() == str(target).strip()


# (doc, the K raw outputs) -> the K responses after the task's filters (capcast.evaluation.harness.response_filter)
Responses = Callable[[dict, list], list]
# (doc, one filtered response) -> whether the task's own lm-eval metric passes it
MetricVerdict = Callable[[dict, str], bool]


@dataclass
class CheckerErrors:
    """How often a task's checker raised (each such sample counts as a failure)."""

    checked: int = 0
    errors: int = 0
    first: str | None = None

    def note(self, exc: BaseException) -> None:
        self.errors += 1
        if self.first is None:
            message = " ".join(str(exc).split())
            self.first = f"{type(exc).__name__}: {message[:200]}" if message else type(exc).__name__


def sample_table(task: Task, samples: Sequence[dict], responses: Responses | None = None,
                 metric: MetricVerdict | None = None, errors: CheckerErrors | None = None) -> pa.Table:
    """Per-(doc, sample) columns: every one of the K repeats (``resps``) with its verdict.

    ``responses`` applies the task's lm-eval filters (say, a regex that extracts the answer) to
    each sample; the verdict is the task's checker on that filtered response, else ``metric`` (the
    task's own lm-eval metric), else exact match. ``text`` keeps the raw output, ``response`` what
    was judged. A checker that raises counts the sample as a failure and is counted in ``errors``.
    """
    doc_ids, idx, texts, judged, correct, targets = [], [], [], [], [], []
    for sample in by_doc(samples):
        outputs = [str(s) for s in sample["resps"][0]]
        doc = sample["doc"]
        filtered = [str(r) for r in responses(doc, outputs)] if responses else outputs
        for k, (text, response) in enumerate(zip(outputs, filtered)):
            if task.checker:
                if errors is not None:
                    errors.checked += 1
                try:
                    verdict = task.checker(response, doc)
                except Exception as exc:
                    if errors is None:
                        raise
                    errors.note(exc)
                    verdict = False
            elif metric is not None:
                verdict = metric(doc, response)
            else:
                verdict = default_checker(response, doc, sample["target"])
            doc_ids.append(int(sample["doc_id"]))
            idx.append(k)
            texts.append(text)
            judged.append(response)
            correct.append(bool(verdict))
            targets.append(str(sample["target"]))
    return pa.table(
        {
            "doc_id": pa.array(doc_ids, pa.int64()),
            "sample_idx": pa.array(idx, pa.int32()),
            "text": pa.array(texts, pa.string()),
            "correct": pa.array(correct, pa.bool_()),
            "target": pa.array(targets, pa.string()),
            "response": pa.array(judged, pa.string()),
        }
    )


def numeric_metrics(results: dict) -> dict[str, float]:
    """lm-eval's aggregate metrics of one task, numbers only (stderr 'N/A' and aliases dropped)."""
    out = {}
    for key, value in results.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def task_hash(samples: Sequence[dict]) -> str:
    """Hash of the evaluated docs, prompts and targets, as lm-eval's ``task_hashes`` computes it."""
    joined = "".join(s["doc_hash"] + s["prompt_hash"] + s["target_hash"] for s in samples)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


def weights_hash(model: str, revision: str | None = None, known: dict[str, str] | None = None) -> str | None:
    """sha256 over the checkpoint's weight files (names and bytes), or None when not on disk.

    Local folders are hashed directly; hub ids are hashed from the local HF cache once
    downloaded (e.g. after :func:`capcast.evaluation.harness.load_model`). ``known`` caches digests by the
    files' fingerprint (path, size, mtime): re-hashing a multi-GB checkpoint on every
    ``capcast eval`` start would cost minutes. New digests are added to it.
    """
    folder = Path(model).expanduser()
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(
                snapshot_download(model, revision=revision, local_files_only=True, allow_patterns=[f"*{s}" for s in WEIGHT_SUFFIXES])
            )
        except Exception:
            return None
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not files:
        return None
    fingerprint = _fingerprint(folder, files)
    if known is not None and fingerprint in known:
        return known[fingerprint]
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
    if known is not None:
        known[fingerprint] = digest.hexdigest()
    return digest.hexdigest()


def _fingerprint(folder: Path, files: list[Path]) -> str:
    """Identity of the weight files as the filesystem sees them: any rewrite changes it."""
    stats = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    return hashlib.sha256(repr((str(folder.resolve()), stats)).encode()).hexdigest()
