"""CLI commands for COD: ``capcast cluster`` (compute and save) and ``capcast cluster show`` (print, plot).

Thin shells over :func:`capcast.api.cluster` and :func:`capcast.api.cluster_show` (see docs/cod.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from capcast.cli.common import err_console, split_list, wide_console

cluster_app = typer.Typer(
    help="COD: cluster instances by difficulty, fit per-cluster laws, keep the predictable subset (`cluster show` prints it).",
    invoke_without_command=True,
)


@cluster_app.callback()
def cluster_command(
    ctx: typer.Context,
    samples: Optional[Path] = typer.Option(None, "--samples", help="Samples table (per-instance n_samples, n_correct)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Record store: per-choice (multiple choice) or per-sample records."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Comma-separated tasks (default: all)."),
    family: Optional[str] = typer.Option(None, "--family", help="Family to cluster (when the records hold several)."),
    target: Optional[str] = typer.Option(None, "--target", help="Model to forecast: its run and larger compute are never fitted."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Score to forecast (default pass_rate or p_gold; acc, acc_norm for multiple choice)."),
    anchors: Optional[str] = typer.Option(None, "--anchors", help="Comma-separated models in the records used only as mapping anchors."),
    out: Path = typer.Option(Path("cod-clusters"), "--out", "-o", help="Folder for the results (one sub-folder per task)."),
    method: str = typer.Option("meanshift", "--cluster-method", help="meanshift (the paper's improved MeanShift), kmeans or dbscan."),
    seed: int = typer.Option(0, "--seed", help="Seed (KMeans and the bootstrap)."),
    n_clusters: int = typer.Option(8, "--n-clusters", help="KMeans only: number of clusters."),
    a_min: float = typer.Option(1.0, "--a-min", help="Filter: keep clusters with a > A_MIN."),
    b_min: float = typer.Option(0.1, "--b-min", help="Filter: keep clusters with b > B_MIN."),
    c_min: float = typer.Option(0.0, "--c-min", help="Filter: keep clusters with c >= C_MIN."),
    c_max: float = typer.Option(1.0, "--c-max", help="Filter: keep clusters with c < C_MAX."),
    bootstrap: int = typer.Option(200, "--bootstrap", min=0, help="Bootstrap replicates over instances for the interval."),
    interval: float = typer.Option(0.9, "--interval", help="Prediction interval level (with --target)."),
    max_params: Optional[float] = typer.Option(None, "--max-params", help="Fit only checkpoints with at most this many parameters."),
) -> None:
    """Compute and save COD's clusters and predictable subset for each task (`capcast cluster show` prints them)."""
    if ctx.invoked_subcommand is not None:
        return
    from capcast import api
    from capcast.cod.cluster_law import Thresholds

    results = api.cluster(
        samples=samples, store=store, tasks=split_list(tasks), family=family, target=target, metric=metric,
        anchors=split_list(anchors), out=out, method=method, seed=seed, n_clusters=n_clusters,
        thresholds=Thresholds(a_min, b_min, c_min, c_max), bootstrap=bootstrap, level=interval, max_params=max_params,
    )
    for result in results:
        render(result)
    err_console.print(f"saved {len(results)} task(s) to {out}; `capcast cluster show --out {out}` prints them and writes the plots",
                      markup=False, highlight=False, soft_wrap=True)


@cluster_app.command("show")
def show_command(
    out: Path = typer.Option(Path("cod-clusters"), "--out", "-o", help="Folder written by `capcast cluster`."),
    tasks: Optional[str] = typer.Option(None, "--tasks", "-t", help="Comma-separated tasks (default: all saved)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Folder for the cluster plots (default: each task's folder)."),
) -> None:
    """Print cluster sizes, per-cluster fits and kept/dropped with the reason; write a plot of the cluster curves."""
    from capcast import api
    from capcast.cod.plots import plot_result

    for result in api.cluster_show(out, split_list(tasks)):
        render(result)
        path = plot_result(result, (plot or out / result.task) / f"clusters-{result.task}.png")
        err_console.print(f"wrote {path}", markup=False, highlight=False)


def render(result) -> None:
    """One task's clusters, fits, filter, mapping and (with a target) forecast."""
    from capcast.cod.commands import cluster_rows

    console = wide_console()
    say = lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    say(f"COD clusters of {result.family} / {result.task} ({result.metric}; features {result.feature}, "
        f"{len(result.checkpoints)} checkpoints, {result.config.method})")
    table = Table()
    for col in ("cluster", "size", "a", "b", "c", "g", "rmse", "kept", "reason"):
        table.add_column(col, justify="left" if col == "reason" else "right", overflow="fold")
    for row in cluster_rows(result):
        table.add_row(str(row["cluster"]), str(row["size"]), *(f"{row[k]:.3g}" for k in ("a", "b", "c", "g", "rmse")),
                      "yes" if row["kept"] else "no", row["reason"])
    if result.clusters:
        console.print(table)
    say(result.notes())
    if result.radius is not None:
        say(f"radius {result.radius:.4g} ({result.rounds} rounds); filter: {result.config.thresholds.text()}")
    if result.mapping is not None:
        m = result.mapping
        say(f"mapping: monotone cubic spline through (0,0), (1,1), {m.interior_knots} interior knots, RMSE {m.rmse:.4f} "
            f"({'below' if m.reached_target else 'NOT below'} {result.config.rmse_target}) on {m.n_points} checkpoints"
            + (f" + {m.n_anchors} anchors" if m.n_anchors else ""))
    f = result.forecast
    if f:
        if f["status"] == "ok":
            actual = "" if f["actual"] is None else f", actual {f['actual']:.4g}"
            say(f"forecast of {f['target']}: {f['forecast']:.4g} [{f['lower']:.4g}, {f['upper']:.4g}] at {100 * f['level']:g}% "
                f"(subset {f['subset_forecast']:.4g}){actual}")
        else:
            say(f"forecast of {f['target']}: {f['status']}: {f['reason']}")
