"""The record store and the scores SQL on hand-built records (real Parquet, real DuckDB)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from capcast.errors import CapcastError
from capcast.schema import SCORES_COLUMNS
from capcast.evaluation.scores import scores_from_store
from capcast.store import CHOICES_SCHEMA, RUNS_SCHEMA, SAMPLES_SCHEMA, Store


def manifest(checkpoint: str, task: str, **extra) -> dict:
    return {"family": "fam", "checkpoint": checkpoint, "task": task, "params": 1e6, "tokens": 2e7, "flops": 1.2e14, "step": 10, **extra}


def choices(logliks: list[list[float]], golds: list[int], chars: list[list[int]] | None = None) -> pa.Table:
    doc_id, idx, ll, n_chars, gold = [], [], [], [], []
    for d, row in enumerate(logliks):
        for i, value in enumerate(row):
            doc_id.append(d)
            idx.append(i)
            ll.append(value)
            n_chars.append(chars[d][i] if chars else 2)
            gold.append(i == golds[d])
    n = len(ll)
    return pa.table(
        {
            "doc_id": pa.array(doc_id, pa.int64()),
            "choice_idx": pa.array(idx, pa.int32()),
            "loglik": pa.array(ll, pa.float64()),
            "n_tokens": pa.array(n_chars, pa.int32()),
            "n_bytes": pa.array([c + 1 for c in n_chars], pa.int32()),
            "n_chars": pa.array(n_chars, pa.int32()),
            "is_greedy": pa.array([False] * n),
            "is_gold": pa.array(gold),
        }
    )


def test_empty_store_has_typed_views(tmp_path):
    with Store(tmp_path).connect() as con:
        for view, schema in (("choices", CHOICES_SCHEMA), ("samples", SAMPLES_SCHEMA), ("runs", RUNS_SCHEMA)):
            cols = [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()]
            assert cols == schema.names
            assert con.execute(f"SELECT count(*) FROM {view}").fetchone()[0] == 0
    assert list(scores_from_store(tmp_path).columns) == list(SCORES_COLUMNS)


def test_write_run_is_keyed_atomic_and_never_overwrites(tmp_path):
    store = Store(tmp_path)
    table = choices([[-1.0, -2.0]], [0])
    assert not store.has_run("fam", "a/b", "t")
    path = store.write_run(manifest("a/b", "t"), "multiple_choice", table)
    assert store.has_run("fam", "a/b", "t") and path.parent.name == "a%2Fb"
    assert sorted(p.name for p in path.iterdir()) == ["choices.parquet", "run.json", "run.parquet"]
    assert not any((tmp_path / "tmp").iterdir())
    with pytest.raises(CapcastError, match="already exists"):
        store.write_run(manifest("a/b", "t"), "multiple_choice", table)
    # Garbage a killed writer left under tmp/ is invisible to readers and cleaned on demand.
    (tmp_path / "tmp" / "deadbeef").mkdir()
    (tmp_path / "tmp" / "deadbeef" / "choices.parquet").write_bytes(b"partial")
    with store.connect() as con:
        assert con.execute("SELECT count(*), min(checkpoint), min(family) FROM choices").fetchone() == (2, "a/b", "fam")
        assert con.execute("SELECT n_records, kind FROM runs").fetchone() == (2, "multiple_choice")
    store.clean_tmp()
    assert not (tmp_path / "tmp").exists()


def test_names_that_look_like_paths_stay_inside_the_store(tmp_path):
    store = Store(tmp_path)
    store.write_run(manifest("..", "../x"), "multiple_choice", choices([[-1.0, -2.0]], [1]))
    assert store.run_dir("fam", "..", "../x").resolve().is_relative_to((tmp_path / "parts").resolve())
    with store.connect() as con:
        assert con.execute("SELECT DISTINCT checkpoint, task FROM choices").fetchall() == [("..", "../x")]


def test_durable_file_helpers_are_whole_or_nothing(tmp_path):
    import duckdb
    import pyarrow.parquet as pq

    from capcast.store import path_slug, register_parquet_view, write_atomically, write_parquet_atomic

    assert path_slug("a/b") == "a%2Fb" and path_slug("..") == "%2E." and path_slug(".x") == "%2Ex"
    path = tmp_path / "deep" / "part.parquet"
    write_parquet_atomic(pa.table({"x": [1, 2]}), path)
    write_parquet_atomic(pa.table({"x": [3]}), path)  # replaces, leaves no temporary file behind
    assert pq.read_table(path).column("x").to_pylist() == [3]
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]

    def crash(tmp):
        tmp.write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, crash)  # a failed write keeps the old file and removes its temporary
    assert pq.read_table(path).column("x").to_pylist() == [3]
    assert [p.name for p in path.parent.iterdir()] == ["part.parquet"]
    con = duckdb.connect()
    register_parquet_view(con, "parts", [str(path)], CHOICES_SCHEMA)
    register_parquet_view(con, "empty", [], CHOICES_SCHEMA)
    assert con.execute("SELECT x FROM parts").fetchall() == [(3,)]
    assert [r[0] for r in con.execute("DESCRIBE empty").fetchall()] == CHOICES_SCHEMA.names


def test_mc_scores_match_numpy(tmp_path):
    store = Store(tmp_path)
    rng = np.random.default_rng(0)
    logliks = rng.normal(-5, 2, size=(30, 4))
    golds = rng.integers(0, 4, size=30)
    chars = rng.integers(1, 6, size=(30, 4))
    store.write_run(manifest("c1", "mc", chance=0.0), "multiple_choice", choices(logliks.tolist(), golds.tolist(), chars.tolist()))
    got = scores_from_store(tmp_path).set_index("metric")

    p = np.exp(logliks - logliks.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(4)[golds]
    rows = np.arange(30)
    expected = {
        "acc": np.mean(logliks.argmax(1) == golds),
        "acc_norm": np.mean((logliks / chars).argmax(1) == golds),
        "brier": np.mean(((p - onehot) ** 2).sum(1)),
        "p_gold": np.mean(p[rows, golds]),
        "logprob_gold": np.mean(logliks[rows, golds]),
        "bpb_gold": np.mean(-logliks[rows, golds] / math.log(2) / (chars[rows, golds] + 1)),
    }
    for metric, value in expected.items():
        assert got.loc[metric, "value"] == pytest.approx(value, rel=1e-12), metric
    assert (got["n_items"] == 30).all()
    assert got.loc["acc", "chance"] == 0.25 and got.loc["brier", "chance"] == 0.75
    assert math.isnan(got.loc["bpb_gold", "chance"])
    assert got.loc["acc", "flops"] == 1.2e14 and got.loc["acc", "model"] == "c1"


def test_ties_go_to_the_first_choice_like_numpy_argmax(tmp_path):
    store = Store(tmp_path)
    # Two tied items (the first choice wins) and one untied: all-equal log-likelihoods are refused as degenerate.
    store.write_run(manifest("c", "tie"), "multiple_choice", choices([[-1.0, -1.0], [-1.0, -1.0], [-1.0, -2.0]], [0, 1, 0]))
    got = scores_from_store(tmp_path).set_index("metric")
    assert got.loc["acc", "value"] == pytest.approx(2 / 3)
    assert got.loc["p_gold", "value"] == pytest.approx((0.5 + 0.5 + 1 / (1 + math.exp(-1))) / 3)


def test_pass_rate_is_the_mean_over_items_of_the_fraction_correct(tmp_path):
    store = Store(tmp_path)
    verdicts = {0: [True, False, False, False], 1: [True, True], 2: [False]}
    rows = [(d, k, v) for d, vs in verdicts.items() for k, v in enumerate(vs)]
    table = pa.table(
        {
            "doc_id": pa.array([r[0] for r in rows], pa.int64()),
            "sample_idx": pa.array([r[1] for r in rows], pa.int32()),
            "text": pa.array(["x"] * len(rows)),
            "correct": pa.array([r[2] for r in rows]),
            "target": pa.array(["y"] * len(rows)),
        }
    )
    store.write_run(manifest("c", "gen", chance=0.0), "generate", table)
    got = scores_from_store(tmp_path)
    assert got["metric"].tolist() == ["pass_rate"]
    assert got["value"].iloc[0] == pytest.approx((0.25 + 1.0 + 0.0) / 3)
    assert got["n_items"].iloc[0] == 3 and got["chance"].iloc[0] == 0.0


def test_weights_hash_cache_is_used_until_the_files_change(tmp_path):
    import hashlib
    import os

    from capcast.evaluation.records import weights_hash

    model = tmp_path / "ckpt"
    model.mkdir()
    weights = model / "model.safetensors"
    weights.write_bytes(b"\x01" * 1000)
    expected = hashlib.sha256(b"model.safetensors\0" + b"\x01" * 1000).hexdigest()

    store = Store(tmp_path / "store")
    known = store.load_weights_hash_cache()
    assert known == {}
    assert weights_hash(str(model), known=known) == expected
    store.save_weights_hash_cache(known)
    reloaded = store.load_weights_hash_cache()
    assert list(reloaded.values()) == [expected]

    # Unchanged files: the cached digest is returned without reading the bytes.
    (fingerprint,) = reloaded
    reloaded[fingerprint] = "cached-digest"
    assert weights_hash(str(model), known=reloaded) == "cached-digest"

    # Rewritten bytes (same size): a new fingerprint, so the file is hashed again.
    weights.write_bytes(b"\x02" * 1000)
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    fresh = hashlib.sha256(b"model.safetensors\0" + b"\x02" * 1000).hexdigest()
    assert weights_hash(str(model), known=reloaded) == fresh
    assert fresh in reloaded.values() and len(reloaded) == 2

    # A corrupt cache file is ignored, not fatal.
    store.weights_hash_cache.write_text("{not json")
    assert store.load_weights_hash_cache() == {}
