"""Without --metric, each task forecasts its own default metric (the registry's, else the table's
only one, else acc), said in a note; forecast and backtest write -o FILE like scores."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from capcast import api
from capcast.cli import main
from capcast.errors import CapcastError
from capcast.forecasting.task_metrics import task_metrics
from capcast.plugins.registry import load_registry

SIZES = [1e7, 3e7, 1e8, 3e8, 1e9, 3e9]


def _table(path=None) -> pd.DataFrame:
    """hellaswag (acc and acc_norm; registered default acc_norm), gen (pass_rate only, unregistered),
    plain (acc and brier, unregistered), other (brier and p_gold: no default)."""
    rows = []
    for i, n in enumerate(SIZES):
        common = dict(family="f", run=f"r{i}", model=f"m{i}", params=n, tokens=20 * n, n_items=1000)
        rows += [
            {**common, "task": "hellaswag", "metric": "acc", "value": 0.30 + 0.05 * i, "chance": 0.25},
            {**common, "task": "hellaswag", "metric": "acc_norm", "value": 0.32 + 0.08 * i, "chance": 0.25},
            {**common, "task": "gen", "metric": "pass_rate", "value": 0.02 + 0.03 * i, "chance": 0.0},
            {**common, "task": "plain", "metric": "acc", "value": 0.26 + 0.04 * i, "chance": 0.25},
            {**common, "task": "plain", "metric": "brier", "value": 0.74 - 0.04 * i, "chance": 0.25},
            {**common, "task": "other", "metric": "brier", "value": 0.74 - 0.04 * i, "chance": 0.25},
            {**common, "task": "other", "metric": "p_gold", "value": 0.26 + 0.04 * i, "chance": 0.25},
        ]
    frame = pd.DataFrame(rows)
    if path is not None:
        frame.to_csv(path, index=False)
    return frame


@pytest.fixture(scope="module")
def registry():
    reg = load_registry()  # the built-in standard benchmarks register hellaswag with default acc_norm
    assert reg.tasks["hellaswag"].default_metric == "acc_norm"
    return reg


def test_each_task_gets_its_default_and_the_rest_is_left_out(registry):
    chosen, left_out = task_metrics(_table(), None, registry)
    assert [(c.task, c.metric) for c in chosen] == [("gen", "pass_rate"), ("hellaswag", "acc_norm"), ("plain", "acc")]
    assert [c.why for c in chosen] == ["the table's only metric for it", "the task's default", "the fallback: no default known"]
    assert left_out == ["other"]
    with pytest.raises(CapcastError, match="task 'other' has several metrics .*pass --metric"):
        task_metrics(_table(), ["other"], registry)


def test_forecast_without_metric_forecasts_each_tasks_default_in_one_call(registry):
    results = api.forecast(scores=_table(), target="m5", method="linear", registry=registry)
    assert [(r.row.task, r.row.metric) for r in results] == [("gen", "pass_rate"), ("hellaswag", "acc_norm"), ("plain", "acc")]
    # the same numbers as one --metric call per task
    for r in results:
        alone = api.forecast(scores=_table(), target="m5", method="linear", metric=r.row.metric, tasks=[r.row.task], registry=registry)
        assert alone[0].row.forecast == pytest.approx(r.row.forecast) and alone[0].row.actual == r.row.actual


def test_backtest_without_metric_scores_every_tasks_default(registry):
    report = api.backtest(scores=_table(), methods=["linear"], registry=registry)
    assert sorted({(r["task"], r["metric"]) for r in report.rows}) == [("gen", "pass_rate"), ("hellaswag", "acc_norm"), ("plain", "acc")]
    per_metric = [api.backtest(scores=_table(), methods=["linear"], metric=m, tasks=[t], registry=registry)
                  for t, m in (("gen", "pass_rate"), ("hellaswag", "acc_norm"), ("plain", "acc"))]
    assert report.methods["linear"].n == sum(r.methods["linear"].n for r in per_metric) == 3


def test_cli_notes_the_metrics_and_writes_o_files(tmp_path, capsys):
    scores = tmp_path / "scores.csv"
    _table(scores)
    out = tmp_path / "forecast.json"
    with pytest.raises(SystemExit) as done:
        main(["forecast", "--scores", str(scores), "--target", "m5", "--method", "linear", "--format", "json", "-o", str(out)])
    assert done.value.code in (0, None)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "note: no --metric: each task forecasts its own default metric: gen pass_rate (the table's only metric for it)" in captured.err
    assert "left out (several metrics, none a default; pass --metric): other" in captured.err
    rows = json.loads(out.read_text())["rows"]
    assert {(r["task"], r["metric"]) for r in rows} == {("gen", "pass_rate"), ("hellaswag", "acc_norm"), ("plain", "acc")}
    for fmt in ("csv", "table"):
        path = tmp_path / f"backtest.{fmt}"
        with pytest.raises(SystemExit) as done:
            main(["backtest", "--scores", str(scores), "--methods", "linear", "--metric", "acc", "--format", fmt, "-o", str(path)])
        assert done.value.code in (0, None)
        assert capsys.readouterr().out == ""
        text = path.read_text()
        assert ("linear" in text) and (("hellaswag" in text) if fmt == "csv" else ("MAE" in text))
    with pytest.raises(SystemExit) as done:
        main(["forecast", "--scores", str(scores), "--target", "m5", "-o", str(tmp_path)])
    assert done.value.code == 2
    assert "is a folder; give a file name" in capsys.readouterr().err
