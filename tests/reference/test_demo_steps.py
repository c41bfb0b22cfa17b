"""The demo's forecast, backtest and leaderboard steps on the committed ladder's full scores table
(docs/reference-scores.csv, the demo's own output on the committed weights): no evaluation needed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from capcast.forecasting.forecast import STATUS_OK, STATUS_UNPREDICTABLE
from capcast.leaderboard.published import with_runs
from capcast.reference.demo import forecast_target
from capcast.reference.demo_steps import backtest_below_target, leaderboard_site
from capcast.reference.ladder import default_ladder_dir
from capcast.reference.tasks import reference_tasks
from capcast.spec import load_family

LADDER = default_ladder_dir()
SCORES = Path(__file__).resolve().parents[2] / "docs" / "reference-scores.csv"


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return with_runs(pd.read_csv(SCORES))


@pytest.fixture(scope="module")
def metrics() -> dict[str, str]:
    return {t.name: t.default_metric for t in reference_tasks()}


@pytest.fixture(scope="module")
def forecasts(scores, metrics):
    rows, _, fitted = forecast_target(scores, LADDER, metrics)
    return rows, fitted


def test_the_scores_table_is_the_whole_committed_ladder(scores, metrics):
    everything = {c.name for c in load_family(LADDER / "ladder.yaml").checkpoints}
    assert set(scores["model"]) == everything and set(scores["task"]) == set(metrics)


def test_forecast_step_on_the_committed_ladder_answers_or_says_why(forecasts, metrics):
    rows, fitted = forecasts
    spec = load_family(LADDER / "family.yaml")
    assert fitted == [c.name for c in spec.checkpoints]  # every fitting checkpoint, none of size l
    assert [r.task for r in rows] == list(metrics)
    for row in rows:
        assert row.model == spec.target.name and row.actual is not None
        assert row.status in {STATUS_OK, STATUS_UNPREDICTABLE}, (row.task, row.status, row.reason)
        if row.status == STATUS_OK:
            assert row.lower <= row.actual <= row.upper, (row.task, row.lower, row.actual, row.upper)
        else:
            assert row.forecast is None and row.reason


@pytest.mark.xfail(strict=True, reason=(
    "issue 17, not done: on the committed mini-ladder every skill switches on between m and l (6.4x m's compute), "
    "so no task is predictable from xs, s and m; the ladder needs a size between m and l or a closer target"))
def test_forecast_step_gives_numbers_for_at_least_five_tasks(forecasts):
    rows, _ = forecasts
    assert sum(r.status == STATUS_OK for r in rows) >= 5


def test_backtest_step_holds_out_m_and_never_sees_size_l(scores, metrics):
    summary = backtest_below_target(scores, LADDER, metrics)
    assert summary.reason is None
    assert summary.held_out == ["m-s0-step977", "m-s1-step977"]
    assert {n.split("-")[0] for n in summary.fitted} == {"xs", "s"} and len(summary.fitted) == 12
    assert len(summary.rows) == 2 * len(metrics)
    assert {r["method"] for r in summary.rows} == {"auto"}
    score = summary.score
    assert score.failed == 0 and score.n + score.unpredictable == len(summary.rows)
    truth = scores.set_index(["model", "task"])["value"]
    for row in summary.rows:
        assert row["actual"] == pytest.approx(truth[(row["model"], row["task"])])
        if row["status"] == STATUS_OK:
            assert row["lower"] <= row["forecast"] <= row["upper"]
        else:
            assert row["status"] == STATUS_UNPREDICTABLE and row["reason"]


def test_leaderboard_step_builds_the_site(scores, tmp_path):
    index, reason = leaderboard_site(scores, tmp_path / "leaderboard")
    assert reason == "" and index == tmp_path / "leaderboard" / "site" / "index.html"
    html = index.read_text()
    assert "capcast-mini: forecast leaderboard" in html and "l-s0-step2441" in html
    assert (tmp_path / "leaderboard" / "registry.jsonl").read_text().count('"kind":"resolution"') >= 1
    # Without the target there is nothing to forecast: no site, and the reason.
    index, reason = leaderboard_site(scores[scores["model"] != "l-s0-step2441"], tmp_path / "none")
    assert index is None and "l-s0-step2441" in reason and not (tmp_path / "none").exists()
