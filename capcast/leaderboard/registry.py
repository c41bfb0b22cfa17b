"""Pre-registration: forecasts fixed before their answer is known, and resolved later.

The registry is one JSON-lines file, append-only, kept in the leaderboard's source folder:

- ``{"kind": "registration", "id", "registered_at", "capcast_version", "laws", "interval",
  "input_sha256", "input_hash_of", "source", "forecast": {...}, "prev"}`` for each forecast of a
  target whose score is not yet known;
- ``{"kind": "resolution", "id", "actual", "resolved_at", "actuals_sha256", "source", "prev"}``
  when ``capcast leaderboard resolve`` learns the actual. The forecast line is never touched.

Why it cannot be changed quietly: a registration's ``id`` is the sha256 of its forecast, each
line's ``sha256`` that of everything else in the line, so editing a number or a timestamp shows;
each line's ``prev`` is the sha256 of the line before, so dropping or reordering lines breaks the
chain. Both are checked on every read.
A changed forecast of the same (family, model, task, metric) is a new registration; the old one
stays in the file and on the site, marked superseded.

A forecast row may carry ``task_version`` (the sha256 of the task's content: its items, prompts,
targets); it is then part of the registration (and of its id), so a forecast of a changed task
(e.g. more items) is a new registration, and ``resolve`` given the actuals' task versions answers
only the registrations of the same version. Registrations without it behave as before.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capcast.errors import CapcastError
from capcast.leaderboard.inputs import ResultFile, canonical_json, read_actuals, sha256_bytes

FORECAST_KEYS = ("family", "model", "task", "metric", "law", "forecast", "lower", "upper", "status", "reason", "fitted")
TARGET_KEY = ("family", "model", "task", "metric")
TASK_VERSION = "task_version"  # optional key of a forecast: the task's content hash
# Forecasts are compared at 6 significant digits: a re-run on another machine that differs only
# in the last bits of a float is the same forecast, not a new registration.
DIGITS = 6


def capcast_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("capcast")
    except PackageNotFoundError:  # a checkout on sys.path without an install
        import capcast

        return capcast.__version__


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _rounded(value):
    return float(f"{value:.{DIGITS}g}") if isinstance(value, float) else value


def registration_id(forecast: dict, interval) -> str:
    """What makes two registrations the same forecast: its numbers, law, status and fitted checkpoints at its level."""
    content = {k: _rounded(forecast[k]) for k in FORECAST_KEYS}
    content["fitted"] = list(forecast["fitted"])
    if forecast.get(TASK_VERSION):  # absent in older registrations: their ids stay as they were
        content[TASK_VERSION] = forecast[TASK_VERSION]
    return sha256_bytes(canonical_json({"forecast": content, "interval": interval}).encode())[:16]


def record_sha256(record: dict) -> str:
    """The hash a line carries of everything else in it: any edit to it shows."""
    return sha256_bytes(canonical_json({k: v for k, v in record.items() if k not in ("prev", "sha256")}).encode())


def target_key(record: dict) -> tuple:
    return tuple(record[k] for k in TARGET_KEY)


@dataclass
class Registry:
    """The registry file, read and checked: registrations in order, resolutions by id."""

    path: Path
    registrations: list[dict] = field(default_factory=list)
    resolutions: dict[str, dict] = field(default_factory=dict)
    last_line_sha: str = ""

    def by_id(self) -> dict[str, dict]:
        return {r["id"]: r for r in self.registrations}

    def current(self) -> dict[tuple, str]:
        """The latest registration id of each target key (older ones are superseded)."""
        return {target_key(r["forecast"]): r["id"] for r in self.registrations}

    def append(self, records: list[dict], write: bool = True) -> str:
        """Add lines, each chained to the one before; returns their text. With ``write`` they are
        appended to the file in one write (a crash leaves no half line); else call :meth:`write`."""
        lines = []
        for record in records:
            record = dict(record, prev=self.last_line_sha, sha256=record_sha256(record))
            line = canonical_json(record)
            lines.append(line + "\n")
            self.last_line_sha = sha256_bytes(line.encode())
            if record["kind"] == "registration":
                self.registrations.append(record)
            else:
                self.resolutions[record["id"]] = record
        text = "".join(lines)
        if write:
            self.write(text)
        return text

    def write(self, text: str) -> None:
        if text:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text)

    @property
    def lines(self) -> int:
        return len(self.registrations) + len(self.resolutions)


def load_registry(path: Path) -> Registry:
    """The registry at ``path`` (empty if the file does not exist yet), every line checked."""
    path = Path(path)
    registry = Registry(path=path)
    if not path.exists():
        return registry
    if not path.is_file():
        raise CapcastError(f"{path}: the registry must be a file (JSON lines), not a folder")
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        where = f"{path}: line {n}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise CapcastError(f"{where} is not JSON; restore the registry from version control") from None
        if not isinstance(record, dict) or record.get("kind") not in ("registration", "resolution"):
            raise CapcastError(f"{where} is neither a registration nor a resolution; restore the registry from version control")
        if record.get("prev") != registry.last_line_sha:
            raise CapcastError(f"{where} does not follow the line before it (a line was changed, removed or moved); "
                               "restore the registry from version control: a changed forecast needs a new registration")
        if record.get("sha256") != record_sha256(record):
            raise CapcastError(f"{where} was changed after it was written; restore the registry from version control: "
                               "a changed forecast needs a new registration")
        if record["kind"] == "registration":
            try:
                expected = registration_id(record["forecast"], record["interval"])
            except (KeyError, TypeError):
                raise CapcastError(f"{where}: registration lacks its forecast or interval") from None
            if expected != record.get("id"):
                raise CapcastError(f"{where}: registration {record.get('id')} was changed after it was registered; "
                                   "restore it from version control: a changed forecast needs a new registration")
            registry.registrations.append(record)
        else:
            if record.get("id") not in registry.by_id():
                raise CapcastError(f"{where}: resolution of unknown registration {record.get('id')!r}")
            registry.resolutions[record["id"]] = record
        registry.last_line_sha = sha256_bytes(line.encode())
    return registry


def hindsight_rows(result: ResultFile) -> list[dict]:
    """Forecast rows whose actual was already in the forecast's input: published, never registered."""
    return [r for r in result.rows if r["actual"] is not None]


def new_registrations(registry: Registry, results: list[ResultFile], scores_sha256: str | None) -> list[dict]:
    """Registration records for every forecast row of unknown actual not registered yet (same id).

    The input hash: the result's own ``input_sha256`` when it carries one, else that of the scores
    table given to the build, else the sha256 of the canonicalised forecast inputs (family, task,
    metric, the fitted checkpoints' names, the interval), with ``input_hash_of`` saying which."""
    known = set(registry.by_id())
    out: list[dict] = []
    when, version = _now(), capcast_version()
    for result in results:
        if result.kind != "forecast":
            continue
        for row in result.rows:
            if row["actual"] is not None:
                continue
            forecast = {k: row[k] for k in FORECAST_KEYS}
            if row.get(TASK_VERSION):
                forecast[TASK_VERSION] = str(row[TASK_VERSION])
            if result.input_sha256:
                input_sha, hash_of = result.input_sha256, result.input_hash_of or "scores table"
            elif scores_sha256:
                input_sha, hash_of = scores_sha256, "scores table (--scores)"
            else:
                inputs = {k: row[k] for k in ("family", "task", "metric", "fitted")}
                input_sha, hash_of = sha256_bytes(canonical_json([inputs, result.interval]).encode()), "forecast inputs (no table given)"
            rid = registration_id(forecast, result.interval)
            if rid in known:
                continue
            known.add(rid)
            out.append({"kind": "registration", "id": rid, "registered_at": when, "capcast_version": version,
                        "laws": [row["law"]], "interval": result.interval, "input_sha256": input_sha, "input_hash_of": hash_of,
                        "source": result.path.name, "forecast": forecast})
    return out


@dataclass(frozen=True)
class ResolveSummary:
    registry: Path
    resolved: int
    already: int
    waiting: int


def resolve(registry_path: Path, actuals_path: Path, task_versions: dict[str, str] | None = None) -> ResolveSummary:
    """Add the actual score to every registered forecast the table ``actuals_path`` answers.

    Matches on (model, task, metric), and family too when the table has a family column. With
    ``task_versions`` (task -> content hash of the tasks the actuals were measured on), a
    registration of another version of a task is not answered by them (it was a forecast of a
    different task) and stays waiting. A forecast already resolved to the same value is left
    alone; to a different value is an error."""
    registry = load_registry(registry_path)
    if not registry.registrations:
        raise CapcastError(f"{registry_path}: no registered forecasts; run `capcast leaderboard build` with forecast JSON first")
    actuals = read_actuals(actuals_path)
    has_family = "family" in actuals.columns
    lookup: dict[tuple, float] = {}
    for row in actuals.itertuples(index=False):
        key = (row.family if has_family else None, str(row.model), str(row.task), str(row.metric))
        lookup[key] = float(row.value)
    digest = sha256_bytes(Path(actuals_path).read_bytes())
    when, new, already = _now(), [], 0
    for reg in registry.registrations:
        f = reg["forecast"]
        value = lookup.get((f["family"] if has_family else None, str(f["model"]), f["task"], f["metric"]))
        if value is None:
            continue
        measured_on = (task_versions or {}).get(f["task"])
        if measured_on and f.get(TASK_VERSION) and f[TASK_VERSION] != measured_on:
            continue
        done = registry.resolutions.get(reg["id"])
        if done is not None:
            if abs(done["actual"] - value) > 1e-12:
                raise CapcastError(f"{actuals_path}: {f['model']} {f['task']} {f['metric']} = {value:g}, but registration {reg['id']} "
                                   f"was resolved to {done['actual']:g} on {done['resolved_at']}; a resolution is final")
            already += 1
            continue
        new.append({"kind": "resolution", "id": reg["id"], "actual": value, "resolved_at": when, "actuals_sha256": digest,
                    "source": Path(actuals_path).name})
    registry.append(new)
    waiting = sum(r["id"] not in registry.resolutions for r in registry.registrations)
    return ResolveSummary(registry=Path(registry_path), resolved=len(new), already=already, waiting=waiting)


def registered_frame(registry: Registry) -> pd.DataFrame:
    """One row per registration: its forecast, state (registered / resolved), superseded by whom."""
    current = registry.current()
    rows = []
    for reg in registry.registrations:
        f, res = reg["forecast"], registry.resolutions.get(reg["id"])
        latest = current[target_key(f)]
        rows.append({**{k: f[k] for k in FORECAST_KEYS}, "id": reg["id"], "registered_at": reg["registered_at"],
                     "capcast_version": reg["capcast_version"], "input_sha256": reg["input_sha256"],
                     "input_hash_of": reg["input_hash_of"], "interval": reg["interval"],
                     "actual": None if res is None else res["actual"], "resolved_at": None if res is None else res["resolved_at"],
                     "state": "resolved" if res else "registered", "superseded_by": None if latest == reg["id"] else latest})
    return pd.DataFrame(rows)
