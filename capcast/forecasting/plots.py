"""One PNG per forecast: observed checkpoints, the fitted law with its interval band, the target's
forecast and, when known, its actual score, all against log10 compute.

The curve follows a path in (params, tokens) from the smallest fitting model's last checkpoint to
the target, geometrically interpolated, so two-step laws that need params and tokens separately
plot on the same axis as compute laws.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from capcast.forecasting.forecast import ForecastResult  # noqa: E402
from capcast.laws.base import Target  # noqa: E402
from capcast.laws.signal import final_checkpoints  # noqa: E402


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "task"


def _path_targets(result: ForecastResult, n: int = 40) -> list[Target]:
    series, target = result.series, result.target
    final = final_checkpoints(series)
    start = np.flatnonzero(final)[np.argmin(series.flops[final])]
    p0, t0 = float(series.params[start]), float(series.tokens[start])
    p1 = target.params if target.params else p0
    t1 = target.tokens if target.tokens else (target.compute / (6 * p1) if target.compute else t0)
    return [Target(params=float(p), tokens=float(t)) for p, t in zip(np.geomspace(p0, p1, n), np.geomspace(t0, t1, n))]


def plot_forecast(result: ForecastResult, path: Path, level: float = 0.9) -> Path:
    """Write one forecast's figure to ``path`` (PNG)."""
    row, series, fit = result.row, result.series, result.fit
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
    if series is not None and len(series):
        x = np.log10(series.flops)
        for model in dict.fromkeys(series.model):
            rows = series.model == model
            ax.plot(x[rows], series.value[rows], "o", ms=3.5, alpha=0.7, label=str(model))
        if series.chance:
            ax.axhline(series.chance, color="grey", lw=0.8, ls=":", label="chance")
    if fit is not None and series is not None and len(series):
        path_targets = _path_targets(result)
        points = []  # (log10 C, mean, lower, upper, the law that answered)
        for t in path_targets:
            try:
                pred = fit.predict(t, level=level)
            except Exception:  # a law may refuse part of the path; plot the rest
                continue
            points.append((np.log10(t.compute), pred.mean, pred.lower, pred.upper,
                           getattr(pred, "law", None) or getattr(fit, "law", None) or row.law))
        # One segment per answering law: `auto` hands the part of the path its choice refuses
        # to the next law in its ranking, and the two curves must not look like one.
        segments: list[list[tuple]] = []
        for point in points:
            if segments and segments[-1][-1][4] == point[4]:
                segments[-1].append(point)
            else:
                segments.append([point])
        styles, laws = ["-", "--", "-.", ":"], list(dict.fromkeys(p[4] for p in points))
        for i, seg in enumerate(segments):
            xs, mean, lo, hi, law = [p[0] for p in seg], [p[1] for p in seg], [p[2] for p in seg], [p[3] for p in seg], seg[0][4]
            first_of_law = all(s[0][4] != law for s in segments[:i])
            style = styles[laws.index(law) % len(styles)]
            ax.plot(xs, mean, style, color="black", lw=1.2, label=f"{law} fit" if first_of_law else None)
            ax.fill_between(xs, lo, hi, color="black", alpha=0.12, label=f"{int(level * 100)}% interval" if i == 0 else None)
    tx = np.log10(result.target.compute) if result.target.compute else None
    if tx is not None:
        if row.forecast is not None:
            ax.errorbar([tx], [row.forecast], yerr=[[row.forecast - row.lower], [row.upper - row.forecast]],
                        fmt="s", color="tab:red", capsize=4, label=f"forecast {row.model or 'target'}")
        else:
            ax.axvline(tx, color="tab:red", ls="--", lw=1, label=f"target ({row.status})")
        if row.actual is not None:
            ax.plot([tx], [row.actual], "*", color="gold", mec="black", ms=13, label="actual")
    ax.set_xlabel("log10 compute (FLOPs)")
    ax.set_ylabel(row.metric)
    ax.set_title(f"{row.family or ''} {row.task}: {row.status}".strip(), fontsize=10)
    ax.legend(fontsize=6.5, loc="best", ncol=2)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_forecasts(results: list[ForecastResult], out_dir: str | Path, level: float = 0.9) -> list[Path]:
    """One PNG per result under ``out_dir``; returns the written paths."""
    out_dir = Path(out_dir)
    written = []
    many_families = len({r.row.family for r in results}) > 1
    stems = [f"{r.row.family}_{r.row.task}" if many_families else r.row.task for r in results]
    for result, name in zip(results, _file_names(stems)):
        written.append(plot_forecast(result, out_dir / name, level))
    return written


def _file_names(stems: list[str]) -> list[str]:
    """One distinct, short PNG name per plot: names that clean up alike (``x/y`` and ``x_y``) or run
    past the filesystem's 255 bytes get a short hash of the original name, so no plot overwrites another."""
    import hashlib
    from collections import Counter

    safe = [_safe(stem)[:200] for stem in stems]
    clashes = Counter(safe)
    out = []
    for stem, name in zip(stems, safe):
        if clashes[name] > 1 or name != _safe(stem):
            name = f"{name}-{hashlib.sha1(stem.encode()).hexdigest()[:8]}"
        out.append(f"{name}.png")
    return out
