"""Backtests spread over worker processes give the serial loop's table, row for row, with one bar."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from capcast.errors import CapcastError
from capcast.forecasting.backtest import available_cores, backtest_scores
from capcast.progress import reporting
from capcast.testing.cli import run_in_process
from capcast.testing.simulate import simulate_family


def _families(n_families: int, tasks: int = 2, seed: int = 0) -> pd.DataFrame:
    """``n_families`` simulated families, each one scores table over ``tasks`` tasks (5 fitting sizes + a target)."""
    rng = np.random.default_rng(seed)
    regimes = ("mid", "high", "low")
    parts = [simulate_family(rng, n_sizes=5, family=f"fam{f}", task=f"task{t}", regime=regimes[(f + t) % 3], lack_of_fit_sd=0.15).scores
             for f in range(n_families) for t in range(tasks)]
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return _families(5)


def test_workers_give_the_serial_table_row_for_row(frame) -> None:
    serial = backtest_scores(frame, methods=["auto", "sigmoid"], workers=1)
    spread = backtest_scores(frame, methods=["auto", "sigmoid"], workers=2)
    assert len(serial.rows) == 5 * 2 * 2  # families x tasks x methods, one held-out target each
    assert {r["status"] for r in serial.rows} >= {"ok"}  # real forecasts, not only refusals
    pd.testing.assert_frame_equal(serial.frame(), spread.frame())
    assert serial.to_dict() == spread.to_dict()
    # the rows keep the serial order: families in name order, then tasks
    assert [r["family"] for r in spread.rows] == sorted(r["family"] for r in spread.rows)


def test_cli_workers_option_gives_the_same_csv(frame, tmp_path, capsys) -> None:
    path = tmp_path / "scores.parquet"
    frame[frame["family"].isin(["fam0", "fam1", "fam2"])].to_parquet(path)
    outputs = []
    for workers in ("1", "2"):
        code, out, err = run_in_process(["backtest", "--scores", str(path), "--methods", "sigmoid", "--metric", "acc",
                                         "--workers", workers, "-f", "csv"], capsys)
        assert code == 0, err
        outputs.append(out)
    assert outputs[0] == outputs[1] and outputs[0].count("\n") == 1 + 3 * 2


def test_the_bar_counts_every_forecast_the_workers_send_back(frame, recorded_bars) -> None:
    calls, advanced = recorded_bars
    out = io.StringIO()
    with reporting(Console(file=out, force_terminal=True, width=100)):
        backtest_scores(frame, methods=["sigmoid"], workers=2)
    assert calls == [("backtest: forecasts", 5 * 2)]
    assert sum(advanced) == 5 * 2 and len(advanced) > 1  # each chunk's forecasts, as it came back
    assert "backtest: forecasts" in out.getvalue()


def test_bad_workers_and_bad_families_are_one_line_errors_before_any_fit(frame, tmp_path, capsys) -> None:
    with pytest.raises(CapcastError, match="--workers must be"):
        backtest_scores(frame, methods=["sigmoid"], workers=0)
    # a family with too few sizes to hold one out is named before the processes start
    small = frame[(frame["family"] != "fam3") | (frame["params"] <= frame["params"].min())]
    with pytest.raises(CapcastError, match="family 'fam3' has 1 sizes"):
        backtest_scores(small, methods=["sigmoid"], workers=2)
    path = tmp_path / "scores.csv"
    frame.to_csv(path, index=False)
    code, _, err = run_in_process(["backtest", "--scores", str(path), "--workers", "0"], capsys)
    assert code == 2 and "Traceback" not in err


def test_available_cores_is_this_process_share() -> None:
    import os

    assert available_cores() == len(os.sched_getaffinity(0)) >= 1
