"""Metrics have a direction, bounds and a scale: ``brier`` (lower is better, [0, 2]), ``bpb_gold``
and ``logprob_gold`` (losses) forecast like any other metric, in their own units; a metric nobody
described is refused in one line unless it looks like a score; a plugin may describe its own; and
the width rule is relative to the metric's range (or the forecast, for a loss) at the
90%-equivalent level, so it follows ``--interval``."""

from __future__ import annotations

from capcast.testing.cli import run_in_process

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

from capcast.errors import CapcastError
from capcast.forecasting.backtest import backtest_scores
from capcast.forecasting.forecast import STATUS_OK, STATUS_UNPREDICTABLE, forecast_scores, level_factor, too_wide
from capcast.forecasting.orient import orientation_for
from capcast.laws.base import Prediction
from capcast.metrics import BUILTIN_BY_NAME, Metric, infer_metric
from capcast.plugins.registry import load_registry

SIZES = {"s1": 1.5e7, "s2": 3.5e7, "s3": 8e7, "s4": 2e8, "s5": 4.5e8, "s6": 1e9, "big": 4e9}  # big: the held-out target
STEPS = ((1000, 0.3), (2000, 0.6), (3000, 1.0))  # checkpoints per run, as shares of 20 tokens/param
N_ITEMS = 2000
BYTES = 25.0  # logprob_gold = -ln 2 * bytes * bpb_gold


def flops_of(params: float, share: float = 1.0) -> float:
    return 6 * params * share * 20 * params


def true_brier(flops):
    """Falls from 0.74 (chance 0.75, 4 choices) to about 0.30 at the largest fitting size."""
    return 0.75 - 0.55 * expit(-0.5 + 1.2 * (np.log10(flops) - 18.8))


def true_bpb(flops):
    return 0.55 + 0.9 * (np.asarray(flops) / 1e19) ** -0.12


def family(seed: int = 0, flat_brier: bool = False, extra: dict | None = None) -> pd.DataFrame:
    """One family: task "mc" with brier (and ``extra``: metric name -> function of compute and
    the rng, no chance column), task "lm" with bpb_gold and logprob_gold. The tasks are apart so
    that ``auto`` on brier has no loss for its two-step laws (it compares sigmoid alone)."""
    rng = np.random.default_rng(seed)
    rows = []
    for name, params in SIZES.items():
        for step, share in STEPS:
            tokens = share * 20 * params
            c = 6 * params * tokens
            base = {"family": "toy", "run": name, "model": f"{name}-step{step}", "params": params, "tokens": tokens,
                    "step": step, "task": "mc", "n_items": N_ITEMS}
            brier = 0.75 if flat_brier else float(true_brier(c))
            rows.append({**base, "metric": "brier", "value": brier + rng.normal(0, 0.006), "chance": 0.75})
            bpb = float(true_bpb(c)) * np.exp(rng.normal(0, 0.003))
            lm = {**base, "task": "lm", "chance": np.nan}
            rows.append({**lm, "metric": "bpb_gold", "value": bpb})
            rows.append({**lm, "metric": "logprob_gold", "value": -math.log(2) * BYTES * bpb})
            for metric, fn in (extra or {}).items():
                rows.append({**base, "metric": metric, "value": fn(c, rng), "chance": np.nan})
    return pd.DataFrame(rows)


def truth_at_target(frame: pd.DataFrame, metric: str) -> float:
    rows = frame[(frame["model"] == "big-step3000") & (frame["metric"] == metric)]
    return float(rows["value"].iloc[0])


@pytest.fixture(scope="module")
def scores_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("metrics") / "scores.csv"
    family().to_csv(path, index=False)
    return path


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    return run_in_process(args, capsys)


def forecast_json(args: list[str], capsys) -> dict:
    code, out, err = run_cli(["forecast", *args, "--format", "json"], capsys)
    assert code == 0, err
    (row,) = json.loads(out)["rows"]
    return row


# ------------------------------------------------------------------------ the descriptions


def test_builtin_metrics_have_a_direction_bounds_and_a_scale() -> None:
    described = load_registry().metrics
    assert {"acc", "acc_norm", "p_gold", "pass_rate", "brier", "bpb_gold", "logprob_gold", "loss", "ppl", "exact_match"} <= set(described)
    brier, bpb, logprob = described["brier"], described["bpb_gold"], described["logprob_gold"]
    assert (brier.higher_is_better, brier.lower, brier.upper, brier.scale) == (False, 0.0, 2.0, "score")
    assert (bpb.higher_is_better, bpb.lower, bpb.upper, bpb.scale) == (False, 0.0, None, "loss")
    assert (logprob.higher_is_better, logprob.lower, logprob.upper, logprob.scale) == (True, None, 0.0, "loss")
    assert described["ppl"].lower == 1.0 and described["acc"].bounds_text() == "[0, 1]"
    assert load_registry().metric("exact_match/strict-match").upper == 1.0  # lm-eval's filtered name: its base metric
    with pytest.raises(ValueError, match="a 'score' metric needs finite lower and upper bounds"):
        Metric("open", higher_is_better=True, lower=0.0, upper=None, scale="score")
    with pytest.raises(ValueError, match="lower .* must be below upper"):
        Metric("upside", higher_is_better=True, lower=1.0, upper=0.0)


def test_an_undescribed_metric_is_a_score_only_when_it_looks_like_one() -> None:
    assert infer_metric("my_rate", [0.1, 0.5, 0.9]).higher_is_better
    with pytest.raises(CapcastError, match=r"metric 'widgets' is not described \(values 5 to 50\) .*register_metrics"):
        infer_metric("widgets", [5.0, 50.0])


def test_orientation_maps_brier_onto_a_rising_score_and_back() -> None:
    brier = orientation_for(BUILTIN_BY_NAME["brier"])
    assert brier.oriented(0.75) == pytest.approx(0.625) and brier.to_metric_value(0.625) == pytest.approx(0.75)
    assert brier.chance(0.75) == pytest.approx(0.625)
    assert brier.chance(0.0) == 0.0  # a table without a brier chance (0.0: the best end) has none: the worst end
    back = brier.prediction(Prediction(mean=0.8, lower=0.7, upper=0.9, level=0.9))
    assert (back.mean, back.lower, back.upper) == pytest.approx((0.4, 0.2, 0.6))  # bounds swap
    logprob = orientation_for(BUILTIN_BY_NAME["logprob_gold"])
    assert logprob.label == "-logprob_gold" and logprob.oriented(-20.0) == 20.0
    clipped = logprob.prediction(Prediction(mean=1.0, lower=-0.5, upper=2.0, level=0.9))
    assert clipped.upper == 0.0 and clipped.lower == -2.0  # never above logprob's bound 0
    assert orientation_for(BUILTIN_BY_NAME["acc"]).identity


# ------------------------------------------------------------------------ forecasts in the metric's units


def test_a_falling_brier_forecasts_ok_in_brier_units(scores_csv, capsys) -> None:
    row = forecast_json(["--scores", str(scores_csv), "--target", "big", "--metric", "brier"], capsys)
    frame = pd.read_csv(scores_csv)
    truth = truth_at_target(frame, "brier")
    assert row["status"] == STATUS_OK, row["reason"]
    assert row["law"].startswith("auto:") and row["metric"] == "brier"
    assert row["actual"] == pytest.approx(truth)
    assert 0.0 <= row["lower"] <= row["forecast"] <= row["upper"] <= 0.75  # below chance: lower is better
    assert row["lower"] <= truth <= row["upper"]
    assert row["forecast"] < frame.loc[frame["metric"] == "brier", "value"].iloc[:-3].min() + 0.05
    assert "big-step3000" not in row["fitted"]


def test_a_flat_brier_is_not_predictable_yet_and_auto_forecasts_persistence_in_brier_units(tmp_path, capsys) -> None:
    path = tmp_path / "flat.csv"
    family(flat_brier=True).to_csv(path, index=False)
    row = forecast_json(["--scores", str(path), "--target", "big", "--metric", "brier", "--method", "sigmoid"], capsys)
    assert row["status"] == STATUS_UNPREDICTABLE and row["forecast"] is None
    assert "no signal above chance: the largest fitting model has brier 0.7" in row["reason"]
    assert "vs chance 0.750" in row["reason"]  # in brier units, not the oriented ones
    row = forecast_json(["--scores", str(path), "--target", "big", "--metric", "brier"], capsys)
    assert row["status"] == STATUS_OK and row["law"] == "auto:flat"
    assert "no signal above chance: the largest fitting model has brier 0.7" in row["reason"]
    assert 0.0 <= row["lower"] <= row["forecast"] <= row["upper"] and abs(row["forecast"] - 0.75) < 0.05


@pytest.mark.parametrize("metric", ["bpb_gold", "logprob_gold"])
def test_a_loss_forecasts_ok_with_auto_as_the_power_law(scores_csv, metric, capsys) -> None:
    row = forecast_json(["--scores", str(scores_csv), "--target", "big", "--metric", metric, "--method", "auto"], capsys)
    assert row["status"] == STATUS_OK, row["reason"]
    assert row["law"] == "auto:power"
    c = flops_of(SIZES["big"])
    truth = float(true_bpb(c)) * (1 if metric == "bpb_gold" else -math.log(2) * BYTES)
    assert row["lower"] <= truth <= row["upper"]
    assert row["lower"] <= row["actual"] <= row["upper"]
    assert abs(row["forecast"] - truth) < 0.02 * abs(truth)
    if metric == "logprob_gold":
        assert row["upper"] <= 0.0


def test_a_score_law_refuses_a_loss_and_the_power_law_refuses_a_score(scores_csv) -> None:
    (row,) = forecast_scores(str(scores_csv), "big", metric="bpb_gold", method="sigmoid")
    assert row.status == STATUS_UNPREDICTABLE and "'bpb_gold' is a loss" in row.reason
    (row,) = forecast_scores(str(scores_csv), "big", metric="brier", method="power")
    assert row.status == STATUS_UNPREDICTABLE and "law 'power' forecasts losses" in row.reason


def test_a_flat_loss_is_not_predictable_yet() -> None:
    frame = family(extra={"loss": lambda c, rng: 3.0 * np.exp(rng.normal(0, 0.003))})
    (row,) = forecast_scores(frame, "big", metric="loss")
    assert row.status == STATUS_UNPREDICTABLE and "does not improve with compute" in row.reason


def test_backtest_rows_are_in_brier_units(scores_csv) -> None:
    report = backtest_scores(str(scores_csv), holdout_largest=1, methods=["sigmoid"], metric="brier")
    (row,) = report.rows
    assert row["status"] == STATUS_OK and row["actual"] == pytest.approx(truth_at_target(pd.read_csv(scores_csv), "brier"))
    assert row["lower"] <= row["actual"] <= row["upper"] and report.methods["sigmoid"].coverage == 1.0


# ------------------------------------------------------------------------ undescribed and plugin metrics


WIDGETS = {"widgets": lambda c, rng: float(70 - 45 * expit(1.2 * (np.log10(c) - 18.8)) + rng.normal(0, 0.3))}

WIDGET_METRIC = '''
import capcast
from capcast.metrics import Metric

@capcast.hookimpl
def register_metrics(register):
    register(Metric("widgets", higher_is_better=False, lower=0.0, upper=100.0, scale="score", chance="none",
                    description="error rate in percent"))
'''

SHADOW_BRIER = '''
import capcast
from capcast.metrics import Metric

@capcast.hookimpl
def register_metrics(register):
    register(Metric("brier", higher_is_better=True, lower=0.0, upper=1.0))
'''

NOT_A_METRIC = '''
import capcast

@capcast.hookimpl
def register_metrics(register):
    register({"name": "dict_metric"})
'''


def write_plugin(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    return folder


def test_an_undescribed_metric_outside_zero_one_is_one_error_line(tmp_path, capsys) -> None:
    path = tmp_path / "widgets.csv"
    family(extra=WIDGETS).to_csv(path, index=False)
    code, out, err = run_cli(["forecast", "--scores", str(path), "--target", "big", "--metric", "widgets"], capsys)
    lines = [line for line in err.splitlines() if not line.startswith("note:")]
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("error: metric 'widgets' is not described") and "register_metrics" in lines[0]
    assert "Traceback" not in err


def test_an_undescribed_metric_in_zero_one_is_forecast_as_a_score_with_a_note(tmp_path, capsys) -> None:
    # an error rate in [0, 1] no one described would be forecast upside down: the user is told how it was read
    path = tmp_path / "rates.csv"
    family(extra={"my_rate": lambda c, rng: float(0.2 + 0.6 * expit(1.2 * (np.log10(c) - 18.8)))}).to_csv(path, index=False)
    code, out, err = run_cli(["forecast", "--scores", str(path), "--target", "big", "--metric", "my_rate", "--format", "json"], capsys)
    assert code == 0, err
    assert json.loads(out)["rows"][0]["forecast"] is not None
    notes = [line for line in err.splitlines() if "'my_rate' is not one capcast or a plugin describes" in line]
    assert len(notes) == 1 and "higher is better" in notes[0] and "register_metrics" in notes[0], err
    code, _, err = run_cli(["forecast", "--scores", str(path), "--target", "big", "--metric", "brier", "--format", "json"], capsys)
    assert code == 0 and "describes" not in err, err  # a built-in metric: no such note


def test_a_plugin_metric_is_used(tmp_path, capsys) -> None:
    path = tmp_path / "widgets.csv"
    frame = family(extra=WIDGETS)
    frame.to_csv(path, index=False)
    plugins = write_plugin(tmp_path / "plugins", "widget_metric", WIDGET_METRIC)
    registry = load_registry(plugins)
    assert not registry.broken and registry.metric("widgets").upper == 100.0
    assert next(p for p in registry.plugins if p.name == "widget_metric").metrics == ["widgets"]
    code, out, err = run_cli(["--plugins-dir", str(plugins), "forecast", "--scores", str(path), "--target", "big",
                              "--metric", "widgets", "--method", "sigmoid", "--format", "json"], capsys)
    assert code == 0, err
    (row,) = json.loads(out)["rows"]
    assert row["status"] == STATUS_OK, row["reason"]
    assert 0 <= row["lower"] <= row["forecast"] <= row["upper"] <= 100  # percent, lower is better
    assert row["lower"] <= truth_at_target(frame, "widgets") <= row["upper"]


def test_plugin_metrics_follow_the_registry_rules(tmp_path) -> None:
    folder = write_plugin(tmp_path / "plugins", "shadow_brier", SHADOW_BRIER)
    write_plugin(folder, "not_a_metric", NOT_A_METRIC)
    registry = load_registry(folder)
    errors = {b.name: b.error for b in registry.broken}
    assert "metric 'brier' is a built-in name" in errors["shadow_brier"] and "replace=True" in errors["shadow_brier"]
    assert errors["not_a_metric"] == "TypeError: register_metrics got dict, expected capcast.metrics.Metric"
    assert registry.metric("brier").higher_is_better is False  # the built-in stands


# ------------------------------------------------------------------------ the width rule


def test_the_width_rule_is_relative_to_the_range_at_the_90_percent_equivalent() -> None:
    acc, brier, bpb = BUILTIN_BY_NAME["acc"], BUILTIN_BY_NAME["brier"], BUILTIN_BY_NAME["bpb_gold"]
    assert level_factor(0.9) == pytest.approx(1.0) and level_factor(0.5) == pytest.approx(1.6449 / 0.6745, rel=1e-3)
    # 0.6 of brier is 30% of its range [0, 2]: fine; the same width is 60 points of acc: too wide
    assert too_wide(Prediction(0.5, 0.2, 0.8, 0.9), brier, 0.9) is None
    reason = too_wide(Prediction(0.5, 0.2, 0.8, 0.9), acc, 0.9)
    assert reason.startswith("interval too wide to mean anything: 0.2 to 0.8 acc") and \
        "(width > 50% of the metric's range at 90%)" in reason
    # a 50% interval 30 points wide is 73 points at 90%: too wide; a 99% one 70 points wide is 45: fine
    assert "30% at 50%, 73% at 90%" in too_wide(Prediction(0.5, 0.35, 0.65, 0.5), acc, 0.5)
    assert too_wide(Prediction(0.5, 0.15, 0.85, 0.99), acc, 0.99) is None
    # a loss: against the forecast itself
    assert too_wide(Prediction(2.0, 1.8, 2.2, 0.9), bpb, 0.9) is None
    assert "of the forecast at 90%" in too_wide(Prediction(1.0, 0.7, 1.3, 0.9), bpb, 0.9)
    assert too_wide(Prediction(0.5, 0.2, 0.8, 0.9), acc, 0.9, max_width=0.7) is None  # max_width: relative, at 90%


GAUSS_LAWS = '''
from dataclasses import dataclass, field
import numpy as np
from scipy import stats
import capcast
from capcast.laws.base import Prediction

@dataclass(frozen=True)
class GaussFit:
    law: str
    sd: float
    params: dict = field(default_factory=lambda: {"mean": 0.5})
    cov: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)))
    def predict(self, target, level=0.9):
        half = float(stats.norm.ppf(0.5 + level / 2)) * self.sd
        return Prediction(mean=0.5, lower=0.5 - half, upper=0.5 + half, level=level)
    def summary(self):
        return f"{self.law}: 0.5 +- {self.sd} (oriented units)"

@dataclass(frozen=True)
class GaussLaw:
    name: str
    sd: float
    description: str = "a fixed normal forecast, in the oriented units the laws see"
    def fit(self, series):
        return GaussFit(law=self.name, sd=self.sd)

@capcast.hookimpl
def register_laws(register):
    register(GaussLaw("gauss_narrow", 0.14))  # 90% width 0.46 of the range: fine at every level
    register(GaussLaw("gauss_wide", 0.17))    # 90% width 0.56 of the range: too wide at every level
'''


@pytest.mark.parametrize("method, interval, status", [
    ("gauss_narrow", 0.9, STATUS_OK),
    ("gauss_narrow", 0.99, STATUS_OK),  # 1.44 of brier wide (72% of [0, 2]) but 46% at 90%: not refused
    ("gauss_wide", 0.9, STATUS_UNPREDICTABLE),
    ("gauss_wide", 0.5, STATUS_UNPREDICTABLE),  # 0.46 of brier wide (23% of [0, 2]) but 56% at 90%: refused
])
def test_the_width_rule_follows_the_interval_level(scores_csv, tmp_path, capsys, method, interval, status) -> None:
    plugins = write_plugin(tmp_path / "plugins", "gauss", GAUSS_LAWS)
    row = forecast_json(["--plugins-dir", str(plugins), "--scores", str(scores_csv), "--target", "big", "--metric", "brier",
                         "--method", method, "--interval", str(interval)], capsys)
    assert row["status"] == status, row["reason"]
    if status == STATUS_OK:  # oriented 0.5 is brier 1.0; the interval in brier units, twice the oriented width
        assert row["forecast"] == pytest.approx(1.0)
        assert row["upper"] - row["lower"] == pytest.approx(2 * (2 * 0.14) * stats.norm.ppf(0.5 + interval / 2))
    else:
        assert "(width > 50% of the metric's range at 90%)" in row["reason"]
