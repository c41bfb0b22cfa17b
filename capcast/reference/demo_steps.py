"""The demo's later steps, each a library function over the same scores table and store:

- :func:`backtest_below_target`: the same method (``auto``) as the demo's forecast, backtested on
  the ladder one size down: ``family.yaml``'s fitting checkpoints only, their largest size held out
  (so nothing of the target's size is ever used), scored against the held-out actuals;
- :func:`cod_subsets`: COD's predictable subset per task that has per-instance records in the
  store (multiple-choice choices or sampled generations), forecasting the target from
  ``family.yaml``'s sizes; a task COD refuses keeps its one-line reason;
- :func:`leaderboard_site`: the mini-ladder leaderboard (``capcast.leaderboard.published``) built
  from the demo's own scores table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capcast.errors import CapcastError

METHOD = "auto"  # the demo's forecast method, and so the backtest's


@dataclass
class BacktestSummary:
    """``auto`` on the ladder one size down: fitted sizes, held-out checkpoints, rows and their score."""

    fitted: list[str] = field(default_factory=list)  # checkpoint names fitted
    held_out: list[str] = field(default_factory=list)  # the held-out final checkpoints (forecast targets)
    rows: list[dict] = field(default_factory=list)  # capcast backtest rows (task, model, forecast, lower, upper, actual, status, reason)
    score: object | None = None  # capcast.forecasting.backtest.MethodScore over the rows
    reason: str | None = None  # why no backtest ran (e.g. fewer than two sizes to fit)


@dataclass(frozen=True)
class CODRow:
    """COD on one task: the predictable subset and, when COD forecasts, the target's forecast."""

    task: str
    metric: str | None
    status: str  # "ok", "not predictable yet", or "skipped"
    reason: str = ""
    instances: int = 0
    subset: int = 0
    clusters: int = 0
    kept: int = 0
    forecast: float | None = None  # the full benchmark's forecast through the subset and mapping
    lower: float | None = None
    upper: float | None = None
    subset_forecast: float | None = None
    actual: float | None = None


def backtest_below_target(scores: pd.DataFrame, ladder: Path, metrics: dict[str, str], interval: float = 0.9) -> BacktestSummary:
    """Backtest :data:`METHOD` on ``family.yaml``'s fitting checkpoints with their largest size held out."""
    from capcast.forecasting.backtest import backtest_scores, score_rows
    from capcast.spec import load_family

    spec = load_family(ladder / "family.yaml")
    frame = scores[scores["model"].isin({c.name for c in spec.checkpoints})]
    summary = BacktestSummary(fitted=[])
    if frame.empty:
        summary.reason = "none of family.yaml's fitting checkpoints was evaluated"
        return summary
    rows: list[dict] = []
    try:
        for metric in dict.fromkeys(metrics.values()):
            tasks = [t for t, m in metrics.items() if m == metric and t in set(frame["task"])]
            if tasks:
                rows += backtest_scores(frame, holdout_largest=1, methods=[METHOD], tasks=tasks, metric=metric, interval=interval).rows
    except CapcastError as exc:
        summary.reason = str(exc)
        return summary
    largest = frame["params"].max()
    summary.held_out = sorted({r["model"] for r in rows})
    summary.fitted = sorted(set(frame.loc[frame["params"] < largest, "model"]), key=list(frame["model"].unique()).index)
    summary.rows = rows
    summary.score = score_rows(rows)
    return summary


def cod_subsets(store: Path, scores: pd.DataFrame, ladder: Path, metrics: dict[str, str], target: str | None, out: Path,
                bootstrap: int = 100, interval: float = 0.9) -> list[CODRow]:
    """COD per task with per-instance records in ``store``, fitted on ``family.yaml``'s sizes only."""
    from capcast.cod.commands import cluster_tasks, read_instances
    from capcast.reference.ladder import FAMILY_NAME
    from capcast.spec import load_family

    if target is None or target not in set(scores["model"]):
        return [CODRow(task=t, metric=None, status="skipped", reason="the target was not evaluated, so there is nothing to forecast")
                for t in metrics]
    spec = load_family(ladder / "family.yaml")
    fitted = {c.name for c in spec.checkpoints}
    max_params = max((c.params for c in spec.checkpoints if c.name in set(scores["model"])), default=None)
    try:
        instances = read_instances(store=store, family=FAMILY_NAME)
    except CapcastError as exc:
        return [CODRow(task=t, metric=None, status="skipped", reason=str(exc)) for t in metrics]
    with_records = set(instances["task"])
    done = _cod_by_metric(store, [t for t in metrics if t in with_records], metrics, target, out, max_params, sorted(fitted),
                          bootstrap, interval)
    rows = []
    for task in metrics:
        if task not in with_records:
            rows.append(CODRow(task=task, metric=None, status="skipped", reason="no per-instance records in the store"))
            continue
        try:
            # the forecast table's metric, so COD's number stands beside the forecast's
            (result,) = done.get(task) or cluster_tasks(store=store, tasks=[task], family=FAMILY_NAME, target=target, out=out,
                                                        metric=metrics[task], max_params=max_params, models=sorted(fitted),
                                                        anchors=None, bootstrap=bootstrap, level=interval)
        except CapcastError as exc:
            rows.append(CODRow(task=task, metric=None, status="not predictable yet", reason=str(exc)))
            continue
        unfitted = set(result.checkpoints["model"]) - fitted
        if unfitted:  # never: models= keeps family.yaml's checkpoints only
            raise CapcastError(f"COD on {task} fitted {sorted(unfitted)}, outside family.yaml; this is a capcast bug")
        forecast = result.forecast or {}
        counts = result.counts()
        rows.append(CODRow(
            task=task, metric=result.metric, status=forecast.get("status", "not predictable yet"), reason=forecast.get("reason", ""),
            instances=counts["instances"], subset=counts["subset"], clusters=len(result.clusters), kept=len(result.kept),
            forecast=forecast.get("forecast"), lower=forecast.get("lower"), upper=forecast.get("upper"),
            subset_forecast=forecast.get("subset_forecast"), actual=forecast.get("actual"),
        ))
    return rows


def _cod_by_metric(store: Path, tasks: list[str], metrics: dict[str, str], target: str, out: Path, max_params,
                   models: list[str], bootstrap: int, interval: float) -> dict[str, tuple]:
    """COD on the tasks of each metric in one call (the store's records are read and checked once
    per call, not once per task: a third of the step). A metric whose call fails (one task COD
    refuses outright) is left out: its tasks are then fitted one by one, each keeping its reason."""
    from capcast.cod.commands import cluster_tasks
    from capcast.reference.ladder import FAMILY_NAME

    done: dict[str, tuple] = {}
    for metric in dict.fromkeys(metrics[t] for t in tasks):
        mine = [t for t in tasks if metrics[t] == metric]
        try:
            results = cluster_tasks(store=store, tasks=mine, family=FAMILY_NAME, target=target, out=out, metric=metric,
                                    max_params=max_params, models=models, anchors=None, bootstrap=bootstrap, level=interval)
        except CapcastError:
            continue
        done.update({t: (r,) for t, r in zip(mine, results)})
    return done


def leaderboard_site(scores: pd.DataFrame, folder: Path) -> tuple[Path | None, str]:
    """Build the mini-ladder leaderboard from ``scores`` into ``folder``: (its index.html, "") or (None, why not)."""
    from capcast.leaderboard.published import MINI_TARGET, build_mini_ladder

    if MINI_TARGET not in set(scores["model"]):
        return None, f"the leaderboard forecasts {MINI_TARGET}, which was not evaluated"
    try:
        return build_mini_ladder(scores, folder), ""
    except CapcastError as exc:
        return None, str(exc)


__all__ = ["BacktestSummary", "CODRow", "METHOD", "backtest_below_target", "cod_subsets", "leaderboard_site"]
