"""What each page shows, as plain data for the templates: the published rows (backtest,
hindsight, registered, resolved, superseded) and one chart per (family, task, metric).

Chart data, in order of preference: a row's own ``chart`` field (``checkpoints``,
``target_flops``, ``curve``, ``chance``; written by :func:`capcast.leaderboard.documents.forecast_document`),
else the scores table given to the build (checkpoint points and the target's compute). The JSON of
``capcast forecast`` carries neither the checkpoints' values nor the fitted curve, so without a
scores table a chart shows only the forecasts, their intervals and the actual values.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd

from capcast.errors import CapcastError
from capcast.leaderboard.charts import Chart, Curve, Forecast, Point, layout
from capcast.leaderboard.inputs import ResultFile, canonical_json
from capcast.leaderboard.registry import Registry, registered_frame
from capcast.leaderboard.stats import error_points

NO_FAMILY = "(no family)"
BACKTEST_KEY = ("family", "model", "task", "metric", "method", "step")


def slug(prefix: str, name: str) -> str:
    """A file or anchor name for any text: readable part plus a short hash so two names never meet."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_.")[:40] or "x"
    return f"{prefix}{readable}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _page_row(row: dict, kind: str, method: str, extra: dict | None = None) -> dict:
    out = {k: row.get(k) for k in ("family", "model", "task", "metric", "law", "forecast", "lower", "upper", "actual", "status", "reason")}
    out.update(kind=kind, kind_class=kind, method=method, step=row.get("step"), chart=row.get("chart"), fitted=row.get("fitted") or [],
               id=None, registered_at=None, capcast_version=None, input_sha256=None, input_hash_of=None, superseded_by=None)
    out["family"] = out["family"] or NO_FAMILY
    out["model"] = out["model"] or "(target)"
    out["error"] = error_points(row) if row.get("status") else None
    out.update(extra or {})
    return out


def backtest_rows(results: list[ResultFile]) -> list[dict]:
    """Every backtest row once; the same target forecast twice with different numbers is an error."""
    seen: dict[tuple, tuple[str, str]] = {}
    out = []
    for result in results:
        if result.kind != "backtest":
            continue
        for row in result.rows:
            key = tuple(row.get(k) for k in BACKTEST_KEY)
            text = canonical_json({k: row.get(k) for k in ("law", "forecast", "lower", "upper", "actual", "status")})
            if key in seen:
                if seen[key][0] != text:
                    raise CapcastError(f"{result.path}: {row['family']} {row['model']} {row['task']} ({row['method']}) is also in "
                                       f"{seen[key][1]} with other numbers; give each backtest once")
                continue
            seen[key] = (text, result.path.name)
            out.append(row)
    return out


def published_rows(results: list[ResultFile], registry: Registry) -> list[dict]:
    """Every row any page shows."""
    rows = [_page_row(r, "backtest", r["method"]) for r in backtest_rows(results)]
    seen = set()
    for result in results:
        if result.kind != "forecast":
            continue
        for r in result.rows:
            if r["actual"] is None:
                continue  # registered: shown from the registry
            text = canonical_json({k: r[k] for k in ("family", "model", "task", "metric", "law", "forecast", "lower", "upper", "actual")})
            if text not in seen:
                seen.add(text)
                rows.append(_page_row(r, "hindsight", ""))
    charts = {}  # registered rows carry no chart data of their own: take it from the forecast JSON
    for result in results:
        for r in result.rows:
            if r.get("chart"):
                charts[(r["family"], r["model"], r["task"], r["metric"])] = r["chart"]
    frame = registered_frame(registry)
    for reg in frame.to_dict("records") if len(frame) else []:
        reg = {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in reg.items()}
        kind = "superseded" if reg["superseded_by"] else reg["state"]
        reg["chart"] = charts.get((reg["family"], reg["model"], reg["task"], reg["metric"]))
        rows.append(_page_row(reg, kind, "", {k: reg[k] for k in ("id", "registered_at", "capcast_version", "input_sha256",
                                                                  "input_hash_of", "superseded_by")}))
    return rows


def _target_flops(row: dict, scores: pd.DataFrame | None) -> float | None:
    chart = row.get("chart") or {}
    if chart.get("target_flops"):
        return float(chart["target_flops"])
    if scores is None:
        return None
    mine = scores[(scores["model"] == row["model"]) & (scores["family"] == row["family"])]
    if row.get("step") is not None and "step" in mine and (mine["step"] == row["step"]).any():
        mine = mine[mine["step"] == row["step"]]
    return float(mine.loc[mine["tokens"].idxmax(), "flops"]) if len(mine) else None


def task_chart(family: str, task: str, metric: str, rows: list[dict], scores: pd.DataFrame | None) -> tuple[dict, str]:
    """(the chart's layout, its caption) for one family's task."""
    chart = Chart(title=f"{family} · {task} ({metric})", metric=metric)
    own = next((r["chart"] for r in rows if r.get("chart") and r["chart"].get("checkpoints")), None)
    targets = {r["model"] for r in rows}
    if scores is not None:
        mine = scores[(scores["family"] == family) & (scores["task"] == task) & (scores["metric"] == metric)]
        # open circles: the checkpoints of a forecast target's run, which no forecast of it may fit
        held_runs = set(mine.loc[mine["model"].isin(targets), "run"]) if "run" in mine else set()
        for p in mine.itertuples(index=False):
            held = str(p.model) in targets or getattr(p, "run", None) in held_runs
            chart.points.append(Point(float(p.flops), float(p.value), str(p.model), not held))
        chances = mine["chance"].dropna() if "chance" in mine else []
        chart.chance = float(chances.iloc[0]) if len(chances) else None
        where = "checkpoints from the scores table; open circles: runs of a forecast target, never fitted for it"
    elif own:
        chart.points = [Point(float(p["flops"]), float(p["value"]), str(p["model"]), bool(p.get("fitted", True))) for p in own["checkpoints"]]
        chart.chance = own.get("chance")
        where = "the checkpoints the forecast was fitted on"
    else:
        where = "no checkpoints (the result does not carry them; give the build a scores table to draw them)"
    for r in rows:
        if r["kind"] == "superseded":
            continue
        group = r["method"] or r["kind"]
        chart.forecasts.append(Forecast(label=f"{r['model']} · {group}", flops=_target_flops(r, scores), forecast=r["forecast"],
                                        lower=r["lower"], upper=r["upper"], actual=r["actual"], status=r["status"], group=group))
        curve = (r.get("chart") or {}).get("curve")
        if curve and r["status"] == "ok":  # the curve of a law whose answer was refused would look like an answer
            chart.curves.append(Curve(label=f"{r['law']} fit for {r['model']}", group=group,
                                      points=[(c["flops"], c["mean"], c.get("lower"), c.get("upper")) for c in curve]))
    drawn = "fitted curves with their bands" if chart.curves else "no fitted curve (no forecast with a number carries one)"
    caption = (f"{where}; squares: forecasts with their intervals; short dashes at the bottom: forecasts without a number; "
               f"stars: actual scores; {drawn}. Superseded registrations are in the table only.")
    return layout(chart), caption


def family_pages(rows: list[dict], scores: pd.DataFrame | None) -> list[dict]:
    pages = []
    for family in dict.fromkeys(r["family"] for r in rows):
        mine = [r for r in rows if r["family"] == family]
        tasks = []
        for task, metric in dict.fromkeys((r["task"], r["metric"]) for r in mine):
            task_rows = [r for r in mine if r["task"] == task and r["metric"] == metric]
            chart, caption = task_chart(family, task, metric, task_rows, scores)
            tasks.append({"task": task, "metric": metric, "anchor": slug("t-", f"{task}|{metric}"), "rows": task_rows,
                          "chart": chart, "caption": caption})
        pages.append({"name": family, "href": slug("family-", family) + ".html", "tasks": tasks, "rows": len(mine)})
    return pages
