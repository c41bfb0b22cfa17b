"""The PassUntil sampler loop on instances with known pass rates, and the round store."""

from __future__ import annotations

import numpy as np
import pytest

from capcast.passuntil import rounds as pstore
from capcast.errors import CapcastError
from capcast.passuntil.estimators import unbiased_pass_rate
from capcast.passuntil.sampler import SamplerConfig, SamplerState, plan_round, run_passuntil, simulated_draw
from capcast.store import Store

RATES = {0: 0.5, 1: 0.05, 2: 0.002, 3: 0.0}


def recording(draw):
    calls = []

    def wrapped(docs, n, round_index):
        calls.append((list(docs), n, round_index))
        return draw(docs, n, round_index)

    return wrapped, calls


def test_rounds_grow_and_send_only_unresolved_instances():
    draw, calls = recording(simulated_draw(RATES, seed=1))
    config = SamplerConfig(successes=2, max_samples_per_instance=5000, first_batch=4)
    state = run_passuntil(draw, RATES, config)
    sizes = [n for _, n, _ in calls]
    assert sizes[:4] == [4, 8, 16, 32]
    # Replay the rounds: each round goes to exactly the instances unresolved before it.
    seen = {d: [] for d in RATES}
    for docs, n, _ in calls:
        unresolved = [d for d in RATES if sum(seen[d]) < 2 and len(seen[d]) < 5000]
        assert docs == unresolved
        for d in docs:
            start = len(seen[d])
            seen[d] += state.outcomes[d].verdicts[start : start + n]
    resolved_round = {d: max(i for i, (docs, _, _) in enumerate(calls) if d in docs) for d in RATES}
    assert resolved_round[0] < resolved_round[1] < resolved_round[2]
    assert state.outcomes[3].n_samples == 5000 and state.outcomes[3].n_correct == 0  # capped, unsolved
    for d in (0, 1, 2):
        assert state.outcomes[d].n_correct >= 2
    assert state.samples_spent == sum(len(docs) * n for docs, n, _ in calls)


def test_sampler_estimates_are_unbiased_over_repeats():
    rates = {i: p for i, p in enumerate([0.3, 0.03, 0.003, 0.0003])}
    config = SamplerConfig(successes=3, max_samples_per_instance=10**7, first_batch=8)
    estimates = []
    for seed in range(150):
        state = run_passuntil(simulated_draw(rates, seed=seed), rates, config)
        _, c, n = state.counts(r=3)
        estimates.append(unbiased_pass_rate(c, n, r=3))
    estimates = np.array(estimates)
    truth = np.array(list(rates.values()))
    se = estimates.std(axis=0) / np.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(axis=0) - truth) < 4 * se)


def test_total_budget_is_respected_and_spent_on_the_unresolved():
    rates = {i: p for i, p in enumerate([0.4, 0.2, 0.01, 0.001, 0.0005])}
    config = SamplerConfig(successes=3, max_samples_per_instance=10**6, total_budget=3000, first_batch=16)
    state = run_passuntil(simulated_draw(rates, seed=3), rates, config)
    assert state.samples_spent <= 3000
    spent = {d: o.n_samples for d, o in state.outcomes.items()}
    assert spent[4] > spent[1] and spent[3] > spent[0]
    assert state.samples_spent == 3000  # a binding budget is spent exactly
    assert plan_round(state, config) == {}


def test_bad_settings_are_one_line_errors():
    with pytest.raises(CapcastError, match="--successes"):
        SamplerConfig(successes=0)
    with pytest.raises(CapcastError, match="--total-budget"):
        SamplerConfig(total_budget=0)


def test_rounds_resume_from_the_store(tmp_path):
    store = Store(tmp_path)
    folder = pstore.run_dir(store, "fam", "ckpt", "task")
    keys = ("fam", "ckpt", "task")
    config = SamplerConfig(successes=2, max_samples_per_instance=64, first_batch=4)

    class Interrupt(Exception):
        pass

    def dying_writer(state):
        def on_round(idx, samples):
            if idx == 2:
                raise Interrupt
            pstore.write_round(folder, keys, idx, samples, state)

        return on_round

    first = SamplerState.fresh(RATES)
    with pytest.raises(Interrupt):
        run_passuntil(simulated_draw(RATES, seed=5), RATES, config, first, on_round=dying_writer(first))
    resumed = pstore.load_state(folder, RATES)
    assert resumed.rounds_done == 2
    assert resumed.samples_spent == sum(o.n_samples for o in first.outcomes.values())
    for d in RATES:
        assert resumed.outcomes[d].verdicts == first.outcomes[d].verdicts
    final = run_passuntil(
        simulated_draw(RATES, seed=6), RATES, config, resumed,
        on_round=lambda idx, samples: pstore.write_round(folder, keys, idx, samples, resumed),
    )
    reloaded = pstore.load_state(folder, RATES)
    assert reloaded.samples_spent == final.samples_spent
    assert reloaded.outcomes[3].n_samples == 64
    with pstore.connect(store) as con:
        idx = con.execute("SELECT doc_id, list(sample_idx ORDER BY sample_idx) AS i FROM passuntil_samples GROUP BY doc_id").df()
    for row in idx.itertuples():
        assert list(row.i) == list(range(len(row.i)))  # no sample written twice or lost
