"""Forecast results as leaderboard input: the JSON of ``capcast forecast --format json`` plus what
a chart needs and a hash of the input table.

``forecast_document(results, interval, table)`` returns ``{"interval", "input_sha256",
"input_hash_of", "rows"}`` whose rows are :meth:`ForecastRow.to_dict` with one more field,
``chart``: ``checkpoints`` (flops, value, model, fitted), ``target_flops``, ``chance`` and
``curve`` (flops, mean, lower, upper along the path from the smallest fitted model to the target,
as ``capcast forecast --plot`` draws it). The plain CLI JSON lacks ``chart``; the builder then
draws what it can (see :mod:`capcast.leaderboard.pages`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from capcast.forecasting.forecast import ForecastResult
from capcast.laws.base import Target
from capcast.laws.signal import final_checkpoints
from capcast.leaderboard.inputs import table_sha256

CURVE_POINTS = 30


def _curve(result: ForecastResult, level: float) -> list[dict]:
    series, target, fit = result.series, result.target, result.fit
    if fit is None or series is None or not len(series) or not target.compute:
        return []
    final = final_checkpoints(series)
    start = np.flatnonzero(final)[np.argmin(series.flops[final])]
    p0, t0 = float(series.params[start]), float(series.tokens[start])
    p1 = target.params or p0
    t1 = target.tokens or target.compute / (6 * p1)
    out = []
    for p, t in zip(np.geomspace(p0, p1, CURVE_POINTS), np.geomspace(t0, t1, CURVE_POINTS)):
        point = Target(params=float(p), tokens=float(t))
        try:
            pred = fit.predict(point, level=level)
        except Exception:  # a law may refuse part of the path (as in the PNG plots): draw the rest
            continue
        values = [pred.mean, pred.lower, pred.upper]
        if all(v is not None and np.isfinite(v) for v in values):
            out.append({"flops": float(point.compute), "mean": float(pred.mean), "lower": float(pred.lower), "upper": float(pred.upper)})
    return out


def chart_data(result: ForecastResult, level: float) -> dict:
    series = result.series
    checkpoints = []
    if series is not None:
        checkpoints = [{"model": str(m), "flops": float(c), "value": float(v), "fitted": True}
                       for m, c, v in zip(series.model, series.flops, series.value)]
    return {"checkpoints": checkpoints, "target_flops": float(result.target.compute) if result.target.compute else None,
            "chance": None if series is None or not series.chance else float(series.chance), "curve": _curve(result, level)}


def forecast_document(results: list[ForecastResult], interval: float, table: pd.DataFrame | None = None) -> dict:
    rows = []
    for result in results:
        row = result.row.to_dict()
        row["chart"] = chart_data(result, interval)
        rows.append(row)
    out = {"interval": interval, "rows": rows}
    if table is not None:
        out.update(input_sha256=table_sha256(table), input_hash_of="scores table the forecasts were fitted from")
    return out
