"""Speed of capcast's fast paths, ratios measured in one run (see docs/speed.md).

    .venv/bin/python benchmarks/speed.py            # writes benchmarks/speed.txt (about 10 minutes on 2 cores)
    .venv/bin/python benchmarks/speed.py --quick    # a smaller run, to check the script

1. MC scoring on random-init Llama models of ~1M/10M/50M parameters (character tokenizer; four
   choices per item, ~59-token contexts, 5-token continuations): capcast-hf vs lm-eval's hf
   backend vs a raw padded forward vs a raw context-once forward; wall and CPU seconds, and the
   largest log-likelihood difference between capcast-hf and hf.
2. Sampling: PassUntil (`capcast sample`'s library call) vs a direct batched `model.generate`
   loop drawing the same number of samples per instance per round, end to end (both sides with
   their model load and prompts) and rounds only (`run_passuntil` vs the generate calls).
   `--sections sampling --out benchmarks/speed-sampling.txt` re-runs this section alone.
3. Start-up: `capcast plugins`, and the fixed import cost of `capcast eval` over plain lm-eval.
4. Threads: scoring with 1 and 2 torch threads, on its own and beside a CPU-bound process.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SIZES = {"1M": (128, 4, 384), "10M": (320, 8, 864), "50M": (640, 10, 1728)}  # hidden, layers, intermediate
ROOT = Path(__file__).resolve().parents[1]


def build_model(folder: Path, size: str) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from capcast.testing.tiny import build_char_tokenizer

    path = folder / size
    if not (path / "config.json").exists():
        tok = build_char_tokenizer(path)
        hidden, layers, inter = SIZES[size]
        config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden, intermediate_size=inter, num_hidden_layers=layers,
                             num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64, max_position_embeddings=512,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        torch.manual_seed(0)
        LlamaForCausalLM(config).save_pretrained(str(path))
    return path


def mc_pairs(items: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)

    def text(n):
        return "".join(rng.choice("abcdefghij klmno 0123456789") for _ in range(n))

    pairs = []
    for _ in range(items):
        context = "Question: " + text(rng.randint(38, 60)) + "\nAnswer:"  # ~59 tokens on average
        pairs += [(context, " " + text(4)) for _ in range(4)]
    return pairs


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


# --------------------------------------------------------------------------------- raw forwards


def raw_padded(model, requests, batch: int = 16):
    """lm-eval's work without lm-eval: every (context, continuation) row padded in one forward."""
    import torch

    out = []
    rows = sorted(requests, key=lambda r: -(len(r[1]) + len(r[2])))
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            chunk = rows[start:start + batch]
            inps = [(c + k)[:-1] for _, c, k in chunk]
            width = max(map(len, inps))
            ids = torch.tensor([i + [0] * (width - len(i)) for i in inps])
            logp = torch.log_softmax(model(input_ids=ids).logits, dim=-1)
            for row, inp, (_, c, k) in zip(logp, inps, chunk):
                out.append(float(row[len(inp) - len(k):len(inp)].gather(1, torch.tensor(k).unsqueeze(-1)).sum()))
    return out


def raw_context_once(model, requests, batch: int = 16):
    """The job's limit: each context encoded once (equal lengths batched), continuations from its cache."""
    from collections import defaultdict

    import torch

    groups = defaultdict(list)
    for _, c, k in requests:
        groups[tuple(c[:-1])].append((c[-1:] + k[:-1], k))
    by_len = defaultdict(list)
    for prefix in groups:
        by_len[len(prefix)].append(prefix)
    out = []
    with torch.no_grad():
        for length, prefixes in by_len.items():
            for start in range(0, len(prefixes), max(1, batch // 4)):
                chunk = prefixes[start:start + max(1, batch // 4)]
                cache = model(input_ids=torch.tensor(chunk), use_cache=True).cache
                rows = [(p, s, k) for p, prefix in enumerate(chunk) for s, k in groups[prefix]]
                cache.batch_select_indices(torch.tensor([p for p, _, _ in rows]))
                width = max(len(s) for _, s, _ in rows)
                ids = torch.tensor([s + [0] * (width - len(s)) for _, s, _ in rows])
                logp = torch.log_softmax(model(input_ids=ids, cache=cache, use_cache=True).logits, dim=-1)
                for row, (_, s, k) in zip(logp, rows):
                    out.append(float(row[:len(s)].gather(1, torch.tensor(k).unsqueeze(-1)).sum()))
    return out


# ------------------------------------------------------------------------------------ sections


def mc_section(folder: Path, quick: bool, lines: list[str]) -> None:
    import torch
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from capcast.evaluation.backend import SharedContextHFLM

    torch.set_num_threads(1)
    lines.append("## MC scoring (1 torch thread; items x 4 choices, ~59-token contexts, 5-token continuations; batch 16)")
    lines.append(f"{'model':>6} {'items':>5} | {'hf wall':>8} {'capcast':>8} {'padded':>8} {'ctx-once':>8} | "
                 f"{'hf/capcast':>10} {'capcast/ctx-once':>16} {'padded/hf':>9} | {'hf cpu/capcast cpu':>18} {'max |dLL|':>9}")
    for size in SIZES:
        items = {"1M": 200, "10M": 200, "50M": 80}[size] // (4 if quick else 1)
        repeats = 1 if (quick or size == "50M") else 2
        path = build_model(folder, size)
        pairs = mc_pairs(items)
        instances = [Instance(request_type="loglikelihood", doc={}, arguments=p, idx=i) for i, p in enumerate(pairs)]
        kwargs = dict(pretrained=str(path), dtype="float32", device="cpu", batch_size=16)
        hf, shared = HFLM(**kwargs), SharedContextHFLM(**kwargs)
        requests = [(p, *hf._encode_pair(*p)) for p in pairs]
        model = hf.model
        runs = {"hf": [], "capcast": [], "padded": [], "ctx": []}
        results = {}
        for _ in range(repeats):  # interleaved
            for name, fn in (("hf", lambda: hf.loglikelihood(instances, disable_tqdm=True)),
                             ("capcast", lambda: shared.loglikelihood(instances, disable_tqdm=True)),
                             ("padded", lambda: raw_padded(model, requests)),
                             ("ctx", lambda: raw_context_once(model, requests))):
                wall, cpu, out = timed(fn)
                runs[name].append((wall, cpu))
                results[name] = out
        med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v)) for k, v in runs.items()}
        diff = max(abs(a[0] - b[0]) for a, b in zip(results["hf"], results["capcast"]))
        greedy_same = all(a[1] == b[1] for a, b in zip(results["hf"], results["capcast"]))
        lines.append(f"{size:>6} {items:>5} | {med['hf'][0]:8.2f} {med['capcast'][0]:8.2f} {med['padded'][0]:8.2f} {med['ctx'][0]:8.2f} | "
                     f"{med['hf'][0] / med['capcast'][0]:9.2f}x {med['capcast'][0] / med['ctx'][0]:15.2f}x "
                     f"{med['padded'][0] / med['hf'][0]:8.2f}x | {med['hf'][1] / med['capcast'][1]:17.2f}x {diff:9.1e}"
                     + ("" if greedy_same else "  is_greedy DIFFERS"))
        print(lines[-1], flush=True)


def sampling_section(folder: Path, quick: bool, lines: list[str]) -> None:
    """``capcast sample``'s library call against a direct ``model.generate`` loop, compared two fair
    ways: end to end (both sides load the model and build the prompts; capcast also checks the
    store, hashes the weights and writes every round) and rounds only (capcast's
    ``run_passuntil``: draws, checks, store commits; the direct loop's generate calls)."""
    import torch

    from capcast.evaluation import harness
    from capcast.passuntil import rounds, runner
    from capcast.passuntil.runner import SamplerConfig, sample_family
    from capcast.plugins.registry import load_registry
    from capcast.store import Store
    from capcast.testing import build_tiny_family

    torch.set_num_threads(1)
    spec = build_tiny_family(folder / "family", sizes=("l",))
    limit = 20 if quick else 60
    config = SamplerConfig(successes=3, max_samples_per_instance=64 if quick else 256, first_batch=8)
    spent = {"rounds": 0.0, "generate": 0.0}
    run_rounds, draw = runner.run_passuntil, harness.draw_generations

    def timed_rounds(*args, **kwargs):
        start = time.perf_counter()
        try:
            return run_rounds(*args, **kwargs)
        finally:
            spent["rounds"] += time.perf_counter() - start

    def timed_draw(*args, **kwargs):
        start = time.perf_counter()
        try:
            return draw(*args, **kwargs)
        finally:
            spent["generate"] += time.perf_counter() - start

    repeats = 1 if quick else 3  # one run of each side swings by a third on this shared machine: medians of 3, interleaved
    walls = {"capcast": [], "rounds": [], "generate": [], "direct": []}

    def capcast_once(r: int):
        spent.update(rounds=0.0, generate=0.0)
        runner.run_passuntil, harness.draw_generations = timed_rounds, timed_draw
        try:
            wall, _, (summary,) = timed(lambda: sample_family(spec, ["capcast_add_gen"], folder / f"sample-store-{r}", config, seed=1,
                                                              batch_size=512, device="cpu", limit=limit))
        finally:
            runner.run_passuntil, harness.draw_generations = run_rounds, draw
        walls["capcast"].append(wall)
        walls["rounds"].append(spent["rounds"])
        walls["generate"].append(spent["generate"])
        return summary

    summary = capcast_once(0)
    store = folder / "sample-store-0"
    with rounds.connect(Store(store)) as con:
        counts = con.execute("SELECT round, doc_id, count(*) AS n FROM passuntil_samples GROUP BY round, doc_id ORDER BY round, doc_id").df()

    # the direct loop: the same prompts, the same per-round counts, model.generate in batches of 512
    def setup():
        prepared = harness.prepare_task(load_registry().tasks["capcast_add_gen"], Store(folder / "direct").task_data_dir("capcast_add_gen"))
        return harness.generation_requests(prepared, range(limit), seed=1), harness.load_model(str(spec.parent / "tiny-l"), device="cpu", batch_size=512)

    setup_wall, _, (requests, loaded) = timed(setup)
    tok, model = loaded.lm.tokenizer, loaded.lm.model
    tok.padding_side = "left"
    gen = requests[0].args[1]

    def direct():
        n = 0
        for _, group in counts.groupby("round"):
            prompts = [requests[d].args[0] for d, k in zip(group.doc_id, group.n) for _ in range(k)]
            for start in range(0, len(prompts), 512):
                enc = tok(prompts[start:start + 512], return_tensors="pt", padding=True, add_special_tokens=False)
                with torch.no_grad():
                    model.generate(**enc, do_sample=True, temperature=gen.get("temperature", 1.0), max_new_tokens=gen.get("max_gen_toks", 8),
                                   pad_token_id=tok.pad_token_id)
                n += len(prompts[start:start + 512])
        return n

    direct_wall, _, n = timed(direct)
    walls["direct"].append(direct_wall)
    for r in range(1, repeats):
        capcast_once(r)
        walls["direct"].append(timed(direct)[0])
    wall, direct_wall = statistics.median(walls["capcast"]), statistics.median(walls["direct"])
    spent = {"rounds": statistics.median(walls["rounds"]), "generate": statistics.median(walls["generate"])}
    lines.append(f"## Sampling (PassUntil on capcast_add_gen, tiny-l, 1 thread, 512 rows per generate; medians of {repeats} interleaved runs)")
    lines.append(f"end to end: capcast sample (library call: options, prompts, store checks, weights hash, model load, rounds) "
                 f"{wall:.2f} s for {summary.samples} samples in {summary.rounds} rounds; direct loop with its model load and "
                 f"prompts ({setup_wall:.2f} s) {setup_wall + direct_wall:.2f} s for {n}; ratio {wall / (setup_wall + direct_wall):.2f}x")
    lines.append(f"rounds only: capcast's run_passuntil {spent['rounds']:.2f} s (of which draw_generations calls, "
                 f"harness.hf_draws on lm-eval's requests, {spent['generate']:.2f} s); direct generate loop {direct_wall:.2f} s; "
                 f"ratio {spent['rounds'] / direct_wall:.2f}x (draw calls alone {spent['generate'] / direct_wall:.2f}x; target: at most 1.3x)")
    lines.append(f"(the figure before this split: the whole library call over the direct loop alone, {wall / direct_wall:.2f}x)")
    for line in lines[-3:]:
        print(line, flush=True)


def _wall(args: list[str], env=None, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True, env=env, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


STARTUP_ROUNDS = 7
CAPCAST_ON_TOP = """
import time
import lm_eval, lm_eval.evaluator, lm_eval.models.huggingface
start = time.perf_counter()
import capcast.cli.app, capcast.evaluation.runner, capcast.evaluation.backend
from capcast.plugins.registry import load_registry
load_registry()
print(time.perf_counter() - start)
"""


def startup_section(lines: list[str]) -> None:
    """Start-up, medians of ``STARTUP_ROUNDS``. capcast eval's fixed cost over plain lm-eval is
    timed inside one process, after lm-eval's imports: what capcast's CLI, runner, backend and
    plugin registry add. (Two separate processes' wall times, one with capcast and one without,
    differ by more than that from run to run: lm-eval's own imports took 5 to 9 s here.)"""
    py = sys.executable
    plugins = _wall([py, "-m", "capcast", "plugins"], repeats=STARTUP_ROUNDS)
    bare = _wall([py, "-c", "pass"], repeats=STARTUP_ROUNDS)
    lm_eval = _wall([py, "-c", "import lm_eval, lm_eval.evaluator, lm_eval.models.huggingface"], repeats=STARTUP_ROUNDS)
    on_top = statistics.median(
        float(subprocess.run([py, "-c", CAPCAST_ON_TOP], capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()[-1])
        for _ in range(STARTUP_ROUNDS))
    lines.append(f"## Start-up (wall seconds, medians of {STARTUP_ROUNDS})")
    lines.append(f"python -c pass: {bare:.2f} s; capcast plugins: {plugins:.2f} s (target under 0.5 s); imports of plain lm-eval "
                 f"(evaluator + hf): {lm_eval:.2f} s; capcast eval's CLI, runner, backend and plugin registry on top of them, "
                 f"timed in the same process: +{on_top:.2f} s (target at most 0.5 s)")
    print(lines[-1], flush=True)


THREAD_PROGRAM = """
import sys, time, torch
torch.set_num_threads(int(sys.argv[2]))
sys.path.insert(0, {bench!r})
from speed import mc_pairs
from lm_eval.api.instance import Instance
from capcast.evaluation.backend import SharedContextHFLM
lm = SharedContextHFLM(pretrained=sys.argv[1], dtype="float32", device="cpu", batch_size=16)
inst = [Instance(request_type="loglikelihood", doc={{}}, arguments=p, idx=i) for i, p in enumerate(mc_pairs(int(sys.argv[3])))]
start = time.perf_counter(); lm.loglikelihood(inst, disable_tqdm=True); print(time.perf_counter() - start)
"""


def threads_section(folder: Path, quick: bool, lines: list[str]) -> None:
    program = THREAD_PROGRAM.format(bench=str(Path(__file__).parent))
    lines.append("## Threads (capcast-hf scoring; seconds; 'busy' = one CPU-bound process beside it)")
    for size, items in (("1M", 100), ("10M", 60), ("50M", 20)):
        if quick and size == "50M":
            continue
        path = build_model(folder, size)
        row = {}
        for busy in (False, True):
            burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                for threads in (1, 2):
                    out = subprocess.run([sys.executable, "-c", program, str(path), str(threads), str(items // (3 if quick else 1))],
                                         capture_output=True, text=True, check=True, cwd=ROOT)
                    row[(busy, threads)] = float(out.stdout.strip().splitlines()[-1])
            finally:
                if burner is not None:
                    burner.kill()
                    burner.wait()
        lines.append(f"{size:>4}: idle 1 thread {row[(False, 1)]:.2f}, 2 threads {row[(False, 2)]:.2f} | busy 1 thread {row[(True, 1)]:.2f} "
                     f"({row[(True, 1)] / row[(False, 1)]:.2f}x idle), 2 threads {row[(True, 2)]:.2f} ({row[(True, 2)] / row[(False, 2)]:.2f}x idle)")
        print(lines[-1], flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("speed.txt"))
    parser.add_argument("--sections", default="mc,sampling,startup,threads")
    args = parser.parse_args()
    sections = args.sections.split(",")
    import torch

    lines = [f"# benchmarks/speed.py{' --quick' if args.quick else ''}: {os.cpu_count()} CPUs, torch {torch.__version__}, "
             f"load average at start {os.getloadavg()[0]:.1f}", ""]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "mc" in sections:
            mc_section(folder, args.quick, lines)
            lines.append("")
        if "sampling" in sections:
            sampling_section(folder, args.quick, lines)
            lines.append("")
        if "startup" in sections:
            startup_section(lines)
            lines.append("")
        if "threads" in sections:
            threads_section(folder, args.quick, lines)
    lines.append(f"\n(total {time.perf_counter() - start:.0f} s; load average at end {os.getloadavg()[0]:.1f})")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
