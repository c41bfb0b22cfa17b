"""Stored runs as lm-eval's per-sample JSONL (what ``lm-eval --log_samples`` writes).

``capcast export-samples`` writes, for each stored ``capcast eval`` run,
``OUT/<family>/<checkpoint>/samples_<task>_<date>.jsonl``: one line per doc with lm-eval's
fields (``doc_id``, ``doc``, ``target``, ``arguments``, ``resps``, ``filtered_resps``, ``filter``,
``metrics``, ``doc_hash``, ``prompt_hash``, ``target_hash`` and each metric's value), in the form
lm-eval's ``EvaluationTracker.save_results_samples`` gives them (arguments as
``{"gen_args_0": {"arg_0": context, "arg_1": continuation}}``, responses as strings).

The store keeps records, not prompts, so lm-eval rebuilds each line itself: the run's task is
evaluated again with the run's limit, seed and few-shot setting on a model that answers every
request from the stored records (:func:`capcast.evaluation.harness.replay_samples`). The lines
are checked against the run: lm-eval's task hash of the rebuilt docs, prompts and targets must
equal the one stored, otherwise the task changed since the run and nothing is written for it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from capcast.errors import CapcastError
from capcast.store import Store, path_slug


@dataclass
class ExportedRun:
    family: str
    checkpoint: str
    task: str
    path: Path
    lines: int


def export_samples(store_dir: str | Path, out: str | Path, *, tasks: Iterable[str] | None = None, families: Iterable[str] | None = None,
                   checkpoints: Iterable[str] | None = None, registry=None, include_path: str | Path | None = None) -> list[ExportedRun]:
    """Write lm-eval per-sample JSONL for every stored run matching the filters; one entry per file."""
    from capcast.evaluation import harness
    from capcast.evaluation.records import task_hash
    from capcast.evaluation.runner import LmEvalOptions, resolve_tasks

    store = Store(store_dir)
    if not store.root.is_dir():
        raise CapcastError(f"store {store.root} does not exist; run `capcast eval ... --store {store.root}` first")
    runs = store.runs()
    for column, wanted in (("task", tasks), ("family", families), ("checkpoint", checkpoints)):
        if wanted:
            wanted = list(wanted)
            missing = sorted(set(wanted) - set(runs[column]))
            if missing:
                known = ", ".join(sorted(set(runs[column]))) or "none"
                raise CapcastError(f"store {store.root} holds no runs of {column} {', '.join(missing)}; it has: {known}")
            runs = runs[runs[column].isin(wanted)]
    if runs.empty:
        raise CapcastError(f"store {store.root} holds no `capcast eval` runs to export")
    harness.prepare_environment(store.root, local_tasks=True, local_models=True)
    resolved = {t.name: t for t in resolve_tasks(sorted(set(runs["task"])), registry, include_path)}
    written = []
    for row in runs.itertuples(index=False):
        manifest = store.run_manifest(row.family, row.checkpoint, row.task) or {}
        options = LmEvalOptions(num_fewshot=manifest.get("num_fewshot"), gen_kwargs=manifest.get("gen_kwargs") or {})
        prepared = options.prepare(harness, resolved[row.task], store.task_data_dir(row.task))
        samples = harness.replay_samples(prepared, _answers(store, row, prepared.kind), limit=_int(manifest.get("limit")),
                                         seed=int(manifest.get("seed", 1234)), repeats=int(manifest.get("repeats") or 1))
        stored_hash = manifest.get("task_hash")
        if stored_hash and task_hash(samples) != stored_hash:
            raise CapcastError(f"{row.checkpoint} x {row.task}: the task's docs or prompts differ from those of the stored run "
                               "(lm-eval's task hash changed); re-run it (`capcast eval --force`) before exporting")
        path = Path(out) / path_slug(row.family) / path_slug(row.checkpoint) / f"samples_{path_slug(row.task)}_{_date_id(manifest)}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for sample in samples:
                fh.write(json.dumps(lm_eval_line(sample), ensure_ascii=False, default=_plain) + "\n")
        written.append(ExportedRun(row.family, row.checkpoint, row.task, path, len(samples)))
    return written


def _answers(store: Store, row: Any, kind: str) -> dict:
    """The stored records of one run as the answers lm-eval's requests get back."""
    keys = [row.family, row.checkpoint, row.task]
    where = "WHERE family = ? AND checkpoint = ? AND task = ?"
    with store.connect() as con:
        if kind == "multiple_choice":
            rows = con.execute(f"SELECT doc_id, choice_idx, loglik, is_greedy FROM choices {where}", keys).fetchall()
            return {(int(d), int(i)): (float(ll), bool(g)) for d, i, ll, g in rows}
        rows = con.execute(f"SELECT doc_id, text FROM samples {where} ORDER BY doc_id, sample_idx", keys).fetchall()
    out: dict[int, list[str]] = {}
    for doc_id, text in rows:
        out.setdefault(int(doc_id), []).append(text)
    return out


def lm_eval_line(sample: dict) -> dict:
    """One logged sample as ``EvaluationTracker.save_results_samples`` writes it."""
    line = dict(sample)
    line["arguments"] = {f"gen_args_{i}": {f"arg_{j}": value for j, value in enumerate(args)}
                         for i, args in enumerate(sample["arguments"])}
    line["resps"] = _strings(sample["resps"])
    line["filtered_resps"] = _strings(sample["filtered_resps"])
    line["target"] = str(sample["target"])
    return line


def _strings(value):
    """lm-eval's ``sanitize_list``: nested lists and tuples kept, every leaf as a string."""
    if isinstance(value, list):
        return [_strings(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_strings(v) for v in value)
    return str(value)


def _plain(value):
    """JSON for what lm-eval's ``handle_non_serializable`` turns into plain values (numpy numbers, sets)."""
    try:
        import numpy as np

        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
    except ImportError:
        pass
    return list(value) if isinstance(value, set) else str(value)


def _int(value) -> int | None:
    try:
        return None if value is None or value != value else int(value)
    except (TypeError, ValueError):
        return None


def _date_id(manifest: dict) -> str:
    """lm-eval's file date (``%Y-%m-%dT%H-%M-%S.%f``) of the run's end."""
    try:
        when = dt.datetime.fromisoformat(str(manifest["finished_at"]))
    except (KeyError, ValueError):
        when = dt.datetime.now(dt.timezone.utc)
    return when.strftime("%Y-%m-%dT%H-%M-%S.%f")
