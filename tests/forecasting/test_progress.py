"""Long forecasts and backtests show progress on the CLI's stderr; the library stays silent."""

from __future__ import annotations

import io

from rich.console import Console

from capcast.progress import reporting, track


def test_track_is_silent_and_transparent_outside_reporting() -> None:
    assert list(track(range(3), "x")) == [0, 1, 2]


def test_reporting_shows_counts_of_nested_loops_and_stops_its_bars() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    seen = []
    with reporting(console):
        for fam in track(["a", "b"], "families"):
            for task in track(["t1", "t2", "t3"], f"{fam}: tasks"):
                seen.append((fam, task))
    assert len(seen) == 6
    text = out.getvalue()
    # the bars showed with their totals (the refresh thread may not catch the later counts of so fast a loop)
    assert "families" in text and "a: tasks" in text and "0/2" in text and "0/3" in text
    assert list(track(range(2), "after")) == [0, 1]  # reporting ended: silent again


def test_backtest_cli_runs_its_loops_through_the_bars(recorded_bars, tmp_path, capsys) -> None:
    """The backtest command counts its forecasts on one bar (recorded here by wrapping the bar)."""
    from capcast.testing.cli import run_in_process
    from capcast.testing.simulate import simulate_family
    import numpy as np

    frame = simulate_family(np.random.default_rng(0)).scores
    path = tmp_path / "scores.csv"
    frame.to_csv(path, index=False)
    calls, advanced = recorded_bars
    code, out, err = run_in_process(["backtest", "--scores", str(path), "--methods", "sigmoid", "-f", "json"], capsys)
    assert code == 0, err
    assert calls == [("backtest: forecasts", 1)] and sum(advanced) == 1  # one family x one task x one method
