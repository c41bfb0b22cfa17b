"""Tiny real checkpoints for tests and demos: a character tokenizer and a few Llama models.

``build_tiny_family(out_dir)`` writes three (or more) randomly initialised Llama checkpoints of
a few thousand to a few tens of thousands of parameters plus a family YAML naming them. They are
real transformers checkpoints that lm-eval loads like any hub model, built in a few seconds on a
CPU with nothing downloaded. They are untrained, so their scores sit near chance; the point is a
real end-to-end path (tokenizer, model, lm-eval, store), not a meaningful ladder.
"""

from __future__ import annotations

import shutil
import string
from pathlib import Path

import yaml

# Every printable ASCII character plus newline is one token, so any prompt of capcast's local
# tasks (digits, '+', '=', commas, letters) tokenises to one id per character.
_CHARS = sorted(set(string.printable) - set("\t\r\x0b\x0c"))
SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}

# hidden size, layers, intermediate size per named size; heads = hidden // 8.
TINY_SIZES: dict[str, tuple[int, int, int]] = {
    "xs": (16, 1, 32),
    "s": (24, 2, 48),
    "m": (32, 2, 64),
    "l": (48, 3, 96),
}


def build_char_tokenizer(out_dir: Path | str):
    """A character-level fast tokenizer (one id per character), saved to ``out_dir``."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS.values())
    vocab = {tok: i for i, tok in enumerate(specials + _CHARS)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"]))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), "isolated")
    core.decoder = decoders.Fuse()
    # Without pad and eos set, lm-eval's HF backend fails while batching.
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, **SPECIAL_TOKENS)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer


def non_embedding_params(model) -> int:
    """Parameters outside the token embedding and output head (Kaplan's convention)."""
    embedding_ids = {id(model.get_input_embeddings().weight)}
    head = model.get_output_embeddings()
    if head is not None:
        embedding_ids.add(id(head.weight))
    return sum(p.numel() for p in model.parameters() if id(p) not in embedding_ids)


def build_tiny_checkpoint(out_dir: Path | str, size: str = "s", seed: int = 0) -> int:
    """Write one random-init Llama checkpoint with the character tokenizer; return its params."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, layers, intermediate = TINY_SIZES[size]
    out_dir = Path(out_dir)
    tokenizer = build_char_tokenizer(out_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 8),
        num_key_value_heads=max(1, hidden // 8),
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    # A wider init than the default 0.02 so that untrained models still have distinct,
    # non-uniform next-token distributions (scores then differ between checkpoints).
    config.initializer_range = 0.5
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(out_dir))
    return non_embedding_params(model)


def build_tiny_family(
    out_dir: Path | str,
    sizes: tuple[str, ...] = ("xs", "s", "m"),
    seed: int = 0,
    family: str = "tiny",
    duplicate_of: str | None = None,
) -> Path:
    """Build one checkpoint per size under ``out_dir`` and write ``out_dir/family.yaml``.

    ``tokens`` are nominal (20 tokens per parameter, Chinchilla's ratio): the models are not
    trained. ``duplicate_of`` adds a copy of that checkpoint under another name (to exercise the
    duplicate-weights warning). Returns the path of the family YAML.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, size in enumerate(sizes):
        name = f"{family}-{size}"
        params = build_tiny_checkpoint(out_dir / name, size=size, seed=seed + i)
        entries.append({"name": name, "model": f"./{name}", "params": params, "tokens": 20 * params, "step": 1000})
    if duplicate_of is not None:
        source = next(e for e in entries if e["name"] == duplicate_of)
        copy_name = f"{duplicate_of}-copy"
        shutil.copytree(out_dir / duplicate_of, out_dir / copy_name, dirs_exist_ok=True)
        entries.append({**source, "name": copy_name, "model": f"./{copy_name}"})
    spec = {"family": family, "checkpoints": entries}
    path = out_dir / "family.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
