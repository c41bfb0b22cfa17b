"""``--backend hf|vllm`` for sampling: the samples of one prompt in one call are distinct draws (HF
backend, a real tiny checkpoint), and where vLLM is not installed one line says how to get it."""

from __future__ import annotations

import sys

from capcast.evaluation import harness
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
