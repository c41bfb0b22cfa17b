"""The record store: Parquet part files plus DuckDB views over them.

Layout (``store/`` is the folder given to ``capcast eval --store``)::

    store/parts/<family>/<checkpoint>/<task>/   one folder per (checkpoint, task) run
        choices.parquet | samples.parquet         the records (multiple choice | generative)
        run.parquet, run.json                     the run manifest (one row; JSON for people)
    store/tasks/<task>/                           generated task data (JSONL) and its cache
    store/cache/                                  weight hashes, HF datasets cache
    store/tmp/                                    folders being written (ignored by readers)

A run is committed atomically: its folder is written under ``tmp/``, every file fsynced, then
renamed into ``parts/`` with one ``os.rename``. A folder in ``parts/`` is therefore always
complete, a killed run leaves at most garbage under ``tmp/``, and a rerun skips every
(checkpoint, task) whose folder exists and whose settings match (``capcast.evaluation.runner``
compares :meth:`Store.run_manifest`): nothing is lost or written twice.

Replacing a stored run (``write_run(..., replace=True)``, ``capcast eval --force``) goes through
:meth:`Store.replace_dir`: the new folder is completed under ``tmp/`` and marked ready before the
old one leaves ``parts/``, so the old run stays whole until the new one is committed; a crash
between the two renames of the swap is rolled forward by the next :meth:`Store.clean_tmp`.

:meth:`Store.connect` returns a DuckDB connection with the views ``choices``, ``samples`` and
``runs`` (columns: ``docs/evaluation.md``).

The durable-file helpers are public, so every writer of the store (``capcast.passuntil.rounds``
too) commits files the same way: :func:`path_slug` (folder names), :func:`write_parquet` and
:func:`write_json` (written and fsynced), :func:`write_atomically` and
:func:`write_parquet_atomic` (whole file or nothing), :func:`fsync_dir`, and
:func:`register_parquet_view` (a DuckDB view over part files, empty but typed when there are none).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from capcast.errors import CapcastError

KEY_COLUMNS = ("family", "checkpoint", "task")
RECORD_FILES = {"multiple_choice": "choices.parquet", "generate": "samples.parquet"}

# Column types of the views, used to give an empty store views with the right columns.
KEY_FIELDS = [pa.field(name, pa.string()) for name in KEY_COLUMNS]
CHOICES_SCHEMA = pa.schema(
    KEY_FIELDS
    + [
        ("doc_id", pa.int64()),
        ("choice_idx", pa.int32()),
        ("loglik", pa.float64()),
        ("n_tokens", pa.int32()),
        ("n_bytes", pa.int32()),
        ("n_chars", pa.int32()),
        ("is_greedy", pa.bool_()),
        ("is_gold", pa.bool_()),
    ]
)
SAMPLES_SCHEMA = pa.schema(
    KEY_FIELDS
    + [
        ("doc_id", pa.int64()),
        ("sample_idx", pa.int32()),
        ("text", pa.string()),
        ("correct", pa.bool_()),
        ("target", pa.string()),
    ]
)
RUNS_SCHEMA = pa.schema(
    KEY_FIELDS
    + [
        ("kind", pa.string()),
        ("run", pa.string()),
        ("model", pa.string()),
        ("revision", pa.string()),
        ("params", pa.float64()),
        ("tokens", pa.float64()),
        ("flops", pa.float64()),
        ("step", pa.int64()),
        ("chance", pa.float64()),
        ("weights_hash", pa.string()),
        ("backend", pa.string()),
        ("dtype", pa.string()),
        ("device", pa.string()),
        ("batch_size", pa.string()),
        ("seed", pa.int64()),
        ("limit", pa.int64()),
        ("repeats", pa.int64()),
        ("n_docs", pa.int64()),
        ("n_records", pa.int64()),
        ("task_hash", pa.string()),
        ("lm_eval_version", pa.string()),
        ("transformers_version", pa.string()),
        ("torch_version", pa.string()),
        ("capcast_version", pa.string()),
        ("lm_eval_metrics", pa.string()),  # JSON object of lm-eval's own aggregate metrics
        ("started_at", pa.string()),
        ("finished_at", pa.string()),
        ("duration_s", pa.float64()),
    ]
)


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


class Store:
    """A folder of per-run Parquet parts, read through DuckDB views."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    @property
    def parts(self) -> Path:
        return self.root / "parts"

    def task_data_dir(self, task: str) -> Path:
        return self.root / "tasks" / path_slug(task)

    def run_dir(self, family: str, checkpoint: str, task: str) -> Path:
        return self.parts / path_slug(family) / path_slug(checkpoint) / path_slug(task)

    def has_run(self, family: str, checkpoint: str, task: str) -> bool:
        return self.run_dir(family, checkpoint, task).is_dir()

    def run_manifest(self, family: str, checkpoint: str, task: str) -> dict[str, Any] | None:
        """The stored manifest of one run (``run.json``: every field, library versions too), or
        None when the store holds no such run. Falls back to ``run.parquet`` if the JSON is unreadable."""
        folder = self.run_dir(family, checkpoint, task)
        if not folder.is_dir():
            return None
        try:
            manifest = json.loads((folder / "run.json").read_text())
            if isinstance(manifest, dict):
                return manifest
        except (OSError, ValueError):
            pass
        try:
            return pq.read_table(folder / "run.parquet").to_pylist()[0]
        except (OSError, IndexError, pa.ArrowException):
            raise CapcastError(f"{folder} holds no readable run.json or run.parquet; delete the folder to re-run {checkpoint} on {task}") from None

    @property
    def tmp(self) -> Path:
        """Folders being written; readers never look here (see :meth:`clean_tmp`)."""
        return self.root / "tmp"

    def new_tmp_dir(self) -> Path:
        """A new empty folder under ``tmp/`` (same filesystem as the store: renames are atomic)."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        folder = self.tmp / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def write_run(self, manifest: Mapping[str, Any], kind: str, records: pa.Table, *, replace: bool = False) -> Path:
        """Commit one (checkpoint, task) run: records plus manifest, all or nothing.

        ``records`` holds the per-choice or per-sample columns without the key columns; the
        keys come from ``manifest`` (family, checkpoint, task). A stored run of the same key is
        an error unless ``replace``: then the new run takes its place through :meth:`replace_dir`
        (the old run stays intact until the new one is complete and committed).
        """
        family, checkpoint, task = (str(manifest[k]) for k in KEY_COLUMNS)
        final = self.run_dir(family, checkpoint, task)
        if final.exists() and not replace:
            raise CapcastError(f"{final} already exists; delete it (or pass --force) to re-run {checkpoint} on {task}")
        tmp = self.new_tmp_dir()
        try:
            write_parquet(with_keys(records, family, checkpoint, task), tmp / RECORD_FILES[kind])
            row = {name: manifest.get(name) for name in RUNS_SCHEMA.names}
            row["kind"], row["n_records"] = kind, records.num_rows
            write_parquet(pa.Table.from_pylist([row], schema=RUNS_SCHEMA), tmp / "run.parquet")
            write_json({**manifest, "kind": kind, "n_records": records.num_rows}, tmp / "run.json")
            fsync_dir(tmp)
            if replace and final.exists():
                self.replace_dir(tmp, final)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.rename(tmp, final)  # atomic; fails if another writer got there first
                fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def replace_dir(self, staged: Path, final: Path) -> None:
        """Put the complete, fsynced folder ``staged`` (made by :meth:`new_tmp_dir`) at ``final``,
        replacing the folder there, if any; ``final`` lies under the store root.

        Order: a ``<staged>.replaces`` note naming ``final`` is written and fsynced (the commit
        point: the new folder is complete and its destination durable), then the old folder is
        renamed into ``tmp/`` (out of every reader's sight, still whole), the new one renamed to
        ``final``, and the old one deleted. Killed before the note: the old folder is untouched
        and the new one is garbage under ``tmp/``. Killed between the two renames: ``final`` is
        missing for a moment and :meth:`clean_tmp` renames the new folder into place. POSIX has no
        portable atomic swap of two folders (Linux's ``renameat2(RENAME_EXCHANGE)`` is not
        portable), hence the note.
        """
        staged, final = Path(staged), Path(final)
        if staged.parent != self.tmp:
            raise ValueError(f"{staged} is not a folder made by Store.new_tmp_dir")
        note = staged.with_name(staged.name + ".replaces")
        write_atomically(note, lambda tmp: write_json({"final": str(final.resolve().relative_to(self.root.resolve()))}, tmp))
        old = staged.with_name(staged.name + ".old")
        final.parent.mkdir(parents=True, exist_ok=True)
        moved = False
        try:
            if final.exists():
                os.rename(final, old)
                moved = True
            os.rename(staged, final)
        except BaseException:
            if moved and not final.exists():  # the new folder did not get in: put the old one back
                os.rename(old, final)
            raise
        fsync_dir(final.parent)
        note.unlink()
        fsync_dir(self.tmp)
        shutil.rmtree(old, ignore_errors=True)

    def recover_tmp(self) -> list[Path]:
        """Finish the replacements a crash interrupted between their two renames (see
        :meth:`replace_dir`): where the destination is missing, the new folder is renamed into
        place, or (if it is gone) the old one is put back. Returns the folders restored."""
        restored = []
        for note in sorted(self.tmp.glob("*.replaces")) if self.tmp.is_dir() else []:
            staged = note.with_name(note.name[: -len(".replaces")])
            old = note.with_name(staged.name + ".old")
            try:
                final = self.root / json.loads(note.read_text())["final"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            source = staged if staged.is_dir() else old if old.is_dir() else None
            if source is not None and not final.exists():
                final.parent.mkdir(parents=True, exist_ok=True)
                os.rename(source, final)
                fsync_dir(final.parent)
                restored.append(final)
        return restored

    def clean_tmp(self) -> None:
        """Finish interrupted replacements (:meth:`recover_tmp`), then remove what killed runs
        left under tmp/ (never read by anything)."""
        self.recover_tmp()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _files(self, name: str) -> list[str]:
        return sorted(str(p) for p in self.parts.glob(f"*/*/*/{name}")) if self.parts.is_dir() else []

    def connect(self, database: str = ":memory:"):
        """A DuckDB connection with views ``choices``, ``samples`` and ``runs`` over the parts."""
        import duckdb

        con = duckdb.connect(database)
        for view, filename, schema in (
            ("choices", RECORD_FILES["multiple_choice"], CHOICES_SCHEMA),
            ("samples", RECORD_FILES["generate"], SAMPLES_SCHEMA),
            ("runs", "run.parquet", RUNS_SCHEMA),
        ):
            register_parquet_view(con, view, self._files(filename), schema)
        return con

    @property
    def weights_hash_cache(self) -> Path:
        """JSON map of weight-file fingerprint -> sha256 (see :func:`capcast.evaluation.records.weights_hash`)."""
        return self.root / "weights-hashes.json"

    def load_weights_hash_cache(self) -> dict[str, str]:
        try:
            return json.loads(self.weights_hash_cache.read_text())
        except (FileNotFoundError, ValueError):  # absent, or unreadable: hash again
            return {}

    def save_weights_hash_cache(self, known: dict[str, str]) -> None:
        write_atomically(self.weights_hash_cache, lambda tmp: write_json(known, tmp))

    def weight_hashes(self, family: str) -> dict[str, str]:
        """checkpoint -> weights sha256 of every stored run of ``family``.

        Read straight from the run manifests with pyarrow: this sits on every ``capcast eval``
        start, where opening DuckDB would cost more than the lookup itself.
        """
        import pyarrow.parquet as pq

        hashes: dict[str, str] = {}
        family_dir = self.parts / path_slug(family)
        for path in sorted(family_dir.glob("*/*/run.parquet")) if family_dir.is_dir() else []:
            row = pq.read_table(path, columns=["checkpoint", "weights_hash"]).to_pylist()[0]
            if row["weights_hash"]:
                hashes[row["checkpoint"]] = row["weights_hash"]
        return hashes

    def runs(self):
        """The runs table as a pandas DataFrame."""
        with self.connect() as con:
            return con.execute("SELECT * FROM runs ORDER BY family, checkpoint, task").df()


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
