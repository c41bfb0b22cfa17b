"""PassUntil rounds through vLLM: every instance's samples of a round in ONE ``generate`` call, each
instance asking for its own count (``SamplingParams(n=count)``), so a prompt's prefix is computed
once for all its samples and no instance is padded up to another's count.

The prompts, stop sequences, ``max_gen_toks``, truncation and post-processing are lm-eval's own
(the loaded ``vllm`` backend's ``tok_encode``, ``modify_gen_kwargs``, ``maybe_truncate``,
``postprocess_generated_text`` and ``_model_generate``, which also spreads the prompts over
``data_parallel_size`` replicas); only ``n`` and a per-instance ``seed`` are added. The ``n`` samples of
one request are distinct draws of one seeded generator; instance ``d`` of a round seeded ``s`` uses
seed ``s * 1_000_003 + d`` (mod 2**31), so a round is reproducible whatever else is in it.
Needs ``pip install 'capcast[vllm]'`` (a GPU machine); :func:`capcast.evaluation.harness.check_backend`
says so in one line where vLLM is absent.
"""

from __future__ import annotations

from typing import Any

SEED_STRIDE = 1_000_003


def instance_seed(round_seed: int, doc_id: int) -> int:
    return (int(round_seed) * SEED_STRIDE + int(doc_id)) % 2**31


def draw_vllm(lm: Any, requests: dict[int, Any], counts: dict[int, int], *, seed: int) -> dict[int, list[str]]:
    """``counts[d]`` sampled generations of each doc's lm-eval request through lm-eval's vllm backend ``lm``."""
    from lm_eval.models.utils import maybe_truncate, postprocess_generated_text
    from vllm import SamplingParams

    docs = [d for d in sorted(counts) if int(counts[d]) > 0]
    out: dict[int, list[str]] = {int(d): [] for d in counts}
    if not docs:
        return out
    eos = lm.tokenizer.decode(lm.eot_token_id) or getattr(lm.tokenizer, "eos_token", None)
    contexts = [requests[d].args[0] for d in docs]
    encoded = lm.tok_encode(contexts)
    prompts, params, stops = [], [], []
    for d, tokens in zip(docs, encoded):
        kwargs, until, max_gen_toks = lm.modify_gen_kwargs(dict(requests[d].args[1]), eos=eos, default_max_gen_toks=lm.max_gen_toks)
        tokens, max_gen_toks = maybe_truncate(tokens, max_gen_toks=max_gen_toks, max_model_len=lm.max_length, side=lm.truncation_side,
                                              verbose=False)
        prompts.append(tokens)
        # a reasoning model gets only EOS as vLLM's stop; the task's stops cut its text afterwards (as lm-eval does)
        stop = [s for s in until if s == eos] if getattr(lm, "think_end_token", None) else until
        params.append(SamplingParams(n=int(counts[d]), seed=instance_seed(seed, d), max_tokens=max_gen_toks, stop=stop, **kwargs))
        stops.append(until)
    outputs = lm._model_generate(requests=prompts, generate=True, sampling_params=params)
    for d, output, until in zip(docs, outputs, stops):
        out[int(d)] = [postprocess_generated_text(sample.text, until, getattr(lm, "think_end_token", None)) for sample in output.outputs]
    return out
