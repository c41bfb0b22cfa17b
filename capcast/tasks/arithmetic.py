"""Generated arithmetic tasks: deterministic, seeded, with the number of digits as difficulty knob.

Prompts are character-level and match the ``a+b=c`` format tiny models are trained on:

- ``add_mc``: ``"123+456="``, four candidate sums (the right one and three near misses).
- ``compare_mc``: ``"max(583,291)="``, the two numbers as choices.
- ``add_gen``: ``"123+456="``, generate ``"579"``.

:func:`task_builder` returns the ``build(data_dir) -> dict`` callable a :class:`capcast.Task`
takes: it writes the JSONL into ``data_dir`` and returns the lm-eval config (from the YAML
template next to this file) with the absolute data path filled in.
"""

from __future__ import annotations

import json
import os
import random
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Callable, Iterator

import yaml

KINDS = ("add_mc", "compare_mc", "add_gen")


def _operand(rng: random.Random, digits: int) -> int:
    return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10**digits - 1)


def add_mc_docs(n: int, digits: int, seed: int) -> Iterator[dict]:
    """Which of four sums is right: the sum, and three distinct near misses (+-1, +-10, +-100)."""
    rng = random.Random(seed)
    for i in range(n):
        a, b = _operand(rng, digits), _operand(rng, digits)
        total = a + b
        offsets = [o for o in (1, -1, 10, -10, 100, -100, 2, -2) if total + o >= 0]
        wrong = rng.sample(offsets, 3)
        choices = [total] + [total + o for o in wrong]
        rng.shuffle(choices)
        yield {"id": i, "question": f"{a}+{b}=", "choices": [str(c) for c in choices], "gold": choices.index(total)}


def compare_mc_docs(n: int, digits: int, seed: int) -> Iterator[dict]:
    """Which of two different numbers is larger."""
    rng = random.Random(seed)
    for i in range(n):
        a = _operand(rng, digits)
        b = _operand(rng, digits)
        while b == a:
            b = _operand(rng, digits)
        yield {"id": i, "question": f"max({a},{b})=", "choices": [str(a), str(b)], "gold": 0 if a > b else 1}


def add_gen_docs(n: int, digits: int, seed: int) -> Iterator[dict]:
    """Generate the sum."""
    rng = random.Random(seed)
    for i in range(n):
        a, b = _operand(rng, digits), _operand(rng, digits)
        yield {"id": i, "question": f"{a}+{b}=", "answer": str(a + b)}


GENERATORS: dict[str, Callable[[int, int, int], Iterator[dict]]] = {
    "add_mc": add_mc_docs,
    "compare_mc": compare_mc_docs,
    "add_gen": add_gen_docs,
}
TEMPLATES = {"add_mc": "capcast_add_mc.yaml", "compare_mc": "capcast_compare_mc.yaml", "add_gen": "capcast_add_gen.yaml"}


def exact_answer(sample: str, doc: dict) -> bool:
    """Checker for ``add_gen``: the sample, stripped, is exactly the sum."""
    return sample.strip() == str(doc["answer"])


def write_if_changed(path: Path, text: str) -> None:
    """Write atomically, and not at all when the content is already there (keeps caches valid)."""
    if path.exists() and path.read_text() == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def build_config(data_dir: Path, *, kind: str, name: str, digits: int, n: int, seed: int) -> dict:
    """Write ``data_dir/<name>.jsonl`` and return the lm-eval task config for it."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_file = data_dir / f"{name}.jsonl"
    lines = (json.dumps(doc, sort_keys=True) for doc in GENERATORS[kind](n, digits, seed))
    write_if_changed(data_file, "\n".join(lines) + "\n")
    config = yaml.safe_load(resources.files("capcast.tasks").joinpath(TEMPLATES[kind]).read_text())
    config["task"] = name
    config["dataset_kwargs"]["data_files"] = {"test": str(data_file)}
    if kind == "add_gen":
        # Room for every digit of the sum plus a stray character before the stop sequence.
        config["generation_kwargs"]["max_gen_toks"] = digits + 2
    config["metadata"] = {**config.get("metadata", {}), "digits": digits, "n": n, "seed": seed}
    return config


def task_builder(kind: str, name: str, digits: int = 3, n: int = 1000, seed: int = 1234) -> Callable[[Path], dict]:
    """The ``build(data_dir) -> dict`` for one generated task (see module docstring)."""
    if kind not in GENERATORS:
        raise ValueError(f"unknown arithmetic task kind {kind!r}; choose one of {', '.join(KINDS)}")
    if digits < 1:
        raise ValueError("digits must be at least 1")
    return partial(build_config, kind=kind, name=name, digits=digits, n=n, seed=seed)
