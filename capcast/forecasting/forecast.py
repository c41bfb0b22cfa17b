"""Forecast a target model's scores from a scores table: the library behind ``capcast forecast``.

    rows = forecast_scores(scores_df, target="pythia-12b", tasks=["arc_easy"], metric="acc")
    rows = forecast_scores(scores_df, Target(name="big", params=7e9, tokens=2e12))

Every requested task yields one :class:`ForecastRow`: ``ok`` with a number and an interval,
``not predictable yet`` with the reason (no signal above chance, interval too wide, data that
cannot support the law), or ``failed`` when a (third-party) law crashed. No task is dropped.

The metric's description (:class:`capcast.metrics.Metric`: direction, bounds, scale) steers the
forecast: the series is oriented for the laws (:mod:`capcast.forecasting.orient`), the signal test
is the score's ("above chance, rising") or the loss's ("falling with compute"), ``auto`` on a loss
is the ``power`` law, and the width rule measures the interval against the metric's range (a
score) or the forecast's magnitude (a loss), at its 90%-equivalent width.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from scipy import stats

from capcast.errors import CapcastError, describe, note
from capcast.forecasting.orient import orientation_for, relabel
from capcast.laws.base import LawFit, NotPredictable, Prediction, Series, Target
from capcast.laws.schedule import attach_areas, stretched
from capcast.laws.signal import check_loss_signal, check_signal
from capcast.metrics import INFERRED, Metric, find_metric, infer_metric, resolve_metric
from capcast.schema import default_run
from capcast.progress import track
from capcast.tables.scores import build_series, note_missing_chance, read_scores, tasks_with_metric

STATUS_OK = "ok"
STATUS_UNPREDICTABLE = "not predictable yet"
STATUS_FAILED = "failed"
# A 90% interval wider than half the metric's range (a score: 50 points of acc, 1.0 of brier)
# or of the forecast itself (a loss) says little beyond the range itself. Other levels are
# compared at their 90%-equivalent width: width x z(0.90) / z(level), normal quantiles.
# Chosen on the development data (Pythia, mini-ladder): at 0.3 Pythia's lambada forecasts
# (intervals of 40 and 47 points, both covering) were refused; see benchmarks/forecast_accuracy.md.
MAX_RELATIVE_WIDTH = 0.5
MAX_INTERVAL_WIDTH = MAX_RELATIVE_WIDTH  # the old name (``max_width`` arguments keep working)
WIDTH_LEVEL = 0.9


@dataclass(frozen=True)
class ForecastRow:
    family: str | None
    model: str | None  # target name, or None
    task: str
    metric: str
    law: str
    forecast: float | None
    lower: float | None
    upper: float | None
    actual: float | None
    status: str  # "ok" | "not predictable yet" | "failed"
    reason: str
    # the checkpoints the law was given to fit (model names, in compute order)
    fitted: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["fitted"] = list(self.fitted)
        return out


@dataclass(frozen=True)
class ForecastResult:
    """A row plus what produced it (for plots and backtests)."""

    row: ForecastRow
    series: Series | None
    fit: LawFit | None
    target: Target


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def fit_frame_for(frame: pd.DataFrame, max_step: int | None) -> pd.DataFrame:
    if max_step is None:
        return frame
    return frame[frame["step"].isna() | (frame["step"] <= max_step)]


@dataclass(frozen=True)
class ResolvedTarget:
    """The model to forecast, as found in a table.

    ``rows``: the table's rows of the target checkpoint (for the actual score; empty for a model
    not in the table). ``runs``: the (family, run) pairs the fit must never see: the target's own
    training run, every checkpoint of it, not only the target checkpoint.
    """

    target: Target
    family: str | None
    rows: pd.DataFrame
    runs: frozenset[tuple[str, str]]


def resolve_target(frame: pd.DataFrame, target: str | Target, table: str = "scores table") -> ResolvedTarget:
    """Find ``target`` (a checkpoint or run name in the table, or an explicit :class:`Target`).

    A name matches a ``model`` first, then a ``run``; either way the target is that run's
    final checkpoint when the name covers several (the most tokens). ``table`` names the table
    in the error for an unknown name (COD passes its per-instance records).
    """
    if isinstance(target, Target):
        if target.compute is None:
            raise CapcastError("target needs params and tokens, or flops; pass --target-params N --target-tokens D or --target-flops C")
        rows = frame[frame["model"] == target.name] if target.name else frame.iloc[0:0]
        return ResolvedTarget(target, None, rows, _runs_of(rows))
    rows = frame[frame["model"] == target]
    if rows.empty:
        rows = frame[frame["run"] == target]
    if rows.empty:
        known = ", ".join(sorted(frame["model"].unique())[:12])
        raise CapcastError(f"target {target!r} is not a model or run in the {table}; use one of: {known}")
    families = rows["family"].unique()
    if len(families) > 1:
        raise CapcastError(f"target {target!r} appears in several families ({', '.join(families)}); rename it in one of them")
    if rows["run"].nunique() > 1:
        raise CapcastError(f"target {target!r} names checkpoints of several runs ({', '.join(sorted(rows['run'].unique()))}); "
                          "pass one checkpoint's model name")
    last = rows[rows["tokens"] == rows["tokens"].max()].iloc[0]
    checkpoint = rows[(rows["model"] == last["model"]) & (rows["tokens"] == last["tokens"])]
    resolved = Target(name=str(last["model"]), params=float(last["params"]), tokens=float(last["tokens"]), flops=float(last["flops"]))
    return ResolvedTarget(resolved, str(families[0]), checkpoint, _runs_of(rows))


def _runs_of(rows: pd.DataFrame) -> frozenset[tuple[str, str]]:
    return frozenset(zip(rows["family"], rows["run"]))


def without_runs(frame: pd.DataFrame, runs: frozenset[tuple[str, str]]) -> pd.DataFrame:
    """``frame`` less every checkpoint of the (family, run) pairs in ``runs``."""
    if not runs:
        return frame
    keys = pd.MultiIndex.from_frame(frame[["family", "run"]])
    return frame[~keys.isin(list(runs))]


def choose_target(name: str | None = None, params: float | None = None, tokens: float | None = None,
                  flops: float | None = None, spec_target=None) -> str | Target:
    """The model to forecast, from a user's choices (``capcast forecast``'s target options).

    ``name``: a model in the scores table (returned as is, resolved later by
    :func:`resolve_target`); ``params`` and ``tokens`` or ``flops``: a model that does not exist
    yet; else ``spec_target``, the family spec's ``target`` (:class:`capcast.spec.TargetSpec`).
    Conflicting, non-positive or incomplete choices raise a one-line :class:`CapcastError`.
    """
    explicit = any(v is not None for v in (params, tokens, flops))
    if name and explicit:
        raise CapcastError("give --target NAME or --target-params/--target-tokens/--target-flops, not both")
    for option, value in (("--target-params", params), ("--target-tokens", tokens), ("--target-flops", flops)):
        if value is not None and not value > 0:
            raise CapcastError(f"{option} must be positive (got {value:g})")
    if explicit:
        if flops is None and (params is None or tokens is None):
            raise CapcastError("give both --target-params and --target-tokens, or --target-flops")
        return Target(name="target", params=params, tokens=tokens, flops=flops)
    if name:
        return name
    if spec_target is not None:
        return Target(name=spec_target.name, params=spec_target.params, tokens=spec_target.tokens, flops=spec_target.flops)
    raise CapcastError("no target: pass --target NAME (a model in the table) or --target-params N --target-tokens D")


def scores_for_forecast(family: str | Path | None = None, scores: str | Path | None = None, store: str | Path | None = None,
                        tasks: list[str] | None = None, limit: int | None = None, device: str | None = None,
                        registry=None, console=None, force: bool = False):
    """(scores table, the family spec's target or None) from exactly one of a family spec or a table.

    For a family spec, first evaluates whatever ``store`` (default ``capcast-store``) lacks for
    ``tasks`` (resumable, as ``capcast eval``: stored runs made with another ``limit`` or other
    settings stop it with one line unless ``force``), then reads that family's scores from the store.
    """
    sources = [s for s in (family, scores) if s is not None]
    if len(sources) != 1:
        raise CapcastError("give exactly one of FAMILY.yaml or --scores FILE (with a family, --store names the record store)")
    if scores is not None:
        return read_scores(scores), None
    from capcast.evaluation.runner import evaluate_family
    from capcast.spec import load_family
    from capcast.evaluation.scores import scores_from_store

    if not tasks:
        raise CapcastError("forecasting a family needs --tasks (the tasks to evaluate and forecast)")
    spec = load_family(family)
    store_dir = Path(store) if store is not None else Path("capcast-store")
    evaluate_family(family, tasks, store_dir, limit=limit, device=device, registry=registry, console=console, force=force)
    table = scores_from_store(store_dir)
    # Only the spec's own checkpoints (and the target's, for its actual score): a store shared by
    # several specs of one family name must not leak other checkpoints, the target's run among
    # them, into the fit.
    names = {c.name for c in spec.checkpoints} | ({spec.target.name} if spec.target is not None else set())
    table = table[(table["family"] == spec.family) & table["model"].isin(names)]
    return read_scores(table), spec.target


def actual_value(target_rows: pd.DataFrame, task: str, metric: str, tokens: float | None = None) -> float | None:
    rows = target_rows[(target_rows["task"] == task) & (target_rows["metric"] == metric)]
    if rows.empty:
        return None
    rows = rows[rows["tokens"] == (rows["tokens"].max() if tokens is None else tokens)]
    return None if rows.empty else float(rows["value"].iloc[0])


def check_interval(interval: float) -> None:
    if not 0 < interval < 1:
        raise CapcastError(f"--interval must be between 0 and 1 (got {interval}); use e.g. 0.9")


def check_metric(frame: pd.DataFrame, metric: str) -> None:
    if metric not in set(frame["metric"]):
        raise CapcastError(f"metric {metric!r} is not in the scores table; available: {', '.join(sorted(frame['metric'].unique()))}")


def tasks_to_forecast(frame: pd.DataFrame, tasks: Iterable[str] | None, metric: str) -> list[str]:
    """``tasks`` (default: every task with ``metric`` scores), each checked to have them; one note
    for those the table gives no chance (:func:`capcast.tables.scores.note_missing_chance`)."""
    all_tasks = tasks_with_metric(frame, metric)
    tasks = list(tasks) if tasks else all_tasks
    unknown = [t for t in tasks if t not in all_tasks]
    if unknown:
        raise CapcastError(f"task(s) {', '.join(unknown)} have no {metric!r} scores in the table; available: {', '.join(all_tasks[:20])}")
    note_missing_chance(frame, tasks, metric)
    return tasks


def check_fitting_frame(fit: pd.DataFrame, family: str | None, dropped_at_or_above: int = 0) -> None:
    where = f"family {family!r}" if family else "the scores table"
    if fit.empty:
        if dropped_at_or_above:
            raise CapcastError(f"{where} has no checkpoint below the target's compute; forecast a larger target, "
                               "or pass --interpolate to fit checkpoints at or above it")
        raise CapcastError(f"{where} has no checkpoints left to fit; lower --max-step or add smaller models")
    if fit["params"].nunique() < 2:
        raise CapcastError(f"{where} has a single fitting model size; a forecast needs at least 2 sizes (3+ for cross-validation)")


def describe_metric(series: Series) -> Metric | None:
    """A series' metric as the library sees it without a registry: built in, or a score in
    [0, 1] inferred from its values; None for an undescribed metric outside [0, 1]."""
    found = find_metric(series.metric)
    if found is not None:
        return found
    try:
        return infer_metric(series.metric, np.asarray(series.value, dtype=float))
    except CapcastError:
        return None


def law_scale(law) -> str:
    """The scale of metric a law forecasts: its ``scale`` attribute (``power``: "loss"), else "score"."""
    scale = getattr(law, "scale", "score")
    return scale if scale in ("score", "loss") else "score"


def check_law_fits_metric(law, metric: Metric) -> None:
    scale = law_scale(law)
    if scale == metric.scale:
        return
    if metric.scale == "loss":
        raise NotPredictable(f"law {law.name!r} forecasts scores; {metric.name!r} is a loss ({metric.direction}): "
                             "use --method power or auto")
    raise NotPredictable(f"law {law.name!r} forecasts losses; {metric.name!r} is a score in {metric.bounds_text()}: "
                         "use --method auto or a score law")


def fit_law(series: Series, law, metric: Metric | None = None) -> tuple[LawFit | None, str, str]:
    """(fit, status, reason): orientation, the signal test, then the law's fit; never raises on a
    law's failure.

    ``metric`` (default: :func:`describe_metric`) orients the series for the law
    (:mod:`capcast.forecasting.orient`) and picks the signal test: above chance and rising for a
    score, falling with compute for a loss. The fit returned answers in the metric's units. An
    undescribed metric outside [0, 1] (library use only; ``run_forecasts`` refuses it) is fitted
    as it is, without a signal test.
    """
    try:
        metric = describe_metric(series) if metric is None else metric
        if metric is None:
            return law.fit(series), STATUS_OK, ""
        check_law_fits_metric(law, metric)
        values = np.asarray(series.value, dtype=float)
        outside = [v for v in values[np.isfinite(values)] if not metric.contains(float(v))]
        if outside:
            raise NotPredictable(f"{metric.name} values outside its bounds {metric.bounds_text()} (e.g. {outside[0]:g}); "
                                 "check the table, or describe the metric with a plugin")
        orientation = orientation_for(metric)
        oriented = orientation.series(series)
        if metric.scale == "loss":
            check_loss_signal(oriented, label=orientation.label)
        else:
            try:
                check_signal(oriented, to_metric=None if orientation.identity else orientation.to_metric_value)
            except NotPredictable as no_trend:
                # a law that has a forecast for a series without a trend (auto: persistence) gives it
                persistence = getattr(law, "without_trend", None)
                if persistence is None:
                    raise
                return orientation.wrap(persistence(oriented, str(no_trend))), STATUS_OK, ""
        return orientation.wrap(law.fit(oriented)), STATUS_OK, ""
    except NotPredictable as exc:
        return None, STATUS_UNPREDICTABLE, str(exc)
    except CapcastError:
        raise
    except Exception as exc:  # a broken law must not take the other tasks down
        return None, STATUS_FAILED, describe(exc)


def level_factor(level: float) -> float:
    """z(0.90) / z(level): multiplies a ``level`` interval's width into its 90%-equivalent width."""
    return float(stats.norm.ppf(0.5 + WIDTH_LEVEL / 2) / stats.norm.ppf(0.5 + level / 2))


def too_wide(pred: Prediction, metric: Metric | None, level: float, max_width: float = MAX_RELATIVE_WIDTH) -> str | None:
    """Why ``pred``'s interval is too wide to mean anything, or None.

    The 90%-equivalent width (:func:`level_factor`) is compared with ``max_width`` times the
    metric's range (a bounded score) or the forecast's own magnitude (a loss, or an undescribed
    metric outside [0, 1])."""
    width = float(pred.upper - pred.lower)
    bounded = metric is not None and metric.scale == "score" and metric.bounded
    scale = metric.width if bounded else max(abs(float(pred.mean)), 1e-12)
    relative = width / scale * level_factor(level)
    if relative <= max_width:
        return None
    against = "the metric's range" if bounded else "the forecast"
    units = f" {metric.name}" if metric is not None else ""
    measured = (f"{100 * relative:.0f}% at 90%" if math.isclose(level, WIDTH_LEVEL) else
                f"{100 * width / scale:.0f}% at {100 * level:g}%, {100 * relative:.0f}% at 90%")
    return (f"interval too wide to mean anything: {pred.lower:.4g} to {pred.upper:.4g}{units}, {measured} "
            f"(width > {100 * max_width:.0f}% of {against} at 90%)")


def predict_row(series: Series, law_name: str, fitted: tuple[LawFit | None, str, str], target: Target,
                interval: float, actual: float | None, family: str | None,
                max_width: float = MAX_RELATIVE_WIDTH, metric: Metric | None = None) -> ForecastRow:
    """One forecast row for ``target`` from a fitted law (or the reason there is none).

    ``max_width``: the widest 90%-equivalent interval, as a share of the metric's range (or of the
    forecast, for a loss); see :func:`too_wide`. ``metric`` defaults to :func:`describe_metric`.
    """
    fit, status, reason = fitted
    metric = describe_metric(series) if metric is None else metric

    def row(law, status, reason, pred=None):
        return ForecastRow(
            family=family, model=target.name, task=series.task, metric=series.metric, law=law,
            forecast=None if pred is None else pred.mean, lower=None if pred is None else pred.lower,
            upper=None if pred is None else pred.upper, actual=_nan_to_none(actual), status=status, reason=reason,
            fitted=tuple(str(m) for m in series.model),
        )

    if fit is None:
        return row(law_name, status, reason)
    law_name = getattr(fit, "law", law_name)
    try:
        pred = fit.predict(target, level=interval)
    except NotPredictable as exc:
        return row(law_name, STATUS_UNPREDICTABLE, str(exc))
    except Exception as exc:
        return row(law_name, STATUS_FAILED, describe(exc))
    notes = getattr(fit, "notes", "") or ""
    if getattr(pred, "law", None):  # another law answered for this target (auto's fallback)
        law_name, notes = pred.law, pred.notes or ""
    if not all(np.isfinite([pred.mean, pred.lower, pred.upper])):
        return row(law_name, STATUS_FAILED, "the law returned a non-finite forecast")
    wide = too_wide(pred, metric, interval, max_width)
    if wide:
        return row(law_name, STATUS_UNPREDICTABLE, wide)
    return row(law_name, STATUS_OK, notes, pred)


def forecast_one(series: Series, target: Target, law, interval: float, actual: float | None,
                 family: str | None, max_width: float = MAX_RELATIVE_WIDTH, metric: Metric | None = None) -> ForecastResult:
    """Fit ``law`` on ``series`` and forecast ``target`` (``metric``: see :func:`fit_law`)."""
    fitted = fit_law(series, law, metric)
    row = predict_row(series, law.name, fitted, target, interval, actual, family, max_width, metric)
    return ForecastResult(row, series, fitted[0], target)


@dataclass(frozen=True)
class AutoOnLoss:
    """``auto`` on a loss metric: the loss law (``power``), its rows named ``auto:power``."""

    inner: object
    description: str = "auto on a loss metric: the power law in compute"
    scale: str = "loss"

    @property
    def name(self) -> str:
        return f"auto:{self.inner.name}"

    def fit(self, series: Series):
        return relabel(self.inner.fit(series), self.name, f"auto on a loss uses {self.inner.name}")


def metric_of(frame: pd.DataFrame, name: str, registry=None) -> Metric:
    """The description of metric ``name`` for a forecast from ``frame``: registered, built in, or
    inferred from its values (a score in [0, 1]); else one :class:`CapcastError` line."""
    values = frame.loc[frame["metric"] == name, "value"].to_numpy(dtype=float)
    lookup = getattr(registry, "metric", None)
    described = lookup(name, values) if callable(lookup) else resolve_metric(name, values)
    if described.description == INFERRED:  # a lower-is-better metric in [0, 1] (an error rate) would be forecast upside down
        note(f"metric {name!r} is not one capcast or a plugin describes: read as a score in [0, 1], higher is better; "
             "if lower is better, describe it with a capcast.metrics.Metric from a plugin's register_metrics hook")
    return described


COD_METHOD = "cod"  # fits per-instance records, so it is bound to them here, not looked up (capcast.cod.law)


def law_for(method: str, metric: Metric, registry, instances=None):
    """The law to fit: ``registry.law(method)``, except ``auto`` on a loss, which is ``power``, and
    ``cod``, bound to the per-instance records ``instances`` (one line when there are none)."""
    if method == COD_METHOD:
        from capcast.cod.law import cod_law

        return cod_law(instances)
    if method == "auto" and metric.scale == "loss":
        return AutoOnLoss(registry.law("power"))
    return registry.law(method)


def not_fitted_above(dropped: int) -> str:
    """What a forecast says of the checkpoints :func:`below_target` left out."""
    return f"{dropped} checkpoint(s) at or above the target's compute not fitted (--interpolate fits them)"


def below_target(frame: pd.DataFrame, target: Target, interpolate: bool = False) -> tuple[pd.DataFrame, int]:
    """(the rows below the target's compute, how many checkpoints were dropped): a forecast
    extrapolates from smaller models; fitting at or above the target is interpolation, which the
    user must ask for (``interpolate=True``, ``--interpolate``)."""
    if interpolate or target.compute is None:
        return frame, 0
    keep = frame["flops"] < float(target.compute) * (1 - 1e-9)
    dropped = frame.loc[~keep].drop_duplicates(["family", "run", "model", "tokens"])
    return frame[keep], len(dropped)


def run_forecasts(scores: pd.DataFrame | str, target: str | Target, tasks: Iterable[str] | None = None,
                  metric: str = "acc", method: str = "auto", interval: float = 0.9, max_step: int | None = None,
                  registry=None, max_width: float = MAX_INTERVAL_WIDTH, interpolate: bool = False,
                  instances=None, schedules: Mapping | None = None) -> list[ForecastResult]:
    """Like :func:`forecast_scores` but keeps each row's series and fitted law (for plots).

    The fit never sees the target's run, nor (unless ``interpolate``) any checkpoint at or above
    the target's compute; each row lists the checkpoints it was fitted on (``fitted``).
    ``instances``: per-instance records for ``method="cod"`` (:mod:`capcast.cod.instances`).
    ``schedules``: run name -> learning-rate schedule (the family spec's ``schedules``): each
    series carries its checkpoints' LR areas (:func:`capcast.laws.schedule.attach_areas`) and the
    target its run's schedule, for schedule-aware laws.
    """
    frame = read_scores(scores)
    check_interval(interval)
    if registry is None:
        from capcast.plugins.registry import load_registry

        registry = load_registry()
    if method != COD_METHOD:
        registry.law(method)  # an unknown law is the first thing to say
    check_metric(frame, metric)
    described = metric_of(frame, metric, registry)
    law = law_for(method, described, registry, instances)
    found = resolve_target(frame, target)
    resolved, family, target_rows = found.target, found.family, found.rows
    tasks = tasks_to_forecast(frame, tasks, metric)
    # Never fit on the target's run: none of its checkpoints, not only the target one.
    fit_all = fit_frame_for(without_runs(frame, found.runs), max_step)
    resolved = with_target_schedule(resolved, found, schedules, fit_all)
    families = [family] if family else sorted(fit_all["family"].unique())
    results = []
    for fam in families:
        fit, dropped = below_target(fit_all[fit_all["family"] == fam], resolved, interpolate)
        check_fitting_frame(fit, fam, dropped)
        for task in track(tasks, f"forecast {fam}: tasks"):
            series = attach_areas(build_series(fit, task, metric), schedules)
            actual = actual_value(target_rows, task, metric) if len(target_rows) else None
            result = forecast_one(series, resolved, law, interval, actual, fam, max_width, described)
            if dropped:
                note = not_fitted_above(dropped)
                result = replace(result, row=replace(result.row, reason=f"{result.row.reason}; {note}".lstrip("; ")))
            results.append(result)
    return results


def with_target_schedule(target: Target, found: ResolvedTarget, schedules: Mapping | None, fit: pd.DataFrame) -> Target:
    """``target`` with its run's schedule from ``schedules``: the run of the table's target rows,
    else the run its name implies (``default_run``); without one, the schedule of the fitting run
    with the most tokens stretched to the target's tokens (:func:`capcast.laws.schedule.stretched`)."""
    if not schedules or target.schedule is not None:
        return target
    runs = [run for _, run in found.runs] or ([default_run(target.name)] if target.name else [])
    own = next((schedules[r] for r in runs if r in schedules), None)
    if own is not None:
        return replace(target, schedule=own)
    scheduled = fit[fit["run"].isin(list(schedules))]
    if scheduled.empty or target.tokens is None:
        return target
    longest = str(scheduled.loc[scheduled["tokens"].idxmax(), "run"])
    return replace(target, schedule=stretched(schedules[longest], float(target.tokens)))


def forecast_scores(scores_df: pd.DataFrame | str, target: str | Target, tasks: Iterable[str] | None = None,
                    metric: str = "acc", method: str = "auto", interval: float = 0.9, max_step: int | None = None,
                    registry=None, interpolate: bool = False) -> list[ForecastRow]:
    """Forecast ``target`` (a model name in the table, or a :class:`Target`) on each task."""
    return [r.row for r in run_forecasts(scores_df, target, tasks, metric, method, interval, max_step, registry,
                                         interpolate=interpolate)]


def rows_frame(rows: Iterable[ForecastRow]) -> pd.DataFrame:
    """Rows as a table; ``fitted`` joined with ';' so a CSV cell holds it."""
    records = [{**r.to_dict(), "fitted": ";".join(r.fitted)} for r in rows]
    return pd.DataFrame(records, columns=list(ForecastRow.__dataclass_fields__))
