"""PassUntil adaptive sampling: sample each instance until it passes r times or hits a cap.

The loop (:func:`run_passuntil`) is independent of any model: it asks a ``draw`` function for
``n`` samples of some instances and gets back, per instance, the ordered verdicts (and texts).
Round j asks every still-unresolved instance for ``first_batch * growth**j`` more samples (capped
per instance), so easy instances cost a few samples and hard ones get exponentially more. Under a
total budget the round goes to the instances where one more sample buys the most relative
precision (:func:`capcast.passuntil.estimators.precision_priority`: the hardest unresolved ones).

This module is pure: it imports no store and no harness; :mod:`capcast.passuntil.runner` drives it
over a family through the harness and commits each round to the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from capcast.errors import CapcastError
from capcast.passuntil.estimators import precision_priority, truncate_at_rth_success

# One sample: (generated text, did the checker pass it).
Sample = tuple[str, bool]
# draw(doc_ids, n_per_doc, round_index) -> {doc_id: [n samples in generation order]}
Draw = Callable[[Sequence[int], int, int], dict[int, list[Sample]]]


@dataclass(frozen=True)
class SamplerConfig:
    """PassUntil settings. ``total_budget`` counts samples per (checkpoint, task); None = no limit."""

    successes: int = 3
    max_samples_per_instance: int = 10_000
    total_budget: int | None = None
    first_batch: int = 8
    growth: float = 2.0
    max_batch: int = 4096

    def __post_init__(self) -> None:
        problems = []
        if self.successes < 1:
            problems.append("--successes must be >= 1")
        if self.max_samples_per_instance < 1:
            problems.append("--max-samples-per-instance must be >= 1")
        if self.total_budget is not None and self.total_budget < 1:
            problems.append("--total-budget must be >= 1")
        if self.first_batch < 1 or self.max_batch < 1:
            problems.append("--batch must be >= 1")
        if self.growth < 1:
            problems.append("growth must be >= 1")
        if problems:
            raise CapcastError("; ".join(problems))

    def round_size(self, round_index: int) -> int:
        return int(min(self.max_batch, math.ceil(self.first_batch * self.growth**round_index)))


@dataclass
class InstanceOutcomes:
    """Every verdict drawn so far for one instance, in generation order."""

    doc_id: int
    verdicts: list[bool] = field(default_factory=list)

    @property
    def n_samples(self) -> int:
        return len(self.verdicts)

    @property
    def n_correct(self) -> int:
        return int(sum(self.verdicts))


@dataclass
class SamplerState:
    """Where a PassUntil run stands: per-instance outcomes and rounds done."""

    outcomes: dict[int, InstanceOutcomes]
    rounds_done: int = 0

    @classmethod
    def fresh(cls, doc_ids: Iterable[int]) -> "SamplerState":
        return cls({int(d): InstanceOutcomes(int(d)) for d in doc_ids})

    @property
    def samples_spent(self) -> int:
        return sum(o.n_samples for o in self.outcomes.values())

    def solved(self, r: int) -> int:
        return sum(o.n_correct >= r for o in self.outcomes.values())

    def counts(self, r: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(doc_ids, n_correct, n_samples) per instance, truncated at the r-th success when r is given."""
        docs = np.array(sorted(self.outcomes))
        pairs = [
            truncate_at_rth_success(self.outcomes[d].verdicts, r) if r else (self.outcomes[d].n_correct, self.outcomes[d].n_samples)
            for d in docs
        ]
        return docs, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def plan_round(state: SamplerState, config: SamplerConfig) -> tuple[list[int], int]:
    """Which instances get samples this round, and how many each (one size for all).

    Unresolved instances (fewer than r successes, below the cap) each get the round's batch,
    trimmed to what the cap leaves. When the remaining budget cannot pay for all of them, the
    instances where a sample buys most precision go first.
    """
    r, cap = config.successes, config.max_samples_per_instance
    open_docs = [d for d, o in state.outcomes.items() if o.n_correct < r and o.n_samples < cap]
    if not open_docs:
        return [], 0
    spent = {d: state.outcomes[d].n_samples for d in open_docs}
    n = min(config.round_size(state.rounds_done), cap - min(spent.values()))
    if config.total_budget is not None:
        left = config.total_budget - state.samples_spent
        if left <= 0:
            return [], 0
        if n * len(open_docs) > left:
            if all(spent[d] > 0 for d in open_docs):
                c = np.array([state.outcomes[d].n_correct for d in open_docs])
                k = np.array([spent[d] for d in open_docs])
                order = np.argsort(-precision_priority(c, k, r), kind="stable")
                open_docs = [open_docs[i] for i in order]
            else:  # nothing sampled yet for some: spread the first round evenly
                open_docs = sorted(open_docs, key=lambda d: spent[d])
            take = max(1, left // n)
            if take >= len(open_docs):
                take = len(open_docs)
            open_docs = open_docs[:take]
            n = min(n, max(1, left // len(open_docs)))
    return sorted(open_docs), int(n)


@dataclass
class RoundReport:
    round_index: int
    n_instances: int
    n_per_instance: int
    samples_spent: int
    solved: int
    unresolved: int


def run_passuntil(
    draw: Draw,
    doc_ids: Iterable[int],
    config: SamplerConfig,
    state: SamplerState | None = None,
    on_round: Callable[[int, dict[int, list[Sample]]], None] | None = None,
    on_progress: Callable[[RoundReport], None] | None = None,
) -> SamplerState:
    """Run PassUntil rounds until every instance is resolved, capped, or the budget is gone.

    ``on_round(round_index, samples)`` is called after each round (the store commits it there)
    before the state advances, so a crash never leaves the state ahead of what was saved.
    """
    state = state or SamplerState.fresh(doc_ids)
    r = config.successes
    while True:
        docs, n = plan_round(state, config)
        if not docs:
            break
        drawn = draw(docs, n, state.rounds_done)
        for d in docs:
            got = drawn.get(d, [])
            if len(got) != n:
                raise RuntimeError(f"draw returned {len(got)} samples for doc {d}, expected {n}")
        if on_round is not None:
            on_round(state.rounds_done, {d: drawn[d] for d in docs})
        for d in docs:
            state.outcomes[d].verdicts.extend(bool(ok) for _, ok in drawn[d])
        state.rounds_done += 1
        if on_progress is not None:
            solved = state.solved(r)
            on_progress(RoundReport(state.rounds_done - 1, len(docs), n, state.samples_spent, solved, len(state.outcomes) - solved))
    return state


def simulated_draw(pass_rates: dict[int, float], seed: int = 0) -> Draw:
    """A draw function for instances with known pass rates (validation, benchmarks, tests)."""
    rng = np.random.default_rng(seed)

    def draw(doc_ids: Sequence[int], n: int, round_index: int) -> dict[int, list[Sample]]:
        return {d: [("", bool(v)) for v in rng.random(n) < pass_rates[d]] for d in doc_ids}

    return draw
