"""Wall time of one checkpoint x task grid through capcast's executors, ratios in one run.

    .venv/bin/python benchmarks/scaleout.py [--sizes xs,s,m,l,xs,s] [--limit 40] [--out benchmarks/scaleout.txt]
    .venv/bin/python benchmarks/scaleout.py --command sample --sizes xs,s,xs,s --limit 8 --skip-ray --out benchmarks/scaleout-sample.txt

Builds a family of tiny random-init checkpoints (capcast.testing.tiny; six by default), evaluates it
on two tasks (capcast_add_mc, capcast_add_gen) into a fresh store per setting: in-process (today's
loop), 1 and 2 local worker processes, and Ray on a local runtime with 2 CPUs. Every setting pays
its own start-up (worker interpreters importing torch and lm-eval, Ray's start), which is the point
on a small grid: scale-out pays once the jobs are longer than that start-up. The figures depend on
the machine and on what else runs on it; the report says how many cores it had and its load.
``--command sample`` times ``capcast sample`` (PassUntil, r = 1, at most 16 samples per instance,
on capcast_add_gen) the same way; every setting must store the same draws as the in-process loop.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

TASKS = ["capcast_add_mc", "capcast_add_gen"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="xs,s,m,l,xs,s", help="one checkpoint per size (repeats get other seeds)")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("scaleout.txt"))
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--command", choices=("eval", "sample"), default="eval")
    args = parser.parse_args()
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)

    from capcast import api
    from capcast.testing.tiny import build_tiny_checkpoint
    import yaml

    root = Path(tempfile.mkdtemp(prefix="capcast-scaleout-"))
    entries = []
    for i, size in enumerate(args.sizes.split(",")):
        name = f"b{i}-{size}"
        params = build_tiny_checkpoint(root / "family" / name, size=size, seed=i)
        entries.append({"name": name, "model": f"./{name}", "params": params, "tokens": 20 * params, "step": 1000})
    spec = root / "family" / "family.yaml"
    spec.write_text(yaml.safe_dump({"family": "bench", "checkpoints": entries}, sort_keys=False))
    options = dict(limit=args.limit, batch_size=16, device="cpu", progress=False)
    tasks = TASKS
    if args.command == "sample":
        from capcast.passuntil.sampler import SamplerConfig

        tasks, config = ["capcast_add_gen"], SamplerConfig(successes=1, max_samples_per_instance=16, first_batch=4)
        options = dict(limit=args.limit, batch_size=16, device="cpu")

    def run(store, executor):
        if args.command == "sample":
            summaries = api.sample(spec, tasks, store, config, executor=executor, **options)
            assert len(summaries) == len(entries), summaries
            return
        summary = api.evaluate(spec, tasks, store, executor=executor, **options)
        assert len(summary.evaluated) == len(entries) * len(tasks), summary

    from capcast.executors.local import LocalExecutor

    settings = [("in-process (today's loop)", None), ("local, 1 worker", LocalExecutor(workers=1)),
                ("local, 2 workers", api.executor("local", workers=2))]
    if not args.skip_ray:
        settings.append(("ray, local runtime, 2 CPUs", "ray"))
    seconds = {}
    for label, executor in settings:
        if executor == "ray":
            import ray

            started = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            run(root / f"store-{len(seconds)}", api.executor("ray"))
            ray.shutdown()
            seconds[label] = time.perf_counter() - started
        else:
            started = time.perf_counter()
            run(root / f"store-{len(seconds)}", executor)
            seconds[label] = time.perf_counter() - started
        print(f"{label}: {seconds[label]:.1f} s", flush=True)
    if args.command == "sample":  # the same draws whoever sampled them
        from capcast.passuntil import rounds

        def draws(store):
            with rounds.connect(store) as con:
                return con.execute("SELECT * FROM passuntil_samples ORDER BY checkpoint, doc_id, sample_idx").fetchall()

        first = draws(root / "store-0")
        assert first and all(draws(root / f"store-{i}") == first for i in range(1, len(seconds)))
    base = seconds["in-process (today's loop)"]
    one = seconds["local, 1 worker"]
    lines = [
        f"# benchmarks/scaleout.py --command {args.command} --sizes {args.sizes} --limit {args.limit}{' --skip-ray' if args.skip_ray else ''}",
        f"# grid: {len(entries)} checkpoints x {len(tasks)} tasks ({', '.join(tasks)}), {args.limit} items each, CPU"
        + (", PassUntil r = 1, at most 16 samples per instance; every setting stored the same draws" if args.command == "sample" else ""),
        f"# machine: {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f} (other processes share the cores)",
        "setting, wall seconds, vs in-process, vs 1 worker",
    ]
    lines += [f"{label}, {s:.1f}, {base / s:.2f}x, {one / s:.2f}x" for label, s in seconds.items()]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
