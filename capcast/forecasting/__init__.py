"""Forecasting from a table: forecast (:mod:`.forecast`), backtest (:mod:`.backtest`), plots
(:mod:`.plots`) and forecasts from samples tables (:mod:`.samples`). Imports no lm-eval."""
