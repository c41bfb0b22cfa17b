"""Backtest time of two revisions of capcast, interleaved in one run, and how far their tables differ.

    .venv/bin/python benchmarks/backtest_revisions.py --base bd21706~1 [--head HEAD] [--families 20] [--rounds 3]

Each revision is checked out into a temporary git worktree; every round times one serial
``backtest_scores`` (``auto`` on ``acc``) of the same simulated families
(:func:`backtest_scale.families`, seed 3) in a fresh process per revision, base then head, so
both see the same machine load. Prints the seconds per round, the median ratio, and the rows whose
status or numbers differ between the two tables. Appends to ``benchmarks/backtest_revisions.txt``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# run inside each worktree: time one backtest, pickle its table
CHILD = r"""
import pickle, sys, time, warnings
root, families, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sys.path[:0] = [root, root + "/benchmarks"]
warnings.simplefilter("ignore")
import backtest_scale
from capcast.forecasting.backtest import backtest_scores
import capcast
assert capcast.__file__.startswith(root), capcast.__file__
frame = backtest_scale.families(families, seed=3)
start = time.perf_counter()
report = backtest_scores(frame, methods=["auto"], metric="acc", workers=1)
seconds = time.perf_counter() - start
pickle.dump((seconds, report.frame()), open(out, "wb"))
"""


def worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), rev], check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(where / "capcast")], check=True, stdout=subprocess.DEVNULL)
    return where


def timed(tree: Path, families: int, out: Path) -> tuple[float, object]:
    subprocess.run([sys.executable, "-c", CHILD, str(tree), str(families), str(out)], check=True,
                   env={**os.environ, "PYTHONWARNINGS": "ignore"})
    with open(out, "rb") as handle:
        return pickle.load(handle)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--head", default="HEAD")
    parser.add_argument("--families", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_suffix(".txt"))
    args = parser.parse_args()
    revs = {name: subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev], check=True, capture_output=True,
                                 text=True).stdout.strip() for name, rev in (("base", args.base), ("head", args.head))}
    with tempfile.TemporaryDirectory() as tmp:
        trees = {name: worktree(rev, Path(tmp) / name) for name, rev in revs.items()}
        try:
            seconds = {name: [] for name in trees}
            tables = {}
            for _ in range(args.rounds):
                for name, tree in trees.items():
                    s, tables[name] = timed(tree, args.families, Path(tmp) / f"{name}.pkl")
                    seconds[name].append(s)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    base, head = tables["base"], tables["head"]
    both = (base.status == "ok") & (head.status == "ok")
    lines = [f"# python benchmarks/backtest_revisions.py --base {args.base} --head {args.head} --families {args.families} "
             f"--rounds {args.rounds}  (load {os.getloadavg()[0]:.2f})",
             f"base {revs['base']}: " + " / ".join(f"{s:.2f}" for s in seconds["base"]) + " s",
             f"head {revs['head']}: " + " / ".join(f"{s:.2f}" for s in seconds["head"]) + " s",
             f"head / base per round: " + " / ".join(f"{h / b:.3f}" for b, h in zip(seconds["base"], seconds["head"])) +
             f"; median {np.median(np.array(seconds['head']) / np.array(seconds['base'])):.3f}",
             f"rows {len(base)}; status differs {int((base.status != head.status).sum())}"]
    for column in ("forecast", "lower", "upper"):
        gap = 100 * (base[column][both] - head[column][both]).abs()
        lines.append(f"  {column}: largest difference {gap.max():.4f} points; rows above 0.01 points {int((gap > 0.01).sum())}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    with open(args.out, "a") as handle:
        handle.write(text)


if __name__ == "__main__":
    main()
