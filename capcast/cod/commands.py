"""What ``capcast cluster`` and ``capcast cluster show`` do, as library functions (called by :mod:`capcast.api`).

    results = cluster_tasks(samples="samples.csv", target="big", out="cod-clusters")
    results = load_results("cod-clusters")

``cluster_tasks`` fits COD on every (or each given) task of a samples table or a store: with a
``target`` (a model in the table), never on the target's run nor on checkpoints at or above its
compute, and it forecasts the target; each result is saved under ``out/<task>/``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from capcast.cod.cluster_law import Thresholds
from capcast.cod.instances import from_samples, from_store
from capcast.cod.pipeline import CODConfig, CODResult, fit_cod, load_result, save_result
from capcast.errors import CapcastError
from capcast.laws.base import NotPredictable

DEFAULT_OUT = "cod-clusters"


def read_instances(samples=None, store=None, family: str | None = None) -> pd.DataFrame:
    """The instances table from exactly one of a samples table (file or frame) or a store folder."""
    if (samples is None) == (store is None):
        raise CapcastError("give exactly one of --samples FILE or --store DIR (COD needs per-instance records)")
    if store is not None:
        return from_store(store, family=family)
    from capcast.tables.samples import read_samples, validate_samples

    frame = validate_samples(samples) if isinstance(samples, pd.DataFrame) else read_samples(samples)
    return from_samples(frame)


def _target_split(rows: pd.DataFrame, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """(rows the fit may use, the target checkpoint's first row): the forecasts' own rules, never
    the target's run and nothing at or above its compute."""
    from capcast.forecasting.forecast import below_target, resolve_target, without_runs

    found = resolve_target(rows, target, table="records")
    fit_rows, _ = below_target(without_runs(rows, found.runs), found.target)
    return fit_rows, found.rows.iloc[0]


def cluster_tasks(samples=None, store=None, tasks: list[str] | None = None, family: str | None = None, target: str | None = None,
                  metric: str | None = None, anchors: list[str] | None = None, out: str | Path | None = DEFAULT_OUT,
                  method: str = "meanshift", seed: int = 0, n_clusters: int = 8, thresholds: Thresholds | None = None,
                  bootstrap: int = 200, level: float = 0.9, max_params: float | None = None,
                  models: list[str] | None = None) -> list[CODResult]:
    """Fit COD per task; save each result under ``out/<task>/`` (``out=None``: save nothing).
    ``max_params`` / ``models``: fit only checkpoints up to that size / of those names."""
    instances = read_instances(samples, store, family)
    if family is not None:
        instances = instances[instances["family"] == family]
    all_tasks = sorted(instances["task"].unique())
    tasks = tasks or all_tasks
    unknown = [t for t in tasks if t not in all_tasks]
    if unknown:
        raise CapcastError(f"task(s) {', '.join(unknown)} have no per-instance records; available: {', '.join(all_tasks)}")
    config = CODConfig(method=method, seed=seed, n_clusters=n_clusters, thresholds=thresholds or Thresholds(), bootstrap=bootstrap)
    results = []
    for task in tasks:
        rows = instances[instances["task"] == task]
        families = sorted(rows["family"].unique())
        if len(families) > 1:
            raise CapcastError(f"task {task!r} has records of several families ({', '.join(families)}); pick one with --family")
        fit_rows, last = (rows, None) if target is None else _target_split(rows, target)
        if max_params is not None:
            fit_rows = fit_rows[fit_rows["params"] <= max_params]
        if models is not None:
            fit_rows = fit_rows[fit_rows["model"].isin(list(models))]
        fit_rows = pd.concat([fit_rows, rows[rows["model"].isin(anchors or [])]]).drop_duplicates()
        result = fit_cod(fit_rows, task, families[0], metric, anchors=anchors, config=config)
        if last is not None:
            result = replace(result, forecast=_forecast(result, rows, last, level))
        if out is not None:
            save_result(result, Path(out) / task)
        results.append(result)
    return results


def _forecast(result: CODResult, rows: pd.DataFrame, last: pd.Series, level: float) -> dict:
    truth = rows[(rows["model"] == last["model"]) & (rows["tokens"] == last["tokens"])][result.metric]
    out = {"target": str(last["model"]), "flops": float(last["flops"]), "level": level,
           "actual": float(truth.mean()) if truth.notna().any() else None}
    try:
        mean, lower, upper = result.predict(float(last["flops"]), level)
        out.update(forecast=mean, lower=lower, upper=upper, subset_forecast=result.subset_forecast(float(last["flops"])),
                   status="ok", reason="")
    except NotPredictable as exc:
        out.update(forecast=None, lower=None, upper=None, subset_forecast=None, status="not predictable yet", reason=str(exc))
    return out


def load_results(out: str | Path = DEFAULT_OUT, tasks: list[str] | None = None) -> list[CODResult]:
    """The results saved by :func:`cluster_tasks` under ``out`` (every task, or the ones named)."""
    out = Path(out)
    if not out.is_dir():
        raise CapcastError(f"{out}: no such folder; run `capcast cluster --samples FILE --out {out}` first")
    found = sorted(p.parent.name for p in out.glob("*/cod.json"))
    if not found:
        raise CapcastError(f"{out} holds no COD results; run `capcast cluster ... --out {out}` first")
    tasks = tasks or found
    missing = [t for t in tasks if t not in found]
    if missing:
        raise CapcastError(f"no saved clusters for task(s) {', '.join(missing)} in {out}; saved: {', '.join(found)}")
    return [load_result(out / t) for t in tasks]


def cluster_rows(result: CODResult) -> list[dict]:
    """One row per cluster for tables: label, size, a, b, c, g, rmse, kept, reason."""
    return [{"cluster": c.label, "size": c.size, **{k: getattr(c.fit, k) for k in ("a", "b", "c", "g", "rmse")},
             "kept": c.kept, "reason": c.reason} for c in result.clusters]


def finite_or_none(x) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
