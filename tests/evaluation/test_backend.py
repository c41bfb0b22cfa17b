"""capcast-hf, the shared-context scorer: the same log-likelihoods and is_greedy as lm-eval's HF backend.

Everything compares against a real lm_eval HFLM on the same tiny checkpoint: crafted requests
(multiple-token and one-token continuations, winogrande-style shared continuations, an empty
context, contexts truncated at max_length, greedy continuations, batches split across forwards),
every built-in multiple-choice task through the harness, and the fall-backs (rolling
log-likelihoods, a sliding-window model).
"""

from __future__ import annotations

import random

import pytest

pytest.importorskip("lm_eval")

from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402

from capcast.evaluation import harness  # noqa: E402
from capcast.evaluation.backend import SharedContextHFLM  # noqa: E402

TOLERANCE = 1e-4
# float32 sums of a few hundred nats: a different torch thread count (set by an earlier test in the
# same process) reorders the reduction and moves the last few bits, 4 ulps at 300 nats is 1.2e-4
RELATIVE_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from capcast.testing import build_tiny_checkpoint

    path = tmp_path_factory.mktemp("backend") / "m"
    build_tiny_checkpoint(path, size="m", seed=3)
    return path


def _greedy(lm: HFLM, context: str, n: int) -> str:
    """The model's greedy continuation of ``context`` (n tokens = n characters here)."""
    import torch

    ids = lm.tok_encode(context)
    for _ in range(n):
        with torch.no_grad():
            ids.append(int(lm.model(torch.tensor([ids])).logits[0, -1].argmax()))
    return lm.tok_decode(ids[len(lm.tok_encode(context)):])


def _requests(lm: HFLM) -> list[tuple[str, str]]:
    rng = random.Random(0)

    def text(n):
        return "".join(rng.choice("abcdefgh 0123+=") for _ in range(n))

    pairs = []
    for _ in range(10):  # four-choice items, multi-token continuations of mixed lengths
        context = text(rng.randint(5, 45))
        pairs += [(context, " " + text(rng.randint(1, 6))) for _ in range(4)]
    for _ in range(4):  # one-token answers (MMLU's " A"/" B"/...)
        context = "Q: " + text(20) + "\nAnswer:"
        pairs += [(context, f" {letter}") for letter in "ABCD"]
    for _ in range(4):  # winogrande-style: the choices sit in the contexts, the continuation is shared
        stem, rest = text(15), " " + text(8)
        pairs += [(stem + " option one", rest), (stem + " option two", rest)]
    pairs += [("", "an empty context"), ("x", text(39)), ("y" * 60, " too long for max_length")]
    for context in ("1+1=", "abc", "Answer: "):  # continuations the model ranks first (is_greedy True)
        pairs += [(context, _greedy(lm, context, 3)), (context, _greedy(lm, context, 1))]
    return pairs


def _instances(pairs):
    return [Instance(request_type="loglikelihood", doc={}, arguments=pair, idx=i) for i, pair in enumerate(pairs)]


@pytest.mark.parametrize("batch_size", [1, 6, 64])
def test_shared_context_loglikelihoods_equal_hflm(model_path, batch_size):
    kwargs = dict(pretrained=str(model_path), dtype="float32", device="cpu", batch_size=batch_size, max_length=48)
    plain, shared = HFLM(**kwargs), SharedContextHFLM(**kwargs)
    pairs = _requests(plain)
    want = plain.loglikelihood(_instances(pairs), disable_tqdm=True)
    got = shared.loglikelihood(_instances(pairs), disable_tqdm=True)
    assert shared.last_stats["path"] == "shared-context"
    assert len(got) == len(want) == len(pairs)
    for pair, (ll_want, greedy_want), (ll_got, greedy_got) in zip(pairs, want, got):
        assert ll_got == pytest.approx(ll_want, abs=TOLERANCE), pair
        assert greedy_got == greedy_want, pair
    assert sum(greedy for _, greedy in want) >= 3  # the greedy continuations were really tested
    # each shared context was encoded once: far fewer rows than requests
    assert shared.last_stats["contexts"] < 0.6 * len(pairs)
    assert shared.last_stats["rows"] < len(pairs)  # one-token answers of one context share a row
    if batch_size == 64:
        assert shared.last_stats["forwards"] < 0.6 * len(pairs)


def test_truncated_pairs_keep_lm_eval_left_truncation(model_path):
    kwargs = dict(pretrained=str(model_path), dtype="float32", device="cpu", batch_size=4, max_length=16)
    plain, shared = HFLM(**kwargs), SharedContextHFLM(**kwargs)
    context = "0123456789abcdefghij"  # 20 tokens + continuation > 16: every pair is truncated differently
    pairs = [(context, c) for c in (" a", " bb", " ccc", " dddddd", "e" * 16)]
    want = plain.loglikelihood(_instances(pairs), disable_tqdm=True)
    got = shared.loglikelihood(_instances(pairs), disable_tqdm=True)
    assert [g for _, g in got] == [g for _, g in want]
    assert [ll for ll, _ in got] == pytest.approx([ll for ll, _ in want], abs=TOLERANCE)


def test_rolling_loglikelihood_falls_back_to_hflm(model_path):
    kwargs = dict(pretrained=str(model_path), dtype="float32", device="cpu", batch_size=4, max_length=24)
    plain, shared = HFLM(**kwargs), SharedContextHFLM(**kwargs)
    texts = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(t,), idx=0) for t in ("a b c " * 12, "0123")]
    assert shared.loglikelihood_rolling(texts, disable_tqdm=True) == pytest.approx(plain.loglikelihood_rolling(texts, disable_tqdm=True))
    assert shared.last_stats["path"] == "hf"


def test_sliding_window_model_falls_back_to_hflm(tmp_path):
    """A cache of a sliding-window model drops keys: that model is scored on HFLM's path, unchanged."""
    import torch
    from transformers import MistralConfig, MistralForCausalLM

    from capcast.testing.tiny import build_char_tokenizer

    tokenizer = build_char_tokenizer(tmp_path)
    config = MistralConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                           num_attention_heads=2, num_key_value_heads=2, sliding_window=4, max_position_embeddings=64,
                           bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                           pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    MistralForCausalLM(config).save_pretrained(str(tmp_path))
    kwargs = dict(pretrained=str(tmp_path), dtype="float32", device="cpu", batch_size=4, max_length=32)
    plain, shared = HFLM(**kwargs), SharedContextHFLM(**kwargs)
    pairs = [("a context of some length", " one"), ("a context of some length", " two")]
    assert not shared.shares_contexts()
    assert shared.loglikelihood(_instances(pairs), disable_tqdm=True) == plain.loglikelihood(_instances(pairs), disable_tqdm=True)
    assert shared.last_stats["path"] == "hf"


def _multiple_choice_tasks():
    from capcast.plugins.registry import load_registry

    registry = load_registry()
    return [task for name, task in sorted(registry.tasks.items()) if task.kind == "multiple_choice"]


def test_every_builtin_multiple_choice_task_records_equal_the_hf_backend(model_path, tmp_path, offline_hf_env):
    """Through the harness (lm-eval's prompts, few-shot, target delimiters and _encode_pair): the
    records of capcast-hf equal those of lm-eval's hf backend on every built-in multiple-choice task."""
    import json

    import capcast

    tasks = _multiple_choice_tasks()
    assert {"capcast_add_mc", "capcast_compare_mc"} <= {t.name for t in tasks}
    # and lm-eval's multiple_input format (winogrande: the choices are contexts, one shared continuation), 2-shot
    data = tmp_path / "wino.jsonl"
    docs = [{"options": [f"{a}+{b}={a + b} so", f"{a}+{b}={a + b + 1} so"], "label": (a + b) % 2, "rest": " it is right."}
            for a in range(3) for b in range(4)]
    data.write_text("".join(json.dumps(d) + "\n" for d in docs))
    wino = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data), "train": str(data)}},
            "test_split": "test", "fewshot_split": "train", "num_fewshot": 2, "output_type": "multiple_choice",
            "doc_to_text": "label", "doc_to_choice": "options", "doc_to_target": "rest",
            "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]}
    tasks.append(capcast.Task(name="wino_like", lm_eval_config=wino, chance=0.5))
    plain = harness.load_model(str(model_path), device="cpu", batch_size=8, backend="hf")
    shared = harness.load_model(str(model_path), device="cpu", batch_size=8, backend="capcast-hf")
    assert isinstance(shared.lm, SharedContextHFLM) and not isinstance(plain.lm, SharedContextHFLM)
    from capcast.errors import CapcastError

    compared = []
    for task in tasks:
        try:
            prepared = harness.prepare_task(task, tmp_path / "data" / task.name)
        except CapcastError as exc:  # standard benchmarks whose data is on the hub: offline here
            assert "no local data" in str(exc) or "hub" in str(exc), str(exc)
            continue
        compared.append(task.name)
        want = harness.run_task(plain, prepared, limit=25).records.to_pandas()
        got = harness.run_task(shared, prepared, limit=25).records.to_pandas()
        assert shared.lm.last_stats["path"] == "shared-context", task.name
        keys = ["doc_id", "choice_idx"]
        want, got = want.sort_values(keys).reset_index(drop=True), got.sort_values(keys).reset_index(drop=True)
        assert len(got) == len(want) > 0, task.name
        assert ((got["loglik"] - want["loglik"]).abs() <= TOLERANCE + RELATIVE_TOLERANCE * want["loglik"].abs()).all(), task.name
        for column in ("is_greedy", "is_gold", "n_tokens", "n_bytes"):
            if column in want:
                assert got[column].tolist() == want[column].tolist(), (task.name, column)
    assert {"capcast_add_mc", "capcast_compare_mc", "ref_facts", "ref_carry", "wino_like"} <= set(compared)


@pytest.mark.parametrize("backend", ["capcast-hf", "hf"])
def test_a_continuation_longer_than_the_context_is_one_line_naming_the_task(model_path, tmp_path, offline_hf_env, backend):
    """lm-eval scores a continuation whole and its hf backend asserts that it fits max_length: both
    backends stop with one CapcastError line naming the task and the context length, not a bare
    AssertionError (which the CLI would call a capcast bug)."""
    import json

    import capcast
    from capcast.errors import CapcastError

    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps({"q": f"{i}?", "choices": [" " + "ab" * 20, " " + "cd" * 20], "label": i % 2}) + "\n"
                            for i in range(3)))
    config = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test",
              "output_type": "multiple_choice", "doc_to_text": "q", "doc_to_choice": "choices", "doc_to_target": "label",
              "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}]}
    task = capcast.Task(name="long_answers", lm_eval_config=config, chance=0.5)
    loaded = harness.load_model(str(model_path), device="cpu", batch_size=4, backend=backend, model_args={"max_length": 16})
    prepared = harness.prepare_task(task, tmp_path / "prepared")
    with pytest.raises(CapcastError) as stopped:
        harness.run_task(loaded, prepared)
    message = str(stopped.value)
    assert message.startswith("task 'long_answers': ") and "context of 16 tokens" in message and "\n" not in message, message
