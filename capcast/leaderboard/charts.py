"""Scaling charts as inline SVG: the geometry here, the markup in ``templates/chart.svg.j2``.

Everything drawn is numbers turned into pixel coordinates; every text (model names, labels,
tooltips) stays text until the autoescaping template writes it, so a name cannot become markup.
x is log10 training compute, y the metric's own units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

WIDTH, HEIGHT = 620, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 120, 14, 40
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


@dataclass
class Point:
    flops: float
    value: float
    label: str
    fitted: bool = True


@dataclass
class Forecast:
    label: str
    flops: float | None
    forecast: float | None
    lower: float | None
    upper: float | None
    actual: float | None
    status: str
    group: str  # the method or kind: one colour each


@dataclass
class Curve:
    label: str
    group: str
    points: list[tuple[float, float, float | None, float | None]]  # (flops, mean, lower, upper)


@dataclass
class Chart:
    title: str
    metric: str
    points: list[Point] = field(default_factory=list)
    forecasts: list[Forecast] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    chance: float | None = None


def _nice_ticks(low: float, high: float, n: int = 5) -> list[float]:
    if not high > low:
        return [low]
    raw = (high - low) / n
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if raw <= m * step)
    first = math.ceil(low / step) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step) + 1)]


def _star(cx: float, cy: float, r: float = 7) -> str:
    pts = []
    for i in range(10):
        radius = r if i % 2 == 0 else r * 0.45
        angle = math.pi / 2 + i * math.pi / 5
        pts.append(f"{cx + radius * math.cos(angle):.1f},{cy - radius * math.sin(angle):.1f}")
    return " ".join(pts)


def layout(chart: Chart) -> dict:
    """The chart as pixel geometry for the template (numbers and plain strings only)."""
    xs = [math.log10(p.flops) for p in chart.points if p.flops > 0]
    xs += [math.log10(f.flops) for f in chart.forecasts if f.flops]
    xs += [math.log10(c[0]) for curve in chart.curves for c in curve.points if c[0] > 0]
    ys = [p.value for p in chart.points]
    for f in chart.forecasts:
        ys += [v for v in (f.forecast, f.lower, f.upper, f.actual) if v is not None]
    for curve in chart.curves:
        ys += [v for c in curve.points for v in c[1:] if v is not None]
    if chart.chance is not None:
        ys.append(chart.chance)
    unknown_x = any(f.flops is None for f in chart.forecasts)
    if not xs:
        xs = [0.0, 1.0]
    if not ys:
        ys = [0.0, 1.0]
    x0, x1 = min(xs), max(xs)
    if x1 - x0 < 0.5:
        x0, x1 = x0 - 0.25, x1 + 0.25
    pad = 0.05 * (x1 - x0)
    x0, x1 = x0 - pad, x1 + pad
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.05, y1 + 0.05
    pad = 0.06 * (y1 - y0)
    y0, y1 = y0 - pad, y1 + pad
    plot_right = WIDTH - RIGHT - (36 if unknown_x else 0)

    def px(x: float) -> float:
        return round(LEFT + (x - x0) / (x1 - x0) * (plot_right - LEFT), 1)

    def py(y: float) -> float:
        return round(TOP + (y1 - y) / (y1 - y0) * (HEIGHT - BOTTOM - TOP), 1)

    groups = list(dict.fromkeys([f.group for f in chart.forecasts] + [c.group for c in chart.curves]))
    colour = {g: PALETTE[i % len(PALETTE)] for i, g in enumerate(groups)}
    out = {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": plot_right, "top": TOP, "bottom": HEIGHT - BOTTOM,
        "title": chart.title, "metric": chart.metric,
        "xticks": [{"x": px(t), "label": f"1e{t:g}"} for t in _nice_ticks(x0, x1) if float(t).is_integer()],
        "yticks": [{"y": py(t), "label": f"{t:g}"} for t in _nice_ticks(y0, y1)],
        "chance": None if chart.chance is None else py(chart.chance),
        "points": [{"x": px(math.log10(p.flops)), "y": py(p.value), "fitted": p.fitted,
                    "tip": f"{p.label}: {p.value:.4g} at {p.flops:.3g} FLOPs{'' if p.fitted else ' (not fitted)'}"}
                   for p in chart.points if p.flops > 0],
        "curves": [], "forecasts": [], "unknown_x": (plot_right + 18) if unknown_x else None,
        "legend": [{"label": g, "colour": colour[g], "y": TOP + 14 + 16 * i} for i, g in enumerate(groups)],
        "legend_x": WIDTH - RIGHT + 10, "legend_star": _star(WIDTH - RIGHT + 14, HEIGHT - BOTTOM - 30, 5),
    }
    for curve in chart.curves:
        pts = [(math.log10(c[0]), c[1], c[2], c[3]) for c in curve.points if c[0] > 0]
        line = " ".join(f"{px(x)},{py(m)}" for x, m, _, _ in pts)
        banded = [p for p in pts if p[2] is not None and p[3] is not None]
        band = " ".join([f"{px(x)},{py(hi)}" for x, _, _, hi in banded] + [f"{px(x)},{py(lo)}" for x, _, lo, _ in reversed(banded)])
        out["curves"].append({"line": line, "band": band, "colour": colour[curve.group], "tip": curve.label})
    offsets: dict[float | None, int] = {}
    starred: set[tuple] = set()  # one star per target and actual, however many methods forecast it
    for f in chart.forecasts:
        base = out["unknown_x"] if f.flops is None else px(math.log10(f.flops))
        k = offsets.get(f.flops, 0)
        offsets[f.flops] = k + 1
        x = round(base + 7 * k, 1)
        first_star = f.actual is not None and (f.flops, f.actual) not in starred
        starred.add((f.flops, f.actual))
        item = {"x": x, "colour": colour[f.group], "status": f.status, "label": f.label,
                "star": _star(base, py(f.actual)) if first_star else None,
                "actual_tip": None if f.actual is None else f"{f.label}: actual {f.actual:.4g}"}
        if f.forecast is not None and f.lower is not None and f.upper is not None:
            item.update(y=py(f.forecast), y_low=py(f.lower), y_high=py(f.upper),
                        tip=f"{f.label}: forecast {f.forecast:.4g} [{f.lower:.4g}, {f.upper:.4g}] ({f.status})")
        else:
            item.update(y=None, tip=f"{f.label}: {f.status}")
        out["forecasts"].append(item)
    return out
