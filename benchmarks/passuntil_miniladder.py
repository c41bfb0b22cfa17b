"""PassUntil on the reference mini-ladder: greedy 0, measured pass rates > 0, and a forecast of
the largest member's pass rate from the smaller ones, with the actual beside it.

Task ``ref_add3`` (3-digit addition, temperature 1, exact match), the first ``--items`` items,
every seed-0 checkpoint of the committed ladder (xs, s, m, l; 25%, 50% and 100% of each run).

1. Greedy: ``capcast eval`` of ``ref_add3_greedy`` (the same items, greedy) on each checkpoint.
2. PassUntil: ``capcast.passuntil.sampler.sample_family`` (the library of ``capcast sample``; HF backend
   on CPU) with r = ``--successes`` and a cap of ``--cap`` samples per item, into one store.
   The pass rate is the unbiased estimate, the interval the task-level 90% interval.
3. The actual for the target ``l-s0-step2441``: its PassUntil rate, and a fixed
   ``--actual-samples`` samples per item (binomial, a separate store, another seed) because at
   a pass rate near 0.5 r = 3 stops after ~6 samples and leaves a wide interval.
4. Forecast of ``l-s0-step2441`` from the xs, s and m checkpoints (the whole l size is held
   out, as in ``family.yaml``): the PassUntil law on N (``passuntil``, final checkpoints),
   per instance (``passuntil_instance``, final checkpoints), on compute (``passuntil_compute``,
   every checkpoint), all through ``capcast.forecasting.samples.forecast_samples``; the naive
   direct fits: a power law of the pass rate in compute (OLS of log rate on log C) and
   ``logit-linear``; and capcast's ``auto`` on the greedy scores. Then ``passuntil_compute``
   again with the l run's 25% (and 50%) checkpoints added to the fit.
5. Hu et al.'s acceleration test on the fitting points only (the xs, s and m checkpoints: the
   verdict a forecast of the target could use), on C and on the finals' N; then, labelled as
   hindsight, on every checkpoint including the held-out l run.

    python benchmarks/passuntil_miniladder.py [--store DIR] > benchmarks/passuntil_miniladder.txt

Resumable: a second run with the same ``--store`` reuses every committed round and evaluation.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd
import statsmodels.api as sm

from capcast.evaluation.runner import evaluate_family
from capcast.spec import load_family
from capcast.forecasting.forecast import forecast_scores
from capcast.laws.base import Target
from capcast.laws.passuntil import acceleration_test
from capcast.forecasting.samples import forecast_samples
from capcast.passuntil.rounds import export_samples_table
from capcast.reference.ladder import default_ladder_dir
from capcast.tables.samples import task_table
from capcast.passuntil.runner import SamplerConfig, sample_family
from capcast.evaluation.scores import scores_from_store

TASK, GREEDY = "ref_add3", "ref_add3_greedy"
TARGET = "l-s0-step2441"
FIT_SIZES = ("xs", "s", "m")
LEVEL = 0.9


SIZES = FIT_SIZES + ("l",)  # the ladder's sizes when passuntil_miniladder.txt was made (sm1-sm3 came later)


def seed0_checkpoints(spec) -> list:
    return sorted((c for c in spec.checkpoints if "-s0-" in c.name and size_of(c.name) in SIZES), key=lambda c: c.compute)


def size_of(name: str) -> str:
    return name.split("-")[0]


def direct_power_law(table: pd.DataFrame, target: Target) -> tuple:
    """Naive direct fit: OLS of log pass rate on log compute, 90% prediction interval.

    (mean, lower, upper, status, reason); points at rate 0 have no logarithm and are dropped.
    """
    table = table[table.pass_rate > 0]
    if len(table) < 3:
        return None, None, None, "not predictable yet", f"only {len(table)} checkpoints with a rate > 0 (need 3)"
    res = sm.OLS(np.log(table.pass_rate.to_numpy()), sm.add_constant(np.log(table.flops.to_numpy()))).fit()
    pred = res.get_prediction(np.array([[1.0, np.log(target.compute)]])).summary_frame(alpha=1 - LEVEL)
    return (*(float(np.exp(pred[c].iloc[0])) for c in ("mean", "obs_ci_lower", "obs_ci_upper")), "ok", "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=Path("/tmp/capcast-passuntil-miniladder"))
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--successes", type=int, default=3)
    parser.add_argument("--cap", type=int, default=8192)
    parser.add_argument("--actual-samples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args()
    started = time.perf_counter()
    ladder = default_ladder_dir()
    spec_path = ladder / "ladder.yaml"
    spec = load_family(spec_path)
    ckpts = seed0_checkpoints(spec)
    names = [c.name for c in ckpts]
    target_ckpt = spec.checkpoint(TARGET)
    target = Target(name=TARGET, params=target_ckpt.params, tokens=target_ckpt.tokens, flops=target_ckpt.compute)

    print("# benchmarks/passuntil_miniladder.py")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"task {TASK} (3-digit addition, T = 1, exact match), first {args.items} items; seed-0 checkpoints of capcast-mini")
    print(f"PassUntil: r = {args.successes}, cap {args.cap:,} samples per item, first round 64 per item doubling, "
          f"HF backend on CPU, batch {args.batch_size}, seed {args.seed}")

    # 1. greedy on the same items
    t = time.perf_counter()
    evaluate_family(spec_path, [GREEDY], args.store, limit=args.items, device="cpu", checkpoints=names, progress=False)
    scores = scores_from_store(args.store)
    greedy = scores[(scores.task == GREEDY) & (scores.metric == "pass_rate")].set_index("model")["value"]
    greedy_seconds = time.perf_counter() - t

    # 2. PassUntil, one checkpoint at a time (timed)
    config = SamplerConfig(successes=args.successes, max_samples_per_instance=args.cap, first_batch=64)
    runs = {}
    for name in names:
        t = time.perf_counter()
        (summary,) = sample_family(spec_path, [TASK], args.store, config, seed=args.seed, batch_size=args.batch_size,
                                   device="cpu", limit=args.items, checkpoints=[name])
        runs[name] = (summary, time.perf_counter() - t)

    # 3. the target's pass rate from a fixed number of samples per item (binomial)
    fixed_store = args.store.with_name(args.store.name + f"-fixed{args.actual_samples}")
    fixed = SamplerConfig(successes=args.actual_samples + 1, max_samples_per_instance=args.actual_samples, first_batch=args.actual_samples)
    t = time.perf_counter()
    sample_family(spec_path, [TASK], fixed_store, fixed, seed=args.seed + 1, batch_size=args.batch_size, device="cpu",
                  limit=args.items, checkpoints=[TARGET])
    fixed_seconds = time.perf_counter() - t
    fixed_table = task_table(export_samples_table(fixed_store).query("task == @TASK"), estimator="mle")
    actual = fixed_table.iloc[0]

    samples = export_samples_table(args.store)
    samples = samples[(samples.task == TASK) & samples.model.isin(names)]
    per_ckpt = task_table(samples).set_index("model").loc[names]
    passed = samples.groupby("model").apply(lambda g: int((g.n_correct > 0).sum()), include_groups=False)

    print(f"\n## Greedy vs PassUntil per checkpoint (pass rates on the same {args.items} items)\n")
    print(f"{'checkpoint':>14} {'params':>8} {'FLOPs':>9} {'greedy':>7} {'PassUntil rate':>15} {'90% interval':>23} "
          f"{'items>=1 pass':>13} {'items r':>7} {'samples':>9} {'s':>5} {'samples/s':>9}")
    for c in ckpts:
        row, (summary, seconds) = per_ckpt.loc[c.name], runs[c.name]
        print(f"{c.name:>14} {c.params:>8,.0f} {c.compute:>9.2e} {greedy.get(c.name, np.nan):>7.3f} {row.pass_rate:>15.3g} "
              f"{f'[{row.lower:.3g}, {row.upper:.3g}]':>23} {f'{passed[c.name]}/{args.items}':>13} "
              f"{f'{summary.solved}/{args.items}':>7} {summary.samples:>9,} {seconds:>5.0f} {summary.samples / max(seconds, 1e-9):>9,.0f}")
    zero_greedy = [c.name for c in ckpts if greedy.get(c.name, np.nan) == 0]
    positive = [n for n in zero_greedy if per_ckpt.loc[n].pass_rate > 0]
    print(f"\n{len(zero_greedy)} of {len(ckpts)} checkpoints score greedy 0; PassUntil measures a rate > 0 on {len(positive)} of them.")
    print(f"{TARGET} with {args.actual_samples} samples per item (binomial, another seed): pass rate {actual.pass_rate:.4f} "
          f"[{actual.lower:.4f}, {actual.upper:.4f}] ({int(actual.n_samples):,} samples, {fixed_seconds:.0f} s)")

    # 4. forecasts of the target from xs, s, m
    fit_all = samples[samples.model.map(size_of).isin(FIT_SIZES)]
    finals = {max((c for c in ckpts if size_of(c.name) == s), key=lambda c: c.tokens).name for s in FIT_SIZES}
    fit_final = fit_all[fit_all.model.isin(finals)]
    truth = float(actual.pass_rate)
    print(f"\n## Forecast of {TARGET} (N = {target.params:,.0f}, C = {target.compute:.2e}) from xs, s, m (seed 0)\n")
    print(f"actual: {truth:.4f} ({args.actual_samples} samples per item); its PassUntil rate: {per_ckpt.loc[TARGET].pass_rate:.4f}")
    print(f"{'method':>34} {'fit on':>26} {'forecast':>10} {'90% interval':>22} {'actual':>7} {'x actual':>9} covered")
    results = []
    for method, frame, label in (
        ("passuntil", fit_final, "finals xs, s, m"),
        ("passuntil_instance", fit_final, "finals xs, s, m"),
        ("passuntil_compute", fit_all, "all 9 xs, s, m ckpts"),
        ("passuntil_compute", fit_final, "finals xs, s, m"),
        ("logit-linear", fit_final, "finals xs, s, m"),
    ):
        row = forecast_samples(frame, target, [TASK], method, LEVEL)[0].row
        results.append((method, label, row.forecast, row.lower, row.upper, row.status, row.reason))
    # The same law with the target's own size partly trained: where does the jump become visible?
    for extra in (["l-s0-step610"], ["l-s0-step610", "l-s0-step1220"]):
        frame = samples[samples.model.isin(list(fit_all.model.unique()) + extra)]
        row = forecast_samples(frame, target, [TASK], "passuntil_compute", LEVEL)[0].row
        results.append(("passuntil_compute", "xs, s, m + " + ", ".join(e.removeprefix("l-s0-") for e in extra),
                        row.forecast, row.lower, row.upper, row.status, row.reason))
    fit_table = task_table(fit_all)
    results.append(("direct power law in C (naive)", "all 9 xs, s, m ckpts", *direct_power_law(fit_table, target)))
    results.append(("direct power law in C (naive)", "finals xs, s, m",
                    *direct_power_law(fit_table[fit_table.model.isin(finals)], target)))
    greedy_fit = scores[scores.model.isin([n for n in names if size_of(n) in FIT_SIZES] + [TARGET])]
    grow = forecast_scores(greedy_fit, TARGET, [GREEDY], metric="pass_rate", method="auto", interval=LEVEL)[0]
    results.append((f"auto on greedy {GREEDY}", "all 9 xs, s, m ckpts", grow.forecast, grow.lower, grow.upper, grow.status, grow.reason))
    for method, label, mean, lo, hi, status, reason in results:
        if status != "ok":
            print(f"{method:>34} {label:>26}  {status}: {reason}")
            continue
        print(f"{method:>34} {label:>26} {mean:>10.4g} {f'[{lo:.3g}, {hi:.3g}]':>22} {truth:>7.3f} {mean / truth:>9.3g} "
              f"{'yes' if lo <= truth <= hi else 'no'}")
    if grow.actual is not None:
        print(f"(greedy actual of {TARGET} on these {args.items} items: {grow.actual:.3f})")

    # 5. acceleration test: fitting points only (a forecast of the target cannot see the l run)
    print("\n## Acceleration test (Hu et al. Definition 1: curvature of log(-log PU)), on the fitting points\n")
    fitting = np.asarray(per_ckpt.index.map(size_of).isin(FIT_SIZES))
    fit_test = acceleration_test(np.log(per_ckpt.flops.to_numpy()), per_ckpt.pass_rate.to_numpy(), fitting=fitting)
    print(f"on ln C, the 9 xs, s, m checkpoints (the verdict): {fit_test.summary()}")
    f = per_ckpt.loc[sorted(finals, key=lambda n: per_ckpt.loc[n, "params"])]
    print(f"on ln N, the finals of xs, s, m:                   {acceleration_test(np.log(f.params.to_numpy()), f.pass_rate.to_numpy()).summary()}")
    hindsight = acceleration_test(np.log(per_ckpt.flops.to_numpy()), per_ckpt.pass_rate.to_numpy())
    print(f"hindsight, NOT a forecast-time verdict (all {len(names)} checkpoints, including the held-out l run): "
          f"curvature {hindsight.curvature:+.4g} (p = {hindsight.p_value:.3g}): {hindsight.verdict}")

    total_samples = sum(s.samples for s, _ in runs.values())
    sampling_seconds = sum(sec for _, sec in runs.values())
    print(f"\ncost: {total_samples:,} PassUntil samples in {sampling_seconds:.0f} s ({total_samples / sampling_seconds:,.0f}/s), "
          f"+ {int(actual.n_samples):,} fixed samples in {fixed_seconds:.0f} s, greedy evaluation {greedy_seconds:.0f} s; "
          f"total {time.perf_counter() - started:.0f} s (2 shared CPU cores)")


if __name__ == "__main__":
    main()
