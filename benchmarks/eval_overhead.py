"""What capcast adds on top of lm-eval, and how fast the store ingests records.

1. Wall time of the same checkpoint and task through ``capcast.evaluation.runner.evaluate_family``
   (model load, weight hash, lm-eval run, per-choice records, Parquet commit) and through a
   plain ``lm_eval.simple_evaluate`` with the same model args, task config, batch size and
   ``log_samples=True, bootstrap_iters=0``; the two alternate, after one warm-up each, in one
   process. Target: ratio <= 1.10.
2. Store ingest: a large synthetic batch of choice records through ``Store.write_run`` (key
   columns, zstd Parquet, fsync, atomic rename). Target >= 200,000 rows/s. Also the rate of
   turning lm-eval's logged samples into choice columns (``records.choice_table``).

    python benchmarks/eval_overhead.py [--repeats 5] [--size l] [--out benchmarks/eval_overhead.txt]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import numpy as np
import pyarrow as pa
import yaml


def overhead(work: Path, size: str, task_name: str, repeats: int, batch_size: int, limit: int | None, device: str) -> list[str]:
    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    from capcast.evaluation import harness
    from capcast.evaluation.runner import evaluate_family
    from capcast.plugins.registry import load_registry
    from capcast.store import Store
    from capcast.testing import build_tiny_checkpoint

    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-cache")
    model_dir = work / f"bench-{size}"
    params = build_tiny_checkpoint(model_dir, size=size, seed=0)
    spec = work / "family.yaml"
    spec.write_text(yaml.safe_dump({"family": "bench", "checkpoints": [{"name": f"bench-{size}", "model": str(model_dir), "params": params, "tokens": 1e6}]}))
    registry = load_registry()
    store = Store(work / "store")
    # The plain run reads the very same generated data and config capcast builds.
    config = harness.prepare_task(registry.tasks[task_name], store.task_data_dir(task_name)).spec

    def run_capcast() -> float:
        shutil.rmtree(store.parts, ignore_errors=True)
        t0 = time.perf_counter()
        evaluate_family(spec, [task_name], store.root, limit=limit, batch_size=batch_size, device=device, registry=registry, progress=False)
        return time.perf_counter() - t0

    def run_plain() -> float:
        t0 = time.perf_counter()
        lm_eval.simple_evaluate(
            model="hf",
            model_args={"pretrained": str(model_dir), "dtype": "float32" if device == "cpu" else "auto"},
            tasks=[config],
            task_manager=TaskManager(include_defaults=False),
            batch_size=batch_size,
            device=device,
            limit=limit,
            log_samples=True,
            bootstrap_iters=0,
        )
        return time.perf_counter() - t0

    runners = {"capcast": run_capcast, "plain": run_plain}
    times: dict[str, list[float]] = {"capcast": [], "plain": []}
    with open(os.devnull, "w") as devnull, contextlib.redirect_stderr(devnull):  # lm-eval's progress bars
        run_capcast(), run_plain()  # warm-up: imports, dataset cache, Jinja templates
        for i in range(repeats):
            # Alternate which goes first, so drifting load on a shared machine hits both alike.
            for name in ("capcast", "plain") if i % 2 == 0 else ("plain", "capcast"):
                times[name].append(runners[name]())
    n_docs = store.runs()["n_docs"].iloc[0]
    lines = [
        f"checkpoint: tiny Llama '{size}' ({params:,} non-embedding params, char tokenizer), task {task_name}, "
        f"{n_docs} docs, batch {batch_size}, {device}, torch threads {torch.get_num_threads()}, {repeats} alternating repeats",
        f"capcast eval (evaluate_family) s: {', '.join(f'{t:.3f}' for t in times['capcast'])}",
        f"plain simple_evaluate        s: {', '.join(f'{t:.3f}' for t in times['plain'])}",
    ]
    for label, stat in (("median", statistics.median), ("min", min)):
        cap, plain = stat(times["capcast"]), stat(times["plain"])
        lines.append(f"{label}: capcast {cap:.3f} s / plain {plain:.3f} s = ratio {cap / plain:.3f} (target <= 1.10)")
    return lines


def ingest(work: Path, rows: int) -> list[str]:
    from capcast.evaluation.records import choice_table
    from capcast.store import Store

    rng = np.random.default_rng(0)
    n_choices = 4
    docs = rows // n_choices
    table = pa.table(
        {
            "doc_id": pa.array(np.repeat(np.arange(docs, dtype=np.int64), n_choices)),
            "choice_idx": pa.array(np.tile(np.arange(n_choices, dtype=np.int32), docs)),
            "loglik": pa.array(rng.normal(-10, 3, docs * n_choices)),
            "n_tokens": pa.array(rng.integers(1, 20, docs * n_choices, dtype=np.int32)),
            "n_bytes": pa.array(rng.integers(1, 80, docs * n_choices, dtype=np.int32)),
            "n_chars": pa.array(rng.integers(1, 80, docs * n_choices, dtype=np.int32)),
            "is_greedy": pa.array(rng.random(docs * n_choices) < 0.1),
            "is_gold": pa.array(np.tile(np.arange(n_choices) == 0, docs)),
        }
    )
    store = Store(work / "ingest")
    rates = []
    for i in range(3):
        t0 = time.perf_counter()
        store.write_run({"family": "bench", "checkpoint": f"c{i}", "task": "synthetic"}, "multiple_choice", table)
        rates.append(table.num_rows / (time.perf_counter() - t0))
    with store.connect() as con:
        stored = con.execute("SELECT count(*) FROM choices").fetchone()[0]
    assert stored == 3 * table.num_rows

    # lm-eval logged samples -> choice columns (the Python loop in the harness).
    n_docs = min(docs, 100_000)
    samples = [
        {
            "doc_id": d,
            "target": 0,
            "arguments": [("Question: 12+34=", f" {d + k}") for k in range(n_choices)],
            "resps": [[(-1.5 * k, k == 0)] for k in range(n_choices)],
        }
        for d in range(n_docs)
    ]
    counts = {a: 3 for s in samples for a in s["arguments"]}  # as recorded during a run
    t0 = time.perf_counter()
    converted = choice_table(samples, " ", lambda context, continuation: counts.get((context, continuation)))
    convert_rate = converted.num_rows / (time.perf_counter() - t0)
    return [
        f"store ingest, {table.num_rows:,} choice rows per part, 3 parts: "
        f"{', '.join(f'{r:,.0f}' for r in rates)} rows/s; median {statistics.median(rates):,.0f} rows/s (target >= 200,000)",
        f"lm-eval samples -> choice columns ({converted.num_rows:,} rows): {convert_rate:,.0f} rows/s",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", default="l", help="tiny model size (xs, s, m, l)")
    parser.add_argument("--task", default="capcast_add_mc")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="capcast-bench-"))
    try:
        lines = [
            "# benchmarks/eval_overhead.py",
            f"machine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}",
            *overhead(work, args.size, args.task, args.repeats, args.batch_size, args.limit, args.device),
            *ingest(work, args.rows),
        ]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
