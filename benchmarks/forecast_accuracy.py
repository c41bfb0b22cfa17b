"""Forecast accuracy of every law on real results (Pythia, the mini-ladder, OpenLM); writes a report.

    python benchmarks/forecast_accuracy.py            # writes benchmarks/forecast_accuracy.md
    CAPCAST_SHARED_DATA=/path/to/data python benchmarks/forecast_accuracy.py

Splits (each a backtest: whole runs held out, nothing of a target's run or size fitted):

1. Pythia (zero-shot, development data): fit on 70m-1.4b, every checkpoint; forecast 6.9b and 12b
   at step 143000 on 9 tasks (ARC-C with acc_norm, MMLU = mean of 57 subjects) = 18 forecasts.
2. The mini-ladder (development data; its scores: ``benchmarks/data/miniladder_scores.csv``, made
   by ``benchmarks/miniladder_scores.py``): fit xs..sm3, forecast the final checkpoints of both
   runs of sizes m and l on 7 tasks = 28 forecasts.
3. Extrapolation distance (Pythia): fit up to 410m / 1b / 1.4b / 2.8b, forecast 6.9b and 12b.
4. pythia-deduped (validation): as 1, independent training runs.
5. OpenLM (validation; Gadre et al.): per training set, fit on runs up to 1.4B, forecast the 6.9B
   run on all 46 tasks (138 forecasts); the paper's relative errors beside ours.
6. Pythia, wide (development data): as 1, on the tasks the headline leaves out: MMLU's 57 subjects
   one by one (zero-shot) and the 9 tasks five-shot (132 forecasts). Most sit near chance, as
   most of OpenLM's tasks do, so it is the development data for persistence and the signal test.
7. OPT and BLOOM (validation, added at stop 34 after every constant was frozen: no session had
   forecast them before): the Pythia paper's baselines, each model's final checkpoint, the 9
   tasks. OPT: fit 125m-2.7b (4 sizes), forecast 6.7b, 13b, 30b and 66b (36 forecasts); BLOOM:
   fit 560m-3b (4 sizes), forecast 7b1 (9 forecasts). Stop 35 added the trend check's slope test
   (chosen on simulations, benchmarks/trend_test.py) after OPT's SciQ showed the rank test's
   blindness over 4 sizes: OPT is not untouched for that rule.

Beside each split's auto MAE: its item-noise floor, the mean absolute error a forecast of each
answered target's true rate would still have against the measured score (binomial noise of the
target's own item count, sqrt(2/pi) * sqrt(p(1-p)/n)), so a reader sees how much of an error is
the law's and how much the benchmark's.

Per method: MAE (points), bias (mean signed error, points), mean relative error (|forecast - actual| / actual, as Krajewski et al.
report it), max error, 90% coverage, median interval width, answered share; then the same on the
common set (the forecasts every compared method answered), and ``auto`` against ``logacc-power``
on the forecasts both answered. ``auto-select`` is ``auto``'s earlier rule (one law chosen on the
folds, beyond noise), kept here so the combination's gain is measured on the same forecasts.

Where each constant was chosen (see ``CONSTANTS`` below, printed in the report): on Pythia and the
mini-ladder (development), or on simulated families (benchmarks/calibration.py), or taken from a
paper. pythia-deduped and OpenLM are validation: no constant was chosen on them. Splits run in 2
processes (the machine's 2 cores).
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readers import read_openlm, read_pythia, read_pythia_baselines  # noqa: E402

from capcast.forecasting.backtest import (backtest_scores, common_forecasts, forecast_key,  # noqa: E402
                                         paired_difference, score_rows)
from capcast.plugins.builtin.laws import LazyAutoLaw  # noqa: E402
from capcast.plugins.registry import load_registry  # noqa: E402
from capcast.tables.readers.openlm import GADRE_17  # noqa: E402
from capcast.tables.readers.pythia import BACKTEST_FIT as PYTHIA_FIT  # noqa: E402
from capcast.tables.readers.pythia import BACKTEST_TARGETS as PYTHIA_TARGETS  # noqa: E402
from capcast.tables.readers.pythia import BACKTEST_TASKS as PYTHIA_TASKS  # noqa: E402
from capcast.tables.readers.pythia import pythia_schedules  # noqa: E402
from capcast.spec import Schedule, load_family  # noqa: E402

HERE = Path(__file__).resolve().parent
MINILADDER_SCORES = HERE / "data" / "miniladder_scores.csv"
MINILADDER_SPEC = HERE.parent / "capcast" / "reference" / "ladder" / "ladder.yaml"  # its runs' schedules
# The mini-ladder's main metric per task (pass rate, greedy, for the generative tasks).
MINILADDER_TASKS = {"ref_facts": "acc", "ref_carry": "acc", "ref_copy": "pass_rate", "ref_reverse": "pass_rate",
                    "ref_sort": "pass_rate", "ref_add2": "pass_rate", "ref_add3_greedy": "pass_rate"}
MINILADDER_HELD_OUT = 2  # sizes m and l: fit xs, s, sm1, sm2, sm3

CANDIDATE_METHODS = ("auto", "auto-select", "sigmoid", "logacc-power", "saturating-power", "ladder", "ladder-schedule",
                     "loss-error", "logit-linear", "linear")
SIZES = ["70m", "160m", "410m", "1b", "1.4b", "2.8b"]
PARAMS = {"410m": 302_311_424, "1b": 805_736_448, "1.4b": 1_208_602_624, "2.8b": 2_517_652_480}
CUTOFFS = ("410m", "1b", "1.4b", "2.8b")
OPENLM_SETS = ("c4_original", "rpj", "rw_original")

CONSTANTS = [
    ("auto: combine every usable candidate, weights 1 / mean fold error (floor 0.5 pts; capcast.laws.auto.ERROR_FLOOR)",
     "Pythia (development): the `auto` (weighted) and `auto-select` rows below; against inverse squared error, equal "
     "weights and stacking on Pythia, the mini-ladder and simulated families in benchmarks/auto_weighting.txt"),
    ("auto: forward-chaining folds, every size from the third up; a refused fold (or one whose interval is too wide to mean anything) scores the fold's worst error",
     "simulated families (benchmarks/calibration.py)"),
    ("auto: each fold forecasts the next size only (fold_horizon='next'), each task's own folds (not pooled over the family's tasks)",
     "Pythia and the mini-ladder (development): benchmarks/fold_horizon.txt, benchmarks/family_pooling.txt (stop 36)"),
    ("interval construction (size scatter, size sandwich, t on sizes - params dof) and the folds' variance check",
     "simulated families (benchmarks/calibration.py)"),
    ("signal test: 2.5 binomial standard errors above chance; chance floor lowered only > 3 SE below chance",
     "Pythia (development) and simulated families"),
    ("signal test's trend check: Spearman p <= 0.2, or with >= 4 sizes a noise-weighted slope at one-sided p <= 0.1 (capcast.laws.signal.SLOPE_P)",
     "simulated families (benchmarks/trend_test.py); looked for after OPT's SciQ (validation)"),
    ("width rule: a 90% interval wider than 50% of the metric's range is 'not predictable yet'",
     "Pythia (development): lambada intervals of 40-47 points covered"),
    ("logacc-power: Q' > 0.05 rule, Huber delta 1e-3, grid starts", "Krajewski et al. (the paper)"),
    ("logacc-power / saturating-power: every checkpoint after the first 10% of a run; g fixed at chance",
     "Pythia (development)"),
]


class _Registry:
    """The capcast registry plus ``auto-select`` (``auto`` with its earlier one-law rule)."""

    def __init__(self) -> None:
        self.base = load_registry()
        auto = self.base.law("auto")
        self.extra = {"auto-select": LazyAutoLaw(auto.target, "auto-select", "auto's earlier rule: one law selected on the folds",
                                                 kwargs={**auto.kwargs, "combine": "select"})}

    def law(self, name: str):
        return self.extra[name] if name in self.extra else self.base.law(name)

    def __getattr__(self, attribute: str):
        return getattr(self.base, attribute)


REGISTRY = _Registry()
METHODS = tuple(m for m in CANDIDATE_METHODS if m in REGISTRY.extra or m in REGISTRY.base.laws)


def pythia_rows(frame: pd.DataFrame, family: str, fit_sizes: list[str], targets: list[str], laws=METHODS) -> list[dict]:
    suffix = family.removeprefix("pythia")
    keep = [f"pythia-{s}{suffix}" for s in list(fit_sizes) + list(targets)]
    sub = frame[(frame["family"] == family) & frame["model"].isin(keep)]
    schedules = {run: Schedule(**fields) for run, fields in pythia_schedules(family=family).items()}
    rows: list[dict] = []
    for metric in sorted(set(PYTHIA_TASKS.values())):
        tasks = [t for t, m in PYTHIA_TASKS.items() if m == metric]
        rows += backtest_scores(sub, holdout_largest=len(targets), methods=laws, tasks=tasks, metric=metric,
                                registry=REGISTRY, schedules=schedules).rows
    return rows


def miniladder_rows(laws=METHODS) -> list[dict]:
    frame = pd.read_csv(MINILADDER_SCORES)
    schedules = load_family(MINILADDER_SPEC, check_paths=False).schedules
    rows: list[dict] = []
    for metric in sorted(set(MINILADDER_TASKS.values())):
        tasks = [t for t, m in MINILADDER_TASKS.items() if m == metric]
        rows += backtest_scores(frame, holdout_largest=MINILADDER_HELD_OUT, methods=laws, tasks=tasks, metric=metric,
                                registry=REGISTRY, schedules=schedules).rows
    return rows


def naive_mae(frame: pd.DataFrame, law_name: str) -> float:
    """MAE (points) of a baseline law fitted straight on the fitting runs' final checkpoints, over
    every (target, task): nothing refused, as the data README computes its 5.3 and 4.6."""
    from capcast.laws.base import Target
    from capcast.tables.scores import build_series, read_scores

    table = read_scores(frame[frame["family"] == "pythia"])
    fit_rows = table[table["model"].isin([f"pythia-{s}" for s in PYTHIA_FIT])]
    errors = []
    for task, metric in PYTHIA_TASKS.items():
        fit = REGISTRY.law(law_name).fit(build_series(fit_rows, task, metric))
        for size in PYTHIA_TARGETS:
            rows = table[(table["model"] == f"pythia-{size}") & (table["task"] == task) & (table["metric"] == metric)]
            last = rows[rows["tokens"] == rows["tokens"].max()].iloc[0]
            target = Target(name=last["model"], params=float(last["params"]), tokens=float(last["tokens"]), flops=float(last["flops"]))
            errors.append(abs(fit.mean(target) - float(last["value"])) * 100)
    return float(np.mean(errors))


def _fmt(value, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def cells(rows: list[dict]) -> list[str]:
    s = score_rows(rows)
    ok = [r for r in rows if r["status"] == "ok" and r["actual"]]
    rel = np.mean([abs(r["forecast"] - r["actual"]) / r["actual"] for r in ok]) if ok else None
    return [_fmt(s.mae, "{:.2f}"), _fmt(s.bias, "{:+.2f}"), _fmt(None if rel is None else 100 * rel, "{:.1f}%"), _fmt(s.max_error, "{:.1f}"),
            _fmt(None if s.coverage is None else 100 * s.coverage, "{:.0f}%"), _fmt(s.median_width, "{:.1f}"),
            f"{s.n}/{len(rows)}"]


HEAD = ("| method | MAE (pts) | bias (pts) | mean rel. error | max error | 90% coverage | median width (pts) | answered |\n"
        "|---|---|---|---|---|---|---|---|")


# The laws that need nothing but the score (the two-step laws need a loss most tables lack, so the
# common set of every method is often empty): their common set is reported too.
SCORE_ONLY = ("auto", "auto-select", "sigmoid", "logacc-power", "saturating-power", "logit-linear", "linear")


def tables(rows: list[dict], methods=METHODS) -> str:
    """Per method on its own answers; on the common sets; auto against logacc-power; persistence."""
    out = ["All forecasts each method was asked for:", "", HEAD]
    out += [f"| {m} | " + " | ".join(cells([r for r in rows if r["method"] == m])) + " |" for m in methods]
    for title, laws in (("every method above", methods), ("the laws on the score alone (no loss needed)",
                                                         [m for m in SCORE_ONLY if m in methods])):
        common = common_forecasts(rows, laws)
        out += ["", f"Common set: the {len(common)} forecasts {title} answered:", "", HEAD]
        out += [f"| {m} | " + " | ".join(cells([r for r in rows if r["method"] == m and forecast_key(r) in common])) + " |"
                for m in laws]
    out += ["", head_to_head(rows, "auto", "logacc-power"), "", persistence_line(rows)]
    return "\n".join(out)


def persistence_line(rows: list[dict]) -> str:
    """auto's persistence forecasts (no trend in the fitting family), scored apart from the rest."""
    flat = [r for r in rows if r["method"] == "auto" and r["law"] == "auto:flat"]
    s = score_rows(flat)
    if not flat:
        return "auto forecast persistence (no trend) nowhere here."
    return (f"auto's persistence forecasts (auto:flat, where the fitting family shows no trend): {s.n} answered of {len(flat)}"
            + ("" if s.mae is None else f", MAE {s.mae:.2f}, max error {s.max_error:.1f}, coverage {100 * s.coverage:.0f}%, "
               f"median width {s.median_width:.1f}") + "; the other laws refuse these.")


def on_common_set(rows: list[dict], a: str, b: str):
    """(the forecasts both ``a`` and ``b`` answered, ``a``'s score on them, ``b``'s)."""
    both = common_forecasts(rows, (a, b))
    return (both, *(score_rows(r for r in rows if r["method"] == m and forecast_key(r) in both) for m in (a, b)))


def head_to_head(rows: list[dict], a: str, b: str) -> str:
    both, sa, sb = on_common_set(rows, a, b)
    if not both:
        return f"{a} vs {b}: no forecast both answered."
    verdict = "beats" if sa.mae < sb.mae else "does not beat"
    return (f"{a} vs {b} on the {len(both)} forecasts both answered: MAE {sa.mae:.2f} vs {sb.mae:.2f}, coverage "
            f"{100 * sa.coverage:.0f}% vs {100 * sb.coverage:.0f}%: {a} {verdict} {b}; {paired_text(rows, a, b, both)}.")


def paired_text(rows: list[dict], a: str, b: str, keys: set[tuple]) -> str:
    """:func:`capcast.forecasting.backtest.paired_difference` of ``a`` against ``b`` on ``keys``, described."""
    diff = paired_difference(rows, a, b, keys)
    return "no paired difference" if diff is None else f"paired difference {diff.describe()}"


def refusal_tally(rows: list[dict], law: str = "auto") -> str:
    """Why ``law`` refused: the count of each reason's kind (its text before the first colon)."""
    kinds = score_rows([r for r in rows if r["method"] == law]).refusals
    return f"Why {law} refused: " + "; ".join(f"{kind} ({n})" for kind, n in kinds.items()) if kinds else f"{law} refused none"


def detail_table(rows: list[dict], law: str = "auto") -> str:
    out = ["| model | task | metric | law | forecast | interval | actual | error | status |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["method"] != law:
            continue
        if r["status"] == "ok":
            out.append(f"| {r['model']} | {r['task']} | {r['metric']} | {r['law']} | {100 * r['forecast']:.1f} | "
                       f"{100 * r['lower']:.1f}-{100 * r['upper']:.1f} | {100 * r['actual']:.1f} | {100 * abs(r['forecast'] - r['actual']):.1f} | ok |")
        else:
            out.append(f"| {r['model']} | {r['task']} | {r['metric']} | {r['law']} | - | - | {100 * r['actual']:.1f} | - | {r['status']}: {r['reason'][:90]} |")
    return "\n".join(out)


def gadre_table(rows: list[dict]) -> str:
    """Relative error on top-1 error over Gadre et al.'s 17 tasks, as the paper reports it."""
    out = ["| method | training set | 17-task avg error: predicted | actual | relative error | tasks forecast | "
           "OpenBookQA rel. err | HellaSwag rel. err | median single-task rel. err |", "|---|---|---|---|---|---|---|---|---|"]
    for law in ("auto", "logacc-power", "ladder", "sigmoid"):
        for family in OPENLM_SETS:
            mine = [r for r in rows if r["method"] == law and r["family"] == family]
            by_task = {r["task"]: r for r in mine}
            subset = [by_task[t] for t in GADRE_17 if t in by_task and by_task[t]["status"] == "ok"]
            if not subset:
                out.append(f"| {law} | {family} | - | - | - | 0/17 | - | - | - |")
                continue
            pred = np.mean([1 - r["forecast"] for r in subset])
            true = np.mean([1 - r["actual"] for r in subset])

            def rel(task):
                r = by_task.get(task)
                return "-" if not r or r["status"] != "ok" else f"{100 * abs(r['forecast'] - r['actual']) / (1 - r['actual']):.1f}%"

            singles = [abs(r["forecast"] - r["actual"]) / (1 - r["actual"]) for r in mine if r["status"] == "ok"]
            out.append(f"| {law} | {family} | {100 * pred:.2f} | {100 * true:.2f} | {100 * abs(pred - true) / true:.2f}% | "
                       f"{len(subset)}/17 | {rel('openbook_qa')} | {rel('hellaswag')} | {100 * np.median(singles):.1f}% |")
    return "\n".join(out)


def pythia_wide_rows(laws=METHODS) -> list[dict]:
    """Pythia (standard runs) fitted on 70m-1.4b, forecasting 6.9b and 12b on MMLU's 57 subjects
    (zero-shot, acc) and on the 9 headline tasks five-shot."""
    frame = read_pythia(deduped=False, five_shot=True, subjects=True)
    zero_shot = frame[(frame["family"] == "pythia") & frame["task"].str.startswith("mmlu_")]
    zero_shot = zero_shot[zero_shot["model"].isin([f"pythia-{s}" for s in PYTHIA_FIT + PYTHIA_TARGETS])]
    rows = backtest_scores(zero_shot, holdout_largest=len(PYTHIA_TARGETS), methods=laws, metric="acc", registry=REGISTRY).rows
    return rows + pythia_rows(frame, "pythia-5shot", PYTHIA_FIT, PYTHIA_TARGETS, laws)


# OPT and BLOOM: the fitting sizes (every larger model is forecast)
BASELINE_SPLITS = {"opt": ("125m", "350m", "1.3b", "2.7b"), "bloom": ("560m", "1b1", "1b7", "3b")}


def baseline_rows(family: str, laws=METHODS) -> list[dict]:
    """OPT or BLOOM: fit BASELINE_SPLITS' sizes, forecast every larger model on the 9 tasks."""
    frame = read_pythia_baselines()
    frame = frame[frame["family"] == family]
    held = frame["params"].gt(frame[frame["model"].isin([f"{family}-{s}" for s in BASELINE_SPLITS[family]])]["params"].max())
    rows: list[dict] = []
    for metric in sorted(set(PYTHIA_TASKS.values())):
        tasks = [t for t, m in PYTHIA_TASKS.items() if m == metric]
        rows += backtest_scores(frame, holdout_largest=int(frame.loc[held, "model"].nunique()), methods=laws, tasks=tasks,
                                metric=metric, registry=REGISTRY).rows
    return rows


def target_items(frame: pd.DataFrame) -> dict[tuple, float]:
    """(model, task, metric) -> the item count of the model's last evaluation (NaN where unknown)."""
    last = frame[frame.groupby(["model", "task", "metric"])["tokens"].transform("max") == frame["tokens"]]
    return {(m, t, k): float(n) for m, t, k, n in last[["model", "task", "metric", "n_items"]].itertuples(index=False)}


def noise_floor_line(rows: list[dict], items: dict[tuple, float], law: str = "auto") -> str:
    """``law``'s MAE beside its item-noise floor (the docstring's), on the answered forecasts whose
    target's item count is known."""
    ok = [r for r in rows if r["method"] == law and r["status"] == "ok" and r["actual"] is not None
          and np.isfinite(items.get((r["model"], r["task"], r["metric"]), np.nan))]
    if not ok:
        return f"{law}'s item-noise floor: no answered forecast with a known item count."
    floor = [np.sqrt(2 / np.pi) * np.sqrt(r["actual"] * (1 - r["actual"]) / items[(r["model"], r["task"], r["metric"])]) for r in ok]
    mae = np.mean([abs(r["forecast"] - r["actual"]) for r in ok])
    return (f"{law}'s item-noise floor on its {len(ok)} answered forecasts with a known item count: {100 * np.mean(floor):.2f} pts "
            f"(a forecast of each target's true rate would still miss its measured score by this much on average); "
            f"{law}'s MAE on them {100 * mae:.2f}.")


def final_checkpoints(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's final checkpoint only: the shape of most public results (OpenLM's among them)."""
    return frame[frame.groupby(["family", "model"])["step"].transform("max") == frame["step"]]


def pythia_split_rows(family: str, cutoff: str, laws=METHODS, final_only: bool = False) -> list[dict]:
    """A Pythia family fitted on 70m up to ``cutoff`` (each run's final checkpoint only with
    ``final_only``), forecasting PYTHIA_TARGETS."""
    frame = read_pythia(deduped=True)
    return pythia_rows(final_checkpoints(frame) if final_only else frame, family, SIZES[: SIZES.index(cutoff) + 1], PYTHIA_TARGETS, laws)


def openlm_rows(training_set: str, laws=METHODS) -> list[dict]:
    """One OpenLM training set: fit the runs up to 1.4B, forecast the 6.9B run."""
    frame = read_openlm()
    return backtest_scores(frame[frame["family"] == training_set], holdout_largest=1, methods=laws, metric="acc", registry=REGISTRY).rows


def _job(job: tuple) -> tuple[tuple, list[dict], float]:
    started = time.perf_counter()
    kind, arg = job
    if kind == "openlm":
        rows = openlm_rows(arg)
    elif kind == "miniladder":
        rows = miniladder_rows()
    elif kind == "baseline":
        rows = baseline_rows(arg)
    elif kind == "pythia-wide":
        rows = pythia_wide_rows()
    else:
        rows = pythia_split_rows(*arg, final_only=kind == "pythia-final")
    return job, rows, time.perf_counter() - started


def targets(results: dict) -> list[str]:
    """The issue's targets, each with the measured figure and whether it is met."""
    def auto_score(keys):
        return score_rows(r for k in keys for r in results[k][0] if r["method"] == "auto")

    py, dd = auto_score([("pythia", ("pythia", "1.4b"))]), auto_score([("pythia", ("pythia-deduped", "1.4b"))])
    ol = auto_score([("openlm", s) for s in OPENLM_SETS])

    def line(text, ok):
        return f"- {text}: {'met' if ok else 'NOT met'}"

    lines = [line(f"Pythia: auto MAE {py.mae:.2f} (<= 1.5), {py.n}/18 answered (>= 14), coverage {100 * py.coverage:.0f}% (>= 85%)",
                  py.mae <= 1.5 and py.n >= 14 and py.coverage >= 0.85),
             line(f"pythia-deduped: auto MAE {dd.mae:.2f} (<= 2.0)", dd.mae <= 2.0),
             line(f"OpenLM: auto answers {100 * ol.answered:.0f}% (>= 60%) with MAE {ol.mae:.2f} (<= 3.0)",
                  ol.answered >= 0.6 and ol.mae <= 3.0)]
    for title, keys in (("Pythia", [("pythia", ("pythia", "1.4b"))]), ("mini-ladder", [("miniladder", None)]),
                        ("pythia-deduped", [("pythia", ("pythia-deduped", "1.4b"))]), ("OpenLM", [("openlm", s) for s in OPENLM_SETS])):
        rows = [r for k in keys for r in results[k][0]]
        common, a, b = on_common_set(rows, "auto", "logacc-power")
        if a.mae is None:
            lines.append(f"- {title}: no forecast both auto and logacc-power answered: not compared")
        else:
            lines.append(line(f"{title}: auto {a.mae:.2f} vs logacc-power {b.mae:.2f} MAE on the {len(common)} forecasts both answered",
                              a.mae < b.mae) + f" ({paired_text(rows, 'auto', 'logacc-power', common)})")
    return lines


def main(out: Path) -> None:
    started = time.perf_counter()
    jobs = [("pythia", ("pythia", c)) for c in ("1.4b", "410m", "1b", "2.8b")] + [("pythia", ("pythia-deduped", "1.4b"))]
    jobs += [("openlm", s) for s in OPENLM_SETS] + [("miniladder", None), ("pythia-final", ("pythia", "1.4b")), ("pythia-wide", None)]
    jobs += [("baseline", family) for family in BASELINE_SPLITS]
    assert PYTHIA_FIT == SIZES[:5]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = {job: (rows, secs) for job, rows, secs in pool.imap_unordered(_job, jobs)}
    items = {**target_items(read_pythia(deduped=True, five_shot=True, subjects=True)), **target_items(read_openlm()),
             **target_items(pd.read_csv(MINILADDER_SCORES)), **target_items(read_pythia_baselines())}
    auto_candidates = [name for name, law in REGISTRY.base.laws.items() if getattr(law, "auto_candidate", False)]
    parts = ["# Forecast accuracy on real results", "",
             "Written by `python benchmarks/forecast_accuracy.py` (protocol: the script's docstring; reads `../shared/data` "
             "in place, `CAPCAST_SHARED_DATA` overrides). MAE and max error in accuracy points; bias is the mean signed error "
             "(forecast - actual, points: above 0 the method forecasts too high); mean relative error is "
             "|forecast - actual| / actual; coverage is the share of numeric forecasts whose 90% interval holds the actual "
             "score; median width is the median 90% interval width in points; answered is numeric forecasts / forecasts "
             "asked (the rest: \"not predictable yet\", with the reason). `auto` combines " + ", ".join(auto_candidates) +
             "; `auto-select` is its earlier one-law rule.", "",
             "## Targets (the Accuracy on real families issue)", "", *targets(results), "",
             "## Constants and the data each was chosen on", "", "| constant | chosen on |", "|---|---|",
             *[f"| {c} | {where} |" for c, where in CONSTANTS], "",
             "pythia-deduped and OpenLM are validation: no constant was chosen on them. They were not unseen, though: "
             "an exploratory run printed pythia-deduped figures of several combination rules, and this report was run on "
             "earlier variants of `auto` (the combination without the member-width rule, persistence without its two "
             "restrictions, intervals without the item resolution), which read pythia-deduped 2.60 points MAE and OpenLM "
             "2.90 at 117/138 answered. The later changes were made for failures on the development data (the "
             "mini-ladder's emergent tasks and the demo's over-wide mixtures; docs/forecasting.md says which) and are "
             "kept although they lower both validation figures.", ""]
    headline = results[("pythia", ("pythia", "1.4b"))][0]
    parts += ["## Pythia (development): fit 70m-1.4b (all checkpoints), forecast 6.9b and 12b at step 143000, 9 tasks", "",
              tables(headline), "", noise_floor_line(headline, items), "", refusal_tally(headline), "", "Per forecast (auto):", "", detail_table(headline), "",
              "Naive baselines on all 18 forecasts (no signal check, no width rule; the data README's protocol): " +
              ", ".join(f"{law} {naive_mae(read_pythia(deduped=False), law):.2f}" for law in ("linear", "logit-linear")), ""]
    mini = results[("miniladder", None)][0]
    parts += ["## The mini-ladder (development): fit xs..sm3, forecast both runs of m and l (final checkpoints), 7 tasks", "",
              tables(mini), "", noise_floor_line(mini, items), "", refusal_tally(mini), "", "Per forecast (auto):", "", detail_table(mini), ""]
    parts += ["## Error vs extrapolation distance (Pythia, forecast 6.9b and 12b; MAE / coverage / answered)", "",
              "| fit up to | decades of params to 12b | " + " | ".join(METHODS) + " |", "|---|---|" + "---|" * len(METHODS)]
    for cutoff in CUTOFFS:
        rows = results[("pythia", ("pythia", cutoff))][0]
        row_cells = []
        for m in METHODS:
            mine = [r for r in rows if r["method"] == m]
            s = score_rows(mine)
            row_cells.append("-" if s.mae is None else f"{s.mae:.2f} / {100 * s.coverage:.0f}% / {s.n}/{len(mine)}")
        parts.append(f"| {cutoff} | {np.log10(11_327_027_200 / PARAMS[cutoff]):.2f} | " + " | ".join(row_cells) + " |")
    final = results[("pythia-final", ("pythia", "1.4b"))][0]
    parts += ["", "## Pythia, final checkpoints only (development): as above, one checkpoint per run (as most public "
              "results, OpenLM's among them, come)", "", tables(final), "", noise_floor_line(final, items), "", refusal_tally(final), ""]
    wide = results[("pythia-wide", None)][0]
    parts += ["## Pythia, wide (development): as the headline split, on MMLU's 57 subjects one by one (zero-shot) and the "
              "9 tasks five-shot, 132 forecasts, most near chance (as most of OpenLM's tasks are)", "", tables(wide), "",
              noise_floor_line(wide, items), "", refusal_tally(wide), ""]
    deduped = results[("pythia", ("pythia-deduped", "1.4b"))][0]
    parts += ["## pythia-deduped (validation): same protocol, independent training runs", "", tables(deduped), "",
              noise_floor_line(deduped, items), "", refusal_tally(deduped), ""]
    openlm = [r for s in OPENLM_SETS for r in results[("openlm", s)][0]]
    parts += ["## OpenLM (validation; Gadre et al. 2024): per training set fit runs up to 1.4B, forecast the 6.9B run, "
              "46 tasks x 3 sets", "", tables(openlm), "", noise_floor_line(openlm, items), "", refusal_tally(openlm), "",
              "Relative error on top-1 error, as Gadre et al. report it (their numbers: 17-task average C4 0.14%, RedPajama "
              "0.05%, RefinedWeb 2.94%; single tasks 1.92% (OpenBookQA, RefinedWeb) to 81.96% (HellaSwag, RefinedWeb)):", "",
              gadre_table(openlm), ""]
    for family, title in (("opt", "OPT: fit 125m-2.7b, forecast 6.7b, 13b, 30b and 66b"), ("bloom", "BLOOM: fit 560m-3b, forecast 7b1")):
        rows = results[("baseline", family)][0]
        parts += [f"## {title} (validation; the Pythia paper's baselines, final checkpoints, 9 tasks; first run at stop 34, "
                  "after every constant was frozen; the trend check's slope test added at stop 35 after OPT's SciQ)", "", tables(rows), "", noise_floor_line(rows, items), "",
                  refusal_tally(rows), "", "Per forecast (auto):", "", detail_table(rows), ""]
    parts += [f"Total time: {time.perf_counter() - started:.0f} s wall on this machine (2 processes; per split: "
              + ", ".join(f"{k[0]}{'' if k[1] is None else ' ' + (k[1] if isinstance(k[1], str) else '-'.join(k[1]))} {v[1]:.0f} s"
                          for k, v in results.items()) + ")."]
    out.write_text("\n".join(parts) + "\n")
    print("\n".join(parts))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("forecast_accuracy.md"))
