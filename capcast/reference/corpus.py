"""The synthetic skill corpus the reference mini-ladder is trained on.

Every example is one line ``prompt + answer``. Skills have graded difficulty so that a ladder
of tiny models shows every behaviour forecasting must cope with: copying is learnt early and
saturates, facts are memorised in order of frequency (smooth rise), carries in multi-digit
addition come late (emergent), and partial arithmetic skill gives sampled but not greedy passes.

Everything is driven by ``random.Random(seed)`` so the corpus (and hence the weights) are
reproducible; task items use other seeds so evaluation is not a replay of the training stream.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

LETTERS = string.ascii_lowercase
DIGITS = string.digits
# Every character a corpus line or task prompt may contain; the tokenizer's vocabulary.
ALPHABET = DIGITS + LETTERS + " +=>?:.,|\n"
COLORS = ("red", "blue", "green", "gold", "pink", "gray", "tan", "lime")
N_ENTITIES = 240
FACT_ZIPF = 1.1  # frequency of the k-th entity's fact ~ 1 / k**FACT_ZIPF


@dataclass(frozen=True)
class Example:
    """One skill example; ``prompt + answer`` is the corpus line."""

    skill: str
    prompt: str
    answer: str

    @property
    def line(self) -> str:
        return self.prompt + self.answer


def _number(rng: random.Random, digits: int) -> int:
    low = 0 if digits == 1 else 10 ** (digits - 1)
    return rng.randint(low, 10**digits - 1)


def addition(rng: random.Random, digits: int | None = None) -> Example:
    """``a+b=`` -> ``a+b``; operands of 1 to 3 digits (more digits are rarer)."""
    if digits is None:
        digits = rng.choices((1, 2, 3), weights=(1, 2, 3))[0]
    a, b = _number(rng, digits), _number(rng, rng.randint(1, digits))
    if rng.random() < 0.5:
        a, b = b, a
    return Example("add", f"{a}+{b}=", str(a + b))


def copy(rng: random.Random, length: int | None = None) -> Example:
    length = length or rng.randint(3, 8)
    word = "".join(rng.choice(LETTERS) for _ in range(length))
    return Example("copy", f"c {word}>", word)


def reverse(rng: random.Random, length: int | None = None) -> Example:
    length = length or rng.randint(3, 7)
    word = "".join(rng.choice(LETTERS) for _ in range(length))
    return Example("reverse", f"r {word}>", word[::-1])


def sort_digits(rng: random.Random, length: int | None = None) -> Example:
    length = length or rng.randint(3, 7)
    digits = "".join(rng.choice(DIGITS) for _ in range(length))
    return Example("sort", f"s {digits}>", "".join(sorted(digits)))


def key_value(rng: random.Random, pairs: int | None = None) -> Example:
    """In-context recall: ``k a3 q7 x1?q>`` -> ``7`` (needs an induction-like lookup)."""
    pairs = pairs or rng.randint(2, 5)
    keys = rng.sample(LETTERS, pairs)
    values = [rng.choice(DIGITS) for _ in keys]
    context = " ".join(k + v for k, v in zip(keys, values))
    i = rng.randrange(pairs)
    return Example("kv", f"k {context}?{keys[i]}>", values[i])


@lru_cache(maxsize=1)
def entities() -> tuple[tuple[str, str], ...]:
    """The fixed world of facts: (entity name, its color); name order = frequency rank."""
    rng = random.Random(20240917)
    consonants, vowels = "bdfgklmnprstvz", "aeiou"
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < N_ENTITIES:
        name = rng.choice(consonants) + rng.choice(vowels) + rng.choice(consonants) + rng.choice(vowels)
        if name not in seen:
            seen.add(name)
            names.append(name)
    return tuple((name, rng.choice(COLORS)) for name in names)


@lru_cache(maxsize=1)
def _fact_weights() -> tuple[float, ...]:
    return tuple(1.0 / (k + 1) ** FACT_ZIPF for k in range(N_ENTITIES))


def fact(rng: random.Random, rank: int | None = None) -> Example:
    """``f zuka:`` -> ``red``; popular entities are seen far more often than rare ones."""
    world = entities()
    if rank is None:
        rank = rng.choices(range(N_ENTITIES), weights=_fact_weights())[0]
    name, color = world[rank]
    return Example("fact", f"f {name}:", color)


SKILLS: dict[str, Callable[..., Example]] = {
    "add": addition,
    "copy": copy,
    "reverse": reverse,
    "sort": sort_digits,
    "kv": key_value,
    "fact": fact,
}
# Share of examples per skill in the training stream.
MIX: dict[str, float] = {"add": 0.30, "copy": 0.10, "reverse": 0.15, "sort": 0.15, "kv": 0.15, "fact": 0.15}


class CorpusStream:
    """An endless, deterministic stream of training rows.

    Each row starts with a fresh example (so position 0 looks like an evaluation prompt) and
    packs whole examples separated by newlines until it holds ``row_chars`` characters.
    """

    def __init__(self, seed: int, row_chars: int, mix: dict[str, float] | None = None):
        self.rng = random.Random(seed)
        self.row_chars = row_chars
        mix = mix or MIX
        self.skills = [SKILLS[name] for name in mix]
        self.weights = list(mix.values())

    def example(self) -> Example:
        skill = self.rng.choices(self.skills, weights=self.weights)[0]
        return skill(self.rng)

    def row(self) -> str:
        parts: list[str] = []
        size = 0
        while size < self.row_chars:
            line = self.example().line + "\n"
            parts.append(line)
            size += len(line)
        return "".join(parts)[: self.row_chars]
