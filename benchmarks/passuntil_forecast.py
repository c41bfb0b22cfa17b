"""Forecast Pythia 6.9B and 12B GSM8K pass@1 (300B tokens) from the models up to 1.4B.

Fitting set: the 300B-token checkpoints of 14M, 70M, 160M, 410M, 1B and 1.4B (pass@1 per
problem = n_correct / n_samples, averaged over problems). Methods:

* ``passuntil``: Hu et al.'s task law, log(-log PU) linear in ln N (capcast.laws.passuntil);
* ``passuntil_instance``: one law per problem with a shared slope, task = mean of the problems;
* ``direct``: a straight line of log pass@1 on log compute (a power law in C, OLS) - the plain
  fit of the aggregate score that the issue asks to compare with;
* ``logit-linear``: capcast's registered baseline (logit score vs log10 compute).

Plus the acceleration test on the fitting points only (the 6 fitting sizes; the targets and the
unused 2.8B are held out of it, as a forecast made before training them would have to).

    python benchmarks/passuntil_forecast.py > benchmarks/passuntil_forecast.txt
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from passuntil_data import run_on_samples  # noqa: E402

from capcast.laws.base import Target  # noqa: E402
from capcast.laws.passuntil import acceleration_test  # noqa: E402
from capcast.forecasting.samples import forecast_samples  # noqa: E402

FIT_SIZES = ("14M", "70M", "160M", "410M", "1B", "1.4B")
TARGETS = ("6.9B", "12B")
LEVEL = 0.9


def direct_power_law(fit_table, target: Target) -> tuple[float, float, float]:
    x = np.log(fit_table.flops.to_numpy())
    y = np.log(fit_table.pass_rate.to_numpy())
    res = sm.OLS(y, sm.add_constant(x)).fit()
    pred = res.get_prediction(np.array([[1.0, np.log(target.compute)]])).summary_frame(alpha=1 - LEVEL)
    return float(np.exp(pred["mean"].iloc[0])), float(np.exp(pred["obs_ci_lower"].iloc[0])), float(np.exp(pred["obs_ci_upper"].iloc[0]))


def main(table: pd.DataFrame) -> None:
    """The report, on the samples table of every (Pythia checkpoint, GSM8K problem)."""
    table = table[table.tokens == 300e9]
    per_model = table.assign(rate=table.n_correct / table.n_samples).groupby(["model", "size", "params", "flops"], as_index=False)["rate"].mean()
    per_model = per_model.sort_values("params")
    print("GSM8K pass@1 at 300B tokens (recorded):")
    for row in per_model.itertuples():
        tag = "fit" if row.size in FIT_SIZES else ("target" if row.size in TARGETS else "unused")
        print(f"  {row.model:>18}  N = {row.params:.3g}  pass@1 = {row.rate:.6f}  [{tag}]")
    fit_rows = per_model[per_model["size"].isin(FIT_SIZES)]
    accel = acceleration_test(np.log(per_model.params.to_numpy()), per_model.rate.to_numpy(),
                              fitting=per_model["size"].isin(FIT_SIZES).to_numpy())
    print(f"\n{accel.summary()}")
    print(f"{'target':>18} {'method':>20} {'forecast':>10} {f'{int(LEVEL * 100)}% interval':>22} {'actual':>9} {'error':>9} {'rel.err':>8} covered")
    errors: dict[str, list[float]] = {}
    for size in TARGETS:
        trow = per_model[per_model["size"] == size].iloc[0]
        target = Target(name=trow.model, params=float(trow.params), tokens=300e9, flops=float(trow.flops))
        samples = table[table["size"].isin(FIT_SIZES) | (table.model == trow.model)].drop(columns="size")
        results = []
        for method in ("passuntil", "passuntil_instance", "logit-linear"):
            row = forecast_samples(samples, target, ["gsm8k"], method, LEVEL)[0].row
            results.append((method, row.forecast, row.lower, row.upper, row.status, row.reason))
        fit_table = fit_rows.rename(columns={"rate": "pass_rate"})
        results.append(("direct (log-log C)", *direct_power_law(fit_table, target), "ok", ""))
        for method, mean, lo, hi, status, reason in results:
            if status != "ok":
                print(f"{trow.model:>18} {method:>20}  {status}: {reason}")
                continue
            err = mean - trow.rate
            errors.setdefault(method, []).append(abs(err))
            print(f"{trow.model:>18} {method:>20} {mean:>10.5f} {f'[{lo:.5f}, {hi:.5f}]':>22} {trow.rate:>9.6f} {err:>+9.5f} "
                  f"{err / trow.rate:>+8.0%} {'yes' if lo <= trow.rate <= hi else 'no'}")
    print("\nmean absolute error (pass@1 points x 100):")
    for method, errs in errors.items():
        print(f"  {method:>20}: {100 * np.mean(errs):.3f}")
    rho = stats.spearmanr(per_model.params, per_model.rate).statistic
    print(f"\nNote: pass@1 flattens above 1B (1B {per_model.rate.iloc[4]:.4f} ... 12B {per_model.rate.iloc[-1]:.4f}; "
          f"Spearman rho over all sizes {rho:.2f}), so every law fitted on the rising part overshoots the two largest models.")


if __name__ == "__main__":
    run_on_samples(main)
