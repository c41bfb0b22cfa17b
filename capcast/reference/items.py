"""Evaluation items for the reference tasks, generated deterministically from the corpus skills.

Each generator returns a list of docs (plain dicts, JSON-ready). Multiple-choice docs carry
``prompt``, ``choices`` and ``label``; generative docs carry ``prompt`` and ``answer``. Items
use their own seeds, so the training stream does not replay them verbatim (a small overlap
on short inputs is unavoidable and harmless: it is a skill, not a lookup).
"""

from __future__ import annotations

import random
from typing import Callable

from capcast.reference import corpus


def _generative(make: Callable[[random.Random], corpus.Example], n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    docs, seen = [], set()
    while len(docs) < n:
        ex = make(rng)
        if ex.prompt in seen:
            continue
        seen.add(ex.prompt)
        docs.append({"prompt": ex.prompt, "answer": ex.answer})
    return docs


def copy_items(n: int = 150, seed: int = 11) -> list[dict]:
    """Copy a 3-8 letter word: learnt early, saturates near the top of the ladder."""
    return _generative(lambda r: corpus.copy(r, r.randint(3, 8)), n, seed)


def reverse_items(n: int = 150, seed: int = 12) -> list[dict]:
    return _generative(lambda r: corpus.reverse(r, r.randint(3, 6)), n, seed)


def sort_items(n: int = 150, seed: int = 13) -> list[dict]:
    return _generative(lambda r: corpus.sort_digits(r, r.randint(3, 6)), n, seed)


def add2_items(n: int = 450, seed: int = 14) -> list[dict]:
    """Two-digit addition. 450 items (the first 150 are the earlier 150-item task): it begins to
    rise at 1-3% in sm1-sm2, which 150 items cannot tell from 0 (2.5 standard errors are 3 points)."""
    return _generative(lambda r: corpus.addition(r, 2), n, seed)


def add3_items(n: int = 100, seed: int = 15) -> list[dict]:
    """Three-digit addition: the PassUntil showcase (greedy 0 low in the ladder, sampling > 0)."""

    def make(rng: random.Random) -> corpus.Example:
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        return corpus.Example("add", f"{a}+{b}=", str(a + b))

    return _generative(make, n, seed)


def _choices(rng: random.Random, correct: str, distractors: list[str], k: int = 4) -> tuple[list[str], int]:
    options = rng.sample(sorted(set(distractors) - {correct}), k - 1) + [correct]
    rng.shuffle(options)
    return options, options.index(correct)


def fact_items(n: int = 160, seed: int = 16) -> list[dict]:
    """An entity's color, entities spread evenly over frequency ranks: smooth rise."""
    rng = random.Random(seed)
    world = corpus.entities()
    ranks = [round(i * (corpus.N_ENTITIES - 1) / max(1, n - 1)) for i in range(n)]
    docs = []
    for rank in ranks:
        name, color = world[rank]
        options, label = _choices(rng, color, list(corpus.COLORS))
        docs.append({"prompt": f"f {name}:", "choices": options, "label": label, "rank": rank})
    return docs


def kv_items(n: int = 160, seed: int = 17) -> list[dict]:
    """Recall a key's value among 4 in context; the choices are exactly the values shown."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        keys = rng.sample(corpus.LETTERS, 4)
        values = rng.sample(corpus.DIGITS, 4)
        context = " ".join(k + v for k, v in zip(keys, values))
        i = rng.randrange(4)
        options = values[:]
        rng.shuffle(options)
        docs.append({"prompt": f"k {context}?{keys[i]}>", "choices": options, "label": options.index(values[i])})
    return docs


def carry_items(n: int = 160, seed: int = 18) -> list[dict]:
    """Three-digit sums whose choices differ only in carried digits: chance until carries click."""
    rng = random.Random(seed)
    docs = []
    while len(docs) < n:
        a, b = rng.randint(100, 899), rng.randint(100, 899)
        total = a + b
        if total >= 1000:
            continue
        distractors = [str(total + d) for d in (-10, 10, -100, 100, -110, 110) if 100 <= total + d <= 999]
        if len(distractors) < 3:
            continue
        options, label = _choices(rng, str(total), distractors)
        docs.append({"prompt": f"{a}+{b}=", "choices": options, "label": label})
    return docs


GENERATIVE = {
    "copy": copy_items,
    "reverse": reverse_items,
    "sort": sort_items,
    "add2": add2_items,
    "add3": add3_items,
}
MULTIPLE_CHOICE = {"facts": fact_items, "kv": kv_items, "carry": carry_items}
