"""The samples table: validation, task-level rates, and forecasts/backtests through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from typer.testing import CliRunner

from capcast.cli.app import app, main
from capcast.errors import CapcastError
from capcast.passuntil.estimators import simulate_passuntil
from capcast.laws.passuntil import from_f, to_f
from capcast.tables.samples import read_samples, task_table, to_series, validate_samples

SIZES = [1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9]


@pytest.fixture(scope="module")
def ladder_table(tmp_path_factory):
    """PassUntil counts simulated from per-instance laws F_s = a_s - 0.25 ln N (40 instances)."""
    rng = np.random.default_rng(11)
    intercepts = np.log(200.0) + rng.normal(0, 0.3, size=40)
    rows = []
    for n in SIZES:
        c, k = simulate_passuntil(from_f(intercepts - 0.25 * np.log(n)), r=5, cap=10**6, rng=rng)
        for doc, (ci, ki) in enumerate(zip(c, k)):
            rows.append({"family": "sim", "model": f"m{int(n):d}", "params": n, "tokens": 20 * n, "flops": None, "step": 100,
                         "task": "t", "doc_id": doc, "n_samples": int(ki), "n_correct": int(ci), "target_successes": 5})
    path = tmp_path_factory.mktemp("samples") / "samples.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    truth = {f"m{int(n):d}": float(np.mean(from_f(intercepts - 0.25 * np.log(n)))) for n in SIZES}
    return path, truth


def test_read_and_task_rates(ladder_table):
    path, truth = ladder_table
    frame = read_samples(path)
    assert frame["flops"].iloc[0] == pytest.approx(6 * 1e6 * 20e6)  # filled from 6 N D
    table = task_table(frame).set_index("model")
    covered = sum(table.loc[model, "lower"] <= value <= table.loc[model, "upper"] for model, value in truth.items())
    assert covered >= 6  # 90% intervals: at most one of the 7 sizes may miss
    for model, value in truth.items():
        assert abs(table.loc[model, "pass_rate"] / value - 1) < 0.25  # 40 instances, r = 5: within a quarter of the truth
    series = to_series(frame, "t")
    assert list(series.model) == [f"m{int(n):d}" for n in SIZES]
    assert np.all(np.diff(series.value) > 0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda df: df.drop(columns="n_correct"), "missing column"),
        (lambda df: df.assign(n_correct=df["n_samples"] + 1), "exceeds n_samples"),
        (lambda df: df.assign(n_samples=0), "n_samples must be"),
        (lambda df: df.assign(params="big"), "use a number"),
        (lambda df: pd.concat([df, df.iloc[:1]]), "appears twice"),
    ],
)
def test_bad_tables_give_one_line_errors(ladder_table, change, message):
    frame = pd.read_csv(ladder_table[0])
    with pytest.raises(CapcastError, match=message) as err:
        validate_samples(change(frame))
    assert "\n" not in str(err.value)


def run_cli(args: list[str]) -> str:
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli_forecast_with_samples(ladder_table):
    path, truth = ladder_table
    for method in ("passuntil", "passuntil_instance"):
        out = run_cli(["forecast", "--samples", str(path), "--target", "m1000000000", "--method", method, "-f", "json"])
        row = json.loads(out)["rows"][0]
        assert row["status"] == "ok" and row["law"] == method
        assert row["actual"] == pytest.approx(truth["m1000000000"], rel=0.2)
        assert row["forecast"] == pytest.approx(truth["m1000000000"], rel=0.35)
        assert row["lower"] < row["forecast"] < row["upper"]


def test_cli_backtest_with_samples(ladder_table):
    path, _ = ladder_table
    out = run_cli(["backtest", "--samples", str(path), "--holdout-largest", "2", "--methods", "passuntil,passuntil_instance", "-f", "json"])
    report = json.loads(out)
    assert set(report["methods"]) == {"passuntil", "passuntil_instance"}
    assert {r["model"] for r in report["rows"]} == {"m300000000", "m1000000000"}
    for r in report["rows"]:
        assert r["status"] == "ok" and abs(r["forecast"] / r["actual"] - 1) < 0.5


def test_cli_samples_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["forecast", "--samples", str(tmp_path / "missing.csv"), "--target", "x", "--method", "passuntil"])
    assert exit_info.value.code == 2
    assert "no such samples table" in capsys.readouterr().err


@pytest.mark.parametrize("args, fragment", [
    (["forecast", "--target", "m1000000000", "--metric", "acc"], "--metric 'acc' does not apply to --samples"),
    (["backtest", "--metric", "acc_norm"], "--metric 'acc_norm' does not apply to --samples"),
    (["backtest", "--all-steps"], "--all-steps does not apply to --samples"),
    (["forecast", "--target", "m1000000000", "--store", "st"], "--store only applies when forecasting a FAMILY.yaml"),
])
def test_options_a_samples_table_cannot_use_are_refused(ladder_table, capsys, args, fragment):
    """Options that would be silently ignored with --samples are one-line errors instead."""
    with pytest.raises(SystemExit) as exit_info:
        main([args[0], "--samples", str(ladder_table[0]), *args[1:]])
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    # pass_rate, the metric a samples table has, is still accepted
    out = run_cli(["forecast", "--samples", str(ladder_table[0]), "--target", "m1000000000", "--metric", "pass_rate", "-f", "json"])
    assert json.loads(out)["rows"][0]["metric"] == "pass_rate"


def test_real_pythia_gsm8k_counts_read_as_a_samples_table():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from passuntil_data import available, read_pythia_gsm8k_samples

    if not available():
        pytest.skip("shared pythia-gsm8k-samples data not present")
    frame = validate_samples(read_pythia_gsm8k_samples().drop(columns="size"))
    rates = task_table(frame, estimator="mle").set_index("model")["pass_rate"]
    # The provenance note's facts: pass@1 at 300B tokens.
    assert rates["Pythia_6.9B_300B"] == pytest.approx(0.012878, abs=1e-6)
    assert rates["Pythia_12B_300B"] == pytest.approx(0.010925, abs=1e-6)
    assert frame["model"].nunique() == 81


@pytest.mark.parametrize("method", ["passuntil", "passuntil_instance"])
def test_samples_forecasts_never_fit_at_or_above_the_target_unless_asked(ladder_table, tmp_path, method):
    """m1e9 has more compute than the target m3e8: fitted only with interpolate=True, for task laws
    and instance laws alike."""
    from capcast import api

    path, _ = ladder_table
    table = pd.read_csv(path)
    smaller = tmp_path / "below.csv"
    table[table["model"] != "m1000000000"].to_csv(smaller, index=False)

    def forecast(source, **kw):
        (result,) = api.forecast(samples=source, target="m300000000", method=method, **kw)
        assert result.row.status == "ok", result.row.reason
        return result.row.forecast

    plain = forecast(path)
    assert plain == pytest.approx(forecast(smaller), rel=1e-9)  # as if the larger model were not there
    assert forecast(path, interpolate=True) != pytest.approx(plain, rel=1e-6)
