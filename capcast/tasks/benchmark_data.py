"""Local benchmark files in their release formats, turned into the Hugging Face rows lm-eval's
task configs expect (``--data-dir``, air-gapped runs; see docs/benchmarks.md).

Each reader takes one file and returns rows in the schema of the hub dataset the lm-eval YAML
names (``allenai/ai2_arc``, ``Rowan/hellaswag``, ...), so lm-eval's own ``doc_to_text``,
``process_docs`` and few-shot settings apply unchanged. Every problem is one
:class:`~capcast.errors.CapcastError` line naming the file, the task and where the file comes from.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
from pathlib import Path
from typing import Callable

from capcast.errors import CapcastError

Convert = Callable[[dict], dict]


class FormatProblem(ValueError):
    """A row that is not in the expected format (turned into a CapcastError with the file name)."""


def _text(path: Path) -> str:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                return fh.read()
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise FormatProblem(f"cannot be read ({type(exc).__name__}: {exc})") from None


def json_rows(path: Path) -> list[dict]:
    """JSON lines (optionally gzipped), or one JSON array (SciQ's release ``valid.json``)."""
    text = _text(path)
    if text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FormatProblem(f"is not valid JSON ({exc.msg} at line {exc.lineno})") from None
    else:
        rows = []
        for number, line in enumerate(text.split("\n"), 1):  # not splitlines(): U+2028 sits inside strings
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise FormatProblem(f"line {number} is not JSON ({exc.msg})") from None
    if not rows or not all(isinstance(r, dict) for r in rows):
        raise FormatProblem("holds no JSON objects")
    return rows


def mmlu_csv_rows(path: Path) -> list[dict]:
    """The hendrycks/test release: headerless ``question,A,B,C,D,answer-letter`` per subject file."""
    subject = path.name.rsplit("_", 1)[0]
    rows = []
    for number, fields in enumerate(csv.reader(io.StringIO(_text(path))), 1):
        if len(fields) != 6 or fields[5] not in "ABCD" or not fields[5]:
            raise FormatProblem(f"line {number} is not question,A,B,C,D,answer-letter")
        rows.append({"question": fields[0], "subject": subject, "choices": fields[1:5], "answer": "ABCD".index(fields[5])})
    return rows


def _need(row: dict, *keys: str) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        raise FormatProblem(f"has rows without {', '.join(missing)} (keys found: {', '.join(sorted(row)) or 'none'})")


# ------------------------------------------------------------------ row converters, per release


def arc(row: dict) -> dict:
    """HF ai2_arc rows as they are; AI2's release rows (``question: {stem, choices: [...]}``) converted."""
    _need(row, "question", "answerKey")
    if isinstance(row["question"], dict):  # AI2 release jsonl (ARC-Easy-Test.jsonl)
        q = row["question"]
        _need(q, "stem", "choices")
        return {"id": row.get("id", ""), "question": q["stem"],
                "choices": {"text": [c["text"] for c in q["choices"]], "label": [c["label"] for c in q["choices"]]},
                "answerKey": row["answerKey"]}
    _need(row, "choices")
    return row


def hellaswag(row: dict) -> dict:
    _need(row, "ctx_a", "ctx_b", "activity_label", "endings", "label")
    return {**row, "label": str(row["label"])}  # the hub dataset stores the label as a string


def piqa(row: dict) -> dict:
    """HF rows carry ``label``; the release's ``valid.jsonl`` does not (its labels are in
    ``valid-labels.lst``, merged by the caller): ``label`` is then None."""
    _need(row, "goal", "sol1", "sol2")
    label = row.get("label")
    return {"goal": row["goal"], "sol1": row["sol1"], "sol2": row["sol2"], "label": None if label is None else int(label)}


def sciq(row: dict) -> dict:
    _need(row, "question", "distractor1", "distractor2", "distractor3", "correct_answer", "support")
    return row


def winogrande(row: dict) -> dict:
    _need(row, "sentence", "option1", "option2", "answer")
    return {"sentence": row["sentence"], "option1": row["option1"], "option2": row["option2"], "answer": str(row["answer"])}


def lambada(row: dict) -> dict:
    if "text" not in row and {"context", "continuation"} <= set(row):  # llm-foundry layout
        return {"text": row["context"] + " " + row["continuation"].lstrip()}
    _need(row, "text")
    return {"text": row["text"]}


def boolq(row: dict) -> dict:
    """Google's release (``answer: true/false``) and HF google/boolq, to SuperGLUE's ``label`` 0/1."""
    _need(row, "question", "passage")
    if "label" in row:
        return {"question": row["question"], "passage": row["passage"], "label": int(row["label"])}
    _need(row, "answer")
    return {"question": row["question"], "passage": row["passage"], "label": int(bool(row["answer"]))}


def mmlu(row: dict) -> dict:
    _need(row, "question", "subject", "choices", "answer")
    return row


def gsm8k(row: dict) -> dict:
    _need(row, "question", "answer")
    return {"question": row["question"], "answer": row["answer"]}


def humaneval(row: dict) -> dict:
    _need(row, "task_id", "prompt", "test", "entry_point")
    return row


def load_rows(path: Path, convert: Convert, *, task: str, source: str) -> list[dict]:
    """Rows of ``path`` in hub schema, or one CapcastError line naming file, task and source."""
    try:
        stat = path.stat()
        return [convert(row) for row in _parse(path, stat.st_mtime_ns, stat.st_size)]
    except FormatProblem as problem:
        raise CapcastError(f"task {task!r}: data file {path} {problem}; expected {source} (see docs/benchmarks.md)") from None
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise CapcastError(f"task {task!r}: data file {path} is not in the expected format ({type(exc).__name__}: {exc}); "
                           f"expected {source} (see docs/benchmarks.md)") from None


@functools.lru_cache(maxsize=8)  # MMLU's 57 subject tasks read the same file
def _parse(path: Path, _mtime: int, _size: int) -> tuple[dict, ...]:
    return tuple(mmlu_csv_rows(path) if path.suffix == ".csv" else json_rows(path))
