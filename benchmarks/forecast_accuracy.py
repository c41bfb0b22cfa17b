"""Forecast accuracy of every law on real published results (Pythia, OpenLM); writes a report.

    python benchmarks/forecast_accuracy.py            # writes benchmarks/forecast_accuracy.md
    CAPCAST_SHARED_DATA=/path/to/data python benchmarks/forecast_accuracy.py

1. Pythia (zero-shot): fit on 70m-1.4b, every checkpoint; forecast 6.9b and 12b at step 143000 on
   9 tasks (ARC-C with acc_norm, MMLU = mean of 57 subjects) = 18 forecasts. Same for the
   deduplicated suite.
2. Extrapolation distance: fit up to 410m / 1b / 1.4b / 2.8b, forecast 6.9b and 12b.
3. OpenLM (Gadre et al.): per training set, fit on runs up to 1.4B, forecast the 6.9B run on all
   46 tasks; compare with the paper's relative errors (methods.md section 5).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readers import read_openlm, read_pythia  # noqa: E402

from capcast.forecasting.backtest import backtest_scores, score_rows  # noqa: E402
from capcast.plugins.registry import load_registry  # noqa: E402

LAWS = ("auto", "sigmoid", "ladder", "loss-error", "logit-linear", "linear")
from capcast.tables.readers.openlm import GADRE_17  # noqa: E402,F401
from capcast.tables.readers.pythia import BACKTEST_FIT as PYTHIA_FIT  # noqa: E402
from capcast.tables.readers.pythia import BACKTEST_TARGETS as PYTHIA_TARGETS  # noqa: E402
from capcast.tables.readers.pythia import BACKTEST_TASKS as PYTHIA_TASKS  # noqa: E402
REGISTRY = load_registry()


def pythia_rows(frame: pd.DataFrame, family: str, fit_sizes: list[str], targets: list[str], laws=LAWS) -> list[dict]:
    suffix = family.removeprefix("pythia")
    keep = [f"pythia-{s}{suffix}" for s in fit_sizes + targets]
    sub = frame[(frame["family"] == family) & frame["model"].isin(keep)]
    rows: list[dict] = []
    for metric in sorted(set(PYTHIA_TASKS.values())):
        tasks = [t for t, m in PYTHIA_TASKS.items() if m == metric]
        rows += backtest_scores(sub, holdout_largest=len(targets), methods=laws, tasks=tasks, metric=metric,
                                registry=REGISTRY).rows
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


def method_table(rows: list[dict], laws=LAWS) -> str:
    out = ["| law | MAE (pts) | max error | 90% coverage | median width (pts) | numeric forecasts | answered | tasks with a number | not predictable |",
           "|---|---|---|---|---|---|---|---|---|"]
    for law in laws:
        mine = [r for r in rows if r["method"] == law]
        s = score_rows(mine)
        tasks = len({r["task"] for r in mine if r["status"] == "ok"})
        all_tasks = len({r["task"] for r in mine})
        fmt = (lambda v, f: "-" if v is None else f.format(v))
        out.append(f"| {law} | {fmt(s.mae, '{:.2f}')} | {fmt(s.max_error, '{:.1f}')} | {fmt(None if s.coverage is None else 100 * s.coverage, '{:.0f}%')} "
                   f"| {fmt(s.median_width, '{:.1f}')} | {s.n} | {fmt(None if s.answered is None else 100 * s.answered, '{:.0f}%')} "
                   f"| {tasks}/{all_tasks} | {s.unpredictable} |")
    return "\n".join(out)


def forecast_key(r: dict) -> tuple:
    """Which forecast a backtest row is, whatever the method: (family, model, task, metric)."""
    return (r["family"], r["model"], r["task"], r["metric"])


def common_set(rows: list[dict], laws) -> set[tuple]:
    """The forecasts (:func:`forecast_key`) every one of ``laws`` answered with a number."""
    answered = [{forecast_key(r) for r in rows if r["method"] == law and r["status"] == "ok"} for law in laws]
    return set.intersection(*answered) if answered else set()


def common_set_table(rows: list[dict], laws=LAWS) -> str:
    """MAE and coverage per law on the forecasts every law answered (a law that abstains on hard
    cases looks better than it is on its own answers)."""
    common = common_set(rows, laws)
    cells = []
    for law in laws:
        s = score_rows(r for r in rows if r["method"] == law and forecast_key(r) in common)
        cells.append("-" if s.mae is None else f"{s.mae:.2f} / {100 * s.coverage:.0f}%")
    return (f"Common set ({len(common)} forecasts every law answered), MAE / coverage: "
            + "; ".join(f"{law} {c}" for law, c in zip(laws, cells)))


def refusal_tally(rows: list[dict], law: str = "auto") -> str:
    """Why ``law`` refused: the count of each reason's kind (its text before the first colon)."""
    import collections
    kinds = collections.Counter((r["reason"] or r["status"]).split(":")[0].split(" (")[0] for r in rows
                                if r["method"] == law and r["status"] != "ok")
    return f"Why {law} refused: " + "; ".join(f"{kind} ({n})" for kind, n in kinds.most_common()) if kinds else f"{law} refused none"


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


def openlm_section(frame: pd.DataFrame) -> tuple[str, list[dict]]:
    rows = []
    lines = []
    for family in sorted(frame["family"].unique()):
        sub = frame[frame["family"] == family]
        rows += backtest_scores(sub, holdout_largest=1, methods=LAWS, metric="acc", registry=REGISTRY).rows
    lines.append("All 46 tasks x 3 training sets (6.9B held out, fit on 0.011B-1.4B runs). Targets (the Honest forecasts "
                 "issue): auto gives a number for >= 69 of 138 with coverage >= 85% and MAE <= 3.5, and says why for each "
                 "refusal.\n")
    lines.append(method_table(rows))
    lines.append("\n" + common_set_table(rows) + "\n")
    lines.append(refusal_tally(rows) + "\n")
    # Gadre et al. compare top-1 *error* (1 - acc) relatively: |pred - true| / true.
    lines.append("\nRelative error on top-1 error, as Gadre et al. report it (their numbers: 17-task average "
                 "C4 0.14%, RedPajama 0.05%, RefinedWeb 2.94%; single tasks 1.92% (OpenBookQA, RefinedWeb) "
                 "to 81.96% (HellaSwag, RefinedWeb)):\n")
    lines.append("| law | training set | 17-task avg error: predicted | actual | relative error | tasks forecast | "
                 "OpenBookQA rel. err | HellaSwag rel. err | median single-task rel. err |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for law in ("auto", "loss-error", "ladder", "sigmoid"):
        for family in sorted(frame["family"].unique()):
            mine = [r for r in rows if r["method"] == law and r["family"] == family]
            by_task = {r["task"]: r for r in mine}
            subset = [by_task[t] for t in GADRE_17 if t in by_task and by_task[t]["status"] == "ok"]
            pred = np.mean([1 - r["forecast"] for r in subset]) if subset else np.nan
            true = np.mean([1 - r["actual"] for r in subset]) if subset else np.nan

            def rel(task):
                r = by_task.get(task)
                if not r or r["status"] != "ok":
                    return "-"
                return f"{100 * abs(r['forecast'] - r['actual']) / (1 - r['actual']):.1f}%"

            singles = [abs(r["forecast"] - r["actual"]) / (1 - r["actual"]) for r in mine if r["status"] == "ok"]
            lines.append(f"| {law} | {family} | {100 * pred:.2f} | {100 * true:.2f} | {100 * abs(pred - true) / true:.2f}% | "
                         f"{len(subset)}/17 | {rel('openbook_qa')} | {rel('hellaswag')} | "
                         f"{100 * np.median(singles):.1f}% |")
    return "\n".join(lines), rows


def main(out: Path) -> None:
    started = time.perf_counter()
    pythia = read_pythia(deduped=True)
    parts = ["# Forecast accuracy on real results", "",
             "Written by `python benchmarks/forecast_accuracy.py` (reads `../shared/data` in place; "
             "`CAPCAST_SHARED_DATA` overrides). Errors are absolute, in accuracy points; coverage is the share of "
             "numeric forecasts whose 90% interval holds the actual score; median width is the median 90% interval width "
             "in points; answered is the share of forecasts given a number. Constants and where they were chosen: the "
             "interval construction and `auto`'s fold rule on simulated families (benchmarks/calibration.py); the signal "
             "test (2.5 standard errors) and the width rule (50% of the metric's range, raised from 30% because Pythia's "
             "lambada intervals of 40-47 points covered) on Pythia, the development data. The deduplicated Pythia suite "
             "and OpenLM were not tuned on: they are the validation.", ""]

    headline = pythia_rows(pythia, "pythia", PYTHIA_FIT, PYTHIA_TARGETS)
    parts += ["## Pythia: fit 70m-1.4b (all checkpoints), forecast 6.9b and 12b at step 143000 (18 forecasts)", "",
              "Targets (the Honest forecasts issue): auto <= 2.0 points MAE, numbers for >= 14 of 18, coverage >= 85%. "
              "Baselines from the data README: line in log-params 5.3, logit-linear above chance 4.6 (both on all 18 forecasts).", "",
              method_table(headline), "", common_set_table(headline), "", refusal_tally(headline), "", "Per forecast (auto):", "", detail_table(headline), ""]
    # The data README's baselines count all 18 forecasts: the naive fits without capcast's signal
    # check or width rule, on the final checkpoints of 70m-1.4b, printed here so the figure is backed.
    parts += ["Naive baselines on all 18 forecasts (no signal check, no width rule; the data README's protocol):", "",
              "| baseline | MAE (pts) over 18 |", "|---|---|"]
    for law in ("linear", "logit-linear"):
        parts.append(f"| {law} | {naive_mae(pythia, law):.2f} |")
    parts.append("")
    deduped = pythia_rows(pythia, "pythia-deduped", PYTHIA_FIT, PYTHIA_TARGETS)
    parts += ["## Pythia deduped (validation: same protocol, independent training runs)", "", method_table(deduped), "",
              common_set_table(deduped), "", refusal_tally(deduped), ""]

    parts += ["## Error vs extrapolation distance (Pythia, forecast 6.9b and 12b)", "",
              "| fit up to | decades of params to 12b | " + " | ".join(f"{law} MAE / cov / n" for law in LAWS) + " |",
              "|---|---|" + "---|" * len(LAWS)]
    sizes = ["70m", "160m", "410m", "1b", "1.4b", "2.8b"]
    params = {"410m": 302_311_424, "1b": 805_736_448, "1.4b": 1_208_602_624, "2.8b": 2_517_652_480}
    for cutoff in ("410m", "1b", "1.4b", "2.8b"):
        fit = sizes[: sizes.index(cutoff) + 1]
        rows = pythia_rows(pythia, "pythia", fit, PYTHIA_TARGETS)
        cells = []
        for law in LAWS:
            s = score_rows(r for r in rows if r["method"] == law)
            cells.append("-" if s.mae is None else f"{s.mae:.2f} / {100 * s.coverage:.0f}% / {s.n}")
        parts.append(f"| {cutoff} | {np.log10(11_327_027_200 / params[cutoff]):.2f} | " + " | ".join(cells) + " |")
    parts.append("")

    openlm_text, _ = openlm_section(read_openlm())
    parts += ["## OpenLM (validation; Gadre et al. 2024): fit runs up to 1.4B, forecast the 6.9B run", "", openlm_text, ""]
    parts += [f"Total time: {time.perf_counter() - started:.0f} s on this machine (2 shared CPU cores)."]
    out.write_text("\n".join(parts) + "\n")
    print("\n".join(parts))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("forecast_accuracy.md"))
