"""A character-level tokenizer for the reference mini-ladder, built locally (no download).

One token per character of :data:`capcast.reference.corpus.ALPHABET` plus pad/bos/eos, wrapped
in ``PreTrainedTokenizerFast`` so lm-eval's HF model loads it from the checkpoint folder.
"""

from __future__ import annotations

from functools import lru_cache

from capcast.reference.corpus import ALPHABET

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")


@lru_cache(maxsize=1)
def vocab() -> dict[str, int]:
    tokens = list(SPECIAL_TOKENS) + list(ALPHABET)
    return {token: i for i, token in enumerate(tokens)}


def encode(text: str) -> list[int]:
    """Fast encoding for training; agrees with :func:`build_tokenizer` on corpus text."""
    table = vocab()
    return [table[ch] for ch in text]


def build_tokenizer():
    """The HF tokenizer: every character is one token; decoding fuses them back."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab=dict(vocab()), unk_token="<pad>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<pad>",
        clean_up_tokenization_spaces=False,
    )
