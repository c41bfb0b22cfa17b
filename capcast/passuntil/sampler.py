"""PassUntil adaptive sampling: sample each instance until it passes r times or hits a cap.

The loop (:func:`run_passuntil`) is independent of any model: it asks a ``draw`` function for
``n`` samples of some instances and gets back, per instance, the ordered verdicts (and texts).
Round j asks every still-unresolved instance for ``first_batch * growth**j`` more samples, trimmed
per instance to what its cap leaves (the cap is never exceeded), so easy instances cost a few
samples and hard ones get exponentially more.

**Budget** (``total_budget``). When a round cannot pay for every open instance, the samples left
are spread evenly over the open instances (fewest samples so far first, ties in a fixed
pseudo-random order of ``doc_id``, :func:`allocation_key`), and the run ends. Nothing in that
allocation looks at an instance's own verdicts except whether it is still open, so an instance's
stopping point is "the r-th success, the cap, or a truncation point fixed by the other
instances", and each instance's estimate stays unbiased (see :func:`plan_round`). Ranking by a
precision score computed from the instance's own counts (the hardest first) would make the
truncation point depend on the instance's luck so far and bias the estimates (+13% in
simulation); :func:`capcast.passuntil.estimators.precision_priority` is no longer used here.

This module is pure: it imports no store and no harness; :mod:`capcast.passuntil.runner` drives it
over a family through the harness and commits each round to the store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from capcast.errors import CapcastError
from capcast.passuntil.estimators import truncate_at_rth_success

# One sample: (generated text, did the checker pass it).
Sample = tuple[str, bool]
# draw(doc_ids, n_per_doc, round_index) -> {doc_id: [n samples in generation order]}
# A round whose instances get different numbers of samples calls draw once per group of equal n,
# largest n first, all with the same round_index.
Draw = Callable[[Sequence[int], int, int], dict[int, list[Sample]]]

# Recorded in each run's manifest: how a binding budget is shared. Stores of older capcast lack it;
# their budget-bound rounds went to the hardest instances first by their own counts (biased).
ALLOCATION = "even-fixed-order"
LEGACY_ALLOCATION = "precision-priority"


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


def allocation_key(doc_id: int) -> int:
    """A fixed pseudo-random rank of ``doc_id`` (splitmix64), set before any sample is drawn."""
    z = (int(doc_id) + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def plan_round(state: SamplerState, config: SamplerConfig) -> dict[int, int]:
    """How many samples each instance gets this round: ``{doc_id: n}`` (empty when the run is done).

    Every unresolved instance (fewer than r successes, below the cap) gets the round's batch,
    trimmed to what its own cap leaves, so no instance ever passes the cap. When the remaining
    budget cannot pay for all of them, it is spread evenly over the open instances (water-filling:
    none gets more than it asked for; a remainder goes one sample each in the order fewest samples
    so far, then :func:`allocation_key`) and the budget is then spent exactly.

    Why that keeps each instance's estimate unbiased: think of instance i's samples as a fixed,
    independent sequence of Bernoulli(p_i) draws. What it is given in a round depends on its own
    draws only through "is i still open"; everything else (how many instances are open, their
    sample counts, the budget left) is a function of the other instances' sequences, which are
    independent of i's. So i stops at min(r-th success, cap, B_i) where B_i, the point at which
    the budget runs out for i, is fixed by the other instances alone. Conditional on them, that is
    inverse sampling truncated at a fixed n, whose unbiased estimator is (r-1)/(K-1) at the r-th
    success and c/n otherwise (:func:`capcast.passuntil.estimators.unbiased_pass_rate`); averaging
    over the other instances keeps it unbiased.
    """
    r, cap = config.successes, config.max_samples_per_instance
    spent = {d: o.n_samples for d, o in state.outcomes.items() if o.n_correct < r and o.n_samples < cap}
    if not spent:
        return {}
    size = config.round_size(state.rounds_done)
    want = {d: min(size, cap - k) for d, k in spent.items()}
    if config.total_budget is not None:
        left = config.total_budget - state.samples_spent
        if left <= 0:
            return {}
        if sum(want.values()) > left:
            order = sorted(want, key=lambda d: (spent[d], allocation_key(d), d))
            plan = dict.fromkeys(order, 0)
            active = order
            while left > 0 and active:
                share = max(1, left // len(active))
                for d in active:
                    give = min(share, want[d] - plan[d], left)
                    plan[d] += give
                    left -= give
                    if left == 0:
                        break
                active = [d for d in active if plan[d] < want[d]]
            want = {d: k for d, k in plan.items() if k > 0}
    return dict(sorted(want.items()))


@dataclass
class RoundReport:
    round_index: int
    n_instances: int
    n_per_instance: int  # the most any instance got this round (the cap or the budget trims some)
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
        plan = plan_round(state, config)
        if not plan:
            break
        groups: dict[int, list[int]] = {}
        for d, n in plan.items():
            groups.setdefault(n, []).append(d)
        samples: dict[int, list[Sample]] = {}
        for n in sorted(groups, reverse=True):
            drawn = draw(groups[n], n, state.rounds_done)
            for d in groups[n]:
                got = drawn.get(d, [])
                if len(got) != n:
                    raise RuntimeError(f"draw returned {len(got)} samples for doc {d}, expected {n}")
                samples[d] = list(got)
        samples = dict(sorted(samples.items()))
        if on_round is not None:
            on_round(state.rounds_done, samples)
        for d, got in samples.items():
            state.outcomes[d].verdicts.extend(bool(ok) for _, ok in got)
        state.rounds_done += 1
        if on_progress is not None:
            solved = state.solved(r)
            on_progress(RoundReport(state.rounds_done - 1, len(plan), max(plan.values()), state.samples_spent, solved, len(state.outcomes) - solved))
    return state


def simulated_draw(pass_rates: dict[int, float], seed: int = 0) -> Draw:
    """A draw function for instances with known pass rates (validation, benchmarks, tests)."""
    rng = np.random.default_rng(seed)

    def draw(doc_ids: Sequence[int], n: int, round_index: int) -> dict[int, list[Sample]]:
        return {d: [("", bool(v)) for v in rng.random(n) < pass_rates[d]] for d in doc_ids}

    return draw
