"""The scores table: per-(checkpoint, task, metric) values computed from the record store.

Multiple-choice metrics, per item then averaged over items (``n_items``):

- ``acc``: the gold choice has the highest summed log-likelihood (ties: first choice, as
  ``numpy.argmax`` in lm-eval);
- ``acc_norm``: the same on log-likelihood divided by the choice's character length (lm-eval's
  definition; bytes and characters coincide for ASCII);
- ``brier``: multi-class Brier score, sum over choices of (p_i - y_i)^2 with p the softmax of the
  choice log-likelihoods (lower is better);
- ``p_gold``: probability of the gold choice, renormalised over the choices;
- ``logprob_gold``: summed log-probability of the gold continuation;
- ``bpb_gold``: bits per UTF-8 byte of the gold continuation, -logprob / ln 2 / bytes, computed per
  item and then averaged (mean of ratios);

and for generative tasks ``pass_rate``: per item the fraction of its samples that pass the
checker, averaged over items.

``chance``: 1 / number of choices for acc, acc_norm and p_gold (or the task's own ``chance``
when it set one), 1 - 1 / number of choices for brier (uniform guessing), the task's chance for
pass_rate, empty otherwise.

Every sum runs in a fixed order (choices by index, items by doc_id), so the table is the same to
the last digit on every run: DuckDB's parallel sums would otherwise change the last float digits
from run to run.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from capcast.schema import RUN_SUFFIX_PATTERN, SCORES_COLUMNS
from capcast.store import Store

_MC_ITEMS = """
WITH base AS (
    SELECT family, checkpoint, task, doc_id, choice_idx, loglik, n_bytes, is_gold,
           loglik / nullif(n_chars, 0) AS ll_norm,
           max(loglik) OVER doc AS max_ll,
           count(*) OVER doc AS n_choices
    FROM choices
    WINDOW doc AS (PARTITION BY family, checkpoint, task, doc_id ORDER BY choice_idx ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
), probs AS (
    SELECT *,
           exp(loglik - max_ll) / sum(exp(loglik - max_ll)) OVER doc AS prob,
           max(ll_norm) OVER doc AS max_norm
    FROM base
    WINDOW doc AS (PARTITION BY family, checkpoint, task, doc_id ORDER BY choice_idx ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
)
SELECT family, checkpoint, task, doc_id,
       any_value(n_choices) AS n_choices,
       min(choice_idx) FILTER (WHERE loglik = max_ll) AS pred,
       min(choice_idx) FILTER (WHERE ll_norm = max_norm) AS pred_norm,
       coalesce(list(choice_idx) FILTER (WHERE is_gold), []) AS golds,
       coalesce(sum(prob) FILTER (WHERE is_gold), 0.0) AS p_gold,
       sum((prob - is_gold::DOUBLE) ^ 2) AS brier,
       arg_min(loglik, choice_idx) FILTER (WHERE is_gold) AS ll_gold,
       arg_min(n_bytes, choice_idx) FILTER (WHERE is_gold) AS bytes_gold
FROM probs
GROUP BY family, checkpoint, task, doc_id
"""

_MC_SCORES = f"""
WITH items AS ({_MC_ITEMS})
SELECT family, checkpoint, task,
       count(*) AS n_items,
       avg(CASE WHEN list_contains(golds, pred) THEN 1.0 ELSE 0.0 END ORDER BY doc_id) AS acc,
       avg(CASE WHEN list_contains(golds, pred_norm) THEN 1.0 ELSE 0.0 END ORDER BY doc_id) AS acc_norm,
       avg(brier ORDER BY doc_id) AS brier,
       avg(p_gold ORDER BY doc_id) AS p_gold,
       avg(ll_gold ORDER BY doc_id) AS logprob_gold,
       avg(-ll_gold / ln(2) / nullif(bytes_gold, 0) ORDER BY doc_id) AS bpb_gold,
       avg(1.0 / n_choices ORDER BY doc_id) AS uniform_chance,
       avg(1.0 - 1.0 / n_choices ORDER BY doc_id) AS uniform_brier
FROM items
GROUP BY family, checkpoint, task
"""

_GEN_SCORES = """
WITH items AS (
    SELECT family, checkpoint, task, doc_id, avg(correct::DOUBLE) AS pass_frac
    FROM samples GROUP BY family, checkpoint, task, doc_id
)
SELECT family, checkpoint, task, count(*) AS n_items, avg(pass_frac ORDER BY doc_id) AS pass_rate
FROM items GROUP BY family, checkpoint, task
"""

# (metric, value column, chance expression) per metric of multiple-choice tasks.
_MC_METRICS = (
    ("acc", "acc", "coalesce(nullif(r.chance, 0), s.uniform_chance)"),
    ("acc_norm", "acc_norm", "coalesce(nullif(r.chance, 0), s.uniform_chance)"),
    ("brier", "brier", "s.uniform_brier"),
    ("p_gold", "p_gold", "coalesce(nullif(r.chance, 0), s.uniform_chance)"),
    ("logprob_gold", "logprob_gold", "NULL"),
    ("bpb_gold", "bpb_gold", "NULL"),
)

# The training run: the manifest's, or for stores written before runs existed the default rule
# (the checkpoint name without a trailing -step<N>/_step<N>, capcast.schema.default_run).
_RUN = f"coalesce(r.run, regexp_replace(s.checkpoint, '{RUN_SUFFIX_PATTERN}', '')) AS run"
_RUN_COLUMNS = "r.params, r.tokens, r.flops, r.step"


def scores_query() -> str:
    """The SQL (over the store's views) that yields the long-format scores table."""
    parts = [
        f"""SELECT s.family, {_RUN}, s.checkpoint AS model, {_RUN_COLUMNS}, s.task, '{metric}' AS metric,
                   s.{column}::DOUBLE AS value, s.n_items, ({chance})::DOUBLE AS chance
            FROM ({_MC_SCORES}) s JOIN runs r USING (family, checkpoint, task)"""
        for metric, column, chance in _MC_METRICS
    ]
    parts.append(
        f"""SELECT s.family, {_RUN}, s.checkpoint AS model, {_RUN_COLUMNS}, s.task, 'pass_rate' AS metric,
                   s.pass_rate::DOUBLE AS value, s.n_items, r.chance::DOUBLE AS chance
            FROM ({_GEN_SCORES}) s JOIN runs r USING (family, checkpoint, task)"""
    )
    columns = ", ".join(SCORES_COLUMNS)
    return f"SELECT {columns} FROM ({' UNION ALL '.join(parts)}) ORDER BY family, flops, run, model, task, metric"


def scores_from_store(store_dir: str | Path) -> pd.DataFrame:
    """The long-format scores table (``capcast.schema.SCORES_COLUMNS``) of everything stored."""
    with Store(store_dir).connect() as con:
        df = con.execute(scores_query()).df()
    return df.reset_index(drop=True)
