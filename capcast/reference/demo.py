"""``capcast demo``: capcast's whole job on the committed mini-ladder.

1. evaluate the checkpoints the later steps use (:func:`demo_checkpoints`: ``family.yaml``'s and
   its target; the larger size l of ``ladder.yaml`` is for ``capcast reference-family`` users) on
   the reference tasks (resumable, into ``out/store``), tabulate the scores and plot score vs
   compute (``out/plots``);
2. forecast the backtest target (``family.yaml``'s ``m-s0-step977``) from the fitting
   checkpoints of ``family.yaml`` (the sizes below m: xs, s, sm1, sm2, sm3) on every task with
   ``method="auto"``, beside its measured score (``out/forecast-plots``);
3. backtest the same method on the ladder one size down (``family.yaml``'s checkpoints, their
   largest size held out) and score it against the held-out actuals;
4. PassUntil-sample the showcase task ``ref_add3`` on a few checkpoints whose greedy score is 0
   (the library behind ``capcast sample``, into the same store) and set greedy accuracy beside
   the measured pass rate;
5. COD's predictable subset on each task with per-instance records (``out/cod``);
6. build the mini-ladder forecast leaderboard from the demo's scores (``out/leaderboard/site``):
   the same target, forecast from the same sizes.

Each step's wall time is kept in :attr:`DemoResult.timings`, in step order.

The library call behind the CLI command (:func:`run_demo`); each step is a function of its own,
and later capabilities add their steps the same way, on the same store.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from capcast.reference.ladder import FAMILY_NAME, check_ladder, load_manifest
from capcast.reference.plots import main_metric_rows, plot_all
from capcast.reference.tasks import reference_tasks

DEFAULT_OUT = Path("demo-out")
PASSUNTIL_TASK = "ref_add3"  # sampled 3-digit addition: the PassUntil showcase
GREEDY_TASK = "ref_add3_greedy"  # the same items, greedy
# Final seed-0 checkpoints of the three smaller sizes: greedy 0, sampled pass rates ~2e-4 to ~2e-3.
PASSUNTIL_CHECKPOINTS = ("xs-s0-step244", "s-s0-step488", "m-s0-step977")
# Evaluation processes by default: two halve the evaluation on 2 cores; more cost more start-up
# (each imports torch and lm-eval) than the 31 small checkpoints give back.
MAX_EVAL_WORKERS = 2


@dataclass(frozen=True)
class PassUntilSettings:
    """The demo's PassUntil step: ``limit`` first items of ``ref_add3``, stop at ``successes``
    passes or ``cap`` samples per item; r = 2 is the smallest r with a useful unbiased estimate,
    1/(K-1). Sized to under a minute on 2 CPU cores (about 130 K samples at 3-4 K samples/s): at
    rates of 1e-4 to 1e-3 most items reach the cap, and 24 x 2,048 samples still show several
    passes on the smallest checkpoint (4,096 per item on 30 items showed 9 items passing there)."""

    checkpoints: tuple[str, ...] = PASSUNTIL_CHECKPOINTS
    limit: int = 24
    successes: int = 2
    cap: int = 2048
    first_batch: int = 64
    batch_size: int = 1024  # generations per forward batch: tiny models sample fastest in big batches
    seed: int = 1234


@dataclass(frozen=True)
class PassUntilRow:
    """One checkpoint's greedy score beside its PassUntil pass rate on the showcase task."""

    checkpoint: str
    params: float
    flops: float
    greedy: float | None  # ref_add3_greedy pass rate from the evaluation (None: not evaluated)
    pass_rate: float  # PassUntil estimate (unbiased), mean over the sampled items
    lower: float
    upper: float
    instances: int
    solved: int  # items that reached r passes
    passed: int  # items with at least one passing sample
    samples: int
    seconds: float


@dataclass
class DemoResult:
    out_dir: Path
    ladder_dir: Path
    store: Path
    scores: pd.DataFrame  # long-format scores table of the ladder
    table: pd.DataFrame  # one row per checkpoint, one column per task (its main metric)
    metrics: dict[str, str]  # task -> metric shown
    plots: list[Path] = field(default_factory=list)
    target: str | None = None
    forecasts: list = field(default_factory=list)  # capcast.forecasting.forecast.ForecastRow, one per task
    forecast_plots: list[Path] = field(default_factory=list)
    fit_checkpoints: list[str] = field(default_factory=list)  # family.yaml's checkpoints that were evaluated
    passuntil: list[PassUntilRow] = field(default_factory=list)
    passuntil_settings: PassUntilSettings | None = None
    eval_seconds: float = 0.0
    forecast_seconds: float = 0.0
    passuntil_seconds: float = 0.0
    seconds: float = 0.0
    scores_csv: Path | None = None  # the whole scores table, written as CSV
    backtest: object | None = None  # capcast.reference.demo_steps.BacktestSummary
    cod: list = field(default_factory=list)  # capcast.reference.demo_steps.CODRow, one per task
    cod_dir: Path | None = None
    leaderboard: Path | None = None  # the built site's index.html
    leaderboard_reason: str = ""  # why no leaderboard was built
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds, in step order


def wide_table(rows: pd.DataFrame, tasks: list[str]) -> pd.DataFrame:
    """Checkpoints (by compute) x tasks, from :func:`main_metric_rows` output."""
    table = rows.pivot_table(index=["model", "params", "tokens", "flops"], columns="task", values="value", aggfunc="first")
    table = table.reset_index().sort_values(["flops", "model"]).reset_index(drop=True)
    return table[["model", "params", "tokens", "flops"] + [t for t in tasks if t in table.columns]]


def run_demo(
    out_dir: str | Path = DEFAULT_OUT,
    ladder_dir: str | Path | None = None,
    tasks: list[str] | None = None,
    checkpoints: list[str] | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    console=None,
    progress: bool = True,
    forecast: bool = True,
    passuntil: PassUntilSettings | None = PassUntilSettings(),
    backtest: bool = True,
    cod: bool = True,
    leaderboard: bool = True,
    cod_bootstrap: int = 100,
    workers: int | None = None,
) -> DemoResult:
    """Verify the ladder's weights, evaluate it into ``out_dir/store``, plot into ``out_dir/plots``,
    forecast the target (``out_dir/forecast-plots``) and run the PassUntil showcase.

    ``tasks``, ``checkpoints`` (default: :func:`demo_checkpoints`) and ``limit`` shrink the run
    (tests use the smallest members); any checkpoint of ``ladder.yaml`` may be named.
    Already stored (checkpoint, task) runs and PassUntil rounds are reused, so a second demo only
    re-tabulates and re-fits. ``forecast=False``, ``backtest=False``, ``passuntil=None``, ``cod=False``
    and ``leaderboard=False`` skip those steps. ``workers`` evaluation processes (default: the
    cores this process may use, at most 2), one torch thread each: a checkpoint per process, as
    ``capcast eval --executor local --workers N`` runs them (1: in this process). The
    PassUntil step samples only checkpoints of ``passuntil.checkpoints`` that are among
    ``checkpoints`` (all when ``checkpoints`` is None).
    """
    from capcast.evaluation.scores import scores_from_store
    from capcast.executors.grid import evaluate_grid, make_executor
    from capcast.forecasting.backtest import available_cores

    started = time.perf_counter()
    out = Path(out_dir)
    ladder = check_ladder(ladder_dir)
    manifest = load_manifest(ladder)
    all_tasks = {t.name: t for t in reference_tasks()}
    names = tasks or list(all_tasks)
    checkpoints = list(checkpoints) if checkpoints else demo_checkpoints(ladder)
    store = out / "store"
    workers = min(available_cores(), MAX_EVAL_WORKERS) if workers is None else workers
    executor = make_executor("local", workers=workers) if workers > 1 else None
    evaluate_grid(
        executor,
        ladder / "ladder.yaml",
        names,
        store,
        threads=1 if executor is not None else None,  # the processes share the cores: one thread each
        limit=limit,
        batch_size=batch_size,
        device="cpu",
        checkpoints=checkpoints,
        console=console,
        progress=progress,
    )
    eval_seconds = time.perf_counter() - started
    scores = scores_from_store(store)
    scores = scores[(scores["family"] == manifest["family"]) & scores["task"].isin(names)]
    if checkpoints:
        scores = scores[scores["model"].isin(checkpoints)]
    scores = scores.reset_index(drop=True)
    metrics = {n: (all_tasks[n].default_metric if n in all_tasks else "acc") for n in names}
    rows = main_metric_rows(scores, metrics)
    target = _target_name(ladder)
    plots = plot_all(rows, metrics, out / "plots", target=target)
    result = DemoResult(
        out_dir=out,
        ladder_dir=ladder,
        store=store,
        scores=scores,
        table=wide_table(rows, names),
        metrics=metrics,
        plots=plots,
        target=target,
        eval_seconds=eval_seconds,
    )
    result.scores_csv = out / "scores.csv"
    scores.to_csv(result.scores_csv, index=False)
    result.timings["evaluation"] = eval_seconds
    result.timings["tables and plots"] = time.perf_counter() - started - eval_seconds
    if forecast:
        step = time.perf_counter()
        result.forecasts, results, result.fit_checkpoints = forecast_target(scores, ladder, metrics)
        from capcast.forecasting.plots import plot_forecasts

        result.forecast_plots = plot_forecasts(results, out / "forecast-plots")
        result.forecast_seconds = result.timings["forecast"] = time.perf_counter() - step
    if backtest:
        from capcast.reference.demo_steps import backtest_below_target

        step = time.perf_counter()
        result.backtest = backtest_below_target(scores, ladder, metrics)
        result.timings["backtest"] = time.perf_counter() - step
    if passuntil is not None:
        from capcast.spec import load_family

        in_ladder = {c.name for c in load_family(ladder / "ladder.yaml").checkpoints}
        chosen = [c for c in passuntil.checkpoints if c in in_ladder and (checkpoints is None or c in checkpoints)]
        if chosen:
            step = time.perf_counter()
            if console is not None and progress:
                console.print(
                    f"PassUntil on {PASSUNTIL_TASK}: {', '.join(chosen)} (first {passuntil.limit} items, "
                    f"r = {passuntil.successes}, cap {passuntil.cap:,} samples per item)",
                    highlight=False,
                )
            result.passuntil = passuntil_showcase(ladder, store, scores, passuntil, chosen)
            result.passuntil_settings = passuntil
            result.passuntil_seconds = result.timings["PassUntil"] = time.perf_counter() - step
    if cod:
        from capcast.reference.demo_steps import cod_subsets

        step = time.perf_counter()
        result.cod_dir = out / "cod"
        result.cod = cod_subsets(store, scores, ladder, metrics, target, result.cod_dir, bootstrap=cod_bootstrap)
        result.timings["COD"] = time.perf_counter() - step
    if leaderboard:
        from capcast.reference.demo_steps import leaderboard_site

        step = time.perf_counter()
        result.leaderboard, result.leaderboard_reason = leaderboard_site(scores, out / "leaderboard")
        result.timings["leaderboard"] = time.perf_counter() - step
    result.seconds = time.perf_counter() - started
    return result


def forecast_target(scores: pd.DataFrame, ladder: Path, metrics: dict[str, str], interval: float = 0.9):
    """Forecast ``family.yaml``'s target from its fitting checkpoints, one row per task.

    Uses ``capcast.forecasting.forecast.run_forecasts`` (= ``forecast_scores`` keeping the fits, for plots)
    with ``method="auto"`` on each task's main metric. Only the checkpoints listed in
    ``family.yaml`` are fitted (the target's other seed would leak the answer, and the larger
    sizes are beyond the target); the target's own
    measured score, when evaluated, is the row's ``actual``. Where the evaluated checkpoints
    cannot support any forecast (e.g. a single size), every task still gets a row, ``not
    predictable yet``, with the reason. Returns (rows in task order, ForecastResults, fit names).
    """
    from capcast.errors import CapcastError
    from capcast.spec import load_family
    from capcast.forecasting.forecast import STATUS_UNPREDICTABLE, ForecastResult, ForecastRow, actual_value, run_forecasts
    from capcast.laws.base import Target

    spec = load_family(ladder / "family.yaml")
    fit_names = [c.name for c in spec.checkpoints]
    evaluated = set(scores["model"])
    target = Target(name=spec.target.name, params=spec.target.params, tokens=spec.target.tokens, flops=spec.target.flops)
    frame = scores[scores["model"].isin(fit_names + [target.name])]
    target_rows = frame[frame["model"] == target.name]
    by_task: dict[str, ForecastResult] = {}
    for metric in dict.fromkeys(metrics.values()):
        tasks = [t for t, m in metrics.items() if m == metric]
        try:
            for res in run_forecasts(frame, target, tasks, metric=metric, method="auto", interval=interval):
                by_task[res.row.task] = res
        except CapcastError as exc:
            for task in tasks:
                row = ForecastRow(
                    family=spec.family, model=target.name, task=task, metric=metric, law="auto", forecast=None, lower=None,
                    upper=None, actual=actual_value(target_rows, task, metric), status=STATUS_UNPREDICTABLE, reason=str(exc),
                )
                by_task[task] = ForecastResult(row=row, series=None, fit=None, target=target)
    results = [by_task[t] for t in metrics if t in by_task]
    return [r.row for r in results], results, [n for n in fit_names if n in evaluated]


def passuntil_showcase(
    ladder: Path, store: Path, scores: pd.DataFrame, settings: PassUntilSettings, checkpoints: list[str]
) -> list[PassUntilRow]:
    """PassUntil-sample ``ref_add3`` on ``checkpoints`` through :func:`capcast.passuntil.sampler.sample_family`
    (the library of ``capcast sample``) into ``store``; greedy ``ref_add3_greedy`` beside it.

    Rounds already in the store are reused, so a second call costs nothing.
    """
    from capcast.passuntil import rounds as pstore
    from capcast.spec import load_family
    from capcast.passuntil.runner import SamplerConfig, sample_family
    from capcast.store import Store

    spec_path = ladder / "ladder.yaml"
    family = load_family(spec_path)
    config = SamplerConfig(successes=settings.successes, max_samples_per_instance=settings.cap, first_batch=settings.first_batch)
    greedy = scores[(scores["task"] == GREEDY_TASK) & (scores["metric"] == "pass_rate")].set_index("model")["value"]
    rows = []
    for name in checkpoints:
        started = time.perf_counter()
        (summary,) = sample_family(
            spec_path, [PASSUNTIL_TASK], store, config, seed=settings.seed, batch_size=settings.batch_size, device="cpu",
            limit=settings.limit, checkpoints=[name],
        )
        seconds = time.perf_counter() - started
        folder = pstore.run_dir(Store(store), family.family, name, PASSUNTIL_TASK)
        _, correct, _ = pstore.load_state(folder, range(summary.instances)).counts(settings.successes)
        ckpt = family.checkpoint(name)
        rows.append(PassUntilRow(
            checkpoint=name, params=float(ckpt.params), flops=float(ckpt.compute),
            greedy=float(greedy[name]) if name in greedy.index else None,
            pass_rate=summary.pass_rate, lower=summary.lower, upper=summary.upper, instances=summary.instances,
            solved=summary.solved, passed=int((correct > 0).sum()), samples=summary.samples, seconds=seconds,
        ))
    return rows


def demo_checkpoints(ladder: Path) -> list[str]:
    """What the demo's steps use: ``family.yaml``'s fitting checkpoints and its target (which
    holds PassUntil's checkpoints too), in ``ladder.yaml``'s order. Evaluating the rest of the
    ladder (the target's other checkpoints and seed, size l) would change no number shown."""
    from capcast.spec import load_family

    family = load_family(ladder / "family.yaml")
    wanted = {c.name for c in family.checkpoints} | ({family.target.name} if family.target else set())
    return [c.name for c in load_family(ladder / "ladder.yaml").checkpoints if c.name in wanted]


def _target_name(ladder: Path) -> str | None:
    from capcast.spec import load_family

    family = load_family(ladder / "family.yaml")
    return family.target.name if family.target else None


__all__ = [
    "DemoResult", "PassUntilRow", "PassUntilSettings", "run_demo", "demo_checkpoints", "forecast_target", "passuntil_showcase",
    "wide_table",
    "FAMILY_NAME",
]
