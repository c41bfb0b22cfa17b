"""Damaged or foreign data never becomes a number: the checks every stored run passes before it is read.

:func:`check_run` looks at one run folder under ``parts/`` and returns what is wrong with it, or
None: a missing or unreadable manifest (``run.parquet``, ``run.json``), a manifest that does not
match its folder or lacks what scores need (``params``, ``tokens``, a known ``kind``), a missing,
truncated or foreign records file (schema: the columns and types of
:data:`capcast.store.parts.CHOICES_SCHEMA` / ``SAMPLES_SCHEMA``), a row count that differs from
the manifest's ``n_records``, a checksum that differs from the manifest's ``records_sha256``, and
degenerate log-likelihoods (:func:`degenerate_logliks`: NaN, infinite, all zero or all equal: a
model or backend that returned nothing useful).

:func:`verify_store` checks every run; :func:`repair` moves the damaged ones aside, under
``damaged/<time>/``, with a note saying why (nothing is deleted), so the next ``capcast eval``
measures them again. ``capcast store verify [--repair]`` is the command (docs/store.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capcast.errors import CapcastError

DAMAGED_DIR = "damaged"


@dataclass(frozen=True)
class Damage:
    """One damaged or incomplete run: its folder under the store and what is wrong with it."""

    folder: Path
    problem: str

    @property
    def key(self) -> tuple[str, str, str]:
        """(family, checkpoint, task) as the folder names them."""
        parts = self.folder.parts[-3:]
        return tuple(urllib.parse.unquote(p) for p in parts)  # type: ignore[return-value]

    def __str__(self) -> str:
        family, checkpoint, task = self.key
        return f"{family} / {checkpoint} x {task}: {self.problem}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def degenerate_logliks(loglik: pa.Array | pa.ChunkedArray) -> str | None:
    """Why these log-likelihoods cannot be scores (None when they can): any NaN or infinite value,
    or all of them zero or all equal (a model or backend that returns nothing useful)."""
    values = pc.cast(loglik, pa.float64())
    n = len(values)
    if n == 0:
        return None
    nan = pc.sum(pc.is_nan(values)).as_py() or 0
    null = values.null_count
    if nan or null:
        return f"{nan + null} of {n} log-likelihoods are NaN or missing (NaN weights, or a broken backend)"
    finite = pc.sum(pc.is_finite(values)).as_py() or 0
    if finite < n:
        return f"{n - finite} of {n} log-likelihoods are infinite"
    low, high = pc.min_max(values).values()
    if n > 1 and low.as_py() == high.as_py():
        what = "zero" if low.as_py() == 0 else f"equal ({low.as_py():g})"
        return f"all {n} log-likelihoods are {what}: the model or backend returned nothing useful"
    return None


def _schema_problem(schema: pa.Schema, wanted: pa.Schema, filename: str) -> str | None:
    for field in wanted:
        if field.name not in schema.names:
            return f"{filename} has no {field.name!r} column (not written by capcast, or altered)"
        have = schema.field(field.name).type
        if have != field.type and not (pa.types.is_integer(have) and pa.types.is_integer(field.type)):
            return f"{filename} column {field.name!r} is {have}, expected {field.type}"
    return None


def read_manifest_row(folder: Path) -> dict:
    """The one row of ``run.parquet`` (raises OSError / ArrowException / IndexError when unreadable)."""
    return pq.read_table(Path(folder) / "run.parquet").to_pylist()[0]


def check_run(folder: Path) -> str | None:
    """What is wrong with the run folder ``folder`` (``parts/<family>/<checkpoint>/<task>``), or None."""
    from capcast.store.parts import CHOICES_SCHEMA, RECORD_FILES, SAMPLES_SCHEMA, path_slug

    folder = Path(folder)
    if not (folder / "run.parquet").is_file():
        return "no manifest (run.parquet missing): the run is incomplete"
    try:
        row = read_manifest_row(folder)
    except (OSError, IndexError, pa.ArrowException):
        return "run.parquet cannot be read (truncated or not Parquet)"
    try:
        note = json.loads((folder / "run.json").read_text())
        if not isinstance(note, dict):
            raise ValueError
    except (OSError, ValueError):
        return "run.json is missing or unreadable"
    keys = tuple(path_slug(str(row.get(k))) for k in ("family", "checkpoint", "task"))
    if keys != folder.parts[-3:]:
        return f"the manifest names {row.get('checkpoint')!r} x {row.get('task')!r} of {row.get('family')!r}, not this folder's run"
    kind = row.get("kind")
    if kind not in RECORD_FILES:
        return f"the manifest has kind {kind!r}; expected one of {', '.join(RECORD_FILES)}"
    for name, positive in (("params", True), ("tokens", False)):
        value = row.get(name)
        if value is None or not math.isfinite(value) or value < 0 or (positive and value == 0):
            return f"the manifest has no usable {name} ({value!r})"
    filename = RECORD_FILES[kind]
    records = folder / filename
    if not records.is_file():
        return f"{filename} is missing: the run is incomplete"
    expected = row.get("n_records")
    try:
        meta = pq.read_metadata(records)
        schema = pq.read_schema(records)
    except (OSError, pa.ArrowException):
        return f"{filename} cannot be read (truncated or not Parquet)"
    wanted = CHOICES_SCHEMA if kind == "multiple_choice" else SAMPLES_SCHEMA
    problem = _schema_problem(schema, wanted, filename)
    if problem:
        return problem
    if expected is not None and meta.num_rows != expected:
        return f"{filename} holds {meta.num_rows} rows but the manifest says {expected}"
    checksum = note.get("records_sha256") or row.get("records_sha256")
    if checksum and file_sha256(records) != checksum:
        return f"{filename} does not match its checksum (altered or corrupted on disk)"
    if kind == "multiple_choice":
        try:
            loglik = pq.read_table(records, columns=["loglik"]).column("loglik")
        except (OSError, pa.ArrowException):
            return f"{filename} cannot be read (truncated or not Parquet)"
        problem = degenerate_logliks(loglik)
        if problem:
            return problem
    return None


def run_folders(parts: Path) -> list[Path]:
    """Every run folder under ``parts/`` (three levels down), in a stable order."""
    return sorted(p for p in Path(parts).glob("*/*/*") if p.is_dir()) if Path(parts).is_dir() else []


def verify_store(store) -> list[Damage]:
    """Every damaged or incomplete run of ``store`` (a :class:`capcast.store.Store`)."""
    out = []
    for folder in run_folders(store.parts):
        problem = check_run(folder)
        if problem:
            out.append(Damage(folder.relative_to(store.root), problem))
    return out


def damaged_message(store_root: Path, damage: list[Damage]) -> str:
    more = f" (and {len(damage) - 1} more damaged run{'s' if len(damage) > 2 else ''})" if len(damage) > 1 else ""
    return (f"store {store_root} holds a damaged run: {damage[0]}{more}; nothing was computed from it. "
            f"Run `capcast store verify --store {store_root} --repair` to move damaged runs aside (kept, never deleted); "
            "the next `capcast eval` measures them again")


def repair(store, damage: list[Damage]) -> Path | None:
    """Move each damaged run folder to ``damaged/<UTC time>/<its path>`` with a ``why.txt``; return
    that folder (None when nothing was damaged). One rename per run: nothing is copied or deleted."""
    if not damage:
        return None
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    aside = store.root / DAMAGED_DIR / stamp
    for item in damage:
        source = store.root / item.folder
        target = aside / item.folder
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(source, target)
        (target / "why.txt").write_text(item.problem + "\n")
    return aside


def refuse_damaged(store, folders: list[Path] | None = None) -> None:
    """Raise one :class:`CapcastError` line when any of ``folders`` (default: every run) is damaged."""
    candidates = run_folders(store.parts) if folders is None else [f for f in folders if f.is_dir()]
    damage = [Damage(f.relative_to(store.root), p) for f in candidates if (p := check_run(f))]
    if damage:
        raise CapcastError(damaged_message(store.root, damage))
