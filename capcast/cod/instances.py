"""Per-instance records for COD: one row per (checkpoint, task, instance) with its expected correctness.

The **instances table** has the checkpoint columns of the samples table
(``family, run, model, params, tokens, flops, step, task, doc_id``), ``kind`` (``generate`` or
``multiple_choice``), ``chance`` (the task's guess rate) and one column per per-instance metric:

- generative tasks: ``pass_rate``, the instance's pass-rate estimate (fixed repeats: c/n;
  PassUntil counts stopped at the r-th success: the unbiased (r-1)/(K-1), see
  :func:`capcast.tables.samples.instance_rates`);
- multiple-choice tasks: ``p_gold`` (the gold choice's probability renormalised over the choices),
  ``acc`` and ``acc_norm`` (0/1 correctness), from the store's ``choices`` view with the same SQL
  as the scores table, so a checkpoint's mean equals its scores-table value.

Sources: a samples table (:func:`from_samples`) or a record store (:func:`from_store`: choices for
multiple choice, the ``samples`` view for generative ``capcast eval`` runs with repeats).
A scores table holds no per-instance records, so COD cannot run on one (:func:`require_instances`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from capcast.errors import CapcastError
from capcast.tables.samples import instance_rates, validate_samples

CHECKPOINT_COLUMNS = ("family", "run", "model", "params", "tokens", "flops", "step", "task", "doc_id")
MC_METRICS = ("p_gold", "acc", "acc_norm")
GEN_METRICS = ("pass_rate",)
NEEDS_INSTANCES = ("COD needs per-instance records: give --samples FILE (a samples table) or a family spec "
                   "with its --store (per-choice or per-sample records), not a scores table")


def from_samples(samples: pd.DataFrame) -> pd.DataFrame:
    """The instances table of a samples table (validated here when it is not already)."""
    frame = samples if "flops" in samples.columns and samples["flops"].notna().all() else validate_samples(samples)
    out = frame[list(CHECKPOINT_COLUMNS)].copy()
    out["pass_rate"] = instance_rates(frame)
    out["kind"] = "generate"
    out["chance"] = 0.0
    return out.reset_index(drop=True)


def _store_query() -> str:
    from capcast.evaluation.scores import _MC_ITEMS  # the scores table's own per-item SQL

    from capcast.schema import RUN_SUFFIX_PATTERN

    run = f"coalesce(r.run, regexp_replace(i.checkpoint, '{RUN_SUFFIX_PATTERN}', ''))"
    return f"""
    SELECT i.family, {run} AS run, i.checkpoint AS model, r.params, r.tokens, r.flops, r.step, i.task, i.doc_id,
           'multiple_choice' AS kind, coalesce(nullif(r.chance, 0), 1.0 / i.n_choices)::DOUBLE AS chance,
           i.p_gold::DOUBLE AS p_gold,
           CASE WHEN list_contains(i.golds, i.pred) THEN 1.0 ELSE 0.0 END AS acc,
           CASE WHEN list_contains(i.golds, i.pred_norm) THEN 1.0 ELSE 0.0 END AS acc_norm,
           NULL::DOUBLE AS pass_rate
    FROM ({_MC_ITEMS}) i JOIN runs r USING (family, checkpoint, task)
    UNION ALL
    SELECT s.family, {run.replace('i.checkpoint', 's.checkpoint')} AS run, s.checkpoint AS model,
           r.params, r.tokens, r.flops, r.step, s.task, s.doc_id, 'generate' AS kind, coalesce(r.chance, 0)::DOUBLE AS chance,
           NULL, NULL, NULL, avg(s.correct::DOUBLE) AS pass_rate
    FROM samples s JOIN runs r USING (family, checkpoint, task)
    GROUP BY s.family, r.run, s.checkpoint, r.params, r.tokens, r.flops, r.step, s.task, s.doc_id, r.chance
    """


def from_store(store_dir: str | Path, family: str | None = None, models: set[str] | None = None) -> pd.DataFrame:
    """The instances table of everything a record store holds (optionally one family, some checkpoints)."""
    from capcast.store import Store

    store_dir = Path(store_dir)
    if not store_dir.is_dir():
        raise CapcastError(f"store {store_dir} does not exist; run `capcast eval ... --store {store_dir}` first")
    with Store(store_dir).connect() as con:
        frame = con.execute(_store_query()).df()
    if family is not None:
        frame = frame[frame["family"] == family]
    if models is not None:
        frame = frame[frame["model"].isin(models)]
    if frame.empty:
        raise CapcastError(f"store {store_dir} has no per-instance records" + (f" for family {family!r}" if family else "")
                           + "; run `capcast eval` on the family first")
    frame["flops"] = frame["flops"].fillna(6.0 * frame["params"] * frame["tokens"])
    return frame.reset_index(drop=True)


def is_instances(frame) -> bool:
    """Whether ``frame`` is already an instances table (it has a per-instance metric column)."""
    return isinstance(frame, pd.DataFrame) and "kind" in frame.columns and any(c in frame.columns for c in (*MC_METRICS, *GEN_METRICS))


def as_instances(records) -> pd.DataFrame:
    """An instances table from an instances table or a samples table; else one line saying what COD needs."""
    if is_instances(records):
        return records
    if isinstance(records, pd.DataFrame) and {"n_samples", "n_correct", "doc_id"} <= set(records.columns):
        return from_samples(records)
    raise CapcastError(NEEDS_INSTANCES)


def feature_metric(instances: pd.DataFrame, task: str) -> str:
    """The per-instance quantity COD clusters on: ``pass_rate`` (generative) or ``p_gold`` (multiple choice)."""
    kinds = instances.loc[instances["task"] == task, "kind"].unique()
    if len(kinds) == 0:
        raise CapcastError(f"no per-instance records for task {task!r}; available: {', '.join(sorted(instances['task'].unique()))}")
    return "p_gold" if kinds[0] == "multiple_choice" else "pass_rate"


def forecast_metrics(instances: pd.DataFrame, task: str) -> tuple[str, ...]:
    """The metrics COD can forecast for ``task`` (those it has per-instance values of)."""
    return MC_METRICS if feature_metric(instances, task) == "p_gold" else GEN_METRICS


def task_chance(instances: pd.DataFrame, task: str) -> float:
    values = instances.loc[instances["task"] == task, "chance"].to_numpy(dtype=float)
    return float(np.nanmean(values)) if len(values) and np.isfinite(values).any() else 0.0
