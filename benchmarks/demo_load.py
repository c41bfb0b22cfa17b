"""The demo beside a second CPU-bound process: how much slower than on an idle machine (issue 14's
threads target: at most 1.3x).

    .venv/bin/python benchmarks/demo_load.py > benchmarks/demo_load.txt

Runs ``capcast demo --out DIR`` (this venv; a fresh output folder each time, so every run evaluates
from scratch) ``--rounds`` times idle and as often with one busy process beside it (``python -c
"while True: pass"``), interleaved idle, busy, idle, busy, so that a drift of the machine's load
hits both alike; reports each run's step times (the demo's own ``time per step`` line), the median
of each condition and their ratio per step. On a 2-core machine the busy process takes one core:
a step that runs one process loses nothing if it keeps to one thread; the evaluation, which runs
2 worker processes, shares the 2 cores three ways.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from demo_time import parse_steps  # noqa: E402

CAPCAST = Path(sys.executable).with_name("capcast")


def one_demo(busy: bool) -> tuple[dict[str, float], float]:
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        with tempfile.TemporaryDirectory(prefix="capcast-demo-load-") as folder:
            env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
            proc = subprocess.run([str(CAPCAST), "demo", "--out", str(Path(folder) / "out")], cwd=folder, env=env,
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"capcast demo failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
            return parse_steps(proc.stdout + proc.stderr)
    finally:
        if burner is not None:
            burner.kill()
            burner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="demo runs per condition (interleaved)")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"# benchmarks/demo_load.py: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}; "
          f"load average before {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    runs: dict[bool, list[tuple[dict[str, float], float]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for busy in (False, True):
            steps, total = one_demo(busy)
            runs[busy].append((steps, total))
            print(f"# {'busy' if busy else 'idle'} run: total {total:.1f} s; load average now {os.getloadavg()[0]:.1f}", flush=True)
    names = list(runs[False][0][0])
    print(f"{'step':<20} {'idle s':>8} {'busy s':>8} {'busy/idle':>10}")
    for name in names + ["total"]:
        idle = statistics.median(r[1] if name == "total" else r[0].get(name, float("nan")) for r in runs[False])
        busy = statistics.median(r[1] if name == "total" else r[0].get(name, float("nan")) for r in runs[True])
        print(f"{name:<20} {idle:8.1f} {busy:8.1f} {busy / idle if idle else float('nan'):9.2f}x")
    print(f"# medians of {args.rounds} run(s) per condition; target busy/idle total at most 1.3x; "
          f"{time.perf_counter() - started:.0f} s; load average after {', '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
