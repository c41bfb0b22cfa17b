"""Honest PassUntil counts: a binding budget leaves the estimates unbiased, the cap is never passed,
the design (r, cap) is recorded per instance, and legacy budget-bound runs are flagged as biased."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capcast.errors import CapcastError
from capcast.passuntil import rounds as pstore
from capcast.passuntil import sampler
from capcast.passuntil.estimators import unbiased_pass_rate
from capcast.passuntil.runner import CheckerErrors, _safe_check
from capcast.passuntil.sampler import (
    InstanceOutcomes, SamplerConfig, SamplerState, plan_round, run_passuntil, simulated_draw,
)
from capcast.store import Store
from capcast.tables.samples import task_table, validate_samples, write_samples, read_samples

R, CAP = 3, 10_000


def known_rates(n: int = 2000, seed: int = 0) -> dict[int, float]:
    rng = np.random.default_rng(seed)
    return dict(enumerate(np.exp(rng.uniform(np.log(1e-3), np.log(0.1), n))))


def task_means(rates: dict[int, float], budget: int, replicates: int) -> tuple[np.ndarray, list[SamplerState]]:
    config = SamplerConfig(successes=R, max_samples_per_instance=CAP, total_budget=budget, first_batch=8)
    means, states = [], []
    for rep in range(replicates):
        state = run_passuntil(simulated_draw(rates, seed=1000 + rep), rates, config)
        _, c, n = state.counts(R)
        means.append(unbiased_pass_rate(c, n, R).mean())
        states.append(state)
    return np.array(means), states


def test_binding_budget_leaves_the_estimator_unbiased():
    # 2,000 instances of known rates (log-uniform in [1e-3, 0.1]), r = 3, a budget of 50 samples per
    # instance where PassUntil would need about 650: the budget binds in round 2 and cuts ~85% of the
    # instances short. The old allocation (hardest first by the instances' own counts) gave +13% here.
    rates = known_rates()
    truth = float(np.mean(list(rates.values())))
    budget = 50 * len(rates)
    means, states = task_means(rates, budget, replicates=100)
    for state in states[:3]:
        _, c, n = state.counts(R)
        assert state.samples_spent == budget  # binding, and spent exactly
        assert np.all(n >= 1) and np.mean((c < R) & (n < CAP)) > 0.7  # every instance sampled, most cut short
    bias = means.mean() / truth - 1
    mc_se = means.std(ddof=1) / np.sqrt(len(means)) / truth  # about 0.3% with 100 replicates
    assert mc_se < 0.004
    assert abs(bias) < 0.01, f"relative bias {bias:+.2%} (Monte Carlo se {mc_se:.2%})"


def test_an_outcome_dependent_allocation_would_be_caught(monkeypatch):
    """The bias test has power: giving a binding budget to the instances with fewest successes first
    (their own counts) is biased far beyond 1% on the same simulation."""
    honest = sampler.plan_round

    def by_own_counts(state, config):
        plan = honest(state, config)
        left = None if config.total_budget is None else config.total_budget - state.samples_spent
        open_docs = [d for d, o in state.outcomes.items() if o.n_correct < config.successes and o.n_samples < config.max_samples_per_instance]
        size = config.round_size(state.rounds_done)
        if left is None or left <= 0 or not open_docs or size * len(open_docs) <= left:
            return plan
        order = sorted(open_docs, key=lambda d: (state.outcomes[d].n_correct, d))
        take = order[: max(1, left // size)]
        return {d: min(size, left, config.max_samples_per_instance - state.outcomes[d].n_samples) for d in sorted(take)}

    monkeypatch.setattr(sampler, "plan_round", by_own_counts)
    rates = known_rates()
    truth = float(np.mean(list(rates.values())))
    means, _ = task_means(rates, 50 * len(rates), replicates=5)
    assert means.mean() / truth - 1 > 0.05


def test_the_plan_sees_an_instance_only_through_whether_it_is_open():
    """Two runs whose open instances have the same sample counts get the same plan, whatever their
    verdicts (the stopping point of an instance may not depend on its own luck)."""
    rng = np.random.default_rng(4)
    for _ in range(200):
        docs = rng.integers(1, 40)
        config = SamplerConfig(successes=int(rng.integers(2, 6)), max_samples_per_instance=int(rng.integers(20, 400)),
                               total_budget=int(rng.integers(1, 3000)), first_batch=int(rng.integers(1, 32)))
        spent = rng.integers(0, config.max_samples_per_instance, size=docs)
        states = []
        for _ in range(2):
            state = SamplerState({d: InstanceOutcomes(d) for d in range(docs)}, rounds_done=int(rng.integers(0, 5)))
            for d in range(docs):
                hits = rng.integers(0, min(config.successes, spent[d] + 1))  # open: fewer than r successes
                verdicts = np.zeros(spent[d], bool)
                verdicts[rng.choice(spent[d], size=hits, replace=False)] = True
                state.outcomes[d].verdicts = verdicts.tolist()
            states.append(state)
        states[1].rounds_done = states[0].rounds_done
        assert plan_round(states[0], config) == plan_round(states[1], config)


def test_each_instance_is_trimmed_to_its_own_cap():
    # The case of the issue: an instance at 290 of a 300 cap beside fresh ones, a round of 64.
    state = SamplerState.fresh([0, 1, 2])
    state.outcomes[0].verdicts = [False] * 290
    state.rounds_done = 3
    config = SamplerConfig(successes=3, max_samples_per_instance=300, first_batch=8)
    assert plan_round(state, config) == {0: 10, 1: 64, 2: 64}
    calls = []
    draw = simulated_draw({0: 0.0, 1: 0.0, 2: 0.0})
    run_passuntil(lambda docs, n, j: calls.append((list(docs), n, j)) or draw(docs, n, j), [0, 1, 2], config, state)
    assert calls[:2] == [([1, 2], 64, 3), ([0], 10, 3)]  # one round, drawn in groups of equal n, largest first
    assert all(o.n_samples == 300 for o in state.outcomes.values())


def random_config(rng: np.random.Generator, raise_from: SamplerConfig | None = None) -> SamplerConfig:
    if raise_from is not None:  # a resume may raise the cap and the budget, never lower them
        budget = None if raise_from.total_budget is None or rng.random() < 0.3 else raise_from.total_budget + int(rng.integers(0, 3000))
        return SamplerConfig(successes=raise_from.successes, max_samples_per_instance=raise_from.max_samples_per_instance + int(rng.integers(0, 500)),
                             total_budget=budget, first_batch=raise_from.first_batch, growth=raise_from.growth, max_batch=raise_from.max_batch)
    return SamplerConfig(
        successes=int(rng.integers(1, 6)),
        max_samples_per_instance=int(rng.integers(1, 700)),
        total_budget=None if rng.random() < 0.3 else int(rng.integers(1, 6000)),
        first_batch=int(rng.integers(1, 65)),
        growth=float(rng.choice([1.0, 1.5, 2.0, 3.0])),
        max_batch=int(rng.integers(1, 600)),
    )


def test_cap_and_budget_are_never_exceeded_over_random_configurations():
    """600 seeded random configurations (r, cap, budget, schedule, rates from 0 to 1), each run to the
    end and then resumed with a raised cap/budget: no plan ever takes an instance past its cap or
    the run past its budget, and a run ends only when every instance is resolved or capped, or the
    budget is spent exactly."""
    rng = np.random.default_rng(2024)
    worst_cap, worst_budget = 0.0, 0.0
    for case in range(600):
        n_docs = int(rng.integers(1, 30))
        rates = dict(enumerate(rng.choice([0.0, 1.0, 0.5, 0.05, 0.005], size=n_docs)))
        config = random_config(rng)
        state = SamplerState.fresh(rates)
        for config in (config, random_config(rng, raise_from=config)):
            base = simulated_draw(rates, seed=case)

            def draw(docs, n, j, _config=config, _state=state):
                assert n >= 1 and docs
                for d in docs:
                    o = _state.outcomes[d]
                    assert o.n_correct < _config.successes  # only open instances are sampled
                    assert o.n_samples + n <= _config.max_samples_per_instance, (case, d, o.n_samples, n)
                return base(docs, n, j)

            run_passuntil(draw, rates, config, state)
            cap, budget = config.max_samples_per_instance, config.total_budget
            worst_cap = max(worst_cap, max(o.n_samples for o in state.outcomes.values()) / cap)
            assert all(o.n_samples <= cap for o in state.outcomes.values())
            open_left = [d for d, o in state.outcomes.items() if o.n_correct < config.successes and o.n_samples < cap]
            if budget is not None:
                worst_budget = max(worst_budget, state.samples_spent / budget)
                assert state.samples_spent <= budget
                assert not open_left or state.samples_spent == budget
            else:
                assert not open_left
    assert worst_cap <= 1.0 and worst_budget <= 1.0


def test_checker_exceptions_are_counted():
    tally = CheckerErrors()

    def checker(text, doc):
        if text == "boom":
            raise ValueError("bad\nsample")
        return text == doc["answer"]

    verdicts = [_safe_check(checker, t, {"answer": "4"}, tally) for t in ("4", "boom", "5", "boom")]
    assert verdicts == [True, False, False, False]
    assert (tally.checked, tally.errors, tally.first) == (4, 2, "ValueError: bad sample")


# --- the design in the samples table -------------------------------------------------------


def write_run(tmp_path, manifest_extra: dict, rates: dict[int, float], config: SamplerConfig, name: str = "ck"):
    store = Store(tmp_path)
    folder = pstore.run_dir(store, "fam", name, "t")
    folder.mkdir(parents=True)
    manifest = {"family": "fam", "checkpoint": name, "task": "t", "run": name, "params": 1e6, "tokens": 1e9, "flops": 6e15,
                "step": 1, "successes": config.successes, "max_samples_per_instance": config.max_samples_per_instance,
                "total_budget": config.total_budget, **manifest_extra}
    pstore.write_manifest(folder, manifest)
    state = SamplerState.fresh(rates)
    run_passuntil(simulated_draw(rates, seed=1), rates, config, state,
                  on_round=lambda i, s: pstore.write_round(folder, ("fam", name, "t"), i, s, state))
    return store


RATES = {0: 0.6, 1: 0.01, 2: 0.0, 3: 0.002}


@pytest.mark.parametrize(
    ("extra", "budget", "biased"),
    [
        ({"allocation": sampler.ALLOCATION}, 120, False),  # this capcast: a binding budget is outcome-independent
        ({}, 120, True),  # an older store under a binding budget: flagged
        ({"allocation": sampler.LEGACY_ALLOCATION}, 120, True),
        ({}, None, False),  # older store, no budget: the design holds
        ({}, 10**6, False),  # older store, budget never bound (every instance resolved or capped)
    ],
)
def test_export_records_the_design_and_flags_biased_runs(tmp_path, extra, budget, biased):
    config = SamplerConfig(successes=2, max_samples_per_instance=100, total_budget=budget, first_batch=4)
    table = pstore.export_samples_table(write_run(tmp_path, extra, RATES, config).root)
    assert (table["target_successes"] == 2).all() and (table["max_samples"] == 100).all()
    assert (table["n_samples"] <= table["max_samples"]).all()
    assert (table["biased"] == biased).all()
    path = write_samples(table, tmp_path / "samples.csv")
    back = read_samples(path)
    assert list(back["max_samples"]) == [100] * 4 and (back["biased"] == biased).all()
    assert bool(task_table(back)["biased"].iloc[0]) == biased


def test_samples_table_checks_the_design_columns():
    frame = pd.DataFrame({"family": "f", "model": "m", "params": 1e6, "tokens": 1e9, "task": "t", "doc_id": [0, 1],
                          "n_samples": [50, 100], "n_correct": [3, 0], "target_successes": 3, "max_samples": [100, 100],
                          "biased": ["false", "0"]})
    clean = validate_samples(frame)
    assert clean["biased"].dtype == bool and not clean["biased"].any()
    for change, message in (
        ({"max_samples": [100, 64]}, "n_samples exceeds max_samples"),
        ({"max_samples": [100, 0.5]}, "max_samples must be a whole number"),
        ({"biased": ["false", "maybe"]}, "column 'biased' row 2"),
    ):
        with pytest.raises(CapcastError, match=message) as err:
            validate_samples(frame.assign(**change))
        assert "\n" not in str(err.value)


def test_the_acceleration_test_sees_only_the_fitting_points():
    """A smooth rise on the fitting sizes and a jump in the held-out ones: the jump makes the curve
    concave in hindsight, but the verdict on the fitting points may not see it."""
    from capcast.laws.passuntil import acceleration_test, from_f

    x = np.log(np.geomspace(1e6, 1e9, 9))
    f = 6.0 - 0.25 * x + np.random.default_rng(1).normal(0, 0.02, 9)
    f[-2:] -= [1.5, 3.0]  # emergence inside the held-out sizes
    fitting = np.arange(9) < 7
    hindsight = acceleration_test(x, from_f(f))
    verdict = acceleration_test(x, from_f(f), fitting=fitting)
    assert "accelerated emergence" in hindsight.verdict
    assert verdict.verdict.startswith("scaling-law growth") and verdict.n_points == 7 and verdict.n_held_out == 2
    assert "2 held-out points left out" in verdict.summary()
    with pytest.raises(ValueError, match="fitting has"):
        acceleration_test(x, from_f(f), fitting=fitting[:5])
