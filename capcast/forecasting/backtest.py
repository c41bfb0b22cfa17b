"""Backtests: hide each family's K largest model sizes, forecast them from the rest, score it.

    report = backtest_scores(frame, holdout_largest=2, methods=["auto", "sigmoid"])
    report.to_dict()   # {"methods": {name: {mae, max_error, coverage, n, unpredictable, failed}}, "rows": [...]}

MAE and max error are in score points (x100 the metric's own units: brier x100, bpb_gold x100);
coverage is the share of numeric forecasts whose interval holds the actual value. Forecasts,
intervals and actual values are in the metric's own units (a lower-is-better metric is oriented
for the laws and mapped back, see :mod:`capcast.forecasting.orient`). Each held-out run is forecast at its final checkpoint (the
most tokens), or at every checkpoint with ``all_steps``; no checkpoint of a held-out run is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd

from capcast.errors import CapcastError
from capcast.forecasting.forecast import (
    MAX_INTERVAL_WIDTH, STATUS_FAILED, STATUS_OK, STATUS_UNPREDICTABLE, ForecastRow,
    COD_METHOD, check_fitting_frame, check_interval, check_metric, fit_frame_for, fit_law, law_for, metric_of, predict_row,
    tasks_to_forecast,
)
from capcast.laws.base import Target
from capcast.progress import track
from capcast.tables.scores import build_series, read_scores

ROW_FIELDS = ("family", "model", "task", "metric", "method", "law", "step", "forecast", "lower", "upper", "actual", "status", "reason")


@dataclass(frozen=True)
class MethodScore:
    mae: float | None
    max_error: float | None
    coverage: float | None
    n: int
    unpredictable: int
    failed: int
    median_width: float | None = None  # points (score x 100), over the numeric forecasts

    @property
    def answered(self) -> float | None:
        """The share of forecasts that got a number (not "not predictable yet", not failed)."""
        total = self.n + self.unpredictable + self.failed
        return self.n / total if total else None

    def to_dict(self) -> dict:
        return {**self.__dict__, "answered": self.answered}


@dataclass(frozen=True)
class BacktestReport:
    methods: dict[str, MethodScore]
    rows: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"methods": {k: v.to_dict() for k, v in self.methods.items()}, "rows": self.rows}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(ROW_FIELDS))


def score_rows(rows: Iterable[dict]) -> MethodScore:
    rows = list(rows)
    ok = [r for r in rows if r["status"] == STATUS_OK and r["actual"] is not None]
    errors = np.array([abs(r["forecast"] - r["actual"]) for r in ok]) * 100
    covered = [r["lower"] <= r["actual"] <= r["upper"] for r in ok]
    return MethodScore(
        mae=float(errors.mean()) if len(ok) else None, max_error=float(errors.max()) if len(ok) else None,
        coverage=float(np.mean(covered)) if ok else None, n=len(ok),
        unpredictable=sum(r["status"] == STATUS_UNPREDICTABLE for r in rows),
        failed=sum(r["status"] == STATUS_FAILED for r in rows),
        median_width=float(np.median([(r["upper"] - r["lower"]) * 100 for r in ok])) if ok else None,
    )


def held_out_sizes(family_frame: pd.DataFrame, holdout_largest: int, family: str) -> np.ndarray:
    """The ``holdout_largest`` largest model sizes (params) of one family; some must be left to fit."""
    sizes = np.sort(family_frame["params"].unique())
    if len(sizes) <= holdout_largest:
        raise CapcastError(f"family {family!r} has {len(sizes)} sizes; holding out {holdout_largest} leaves none to fit")
    return sizes[-holdout_largest:]


def held_out_targets(family_frame: pd.DataFrame, held_sizes: np.ndarray, all_steps: bool) -> list[tuple[Target, float | None]]:
    """(Target, step) for the final checkpoint of each held-out run (a run of a held-out size),
    or for every checkpoint of those runs with ``all_steps``."""
    out = []
    held = family_frame[family_frame["params"].isin(held_sizes)].drop_duplicates(["run", "model", "tokens"])
    for _, run_rows in held.groupby("run"):
        chosen = run_rows[run_rows["tokens"] > 0] if all_steps else run_rows[run_rows["tokens"] == run_rows["tokens"].max()]
        for _, ck in chosen.sort_values("tokens").iterrows():
            out.append((Target(name=str(ck["model"]), params=float(ck["params"]), tokens=float(ck["tokens"]),
                               flops=float(ck["flops"])), ck["step"]))
    return out


def backtest_scores(scores: pd.DataFrame | str, holdout_largest: int = 1, methods: Iterable[str] = ("auto",),
                    tasks: Iterable[str] | None = None, metric: str = "acc", interval: float = 0.9,
                    max_step: int | None = None, all_steps: bool = False, registry=None,
                    max_width: float = MAX_INTERVAL_WIDTH, families: Iterable[str] | None = None,
                    instances=None) -> BacktestReport:
    """``instances``: per-instance records for the ``cod`` method (:mod:`capcast.cod.instances`)."""
    frame = read_scores(scores)
    if holdout_largest < 1:
        raise CapcastError(f"--holdout-largest must be at least 1 (got {holdout_largest})")
    check_interval(interval)
    check_metric(frame, metric)
    if registry is None:
        from capcast.plugins.registry import load_registry

        registry = load_registry()
    methods = list(methods)
    for m in methods:  # an unknown law is an error before anything runs
        if m != COD_METHOD:
            registry.law(m)
    described = metric_of(frame, metric, registry)
    laws = {m: law_for(m, described, registry, instances) for m in methods}
    tasks = tasks_to_forecast(frame, tasks, metric)
    fams = list(families) if families else sorted(frame["family"].unique())
    rows: list[dict] = []
    for fam in track(fams, "backtest: families"):
        fam_frame = frame[frame["family"] == fam]
        held_sizes = held_out_sizes(fam_frame, holdout_largest, fam)
        # Whole runs are held out: no checkpoint of a held-out size's run is ever fitted.
        held_runs = set(fam_frame.loc[fam_frame["params"].isin(held_sizes), "run"])
        fit_frame = fit_frame_for(fam_frame[~fam_frame["run"].isin(held_runs)], max_step)
        check_fitting_frame(fit_frame, fam)
        targets = held_out_targets(fam_frame, held_sizes, all_steps)
        for task in track(tasks, f"backtest {fam}: tasks"):
            series = build_series(fit_frame, task, metric)
            truth = fam_frame[(fam_frame["task"] == task) & (fam_frame["metric"] == metric)]
            truth = dict(zip(zip(truth["model"], truth["tokens"]), truth["value"]))
            for method, law in laws.items():
                fitted = fit_law(series, law, described)
                for target, step in targets:
                    actual = truth.get((target.name, target.tokens))
                    if actual is None:
                        continue
                    row = predict_row(series, law.name, fitted, target, interval, actual, fam, max_width, described)
                    rows.append(row_dict(row, method, step))
    scores_by_method = {m: score_rows(r for r in rows if r["method"] == m) for m in methods}
    return BacktestReport(methods=scores_by_method, rows=rows)


def row_dict(row: ForecastRow, method: str, step) -> dict:
    """A backtest row (``ROW_FIELDS``): the forecast row, the method asked for and the step (None when unknown)."""
    out = {k: getattr(row, k) for k in ("family", "model", "task", "metric", "law", "forecast", "lower", "upper", "actual", "status", "reason")}
    out["method"] = method
    out["step"] = None if step is None or (isinstance(step, float) and np.isnan(step)) else int(step)
    return {k: out[k] for k in ROW_FIELDS}
