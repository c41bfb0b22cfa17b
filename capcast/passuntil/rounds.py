"""Where PassUntil runs live in the record store, one atomic Parquet file per sampling round.

Layout, beside ``capcast eval``'s ``parts/`` (which holds one complete folder per fixed-repeat run)::

    store/passuntil/<family>/<checkpoint>/<task>/
        run.json                  settings and checkpoint metadata (replaced atomically per invocation)
        rounds/00000.parquet      every sample of round 0: doc_id, round, sample_idx, text, correct
        rounds/00001.parquet      ...

A round file appears complete or not at all (written under a temporary name, fsynced, renamed),
so a killed ``capcast sample`` loses at most the round in flight and resumes from the rounds on
disk. :func:`connect` adds a DuckDB view ``passuntil_samples`` over all round files.

**Resume rule** (:func:`setting_differences`): stored rounds are continued only when the run's
settings in :data:`RESUME_SETTINGS` match the stored ``run.json``; the budget settings in
:data:`EXTENDABLE_SETTINGS` may only be raised (more samples continue the same sequential run;
the rounds drawn under the smaller cap are a valid prefix of it). Anything else stops
``capcast sample`` with one line, unless ``--force`` starts the run afresh (:func:`restart`).
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
from capcast.passuntil.sampler import LEGACY_ALLOCATION, InstanceOutcomes, Sample, SamplerState
from capcast.store import (
    KEY_FIELDS, Store, fsync_dir, path_slug, register_parquet_view, write_atomically, write_json, write_parquet_atomic,
)
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


# Settings a resumed PassUntil run must share with its stored rounds. weights_hash, task_hash and
# max_batch are compared only when both sides know them (manifests of older capcast lack them).
RESUME_SETTINGS = (
    "model", "revision", "weights_hash", "limit", "task_hash", "successes", "seed", "first_batch", "growth", "max_batch",
    "num_fewshot", "gen_kwargs",  # --num-fewshot (as lm-eval applied it), --gen-kwargs
)
# Budget settings that may be raised (None = unlimited) but not lowered.
EXTENDABLE_SETTINGS = ("max_samples_per_instance", "total_budget")
_OPTIONAL = ("weights_hash", "task_hash", "max_batch", "num_fewshot")


def write_manifest(folder: Path, manifest: Mapping[str, Any]) -> None:
    write_atomically(folder / "run.json", lambda tmp: write_json(dict(manifest), tmp))


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The stored ``run.json`` of a PassUntil run folder, or None when there is none (or unreadable)."""
    try:
        manifest = json.loads((Path(folder) / "run.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def has_rounds(folder: Path) -> bool:
    return any((Path(folder) / "rounds").glob("[0-9]*.parquet")) if (Path(folder) / "rounds").is_dir() else False


def setting_differences(stored: Mapping[str, Any], requested: Mapping[str, Any], n_docs: int | None = None):
    """``(refused, extended)``: lists of ``(setting, stored value, requested value)``.

    ``refused``: settings of :data:`RESUME_SETTINGS` that differ (a ``limit`` at or above the task's
    ``n_docs`` counts as none; ``task_hash`` is compared only when the limits agree), and budget
    settings that were lowered. ``extended``: budget settings that were raised (allowed).
    """

    def whole(limit):
        return None if limit is None or (n_docs is not None and int(limit) >= n_docs) else int(limit)

    refused, extended = [], []
    limits_agree = whole(stored.get("limit")) == whole(requested.get("limit"))
    for key in RESUME_SETTINGS:
        have, want = stored.get(key), requested.get(key)
        if key == "limit":
            differs = not limits_agree
        elif key in _OPTIONAL:
            differs = have is not None and want is not None and have != want and (key != "task_hash" or limits_agree)
        else:
            differs = have != want
        if differs:
            refused.append((key, have, want))
    for key in EXTENDABLE_SETTINGS:
        have, want = stored.get(key), requested.get(key)
        if have == want:
            continue
        raised = want is None or (have is not None and want > have)  # None = no cap
        (extended if raised else refused).append((key, have, want))
    return refused, extended


def restart(store: Store, folder: Path, manifest: Mapping[str, Any]) -> None:
    """Start the run at ``folder`` afresh (``capcast sample --force``): a new folder holding only
    ``manifest`` is made under the store's ``tmp/`` and swapped in by :meth:`Store.replace_dir`,
    so the old rounds stay whole until the new run's manifest is in place, then are deleted."""
    staged = store.new_tmp_dir()
    write_json(dict(manifest), staged / "run.json")
    fsync_dir(staged)
    store.replace_dir(staged, Path(folder))


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


# Per-instance design columns of the exported samples table (see export_samples_table).
DESIGN_COLUMNS = ("target_successes", "max_samples", "biased")


def _cap_of(manifest: pd.Series) -> int | None:
    cap = manifest.get("max_samples_per_instance")
    return int(cap) if cap is not None and not pd.isna(cap) else None


def _legacy_allocation(manifest: pd.Series) -> bool:
    """Whether a run's budget-bound rounds may have been allocated by the instances' own counts."""
    allocation = manifest.get("allocation")
    if isinstance(allocation, str):
        return allocation == LEGACY_ALLOCATION
    extended = manifest.get("extended")
    budgets = [manifest.get("total_budget")]
    if isinstance(extended, list):
        budgets += [e.get("total_budget") for e in extended if isinstance(e, dict) and "total_budget" in e]
    return any(b is not None and not pd.isna(b) for b in budgets)


def export_samples_table(store_dir: str | Path) -> pd.DataFrame:
    """The samples table (capcast.schema.SAMPLES_COLUMNS) of everything a store holds.

    PassUntil runs count each instance's samples up to and including its r-th success (column
    ``target_successes`` = r), the exact sequential design of the unbiased estimator; column
    ``max_samples`` is the run's per-instance cap (the design is "r successes or ``max_samples``";
    an instance below both was cut by the total budget or an interrupted run, and its c/n is a
    fixed-n estimate). Column ``biased`` is True for every instance of a run whose stored rounds an
    older capcast allocated under a binding ``--total-budget`` by the instances' own counts (its
    ``run.json`` says ``allocation: precision-priority``, or has none and a budget) and that left
    instances cut short: those counts do not follow the design and the estimates are biased.
    Generative runs of ``capcast eval`` (fixed repeats) give plain binomial counts (both design
    columns empty); where both exist for one (family, checkpoint, task), the PassUntil run wins.
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
        cap = _cap_of(m)
        counts = [truncate_at_rth_success(np.asarray(row["verdicts"], dtype=bool), r) for _, row in sub.iterrows()]
        cut_short = any(c < r and (cap is None or n < cap) for c, n in counts)
        biased = bool(cut_short and _legacy_allocation(m))
        for (_, row), (c, n) in zip(sub.iterrows(), counts):
            rows.append(
                {
                    "family": key[0], "run": _run_of(m, key[1]), "model": key[1], "params": m["params"], "tokens": m["tokens"], "flops": m["flops"],
                    "step": m.get("step"), "task": key[2], "doc_id": int(row["doc_id"]), "n_samples": n, "n_correct": c,
                    "target_successes": r, "max_samples": cap if cap is not None else np.nan, "biased": biased,
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
                "max_samples": np.nan, "biased": False,
            }
        )
    columns = [*SAMPLES_COLUMNS, *DESIGN_COLUMNS]
    return pd.DataFrame(rows, columns=columns).sort_values(["family", "task", "flops", "doc_id"]).reset_index(drop=True)
