"""Reading what a leaderboard is built from: the JSON of ``capcast forecast --format json`` and
``capcast backtest --format json`` (printed or written with ``-o``), scores tables for checkpoint
points, and the actual scores ``capcast leaderboard resolve`` is given.

Every file is read whole and checked before anything is written: a missing, unreadable or
malformed file is one :class:`~capcast.errors.CapcastError` line naming the file and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capcast.errors import CapcastError

FORECAST_FIELDS = ("family", "model", "task", "metric", "law", "forecast", "lower", "upper", "actual", "status", "reason")
BACKTEST_FIELDS = FORECAST_FIELDS + ("method", "step")
NUMBER_FIELDS = ("forecast", "lower", "upper", "actual")
TEXT_FIELDS = ("task", "metric", "law", "status")
ACTUALS_COLUMNS = ("model", "task", "metric", "value")
# the help line every "this is not a result" error ends with
WHAT_TO_GIVE = "give the JSON of `capcast forecast --format json` or `capcast backtest --format json`"


@dataclass(frozen=True)
class ResultFile:
    """One forecast or backtest result file, checked. ``kind``: ``forecast`` or ``backtest``.

    ``interval``: the prediction-interval level when the file records it (forecast JSON does,
    backtest JSON does not). ``input_sha256``/``input_hash_of``: a hash of the scores table the
    forecasts came from, when the file carries one (the leaderboard's own recipes write it)."""

    path: Path
    kind: str
    sha256: str
    rows: list[dict]
    interval: float | None = None
    input_sha256: str | None = None
    input_hash_of: str | None = None
    extra: dict = field(default_factory=dict)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(value) -> str:
    """The one text of a JSON value that hashes the same wherever it is written."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def read_result(source: Path | dict, name: str | None = None) -> ResultFile:
    """A forecast or backtest result from a JSON file (or the already-parsed dict)."""
    if isinstance(source, dict):
        document, where = source, Path(name or "result")
        raw = canonical_json(_finite(document, where)).encode()
    else:
        where = Path(source)
        if not where.is_file():
            raise CapcastError(f"{where}: no such result file; {WHAT_TO_GIVE}")
        raw = where.read_bytes()
        try:
            document = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CapcastError(f"{where}: not valid JSON ({type(exc).__name__}: {str(exc).splitlines()[0]}); {WHAT_TO_GIVE}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise CapcastError(f"{where}: no list of 'rows' at the top; {WHAT_TO_GIVE}")
    kind = "backtest" if "methods" in document else "forecast"
    fields = BACKTEST_FIELDS if kind == "backtest" else FORECAST_FIELDS
    rows = [_checked_row(row, i, where, fields) for i, row in enumerate(document["rows"], start=1)]
    interval = document.get("interval")
    if interval is not None and not (isinstance(interval, (int, float)) and 0 < interval < 1):
        raise CapcastError(f"{where}: 'interval' must be a level between 0 and 1 (got {interval!r})")
    if kind == "backtest" and not isinstance(document["methods"], dict):
        raise CapcastError(f"{where}: 'methods' must be an object of method scores; {WHAT_TO_GIVE}")
    if kind == "backtest":
        for i, row in enumerate(rows, start=1):
            if not isinstance(row["method"], str) or not row["method"]:
                raise CapcastError(f"{where}: row {i}: 'method' must be a method name")
    return ResultFile(path=where, kind=kind, sha256=sha256_bytes(raw), rows=rows, interval=interval,
                      input_sha256=document.get("input_sha256"), input_hash_of=document.get("input_hash_of"),
                      extra={k: v for k, v in document.items() if k not in ("rows", "methods", "interval")})


def _finite(document, where):
    try:
        canonical_json(document)
    except (TypeError, ValueError) as exc:
        raise CapcastError(f"{where}: cannot be written as JSON ({exc}); {WHAT_TO_GIVE}") from None
    return document


def _checked_row(row, i: int, where: Path, fields: tuple[str, ...]) -> dict:
    if not isinstance(row, dict):
        raise CapcastError(f"{where}: row {i} is not an object; {WHAT_TO_GIVE}")
    missing = [f for f in fields if f not in row]
    if missing:
        raise CapcastError(f"{where}: row {i} lacks {', '.join(repr(m) for m in missing)}; {WHAT_TO_GIVE}")
    for name in TEXT_FIELDS:
        if not isinstance(row[name], str) or not row[name]:
            raise CapcastError(f"{where}: row {i}: {name!r} must be a non-empty text (got {row[name]!r})")
    for name in ("family", "model", "reason"):
        if row[name] is not None and not isinstance(row[name], str):
            raise CapcastError(f"{where}: row {i}: {name!r} must be a text or null (got {row[name]!r})")
    for name in NUMBER_FIELDS:
        value = row[name]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise CapcastError(f"{where}: row {i}: {name!r} must be a number or null (got {value!r})")
    if row["status"] == "ok" and any(row[name] is None for name in ("forecast", "lower", "upper")):
        raise CapcastError(f"{where}: row {i}: status 'ok' needs a forecast, lower and upper")
    out = dict(row)
    out["fitted"] = [str(name) for name in row.get("fitted") or []]
    out["reason"] = row["reason"] or ""
    return out


def read_table(path: Path, what: str, columns: tuple[str, ...]) -> pd.DataFrame:
    """A CSV, Parquet or JSON (records, or ``{"rows": [...]}``) table with at least ``columns``."""
    path = Path(path)
    if not path.is_file():
        raise CapcastError(f"{path}: no such {what} file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix == ".json":
            document = json.loads(path.read_text())
            frame = pd.DataFrame(document["rows"] if isinstance(document, dict) else document)
        else:
            raise CapcastError(f"{path}: unknown file type {suffix!r} for the {what}; use .csv, .parquet or .json")
    except CapcastError:
        raise
    except Exception as exc:  # any parser's failure is the same mistake: the file is not a table
        raise CapcastError(f"{path}: cannot read the {what} ({type(exc).__name__}); check it is valid CSV, Parquet or JSON") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CapcastError(f"{path}: the {what} lacks column(s) {', '.join(missing)} (needs {', '.join(columns)})")
    return frame


def read_actuals(path: Path) -> pd.DataFrame:
    """Known scores for ``resolve``: model, task, metric, value (family optional), one value each."""
    frame = read_table(path, "actual scores", ACTUALS_COLUMNS)
    keep = [c for c in ("family",) + ACTUALS_COLUMNS if c in frame.columns]
    frame = frame[keep].copy()
    values = pd.to_numeric(frame["value"], errors="coerce")
    bad = frame.index[values.isna() | ~values.map(lambda v: math.isfinite(v) if v == v else False)]
    if len(bad):
        raise CapcastError(f"{path}: row {int(bad[0]) + 1} has no numeric 'value' ({frame.loc[bad[0], 'value']!r})")
    frame["value"] = values.astype(float)
    key = [c for c in keep if c != "value"]
    clashes = frame.groupby(key)["value"].nunique()
    if (clashes > 1).any():
        first = clashes[clashes > 1].index[0]
        raise CapcastError(f"{path}: two different values for {first}; give one value per (model, task, metric)")
    return frame.drop_duplicates(key)


def table_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a table's content, independent of row order and file format: the rows sorted,
    written as CSV with every float at full precision."""
    columns = sorted(frame.columns)
    canonical = frame[columns].astype(str).sort_values(columns).to_csv(index=False)
    return sha256_bytes(canonical.encode())
