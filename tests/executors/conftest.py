"""Fixtures of the executors' tests: one tiny family, its grid evaluated in-process once, and the
store's records as comparable tables (real lm-eval runs on tiny real checkpoints)."""

from __future__ import annotations

from pathlib import Path

import pytest

TASKS = ("capcast_add_mc", "capcast_add_gen")
LIMIT = 4
OPTIONS = dict(limit=LIMIT, batch_size=8, device="cpu", progress=False)
# Run columns that must agree between executors (times, durations and host details may not).
RUN_COLUMNS = ("family", "checkpoint", "task", "run", "kind", "model", "weights_hash", "seed", "limit", "repeats", "n_docs", "n_records",
               "task_hash")


def same_records(got: dict, want: dict) -> bool:
    """The same records, run for run and row for row; log-likelihoods to float32 rounding (another
    process may sum a float32 matmul in another order: 1e-7 apart, so the files' checksums differ)."""
    if got.keys() != want.keys() or any(len(got[k]) != len(want[k]) for k in want):
        return False
    loglik = 5  # the column after the keys, doc_id and choice_idx
    for a, b in zip(got["choices"], want["choices"]):
        if a[:loglik] + a[loglik + 1:] != b[:loglik] + b[loglik + 1:] or abs(a[loglik] - b[loglik]) > 1e-5 * max(1.0, abs(b[loglik])):
            return False
    return got["samples"] == want["samples"] and got["runs"] == want["runs"]


def store_records(store: Path) -> dict:
    """Every record and run of ``store``, sorted: equal dicts mean the same records, none lost or duplicated."""
    from capcast.store import Store

    columns = ", ".join(f"\"{name}\"" for name in RUN_COLUMNS)  # "limit" is an SQL word
    with Store(store).connect() as con:
        return {
            "choices": con.execute("SELECT * FROM choices ORDER BY family, checkpoint, task, doc_id, choice_idx").fetchall(),
            "samples": con.execute("SELECT * FROM samples ORDER BY family, checkpoint, task, doc_id, sample_idx").fetchall(),
            "runs": con.execute(f"SELECT {columns} FROM runs ORDER BY family, checkpoint, task").fetchall(),
        }


@pytest.fixture(scope="session")
def grid(tmp_path_factory):
    """The grid of 2 checkpoints x 2 tasks: ``.spec``, ``.reference`` (the in-process store), ``.records``
    (its records), ``.tasks``, ``.options`` (of every evaluation) and ``.records_of(store)``."""
    from types import SimpleNamespace

    from capcast.evaluation.runner import evaluate_family
    from capcast.testing import build_tiny_family

    root = tmp_path_factory.mktemp("executors")
    spec = build_tiny_family(root / "family", sizes=("xs", "s"))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
            mp.setenv(key, value)
        summary = evaluate_family(spec, list(TASKS), root / "reference", **OPTIONS)
    assert len(summary.evaluated) == 4
    records = store_records(root / "reference")
    assert len(records["runs"]) == 4 and records["choices"] and records["samples"]
    return SimpleNamespace(spec=spec, reference=root / "reference", records=records, tasks=TASKS, options=OPTIONS, records_of=store_records,
                           same=same_records)


def passuntil_rounds(store: Path) -> list:
    """Every stored PassUntil sample of ``store``, sorted: equal lists mean the same draws, none lost or twice."""
    from capcast.passuntil import rounds

    with rounds.connect(store) as con:
        return con.execute("SELECT * FROM passuntil_samples ORDER BY family, checkpoint, task, doc_id, sample_idx").fetchall()


def passuntil_manifests(store: Path) -> dict:
    """Every run.json, by run folder (settings, hashes and versions: all must agree)."""
    import json

    return {str(p.parent.relative_to(store)): json.loads(p.read_text()) for p in sorted((store / "passuntil").glob("*/*/*/run.json"))}


@pytest.fixture(scope="session")
def sampled(grid, tmp_path_factory):
    """``capcast sample`` of the grid's two checkpoints in-process: ``.store``, ``.summaries``, ``.config``,
    ``.options``, ``.task`` and ``.rounds_of(store)`` / ``.manifests_of(store)``."""
    from types import SimpleNamespace

    from capcast import api
    from capcast.passuntil.sampler import SamplerConfig

    config, options, task = SamplerConfig(successes=1, max_samples_per_instance=6, first_batch=2), dict(limit=3, batch_size=8, device="cpu", seed=7), "capcast_add_gen"
    store = tmp_path_factory.mktemp("sample-serial") / "store"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
            mp.setenv(key, value)
        summaries = api.sample(grid.spec, [task], store, config, **options)
    assert [s.checkpoint for s in summaries] == ["tiny-xs", "tiny-s"] and all(s.samples > 0 for s in summaries)
    return SimpleNamespace(store=store, summaries=summaries, config=config, options=options, task=task, rounds_of=passuntil_rounds,
                           manifests_of=passuntil_manifests)
