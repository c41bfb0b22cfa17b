"""Where PassUntil runs live in the record store, one atomic Parquet file per sampling round.

Layout, beside ``capcast eval``'s ``parts/`` (which holds one complete folder per fixed-repeat run)::

    store/passuntil/<family>/<checkpoint>/<task>/
        run.json                  settings and checkpoint metadata (replaced atomically per invocation)
        rounds/00000.parquet      every sample of round 0: doc_id, round, sample_idx, text, correct
        rounds/00001.parquet      ...

A round file appears complete or not at all (written under a temporary name, fsynced, renamed),
so a killed ``capcast sample`` loses at most the round in flight and resumes from the rounds on
disk. :func:`connect` adds a DuckDB view ``passuntil_samples`` over all round files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from capcast.passuntil.estimators import truncate_at_rth_success
from capcast.passuntil.sampler import InstanceOutcomes, Sample, SamplerState
from capcast.store import KEY_FIELDS, Store, path_slug, register_parquet_view, write_atomically, write_json, write_parquet_atomic
from capcast.schema import RUN_SUFFIX_PATTERN, SAMPLES_COLUMNS, default_run

ROUND_SCHEMA = pa.schema(
    KEY_FIELDS
    + [
        ("doc_id", pa.int64()),
        ("round", pa.int32()),
        ("sample_idx", pa.int64()),  # position among all samples of this instance
        ("text", pa.string()),
        ("correct", pa.bool_()),
    ]
)


def run_dir(store: Store, family: str, checkpoint: str, task: str) -> Path:
    return store.root / "passuntil" / path_slug(family) / path_slug(checkpoint) / path_slug(task)


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    write_atomically(folder / "run.json", lambda tmp: write_json(dict(manifest), tmp))


def write_round(
    folder: Path, keys: tuple[str, str, str], round_index: int, samples: Mapping[int, list[Sample]], state: SamplerState
) -> Path:
    """Commit one round; ``state`` (not yet advanced) gives each instance's running sample index."""
    cols: dict[str, list] = {name: [] for name in ROUND_SCHEMA.names}
    for doc_id in sorted(samples):
        start = state.outcomes[doc_id].n_samples
        for offset, (text, correct) in enumerate(samples[doc_id]):
            for name, value in zip(("family", "checkpoint", "task"), keys):
                cols[name].append(value)
            cols["doc_id"].append(int(doc_id))
            cols["round"].append(int(round_index))
            cols["sample_idx"].append(start + offset)
            cols["text"].append(str(text))
            cols["correct"].append(bool(correct))
    table = pa.Table.from_pydict(cols, schema=ROUND_SCHEMA)
    path = folder / "rounds" / f"{round_index:05d}.parquet"
    write_parquet_atomic(table, path)
    return path


def load_state(folder: Path, doc_ids) -> SamplerState:
    """Rebuild a run's state from its committed rounds (fresh when there are none)."""
    state = SamplerState.fresh(doc_ids)
    files = sorted((folder / "rounds").glob("[0-9]*.parquet")) if (folder / "rounds").is_dir() else []
    if not files:
        return state
    frame = pd.concat([pq.read_table(f, columns=["doc_id", "round", "sample_idx", "correct"]).to_pandas() for f in files])
    for doc_id, group in frame.sort_values(["doc_id", "sample_idx"]).groupby("doc_id", sort=False):
        outcome = state.outcomes.setdefault(int(doc_id), InstanceOutcomes(int(doc_id)))
        outcome.verdicts = group["correct"].astype(bool).tolist()
    state.rounds_done = int(frame["round"].max()) + 1
    return state


def connect(store: Store | str | Path):
    """The store's DuckDB connection plus a ``passuntil_samples`` view over every round file."""
    store = store if isinstance(store, Store) else Store(store)
    con = store.connect()
    files = sorted(str(p) for p in (store.root / "passuntil").glob("*/*/*/rounds/[0-9]*.parquet"))
    register_parquet_view(con, "passuntil_samples", files, ROUND_SCHEMA, union_by_name=False)
    return con


def manifests(store: Store) -> pd.DataFrame:
    rows = [json.loads(p.read_text()) for p in sorted((store.root / "passuntil").glob("*/*/*/run.json"))]
    return pd.DataFrame(rows)


def _run_of(manifest: pd.Series, checkpoint: str) -> str:
    """The manifest's run; stores written before runs existed fall back to the default rule."""
    run = manifest.get("run")
    return run if isinstance(run, str) and run else default_run(checkpoint)


def export_samples_table(store_dir: str | Path) -> pd.DataFrame:
    """The samples table (capcast.schema.SAMPLES_COLUMNS) of everything a store holds.

    PassUntil runs count each instance's samples up to and including its r-th success (column
    ``target_successes`` = r), the exact sequential design of the unbiased estimator. Generative
    runs of ``capcast eval`` (fixed repeats) give plain binomial counts; where both exist for one
    (family, checkpoint, task), the PassUntil run wins.
    """
    store = Store(store_dir)
    if not store.root.is_dir():
        from capcast.errors import CapcastError

        raise CapcastError(f"{store.root}: no such store; pass the folder given to capcast eval/sample --store")
    rows = []
    meta = manifests(store)
    passuntil_keys: set[tuple[str, str, str]] = set()
    with connect(store) as con:
        ordered = con.execute(
            "SELECT family, checkpoint, task, doc_id, list(correct ORDER BY sample_idx) AS verdicts "
            "FROM passuntil_samples GROUP BY family, checkpoint, task, doc_id"
        ).df()
        fixed = con.execute(
            "SELECT s.family, s.checkpoint, s.task, s.doc_id, count(*) AS n_samples, sum(s.correct::INT) AS n_correct, "
            "any_value(r.params) AS params, any_value(r.tokens) AS tokens, any_value(r.flops) AS flops, any_value(r.step) AS step, "
            f"any_value(coalesce(r.run, regexp_replace(s.checkpoint, '{RUN_SUFFIX_PATTERN}', ''))) AS run "
            "FROM samples s JOIN runs r USING (family, checkpoint, task) GROUP BY s.family, s.checkpoint, s.task, s.doc_id"
        ).df()
    for _, m in meta.iterrows():
        key = (m["family"], m["checkpoint"], m["task"])
        sub = ordered[(ordered.family == key[0]) & (ordered.checkpoint == key[1]) & (ordered.task == key[2])]
        if sub.empty:
            continue
        passuntil_keys.add(key)
        r = int(m["successes"])
        for _, row in sub.iterrows():
            c, n = truncate_at_rth_success(np.asarray(row["verdicts"], dtype=bool), r)
            rows.append(
                {
                    "family": key[0], "run": _run_of(m, key[1]), "model": key[1], "params": m["params"], "tokens": m["tokens"], "flops": m["flops"],
                    "step": m.get("step"), "task": key[2], "doc_id": int(row["doc_id"]), "n_samples": n, "n_correct": c,
                    "target_successes": r,
                }
            )
    for _, row in fixed.iterrows():
        if (row["family"], row["checkpoint"], row["task"]) in passuntil_keys:
            continue
        rows.append(
            {
                "family": row["family"], "run": row["run"], "model": row["checkpoint"], "params": row["params"], "tokens": row["tokens"],
                "flops": row["flops"], "step": row["step"], "task": row["task"], "doc_id": int(row["doc_id"]),
                "n_samples": int(row["n_samples"]), "n_correct": int(row["n_correct"]), "target_successes": np.nan,
            }
        )
    columns = [*SAMPLES_COLUMNS, "target_successes"]
    return pd.DataFrame(rows, columns=columns).sort_values(["family", "task", "flops", "doc_id"]).reset_index(drop=True)
