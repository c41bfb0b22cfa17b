"""COD on real per-instance pass rates: forecast Pythia 6.9B and 12B GSM8K pass@1 (300B tokens) from the models up to 1.4B.

Fitting set: every checkpoint (2M to 300B tokens) of the six sizes 14M-1.4B; the targets' own runs,
2.8B and everything at or above a target's compute are never fitted. COD uses the paper's
constants as methods.md gives them (Q = 0.1, U = sqrt(d)/10, K = 10; filter a > 1, b > 0.1,
0 <= c < 1; mapping RMSE < 0.005; compute in units of 1e18 FLOPs), nothing tuned here. Rows:

* ``cod``: the paper's COD (improved MeanShift, filter), no anchor;
* ``cod, no thresholds``: the paper's own ablation without the filter (Table A1: 2.61 vs 1.55 points);
* ``cod kmeans`` (8 clusters, capcast's default) with and without the filter (the paper's Table 3 baseline);
* task-level laws through ``capcast forecast --samples`` on the same checkpoints: ``passuntil``,
  ``passuntil_compute``, ``sigmoid``, ``auto``, ``logit-linear``; and ``passuntil`` / ``passuntil_instance``
  on the 300B checkpoints only (as benchmarks/passuntil_forecast.py).

Writes benchmarks/img/cod-gsm8k-*.png (the cluster plots of the 6.9B forecast).

    python benchmarks/cod_gsm8k.py > benchmarks/cod_gsm8k.txt
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from passuntil_data import run_on_samples  # noqa: E402

from capcast.cod.cluster_law import Thresholds  # noqa: E402
from capcast.cod.instances import from_samples  # noqa: E402
from capcast.cod.pipeline import CODConfig, fit_cod  # noqa: E402
from capcast.cod.plots import plot_result  # noqa: E402
from capcast.forecasting.samples import forecast_samples  # noqa: E402
from capcast.laws.base import NotPredictable, Target  # noqa: E402

FIT_SIZES = ("14M", "70M", "160M", "410M", "1B", "1.4B")
TARGETS = ("6.9B", "12B")
LEVEL = 0.9
NONE = Thresholds(-np.inf, -np.inf, -np.inf, np.inf)
COD_VARIANTS = {
    "cod": CODConfig(),
    "cod, no thresholds": CODConfig(thresholds=NONE),
    "cod kmeans": CODConfig(method="kmeans"),
    "cod kmeans, no thresholds": CODConfig(method="kmeans", thresholds=NONE),
}
LAWS = ("passuntil", "passuntil_compute", "sigmoid", "auto", "logit-linear")
IMG = Path(__file__).resolve().parent / "img"


def main(table: pd.DataFrame) -> None:
    table = table.drop(columns="size").assign(size=table["size"])
    rates = table.assign(rate=table.n_correct / table.n_samples).groupby(["model", "size", "tokens"], as_index=False)["rate"].mean()
    fit = table[table["size"].isin(FIT_SIZES)]
    instances = from_samples(fit.drop(columns="size"))
    print(f"fitting set: {fit['model'].nunique()} checkpoints (sizes {', '.join(FIT_SIZES)}, 2M-300B tokens), "
          f"{fit['doc_id'].nunique()} GSM8K problems")
    print(f"{'target':>17} {'method':>30} {'forecast':>9} {f'{int(LEVEL * 100)}% interval':>20} {'actual':>8} {'error':>8} "
          f"{'ratio':>6} covered  note")
    errors: dict[str, list[float]] = {}
    for size in TARGETS:
        actual = float(rates[(rates["size"] == size) & (rates.tokens == 300e9)]["rate"].iloc[0])
        trow = table[(table["size"] == size) & (table.tokens == 300e9)].iloc[0]
        target = Target(name=str(trow.model), params=float(trow.params), tokens=300e9, flops=float(trow.flops))
        results = []
        for name, config in COD_VARIANTS.items():
            result = fit_cod(instances, "gsm8k", config=config)
            note = f"{len(result.kept)}/{len(result.clusters)} clusters kept, subset {result.subset_size}/{len(result.docs)}"
            try:
                mean, lo, hi = result.predict(target.compute, LEVEL)
                results.append((name, mean, lo, hi, note))
            except NotPredictable as exc:
                results.append((name, None, None, None, f"not predictable yet: {str(exc)[:110]}"))
            if size == "6.9B" and name in ("cod", "cod, no thresholds"):
                forecast = None if results[-1][1] is None else {"flops": target.compute, "forecast": results[-1][1], "lower": results[-1][2],
                                                                 "upper": results[-1][3], "subset_forecast": result.subset_forecast(target.compute)}
                shown = replace(result, forecast={**(forecast or {"flops": target.compute}), "actual": actual})
                plot_result(shown, IMG / f"cod-gsm8k-{'filter' if name == 'cod' else 'nofilter'}.png")
        laws_input = table[table["size"].isin(FIT_SIZES) | (table.model == trow.model)].drop(columns="size")
        for method in LAWS:
            results.append(_law_row(method, laws_input, target))
        final = laws_input[laws_input.tokens == 300e9]
        for method in ("passuntil", "passuntil_instance"):
            results.append(_law_row(method, final, target, " (300B only)"))
        for name, mean, lo, hi, note in results:
            if mean is None:
                print(f"{target.name:>17} {name:>30}  {note}")
                continue
            err = mean - actual
            errors.setdefault(name, []).append((abs(err), mean / actual, lo <= actual <= hi))
            print(f"{target.name:>17} {name:>30} {mean:>9.5f} {f'[{lo:.5f}, {hi:.5f}]':>20} {actual:>8.5f} {err:>+8.5f} "
                  f"{mean / actual:>6.2f} {'yes' if lo <= actual <= hi else 'no ':>7}  {note}")
    print("\nover the two targets: mean absolute error (pass@1 x 100), mean forecast/actual ratio, intervals covering:")
    for name, errs in sorted(errors.items(), key=lambda kv: np.mean([e[0] for e in kv[1]])):
        abs_err, ratio, covered = (np.array(v) for v in zip(*errs))
        print(f"  {name:>30}: {100 * abs_err.mean():.3f} points, ratio {ratio.mean():.2f}, covered {int(covered.sum())}/{len(errs)}")


def _law_row(method: str, samples: pd.DataFrame, target: Target, suffix: str = ""):
    row = forecast_samples(samples, target, ["gsm8k"], method, LEVEL)[0].row
    if row.status != "ok":
        return (method + suffix, None, None, None, f"{row.status}: {row.reason[:110]}")
    return (method + suffix, row.forecast, row.lower, row.upper, row.law if row.law != method else "")


if __name__ == "__main__":
    run_on_samples(main)
