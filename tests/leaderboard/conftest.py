"""Leaderboard fixtures: a small real scores table whose largest model has a hostile name, and the
real JSON of `capcast backtest` and `capcast forecast` on it (run through the CLI)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capcast import cli

MALICIOUS = "<img src=x onerror=alert(1)>"
FAMILY = "fam"
TASKS = ("arc", "piqa")
# (model, params): the largest is the backtest's held-out target
SIZES = [("m1", 1e7), ("m2", 3e7), ("m3", 1e8), ("m4", 3e8), ("m5", 1e9), (MALICIOUS, 3e9)]


def _scores_table() -> pd.DataFrame:
    rows = []
    rng = np.random.default_rng(3)
    for task, (a, b) in zip(TASKS, [(-17.0, 0.9), (-15.5, 0.8)]):
        for model, n in SIZES:
            for frac in (0.5, 1.0):  # two checkpoints per run: tokens at half and at the end
                tokens = 20 * n * frac
                flops = 6 * n * tokens
                value = 0.25 + 0.65 / (1 + np.exp(-(a + b * np.log10(flops) - 0.0)))
                rows.append({"family": FAMILY, "run": model, "model": model, "params": n, "tokens": tokens, "flops": flops,
                             "step": int(1000 * frac), "task": task, "metric": "acc",
                             "value": float(np.clip(value + rng.normal(0, 0.004), 0, 1)), "n_items": 1000, "chance": 0.25})
    return pd.DataFrame(rows)


@pytest.fixture
def run_cli(capsys):
    """run_cli(args) -> (exit status, stdout, stderr) of one real CLI invocation."""

    def run(args: list[str]) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            cli.main(args)
            code = 0
        except SystemExit as exc:
            code = exc.code or 0
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="session")
def malicious() -> str:
    return MALICIOUS


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """scores.csv, backtest.json (3 methods, largest size held out), forecast.json (a target not in
    the table: registered) and hindsight.json (the hostile-named model, actual known)."""
    folder = tmp_path_factory.mktemp("leaderboard-inputs")
    scores = folder / "scores.csv"
    _scores_table().to_csv(scores, index=False)
    for name, args in (("backtest", ["backtest", "--holdout-largest", "1", "--methods", "auto,sigmoid,linear"]),
                       ("forecast", ["forecast", "--target-params", "1e10", "--target-tokens", "2e11"]),
                       ("hindsight", ["forecast", "--target", MALICIOUS])):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            try:
                cli.main(args + ["--scores", str(scores), "--format", "json"])
            except SystemExit as exc:
                assert not exc.code, f"capcast {name} failed"
        (folder / f"{name}.json").write_text(printed.getvalue())
    return {"scores": scores, "backtest": folder / "backtest.json", "forecast": folder / "forecast.json",
            "hindsight": folder / "hindsight.json"}
