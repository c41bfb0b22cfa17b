"""The record store: Parquet part files plus DuckDB views over them.

Layout (``store/`` is the folder given to ``capcast eval --store``)::

    store/parts/<family>/<checkpoint>/<task>/   one folder per (checkpoint, task) run
        choices.parquet | samples.parquet         the records (multiple choice | generative)
        run.parquet, run.json                     the run manifest (one row; JSON for people)
    store/tasks/<task>/                           generated task data (JSONL) and its cache
    store/cache/                                  weight hashes, HF datasets cache
    store/tmp/                                    folders being written (ignored by readers), w<pid>-<uuid>
    store/damaged/<time>/                         runs `capcast store verify --repair` moved aside
    store/capcast-store.json                      the store's format version
    store/lock                                    the writers' lock (capcast.store.lock)

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

The durable-file helpers live in :mod:`capcast.store.files` (re-exported here). Writers hold the
store's lock (:meth:`Store.open_for_writing`, :mod:`capcast.store.lock`); readers check every run
before reading it (:meth:`Store.connect`, :mod:`capcast.store.verify`).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from capcast.errors import CapcastError
from capcast.store.files import fsync_dir, path_slug, register_parquet_view, with_keys, write_atomically, write_json, write_parquet
from capcast.store.lock import StoreLock, owner_alive, tmp_name

from capcast.store.files import KEY_COLUMNS  # noqa: E402
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
        ("records_sha256", pa.string()),  # of the records file: checked on every read (capcast.store.verify)
    ]
)

# The store's on-disk format, in ``capcast-store.json`` at its root; a store of a newer format is
# refused (its parts may mean something this capcast does not know). Stores without the file were
# written before it existed and are format 1.
FORMAT_VERSION = 1
FORMAT_FILE = "capcast-store.json"
MAX_NAME_BYTES = 255  # per path component on every common filesystem


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
        names = [path_slug(family), path_slug(checkpoint), path_slug(task)]
        for what, value, name in zip(("family", "checkpoint", "task"), (family, checkpoint, task), names):
            if len(name.encode()) > MAX_NAME_BYTES:
                raise CapcastError(f"{what} name {value[:40]!r}... is {len(name.encode())} bytes as a folder name; "
                                   f"filesystems allow {MAX_NAME_BYTES}: use a shorter name")
        return self.parts.joinpath(*names)

    # --- format, writers' lock, verification

    def check_format(self) -> None:
        """Refuse a store of a newer format than this capcast reads, or one whose format file is garbage."""
        path = self.root / FORMAT_FILE
        if not path.exists():
            return
        try:
            version = json.loads(path.read_text())["format"]
            version = int(version)
        except (OSError, ValueError, KeyError, TypeError):
            raise CapcastError(f"store {self.root}: {FORMAT_FILE} is unreadable; it should read {{\"format\": {FORMAT_VERSION}}}") from None
        if version > FORMAT_VERSION:
            raise CapcastError(f"store {self.root} has format {version}, newer than this capcast reads ({FORMAT_VERSION}); "
                               "upgrade capcast to read it")

    def open_for_writing(self, purpose: str, on_wait: Callable[[str], None] | None = None) -> StoreLock:
        """Make the store folder (one line if it cannot be written: a file, read-only, no space),
        check its format, record it, take the writers' lock (waiting, with ``on_wait(message)``,
        while another writer holds it) and clean what dead writers left under ``tmp/``. Hold the
        returned lock while writing; :meth:`StoreLock.release` (or ``with``) frees it."""
        if self.root.exists() and not self.root.is_dir():
            raise CapcastError(f"store {self.root} is a file, not a folder; pass a folder to --store")
        self.check_format()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not (self.root / FORMAT_FILE).exists():
                write_atomically(self.root / FORMAT_FILE, lambda tmp: write_json({"format": FORMAT_VERSION}, tmp))
            lock = StoreLock(self.root, purpose, on_wait)
        except OSError as exc:
            from capcast.errors import os_error_line

            raise CapcastError(f"store {self.root} cannot be written ({os_error_line(exc)})") from None
        try:
            self.clean_tmp()
        except BaseException:
            lock.release()
            raise
        return lock

    def verify(self):
        """Every damaged or incomplete run (see :mod:`capcast.store.verify`)."""
        from capcast.store.verify import verify_store

        return verify_store(self)

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
        folder = self.tmp / tmp_name(uuid.uuid4().hex)  # owned: other writers' start-up never removes it
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
            from capcast.store.verify import file_sha256

            checksum = file_sha256(tmp / RECORD_FILES[kind])
            row = {name: manifest.get(name) for name in RUNS_SCHEMA.names}
            row["kind"], row["n_records"], row["records_sha256"] = kind, records.num_rows, checksum
            write_parquet(pa.Table.from_pylist([row], schema=RUNS_SCHEMA), tmp / "run.parquet")
            write_json({**manifest, "kind": kind, "n_records": records.num_rows, "records_sha256": checksum}, tmp / "run.json")
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
            if owner_alive(note.name):  # another live writer's replacement in flight: not ours to finish
                continue
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
        """Finish interrupted replacements (:meth:`recover_tmp`), then remove what killed writers
        left under tmp/ (never read by anything); what a live writer owns stays."""
        self.recover_tmp()
        if not self.tmp.is_dir():
            return
        for entry in list(self.tmp.iterdir()):
            if owner_alive(entry.name):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        try:
            self.tmp.rmdir()  # only when empty
        except OSError:
            pass

    def _files(self, name: str) -> list[str]:
        return sorted(str(p) for p in self.parts.glob(f"*/*/*/{name}")) if self.parts.is_dir() else []

    def connect(self, database: str = ":memory:", verify: bool = True):
        """A DuckDB connection with views ``choices``, ``samples`` and ``runs`` over the parts.

        ``verify`` (default) first checks the store's format and every run
        (:mod:`capcast.store.verify`): a damaged run raises one :class:`CapcastError` line instead of
        becoming a number."""
        import duckdb

        if verify:
            from capcast.store.verify import refuse_damaged

            self.check_format()
            refuse_damaged(self)
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
            try:
                row = pq.read_table(path, columns=["checkpoint", "weights_hash"]).to_pylist()[0]
            except (OSError, IndexError, KeyError, pa.ArrowException):  # a damaged run: verification reports it
                continue
            if row["weights_hash"]:
                hashes[row["checkpoint"]] = row["weights_hash"]
        return hashes

    def runs(self):
        """The runs table as a pandas DataFrame."""
        with self.connect() as con:
            return con.execute("SELECT * FROM runs ORDER BY family, checkpoint, task").df()
