"""Forecast leaderboards: static sites of forecasts, intervals, curves and backtest scores,
with pre-registered forecasts resolved once their answer is known. See docs/leaderboard.md.

    from capcast.leaderboard import build_leaderboard, resolve
    index = build_leaderboard(["forecast.json", "backtest.json"], Path("site"), scores=["scores.csv"])
    resolve(Path("registry.jsonl"), Path("actuals.csv"))
"""

from capcast.leaderboard.registry import ResolveSummary, resolve
from capcast.leaderboard.site import build_leaderboard, default_registry

__all__ = ["build_leaderboard", "default_registry", "resolve", "ResolveSummary"]
