"""Two-step laws with and without the learning-rate schedule (capcast issue 11, item 3).

Compares, on the same forecasts:

* ``ladder-all``: ``ladder`` as capcast fitted it before: step 1 on every checkpoint, no smoothing
  (``LadderLaw(step_one="all", smooth_width=1)``);
* ``ladder``: as Bhagia et al. fit it: step 1 on one point per run (the mean loss of the run's
  checkpoints in its final 10% of tokens), step 2 on every checkpoint smoothed within runs (width 3);
* ``ladder-schedule``: step 1 = Tissue et al.'s LR-annealing law with a size term on every
  checkpoint, from each run's schedule; step 2 as ``ladder``.

Data:

1. the reference mini-ladder, three nested splits: fit xs..sm2 -> forecast sm3; fit xs..sm3 ->
   m (family.yaml's split); fit xs..m -> l; each target size's two seeds at their final
   checkpoint, on the two tasks with a task loss (ref_carry, ref_facts; acc with bpb_gold). Scores: ``schedule_two_step_miniladder.csv``
   beside this script, ``capcast demo``'s scores.csv on the committed weights (its acc values are
   docs/reference-scores.csv's), the acc and bpb_gold rows of those two tasks. Schedules: the
   committed capcast/reference/ladder/ladder.yaml.
2. Pythia (``../shared/data``, benchmarks/readers.py): fit 70m-1.4b, forecast 6.9b and 12b at step
   143000, the 9 tasks of benchmarks/forecast_accuracy.py. Schedule: cosine to 10% of peak, 1%
   warm-up (1430 steps), 143000 steps of 2,097,152 tokens (Biderman et al. 2023), as a relative
   schedule (the areas are relative to each run's peak, so the per-size peak LRs are not needed).

    python benchmarks/schedule_two_step.py                       # writes benchmarks/schedule_two_step.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readers import read_pythia  # noqa: E402

from capcast.forecasting.forecast import run_forecasts  # noqa: E402
from capcast.laws.ladder import LadderLaw  # noqa: E402
from capcast.plugins.registry import load_registry  # noqa: E402
from capcast.spec import Schedule, load_family  # noqa: E402
from capcast.tables.readers.pythia import BACKTEST_FIT, BACKTEST_TARGETS, BACKTEST_TASKS, pythia_schedules  # noqa: E402

HERE = Path(__file__).resolve().parent
MINI_SCORES = HERE / "schedule_two_step_miniladder.csv"
MINI_SPEC = HERE.parent / "capcast" / "reference" / "ladder" / "ladder.yaml"
# (fitting sizes, target size): each target's two seeds forecast at their final checkpoint
MINI_SPLITS = ((("xs", "s", "sm1", "sm2"), "sm3"), (("xs", "s", "sm1", "sm2", "sm3"), "m"), (("xs", "s", "sm1", "sm2", "sm3", "m"), "l"))
MINI_FINAL_STEP = {"sm3": 879, "m": 977, "l": 2441}
MINI_TASKS = ("ref_carry", "ref_facts")
LAWS = ("ladder-all", "ladder", "ladder-schedule")
INTERVAL = 0.9


class WithOldLadder:
    """The registry, plus ``ladder-all`` (the every-checkpoint ladder) for the comparison."""

    def __init__(self, registry):
        self.registry = registry
        self.old = LadderLaw(step_one="all", smooth_width=1, name="ladder-all")

    def law(self, name):
        return self.old if name == "ladder-all" else self.registry.law(name)

    def __getattr__(self, attribute):
        return getattr(self.registry, attribute)


def forecast_rows(fit: pd.DataFrame, targets: dict[str, pd.DataFrame], tasks_by_metric: dict[str, list[str]], schedules,
                  registry) -> list[dict]:
    """Each target forecast from ``fit`` plus its own rows only (never another target's run)."""
    rows = []
    for law in LAWS:
        for target, own in targets.items():
            for metric, tasks in tasks_by_metric.items():
                for res in run_forecasts(pd.concat([fit, own]), target, tasks, metric, law, INTERVAL, registry=registry,
                                         schedules=schedules):
                    rows.append({**res.row.to_dict(), "method": law})
    return rows


STEP_ONE = ("ladder-all", "ladder", "ladder-schedule")


def step_one_rows(fit: pd.DataFrame, targets: dict[str, pd.DataFrame], tasks: list[str], metric: str, schedules) -> list[dict]:
    """Step 1 alone: each variant's predicted loss at the target's final checkpoint vs its actual loss
    (in the law's loss units: log ppl, bpb), on the same fitting checkpoints as the forecasts."""
    from capcast.forecasting.forecast import resolve_target, with_target_schedule
    from capcast.laws.ladder import TASK_LOSS_FIRST
    from capcast.laws.ladder_schedule import fit_schedule_step_one
    from capcast.laws.loss_law import LOSS_TRANSFORMS
    from capcast.laws.schedule import attach_areas
    from capcast.laws.two_step import fit_step_one
    from capcast.tables.scores import build_series, read_scores

    out = []
    fit_table = read_scores(fit)
    for name, own in targets.items():
        found = resolve_target(read_scores(pd.concat([fit, own])), name)
        target = with_target_schedule(found.target, found, schedules, fit)
        for task in tasks:
            series = attach_areas(build_series(fit_table, task, metric), schedules)
            steps = {"ladder-all": lambda: fit_step_one(series, TASK_LOSS_FIRST, None, "all", 1),
                     "ladder": lambda: fit_step_one(series, TASK_LOSS_FIRST, None, "final"),
                     "ladder-schedule": lambda: fit_schedule_step_one(series, TASK_LOSS_FIRST, None)}
            for law, make in steps.items():
                one = make()
                actual_rows = own[(own["task"] == task) & (own["metric"] == one.loss_key) & (own["tokens"] == found.target.tokens)]
                actual = float(LOSS_TRANSFORMS[one.loss_key](float(actual_rows["value"].iloc[0])))
                predicted = one.predicted_loss(one.fit.theta, target)
                out.append({"law": law, "target": name, "task": task, "loss": one.loss_key, "predicted": predicted, "actual": actual})
    return out


def step_one_table(rows: list[dict]) -> str:
    """Mean absolute loss error per law, by target size (a run name's first part) and over all."""
    sizes = list(dict.fromkeys(r["target"].split("-s")[0] if "-s" in r["target"] else r["target"] for r in rows))
    size_of = lambda r: r["target"].split("-s")[0] if "-s" in r["target"] else r["target"]  # noqa: E731
    out = ["| step 1 of | " + " | ".join(f"{s}: mean abs error" for s in sizes) + " | all: mean abs error | all: mean signed error | n |",
           "|---|" + "---|" * (len(sizes) + 3)]
    for law in STEP_ONE:
        mine = [r for r in rows if r["law"] == law]
        err = np.array([r["predicted"] - r["actual"] for r in mine])
        cells = [f"{np.mean([abs(r['predicted'] - r['actual']) for r in mine if size_of(r) == s]):.3f}" for s in sizes]
        out.append(f"| {law} | " + " | ".join(cells) + f" | {np.abs(err).mean():.3f} | {err.mean():+.3f} | {len(mine)} |")
    return "\n".join(out)


def step_one_detail(rows: list[dict]) -> str:
    out = ["| target | task | loss | actual | " + " | ".join(STEP_ONE) + " |", "|---|---|---|---|" + "---|" * len(STEP_ONE)]
    keys = list(dict.fromkeys((r["target"], r["task"]) for r in rows))
    for target, task in keys:
        mine = {r["law"]: r for r in rows if (r["target"], r["task"]) == (target, task)}
        first = next(iter(mine.values()))
        out.append(f"| {target} | {task} | {first['loss']} | {first['actual']:.3f} | " + " | ".join(f"{mine[law]['predicted']:.3f}" for law in STEP_ONE) + " |")
    return "\n".join(out)


def summary(rows: list[dict]) -> dict:
    ok = [r for r in rows if r["status"] == "ok" and r["actual"] is not None]
    err = np.array([abs(r["forecast"] - r["actual"]) * 100 for r in ok])
    hit = np.array([r["lower"] <= r["actual"] <= r["upper"] for r in ok])
    width = np.array([(r["upper"] - r["lower"]) * 100 for r in ok])
    return {"n": len(ok), "of": len(rows), "mae": err.mean() if len(ok) else None, "max": err.max() if len(ok) else None,
            "coverage": hit.mean() if len(ok) else None, "width": float(np.median(width)) if len(ok) else None}


def fmt(value, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def table(rows: list[dict]) -> str:
    key = lambda r: (r["model"], r["task"], r["metric"])  # noqa: E731
    common = set.intersection(*({key(r) for r in rows if r["method"] == law and r["status"] == "ok"} for law in LAWS))
    out = ["| law | MAE (pts) | max error | 90% coverage | median width (pts) | answered | common set: MAE / max / coverage / width |",
           "|---|---|---|---|---|---|---|"]
    for law in LAWS:
        mine = [r for r in rows if r["method"] == law]
        s, c = summary(mine), summary([r for r in mine if key(r) in common])
        out.append(f"| {law} | {fmt(s['mae'], '{:.2f}')} | {fmt(s['max'], '{:.1f}')} | {fmt(None if s['coverage'] is None else 100 * s['coverage'], '{:.0f}%')} "
                   f"| {fmt(s['width'], '{:.1f}')} | {s['n']}/{s['of']} | {fmt(c['mae'], '{:.2f}')} / {fmt(c['max'], '{:.1f}')} / "
                   f"{fmt(None if c['coverage'] is None else 100 * c['coverage'], '{:.0f}%')} / {fmt(c['width'], '{:.1f}')} |")
    return "\n".join(out) + f"\n\nCommon set: the {len(common)} forecasts all three laws answered."


def detail(rows: list[dict]) -> str:
    out = ["| law | target | task | forecast | interval | actual | error | status |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["status"] == "ok":
            out.append(f"| {r['method']} | {r['model']} | {r['task']} | {100 * r['forecast']:.1f} | {100 * r['lower']:.1f}-{100 * r['upper']:.1f} "
                       f"| {100 * r['actual']:.1f} | {100 * abs(r['forecast'] - r['actual']):.1f} | ok |")
        else:
            actual = "-" if r["actual"] is None else f"{100 * r['actual']:.1f}"
            out.append(f"| {r['method']} | {r['model']} | {r['task']} | - | - | {actual} | - | {r['status']}: {r['reason'][:100]} |")
    return "\n".join(out)


def mini_ladder(registry) -> tuple[list[dict], list[dict]]:
    frame = pd.read_csv(MINI_SCORES)
    size = frame["model"].str.split("-").str[0]
    schedules = load_family(MINI_SPEC, check_paths=False).schedules
    rows, losses = [], []
    for fit_sizes, target_size in MINI_SPLITS:
        targets = {f"{target_size}-s{seed}-step{MINI_FINAL_STEP[target_size]}": frame[frame["run"] == f"{target_size}-s{seed}"]
                   for seed in (0, 1)}
        rows += forecast_rows(frame[size.isin(fit_sizes)], targets, {"acc": list(MINI_TASKS)}, schedules, registry)
        losses += step_one_rows(frame[size.isin(fit_sizes)], targets, list(MINI_TASKS), "acc", schedules)
    return rows, losses


def pythia(registry) -> list[dict]:
    frame = read_pythia(deduped=False)
    frame = frame[frame["family"] == "pythia"]
    schedules = {run: Schedule(**fields) for run, fields in pythia_schedules(BACKTEST_FIT + BACKTEST_TARGETS).items()}
    by_metric: dict[str, list[str]] = {}
    for task, metric in BACKTEST_TASKS.items():
        by_metric.setdefault(metric, []).append(task)
    fit = frame[frame["model"].isin([f"pythia-{s}" for s in BACKTEST_FIT])]
    targets = {f"pythia-{s}": frame[frame["model"] == f"pythia-{s}"] for s in BACKTEST_TARGETS}
    return forecast_rows(fit, targets, by_metric, schedules, registry), step_one_rows(fit, targets, ["lambada_openai"], "acc", schedules)


def main(out: Path) -> None:
    registry = WithOldLadder(load_registry())
    (mini, mini_loss), (py, py_loss) = mini_ladder(registry), pythia(registry)
    parts = [
        "# Two-step laws with and without the learning-rate schedule", "",
        "Written by `python benchmarks/schedule_two_step.py` (see its docstring for data and split). Errors are absolute, in "
        "accuracy points; coverage: share of numeric forecasts whose 90% interval holds the actual score; width: median 90% "
        "interval width; answered: numeric forecasts / forecasts asked. `ladder-all` is the every-checkpoint step 1 capcast "
        "used before; `ladder` fits step 1 on each run's final 10% of tokens and smooths step 2 (width 3); `ladder-schedule` "
        "fits Tissue et al.'s LR-annealing law (with a size term) on every checkpoint from the runs' schedules.", "",
        "## Mini-ladder: fit xs..sm2 -> sm3, xs..sm3 -> m, xs..m -> l (both seeds of each target; ref_carry, ref_facts; loss bpb_gold)", "",
        "Two seeds of one size share every fitted input, so each split gives each law one forecast per task, scored against two runs.", "",
        table(mini), "", detail([r for r in mini if r["status"] == "ok" or r["task"] == "ref_facts"]), "",
        "Step 1 alone (the loss each law predicts at the target's final checkpoint, bpb_gold; both tasks, whatever their signal):", "",
        step_one_table(mini_loss), "", step_one_detail(mini_loss), "",
        "## Pythia: fit 70m-1.4b, forecast 6.9b and 12b at step 143000 (9 tasks, 18 forecasts)", "",
        "Only lambada_openai has a task loss (its `ppl`) in Pythia's tables, so the two-step laws answer at most its 2 forecasts.", "",
        table(py), "", detail([r for r in py if r["task"] == "lambada_openai"]), "",
        "Step 1 alone (log ppl predicted at the target's step 143000):", "",
        step_one_table(py_loss), "", step_one_detail(py_loss), "",
    ]
    out.write_text("\n".join(parts))
    print(out.read_text())


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "schedule_two_step.md")
