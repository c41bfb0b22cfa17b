"""The reference tasks: lm-eval configs built from :mod:`capcast.reference.items`.

Each task is a :class:`capcast.Task` whose ``lm_eval_config`` is a ``build(data_dir) -> dict``
callable: it writes the items as JSONL under ``data_dir`` and returns the lm-eval task config
with the absolute data path, so the tasks run from any working directory.

What each task shows on the committed ladder (measured; see docs/reference-family.md):

==================  ===============  =================================================
task                kind             behaviour over compute
==================  ===============  =================================================
ref_facts           multiple choice  smooth rise from chance (rare facts come later)
ref_carry           multiple choice  emergent: at chance for most, rises at the top
ref_copy            greedy           rises early and saturates near the top
ref_reverse         greedy           sharp rise in the middle, saturates at the top
ref_sort            greedy           sharp rise in the middle, saturates at the top
ref_add2            greedy           rises in the upper half
ref_add3_greedy     greedy           0 for the smaller half, rises only at the top
ref_add3            sampled (T=1)    PassUntil showcase: > 0 where greedy is 0
==================  ===============  =================================================
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Callable

import capcast
from capcast.reference import items

SAMPLED_REPEATS = 16  # samples per item of ref_add3 under `capcast eval`


def exact_answer(sample: str, doc: dict) -> bool:
    """A sample passes when, up to surrounding whitespace, it is exactly the answer."""
    return sample.strip() == str(doc["answer"])


def _write_jsonl(path: Path, docs: list[dict]) -> None:
    # Atomic, and untouched when unchanged, so concurrent runs and caches stay valid.
    text = "".join(json.dumps(doc, sort_keys=True) + "\n" for doc in docs)
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _data_file(data_dir: Path, name: str, docs: list[dict]) -> str:
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}.jsonl"
    _write_jsonl(path, docs)
    return str(path)


def _base(name: str, data_file: str) -> dict:
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": data_file}},
        "test_split": "test",
        "doc_to_text": "{{prompt}}",
        # Character-level prompts: the answer follows the prompt's last character directly.
        "target_delimiter": "",
        "metadata": {"version": 1},
    }


def build_multiple_choice(data_dir: Path, *, name: str, make: Callable[[], list[dict]]) -> dict:
    config = _base(name, _data_file(data_dir, name, make()))
    config.update(
        output_type="multiple_choice",
        doc_to_choice="{{choices}}",
        doc_to_target="{{label}}",
        metric_list=[
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
    )
    return config


def build_generative(data_dir: Path, *, name: str, make: Callable[[], list[dict]], sample: bool) -> dict:
    docs = make()
    config = _base(name, _data_file(data_dir, name, docs))
    longest = max(len(doc["answer"]) for doc in docs)
    generation = {"until": ["\n"], "max_gen_toks": longest + 2, "do_sample": sample}
    if sample:
        generation["temperature"] = 1.0
    config.update(
        output_type="generate_until",
        doc_to_target="{{answer}}",
        repeats=1,  # capcast sets the Task's repeats
        generation_kwargs=generation,
        filter_list=[{"name": "first", "filter": [{"function": "remove_whitespace"}, {"function": "take_first"}]}],
        metric_list=[{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    )
    return config


def _mc(name: str, make, chance: float, description: str) -> capcast.Task:
    return capcast.Task(
        name=name,
        lm_eval_config=partial(build_multiple_choice, name=name, make=make),
        kind="multiple_choice",
        chance=chance,
        description=description,
    )


def _gen(name: str, make, description: str, sample: bool = False, repeats: int = 1) -> capcast.Task:
    return capcast.Task(
        name=name,
        lm_eval_config=partial(build_generative, name=name, make=make, sample=sample),
        kind="generate",
        chance=0.0,
        checker=exact_answer,
        repeats=repeats,
        description=description,
    )


def reference_tasks() -> list[capcast.Task]:
    """Every reference task, in the order the demo shows them."""
    return [
        _mc("ref_facts", items.fact_items, 0.25, "mini-ladder: an entity's color among 4 (smooth: rare facts come later)"),
        _mc("ref_carry", items.carry_items, 0.25, "mini-ladder: 3-digit sums differing only in carries (emergent)"),
        _gen("ref_copy", items.copy_items, "mini-ladder: copy a 3-8 letter word, greedy (saturates)"),
        _gen("ref_reverse", items.reverse_items, "mini-ladder: reverse a 3-6 letter word, greedy"),
        _gen("ref_sort", items.sort_items, "mini-ladder: sort 3-6 digits, greedy"),
        _gen("ref_add2", items.add2_items, "mini-ladder: 2-digit addition, greedy"),
        _gen("ref_add3_greedy", items.add3_items, "mini-ladder: 3-digit addition, greedy (0 for the smaller half)"),
        _gen(
            "ref_add3",
            items.add3_items,
            f"mini-ladder: 3-digit addition, {SAMPLED_REPEATS} samples at T=1 (PassUntil showcase)",
            sample=True,
            repeats=SAMPLED_REPEATS,
        ),
    ]


REFERENCE_TASK_NAMES = tuple(task.name for task in reference_tasks())
