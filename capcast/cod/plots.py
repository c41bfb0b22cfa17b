"""The cluster plot of ``capcast cluster show``: each cluster's mean curve and law, and the mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from capcast.cod.pipeline import CODResult


def plot_result(result: CODResult, path: str | Path) -> Path:
    """Left: every cluster's mean score per fitting checkpoint (points) and its fitted law (line;
    kept solid, dropped dashed), the target's forecast and actual when known. Right: the mapping
    from subset to full score through the fitting checkpoints' pairs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compute = result.checkpoints["flops"].to_numpy(float)
    target = result.forecast or {}
    hi = max(compute.max(), float(target.get("flops") or 0.0))
    grid = np.logspace(np.log10(compute.min()), np.log10(hi), 200)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=80, gridspec_kw={"width_ratios": [1.6, 1]})
    colours = plt.get_cmap("tab10")
    for i, c in enumerate(result.clusters):
        colour = colours(i % 10)
        left.scatter(compute, c.curve, s=8, color=colour, alpha=0.6)
        if c.fit.ok:
            left.plot(grid, c.fit.predict(grid, result.config.compute_unit), color=colour, lw=1.4 if c.kept else 0.9,
                      ls="-" if c.kept else "--", label=f"{c.label}: n={c.size} {'kept' if c.kept else 'dropped'}")
    left.plot(compute, result.full_scores, "k.", ms=5, label="full benchmark")
    if target.get("forecast") is not None:
        left.errorbar([target["flops"]], [target["forecast"]], yerr=[[target["forecast"] - target["lower"]], [target["upper"] - target["forecast"]]],
                      fmt="D", color="k", ms=5, capsize=3, label="forecast (full)")
    if target.get("actual") is not None:
        left.plot([target["flops"]], [target["actual"]], "*", color="crimson", ms=11, label="actual")
    left.set_xscale("log")
    left.set_xlabel("training compute (FLOPs)")
    left.set_ylabel(result.metric)
    left.set_title(f"{result.task}: {len(result.kept)} of {len(result.clusters)} clusters kept", fontsize=10)
    left.legend(fontsize=6, loc="upper left", ncol=2)
    if result.mapping is not None:
        x = np.linspace(0, 1, 200)
        right.plot(x, result.mapping(x), "b-", lw=1, label=f"mapping ({result.mapping.interior_knots} knots)")
        right.plot(result.subset_scores, result.full_scores, "k.", ms=5, label="fitting checkpoints")
        for a in result.anchors:
            right.plot([a["subset"]], [a["full"]], "s", color="orange", ms=5)
        top = np.nanmax(np.concatenate([result.subset_scores, result.full_scores, [target.get("subset_forecast") or 0.0]]))
        right.set_xlim(0, min(1.0, 1.3 * top + 1e-3))
        right.set_ylim(0, min(1.0, 1.3 * top + 1e-3))
        right.legend(fontsize=6, loc="upper left")
    else:
        right.text(0.5, 0.5, "no predictable subset:\nno mapping", ha="center", va="center")
    right.set_xlabel("predictable subset score")
    right.set_ylabel("full benchmark score")
    right.set_title("subset -> full", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
