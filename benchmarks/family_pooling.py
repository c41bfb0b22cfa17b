"""Would auto weigh its candidates better on fold evidence pooled over a family's tasks? Measured on
the development splits only (Pythia fit up to 1.4b / 410m / 1b / 2.8b, 1.4b on final checkpoints,
the mini-ladder); writes benchmarks/family_pooling.txt.

    python benchmarks/family_pooling.py

Which law extrapolates well is partly a property of the training setup, not of the task, and a
task's own 1-4 folds are noisy evidence. Each candidate's mean fold error on a task is blended with
its mean over every task of the family, (k * task + M * family) / (k + M) for a task with k folds,
before auto's inverse-error weights (floored as usual); "family only" uses the family's mean alone.
auto sees one series at a time, so this experiment patches ``capcast.laws.auto`` in this process
(a first pass records every task's fold errors, a second forecasts with the blended weights); it
is not an option of the law. Cells: auto's MAE (points) @ answered, 90% coverage, and its MAE on
the forecasts auto and logacc-power both answered.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import forecast_accuracy as fa  # noqa: E402

import capcast.laws.auto as auto_module  # noqa: E402
from capcast.forecasting.backtest import common_forecasts, forecast_key, score_rows  # noqa: E402

SPLITS = ("1.4b", "410m", "1b", "2.8b", "1.4b-final", "mini-ladder")
# (label, M): None is the family's mean alone; "default" is auto as it is
VARIANTS = (("pool M=2", 2), ("pool M=6", 6), ("family only", None))

fold_errors: dict[tuple, dict[str, float]] = {}  # (family, task, metric) -> candidate -> mean fold error
state = {"pooling": False, "M": None, "series": None}
_weighted, _weights = auto_module.AutoLaw._weighted, auto_module._weights


def recording_weighted(self, report, usable, errors, series):
    """auto's own ``_weighted``, recording each task's mean fold errors on the first pass."""
    key = (series.family, series.task, series.metric)
    if not state["pooling"] and errors.shape[1]:
        fold_errors[key] = dict(zip(usable, errors.mean(axis=1)))
    state["series"] = key
    return _weighted(self, report, usable, errors, series)


def pooled_weights(rule, report, names, errors):
    """auto's inverse-error weights, on each candidate's fold error blended with its family mean."""
    if not state["pooling"] or not errors.shape[1]:
        return _weights(rule, report, names, errors)
    family = state["series"][0]
    k, m = errors.shape[1], state["M"]
    out = []
    for i, name in enumerate(names):
        over_family = [v[name] for (f, _, _), v in fold_errors.items() if f == family and name in v]
        family_mean = np.mean(over_family) if over_family else errors[i].mean()
        blended = family_mean if m is None else (k * errors[i].mean() + m * family_mean) / (k + m)
        out.append(1.0 / max(blended, auto_module.ERROR_FLOOR))
    return np.array(out)


def split_rows(split: str) -> list[dict]:
    fa.REGISTRY.base.law("auto")._fits.clear()  # auto's kept fits would skip the weights
    if split == "mini-ladder":
        return fa.miniladder_rows(laws=("auto", "logacc-power"))
    cutoff, _, final = split.partition("-")
    return fa.pythia_split_rows("pythia", cutoff, ("auto", "logacc-power"), final_only=bool(final))


def cell(label: str, rows: list[dict]) -> str:
    answered = score_rows([r for r in rows if r["method"] == "auto"])
    keys = common_forecasts(rows, ("auto", "logacc-power"))
    common = score_rows([r for r in rows if r["method"] == "auto" and forecast_key(r) in keys])
    return f"{label}: {answered.mae:.2f}@{answered.n} cov {100 * answered.coverage:.0f}% common {common.mae:.2f}"


def main() -> None:
    warnings.simplefilter("ignore")
    auto_module.AutoLaw._weighted, auto_module._weights = recording_weighted, pooled_weights
    lines = ["# python benchmarks/family_pooling.py: auto's weights from fold errors pooled over a family's tasks (development splits)"]
    for split in SPLITS:
        fold_errors.clear()
        state["pooling"] = False
        line = [split, cell("default", split_rows(split))]
        for label, m in VARIANTS:
            state.update(pooling=True, M=m)
            line.append(cell(label, split_rows(split)))
        lines.append(" | ".join(line))
        print(lines[-1], flush=True)
    (HERE / "family_pooling.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
