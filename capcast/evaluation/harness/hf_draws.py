"""PassUntil rounds on lm-eval's HF backend without lm-eval's per-token stop check: the texts
``lm.generate_until(requests)`` returns, drawn with ``model.generate`` and a cheap stopping criterion.

lm-eval's ``generate_until`` stops a batch through ``MultiTokenEOSCriteria``: at every generated
token it decodes the last tokens of EVERY row once per stop sequence (EOS included), and ends the
batch only when all rows have met one and the same stop sequence, so a batch whose rows end on
different stops (``\\n`` here, EOS there) runs to ``max_gen_toks``. On small models that check
costs a third of the sampling time. Here everything else is lm-eval's own:

- the batches: lm-eval's ``Collator`` over the same requests, sorted by the same key (longest
  context first; the key is computed once per distinct context, not once per repeated row), so
  each ``generate`` call gets the same rows, padding and random stream as lm-eval's;
- the encoding: ``lm.tok_batch_encode`` (left padding, left truncation to ``max_length -
  max_gen_toks``, lm-eval's special-token rules); the generation kwargs: ``normalize_gen_kwargs``
  and ``handle_stop_sequences`` (EOS added to the stops), then the temperature/``do_sample``
  rules of ``HFLM._model_generate``, its autocast and ``pad_token_id``;
- the texts: each row decoded with ``skip_special_tokens=True`` and cut by lm-eval's
  ``postprocess_generated_text``.

The criterion (:class:`_StopCheck`) ends each row on its own, as soon as the row's text holds a
stop sequence: a vectorised look-up of the new token among the token ids whose text contains a
stop (no decoding at all for one-byte stops such as ``\\n``), and, for stops that can span
tokens, a decode of the last few tokens of the rows not yet stopped. It decodes as the final
text is decoded, so what it finds is in the final text: a row never stops before its first stop
sequence, the tokens before that point are the ones lm-eval's run generates (same batch, same
logits, same random draws), and the cut text is the same. A stop it misses only costs steps.
Greedy texts therefore equal lm-eval's; sampled texts equal lm-eval's within a batch, and the
batches after the first draw other (equally distributed) samples, since lm-eval's longer batches
consume more of the random stream. Requests whose settings the criterion cannot honour exactly go
to ``lm.generate_until`` itself (:func:`direct_refusal` says why).
"""

from __future__ import annotations

import weakref
from typing import Any, Sequence

import torch
import transformers
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import Collator, handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text

# HFLM methods the direct path reproduces; a backend class that overrides one generates differently
_REPRODUCED = ("generate_until", "_model_generate", "tok_batch_encode", "tok_encode", "tok_decode")
# tokenizer -> the decoded text of each token id, and the stop-token ids per stop set (weak: models come and go)
_VOCAB_TEXTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def direct_refusal(lm: Any, requests: Sequence[Any]) -> str | None:
    """Why :func:`generate_until` must hand ``requests`` to ``lm.generate_until``, or None."""
    if not isinstance(lm, HFLM) or any(getattr(type(lm), name) is not getattr(HFLM, name) for name in _REPRODUCED):
        return "the backend is not lm-eval's HF generation"
    if lm.backend != "causal":
        return "a seq2seq model (its outputs hold no context to cut)"
    if lm.think_end_token is not None:
        return "think_end_token strips reasoning before the stops apply"
    eos = _eos_text(lm)
    cleans_spaces = bool(getattr(lm.tokenizer, "clean_up_tokenization_spaces", False))
    for kwargs in {_kwargs_key(r.args[1]): r.args[1] for r in requests}.values():
        if not isinstance(kwargs, dict):
            return "generation kwargs that are not a dict (lm-eval raises on them)"
        if "max_length" in kwargs:
            return "generation kwargs with max_length"
        normalized = normalize_gen_kwargs(kwargs, lm.max_gen_toks)
        if lm.max_length <= normalized["max_gen_toks"]:
            return "max_gen_toks leaves no room for the context (lm-eval raises on it)"
        until = handle_stop_sequences(normalized["until"], eos=eos)
        # A decoded prefix is a prefix of the longer decoded text except where the tokenizer's
        # space clean-up (" ." -> ".") joins across tokens or a character is cut mid-bytes ("\ufffd"):
        # a stop touching either could be seen in a prefix and be gone from lm-eval's text.
        if any("\ufffd" in s or (cleans_spaces and " " in s) for s in until):
            return "a stop sequence the decoded prefix may show and the full text not"
    return None


def generate_until(lm: Any, requests: Sequence[Any]) -> list[str]:
    """``lm.generate_until(requests)``'s texts (lm-eval ``Instance`` requests, ``lm.batch_size`` rows
    per ``generate``), each row stopped at its own first stop sequence (module docstring)."""
    if not requests:
        return []
    if direct_refusal(lm, requests) is not None:
        return lm.generate_until(requests)
    rows = lm._detect_batch_size() if lm.batch_size == "auto" else int(lm.batch_size)
    token_counts: dict[str, int] = {}

    def longest_first(request: tuple[str, dict]):  # lm-eval's sort key, tokenising each distinct context once
        context = request[0]
        if context not in token_counts:
            token_counts[context] = len(lm.tok_encode(context))
        return -token_counts[context], context

    ordered = Collator([r.args for r in requests], sort_fn=longest_first, group_by="gen_kwargs", group_fn=lambda x: x[1])
    eos = _eos_text(lm)
    texts: list[str] = []
    for chunk in ordered.get_batched(n=rows):
        contexts, all_kwargs = zip(*chunk, strict=True)
        texts.extend(_generate_chunk(lm, list(contexts), all_kwargs[0], eos))
    return ordered.get_original(texts)


def _generate_chunk(lm: Any, contexts: list[str], gen_kwargs: dict, eos: str) -> list[str]:
    """One ``generate`` call, as an iteration of ``HFLM.generate_until``'s loop does it."""
    kwargs = normalize_gen_kwargs(gen_kwargs, lm.max_gen_toks)
    until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
    max_gen_toks = kwargs.pop("max_gen_toks")
    context_ids, attention_mask = lm.tok_batch_encode(contexts, left_truncate_len=lm.max_length - max_gen_toks,
                                                      truncation=lm.truncation)
    context_ids, attention_mask = context_ids.to(lm.device), attention_mask.to(lm.device)
    # HFLM._model_generate's rules: no temperature means greedy, and greedy drops the temperature
    kwargs["temperature"] = kwargs.get("temperature", 0.0)
    if kwargs["temperature"] == 0.0 and kwargs.get("do_sample") is None:
        kwargs["do_sample"] = False
    if kwargs.get("do_sample") is False and kwargs["temperature"] == 0.0:
        kwargs.pop("temperature")
    context_length = context_ids.shape[1]
    check = _StopCheck(lm.tokenizer, until, eos, context_length, context_ids.shape[0], context_ids.device)
    with torch.autocast(device_type=lm.device.type, dtype=lm.mixed_precision_dtype, enabled=lm.mixed_precision_dtype is not None):
        generated = lm.model.generate(input_ids=context_ids, attention_mask=attention_mask, max_length=context_length + max_gen_toks,
                                      stopping_criteria=transformers.StoppingCriteriaList([check]),
                                      pad_token_id=lm.tokenizer.pad_token_id, use_cache=True, **kwargs)
    decoded = lm.tokenizer.batch_decode(generated[:, context_length:].tolist(), skip_special_tokens=True)  # = lm.tok_decode per row
    texts = [postprocess_generated_text(generation=text, stop=until, think_end_token=None) for text in decoded]
    for context, text in zip(contexts, texts):
        lm.cache_hook.add_partial("generate_until", (context, gen_kwargs), text)
    return texts


class _StopCheck(transformers.StoppingCriteria):
    """Ends each row once its generated text holds one of ``stops`` (see the module docstring)."""

    def __init__(self, tokenizer: Any, stops: list[str], eos: str, context_length: int, rows: int, device: torch.device):
        self.tokenizer, self.context_length = tokenizer, context_length
        self.stops = [s for s in stops if s]  # lm-eval ignores an empty stop too
        self.stop_ids = torch.tensor(_stop_token_ids(tokenizer, tuple(self.stops)), dtype=torch.long, device=device)
        # One-byte stops lie inside one token; longer ones may span tokens and need the text. The EOS
        # token ends a row in generate itself; EOS spelled out in plain text is rare, and a stop
        # missed here costs steps, never a different text, so it is not decoded for.
        self.spanning = [s for s in self.stops if len(s.encode("utf-8")) > 1 and s != eos]
        # lm-eval's look-back: the stop's own tokens plus two (a model may spell it in more pieces)
        self.window = max((len(tokenizer.encode(s, add_special_tokens=False)) for s in self.spanning), default=0) + 2
        self.done = torch.zeros(rows, dtype=torch.bool, device=device)

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs) -> torch.BoolTensor:
        self.done |= torch.isin(input_ids[:, -1], self.stop_ids)
        if self.spanning:
            open_rows = (~self.done).nonzero().flatten()
            if len(open_rows):
                start = max(self.context_length, input_ids.shape[1] - self.window)
                windows = self.tokenizer.batch_decode(input_ids[open_rows, start:].tolist(), skip_special_tokens=True)
                hits = [int(row) for row, text in zip(open_rows, windows) if any(s in text for s in self.spanning)]
                if hits:
                    self.done[hits] = True
        return self.done.clone()


def _stop_token_ids(tokenizer: Any, stops: tuple[str, ...]) -> list[int]:
    """The token ids whose own text (decoded as the final text is) contains one of ``stops``."""
    cached = _VOCAB_TEXTS.get(tokenizer)
    if cached is None:
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))], skip_special_tokens=True)
        cached = _VOCAB_TEXTS[tokenizer] = {"texts": texts, "stops": {}}
    if stops not in cached["stops"]:
        cached["stops"][stops] = [i for i, text in enumerate(cached["texts"]) if any(s in text for s in stops)]
    return cached["stops"][stops]


def _eos_text(lm: Any) -> str:
    return lm.tok_decode(lm.eot_token_id, skip_special_tokens=False)  # the stop generate_until adds


def _kwargs_key(kwargs: Any) -> str:
    return repr(sorted(kwargs.items())) if isinstance(kwargs, dict) else repr(kwargs)
