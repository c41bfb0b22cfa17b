"""Wall time of one checkpoint x task grid through capcast's executors, ratios in one run.

    .venv/bin/python benchmarks/scaleout.py [--sizes xs,s,m,l,xs,s] [--limit 40] [--out benchmarks/scaleout.txt]

Builds a family of tiny random-init checkpoints (capcast.testing.tiny; six by default), evaluates it
on two tasks (capcast_add_mc, capcast_add_gen) into a fresh store per setting: in-process (today's
loop), 1 and 2 local worker processes, and Ray on a local runtime with 2 CPUs. Every setting pays
its own start-up (worker interpreters importing torch and lm-eval, Ray's start), which is the point
on a small grid: scale-out pays once the jobs are longer than that start-up. The figures depend on
the machine and on what else runs on it; the report says how many cores it had and its load.
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
            api.evaluate(spec, TASKS, root / f"store-{len(seconds)}", executor=api.executor("ray"), **options)
            ray.shutdown()
            seconds[label] = time.perf_counter() - started
        else:
            started = time.perf_counter()
            summary = api.evaluate(spec, TASKS, root / f"store-{len(seconds)}", executor=executor, **options)
            seconds[label] = time.perf_counter() - started
            assert len(summary.evaluated) == len(entries) * len(TASKS), summary
        print(f"{label}: {seconds[label]:.1f} s", flush=True)
    base = seconds["in-process (today's loop)"]
    one = seconds["local, 1 worker"]
    lines = [
        f"# benchmarks/scaleout.py --sizes {args.sizes} --limit {args.limit}",
        f"# grid: {len(entries)} checkpoints x {len(TASKS)} tasks ({', '.join(TASKS)}), {args.limit} items each, CPU",
        f"# machine: {os.cpu_count()} cores, load average at the end {os.getloadavg()[0]:.1f} (other processes share the cores)",
        "setting, wall seconds, vs in-process, vs 1 worker",
    ]
    lines += [f"{label}, {s:.1f}, {base / s:.2f}x, {one / s:.2f}x" for label, s in seconds.items()]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
