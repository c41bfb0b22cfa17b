"""Durable files: the small public API every writer of the store shares (``capcast.passuntil.rounds`` too).

:func:`path_slug` (folder names), :func:`write_parquet` and :func:`write_json` (written and
fsynced), :func:`write_atomically` and :func:`write_parquet_atomic` (whole file or nothing),
:func:`fsync_dir`, :func:`register_parquet_view` (a DuckDB view over part files, empty but typed
when there are none), and one wording for settings that differ from a stored run's.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

KEY_COLUMNS = ("family", "checkpoint", "task")


# --- durable files: the small public API the store's writers share (also capcast.passuntil.rounds)


def path_slug(name: str) -> str:
    """A reversible, filesystem-safe folder name for ``name`` (percent-encoding; never '.' or '..')."""
    slug = urllib.parse.quote(name, safe="-_.+=@,")
    return "%2E" + slug[1:] if slug.startswith(".") else slug


def fsync_dir(path: Path) -> None:
    """fsync a folder, so that the names created or renamed in it survive a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` as zstd Parquet and fsync it (durable, not atomic)."""
    with Path(path).open("wb") as fh:
        pq.write_table(table, fh, compression="zstd")
        fh.flush()
        os.fsync(fh.fileno())


def write_json(obj: Any, path: Path) -> None:
    """Write ``obj`` as indented JSON (``str`` for anything else) to ``path`` and fsync it."""
    with Path(path).open("w") as fh:
        json.dump(obj, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Create or replace ``path`` all or nothing: ``write(tmp)`` fills a temporary file beside it
    (and should fsync it), which is then renamed over ``path``; the folder is fsynced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` as zstd Parquet so that readers see the whole file or none."""
    write_atomically(path, lambda tmp: write_parquet(table, tmp))


_DUCKDB_TYPES = {"string": "VARCHAR", "int64": "BIGINT", "int32": "INTEGER", "double": "DOUBLE", "bool": "BOOLEAN"}


def register_parquet_view(con, view: str, files: list[str], schema: pa.Schema, union_by_name: bool = True) -> None:
    """Create the DuckDB view ``view`` over Parquet ``files``; with no files, an empty view of ``schema``.

    Columns of ``schema`` that no file has (parts written by an older capcast, e.g. before the
    ``run`` column) appear as typed NULLs, so readers never depend on the store's age.
    """
    if files:
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        union = ", union_by_name = true" if union_by_name else ""
        source = f"read_parquet([{listing}]{union})"
        present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
        missing = [f for f in schema if f.name not in present]
        added = "".join(f", NULL::{_DUCKDB_TYPES.get(str(f.type), 'VARCHAR')} AS {f.name}" for f in missing)
        con.execute(f"CREATE VIEW {view} AS SELECT *{added} FROM {source}")
    else:
        con.register(f"_{view}_empty", schema.empty_table())
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM _{view}_empty")


def with_keys(records: pa.Table, family: str, checkpoint: str, task: str) -> pa.Table:
    """Prepend the key columns (constant per run) to a records table, column-wise."""
    n = records.num_rows
    keys = [pa.array([value] * n, pa.string()) if n else pa.array([], pa.string()) for value in (family, checkpoint, task)]
    return pa.Table.from_arrays(keys + records.columns, names=list(KEY_COLUMNS) + records.column_names)


# --- settings that differ from a stored run's: one wording for every writer (eval, sample)


def show_setting(key: str, value) -> str:
    """A stored or requested setting as a user reads it (hashes shortened)."""
    if value is None:
        return "none (all items)" if key == "limit" else "none"
    if key.endswith("_hash") or (isinstance(value, str) and len(value) == 64):  # a sha256
        return str(value)[:12]
    return repr(value) if isinstance(value, str) else str(value)


def describe_mismatch(mismatched: list[tuple[str, str, list]]) -> str:
    """``CHECKPOINT x TASK made with other settings: KEY stored A, requested B; ...`` for the
    first mismatched run, and how many more differ."""
    checkpoint, task, diffs = mismatched[0]
    what = "; ".join(f"{key} stored {show_setting(key, have)}, requested {show_setting(key, want)}" for key, have, want in diffs)
    others = len(mismatched) - 1
    more = f" (and {others} more stored run{'s' if others > 1 else ''} with other settings)" if others else ""
    return f"{checkpoint} x {task} made with other settings: {what}{more}"
