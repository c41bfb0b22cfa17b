"""Read and validate a scores table (CSV, Parquet or DataFrame) and cut it into law ``Series``.

The table is long-format (see :mod:`capcast.schema`): one ``value`` per (family, run, model,
tokens, task, metric). A checkpoint is (family, run, model, tokens). A table without a ``run``
column (written before runs existed, or by hand) reads as one run per model, with a note. Validation failures raise one-line
:class:`CapcastError` messages that name the problem and the fix.

Validation losses that belong to no task (rows with task ``val/<name>``) are family-wide: they are
attached to every task's series as ``extra["val/<name>:<metric>"]``; the task's own other metrics
are attached as ``extra[<metric>]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from capcast.errors import CapcastError, note
from capcast.schema import CHECKPOINT_KEY as _CHECKPOINT_KEY
from capcast.schema import FLOPS_PER_PARAM_TOKEN, SCORES_COLUMNS, SCORES_REQUIRED, default_flops
from capcast.tables.series import Series
from capcast.tasks.chance import chance_follows_choices, known_chance

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt")
VALIDATION_PREFIX = "val/"
CHECKPOINT_KEY = list(_CHECKPOINT_KEY)


def read_scores(source: str | Path | pd.DataFrame) -> pd.DataFrame:
    """A validated scores table from a CSV/Parquet path or a DataFrame."""
    if isinstance(source, pd.DataFrame):
        frame, where = source.copy(), "scores table"
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise CapcastError(f"{path}: no such scores file; pass a CSV or Parquet scores table")
        frame = read_table_file(
            path, lambda exc: f"{path}: cannot read the scores table ({type(exc).__name__}); check it is valid CSV/Parquet"
        )
    return validate_scores(frame, where)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def read_table_file(path: Path, unreadable: Callable[[Exception], str]) -> pd.DataFrame:
    """A CSV or Parquet file (by suffix) as a DataFrame; ``unreadable(exc)`` words the one-line
    error for a file that cannot be parsed."""
    if not is_parquet(path) and path.suffix.lower() not in CSV_SUFFIXES:
        raise CapcastError(f"{path}: unknown file type {path.suffix!r}; use .csv or .parquet")
    try:
        return pd.read_parquet(path) if is_parquet(path) else pd.read_csv(path)
    except Exception as exc:  # unreadable file: say so in one line
        raise CapcastError(unreadable(exc)) from None


def validate_scores(frame: pd.DataFrame, where: str = "scores table") -> pd.DataFrame:
    frame = _tokens_from_flops(frame, where)
    missing = [c for c in SCORES_REQUIRED if c not in frame.columns]
    if missing:
        hint = " (or a flops column: tokens are then flops / (6 * params))" if "tokens" in missing else ""
        raise CapcastError(f"{where}: missing column(s) {', '.join(missing)}; a scores table needs {', '.join(SCORES_REQUIRED)}{hint}")
    if frame.empty:
        raise CapcastError(f"{where}: the table has no rows")
    frame = frame.copy()
    fill_run(frame, where)
    for col in ("family", "model", "run", "task", "metric"):
        if frame[col].isna().any():
            raise CapcastError(f"{where}: column {col} has empty values (first at row {_first(frame[col].isna())}); fill them in")
        frame[col] = frame[col].astype(str)
    for col in ("params", "tokens", "value", "flops", "step", "n_items", "chance"):
        if col in frame.columns:
            converted = pd.to_numeric(frame[col], errors="coerce")
            bad = converted.isna() & frame[col].notna()
            if bad.any():
                raise CapcastError(f"{where}: column {col} has a non-number {frame[col][bad].iloc[0]!r} at row {_first(bad)}; use numbers")
            frame[col] = converted.astype(float)
        else:
            frame[col] = np.nan
    for col in ("params", "tokens", "value"):
        if frame[col].isna().any():
            raise CapcastError(f"{where}: column {col} has NaN/empty values (first at row {_first(frame[col].isna())}); drop or fill those rows")
    for col in ("params", "tokens", "flops", "value", "n_items"):
        infinite = np.isinf(frame[col])
        if infinite.any():
            raise CapcastError(f"{where}: column {col} is infinite at row {_first(infinite)}; use finite numbers")
    items = frame["n_items"]
    bad_items = items.notna() & ((items <= 0) | (items % 1 != 0))
    if bad_items.any():
        raise CapcastError(f"{where}: n_items must be a whole number of at least 1 (row {_first(bad_items)} has "
                           f"{items[bad_items].iloc[0]:g}); leave it empty when unknown")
    _check_bounds(frame, where)
    if (frame["params"] <= 0).any():
        raise CapcastError(f"{where}: params must be positive (row {_first(frame['params'] <= 0)} has {frame['params'][frame['params'] <= 0].iloc[0]:g}); use parameter counts such as 1.2e9")
    if (frame["tokens"] < 0).any():
        raise CapcastError(f"{where}: tokens must not be negative (row {_first(frame['tokens'] < 0)}); use training tokens seen")
    frame["flops"] = frame["flops"].where(frame["flops"].notna(), default_flops(frame["params"], frame["tokens"]))
    key = CHECKPOINT_KEY + ["task", "metric"]
    dup = frame.duplicated(key)
    if dup.any():
        row = frame[dup].iloc[0]
        raise CapcastError(f"{where}: duplicate rows for run {row['run']} model {row['model']} tokens {row['tokens']:g} task {row['task']} "
                           f"metric {row['metric']}; keep one value per checkpoint")
    return frame[list(SCORES_COLUMNS)]


def _tokens_from_flops(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """A table that gives training compute but no tokens (as many papers' tables do): tokens are
    flops / (6 params), with a note; a flops value that is not a number is left to the checks below."""
    if "tokens" in frame.columns or "flops" not in frame.columns or "params" not in frame.columns:
        return frame
    flops, params = pd.to_numeric(frame["flops"], errors="coerce"), pd.to_numeric(frame["params"], errors="coerce")
    if flops.isna().any() or params.isna().any() or (params <= 0).any():
        return frame
    note(f"{where}: no tokens column; tokens read as flops / (6 * params)")
    return frame.assign(tokens=flops / (FLOPS_PER_PARAM_TOKEN * params))


def _check_bounds(frame: pd.DataFrame, where: str) -> None:
    """Values of a built-in bounded metric must lie within its bounds: accuracy in percent (87.5)
    or above 1 is refused, not forecast."""
    from capcast.metrics import find_metric

    for metric, rows in frame.groupby("metric", sort=False):
        described = find_metric(str(metric))
        if described is None:
            continue
        values = rows["value"]
        low = described.lower if described.lower is not None else -np.inf
        high = described.upper if described.upper is not None else np.inf
        outside = (values < low) | (values > high)
        if outside.any():
            row = int(rows.index[np.flatnonzero(outside.to_numpy())[0]])
            value = values[outside].iloc[0]
            hint = "; it looks like a percentage: divide by 100" if high == 1 and 1 < value <= 100 else ""
            raise CapcastError(f"{where}: {metric} is {value:g} at row {row}, outside its range [{low:g}, {high:g}]{hint}")


def fill_run(frame: pd.DataFrame, where: str) -> None:
    """Give ``frame`` a ``run`` column in place: missing column or empty cells mean one run per model."""
    if "run" not in frame.columns:
        frame["run"] = frame["model"]
        note(f"{where}: no run column; each model is read as its own training run (add a run column to group checkpoints)")
        return
    empty = frame["run"].isna() | (frame["run"].astype(str).str.strip() == "")
    if empty.any():
        frame.loc[empty, "run"] = frame.loc[empty, "model"]
        note(f"{where}: {int(empty.sum())} row(s) have no run; each of those models is read as its own training run")


def _first(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def tasks_with_metric(frame: pd.DataFrame, metric: str) -> list[str]:
    tasks = frame.loc[frame["metric"] == metric, "task"]
    return sorted(t for t in tasks.unique() if not t.startswith(VALIDATION_PREFIX))


def build_series(frame: pd.DataFrame, task: str, metric: str) -> Series:
    """The (task, metric) series over the checkpoints in ``frame`` (all of them; one family).

    Selection and sorting run on the columns as numpy arrays: on the few dozen rows of a family's
    task, pandas' boolean indexing, sort and group-by cost 15 ms per series, and backtests build a
    series per family and task."""
    tasks, metrics = frame["task"].to_numpy(dtype=object), frame["metric"].to_numpy(dtype=object)
    of_task = tasks == task
    chosen = np.flatnonzero(of_task & (metrics == metric) & (frame["tokens"].to_numpy(dtype=float) > 0))
    flops = frame["flops"].to_numpy(dtype=float)[chosen]
    runs, models = (frame[c].to_numpy(dtype=object)[chosen] for c in ("run", "model"))
    # sorted by flops, then run, then model (stable, as sort_values was)
    order = np.lexsort((_codes(models), _codes(runs), flops))
    rows = frame.iloc[chosen[order]].reset_index(drop=True)
    keys = rows[CHECKPOINT_KEY]
    extra: dict[str, np.ndarray] = {}
    others = np.flatnonzero(of_task & (metrics != metric))
    if len(others):
        for other, group in frame.iloc[others].groupby("metric"):
            extra[str(other)] = _align(keys, group)
    validation = np.flatnonzero([str(t).startswith(VALIDATION_PREFIX) for t in tasks])
    if len(validation):
        for (vtask, vmetric), group in frame.iloc[validation].groupby(["task", "metric"]):
            extra[f"{vtask}:{vmetric}"] = _align(keys, group)
    n_items = rows["n_items"].to_numpy(dtype=float)
    _note_item_counts(task, metric, n_items)
    return Series(
        task=task, metric=metric, model=rows["model"].to_numpy(dtype=object), run=rows["run"].to_numpy(dtype=object),
        params=rows["params"].to_numpy(float),
        tokens=rows["tokens"].to_numpy(float), flops=rows["flops"].to_numpy(float), value=rows["value"].to_numpy(float),
        n_items=n_items if np.isfinite(n_items).any() else None,
        chance=series_chance(rows["chance"], task, metric),
        step=rows["step"].to_numpy(float), family=str(rows["family"].iloc[0]) if len(rows) else None, extra=extra,
    )


def _codes(values: np.ndarray) -> np.ndarray:
    """Integer codes in the sort order of ``values`` (strings: numpy's lexsort takes numbers)."""
    return np.unique(np.asarray(values, dtype=str), return_inverse=True)[1] if len(values) else np.zeros(0, dtype=int)


def series_chance(column: pd.Series, task: str, metric: str) -> float:
    """The task's chance from the table's ``chance`` column; where it is empty, lm-eval's for a
    task :mod:`capcast.tasks.chance` knows (lm-eval's results files carry none), else 0
    (:func:`note_missing_chance` says which)."""
    given = column.dropna()
    if len(given):
        return float(given.iloc[0])
    known = known_chance(task, metric)
    return known[0] if known is not None else 0.0


def note_missing_chance(frame: pd.DataFrame, tasks: list[str], metric: str) -> None:
    """One note for the ``tasks`` whose ``metric`` rows have no chance: those given lm-eval's
    (:func:`series_chance`), and those left at 0 whose chance a multiple-choice task would not leave
    there."""
    rows = frame[(frame["metric"] == metric) & frame["task"].isin(tasks)]
    empty = [t for t, c in rows.groupby("task")["chance"] if c.isna().all()]
    known = {t: known_chance(t, metric) for t in empty}
    used = [f"{t} {k[0]:.4g} ({k[1]})" for t, k in known.items() if k is not None and k[0] > 0]
    unknown = [t for t, k in known.items() if k is None] if chance_follows_choices(metric) else []
    if used:
        note(f"no chance in the table for {len(used)} task(s) ({metric}), lm-eval's used: {', '.join(used)}; a chance column "
             "overrides it")
    if unknown:
        note(f"no chance in the table for {len(unknown)} task(s) ({metric}) and none known: {', '.join(unknown)}: their floor is 0; "
             "a multiple-choice task's chance is 1/choices (brier's 1 - 1/choices): give the table a chance column")


def _note_item_counts(task: str, metric: str, n_items: np.ndarray) -> None:
    """Checkpoints measured on different numbers of items (a 5-item subset beside 40 items) may not
    be comparable: say so in one line rather than forecast from them silently."""
    known = n_items[np.isfinite(n_items)]
    if len(known) > 1 and known.min() != known.max():
        note(f"task {task} ({metric}): checkpoints were measured on different numbers of items ({known.min():g} to {known.max():g}); "
             "their scores may come from different instance sets: evaluate every checkpoint on the same items (same --limit)")


def _align(keys: pd.DataFrame, group: pd.DataFrame) -> np.ndarray:
    merged = keys.merge(group[CHECKPOINT_KEY + ["value"]], on=CHECKPOINT_KEY, how="left")
    return merged["value"].to_numpy(dtype=float)
