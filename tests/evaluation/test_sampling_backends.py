"""``--backend hf|vllm`` for sampling: the samples of one prompt in one call are distinct draws (HF
backend, a real tiny checkpoint), where vLLM is not installed one line says how to get it, and the
HF backend's direct draw path gives lm-eval's ``generate_until`` texts (greedy on every built-in
generative task; stops cut exactly; seeded) or hands the requests to lm-eval where it cannot."""

from __future__ import annotations

import collections
import dataclasses
import sys

import pytest
import torch

from capcast.evaluation import harness
from capcast.evaluation.harness import hf_draws
from capcast.plugins.registry import load_registry
from capcast.testing.cli import run_in_process


def test_the_samples_of_one_prompt_are_distinct_draws_on_the_hf_backend(tiny_family, tmp_path, offline_hf_env):
    loaded = harness.load_model(str(tiny_family.parent / "tiny-xs"), device="cpu", batch_size=8)
    prepared = harness.prepare_task(load_registry().tasks["capcast_add_gen"], tmp_path / "data")
    requests = harness.generation_requests(prepared, [0, 1], seed=3)
    drawn = harness.draw_generations(loaded, requests, {0: 12, 1: 3}, seed=3, batch_size=8)
    assert {d: len(texts) for d, texts in drawn.items()} == {0: 12, 1: 3}  # per-instance counts, one call
    assert len(set(drawn[0])) > 1  # twelve draws of one prompt, not one draw copied twelve times
    assert harness.draw_generations(loaded, requests, {0: 12, 1: 3}, seed=3, batch_size=8) == drawn  # seeded


def test_vllm_where_it_is_not_installed_is_one_line_naming_the_extra(tiny_family, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # as on a machine without vLLM (importing it raises ImportError)
    code, _, err = run_in_process(["sample", str(tiny_family), "--tasks", "capcast_add_gen", "--store", str(tmp_path / "store"),
                                   "--backend", "vllm", "--device", "cpu"], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "pip install 'capcast[vllm]'" in lines[0], err
    assert not (tmp_path / "store").exists()


def test_vllm_instance_seeds_differ_per_instance_and_per_round():
    from capcast.evaluation.harness.vllm_draws import instance_seed

    seeds = {instance_seed(round_seed, d) for round_seed in (1234, 1234 + 7919) for d in range(50)}
    assert len(seeds) == 100 and all(0 <= s < 2**31 for s in seeds)


# --- the HF backend's direct draw path (capcast.evaluation.harness.hf_draws) -----------------------------------------

def _with_gen_kwargs(requests, **changes):
    """The same lm-eval Instances with their generation kwargs changed (``None`` removes a key)."""
    out = []
    for inst in requests:
        context, kwargs = inst.args
        kwargs = {k: v for k, v in {**kwargs, **changes}.items() if v is not None}
        out.append(dataclasses.replace(inst, arguments=(context, kwargs)))
    return out


@pytest.fixture(scope="module")
def tiny_lm(tiny_family):
    return harness.load_model(str(tiny_family.parent / "tiny-xs"), device="cpu", batch_size=4).lm


def _generative_builtin_requests(tmp_path, docs=6):
    """lm-eval's requests of every generative task capcast ships (its own data, no download), sampled ones
    forced to sample so that generation_requests builds them (greedy tasks are refused there)."""
    from capcast.tasks.standard import benchmarks

    hub_data = {bench.name for bench in benchmarks()}  # the standard benchmarks read their data from the hub
    found = {}
    for name, task in load_registry().tasks.items():
        if name in hub_data or task.kind == "multiple_choice":
            continue
        prepared = harness.prepare_task(task, tmp_path / "data", gen_kwargs={"do_sample": True, "temperature": 1.0})
        if prepared.kind == "generate":
            found[name] = list(harness.generation_requests(prepared, range(docs), seed=1).values())
    return found


def test_direct_greedy_texts_equal_lm_evals_generate_until_on_every_builtin_generative_task(tiny_lm, tmp_path, offline_hf_env):
    by_task = _generative_builtin_requests(tmp_path)
    assert {"capcast_add_gen", "ref_add3", "ref_copy"} <= set(by_task)
    for name, requests in by_task.items():
        greedy = _with_gen_kwargs(requests, do_sample=False, temperature=None)
        assert hf_draws.direct_refusal(tiny_lm, greedy) is None, name
        assert hf_draws.generate_until(tiny_lm, greedy) == tiny_lm.generate_until(greedy), name


def _uncut_greedy(lm, requests, max_gen_toks):
    return lm.generate_until(_with_gen_kwargs(requests, do_sample=False, temperature=None, until=[], max_gen_toks=max_gen_toks))


def _frequent_stops(uncut):
    """Stops this random model really meets: its most frequent character and two-character string
    (which spans two tokens of the character tokenizer), read from lm-eval's uncut texts."""
    chars = collections.Counter(c for text in uncut for c in text)
    pairs = collections.Counter(text[i:i + 2] for text in uncut for i in range(len(text) - 1))
    single = chars.most_common(1)[0][0]
    return [single, next(p for p, _ in pairs.most_common() if single not in p)]


def test_direct_texts_are_cut_at_the_first_stop_exactly_as_lm_eval_cuts_them(tiny_lm, tmp_path, offline_hf_env, monkeypatch):
    prepared = harness.prepare_task(load_registry().tasks["capcast_add_gen"], tmp_path / "data")
    requests = list(harness.generation_requests(prepared, range(8), seed=1).values())
    longest = 16
    uncut = _uncut_greedy(tiny_lm, requests, longest)
    stops = _frequent_stops(uncut)
    steps = []  # tokens generated by each model.generate call
    generate = tiny_lm.model.generate
    monkeypatch.setattr(tiny_lm.model, "generate",
                        lambda **kw: steps.append((out := generate(**kw)).shape[1] - kw["input_ids"].shape[1]) or out)
    for decoding in ({"do_sample": False, "temperature": None}, {"do_sample": True, "temperature": 1.0}):
        cut = _with_gen_kwargs(requests, until=stops, max_gen_toks=longest, **decoding)
        tiny_lm.batch_size_per_gpu = len(cut)  # one batch: the same random stream as lm-eval's when sampling
        try:
            torch.manual_seed(11)
            theirs = tiny_lm.generate_until(cut)
            torch.manual_seed(11)
            ours = hf_draws.generate_until(tiny_lm, cut)
        finally:
            tiny_lm.batch_size_per_gpu = 4
        assert ours == theirs, decoding
        assert any(len(t) < longest for t in ours) and not any(s in t for s in stops for t in ours)
        if decoding["do_sample"] is False:
            # one character per token: each row stops on the token that completes its first stop (or
            # at EOS, or at max_gen_toks), and the batch ends with its last row, not at a shared stop
            def stop_end(text):
                ends = [text.index(s) + len(s) for s in stops if s in text]
                return min(ends) if ends else min(len(text) + 1, longest)

            assert steps[-1] == max(stop_end(text) for text in uncut)


def test_direct_sampled_draws_are_seeded_and_distinct_across_batches(tiny_lm, tmp_path, offline_hf_env):
    prepared = harness.prepare_task(load_registry().tasks["capcast_add_gen"], tmp_path / "data")
    requests = list(harness.generation_requests(prepared, range(3), seed=1).values())
    rows = [requests[i % 3] for i in range(15)]  # four batches of 4 (the fixture's batch size)

    def draw(seed):
        torch.manual_seed(seed)
        return hf_draws.generate_until(tiny_lm, rows)

    first = draw(5)
    assert draw(5) == first and draw(6) != first
    for doc in range(3):
        assert len(set(first[doc::3])) > 1  # five draws of one prompt, spread over batches, differ


def test_settings_the_direct_path_cannot_honour_go_to_lm_evals_generate_until(tiny_lm, tmp_path, offline_hf_env, monkeypatch):
    prepared = harness.prepare_task(load_registry().tasks["capcast_add_gen"], tmp_path / "data")
    requests = _with_gen_kwargs(harness.generation_requests(prepared, range(2), seed=1).values(), do_sample=False, temperature=None)
    assert hf_draws.direct_refusal(tiny_lm, requests) is None
    assert "max_length" in hf_draws.direct_refusal(tiny_lm, _with_gen_kwargs(requests, max_length=40))
    monkeypatch.setattr(tiny_lm, "think_end_token", "</think>")
    assert "think_end_token" in hf_draws.direct_refusal(tiny_lm, requests)
    handed = []
    monkeypatch.setattr(tiny_lm, "generate_until", lambda reqs: handed.append(len(reqs)) or ["lm-eval"] * len(reqs))
    assert hf_draws.generate_until(tiny_lm, requests) == ["lm-eval", "lm-eval"] and handed == [2]
