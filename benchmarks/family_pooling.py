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
import sys, warnings; warnings.simplefilter("ignore")
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np, pandas as pd
import forecast_accuracy as fa
import capcast.laws.auto as A
from capcast.forecasting.backtest import score_rows, common_forecasts, forecast_key

record, CURRENT, MODE = {}, [None], ["record"]
orig_weighted, orig_weights = A.AutoLaw._weighted, A._weights

def weighted(self, report, usable, errors, series):
    key = (series.family, series.task, series.metric)
    if MODE[0] == "record" and errors.shape[1]:
        record[key] = dict(zip(usable, errors.mean(axis=1)))
    CURRENT[0] = key
    return orig_weighted(self, report, usable, errors, series)

def weights(rule, report, names, errors):
    if MODE[0] == "record" or not errors.shape[1]:
        return orig_weights(rule, report, names, errors)
    fam, task, metric = CURRENT[0]
    k, M = errors.shape[1], MODE[1]
    out = []
    for i, name in enumerate(names):
        others = [v[name] for (f, t, m), v in record.items() if f == fam and name in v]
        fam_mean = np.mean(others) if others else errors[i].mean()
        blended = fam_mean if M is None else (k * errors[i].mean() + M * fam_mean) / (k + M)
        out.append(1.0 / max(blended, A.ERROR_FLOOR))
    return np.array(out)

A.AutoLaw._weighted, A._weights = weighted, weights

def clear():
    fa.REGISTRY.base.law("auto")._fits.clear()

def split_rows(split):
    if split == "mini-ladder":
        return fa.miniladder_rows(laws=("auto", "logacc-power"))
    cutoff, _, final = split.partition("-")
    return fa.pythia_split_rows("pythia", cutoff, ("auto", "logacc-power"), final_only=bool(final))

lines = ["# python benchmarks/family_pooling.py: auto's weights from fold errors pooled over a family's tasks (development splits)"]
for split in ("1.4b", "410m", "1b", "2.8b", "1.4b-final", "mini-ladder"):
    MODE[:] = ["record", None]; record.clear(); clear()
    base = split_rows(split)
    line = [split]
    for label, M in (("default", "x"), ("pool M=2", 2), ("pool M=6", 6), ("family only", None)):
        if M == "x":
            rows = base
        else:
            MODE[:] = ["pool", M]; clear()
            rows = split_rows(split)
        a = score_rows([r for r in rows if r["method"] == "auto"])
        keys = common_forecasts(rows, ("auto", "logacc-power"))
        c = score_rows([r for r in rows if r["method"] == "auto" and forecast_key(r) in keys])
        line.append(f"{label}: {a.mae:.2f}@{a.n} cov {100*a.coverage:.0f}% common {c.mae:.2f}")
    lines.append(" | ".join(line))
    print(lines[-1], flush=True)
(Path(__file__).resolve().parent / "family_pooling.txt").write_text("\n".join(lines) + "\n")
