"""The leaderboards published in the repository's ``leaderboards/`` (``make leaderboards``):

- ``mini-ladder``: the reference mini-ladder's scores (``docs/reference-scores.csv``, or the
  demo's), up to the size of the target ``m-s0-step977`` (``family.yaml``'s: the demo evaluates
  no more): a backtest (largest size held out), the target forecast from the sizes below it (xs,
  s, sm1, sm2, sm3) as a registered forecast then resolved with its known scores, and a
  registered forecast of a size not trained (``xl``, from the same sizes) that stays open. Each forecast carries its
  task's content hash (:func:`task_versions`), so a changed task is a new registration;
- ``pythia``: the Pythia suite's backtest (fit on 70m-1.4b, forecast 6.9b and 12b, as the README's
  headline figures) and the 12b forecasts with their fitted curves;
- ``openlm``: OpenLM over-training (fit at most 1.4B, forecast 6.9B) on Gadre et al.'s 17 tasks.

Each lives in ``leaderboards/<name>/``: the inputs (``inputs/*.json``), the registry
(``registry.jsonl``, append-only, committed) and the site (``site/``). The Pythia and OpenLM
leaderboards need ``../shared/data``; where it is absent they are skipped with a line saying so.

    python -m capcast.leaderboard.published leaderboards        # what `make leaderboards` runs
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from capcast.errors import CapcastError
from capcast.laws.base import Target
from capcast.leaderboard.documents import forecast_document
from capcast.leaderboard.site import build_leaderboard
from capcast.schema import default_run
from capcast.tables.readers.openlm import GADRE_17
from capcast.tables.readers.pythia import BACKTEST_FIT as PYTHIA_FIT
from capcast.tables.readers.pythia import BACKTEST_TARGETS as PYTHIA_TARGETS
from capcast.tables.readers.pythia import BACKTEST_TASKS as PYTHIA_TASKS

INTERVAL = 0.9
METHODS = ["auto", "sigmoid", "logit-linear", "linear"]
MINI_TARGET = "m-s0-step977"  # family.yaml's target: the demo evaluates nothing larger
# a size the ladder never trained (4x l's parameters on 2.5x its tokens); its forecast stays registered
MINI_UNTRAINED = Target(name="xl-s0 (not trained)", params=1.0e6, tokens=2.5e7)
OPENLM_METHODS = ["auto", "sigmoid", "linear"]


def _write(path: Path, document: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    return path


def _backtest(table: pd.DataFrame, metric_tasks: dict[str, list[str]], holdout: int, methods: list[str], registry) -> dict:
    """One backtest JSON (``capcast backtest --format json``'s shape plus its interval) over several metrics."""
    from capcast.forecasting.backtest import backtest_scores, score_rows

    rows = []
    for metric, tasks in metric_tasks.items():
        for family in sorted(table["family"].unique()):
            rows += backtest_scores(table[table["family"] == family], holdout_largest=holdout, methods=methods, tasks=tasks,
                                    metric=metric, interval=INTERVAL, registry=registry).rows
    methods_out = {m: score_rows(r for r in rows if r["method"] == m).to_dict() for m in methods}
    return {"interval": INTERVAL, "methods": methods_out, "rows": rows}


def _by_metric(table: pd.DataFrame) -> dict[str, list[str]]:
    pairs = table[["task", "metric"]].drop_duplicates()
    return {m: sorted(pairs.loc[pairs["metric"] == m, "task"]) for m in sorted(pairs["metric"].unique())}


def _forecasts(table: pd.DataFrame, target, metric_tasks: dict[str, list[str]], registry, versions: dict[str, str] | None = None) -> dict:
    from capcast.forecasting.forecast import run_forecasts
    from capcast.leaderboard.registry import TASK_VERSION

    results = []
    for metric, tasks in metric_tasks.items():
        results += run_forecasts(table, target, tasks, metric, "auto", INTERVAL, None, registry)
    document = forecast_document(results, INTERVAL, table)
    for row in document["rows"]:
        if (versions or {}).get(row["task"]):
            row[TASK_VERSION] = versions[row["task"]]
    return document


def _file_digests(value):
    """``value`` (a task config) with each path of an existing file replaced by the file's sha256."""
    if isinstance(value, dict):
        return {k: _file_digests(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_file_digests(v) for v in value]
    if isinstance(value, str) and len(value) < 4096 and Path(value).is_file():
        return "sha256:" + hashlib.sha256(Path(value).read_bytes()).hexdigest()
    return value


def task_versions(tasks: list[str], registry) -> dict[str, str]:
    """Content hash of each registered task with an lm-eval config: its config (built into a
    scratch folder when it is a builder) with every data file replaced by its sha256, so two
    versions differ exactly when their items, prompts, targets or settings do. Tasks without a
    config of their own (lm-eval built-ins, imported tables) get none."""
    out = {}
    with tempfile.TemporaryDirectory(prefix="capcast-task-version-") as scratch:
        for name in tasks:
            config = registry.tasks[name].lm_eval_config if name in registry.tasks else None
            if callable(config):
                config = config(Path(scratch) / name)
            if config is None:
                continue
            content = json.dumps(_file_digests(config), sort_keys=True, default=str)
            out[name] = hashlib.sha256(content.replace(scratch, "").encode()).hexdigest()[:16]
    return out


def with_runs(table: pd.DataFrame) -> pd.DataFrame:
    """A table without a ``run`` column gets the spec's rule (``l-s0-step2441`` is in run ``l-s0``)."""
    if "run" not in table.columns:
        table = table.assign(run=table["model"].map(default_run))
    return table


def build_mini_ladder(scores: pd.DataFrame | Path, folder: Path, registry=None) -> Path:
    """The mini-ladder leaderboard from its scores table (the demo's, or docs/reference-scores.csv)
    into ``folder`` (inputs/, registry.jsonl, site/). Returns the site's index.html."""
    from capcast.leaderboard.registry import resolve
    from capcast.plugins.registry import load_registry
    from capcast.tables.scores import read_scores

    registry = registry or load_registry()
    table = read_scores(with_runs(pd.read_csv(scores) if isinstance(scores, Path) else scores))
    target_rows = table[table["model"] == MINI_TARGET]
    if target_rows.empty:
        raise CapcastError(f"the mini-ladder scores have no {MINI_TARGET}: the leaderboard forecasts it; evaluate it")
    first = target_rows.iloc[0]
    # Nothing larger than the target, and its seed only (what family.yaml fits): the same table
    # whether it is the demo's or the whole ladder's.
    seed = default_run(MINI_TARGET).rsplit("-", 1)[-1]
    table = table[(table["params"] <= first["params"]) & (table["run"].astype(str).str.rsplit("-", n=1).str[-1] == seed)]
    folder, inputs = Path(folder), Path(folder) / "inputs"
    metric_tasks = _by_metric(table)
    versions = task_versions(sorted(table["task"].unique()), registry)
    backtest = _write(inputs / "backtest.json", _backtest(table, metric_tasks, 1, METHODS, registry))
    # Pre-registration as it happens: the target's size left out of the table, then resolved.
    before = table[table["params"] < first["params"]]
    target = Target(name=MINI_TARGET, params=float(first["params"]), tokens=float(first["tokens"]), flops=float(first["flops"]))
    registered = _write(inputs / f"forecast-{MINI_TARGET}.json", _forecasts(before, target, metric_tasks, registry, versions))
    # The untrained size from the same checkpoints as the target's forecast: the same series, and
    # about a third of the time of fitting the target's size as well (the demo's slowest fit).
    untrained = _write(inputs / "forecast-xl.json", _forecasts(before, MINI_UNTRAINED, metric_tasks, registry, versions))
    sources = [backtest, registered, untrained]
    site = folder / "site"
    title = "capcast-mini: forecast leaderboard"
    build_leaderboard(sources, site, scores=[table], registry=folder / "registry.jsonl", title=title)
    actuals = inputs / f"actuals-{MINI_TARGET}.csv"
    target_rows[["family", "model", "task", "metric", "value"]].to_csv(actuals, index=False)
    resolve(folder / "registry.jsonl", actuals, task_versions=versions)
    return build_leaderboard(sources, site, scores=[table], registry=folder / "registry.jsonl", title=title)


def build_pythia(data: Path, folder: Path, registry) -> Path:
    from capcast.tables.readers import import_scores

    table = with_runs(import_scores(data / "pythia", reader="pythia", registry=registry))
    table = table[(table["family"] == "pythia") & table["model"].isin([f"pythia-{s}" for s in PYTHIA_FIT + PYTHIA_TARGETS])]
    metric_tasks: dict[str, list[str]] = {}
    for task, metric in PYTHIA_TASKS.items():
        metric_tasks.setdefault(metric, []).append(task)
    inputs = Path(folder) / "inputs"
    backtest = _write(inputs / "backtest.json", _backtest(table, metric_tasks, len(PYTHIA_TARGETS), METHODS, registry))
    fit = table[~table["model"].isin(["pythia-6.9b"])]  # the 12b forecast must not see 6.9b either
    forecast = _write(inputs / "forecast-pythia-12b.json", _forecasts(fit, "pythia-12b", metric_tasks, registry))
    return build_leaderboard([backtest, forecast], Path(folder) / "site", scores=[table], registry=Path(folder) / "registry.jsonl",
                             title="Pythia: forecast leaderboard")


def build_openlm(data: Path, folder: Path, registry) -> Path:
    from capcast.tables.readers import import_scores

    table = with_runs(import_scores(data / "openlm-overtraining", reader="openlm", registry=registry))
    table = table[(table["metric"] == "acc") & table["task"].isin(GADRE_17)]
    inputs = Path(folder) / "inputs"
    backtest = _write(inputs / "backtest.json", _backtest(table, {"acc": sorted(table["task"].unique())}, 1, OPENLM_METHODS, registry))
    return build_leaderboard([backtest], Path(folder) / "site", scores=[table], registry=Path(folder) / "registry.jsonl",
                             title="OpenLM over-training: forecast leaderboard")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def build_all(root: Path, repo: Path) -> list[str]:
    """Every published leaderboard under ``root``; one line per leaderboard, built or skipped."""
    from capcast.plugins.registry import load_registry

    registry = load_registry()
    lines = []
    started = time.perf_counter()
    index = build_mini_ladder(repo / "docs" / "reference-scores.csv", root / "mini-ladder", registry)
    lines.append(f"mini-ladder: {_shown(index)} ({time.perf_counter() - started:.0f} s)")
    data = repo.parent / "shared" / "data"
    for name, recipe, needs in (("pythia", build_pythia, "pythia"), ("openlm", build_openlm, "openlm-overtraining")):
        if not (data / needs).is_dir():
            lines.append(f"{name}: skipped: {data / needs} is absent (the shared data sets sit beside the repository)")
            continue
        started = time.perf_counter()
        index = recipe(data, root / name, registry)
        lines.append(f"{name}: {_shown(index)} ({time.perf_counter() - started:.0f} s)")
    return lines


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0] if argv else "leaderboards").resolve()
    repo = Path(__file__).resolve().parents[2]
    for line in build_all(root, repo):
        print(line)


if __name__ == "__main__":
    main()
