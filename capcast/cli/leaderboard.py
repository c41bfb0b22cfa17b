"""CLI commands for forecast leaderboards: ``capcast leaderboard build`` and ``capcast leaderboard resolve``.

Thin shells over :func:`capcast.api.leaderboard_build` and :func:`capcast.api.leaderboard_resolve`.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from capcast.cli.common import err_console, split_list
from capcast.errors import CapcastError

leaderboard_app = typer.Typer(help="Publish forecasts and backtests as a static site; resolve pre-registered forecasts.",
                              no_args_is_help=True)


@leaderboard_app.command("build")
def build_command(
    results: Optional[List[Path]] = typer.Option(None, "--from", help="Result JSON of `capcast forecast --format json` or `capcast backtest --format json` (repeat for more)."),
    out: Path = typer.Option(..., "--out", help="Folder for the site (replaced whole; built beside it, then renamed)."),
    scores: Optional[List[Path]] = typer.Option(None, "--scores", help="Scores table(s) (CSV/Parquet) to draw checkpoints and place targets in the charts."),
    registry: Optional[Path] = typer.Option(None, "--registry", help="Pre-registration file (JSON lines; default registry.jsonl beside --out)."),
    title: str = typer.Option("capcast forecast leaderboard", "--title", help="The site's title."),
    store: Optional[Path] = typer.Option(None, "--store", help="A record store: backtest its scores (largest size held out) and publish them, with or without --from."),
    methods: Optional[str] = typer.Option(None, "--methods", help="With --store: comma-separated laws to backtest (default auto,sigmoid,logit-linear,linear)."),
) -> None:
    """Build the leaderboard site: methods ranked by backtest MAE, one page per family, a methods page."""
    from capcast import api

    if not results and store is None:
        raise CapcastError("give --from FILE (the JSON of `capcast forecast` or `capcast backtest`) or --store DIR")
    if methods and store is None:
        raise CapcastError("--methods applies with --store only (the --from files carry their own methods)")
    index = api.leaderboard_build(results, out, scores=scores, registry=registry, title=title, store=store,
                                  methods=split_list(methods))
    err_console.print(f"wrote the leaderboard to {index}", markup=False, highlight=False, soft_wrap=True)


@leaderboard_app.command("resolve")
def resolve_command(
    actuals: Path = typer.Option(..., "--actuals", help="Known scores (CSV, Parquet or JSON): model, task, metric, value (family optional)."),
    registry: Path = typer.Option(..., "--registry", help="The pre-registration file the forecasts were registered in."),
) -> None:
    """Add known actual scores to registered forecasts (the forecasts stay as registered); rebuild the site after."""
    from capcast import api

    summary = api.leaderboard_resolve(registry, actuals)
    err_console.print(f"resolved {summary.resolved} forecast(s) ({summary.already} already resolved); "
                      f"{summary.waiting} still waiting for their answer in {summary.registry}",
                      markup=False, highlight=False, soft_wrap=True)
