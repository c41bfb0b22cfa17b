"""Backtests at scale: seconds per forecast and wall time at 10 / 100 / 1,000 families, serial vs workers.

    .venv/bin/python benchmarks/backtest_scale.py                  # writes benchmarks/backtest_scale.txt
    .venv/bin/python benchmarks/backtest_scale.py --serial-up-to 1000  # also the serial 1,000 (long)
    .venv/bin/python benchmarks/backtest_scale.py --sizes 10 --optimizer-rounds 3 --append  # optimiser section alone

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


def _bfgs_maximum(model, deviance, start):
    """One start's fit as before the MINPACK path: statsmodels' BFGS on the likelihood (analytic
    gradient, gtol 1e-5)."""
    return model.fit(start_params=start, method="bfgs", maxiter=2000, disp=0, skip_hessian=True).params


def optimizer_comparison(frame: pd.DataFrame, rounds: int, say) -> None:
    """The sigmoid fit's optimiser, MINPACK's Levenberg-Marquardt on deviance residuals (now)
    against statsmodels' BFGS on the likelihood (before), interleaved on the same families,
    serial: the speed-up, and how many rows differ by how much. For scale, BFGS against itself
    at a 10x tighter gtol (1e-6): how much the rows move within the old optimiser's own tolerance
    (fits the data do not identify, e.g. a step between two sizes, stop anywhere along a flat
    valley of the likelihood)."""
    from capcast.laws import sigmoid

    lm = sigmoid.maximum_from
    variants = {"bfgs": _bfgs_maximum, "lm": lm,
                "bfgs-gtol-1e-6": lambda m, d, s: m.fit(start_params=s, method="bfgs", maxiter=2000, disp=0,
                                                         skip_hessian=True, gtol=1e-6).params}
    walls = {name: [] for name in variants}
    frames = {}
    for r in range(rounds):
        for name, fn in variants.items():
            if name == "bfgs-gtol-1e-6" and r:
                continue
            sigmoid.maximum_from = fn
            try:
                wall, report, _ = timed_library(frame, 1)
            finally:
                sigmoid.maximum_from = lm
            walls[name].append(wall / (frame["family"].nunique() * TASKS))
            frames[name] = report.frame()

    def differences(a: pd.DataFrame, b: pd.DataFrame) -> str:
        cols = ["forecast", "lower", "upper"]
        x, y = a[cols].to_numpy(dtype=float), b[cols].to_numpy(dtype=float)
        both = np.isfinite(x) & np.isfinite(y)
        rel = np.where(both, np.abs(x - y) / np.maximum(np.abs(y), 1e-12), 0.0).max(axis=1)
        points = np.where(both, np.abs(x - y), 0.0).max(axis=1) * 100
        return (f"status differs {int((a['status'] != b['status']).sum())}; rows whose forecast or bound differs by > 1e-6 "
                f"relative {int((rel > 1e-6).sum())}, > 1e-2 {int((rel > 1e-2).sum())} of {len(a)}; largest {points.max():.2f} points")

    fast, slow = np.median(walls["lm"]), np.median(walls["bfgs"])
    say(f"sigmoid optimiser, {frame['family'].nunique()} families serial, median of {rounds} interleaved rounds: "
        f"BFGS (statsmodels, before) {slow:.4f} s/forecast, Levenberg-Marquardt (MINPACK, now) {fast:.4f} s/forecast ({slow / fast:.2f}x)")
    say(f"  LM vs BFGS: {differences(frames['lm'], frames['bfgs'])}")
    say(f"  BFGS gtol 1e-6 vs BFGS gtol 1e-5 (the old optimiser's own tolerance): {differences(frames['bfgs-gtol-1e-6'], frames['bfgs'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000", help="family counts")
    parser.add_argument("--serial-up-to", type=int, default=100, help="run the serial loop up to this many families")
    parser.add_argument("--workers", type=int, default=available_cores())
    parser.add_argument("--optimizer-rounds", type=int, default=2, help="rounds of the LM vs BFGS sigmoid-optimiser comparison (0: none)")
    parser.add_argument("--output", default=str(Path(__file__).with_suffix(".txt")))
    parser.add_argument("--append", action="store_true", help="add to --output; with --sizes 10 the optimiser section alone")
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
    if args.optimizer_rounds:
        optimizer_comparison(table[table["family"].isin(names[:10])], args.optimizer_rounds, say)
    say(f"# after: {load()}")
    previous = Path(args.output).read_text() + "\n" if args.append and Path(args.output).exists() else ""
    Path(args.output).write_text(previous + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
