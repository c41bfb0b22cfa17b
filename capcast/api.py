"""The library behind the command line: one function per command, each returning a result object.

    from capcast import api
    summary = api.evaluate("family.yaml", ["arc_easy"], store="capcast-store")      # capcast eval
    table = api.scores("capcast-store")                                             # capcast scores
    results = api.forecast(scores="scores.csv", target="pythia-12b")                # capcast forecast
    report = api.backtest(scores="scores.csv", holdout_largest=2, methods=["auto"])  # capcast backtest
    summaries = api.sample("family.yaml", ["capcast_add_gen"])                      # capcast sample
    samples = api.samples("capcast-store")                                          # capcast samples
    damaged, moved_to = api.verify_store("capcast-store", repair=False)             # capcast store verify
    table = api.import_scores("results/", reader="lm-eval-results", spec="family.yaml")  # capcast import
    items = api.prefetch("family.yaml", ["arc_easy"], cache="hf-cache")              # capcast prefetch

The CLI (:mod:`capcast.cli`) parses options, calls these, and renders what they return. Heavy
imports happen inside each function: forecasting from a table never imports lm-eval.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from capcast.errors import CapcastError

if TYPE_CHECKING:
    import pandas as pd

    from capcast.forecasting.backtest import BacktestReport
    from capcast.forecasting.forecast import ForecastResult
    from capcast.tables.series import Target

SAMPLES_METRIC = "pass_rate"


def _registry(registry):
    if registry is not None:
        return registry
    from capcast.plugins.registry import load_registry

    return load_registry()


def evaluate(family, tasks: Iterable[str], store: str | Path = "capcast-store", *, executor=None, threads: int | None = None,
             plugins_dir: str | Path | None = None, cache: str | Path | None = None, **options):
    """``capcast eval``: evaluate every checkpoint of ``family`` on ``tasks`` into ``store``
    (options as :func:`capcast.evaluation.runner.evaluate_family`). Returns an ``EvalSummary``.
    ``executor`` (from :func:`executor`) runs the grid as jobs elsewhere; ``threads`` and
    ``plugins_dir`` then travel with each job; ``cache`` (a ``capcast prefetch`` folder) makes the
    jobs run offline from it (docs/scale-out.md)."""
    if executor is not None or cache is not None:
        from capcast.executors.grid import evaluate_grid

        executor, extra_env = _offline_jobs(executor, cache, family, tasks, options.get("registry"), options.get("include_path"))
        return evaluate_grid(executor, family, list(tasks), store, threads=threads, plugins_dir=plugins_dir, extra_env=extra_env, **options)
    from capcast.evaluation.runner import evaluate_family

    return evaluate_family(family, list(tasks), store, **options)


def executor(name: str = "local", **options):
    """``--executor local|ray|slurm`` and its options (:func:`capcast.executors.grid.make_executor`);
    None for the in-process loop (``local`` with one worker)."""
    from capcast.executors.grid import make_executor

    return make_executor(name, **options)


def prefetch(family, tasks: Iterable[str], cache: str | Path, **options) -> list:
    """``capcast prefetch``: download every hub checkpoint (at its revision) and lm-eval dataset that
    ``family`` x ``tasks`` needs into ``cache``, for runs without internet (options as
    :func:`capcast.prefetch.prefetch`). Returns one ``Prefetched`` per item."""
    from capcast.prefetch import prefetch as fetch

    return fetch(family, list(tasks), cache, **options)


class EnvironmentSetting:
    """Environment variables set on creation (what capcast's worker processes and jobs inherit:
    capcast.executors.base.FORWARDED_ENV); leaving a ``with`` block puts back what was there."""

    def __init__(self, values: dict[str, str]):
        self._before = {name: os.environ.get(name) for name in values}
        os.environ.update(values)

    def __enter__(self) -> "EnvironmentSetting":
        return self

    def __exit__(self, *exc_info) -> None:
        for name, value in self._before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def use_benchmark_data(data_dir: str | Path | None = None, allow_unsafe_code: bool = False) -> EnvironmentSetting:
    """``--data-dir`` / ``--unsafe-no-sandbox`` of ``capcast eval`` and ``capcast sample``: read the
    standard benchmarks from local files under ``data_dir`` (sets ``CAPCAST_DATA_DIR``), and allow
    generated code to run unisolated where the sandbox is unavailable (``CAPCAST_UNSAFE_NO_SANDBOX=1``).

    A plain call keeps the settings for the rest of the process; ``with use_benchmark_data(...):``
    keeps them for the block only (the commands do that, so an in-process command leaves nothing)."""
    from capcast.tasks import sandbox, standard

    values = {}
    if data_dir is not None:
        values[standard.DATA_DIR_ENV] = str(standard.checked_data_dir(data_dir))
    if allow_unsafe_code:
        values[sandbox.UNSAFE_ENV] = "1"
    return EnvironmentSetting(values)


def scores(store: str | Path = "capcast-store") -> "pd.DataFrame":
    """``capcast scores``: the long-format scores table of everything ``store`` holds."""
    from capcast.evaluation.scores import scores_from_store

    store = Path(store)
    if not store.is_dir():
        raise CapcastError(f"store {store} does not exist; run `capcast eval ... --store {store}` first")
    return scores_from_store(store)


def export_samples(store: str | Path, out: str | Path, **options) -> list:
    """``capcast export-samples``: every stored ``capcast eval`` run (filtered by ``tasks``,
    ``families``, ``checkpoints``) as lm-eval's per-sample JSONL under ``out``; one entry per file
    (options as :func:`capcast.evaluation.export.export_samples`)."""
    from capcast.evaluation.export import export_samples as write

    return write(store, out, **options)


def verify_store(store: str | Path = "capcast-store", repair: bool = False):
    """``capcast store verify``: ``(damaged runs, folder they were moved to or None)``; with
    ``repair`` every damaged run is moved aside (never deleted) so the next eval measures it again."""
    from capcast.store import Store
    from capcast.store.verify import repair as move_aside

    store = Store(store)
    if not store.root.is_dir():
        raise CapcastError(f"store {store.root} does not exist; pass the folder given to `capcast eval --store`")
    store.check_format()
    damage = store.verify()
    if not repair or not damage:
        return damage, None
    with store.open_for_writing("capcast store verify --repair"):
        return damage, move_aside(store, damage)


def sample(family, tasks: Iterable[str], store: str | Path = "capcast-store", config=None, *, executor=None, threads: int | None = None,
           plugins_dir: str | Path | None = None, cache: str | Path | None = None, **options):
    """``capcast sample``: PassUntil-sample every checkpoint of ``family`` on ``tasks`` (options as
    :func:`capcast.passuntil.runner.sample_family`). Returns one summary per (checkpoint, task).
    ``executor`` (from :func:`executor`) runs each (checkpoint, task) run as a job elsewhere;
    ``cache`` (a ``capcast prefetch`` folder) makes those jobs run offline from it (docs/scale-out.md)."""
    from capcast.passuntil.runner import SamplerConfig

    if executor is None and cache is None:
        from capcast.passuntil.runner import sample_family

        return sample_family(family, list(tasks), store, config or SamplerConfig(), **options)
    from capcast.executors.sampling import sample_grid

    executor, extra_env = _offline_jobs(executor, cache, family, tasks, options.get("registry"), options.get("include_path"))
    return sample_grid(executor, family, list(tasks), store, config or SamplerConfig(), threads=threads, plugins_dir=plugins_dir,
                       extra_env=extra_env, **options)


def _offline_jobs(executor, cache, family, tasks, registry, include_path):
    """``(executor, worker environment)`` for ``--cache DIR``: every checkpoint and dataset the jobs
    need must be in the cache (one line naming the missing one and the prefetch command), and the jobs
    then run in worker processes with the cache's offline environment (never this process's)."""
    if cache is None:
        return executor, None
    from capcast.executors.local import LocalExecutor
    from capcast.prefetch import check_cache, offline_env

    check_cache(family, list(tasks), cache, registry=registry, include_path=include_path)
    return executor or LocalExecutor(workers=1), offline_env(cache)


def samples(store: str | Path = "capcast-store") -> "pd.DataFrame":
    """``capcast samples``: the per-instance samples table of everything ``store`` holds."""
    from capcast.passuntil.rounds import export_samples_table

    store = Path(store)
    if not store.is_dir():
        raise CapcastError(f"store {store} does not exist; run `capcast sample ... --store {store}` first")
    return export_samples_table(store)


def import_scores(source: str | Path, reader: str | None = None, spec: str | Path | None = None, registry=None) -> "pd.DataFrame":
    """``capcast import``: a validated scores table from external results (lm-eval ``results*.json``,
    the Pythia or OpenLM suites, or a plugin's format)."""
    from capcast.tables.readers import import_scores as read

    return read(Path(source), reader=reader, spec=None if spec is None else Path(spec), registry=_registry(registry))


def forecast(
    family: str | Path | None = None, *, scores: "str | Path | pd.DataFrame | None" = None,
    samples: "str | Path | pd.DataFrame | None" = None, store: str | Path | None = None, target: "str | Target | None" = None,
    target_params: float | None = None, target_tokens: float | None = None, target_flops: float | None = None,
    tasks: Iterable[str] | None = None, metric: str | None = None, method: str = "auto", interval: float = 0.9,
    max_step: int | None = None, limit: int | None = None, device: str | None = None, registry=None, console=None,
    interpolate: bool = False, executor=None, cache: str | Path | None = None,
) -> list["ForecastResult"]:
    """``capcast forecast``: forecast the target from exactly one of a family spec (evaluating what
    the store lacks first), a scores table, or a samples table (``pass_rate``). One result per
    (family, task), each with a row, its series and the fitted law. The fit never sees the target's
    run, nor checkpoints at or above the target's compute unless ``interpolate``. ``executor`` and
    ``cache`` (as :func:`evaluate`) run the family's evaluation as jobs first."""
    from capcast.forecasting.forecast import choose_target, run_forecasts, scores_for_forecast

    registry = _registry(registry)
    task_list = list(tasks) if tasks else None
    if family is None:  # these options only steer the evaluation of a family: never ignore them silently
        given = [name for name, value in (("--store", store), ("--limit", limit), ("--device", device), ("--executor", executor),
                                          ("--cache", cache)) if value is not None]
        if given:
            raise CapcastError(f"{', '.join(given)} only {'applies' if len(given) == 1 else 'apply'} when forecasting a FAMILY.yaml; "
                               "drop it with --scores or --samples")
    if samples is not None:  # PassUntil counts: see capcast.forecasting.samples
        if family is not None or scores is not None:
            raise CapcastError("give one of FAMILY.yaml, --scores FILE or --samples FILE")
        check_samples_metric(metric)
        resolved = target if _is_target(target) else choose_target(target, target_params, target_tokens, target_flops)
        from capcast.forecasting.samples import forecast_samples

        if method == "cod":  # COD fits the per-instance records themselves (capcast.cod.law)
            from capcast.cod.law import forecast_samples_cod

            return forecast_samples_cod(samples, resolved, task_list, interval, max_step, registry)
        return forecast_samples(samples, resolved, task_list, method, interval, max_step, registry, interpolate=interpolate)
    if family is not None and scores is None and task_list and (executor is not None or cache is not None):
        # the spec's evaluation as jobs first; scores_for_forecast then finds every run stored and evaluates nothing
        evaluate(family, task_list, Path(store) if store is not None else Path("capcast-store"), executor=executor, cache=cache,
                 limit=limit, device=device, registry=registry, console=console)
    table, spec_target = scores_for_forecast(family, scores, store, task_list, limit, device, registry, console)
    resolved = target if _is_target(target) else choose_target(target, target_params, target_tokens, target_flops, spec_target)
    schedules = _spec_schedules(family)  # the runs' learning-rate schedules, for schedule-aware laws
    instances = None
    if method == "cod" and family is not None:  # the store's per-choice / per-sample records
        from capcast.cod.law import store_instances

        instances = store_instances(family, store)
    if metric is not None:
        return run_forecasts(table, resolved, task_list, metric, method, interval, max_step, registry, interpolate=interpolate,
                             instances=instances, schedules=schedules)
    # No --metric: each task its own default (capcast.forecasting.task_metrics), one forecast call per metric.
    frame, groups, order, note = _default_metrics(table, task_list, registry)
    results = [r for name, names in groups.items() for r in run_forecasts(
        frame, resolved, names, name, method, interval, max_step, registry, interpolate=interpolate, instances=instances,
        schedules=schedules)]
    _say_note(console, note)  # once the forecasts stand: an error stays the only line
    return sorted(results, key=lambda r: (r.row.family or "", order[r.row.task]))


def _spec_schedules(family) -> dict:
    """The family spec's ``schedules`` (run -> schedule); empty without a spec."""
    if family is None:
        return {}
    from capcast.spec import open_family

    return dict(open_family(family)[1].schedules)


def _default_metrics(table, task_list, registry):
    """``(scores frame, {metric: tasks}, {task: position}, note)`` when ``--metric`` is not given;
    the note says which metric each task used."""
    from capcast.forecasting.task_metrics import by_metric, describe, task_metrics
    from capcast.tables.scores import read_scores

    frame = read_scores(table)
    chosen, left_out = task_metrics(frame, task_list, registry)
    if not chosen:
        raise CapcastError("no task of the table has a default metric (each has several, acc not among them); pass --metric")
    return frame, by_metric(chosen), {c.task: i for i, c in enumerate(chosen)}, describe(chosen, left_out)


def _say_note(console, note: str) -> None:
    if console is not None:
        console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)


def _is_target(target) -> bool:
    from capcast.tables.series import Target

    return isinstance(target, Target)


def backtest(
    *, scores: "str | Path | pd.DataFrame | None" = None, samples: "str | Path | pd.DataFrame | None" = None,
    holdout_largest: int = 1, methods: Iterable[str] | None = None, tasks: Iterable[str] | None = None,
    metric: str | None = None, interval: float = 0.9, max_step: int | None = None, all_steps: bool = False,
    families: Iterable[str] | None = None, registry=None, store: str | Path | None = None, console=None,
    workers: int | None = 1, schedules_from: str | Path | None = None,
) -> "BacktestReport":
    """``capcast backtest``: hide each family's largest sizes (whole runs), forecast them from the
    rest with every method, and score each method on the same forecasts. ``store``: a record
    store instead of a table (its scores; ``cod`` also gets its per-choice / per-sample records).
    ``workers``: processes a scores backtest spreads its families over (None: every available
    core); the report is the same whichever. ``schedules_from``: a family spec whose ``schedules``
    (learning-rate schedule per run) the schedule-aware laws (``ladder-schedule``) use."""
    registry = _registry(registry)
    schedules = None
    if schedules_from is not None:
        from capcast.spec import load_family

        schedules = load_family(schedules_from, check_paths=False).schedules or None
        if schedules is None:
            raise CapcastError(f"{schedules_from}: the family spec has no schedules; add a schedules: mapping (docs/forecasting.md)")
    if sum(x is not None for x in (scores, samples, store)) != 1:
        raise CapcastError("give exactly one of --scores FILE, --samples FILE or --store DIR")
    task_list = list(tasks) if tasks else None
    family_list = list(families) if families else None
    if samples is not None:
        from capcast.forecasting.samples import backtest_samples

        check_samples_metric(metric)
        if all_steps:
            raise CapcastError("--all-steps does not apply to --samples: a samples backtest forecasts each held-out run's final checkpoint")
        if "cod" in (methods or ()):  # COD fits the per-instance records themselves (capcast.cod.law)
            from capcast.cod.law import backtest_samples_cod

            return backtest_samples_cod(samples, holdout_largest, list(methods), task_list, interval, max_step, registry, family_list)
        return backtest_samples(samples, holdout_largest, list(methods or ["passuntil"]), task_list, interval, max_step, registry,
                                families=family_list)
    from capcast.forecasting.backtest import available_cores, backtest_scores

    workers = available_cores() if workers is None else workers
    instances = None
    if store is not None:  # the store's scores table; COD fits its per-instance records (capcast.cod.law)
        from capcast.cod.instances import from_store
        from capcast.evaluation.scores import scores_from_store

        if not Path(store).is_dir():
            raise CapcastError(f"store {store} does not exist; run `capcast eval ... --store {store}` first")
        scores = scores_from_store(Path(store))
        instances = from_store(store) if "cod" in (methods or ()) else None
    methods = list(methods or ["auto"])
    if metric is not None:
        return backtest_scores(scores, holdout_largest, methods, task_list, metric, interval, max_step, all_steps, registry,
                               families=family_list, instances=instances, workers=workers, schedules=schedules)
    # No --metric: each task its own default, one backtest per metric, every method scored on all their rows.
    from capcast.forecasting.backtest import BacktestReport, score_rows

    frame, groups, order, note = _default_metrics(scores, task_list, registry)
    rows = [row for name, names in groups.items() for row in backtest_scores(
        frame, holdout_largest, methods, names, name, interval, max_step, all_steps, registry, families=family_list,
        instances=instances, workers=workers, schedules=schedules).rows]
    rows.sort(key=lambda r: (r["family"] or "", order[r["task"]]))
    _say_note(console, note)
    return BacktestReport(methods={m: score_rows(r for r in rows if r["method"] == m) for m in methods}, rows=rows)


def cluster(*, samples: "str | Path | pd.DataFrame | None" = None, store: str | Path | None = None, tasks: Iterable[str] | None = None,
            **options) -> list:
    """``capcast cluster``: COD's clusters, per-cluster laws, predictable subset and mapping for each
    task of a samples table or a store's per-instance records (options as
    :func:`capcast.cod.commands.cluster_tasks`). Returns one ``CODResult`` per task."""
    from capcast.cod.commands import cluster_tasks

    return cluster_tasks(samples=samples, store=store, tasks=None if tasks is None else list(tasks), **options)


def cluster_show(out: str | Path, tasks: Iterable[str] | None = None) -> list:
    """``capcast cluster show``: the saved COD results under ``out`` (one per task)."""
    from capcast.cod.commands import load_results

    return load_results(out, None if tasks is None else list(tasks))


def check_samples_metric(metric: str | None) -> None:
    if metric not in (None, SAMPLES_METRIC):
        raise CapcastError(f"--metric {metric!r} does not apply to --samples: a samples table forecasts pass_rate; drop --metric")


def leaderboard_build(results: Iterable["str | Path | dict"] | None, out: str | Path, *, scores: Iterable[str | Path] | None = None,
                      registry: str | Path | None = None, title: str = "capcast forecast leaderboard",
                      store: str | Path | None = None, methods: Iterable[str] | None = None, interval: float = 0.9) -> Path:
    """``capcast leaderboard build``: the static site of forecast and backtest results in ``out``
    (registering forecasts of unknown actual in ``registry``). Returns the site's ``index.html``.

    ``store``: a record store instead of (or beside) result files: its scores are backtested with
    ``methods`` (default auto, sigmoid, logit-linear, linear; the largest size held out, whole
    runs) and drawn in the charts."""
    from capcast.leaderboard import build_leaderboard

    docs: list = [r if isinstance(r, dict) else Path(r) for r in results or []]
    tables: list = [Path(s) for s in scores or []]
    if store is not None:
        from capcast import api as library  # the ``scores`` parameter hides the function of that name

        table = library.scores(store)
        report = backtest(scores=table, methods=list(methods) if methods else ["auto", "sigmoid", "logit-linear", "linear"],
                          interval=interval)
        docs.append({**report.to_dict(), "interval": interval})
        tables.append(table)
    return build_leaderboard(docs, Path(out), scores=tables, registry=None if registry is None else Path(registry), title=title)


def leaderboard_resolve(registry: str | Path, actuals: str | Path):
    """``capcast leaderboard resolve``: add the known actual scores to registered forecasts."""
    from capcast.leaderboard import resolve

    return resolve(Path(registry), Path(actuals))


def family_init(source: str | Path, out: str | Path = "family.yaml", tokens_per_step: float | None = None,
                family: str | None = None):
    """``capcast family init``: describe a folder of checkpoints (or a list of hub ids) and write
    its family YAML to ``out``; returns the :class:`capcast.family_init.FamilyDraft`."""
    from capcast.family_init import family_init as write

    return write(source, out, tokens_per_step=tokens_per_step, family=family)
