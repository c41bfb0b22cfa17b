"""Backtests at scale: seconds per forecast and wall time at 10 / 100 / 1,000 families, serial vs workers.

    .venv/bin/python benchmarks/backtest_scale.py                  # writes benchmarks/backtest_scale.txt
    .venv/bin/python benchmarks/backtest_scale.py --serial-up-to 1000  # also the serial 1,000 (long)
    .venv/bin/python benchmarks/backtest_scale.py --sizes 10 --gradient-rounds 3 --append  # gradient section alone

Families: ``capcast.testing.simulate.simulate_family``, 10 tasks per family (regimes mid / high /
low in turn, lack of fit 0.15 logit, 400 items), 6 sizes each (5 fitting sizes of 3 checkpoints,
and the target size, held out: ``--holdout-largest 1``), metric ``acc``, method ``auto``. One
forecast = one family x task (a fit of ``auto``: every candidate on the full series and on its
forward-chaining folds, and the held-out target's forecast; a task below chance is refused before
fitting, as in a real backtest).

The serial and the worker runs must give the same table (checked here on every size both run).
The 1,000-family run goes through the CLI (``capcast backtest --workers N``, a fresh process: it
includes start-up and table reading). The machine is shared: its load average is printed with
every run, and any figure is only as good as the load beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from capcast.forecasting.backtest import available_cores, backtest_scores
from capcast.testing.simulate import simulate_family

TASKS = 10
REGIMES = ("mid", "high", "low")


def families(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` families x ``TASKS`` tasks x 6 sizes, one scores table."""
    rng = np.random.default_rng(seed)
    parts = [simulate_family(rng, n_sizes=5, family=f"fam{f:04d}", task=f"task{t}", regime=REGIMES[(f + t) % 3],
                             lack_of_fit_sd=0.15, n_items=400).scores
             for f in range(n) for t in range(TASKS)]
    return pd.concat(parts, ignore_index=True)


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.2f} / {five:.2f} / {fifteen:.2f}"


def timed_library(frame: pd.DataFrame, workers: int):
    start, before = time.perf_counter(), load()
    report = backtest_scores(frame, methods=["auto"], metric="acc", workers=workers)
    return time.perf_counter() - start, report, before


def timed_cli(path: Path, workers: int, out: Path) -> tuple[float, str]:
    capcast = Path(sys.executable).with_name("capcast")
    command = [str(capcast), "backtest", "--scores", str(path), "--metric", "acc", "--methods", "auto",
               "--workers", str(workers), "-f", "csv", "-o", str(out)]
    start, before = time.perf_counter(), load()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start, before


def gradient_comparison(frame: pd.DataFrame, rounds: int, say) -> None:
    """The sigmoid fit's analytic gradient against statsmodels' numeric one (the path before it;
    everything else as now), interleaved on the same families, serial: the speed-up and the largest
    relative difference of any forecast or interval bound."""
    from statsmodels.base.model import GenericLikelihoodModel

    from capcast.laws.sigmoid import _BoundedSigmoidLikelihood

    analytic = _BoundedSigmoidLikelihood.score
    walls = {"analytic": [], "numeric": []}
    frames = {}
    for _ in range(rounds):
        for name in ("numeric", "analytic"):
            _BoundedSigmoidLikelihood.score = GenericLikelihoodModel.score if name == "numeric" else analytic
            try:
                wall, report, _ = timed_library(frame, 1)
            finally:
                _BoundedSigmoidLikelihood.score = analytic
            walls[name].append(wall / (frame["family"].nunique() * TASKS))
            frames[name] = report.frame()
    a, b = frames["analytic"], frames["numeric"]
    assert (a["status"] == b["status"]).all()
    cols = ["forecast", "lower", "upper"]
    x, y = a[cols].to_numpy(dtype=float), b[cols].to_numpy(dtype=float)
    both = np.isfinite(x) & np.isfinite(y)
    worst = float(np.max(np.abs(x[both] - y[both]) / np.abs(y[both]))) if both.any() else 0.0
    fast, slow = np.median(walls["analytic"]), np.median(walls["numeric"])
    say(f"sigmoid gradient, {frame['family'].nunique()} families serial, median of {rounds} interleaved rounds: "
        f"numeric (statsmodels) {slow:.4f} s/forecast, analytic {fast:.4f} s/forecast ({slow / fast:.2f}x); "
        f"same statuses, largest relative difference of a forecast or bound {worst:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="family counts")
    parser.add_argument("--serial-up-to", type=int, default=100, help="run the serial loop up to this many families")
    parser.add_argument("--workers", type=int, default=available_cores())
    parser.add_argument("--gradient-rounds", type=int, default=2, help="rounds of the analytic vs numeric gradient comparison (0: none)")
    parser.add_argument("--output", default=str(Path(__file__).with_suffix(".txt")))
    parser.add_argument("--append", action="store_true", help="add to --output; with --sizes 10 the gradient section alone")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    lines = [f"# benchmarks/backtest_scale.py: `capcast backtest --methods auto --metric acc`, {TASKS} tasks x 6 sizes per family",
             f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores ({available_cores()} available), "
             f"Python {platform.python_version()}; shared with other work (load averages 1 / 5 / 15 min beside each run)",
             f"# uptime at start: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}", ""]

    def say(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    for line in lines:
        print(line)
    start = time.perf_counter()
    table = families(max(sizes))
    say(f"built {max(sizes)} families ({len(table)} score rows) in {time.perf_counter() - start:.1f} s")
    names = sorted(table["family"].unique())
    say(f"{'families':>8}  {'forecasts':>9}  {'how':<22} {'wall s':>8}  {'s/forecast':>10}  {'ok':>5}  load before")
    with tempfile.TemporaryDirectory() as tmp:
        for n in [] if args.append else sizes:
            frame = table[table["family"].isin(names[:n])]
            forecasts = n * TASKS
            serial = None
            if n <= args.serial_up_to:
                wall, serial, before = timed_library(frame, 1)
                ok = sum(r["status"] == "ok" for r in serial.rows)
                say(f"{n:>8}  {forecasts:>9}  {'serial (library)':<22} {wall:>8.1f}  {wall / forecasts:>10.4f}  {ok:>5}  {before}")
            if n < max(sizes):
                wall, spread, before = timed_library(frame, args.workers)
                ok = sum(r["status"] == "ok" for r in spread.rows)
                say(f"{n:>8}  {forecasts:>9}  {f'{args.workers} workers (library)':<22} {wall:>8.1f}  {wall / forecasts:>10.4f}  {ok:>5}  {before}")
                if serial is not None:
                    pd.testing.assert_frame_equal(serial.frame(), spread.frame())
                    say(f"{'':>8}  {'':>9}  serial and {args.workers} workers: identical tables ({len(spread.rows)} rows)")
            else:
                path, out = Path(tmp) / "scores.parquet", Path(tmp) / "rows.csv"
                frame.to_parquet(path)
                wall, before = timed_cli(path, args.workers, out)
                rows = pd.read_csv(out)
                ok = int((rows["status"] == "ok").sum())
                say(f"{n:>8}  {forecasts:>9}  {f'{args.workers} workers (CLI)':<22} {wall:>8.1f}  {wall / forecasts:>10.4f}  {ok:>5}  {before}")
                if serial is not None:
                    mine = serial.frame()
                    same = len(mine) == len(rows) and np.allclose(mine["forecast"].astype(float), rows["forecast"].astype(float),
                                                                  rtol=1e-12, equal_nan=True)
                    say(f"{'':>8}  {'':>9}  serial library and {args.workers}-worker CLI forecasts equal: {same}")
    if args.gradient_rounds:
        gradient_comparison(table[table["family"].isin(names[:10])], args.gradient_rounds, say)
    say(f"# after: {load()}")
    previous = Path(args.output).read_text() + "\n" if args.append and Path(args.output).exists() else ""
    Path(args.output).write_text(previous + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
