"""Forecasts and backtests from a samples table (``capcast forecast/backtest --samples FILE``).

Task-level laws (``passuntil``, ``passuntil_compute``, or any registered law) see the table as a
scores table with metric ``pass_rate`` (the mean per-instance estimate) and go through
:mod:`capcast.forecasting.forecast` / :mod:`capcast.forecasting.backtest` like any other scores. ``passuntil_instance``
fits one law per instance (:func:`capcast.laws.passuntil.fit_instances`), so it is handled here.

The scores table leaves ``n_items`` empty on purpose: the noise of a PassUntil rate is set by
the samples drawn, not by the number of instances, and a binomial-over-instances error would
call a well-measured 1e-3 "no signal".
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from capcast.errors import CapcastError, describe, note
from capcast.forecasting.forecast import STATUS_FAILED, STATUS_OK, STATUS_UNPREDICTABLE, ForecastResult, ForecastRow, fit_frame_for
from capcast.laws.base import NotPredictable, Target
from capcast.laws.passuntil import fit_instances
from capcast.tables.samples import instance_rates, read_samples, task_table, validate_samples

INSTANCE_METHOD = "passuntil_instance"
METRIC = "pass_rate"


def load_samples(samples: pd.DataFrame | str | Path) -> pd.DataFrame:
    return validate_samples(samples) if isinstance(samples, pd.DataFrame) else read_samples(samples)


def samples_to_scores(samples: pd.DataFrame, estimator: str = "unbiased") -> pd.DataFrame:
    """The scores table (metric ``pass_rate``, chance 0) of a validated samples table."""
    table = task_table(samples, estimator=estimator)
    return pd.DataFrame(
        {
            "family": table["family"], "run": table["run"], "model": table["model"], "params": table["params"], "tokens": table["tokens"],
            "flops": table["flops"], "step": table["step"], "task": table["task"], "metric": METRIC,
            "value": table["pass_rate"], "n_items": np.nan, "chance": 0.0,
        }
    )


def _final_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's final checkpoint (most tokens): instance laws on N use final checkpoints only."""
    last = frame.groupby(["family", "run"])["tokens"].transform("max")
    return frame[frame["tokens"] == last]


def instance_forecast(
    samples: pd.DataFrame, target: Target, task: str, family: str, interval: float, actual: float | None,
) -> ForecastRow:
    """Forecast ``target`` on ``task`` with per-instance PassUntil laws fitted on ``samples``
    (already restricted to the fitting checkpoints)."""

    def row(status, reason, mean=None, lower=None, upper=None):
        return ForecastRow(family=family, model=target.name, task=task, metric=METRIC, law=INSTANCE_METHOD, forecast=mean,
                           lower=lower, upper=upper, actual=actual, status=status, reason=reason)

    sub = _final_rows(samples[(samples["family"] == family) & (samples["task"] == task)])
    try:
        if target.params is None:
            raise NotPredictable("the target has no params; instance laws run on N")
        fit = fit_instances(np.log(sub["params"].to_numpy(float)), sub["doc_id"].to_numpy(), instance_rates(sub))
        pred = fit.predict(target, level=interval)
    except NotPredictable as exc:
        return row(STATUS_UNPREDICTABLE, str(exc))
    except Exception as exc:  # never let one task take the others down
        return row(STATUS_FAILED, describe(exc))
    return row(STATUS_OK, fit.summary(), pred.mean, pred.lower, pred.upper)


def _actual(samples: pd.DataFrame, family: str, target: Target, task: str) -> float | None:
    """The measured pass rate of the target checkpoint (its model name at its tokens), if known."""
    if not target.name:
        return None
    rows = samples[(samples["family"] == family) & (samples["model"] == target.name) & (samples["task"] == task)]
    if target.tokens is not None and rows["tokens"].nunique() > 1:
        rows = rows[rows["tokens"] == target.tokens]
    if rows.empty:
        return None
    table = task_table(rows)
    return float(table["pass_rate"].iloc[0])


def forecast_samples(
    samples: pd.DataFrame | str | Path, target: str | Target, tasks: Iterable[str] | None = None, method: str = "passuntil",
    interval: float = 0.9, max_step: int | None = None, registry=None, interpolate: bool = False,
) -> list[ForecastResult]:
    """Forecast ``target`` from a samples table: one result per (family, task). Like every
    forecast, the fit never sees the target's run, nor checkpoints at or above the target's
    compute unless ``interpolate``."""
    from capcast.forecasting.forecast import below_target, not_fitted_above, resolve_target, run_forecasts, without_runs

    frame = load_samples(samples)
    scores = samples_to_scores(frame)
    if method != INSTANCE_METHOD:
        return run_forecasts(scores, target, tasks, METRIC, method, interval, max_step, registry, interpolate=interpolate)
    found = resolve_target(scores, target)
    resolved, family = found.target, found.family
    all_tasks = sorted(frame["task"].unique())
    task_list = list(tasks) if tasks else all_tasks
    unknown = [t for t in task_list if t not in all_tasks]
    if unknown:
        raise CapcastError(f"task(s) {', '.join(unknown)} are not in the samples table; available: {', '.join(all_tasks)}")
    fit_scores = fit_frame_for(without_runs(scores, found.runs), max_step)  # never the target's run
    fit_scores, dropped = below_target(fit_scores, resolved, interpolate)
    if dropped:
        note(not_fitted_above(dropped))
    results = []
    for fam in [family] if family else sorted(fit_scores["family"].unique()):
        fam_fit = fit_scores[fit_scores["family"] == fam]
        fam_samples = frame[frame["family"] == fam]
        keep = fam_samples.merge(fam_fit[["run", "model", "tokens"]].drop_duplicates(), on=["run", "model", "tokens"])
        for task in task_list:
            actual = _actual(frame, fam, resolved, task)
            row = instance_forecast(keep, resolved, task, fam, interval, actual)
            results.append(ForecastResult(row=row, series=None, fit=None, target=resolved))
    return results


def backtest_samples(
    samples: pd.DataFrame | str | Path, holdout_largest: int = 1, methods: Iterable[str] = ("passuntil",),
    tasks: Iterable[str] | None = None, interval: float = 0.9, max_step: int | None = None, registry=None,
    families: Iterable[str] | None = None,
):
    """Hide each family's largest sizes, forecast their final checkpoints, score every method."""
    from capcast.forecasting.backtest import BacktestReport, backtest_scores, held_out_sizes, row_dict, score_rows

    frame = load_samples(samples)
    scores = samples_to_scores(frame)
    methods = list(methods)
    task_methods = [m for m in methods if m != INSTANCE_METHOD]
    report = (
        backtest_scores(scores, holdout_largest, task_methods, tasks, METRIC, interval, max_step, False, registry, families=families)
        if task_methods
        else BacktestReport(methods={}, rows=[])
    )
    if INSTANCE_METHOD not in methods:
        return report
    rows = list(report.rows)
    for fam in list(families) if families else sorted(frame["family"].unique()):
        fam_samples = frame[frame["family"] == fam]
        held_sizes = held_out_sizes(fam_samples, holdout_largest, fam)
        held = fam_samples[fam_samples["params"].isin(held_sizes)]
        fit_part = fit_frame_for(fam_samples[~fam_samples["params"].isin(held_sizes)], max_step)
        for task in list(tasks) if tasks else sorted(fam_samples["task"].unique()):
            for _, group in _final_rows(held[held["task"] == task]).groupby(["run", "model"]):
                first = group.iloc[0]
                target = Target(name=str(first["model"]), params=float(first["params"]), tokens=float(first["tokens"]),
                                flops=float(first["flops"]))
                row = instance_forecast(fit_part, target, task, fam, interval, _actual(frame, fam, target, task))
                rows.append(row_dict(row, INSTANCE_METHOD, first["step"]))
    scored = {m: score_rows(r for r in rows if r["method"] == m) for m in methods}
    return BacktestReport(methods=scored, rows=rows)
