"""Train one member of the reference mini-ladder on CPU, deterministically.

Determinism: fixed seeds for init and data order, ``torch.use_deterministic_algorithms``, and a
fixed thread count (float sums depend on how work is split across threads). The same torch
build on the same kind of CPU then reproduces the weights bit for bit; the hashes recorded in
the manifest say whether it did.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from capcast.reference.corpus import CorpusStream
from capcast.reference.tokenizer import SPECIAL_TOKENS, build_tokenizer, encode, vocab

ROW_CHARS = 64  # training context, in characters (= tokens)


@dataclass(frozen=True)
class MemberSpec:
    """One model size + seed of the ladder, and where along its run to save checkpoints."""

    size: str
    hidden: int
    layers: int
    heads: int
    ffn: int
    tokens: int
    seed: int = 0
    batch: int = 64
    lr: float = 3e-3
    save_at: tuple[float, ...] = (0.25, 0.5, 1.0)

    @property
    def steps(self) -> int:
        return max(1, round(self.tokens / (self.batch * ROW_CHARS)))

    @property
    def name(self) -> str:
        return f"{self.size}-s{self.seed}"

    def checkpoint_steps(self) -> list[int]:
        return sorted({max(1, round(f * self.steps)) for f in self.save_at})


@dataclass
class SavedCheckpoint:
    name: str
    path: Path
    size: str
    seed: int
    step: int
    tokens: int
    params: int  # non-embedding parameters
    total_params: int
    sha256: str
    loss: float
    seconds: float = 0.0


def model_config(spec: MemberSpec):
    from transformers import LlamaConfig

    ids = vocab()
    return LlamaConfig(
        vocab_size=len(ids),
        hidden_size=spec.hidden,
        intermediate_size=spec.ffn,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=ROW_CHARS * 2,
        tie_word_embeddings=True,
        pad_token_id=ids[SPECIAL_TOKENS[0]],
        bos_token_id=ids[SPECIAL_TOKENS[1]],
        eos_token_id=ids[SPECIAL_TOKENS[2]],
        use_cache=True,
    )


def count_params(model) -> tuple[int, int]:
    """(non-embedding, total) parameter counts; embeddings are tied to the output layer."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return total - embedding, total


def weights_sha256(state_dict) -> str:
    """Hash of the tensors themselves (names, dtypes, shapes, bytes), independent of file format."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().contiguous().cpu()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_weights_sha256(checkpoint_dir: Path) -> str:
    """The :func:`weights_sha256` of a saved checkpoint folder's safetensors file."""
    from safetensors.torch import load_file

    return weights_sha256(load_file(str(Path(checkpoint_dir) / "model.safetensors")))


def _lr_at(step: int, spec: MemberSpec) -> float:
    # Linear warm-up, then cosine decay to 10% over the whole run (intermediate checkpoints
    # are mid-schedule, as in Pythia-style families).
    warmup = max(1, spec.steps // 20)
    if step < warmup:
        return spec.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, spec.steps - warmup)
    return spec.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train_member(
    spec: MemberSpec,
    out_dir: Path,
    threads: int = 2,
    log: Callable[[str], None] | None = None,
    device: str = "cpu",
) -> list[SavedCheckpoint]:
    """Train ``spec`` from scratch and save a transformers checkpoint at each ``save_at``.

    ``device`` other than CPU is for quick design experiments only: its weights differ from the
    recorded CPU hashes.
    """
    import torch
    import transformers
    from transformers import LlamaForCausalLM

    transformers.logging.disable_progress_bar()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(device == "cpu")
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(model_config(spec)).to(device)
    model.train()
    params, total_params = count_params(model)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=spec.lr,
        betas=(0.9, 0.98),
    )
    # The data order depends on the seed too: a second seed is a second training run.
    stream = CorpusStream(seed=1000 + spec.seed, row_chars=ROW_CHARS)
    tokenizer = build_tokenizer()
    save_steps = set(spec.checkpoint_steps())
    saved: list[SavedCheckpoint] = []
    started = time.perf_counter()
    running = None
    for step in range(1, spec.steps + 1):
        batch = torch.tensor([encode(stream.row()) for _ in range(spec.batch)], dtype=torch.long, device=device)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step - 1, spec)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        if step in save_steps:
            name = f"{spec.name}-step{step}"
            path = Path(out_dir) / name
            model.save_pretrained(path)
            tokenizer.save_pretrained(path)
            saved.append(
                SavedCheckpoint(
                    name=name,
                    path=path,
                    size=spec.size,
                    seed=spec.seed,
                    step=step,
                    tokens=step * spec.batch * ROW_CHARS,
                    params=params,
                    total_params=total_params,
                    sha256=file_weights_sha256(path),
                    loss=round(running, 4),
                    seconds=round(time.perf_counter() - started, 1),
                )
            )
            if log:
                log(f"{name}: loss {running:.3f}, {time.perf_counter() - started:.0f}s")
    return saved
