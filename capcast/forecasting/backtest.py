"""Backtests: hide each family's K largest model sizes, forecast them from the rest, score it.

    report = backtest_scores(frame, holdout_largest=2, methods=["auto", "sigmoid"])
    report.to_dict()   # {"methods": {name: {mae, max_error, coverage, n, unpredictable, failed}}, "rows": [...]}

MAE and max error are in score points (x100 the metric's own units: brier x100, bpb_gold x100);
coverage is the share of numeric forecasts whose interval holds the actual value. Forecasts,
intervals and actual values are in the metric's own units (a lower-is-better metric is oriented
for the laws and mapped back, see :mod:`capcast.forecasting.orient`). Each held-out run is forecast at its final checkpoint (the
most tokens), or at every checkpoint with ``all_steps``; no checkpoint of a held-out run is fitted.

Backtests at scale: ``workers=N`` spreads the families over N worker processes (chunks of
families; each worker fits its families' tasks as the serial loop would), and the rows come back
in the serial loop's order, so the report is the same table whichever ``workers``. Every family is
checked (sizes to hold out, checkpoints left to fit) before any fit starts. The progress bar
counts forecasts (family x task x method: one fit and its held-out targets). docs/speed.md
"Backtests at scale".
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

from capcast.errors import CapcastError
from capcast.forecasting.forecast import (
    MAX_INTERVAL_WIDTH, STATUS_FAILED, STATUS_OK, STATUS_UNPREDICTABLE, ForecastRow,
    COD_METHOD, check_fitting_frame, check_interval, check_metric, fit_frame_for, fit_law, law_for, metric_of, predict_row,
    tasks_to_forecast,
)
from capcast.laws.base import Target
from capcast.laws.schedule import attach_areas
from capcast import progress
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
    # mean signed error, forecast - actual, in points: above 0 the method forecasts too high (for a
    # lower-is-better metric, too high a loss); an MAE alone does not say which way it misses
    bias: float | None = None
    # why the other forecasts got no number: each reason's kind (its text before the first colon or
    # parenthesis, e.g. "no signal above chance") and how many forecasts it refused, most common first
    refusals: dict[str, int] = field(default_factory=dict)

    @property
    def answered(self) -> float | None:
        """The share of forecasts that got a number (not "not predictable yet", not failed)."""
        total = self.n + self.unpredictable + self.failed
        return self.n / total if total else None

    def to_dict(self) -> dict:
        return {**self.__dict__, "answered": self.answered}


def forecast_key(row: dict) -> tuple:
    """Which forecast a backtest row is, whatever the method: (family, model, task, metric, step)."""
    return (row["family"], row["model"], row["task"], row["metric"], row.get("step"))


def common_forecasts(rows: Iterable[dict], methods: Iterable[str]) -> set[tuple]:
    """The forecasts (:func:`forecast_key`) every one of ``methods`` answered with a number: the
    common set, where methods are compared on the same forecasts (one that abstains on the hard
    ones would look better than it is on its own)."""
    rows = list(rows)
    answered = [{forecast_key(r) for r in rows if r["method"] == m and r["status"] == STATUS_OK and r["actual"] is not None}
                for m in methods]
    return set.intersection(*answered) if answered else set()


@dataclass(frozen=True)
class PairedDifference:
    """``method`` less ``baseline`` in absolute error (points) on the forecasts both answered:
    the mean over fits of each fit's mean difference, and its standard error over fits. A fit is
    one (family, task, metric): its targets (the held-out sizes, their runs and checkpoints) share
    it, so they are not independent evidence of which method is better."""

    method: str
    baseline: str
    mean: float
    standard_error: float | None  # None with a single fit
    fits: int
    forecasts: int

    def describe(self) -> str:
        """One line, e.g. "auto - logacc-power: -0.80 pts in absolute error (standard error 0.41 over 5 fits, 9 forecasts)"."""
        se = "no standard error" if self.standard_error is None else f"standard error {self.standard_error:.2f}"
        return (f"{self.method} - {self.baseline}: {self.mean:+.2f} pts in absolute error ({se} over {self.fits} "
                f"fit{'s' if self.fits != 1 else ''}, {self.forecasts} forecasts)")

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def paired_difference(rows: Iterable[dict], method: str, baseline: str, keys: set[tuple] | None = None) -> PairedDifference | None:
    """:class:`PairedDifference` of ``method`` against ``baseline`` on ``keys`` (default: the
    forecasts both answered); None where there is none."""
    rows = list(rows)
    keys = common_forecasts(rows, (method, baseline)) if keys is None else keys
    error = {(r["method"], forecast_key(r)): abs(r["forecast"] - r["actual"]) * 100 for r in rows
             if r["method"] in (method, baseline) and forecast_key(r) in keys and r["status"] == STATUS_OK}
    per_fit: dict[tuple, list[float]] = {}
    for key in keys:
        if (method, key) in error and (baseline, key) in error:
            per_fit.setdefault((key[0], key[2], key[3]), []).append(error[(method, key)] - error[(baseline, key)])
    if not per_fit:
        return None
    means = np.array([np.mean(v) for v in per_fit.values()])
    se = float(np.std(means, ddof=1) / np.sqrt(len(means))) if len(means) > 1 else None
    return PairedDifference(method, baseline, float(means.mean()), se, len(means), sum(len(v) for v in per_fit.values()))


@dataclass(frozen=True)
class BacktestReport:
    methods: dict[str, MethodScore]
    rows: list[dict] = field(default_factory=list)

    def common_set(self) -> tuple[set[tuple], dict[str, MethodScore]]:
        """(the forecasts every method answered, each method's scores on them)."""
        keys = common_forecasts(self.rows, self.methods)
        return keys, {m: score_rows(r for r in self.rows if r["method"] == m and forecast_key(r) in keys) for m in self.methods}

    def against_first(self) -> dict[str, PairedDifference]:
        """Every other method's :class:`PairedDifference` against the first, on the common set."""
        names = list(self.methods)
        keys = common_forecasts(self.rows, names)
        out = {}
        for m in names[1:]:
            diff = paired_difference(self.rows, m, names[0], keys)
            if diff is not None:
                out[m] = diff
        return out

    def to_dict(self) -> dict:
        out = {"methods": {k: v.to_dict() for k, v in self.methods.items()}, "rows": self.rows}
        if len(self.methods) > 1:
            keys, common = self.common_set()
            out["common_set"] = {"forecasts": len(keys), "methods": {k: v.to_dict() for k, v in common.items()},
                                 "against_first": {k: v.to_dict() for k, v in self.against_first().items()}}
        return out

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=list(ROW_FIELDS))


def score_rows(rows: Iterable[dict]) -> MethodScore:
    rows = list(rows)
    ok = [r for r in rows if r["status"] == STATUS_OK and r["actual"] is not None]
    signed = np.array([r["forecast"] - r["actual"] for r in ok]) * 100
    errors = np.abs(signed)
    covered = [r["lower"] <= r["actual"] <= r["upper"] for r in ok]
    return MethodScore(
        mae=float(errors.mean()) if len(ok) else None, max_error=float(errors.max()) if len(ok) else None,
        coverage=float(np.mean(covered)) if ok else None, n=len(ok),
        unpredictable=sum(r["status"] == STATUS_UNPREDICTABLE for r in rows),
        failed=sum(r["status"] == STATUS_FAILED for r in rows),
        median_width=float(np.median([(r["upper"] - r["lower"]) * 100 for r in ok])) if ok else None,
        bias=float(signed.mean()) if len(ok) else None,
        refusals=refusal_kinds(r for r in rows if r["status"] != STATUS_OK),
    )


def refusal_kinds(rows: Iterable[dict]) -> dict[str, int]:
    """How many of ``rows`` (forecasts without a number) each kind of reason refused, most common
    first; a reason's kind is its text before the first colon or parenthesis."""
    counts: dict[str, int] = {}
    for r in rows:
        kind = (r.get("reason") or r["status"]).split(":")[0].split(" (")[0].strip()
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def held_out_sizes(family_frame: pd.DataFrame, holdout_largest: int, family: str) -> np.ndarray:
    """The ``holdout_largest`` largest model sizes (params) of one family; some must be left to fit."""
    sizes = np.sort(family_frame["params"].unique())
    if len(sizes) <= holdout_largest:
        raise CapcastError(f"family {family!r} has {len(sizes)} sizes; holding out {holdout_largest} leaves none to fit")
    return sizes[-holdout_largest:]


def held_out_targets(family_frame: pd.DataFrame, held_sizes: np.ndarray, all_steps: bool,
                     schedules: Mapping | None = None) -> list[tuple[Target, float | None]]:
    """(Target, step) for the final checkpoint of each held-out run (a run of a held-out size),
    or for every checkpoint of those runs with ``all_steps``; each target carries its run's
    schedule from ``schedules`` when there is one."""
    out = []
    held = family_frame[family_frame["params"].isin(held_sizes)].drop_duplicates(["run", "model", "tokens"])
    for run, run_rows in held.groupby("run"):
        chosen = run_rows[run_rows["tokens"] > 0] if all_steps else run_rows[run_rows["tokens"] == run_rows["tokens"].max()]
        for _, ck in chosen.sort_values("tokens").iterrows():
            out.append((Target(name=str(ck["model"]), params=float(ck["params"]), tokens=float(ck["tokens"]),
                               flops=float(ck["flops"]), schedule=(schedules or {}).get(str(run))), ck["step"]))
    return out


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or a Slurm job's
    share, not the machine's count): the CLI's default ``--workers``."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        return max(os.cpu_count() or 1, 1)


@dataclass(frozen=True)
class FamilyPlan:
    """One family's backtest, checked before any fit: its fitting checkpoints (whole held-out runs
    removed), its rows (for the actual values) and the held-out checkpoints to forecast."""

    family: str
    fit_frame: pd.DataFrame
    frame: pd.DataFrame
    targets: tuple[tuple[Target, float | None], ...]


@dataclass(frozen=True)
class BacktestSettings:
    """What every family's backtest shares (a worker process gets it once)."""

    tasks: tuple[str, ...]
    laws: dict
    metric: str
    described: object  # the metric's description (capcast.metrics.Metric)
    interval: float
    max_width: float
    schedules: Mapping | None = None  # run -> learning-rate schedule, for schedule-aware laws


def plan_family(fam_frame: pd.DataFrame, family: str, holdout_largest: int, all_steps: bool, max_step: int | None,
                schedules: Mapping | None = None) -> FamilyPlan:
    held_sizes = held_out_sizes(fam_frame, holdout_largest, family)
    # Whole runs are held out: no checkpoint of a held-out size's run is ever fitted.
    held_runs = set(fam_frame.loc[fam_frame["params"].isin(held_sizes), "run"])
    fit_frame = fit_frame_for(fam_frame[~fam_frame["run"].isin(held_runs)], max_step)
    check_fitting_frame(fit_frame, family)
    return FamilyPlan(family, fit_frame, fam_frame, tuple(held_out_targets(fam_frame, held_sizes, all_steps, schedules)))


def backtest_family(plan: FamilyPlan, settings: BacktestSettings, advance: Callable[[int], None] = lambda n: None) -> list[dict]:
    """The rows of one family, in order task, method, held-out target; ``advance(1)`` per fit."""
    rows = []
    for task in settings.tasks:
        series = attach_areas(build_series(plan.fit_frame, task, settings.metric), settings.schedules)
        truth = plan.frame[(plan.frame["task"] == task) & (plan.frame["metric"] == settings.metric)]
        truth = dict(zip(zip(truth["model"], truth["tokens"]), truth["value"]))
        for method, law in settings.laws.items():
            fitted = fit_law(series, law, settings.described)
            for target, step in plan.targets:
                actual = truth.get((target.name, target.tokens))
                if actual is None:
                    continue
                row = predict_row(series, law.name, fitted, target, settings.interval, actual, plan.family,
                                  settings.max_width, settings.described)
                rows.append(row_dict(row, method, step))
            advance(1)
    return rows


def backtest_scores(scores: pd.DataFrame | str, holdout_largest: int = 1, methods: Iterable[str] = ("auto",),
                    tasks: Iterable[str] | None = None, metric: str = "acc", interval: float = 0.9,
                    max_step: int | None = None, all_steps: bool = False, registry=None,
                    max_width: float = MAX_INTERVAL_WIDTH, families: Iterable[str] | None = None,
                    instances=None, workers: int = 1, schedules: Mapping | None = None) -> BacktestReport:
    """``instances``: per-instance records for the ``cod`` method (:mod:`capcast.cod.instances`).
    ``workers``: processes to spread the families over (1: this process); the rows are the same.
    ``schedules``: run name -> learning-rate schedule (a family spec's ``schedules``), for
    schedule-aware laws (``ladder-schedule``)."""
    frame = read_scores(scores)
    if holdout_largest < 1:
        raise CapcastError(f"--holdout-largest must be at least 1 (got {holdout_largest})")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise CapcastError(f"--workers must be a whole number, at least 1 (got {workers!r})")
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
    by_family = dict(tuple(frame.groupby("family", sort=False)))
    plans = [plan_family(by_family.get(fam, frame.iloc[0:0]), fam, holdout_largest, all_steps, max_step, schedules) for fam in fams]
    settings = BacktestSettings(tuple(tasks), laws, metric, described, interval, max_width, schedules)
    bar = ("backtest: forecasts", len(plans) * len(settings.tasks) * len(laws))  # family x task x method
    if min(workers, len(plans)) > 1:
        rows = _backtest_in_processes(plans, settings, min(workers, len(plans)), bar)
    else:
        with progress.counting(*bar) as advance:
            rows = [row for plan in plans for row in backtest_family(plan, settings, advance)]
    scores_by_method = {m: score_rows(r for r in rows if r["method"] == m) for m in methods}
    return BacktestReport(methods=scores_by_method, rows=rows)


_worker_work: tuple[list[FamilyPlan], BacktestSettings] | None = None  # a worker process's plans and settings


def _start_worker(plans: list[FamilyPlan], settings: BacktestSettings) -> None:
    global _worker_work
    progress.silence()  # the parent shows the bar
    _worker_work = (plans, settings)


def _backtest_chunk(first: int, stop: int) -> list[dict]:
    plans, settings = _worker_work
    return [row for plan in plans[first:stop] for row in backtest_family(plan, settings)]


def _backtest_in_processes(plans: list[FamilyPlan], settings: BacktestSettings, workers: int,
                           bar: tuple[str, int]) -> list[dict]:
    """The rows of every plan, from ``workers`` processes, in the order of ``plans``.

    Each process gets the plans and settings once (inherited where processes fork, as on Linux, so
    plugin laws and large tables need no pickling) and then fits chunks of families, named by their
    positions; a chunk small enough that the bar moves and the processes finish together."""
    size = max(1, min(10, math.ceil(len(plans) / (workers * 8))))
    chunks = [(first, min(first + size, len(plans))) for first in range(0, len(plans), size)]
    fits = len(settings.tasks) * len(settings.laws)
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") and "fork" in methods else "spawn")
    done: dict[int, list[dict]] = {}
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(plans, settings))
    try:
        # every chunk is submitted, so every process started, before the bar's thread runs: a
        # forked process then copies no lock that thread might hold
        futures = {pool.submit(_backtest_chunk, first, stop): i for i, (first, stop) in enumerate(chunks)}
        with progress.counting(*bar) as advance:
            for future in as_completed(futures):
                i = futures[future]
                done[i] = future.result()
                advance((chunks[i][1] - chunks[i][0]) * fits)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [row for i in range(len(chunks)) for row in done[i]]


def row_dict(row: ForecastRow, method: str, step) -> dict:
    """A backtest row (``ROW_FIELDS``): the forecast row, the method asked for and the step (None when unknown)."""
    out = {k: getattr(row, k) for k in ("family", "model", "task", "metric", "law", "forecast", "lower", "upper", "actual", "status", "reason")}
    out["method"] = method
    out["step"] = None if step is None or (isinstance(step, float) and np.isnan(step)) else int(step)
    return {k: out[k] for k in ROW_FIELDS}
