"""PassUntil without a harness run per round: lm-eval builds the requests once, each round is one
draw call with per-instance counts, and the texts are the ones lm-eval's own ``simple_evaluate``
run gives (same prompts, stop sequences, batch and seed). Real tiny checkpoints."""

from __future__ import annotations

import pytest

from capcast.evaluation import harness
from capcast.passuntil import rounds
from capcast.passuntil.runner import SamplerConfig, sample_family
from capcast.plugins.registry import load_registry
from capcast.store import Store


@pytest.fixture(scope="module")
def loaded(tiny_family):
    return harness.load_model(str(tiny_family.parent / "tiny-s"), device="cpu", batch_size=16)


@pytest.mark.parametrize("task_name", ["ref_add3", "capcast_add_gen"])  # sampled tasks (greedy ones are refused)
def test_one_call_draws_what_simple_evaluate_draws(loaded, task_name, tmp_path, offline_hf_env):
    prepared = harness.prepare_task(load_registry().tasks[task_name], tmp_path / "data")
    requests = harness.generation_requests(prepared, [0, 3, 5], seed=7)
    assert sorted(requests) == [0, 3, 5]
    # one batch of 10 rows on both sides: lm-eval's rows, padding and random stream (the direct path
    # stops each row at its own stop; over several batches it draws other samples than lm-eval's)
    drawn = harness.draw_generations(loaded, requests, {0: 5, 3: 5}, seed=7, batch_size=16)
    through_lm_eval = harness.generate_samples(loaded, None, prepared, tmp_path / "data", [0, 3], n_per_doc=5, seed=7)
    assert drawn == through_lm_eval
    in_batches_of_4 = harness.draw_generations(loaded, requests, {0: 5, 3: 5}, seed=7, batch_size=4)
    assert harness.draw_generations(loaded, requests, {0: 5, 3: 5}, seed=7, batch_size=4) == in_batches_of_4
    assert len(set(in_batches_of_4[0])) > 1
    uneven = harness.draw_generations(loaded, requests, {0: 2, 3: 7, 5: 1}, seed=8, batch_size=64)
    assert {d: len(v) for d, v in uneven.items()} == {0: 2, 3: 7, 5: 1}


def test_sample_family_draws_each_round_in_one_call_and_keeps_every_sample(tiny_family, tmp_path, offline_hf_env, monkeypatch):
    calls = []
    real = harness.draw_generations

    def counting(loaded, requests, counts, **kwargs):
        calls.append(dict(counts))
        return real(loaded, requests, counts, **kwargs)

    monkeypatch.setattr(harness, "draw_generations", counting)
    built = []
    real_requests = harness.generation_requests
    monkeypatch.setattr(harness, "generation_requests", lambda *a, **k: built.append(1) or real_requests(*a, **k))
    # a budget that binds in round 1 splits that round into instances with different counts
    config = SamplerConfig(successes=2, max_samples_per_instance=12, total_budget=50, first_batch=4)
    store = tmp_path / "store"
    summaries = sample_family(tiny_family, ["capcast_add_gen"], store, config, seed=3, batch_size=32, device="cpu",
                              limit=6, checkpoints=["tiny-xs"])
    (summary,) = summaries
    assert len(calls) == summary.rounds >= 2 and len(built) == 1
    assert any(len(set(c.values())) > 1 for c in calls)  # a round with per-instance counts, still one call
    assert summary.samples == sum(sum(c.values()) for c in calls) <= 50
    with rounds.connect(Store(store)) as con:
        stored = con.execute("SELECT round, doc_id, count(*) AS n FROM passuntil_samples GROUP BY round, doc_id").df()
    by_round = {r: dict(zip(g.doc_id, g.n)) for r, g in stored.groupby("round")}
    assert by_round == {i: c for i, c in enumerate(calls)}

    # resuming with a raised budget continues from the stored rounds: no round is drawn twice
    calls.clear()
    more = SamplerConfig(successes=2, max_samples_per_instance=12, total_budget=80, first_batch=4)
    (resumed,) = sample_family(tiny_family, ["capcast_add_gen"], store, more, seed=3, batch_size=32, device="cpu",
                               limit=6, checkpoints=["tiny-xs"])
    assert resumed.rounds == summary.rounds + len(calls) and resumed.samples == summary.samples + sum(sum(c.values()) for c in calls)
