"""One picture per task: score vs training compute for every checkpoint of a family.

Checkpoints of one training run (same size and seed) are joined by a line, colored by size;
seeds differ by marker; chance is a dashed line; the backtest target is ringed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

_RUN = re.compile(r"^(?P<size>[^-]+)-s(?P<seed>\d+)-step\d+$")
_MARKERS = "os^Dv"


def main_metric_rows(scores: pd.DataFrame, metrics: dict[str, str]) -> pd.DataFrame:
    """Keep one metric per task (``metrics[task]``) and add ``run``/``size``/``seed`` columns."""
    rows = scores[scores.apply(lambda r: metrics.get(r["task"]) == r["metric"], axis=1)].copy()
    parsed = rows["model"].str.extract(_RUN)
    rows["size"] = parsed["size"].fillna(rows["model"])
    rows["seed"] = pd.to_numeric(parsed["seed"], errors="coerce").fillna(0).astype(int)
    rows["run"] = rows["size"] + "-s" + rows["seed"].astype(str)
    return rows.sort_values(["task", "flops"])


def plot_task(rows: pd.DataFrame, task: str, metric: str, path: Path, target: str | None = None) -> Path:
    """Write ``path`` (PNG): ``metric`` of ``task`` against compute for every checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = rows[rows["task"] == task]
    sizes = list(dict.fromkeys(data.sort_values("params")["size"]))
    colors = plt.get_cmap("viridis")([i / max(1, len(sizes) - 1) * 0.9 for i in range(len(sizes))])
    fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=110)
    for (size, seed), run in data.groupby(["size", "seed"], sort=False):
        run = run.sort_values("flops")
        ax.plot(
            run["flops"], run["value"],
            marker=_MARKERS[seed % len(_MARKERS)], color=colors[sizes.index(size)],
            linestyle="-" if seed == 0 else "--", markersize=5, linewidth=1.2,
            label=f"{size} (seed {seed})",
        )
    if target is not None and target in set(data["model"]):
        hit = data[data["model"] == target]
        ax.scatter(hit["flops"], hit["value"], s=160, facecolors="none", edgecolors="crimson", linewidths=1.5, label="target", zorder=5)
    chance = data["chance"].dropna()
    if len(chance) and metric != "pass_rate":
        ax.axhline(float(chance.iloc[0]), color="gray", linestyle=":", linewidth=1, label="chance")
    ax.set_xscale("log")
    if metric == "pass_rate" and (data["value"] > 0).any() and data["value"][data["value"] > 0].min() < 0.01:
        # Pass rates span 1e-4..1: log scale, with a linear stretch around 0 so zeros show.
        ax.set_yscale("symlog", linthresh=1e-3)
        ax.set_ylim(bottom=0, top=1.5)
    ax.set_xlabel("training compute (FLOPs, 6·N·D)")
    ax.set_ylabel(metric)
    ax.set_title(task)
    ax.grid(alpha=0.3, which="both", linewidth=0.5)
    ax.legend(fontsize=6.5, ncol=2, loc="upper left", frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_all(rows: pd.DataFrame, metrics: dict[str, str], out_dir: Path, target: str | None = None) -> list[Path]:
    return [
        plot_task(rows, task, metrics[task], Path(out_dir) / f"{task}.png", target)
        for task in metrics
        if (rows["task"] == task).any()
    ]
