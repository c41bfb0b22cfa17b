"""Backtests compare methods on the same forecasts: the common set every method answered, and each
method's paired difference in absolute error against the first, with its standard error over fits
(a fit's targets share it)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from capcast.forecasting.backtest import backtest_scores, common_forecasts, forecast_key, paired_difference
from capcast.testing.cli import run_in_process
from capcast.testing.simulate import simulate_family


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Six simulated families of one task, one of them at chance (sigmoid refuses it: no signal
    above chance; auto answers it with persistence); two sizes held out, three forecasts each
    family (the largest fitting-size-but-one's two runs and the target)."""
    rng = np.random.default_rng(4)
    regimes = ("mid", "high", "low", "mid", "high", "high")
    return pd.concat([simulate_family(rng, n_sizes=6, seeds=2, family=f"fam{f}", regime=regimes[f], lack_of_fit_sd=0.15).scores
                      for f in range(6)], ignore_index=True)


@pytest.fixture(scope="module")
def report(frame):
    return backtest_scores(frame, holdout_largest=2, methods=["auto", "sigmoid", "saturating-power"], metric="acc")


def test_the_common_set_is_what_every_method_answered_and_each_is_scored_on_it(report):
    answered = {m: {forecast_key(r) for r in report.rows if r["method"] == m and r["status"] == "ok"} for m in report.methods}
    keys, common = report.common_set()
    assert keys == answered["auto"] & answered["sigmoid"] & answered["saturating-power"]
    assert 0 < len(keys) < len(answered["auto"])  # sigmoid abstains where auto answers: the check can fail
    for m, score in common.items():
        assert score.n == len(keys)
        errors = [abs(r["forecast"] - r["actual"]) * 100 for r in report.rows if r["method"] == m and forecast_key(r) in keys]
        assert score.mae == pytest.approx(np.mean(errors))
        signed = [(r["forecast"] - r["actual"]) * 100 for r in report.rows if r["method"] == m and forecast_key(r) in keys]
        assert score.bias == pytest.approx(np.mean(signed))  # which way it misses, which the MAE does not say
    assert len({round(s.bias, 6) for s in common.values()}) > 1 and any(abs(s.bias) < s.mae for s in common.values())


def test_the_paired_difference_averages_within_fits_then_over_fits(report):
    keys, _ = report.common_set()
    error = {(r["method"], forecast_key(r)): abs(r["forecast"] - r["actual"]) * 100 for r in report.rows if r["status"] == "ok"}
    by_fit: dict[tuple, list[float]] = {}
    for key in keys:  # a fit is one (family, task, metric); its held-out runs share it
        by_fit.setdefault((key[0], key[2], key[3]), []).append(error[("sigmoid", key)] - error[("auto", key)])
    means = np.array([np.mean(v) for v in by_fit.values()])
    diff = report.against_first()["sigmoid"]
    assert (diff.method, diff.baseline, diff.fits, diff.forecasts) == ("sigmoid", "auto", len(by_fit), len(keys))
    assert len(keys) > diff.fits > 1  # several targets per fit: counting them as independent would shrink the error
    assert diff.mean == pytest.approx(means.mean())
    assert diff.standard_error == pytest.approx(means.std(ddof=1) / np.sqrt(len(means)))
    assert diff.describe() == (f"sigmoid - auto: {means.mean():+.2f} pts in absolute error (standard error "
                               f"{diff.standard_error:.2f} over {len(by_fit)} fits, {len(keys)} forecasts)")
    # one fit: a mean and no standard error
    one = {k for k in keys if k[0] == sorted(keys)[0][0]}
    single = paired_difference(report.rows, "sigmoid", "auto", one)
    assert single.fits == 1 and single.standard_error is None
    assert paired_difference(report.rows, "sigmoid", "auto", set()) is None
    assert common_forecasts(report.rows, []) == set()


def test_the_cli_prints_and_exports_the_common_set(frame, tmp_path, capsys):
    path = tmp_path / "scores.parquet"
    frame.to_parquet(path)
    base = ["backtest", "--scores", str(path), "--holdout-largest", "2", "--metric", "acc", "--methods", "auto,sigmoid,saturating-power"]
    code, out, err = run_in_process(base + ["-f", "json"], capsys)
    assert code == 0, err
    exported = json.loads(out)["common_set"]
    report = backtest_scores(frame, holdout_largest=2, methods=["auto", "sigmoid", "saturating-power"], metric="acc")
    keys, _ = report.common_set()
    assert exported["forecasts"] == len(keys)
    assert set(exported["against_first"]) == {"sigmoid", "saturating-power"}
    assert exported["against_first"]["saturating-power"]["mean"] == pytest.approx(report.against_first()["saturating-power"].mean)
    code, out, err = run_in_process(base, capsys)
    assert code == 0, err
    assert f"common set: the {len(keys)} forecasts every method answered" in out
    assert f"{report.against_first()['sigmoid'].mean:+.2f} ± " in out
    assert "bias" in out and f"{report.methods['sigmoid'].bias:+.2f}" in out
    # why the forecasts without a number got none, per method: the reasons' kinds and their counts
    refused = report.methods["sigmoid"].refusals
    assert refused and sum(refused.values()) == report.methods["sigmoid"].unpredictable + report.methods["sigmoid"].failed
    assert "no signal above chance" in refused  # the family at chance
    flat = " ".join(out.split())
    assert f"sigmoid gave no number for {sum(refused.values())}: " + "; ".join(f"{k} ({n})" for k, n in refused.items()) in flat
    exported_methods = json.loads(run_in_process(base + ["-f", "json"], capsys)[1])["methods"]
    assert exported_methods["auto"]["bias"] == pytest.approx(report.methods["auto"].bias)
    assert exported_methods["sigmoid"]["refusals"] == report.methods["sigmoid"].refusals
    # one method: nothing to compare, no second table
    code, out, _ = run_in_process(base[:-1] + ["auto"], capsys)
    assert code == 0 and "common set" not in out and "common_set" not in json.dumps(backtest_scores(
        frame, holdout_largest=2, methods=["auto"], metric="acc").to_dict())
