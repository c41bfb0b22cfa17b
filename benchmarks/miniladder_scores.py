"""The mini-ladder's scores table, the development data of benchmarks/forecast_accuracy.py.

    python benchmarks/miniladder_scores.py [--store DIR]    # writes benchmarks/data/miniladder_scores.csv

Evaluates every checkpoint of the committed ladder (``capcast/reference/ladder/ladder.yaml``) on the
greedy and multiple-choice reference tasks with ``capcast eval`` into ``--store`` (resumable: a
finished store is reused), then writes its scores table (``capcast scores --format csv``). About
8 minutes on 2 idle CPU cores. The table is committed so the accuracy report needs no evaluation.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "data" / "miniladder_scores.csv"
TASKS = ("ref_facts", "ref_carry", "ref_copy", "ref_reverse", "ref_sort", "ref_add2", "ref_add3_greedy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=None, help="record store (default: a temporary folder)")
    args = parser.parse_args()
    capcast = str(Path(sys.executable).with_name("capcast"))
    with tempfile.TemporaryDirectory() as tmp:
        store = args.store or Path(tmp) / "store"
        subprocess.run([capcast, "eval", str(REPO / "capcast/reference/ladder/ladder.yaml"), "--tasks", ",".join(TASKS),
                        "--store", str(store)], check=True)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([capcast, "scores", "--store", str(store), "--format", "csv", "--output", str(OUT)], check=True)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
