"""The laws' faster fits against the fits they replaced, on the same simulated series: do they
reach the same optimum? (The figures docs/speed.md and the laws' docstrings quote.)

    .venv/bin/python benchmarks/fit_starts.py > benchmarks/fit_starts.txt

The series: the full fitting series and every forward-chaining fold of 6 simulated families x 10
tasks (``benchmarks/backtest_scale.families``), 240 fits. The replaced fits are reproduced here as
they were (before commit a9bc91f): saturating-power from 6 fixed starts with scipy's bounded
``least_squares``, the sigmoid from 6 fixed starts. Each fit is scored by its own objective (the
Pearson chi-square; the binomial log-likelihood), split by whether the scores rise more than 10
points above chance ("rising") or not ("flat").

Step 1 of the two-step laws (``loss_law.best_huber_fit``: every start a few evaluations, the best
two to convergence) against every start run to convergence (as before), on every step-1 fit that
``auto`` (ladder, loss-error) and ``ladder-schedule`` make on 36 simulated two-step families
(benchmarks/calibration.py's shapes "loss", "loss-exp" and "schedule", 3 draws per condition),
Pythia fitted up to 1.4b and the mini-ladder, scored by the Huber cost.
"""

from __future__ import annotations

import itertools
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares, leastsq
from scipy.special import logit

sys.path.insert(0, str(Path(__file__).parent))
from backtest_scale import families  # noqa: E402

from capcast.forecasting.backtest import plan_family  # noqa: E402
from capcast.laws import saturating_power as sp  # noqa: E402
from capcast.laws import sigmoid as sg  # noqa: E402
from capcast.laws.auto import forward_chaining_folds  # noqa: E402
from capcast.laws.logacc_power import fitting_points  # noqa: E402
from capcast.laws.signal import drop_early_checkpoints, require_score_series, score_floor  # noqa: E402
from capcast.tables.scores import build_series  # noqa: E402

RISE = 0.10


def series_of(n_families: int = 6):
    frame = families(n_families)
    for fam, rows in frame.groupby("family"):
        plan = plan_family(rows, fam, 1, False, None, None)
        for task in sorted(rows["task"].unique()):
            full = build_series(plan.fit_frame, task, "acc")
            yield from [full] + [fold.train for fold in forward_chaining_folds(full)]


def old_saturating(flops, value, n, c0, floor, with_c):
    """saturating-power's fit before a9bc91f: 6 (or 3) fixed starts, bounded trust region."""
    residuals, jacobian = sp.pearson_residuals(flops, value, n, c0, floor)
    q = np.clip((value - floor) / (1 - floor), 1e-3, 1 - 1e-3)
    level = float(np.log(np.median(-np.log(q))))
    lower, upper = [-30.0, 1e-4] + ([0.0] if with_c else []), [30.0, sp.B_MAX] + ([sp.C_MAX] if with_c else [])
    best = None
    for start in itertools.product((level,), (0.1, 0.3, 1.0), *([(0.0, 0.3)] if with_c else [])):
        start = np.clip(start, np.array(lower) + 1e-9, np.array(upper) - 1e-9)
        res = least_squares(residuals, start, jac=jacobian, bounds=(lower, upper), method="trf")
        if np.all(np.isfinite(res.x)) and (best is None or res.cost < best.cost):
            best = res
    return best.x


def saturating_law(fit, problem):
    theta = fit(*problem, with_c=True)
    return fit(*problem, with_c=False) if theta[2] < sp.C_AT_ZERO else theta


def chi2(theta, problem):
    theta = np.append(theta, 0.0) if len(theta) == 2 else theta
    residuals, _ = sp.pearson_residuals(*problem)
    return float(np.sum(residuals(theta) ** 2))


def old_sigmoid(x, y, n, floor, ceiling):
    """The sigmoid's fit before a9bc91f: up to 6 fixed starts; (theta, log-likelihood, ceiling)."""
    q = np.clip((y - floor) / (1 - floor), 0.02, 0.98)
    slope, intercept = np.polyfit(x, logit(q), 1)
    starts = [[intercept, slope], [intercept, max(slope, 0.5)], [0.0, 1.0]]
    if ceiling is None:
        starts = [s + [c] for s in starts for c in (1.0, 3.0)]
    deviance = sg._BinomialDeviance(x, y, n, floor, ceiling)
    best = None
    for start in dict.fromkeys(tuple(float(v) for v in s) for s in starts):
        found = leastsq(deviance.residuals, np.array(start), Dfun=deviance.jacobian, ftol=1e-10, xtol=1e-10)[0]
        if np.all(np.isfinite(found)) and (best is None or deviance.loglike(found) > best[1]):
            best = (found, deviance.loglike(found))
    if ceiling is None and best[0][2] > sg.CEILING_RUNAWAY:
        return old_sigmoid(x, y, n, floor, 1.0)
    return best[0], best[1], ceiling


def new_sigmoid(x, y, n, floor):
    res = sg.fit_bounded_sigmoid(x, y, n, floor, None)
    return res.theta, sg._BinomialDeviance(x, y, n, floor, res.ceiling).loglike(res.theta), res.ceiling


def report(name, old_cost, new_cost, rising, seconds_old, seconds_new, lower_is_better=True):
    sign = 1.0 if lower_is_better else -1.0
    worse = sign * (np.asarray(new_cost) - np.asarray(old_cost)) / np.maximum(np.abs(old_cost), 1e-9) > 1e-6
    better = sign * (np.asarray(new_cost) - np.asarray(old_cost)) / np.maximum(np.abs(old_cost), 1e-9) < -1e-6
    for label, mask in (("rising", rising), ("flat", ~rising)):
        print(f"{name:<18} {label:<7} {int(mask.sum()):>5} fits: new worse than old {int((worse & mask).sum()):>3}, better "
              f"{int((better & mask).sum()):>3}")
    print(f"{name:<18} time per fit: old {1000 * seconds_old:.1f} ms, new {1000 * seconds_new:.1f} ms "
          f"({seconds_old / seconds_new:.1f}x)")


def step_one_problems() -> list[tuple]:
    """The inputs of every step-1 fit (``best_huber_fit``'s arguments) the two-step laws make on
    the families of the docstring, with the result cache off so that each fit happens."""
    import calibration
    import forecast_accuracy

    from capcast.forecasting.forecast import run_forecasts
    from capcast.laws import ladder_schedule, loss_law
    from capcast.plugins.registry import load_registry

    problems, two_stage = [], loss_law.best_huber_fit

    def recording(*args):
        problems.append(args)
        return two_stage(*args)

    loss_law.best_huber_fit = ladder_schedule.best_huber_fit = recording
    registry = load_registry()
    try:
        for k, (shape, lof, regime) in enumerate(itertools.product(("loss", "loss-exp", "schedule"), (0.0, 0.15), ("mid", "high"))):
            rng = np.random.default_rng(1000 + k)
            for _ in range(3):
                family = calibration.draw_family(rng, shape, lof, regime)
                loss_law._fit_loss_law_cached.cache_clear()
                run_forecasts(family.scores, "target", ["task"], "acc", "ladder-schedule" if shape == "schedule" else "auto", 0.9,
                              None, registry, max_width=1.0, schedules=family.schedules)
        pythia = forecast_accuracy.read_pythia(deduped=False)
        forecast_accuracy.pythia_rows(pythia, "pythia", forecast_accuracy.SIZES[: forecast_accuracy.SIZES.index("1.4b") + 1],
                                      forecast_accuracy.PYTHIA_TARGETS, laws=("ladder", "loss-error"))
        forecast_accuracy.miniladder_rows(laws=("ladder", "loss-error", "ladder-schedule"))
    finally:
        loss_law.best_huber_fit = ladder_schedule.best_huber_fit = two_stage
    return problems


def report_step_one() -> None:
    from capcast.laws.loss_law import best_huber_fit

    problems = step_one_problems()
    start = time.process_time()
    old = [best_huber_fit(*p, coarse_evaluations=None) for p in problems]
    seconds_old = (time.process_time() - start) / len(problems)
    start = time.process_time()
    new = [best_huber_fit(*p) for p in problems]
    seconds_new = (time.process_time() - start) / len(problems)
    worse = sum(n.cost > o.cost * (1 + 1e-6) + 1e-15 for o, n in zip(old, new))
    better = sum(n.cost < o.cost * (1 - 1e-6) - 1e-15 for o, n in zip(old, new))
    moved = [(o, n) for o, n in zip(old, new) if np.max(np.abs(o.x - n.x)) > 1e-4]
    print(f"step 1 (loss law) {len(problems):>5} fits: two stages worse than every start {worse:>3}, better {better:>3}; "
          f"parameters moved (> 1e-4) in {len(moved)}, all at a cost below "
          f"{max([max(o.cost, n.cost) for o, n in moved], default=0.0):.1g} (exact fits: as many points as parameters)")
    print(f"step 1 (loss law) time per fit: every start {1000 * seconds_old:.1f} ms, two stages {1000 * seconds_new:.1f} ms "
          f"({seconds_old / seconds_new:.1f}x)")


def main() -> None:
    warnings.simplefilter("ignore")
    all_series = list(series_of())
    print(f"# benchmarks/fit_starts.py: {len(all_series)} simulated series (6 families x 10 tasks, full and folds)")
    saturating_problems, sigmoid_problems = [], []
    for series in all_series:
        points = fitting_points(series, "all")
        if len(np.unique(np.round(np.log10(points.flops), 6))) >= 3:
            saturating_problems.append((points.flops, points.value, sg.binomial_weights(points), float(np.exp(np.mean(np.log(points.flops)))),
                                        score_floor(points)))
        points = drop_early_checkpoints(require_score_series(series))
        x = np.log10(points.flops)
        if len(np.unique(np.round(x, 6))) >= 3:
            sigmoid_problems.append((x - x.mean(), points.value, sg.binomial_weights(points), score_floor(points)))

    start = time.process_time()
    old = [saturating_law(old_saturating, p) for p in saturating_problems]
    seconds_old = (time.process_time() - start) / len(saturating_problems)
    start = time.process_time()
    new = [saturating_law(sp.fit_saturating, p) for p in saturating_problems]
    seconds_new = (time.process_time() - start) / len(saturating_problems)
    rising = np.array([p[1].max() - p[4] > RISE for p in saturating_problems])
    report("saturating-power", [chi2(t, p) for t, p in zip(old, saturating_problems)],
           [chi2(t, p) for t, p in zip(new, saturating_problems)], rising, seconds_old, seconds_new)

    start = time.process_time()
    old = [old_sigmoid(*p, None) for p in sigmoid_problems]
    seconds_old = (time.process_time() - start) / len(sigmoid_problems)
    start = time.process_time()
    new = [new_sigmoid(*p) for p in sigmoid_problems]
    seconds_new = (time.process_time() - start) / len(sigmoid_problems)
    rising = np.array([p[1].max() - p[3] > RISE for p in sigmoid_problems])
    report("sigmoid", [o[1] for o in old], [n_[1] for n_ in new], rising, seconds_old, seconds_new, lower_is_better=False)
    report_step_one()


if __name__ == "__main__":
    main()
