"""Reader ``lm-eval-results``: a folder of lm-eval ``results*.json`` files as a scores table.

lm-eval 0.4 writes ``OUTPUT/<model_name_sanitized>/results_<timestamp>.json`` for every
``lm_eval ... --output_path OUTPUT`` run. The source is that folder (searched recursively) or one
such file. Each file has ``results`` {task: {"<metric>,<filter>": value, "<metric>_stderr,<filter>":
stderr, "alias": ...}}, ``n-samples`` {task: {"original": N, "effective": n}} and ``config``
{"model_args": ..., ...}.

Rows, one per (checkpoint, task, metric, filter):

- ``metric``: ``<metric>`` for filter ``none`` (``acc,none`` -> ``acc``), else
  ``<metric>/<filter>`` (``exact_match,strict-match`` -> ``exact_match/strict-match``). Keys
  without a filter (lm-eval 0.3's ``acc``) read as filter ``none``. Stderr entries are not rows;
  values that are not numbers (lm-eval's ``"N/A"``) or NaN are skipped.
- ``n_items``: the task's ``n-samples`` ``effective`` count (what ``--limit`` left); without it,
  ``sample_len``; else recovered from the stderr of a proportion (n = p(1-p)/se^2 + 1).
- ``chance``: empty (lm-eval does not record it; a forecast takes the task's from
  :mod:`capcast.tasks.chance` where it knows the task, with a note).
- ``family``, ``run``, ``model`` (the checkpoint name), ``params``, ``tokens``, ``flops``,
  ``step``: from the family spec, since lm-eval records neither non-embedding parameters nor
  training tokens.

Each file is matched to one checkpoint of the spec by (a) ``pretrained=`` in ``config.model_args``
equal to the checkpoint's ``model`` (local paths resolved as the spec resolves them: relative to
the spec's folder; a relative ``pretrained`` also against the current folder), and ``revision=``
equal to the checkpoint's ``revision`` (no revision on either side, or ``main``, match each other);
else (b) the name of the folder holding the file equal to a checkpoint's name. Several files of
one checkpoint are merged; a (checkpoint, task, metric) found in several files keeps the newest
file's value (by the timestamp in the file name, else the file's ``date``, else its modification
time) and says so with a warning.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from capcast.errors import CapcastError
from capcast.spec import Checkpoint, Family, load_family, resolve_model_path
from capcast.tables.readers.base import Reader
from capcast.tables.readers.pythia import n_from_stderr

NAME = "lm-eval-results"
RESULTS_GLOB = "results*.json"
NO_FILTER = "none"
# Entries of a task's results that are not metrics.
NOT_METRICS = frozenset({"alias", "name", "sample_len", "sample_count", "samples"})
STDERR_SUFFIX = "_stderr"
_STAMP = re.compile(r"results_(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2}(?:\.\d+)?)\.json$")


class LmEvalReaderWarning(UserWarning):
    """Raised (as a warning) when several results files give the same checkpoint's task and metric."""


def results_files(source: Path) -> list[Path]:
    """Every ``results*.json`` under ``source`` (or ``source`` itself when it is a file)."""
    source = Path(source)
    if source.is_file():
        return [source]
    return sorted(p for p in source.rglob(RESULTS_GLOB) if p.is_file())


def detect(source: Path) -> bool:
    source = Path(source)
    if source.is_file():
        return source.match(RESULTS_GLOB)
    return source.is_dir() and next((p for p in source.rglob(RESULTS_GLOB) if p.is_file()), None) is not None


def metric_name(key: str) -> Optional[str]:
    """The capcast metric of an lm-eval results key (``acc,none`` -> ``acc``,
    ``exact_match,strict-match`` -> ``exact_match/strict-match``); None for stderr entries."""
    metric, _, flt = key.partition(",")
    if metric.endswith(STDERR_SUFFIX):
        return None
    return metric if flt in ("", NO_FILTER) else f"{metric}/{flt}"


def parse_model_args(value: Any) -> dict[str, str]:
    """``config.model_args`` as a dict: lm-eval writes a dict (0.4.9+) or ``k=v,k=v`` (older)."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items() if v is not None}
    if isinstance(value, str):
        out = {}
        for part in value.split(","):
            key, sep, val = part.partition("=")
            if sep and key.strip():
                out[key.strip()] = val.strip()
        return out
    return {}


def show_model_args(value: Any) -> str:
    """``model_args`` as lm-eval's ``k=v,k=v`` text, for messages."""
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return "(none)" if value in (None, "") else str(value)


@dataclass
class _ResultsFile:
    path: Path
    data: dict
    stamp: float

    @property
    def model_args(self) -> Any:
        config = self.data.get("config")
        return config.get("model_args") if isinstance(config, dict) else None


def _stamp(path: Path, data: dict) -> float:
    match = _STAMP.search(path.name)
    if match:
        day, hours, minutes, seconds = match.groups()
        try:
            return datetime.fromisoformat(f"{day}T{hours}:{minutes}:{seconds}").timestamp()
        except ValueError:
            pass
    date = data.get("date")
    if isinstance(date, (int, float)) and not isinstance(date, bool) and math.isfinite(date):
        return float(date)
    return path.stat().st_mtime


def _load(path: Path) -> _ResultsFile:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CapcastError(f"{path}: cannot read it as JSON ({type(exc).__name__}); pass a folder of lm-eval results*.json files") from None
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise CapcastError(f"{path}: not an lm-eval results file (no 'results' mapping of task -> metrics); "
                           "move it out of the folder or pass lm-eval's --output_path folder")
    return _ResultsFile(path, data, _stamp(path, data))


def _model_keys(spec_path: Path, model: str, with_cwd: bool) -> set[str]:
    """What a model reference can equal: the spec's resolution (hub ids unchanged, local paths
    absolute and real) and, for a relative ``pretrained`` from lm-eval, the current folder's."""
    model = model.strip()
    keys = set()
    resolved = resolve_model_path(spec_path, model)
    keys.add(os.path.realpath(resolved) if os.path.isabs(resolved) else resolved.rstrip("/"))
    if with_cwd and not os.path.isabs(os.path.expanduser(model)) and Path(model).exists():
        keys.add(os.path.realpath(model))
    return keys


def _same_revision(checkpoint: Checkpoint, revision: Optional[str]) -> bool:
    return (checkpoint.revision or "main") == (revision or "main")


def _match(results: _ResultsFile, family: Family, spec_path: Path) -> Checkpoint:
    args = parse_model_args(results.model_args)
    pretrained = args.get("pretrained")
    if pretrained:
        wanted = _model_keys(spec_path, pretrained, with_cwd=True)
        same_model = [c for c in family.checkpoints if _model_keys(spec_path, c.model, with_cwd=False) & wanted]
        found = [c for c in same_model if _same_revision(c, args.get("revision"))]
        if len(found) > 1:
            names = ", ".join(c.name for c in found)
            raise CapcastError(f"{results.path}: model_args {show_model_args(results.model_args)} match several checkpoints of {spec_path} ({names}); "
                               "give each checkpoint its own model path or revision")
        if found:
            return found[0]
    by_folder = [c for c in family.checkpoints if c.name == results.path.parent.name]
    if by_folder:
        return by_folder[0]
    raise CapcastError(f"{results.path}: matches no checkpoint of {spec_path} (model_args {show_model_args(results.model_args)}); "
                       "give that checkpoint this model (and revision) in the spec, or put the file in a folder named after the checkpoint")


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _n_items(results: _ResultsFile, task: str, metrics: dict, key: str, value: float) -> float:
    counts = results.data.get("n-samples")
    counts = counts.get(task) if isinstance(counts, dict) else None
    if isinstance(counts, dict) and _number(counts.get("effective")) is not None:
        return float(counts["effective"])
    if _number(metrics.get("sample_len")) is not None:
        return float(metrics["sample_len"])
    metric, sep, flt = key.partition(",")
    return float(n_from_stderr(value, _number(metrics.get(f"{metric}{STDERR_SUFFIX}{sep}{flt}"))))


def _rows(results: _ResultsFile, checkpoint: Checkpoint, family: Family) -> list[dict]:
    base = {"family": family.family, "run": checkpoint.run_name, "model": checkpoint.name, "params": checkpoint.params,
            "tokens": checkpoint.tokens, "flops": checkpoint.compute,
            "step": float(checkpoint.step) if checkpoint.step is not None else math.nan, "chance": math.nan}
    rows = []
    for task, metrics in results.data["results"].items():
        if not isinstance(metrics, dict):
            continue
        for key, raw in metrics.items():
            name = None if key in NOT_METRICS else metric_name(key)
            value = _number(raw)
            if name is None or value is None:
                continue
            rows.append({**base, "task": str(task), "metric": name, "value": value,
                         "n_items": _n_items(results, task, metrics, key, value)})
    return rows


def _shown(path: Path, source: Path) -> str:
    try:
        return str(path.relative_to(source)) if source.is_dir() else path.name
    except ValueError:
        return str(path)


def read_lm_eval_results(source: Path, spec: Optional[Path]) -> pd.DataFrame:
    """The scores table of every lm-eval results file under ``source``, checkpoints named by ``spec``."""
    source = Path(source)
    if spec is None:
        raise CapcastError("lm-eval results do not record training tokens (nor non-embedding parameters), so they are unknown; "
                           "pass --spec FAMILY.yaml naming the checkpoints that were evaluated")
    spec_path = Path(spec)
    family = load_family(spec_path, check_paths=False)
    files = results_files(source)
    if not files:
        raise CapcastError(f"{source}: no lm-eval {RESULTS_GLOB} files in it; pass the folder given to lm_eval --output_path")
    loaded = sorted((_load(path) for path in files), key=lambda r: (r.stamp, str(r.path)))
    kept: dict[tuple[str, str, str], tuple[dict, _ResultsFile]] = {}
    replaced: dict[tuple[str, Path, Path], set[str]] = {}
    for results in loaded:  # oldest first: a newer file's value replaces an older one
        checkpoint = _match(results, family, spec_path)
        for row in _rows(results, checkpoint, family):
            key = (checkpoint.name, row["task"], row["metric"])
            if key in kept:
                older = kept[key][1]
                replaced.setdefault((checkpoint.name, older.path, results.path), set()).add(row["task"])
            kept[key] = (row, results)
    for (name, older, newer), tasks in replaced.items():
        listed = ", ".join(sorted(tasks))
        warnings.warn(f"checkpoint {name}: {_shown(older, source)} and {_shown(newer, source)} both have task(s) {listed}; "
                      f"kept the newer {_shown(newer, source)}", LmEvalReaderWarning, stacklevel=2)
    if not kept:
        raise CapcastError(f"{source}: the lm-eval results files hold no numeric metrics")
    return pd.DataFrame([row for row, _ in kept.values()])


READER = Reader(
    name=NAME,
    read=read_lm_eval_results,
    description="a folder of lm-eval results*.json (lm_eval --output_path); needs --spec FAMILY.yaml for params and tokens",
    detect=detect,
)
