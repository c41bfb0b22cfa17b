"""The samples table: per-instance sampling counts, the PassUntil interchange format.

One row per (checkpoint, task, instance) with columns
``family, run, model, params, tokens, flops, step, task, doc_id, n_samples, n_correct`` (CSV or
Parquet; ``run``, ``flops`` and ``step`` may be empty). A checkpoint is (family, run, model,
tokens), so several checkpoints of one run (say ``model`` = ``Pythia_1.4B`` at 9 token counts, or
one ``model`` name per checkpoint) fit in one table; without ``run`` each model is its own run. An optional ``target_successes`` column records the
PassUntil r the instance was sampled for; the counts then stop at the r-th success (exported that
way by :func:`export_store`), so the unbiased (r-1)/(K-1) estimator applies; an optional
``max_samples`` column the per-instance cap of that design (``n_samples`` never exceeds it); an
optional boolean ``biased`` column marks counts that do not follow their design (PassUntil rounds
an older capcast allocated under a binding budget by the instances' own counts). :func:`task_table`
carries ``biased`` to each task-level row.

Real per-instance data (e.g. published repeated-sampling counts) can be forecast from this table
without re-sampling: :func:`to_series` turns it into one task-level series per (family, task).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from capcast.errors import CapcastError, note
from capcast.passuntil.estimators import task_score, unbiased_pass_rate
from capcast.tables.series import Series
from capcast.schema import CHECKPOINT_KEY, SAMPLES_COLUMNS, default_flops
from capcast.tables.scores import fill_run, is_parquet, read_table_file

REQUIRED = ("family", "model", "params", "tokens", "task", "doc_id", "n_samples", "n_correct")
OPTIONAL = ("flops", "step", "target_successes", "max_samples")
DESIGN = ("target_successes", "max_samples", "biased")  # per-instance design columns kept on write
_TRUE, _FALSE = {"true", "1", "yes", "1.0"}, {"false", "0", "no", "0.0", ""}
KEY = (*CHECKPOINT_KEY, "task", "doc_id")


def _read_file(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise CapcastError(f"{path}: no such samples table; pass a CSV or Parquet file with columns {', '.join(SAMPLES_COLUMNS)}")
    return read_table_file(path, lambda exc: f"{path}: cannot be read as {path.suffix[1:]} ({type(exc).__name__}); check the file")


def validate_samples(frame: pd.DataFrame, source: str = "samples table") -> pd.DataFrame:
    """Check columns, types and counts; return a clean copy. Every mistake is one CapcastError line."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise CapcastError(f"{source}: missing column(s) {', '.join(missing)}; a samples table needs {', '.join(SAMPLES_COLUMNS)}")
    df = frame.copy()
    fill_run(df, source)
    for col in ("family", "model", "run", "task"):
        if df[col].isna().any():
            raise CapcastError(f"{source}: column {col!r} has empty cells (row {int(df[col].isna().idxmax()) + 1}); fill them")
        df[col] = df[col].astype(str)
    numeric = ["params", "tokens", "n_samples", "n_correct"] + [c for c in OPTIONAL if c in df.columns]
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise CapcastError(f"{source}: column {col!r} row {row + 1} holds {df[col].iloc[row]!r}; use a number")
        df[col] = values
    if "biased" in df.columns:
        df["biased"] = _booleans(df["biased"], source)
    if "flops" not in df.columns:
        df["flops"] = np.nan
    df["flops"] = df["flops"].fillna(default_flops(df["params"], df["tokens"]))
    if "step" not in df.columns:
        df["step"] = np.nan
    checks = [
        (df["params"].isna() | (df["params"] <= 0), "params must be a positive number"),
        (df["tokens"].isna() | (df["tokens"] <= 0), "tokens must be a positive number"),
        (df["n_samples"].isna() | (df["n_samples"] < 1) | (df["n_samples"] % 1 != 0), "n_samples must be a whole number >= 1"),
        (df["n_correct"].isna() | (df["n_correct"] < 0) | (df["n_correct"] % 1 != 0), "n_correct must be a whole number >= 0"),
        (df["n_correct"] > df["n_samples"], "n_correct exceeds n_samples"),
    ]
    for col in ("params", "tokens", "flops"):
        checks.append((np.isinf(df[col]), f"{col} must be finite"))
    if "target_successes" in df.columns:
        r = df["target_successes"]
        checks.append((r.notna() & ((r < 1) | (r % 1 != 0)),
                       "target_successes (the PassUntil r) must be a whole number >= 1 (or empty for fixed-n counts)"))
    if "max_samples" in df.columns:
        cap = df["max_samples"]
        checks += [
            (cap.notna() & ((cap < 1) | (cap % 1 != 0)), "max_samples must be a whole number >= 1 (or empty)"),
            (cap.notna() & (df["n_samples"] > cap), "n_samples exceeds max_samples (the per-instance cap)"),
        ]
    for mask, message in checks:
        if mask.any():
            row = int(np.flatnonzero(mask.to_numpy())[0])
            raise CapcastError(f"{source}: row {row + 1}: {message}; fix that row")
    dup = df.duplicated(list(KEY))
    if dup.any():
        row = df[dup].iloc[0]
        raise CapcastError(
            f"{source}: instance doc_id={row['doc_id']} of {row['model']} (run {row['run']}, {row['tokens']:g} tokens) on {row['task']} "
            "appears twice; keep one row per checkpoint (family, run, model, tokens), task and doc_id (add the counts together)"
        )
    df["n_samples"] = df["n_samples"].astype(np.int64)
    df["n_correct"] = df["n_correct"].astype(np.int64)
    return df.reset_index(drop=True)


def _booleans(column: pd.Series, source: str) -> pd.Series:
    """A True/False column from bools, 0/1 or the words true/false (empty = False)."""
    if column.dtype == bool:
        return column
    words = column.map(lambda v: "" if not isinstance(v, str) and pd.isna(v) else str(v).strip().lower())
    bad = ~words.isin(_TRUE | _FALSE)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise CapcastError(f"{source}: column 'biased' row {row + 1} holds {column.iloc[row]!r}; use true or false")
    return words.isin(_TRUE)


def read_samples(path: str | Path) -> pd.DataFrame:
    """Read and validate a samples table (CSV or Parquet)."""
    path = Path(path)
    return validate_samples(_read_file(path), str(path))


def write_samples(frame: pd.DataFrame, path: str | Path) -> Path:
    path = Path(path)
    columns = list(SAMPLES_COLUMNS) + [c for c in DESIGN if c in frame.columns]
    out = frame[columns]
    if is_parquet(path):
        out.to_parquet(path, index=False)
    else:
        out.to_csv(path, index=False)
    return path


def instance_rates(frame: pd.DataFrame, estimator: str = "unbiased") -> np.ndarray:
    """Per-row pass-rate estimates, honouring ``target_successes`` where the table gives it."""
    c, n = frame["n_correct"].to_numpy(), frame["n_samples"].to_numpy()
    if estimator == "mle":
        return c / n
    if "target_successes" not in frame.columns:
        return c / n  # fixed-n binomial counts: c/n is already unbiased
    r = frame["target_successes"].to_numpy(dtype=float)
    out = c / n
    stopped = np.isfinite(r) & (r >= 1) & (c >= r)
    if stopped.any():
        out = out.copy()
        for value in np.unique(r[stopped]):
            rows = stopped & (r == value)
            out[rows] = unbiased_pass_rate(np.minimum(c[rows], value), n[rows], int(value))
    return out


def _note_instance_sets(frame: pd.DataFrame, task: str) -> None:
    """Checkpoints sampled on different instances (a 5-instance subset beside 40) are not
    comparable task-level rates: say so in one line."""
    sets = frame.groupby(list(CHECKPOINT_KEY), sort=False)["doc_id"].agg(frozenset)
    if sets.nunique() > 1:
        sizes = sets.map(len)
        note(f"task {task}: checkpoints were sampled on different instance sets ({sizes.min()} to {sizes.max()} instances, "
             f"{len(frozenset.union(*sets))} in all); their pass rates may not be comparable: sample every checkpoint on the same instances")


def task_table(frame: pd.DataFrame, estimator: str = "unbiased", level: float = 0.9) -> pd.DataFrame:
    """One row per (checkpoint, task): the task-level pass rate, its interval and counts."""
    rows = []
    for (family, run, model, tokens, task), group in frame.groupby([*CHECKPOINT_KEY, "task"], sort=False):
        r_values = group["target_successes"].dropna().unique() if "target_successes" in group else []
        r = int(r_values[0]) if len(r_values) == 1 else None
        c = group["n_correct"].to_numpy()
        if r is not None:
            c = np.minimum(c, r)
        score = task_score(c, group["n_samples"].to_numpy(), r=r, level=level, estimator=estimator)
        first = group.iloc[0]
        extra = {"biased": bool(group["biased"].astype(bool).any())} if "biased" in group else {}
        rows.append(
            {
                "family": family,
                "run": run,
                "model": model,
                "task": task,
                "params": float(first["params"]),
                "tokens": float(tokens),
                "flops": float(first["flops"]),
                "step": first["step"],
                "pass_rate": score.value,
                "lower": score.lower,
                "upper": score.upper,
                "n_instances": score.n_instances,
                "n_unsolved": score.n_unsolved,
                "n_samples": score.n_samples,
                **extra,
            }
        )
    return pd.DataFrame(rows)


def to_series(frame: pd.DataFrame, task: str, family: str | None = None, estimator: str = "unbiased") -> Series:
    """The task-level ``pass_rate`` series of one (family, task), ordered by compute."""
    sub = frame[frame["task"] == task]
    if family is not None:
        sub = sub[sub["family"] == family]
    if sub.empty:
        raise CapcastError(f"samples table has no rows for task {task!r}" + (f" in family {family!r}" if family else ""))
    if family is None and sub["family"].nunique() > 1:
        raise CapcastError(f"samples table holds several families for task {task!r}; pick one with --family")
    _note_instance_sets(sub, task)
    table = task_table(sub, estimator=estimator).sort_values(["flops", "run", "model"])
    return Series(
        task=task,
        metric="pass_rate",
        model=table["model"].to_numpy(),
        run=table["run"].to_numpy(dtype=object),
        params=table["params"].to_numpy(float),
        tokens=table["tokens"].to_numpy(float),
        flops=table["flops"].to_numpy(float),
        value=table["pass_rate"].to_numpy(float),
        n_items=table["n_instances"].to_numpy(),
        chance=0.0,
        step=table["step"].to_numpy(),
        family=str(table["family"].iloc[0]),
        extra={"pass_rate_lower": table["lower"].to_numpy(float), "pass_rate_upper": table["upper"].to_numpy(float)},
    )
