"""How long `make demo` takes on a fresh clone, step by step: what the README's set-up promises.

    python benchmarks/demo_time.py > benchmarks/demo_time.txt             # clone HEAD, `make demo` there
    python benchmarks/demo_time.py --worktree > benchmarks/demo_time.txt  # the working tree, uncommitted files too

It clones the repository at HEAD (``git clone --no-local``, or, with ``--worktree``, copies the files
``git ls-files`` lists, tracked and untracked-not-ignored) into a temporary folder, runs
``make demo`` there (venv creation and install included: uv's and pip's caches make this the
install of a machine that downloaded the wheels before) and parses the step times the demo prints in its
``time per step (s): ...`` line. It prints the machine (cores, load average before and after),
the wall time of the whole ``make demo``, the install (wall minus the demo's own total), each
step, and the tail of the demo's output. The machine may be shared: the load averages say how
busy it was; compare runs only at similar load.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEP_LINE = re.compile(r"^time per step \(s\): (?P<steps>.*); total (?P<total>[\d.]+)\s*$", re.MULTILINE)
OLD_LINE = re.compile(r"demo took (?P<total>\d+) s \((?P<steps>[^)]*)\)")  # before the per-step line existed


def parse_steps(output: str) -> tuple[dict[str, float], float]:
    """({step: seconds}, total) from the demo's output."""
    found = STEP_LINE.search(output)
    if found is None:
        found = OLD_LINE.search(output)
        if found is None:
            raise SystemExit("the demo printed no step times; its output ends:\n" + output[-3000:])
        steps = {m.group(1): float(m.group(2)) for m in re.finditer(r"([A-Za-z][\w ]*?) (\d+) s", found["steps"])}
        return steps, float(found["total"])
    steps = {}
    for part in found["steps"].split(", "):
        name, _, seconds = part.rpartition(" ")
        steps[name] = float(seconds)
    return steps, float(found["total"])


def checkout(into: Path, worktree: bool) -> str:
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    if not worktree:
        subprocess.run(["git", "clone", "-q", "--no-local", str(REPO), str(into)], check=True)
        return f"git clone of HEAD {head}"
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        source = REPO / rel
        if source.is_file():
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / rel)
    return f"copy of the working tree at HEAD {head} (uncommitted changes included)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worktree", action="store_true", help="copy the working tree instead of cloning HEAD")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="capcast-demo-time-"))
    clone = folder / "capcast"
    clone.mkdir()
    what = checkout(clone, args.worktree)
    load_before = os.getloadavg()
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    env.pop("VIRTUAL_ENV", None)
    started = time.perf_counter()
    proc = subprocess.run(["make", "demo"], cwd=clone, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"make demo failed ({proc.returncode}); its output ends:\n{output[-3000:]}")
    steps, total = parse_steps(output)
    print(f"# `make demo` on a fresh {what}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, {platform.machine()}, "
          f"Python {platform.python_version()}; load average (1, 5, 15 min) before "
          f"{', '.join(f'{x:.1f}' for x in load_before)}, after {', '.join(f'{x:.1f}' for x in load_after)}")
    print(f"# re-run: python benchmarks/demo_time.py{' --worktree' if args.worktree else ''} > benchmarks/demo_time.txt")
    print()
    print(f"{'step':<24}{'seconds':>10}")
    installer = "pip" if re.search(r"^uv unavailable", output, re.MULTILINE) else "uv"  # the Makefile's fallback line (not its echo)
    print(f"{f'install (venv, {installer})':<24}{wall - total:>10.1f}")
    for name, seconds in steps.items():
        print(f"{name:<24}{seconds:>10.1f}")
    print(f"{'demo total':<24}{total:>10.1f}")
    print(f"{'make demo (wall)':<24}{wall:>10.1f}   ({wall / 60:.1f} min)")
    print()
    print("# the demo's last lines:")
    for line in proc.stdout.rstrip().splitlines()[-2:]:
        print("#   " + line[:200])
    if args.keep:
        print(f"# kept: {folder}", file=sys.stderr)
    else:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
