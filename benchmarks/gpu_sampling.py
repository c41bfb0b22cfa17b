"""Sampling throughput of one PassUntil-style round, HF backend vs vLLM, on a random-init model; and
whether the samples of one prompt are distinct draws on each backend. Prepared for a GPU machine
(not run by the test suite; no GPU was available when it was written):

    .venv/bin/python benchmarks/gpu_sampling.py --out benchmarks/gpu_sampling.txt            # GPU: hf and vllm
    .venv/bin/python benchmarks/gpu_sampling.py --device cpu --backends hf --hidden 32 --layers 1 --docs 4 --samples 4   # a CPU trial

The model is a Llama with capcast's character tokenizer (capcast.testing.tiny) and random weights
(default ~150M non-embedding parameters); the round asks every one of ``--docs`` capcast_add_gen
instances for ``--samples`` samples in one call (capcast.evaluation.harness.draw_generations, the
call ``capcast sample`` makes). Tokens are counted as characters (one token per character).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def build_model(out: Path, hidden: int, layers: int, intermediate: int) -> int:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from capcast.testing.tiny import build_char_tokenizer, non_embedding_params

    tokenizer = build_char_tokenizer(out)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=intermediate, num_hidden_layers=layers,
                         num_attention_heads=max(1, hidden // 64), num_key_value_heads=max(1, hidden // 64), max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, torch_dtype="bfloat16")
    torch.manual_seed(0)
    config.initializer_range = 0.5  # non-uniform next-token distributions from random weights
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(out))
    return non_embedding_params(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="hf,vllm")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--docs", type=int, default=64)
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)

    from capcast.evaluation import harness
    from capcast.plugins.registry import load_registry

    root = Path(tempfile.mkdtemp(prefix="capcast-gpu-sampling-"))
    params = build_model(root / "model", args.hidden, args.layers, 4 * args.hidden)
    prepared = harness.prepare_task(load_registry().tasks["capcast_add_gen"], root / "data")
    doc_ids = list(range(args.docs))
    requests = harness.generation_requests(prepared, doc_ids, seed=1)
    counts = {d: args.samples for d in doc_ids}
    device_name = args.device
    if args.device.startswith("cuda"):
        import torch

        device_name = torch.cuda.get_device_name(0)
    lines = [f"# benchmarks/gpu_sampling.py --backends {args.backends} --device {args.device} --hidden {args.hidden} --layers {args.layers} "
             f"--docs {args.docs} --samples {args.samples} --batch-size {args.batch_size}",
             f"# model: random-init Llama, {params / 1e6:.0f}M non-embedding parameters, character tokenizer; device: {device_name}",
             "backend, load seconds, round seconds, samples, generated tokens, tokens/s, prompts with distinct draws"]
    for backend in args.backends.split(","):
        harness.check_backend(backend)
        started = time.perf_counter()
        loaded = harness.load_model(str(root / "model"), backend=backend, device=args.device, batch_size=args.batch_size)
        load_seconds = time.perf_counter() - started
        harness.draw_generations(loaded, requests, {0: 2}, seed=0, batch_size=args.batch_size)  # warm-up (compilation, CUDA graphs)
        started = time.perf_counter()
        drawn = harness.draw_generations(loaded, requests, counts, seed=1, batch_size=args.batch_size)
        seconds = time.perf_counter() - started
        samples = sum(len(v) for v in drawn.values())
        tokens = sum(len(t) for v in drawn.values() for t in v)
        distinct = sum(len(set(v)) > 1 for v in drawn.values())
        lines.append(f"{backend}, {load_seconds:.1f}, {seconds:.2f}, {samples}, {tokens}, {tokens / seconds:.0f}, {distinct}/{len(drawn)}")
        print(lines[-1], flush=True)
        del loaded
    print("\n".join(lines))
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
