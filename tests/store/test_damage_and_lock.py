"""Damaged or foreign data never becomes a number; one writer at a time; temporary folders stay
their writer's. Real Parquet parts, real DuckDB, the real CLI in-process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from capcast.store import Store
from capcast.store.lock import StoreLock
from capcast.testing.cli import run_in_process


def manifest(checkpoint: str, **extra) -> dict:
    return {"family": "fam", "checkpoint": checkpoint, "task": "t", "params": 1e6, "tokens": 2e7, "flops": 1.2e14, "step": 10, **extra}


def choices(logliks: list[list[float]]) -> pa.Table:
    rows = [(d, i, v) for d, row in enumerate(logliks) for i, v in enumerate(row)]
    n = len(rows)
    return pa.table({
        "doc_id": pa.array([r[0] for r in rows], pa.int64()), "choice_idx": pa.array([r[1] for r in rows], pa.int32()),
        "loglik": pa.array([r[2] for r in rows], pa.float64()), "n_tokens": pa.array([2] * n, pa.int32()),
        "n_bytes": pa.array([3] * n, pa.int32()), "n_chars": pa.array([2] * n, pa.int32()),
        "is_greedy": pa.array([False] * n), "is_gold": pa.array([r[1] == 0 for r in rows]),
    })


GOOD = [[-1.0, -2.0], [-3.0, -1.5], [-0.5, -0.7]]


def test_scores_render_a_checkpoint_without_step(tmp_path, capsys):
    Store(tmp_path).write_run(manifest("no-step", step=None), "multiple_choice", choices(GOOD))
    code, out, err = run_in_process(["scores", "--store", str(tmp_path)], capsys)
    assert code == 0, err
    assert "no-step" in out and "acc" in out


def _rewrite(path, change):
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def _damaged_store(root) -> Store:
    """One healthy run and one run per kind of damage the issue names."""
    store = Store(root)
    store.write_run(manifest("healthy"), "multiple_choice", choices(GOOD))
    store.write_run(manifest("nan-weights"), "multiple_choice", choices([[float("nan")] * 2] * 3))
    store.write_run(manifest("all-zero"), "multiple_choice", choices([[0.0, 0.0]] * 3))
    for name in ("renamed-column", "no-params", "no-manifest", "truncated", "fewer-rows", "altered"):
        store.write_run(manifest(name), "multiple_choice", choices(GOOD))
    run = lambda name: store.run_dir("fam", name, "t")  # noqa: E731
    _rewrite(run("renamed-column") / "choices.parquet", lambda t: t.rename_columns(["ll" if c == "loglik" else c for c in t.column_names]))
    _rewrite(run("no-params") / "run.parquet", lambda t: t.set_column(t.schema.get_field_index("params"), "params", pa.nulls(1, pa.float64())))
    (run("no-manifest") / "run.parquet").unlink()
    (run("no-manifest") / "run.json").unlink()
    data = (run("truncated") / "choices.parquet").read_bytes()
    (run("truncated") / "choices.parquet").write_bytes(data[: len(data) // 2])
    _rewrite(run("fewer-rows") / "choices.parquet", lambda t: t.slice(0, 4))
    _rewrite(run("altered") / "choices.parquet", lambda t: t.set_column(t.schema.get_field_index("loglik"), "loglik",
                                                                       pa.array([-9.0, -2.0, -3.0, -1.5, -0.5, -0.7])))
    return store


def _files(root) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file() and p.name not in ("why.txt", "lock", "capcast-store.json"))


def test_verify_finds_every_kind_of_damage_and_repair_moves_it_aside(tmp_path, capsys):
    store = _damaged_store(tmp_path)
    files_before = _files(tmp_path)
    code, out, err = run_in_process(["scores", "--store", str(tmp_path)], capsys)
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1 and "damaged run" in err and "--repair" in err

    code, out, err = run_in_process(["store", "verify", "--store", str(tmp_path)], capsys)
    assert code == 1
    found = {line.split(" x ")[0].split(" / ")[1]: line for line in out.splitlines() if line.startswith("damaged:")}
    assert sorted(found) == ["all-zero", "altered", "fewer-rows", "nan-weights", "no-manifest", "no-params", "renamed-column", "truncated"]
    for name, words in (("nan-weights", "NaN"), ("all-zero", "zero"), ("renamed-column", "'loglik'"), ("no-params", "params"),
                        ("no-manifest", "no manifest"), ("truncated", "cannot be read"), ("fewer-rows", "holds 4 rows"),
                        ("altered", "checksum")):
        assert words in found[name], found[name]

    code, out, err = run_in_process(["store", "verify", "--store", str(tmp_path), "--repair"], capsys)
    assert code == 0 and "moved 8 damaged run(s)" in err
    assert _files(tmp_path) == files_before  # moved, never deleted
    aside = next((tmp_path / "damaged").iterdir())
    assert len(list(aside.rglob("why.txt"))) == 8
    assert store.verify() == []
    code, out, err = run_in_process(["scores", "--store", str(tmp_path), "-f", "csv"], capsys)
    assert code == 0 and "healthy" in out and "altered" not in out
    assert not store.has_run("fam", "no-manifest", "t")  # the next eval measures it again


def test_a_store_of_a_newer_format_is_refused(tmp_path, capsys):
    store = Store(tmp_path)
    store.write_run(manifest("a"), "multiple_choice", choices(GOOD))
    (tmp_path / "capcast-store.json").write_text(json.dumps({"format": 99}))
    code, _, err = run_in_process(["scores", "--store", str(tmp_path)], capsys)
    assert code == 2 and "format 99" in err and "upgrade capcast" in err


def test_start_up_cleaning_keeps_a_live_writers_temporary_folder(tmp_path):
    store = Store(tmp_path)
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        for pid in (live.pid, dead.pid):
            (tmp_path / "tmp" / f"w{pid}-abc").mkdir(parents=True)
        (tmp_path / "tmp" / "0123abcd").mkdir()  # an older capcast's folder: owner unknown, removed
        store.clean_tmp()
        assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == [f"w{live.pid}-abc"]
    finally:
        live.communicate(b"")


def test_a_second_writer_waits_for_the_first_and_says_for_whom(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from capcast.store.lock import StoreLock; import sys; l = StoreLock({str(tmp_path)!r}, 'capcast eval'); "
         "print('held', flush=True); sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        waited = []
        threading.Timer(1.0, lambda: holder.stdin.close()).start()
        lock = StoreLock(tmp_path, "capcast sample", on_wait=waited.append)
        assert len(waited) == 1 and "capcast eval" in waited[0] and f"pid {holder.pid}" in waited[0]
        lock.release()
    finally:
        holder.wait(timeout=30)
