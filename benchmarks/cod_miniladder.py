"""COD on the reference mini-ladder: ``capcast backtest`` with the largest size (l) held out, COD beside the other laws.

The committed ladder (capcast/reference/, docs/reference-family.md): sizes xs, s, m fit (both seeds, 25/50/100%
of each run: 18 checkpoints); the l size is held out whole, and the targets are the final checkpoints of its two
runs, ``l-s0-step2441`` and ``l-s1-step2441`` (6.4x the compute of m's final checkpoint).

Tasks, evaluated with ``capcast eval``'s library into one store (resumable):

* multiple choice, per-choice records (``p_gold`` features, ``acc`` forecast): ``ref_facts`` (160 items, smooth),
  ``ref_carry`` (160 items, at chance until m, emergent in l);
* generative with repeats (pass-rate features): ``ref_add3`` (100 items, 16 samples at T=1, the demo's task) and
  ``cod_add2_t1`` (this benchmark's own task: the first 150 of ``ref_add2``'s items, 16 samples at T=1);
* generative greedy (0/1 per instance, the 3-checkpoint smoothing gives thirds): ``ref_add2`` (450 items).

The committed ``cod_miniladder.txt`` was re-run on the current code (2026-12-02); FIT_SIZES and the held-out l are
those of the first run (sizes sm1-sm3, added later, are not fitted here).

Sized for ~10 minutes on 2 shared cores: 16 repeats (not more) per sampled item, ``ref_sort`` and the other greedy
tasks left out (each COD fit on the ladder's tiny compute takes ~10 s per cluster), and the no-thresholds ablation's
bootstrap cut to ``ABLATION_BOOTSTRAP`` replicates (the backtest's COD keeps the default 200).

Backtests: ``capcast.api.backtest(store=...)`` (= ``capcast backtest --store DIR``) for multiple choice with
cod, auto, sigmoid, logit-linear on ``acc``; ``capcast.api.backtest(samples=...)`` (= ``capcast backtest
--samples``) for the generative tasks with cod, auto, sigmoid, logit-linear and the PassUntil laws on ``pass_rate``.
COD runs with the paper's constants (methods.md; the defaults of capcast.cod), nothing tuned here.

Then COD's insides on the fitting checkpoints: clusters, fits, kept/dropped and why; the signal test on the whole
benchmark and on COD's predictable subset; what COD would forecast if the whole-benchmark signal test did not
stop it, and the paper's "no thresholds" ablation.

    python benchmarks/cod_miniladder.py [--store DIR] > benchmarks/cod_miniladder.txt
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace
from functools import partial

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import pandas as pd

import capcast
from capcast import api
from capcast.cod.cluster_law import Thresholds, keep_reason
from capcast.cod.instances import from_store
from capcast.cod.pipeline import CODConfig, fit_cod
from capcast.evaluation.runner import evaluate_family
from capcast.evaluation.scores import scores_from_store
from capcast.forecasting.samples import samples_to_scores
from capcast.laws.base import NotPredictable
from capcast.laws.signal import check_signal
from capcast.plugins.registry import load_registry
from capcast.reference import items
from capcast.reference.ladder import default_ladder_dir
from capcast.reference.tasks import build_generative, exact_answer
from capcast.tables.scores import build_series

MC_TASKS = ("ref_facts", "ref_carry")
SAMPLED_TASKS = ("ref_add3", "cod_add2_t1")
GREEDY_TASKS = ("ref_add2",)
REPEATS = 16
MC_METHODS = ("cod", "auto", "sigmoid", "logit-linear")
GEN_METHODS = ("cod", "auto", "sigmoid", "logit-linear", "passuntil", "passuntil_compute", "passuntil_instance")
FIT_SIZES = ("xs", "s", "m")
TARGETS = ("l-s0-step2441", "l-s1-step2441")
LEVEL = 0.9
NONE = Thresholds(-np.inf, -np.inf, -np.inf, np.inf)
ABLATION_BOOTSTRAP = 50
ADD2_SAMPLED_ITEMS = 150  # the first 150 of ref_add2's items (ref_add2 itself has 450 since issue 17)


def registry_with_sampled_add2():
    registry = load_registry()
    registry.tasks["cod_add2_t1"] = capcast.Task(
        name="cod_add2_t1", lm_eval_config=partial(build_generative, name="cod_add2_t1", make=partial(items.add2_items, ADD2_SAMPLED_ITEMS), sample=True),
        kind="generate", chance=0.0, checker=exact_answer, repeats=REPEATS,
        description=f"benchmarks/cod_miniladder.py: ref_add2's items, {REPEATS} samples at T=1")
    return registry


def evaluate(store: str) -> float:
    started = time.perf_counter()
    evaluate_family(default_ladder_dir() / "ladder.yaml", [*MC_TASKS, *SAMPLED_TASKS, *GREEDY_TASKS], store_dir=store,
                    batch_size=64, device="cpu", registry=registry_with_sampled_add2(), progress=False)
    return time.perf_counter() - started


def fmt(v, digits=3) -> str:
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.{digits}f}"


def backtest_table(report, title: str) -> pd.DataFrame:
    rows = pd.DataFrame(report.rows)
    print(f"\n## {title}\n")
    print("| task | method (law) | target | forecast | 90% interval | actual | error (pts) | status / reason |")
    print("|---|---|---|---|---|---|---|---|")
    for _, r in rows.sort_values(["task", "model"], kind="stable").iterrows():
        ok = r["forecast"] is not None and np.isfinite(r["forecast"])
        err = 100 * abs(r["forecast"] - r["actual"]) if ok else None
        interval = f"{fmt(r['lower'])} to {fmt(r['upper'])}" if ok else ""
        reason = "" if ok else str(r["reason"])[:150]
        law = r["method"] if r["law"] == r["method"] else f"{r['method']} ({r['law']})"
        print(f"| {r['task']} | {law} | {r['model']} | {fmt(r['forecast']) if ok else ''} | {interval} | {fmt(r['actual'])} | "
              f"{fmt(err, 2)} | {r['status'] if ok else r['status'] + ': ' + reason} |")
    print("\n| method | MAE (pts) | max error | coverage | forecasts | not predictable | failed |")
    print("|---|---|---|---|---|---|---|")
    for name, s in report.methods.items():
        print(f"| {name} | {fmt(s.mae, 2)} | {fmt(s.max_error, 2)} | {'' if s.coverage is None else f'{100 * s.coverage:.0f}%'} | "
              f"{s.n} | {s.unpredictable} | {s.failed} |")
    return rows


def fitting_checkpoints(scores: pd.DataFrame) -> pd.DataFrame:
    fit = scores[scores["model"].str.split("-").str[0].isin(FIT_SIZES)]
    return fit[["run", "model", "tokens"]].drop_duplicates()


def signal_verdict(series) -> str:
    try:
        check_signal(series)
        return "signal"
    except NotPredictable as exc:
        return f"no signal ({str(exc)[:110]})"


def cod_insides(task: str, metric: str, scores: pd.DataFrame, instances: pd.DataFrame, actuals: dict) -> None:
    """One fit without thresholds (every cluster kept): the paper's verdict per cluster from the same fits."""
    fit_scores = scores[scores["model"].str.split("-").str[0].isin(FIT_SIZES)]
    checkpoints = fitting_checkpoints(fit_scores)
    whole = build_series(fit_scores[fit_scores["task"] == task], task, metric)
    result = fit_cod(instances, task, metric=metric, checkpoints=checkpoints,
                     config=CODConfig(thresholds=NONE, bootstrap=ABLATION_BOOTSTRAP))
    counts = result.counts()
    print(f"\n### {task} ({result.feature} features, forecast {metric})\n")
    print(f"{counts['instances']} instances: {counts['cluster']} in clusters, {counts['outlier']} outliers, "
          f"{counts['never_solved']} never solved, {counts['missing']} missing; MeanShift radius {fmt(result.radius)}, "
          f"{result.rounds} rounds")
    paper_kept = 0
    for c in result.clusters:
        f = c.fit
        kept, reason = keep_reason(f, Thresholds(), result.checkpoints["flops"].to_numpy(float), result.config.compute_unit)
        paper_kept += kept
        print(f"- cluster {c.label}: {c.size} instances, {metric} {c.curve[0]:.3f} at the first fitting checkpoint, "
              f"{c.curve[-1]:.3f} at the last; a={f.a:.3g} b={f.b:.3g} c={f.c:.3g} g={f.g:.3g} rmse={f.rmse:.3g}; "
              f"paper's filter: {'KEPT' if kept else 'dropped: ' + reason}")
    print(f"- paper's filter keeps {paper_kept} of {len(result.clusters)} clusters")
    print(f"- signal test, whole benchmark ({metric}): {signal_verdict(whole)}")
    if not result.clusters:
        print("- no cluster: COD has nothing to forecast from, with or without thresholds")
        return
    order = pd.DataFrame({"model": whole.model}).merge(
        result.checkpoints.reset_index(drop=True).reset_index()[["model", "index"]], on="model")["index"].to_numpy()
    sub = replace(whole, value=np.asarray(result.subset_scores, float)[order],
                  n_items=None if whole.n_items is None else np.full(len(whole), float(counts["subset"])))
    print(f"- signal test on the no-thresholds subset ({counts['subset']} instances): {signal_verdict(sub)}")
    for name in TARGETS:
        t = scores[(scores["model"] == name)].iloc[0]
        mean, lo, hi = result.predict(float(t["flops"]), LEVEL)
        print(f"- COD without thresholds, no signal test -> {name}: {mean:.3f} ({lo:.3f} to {hi:.3f}; "
              f"{ABLATION_BOOTSTRAP} bootstrap replicates), actual {actuals[name]:.3f}, error {100 * abs(mean - actuals[name]):.2f} pts")


def planted_table(n_rise: int, n_flat: int, seed: int, noise: float = 0.04) -> pd.DataFrame:
    """A synthetic multiple-choice instances table at Pythia-like compute (1e18-1e21 FLOPs, where the paper's
    thresholds mean what they meant): ``n_rise`` items follow COD's law (a=2, b=0.3, c=0.1, chance 0.25), ``n_flat``
    stay at chance; p_gold noise N(0, ``noise``) per item and checkpoint. Sizes 1e8-1e9 fit, 3e9 is the target."""
    rng = np.random.default_rng(seed)
    rows = []
    for params in (1e8, 2e8, 4e8, 1e9, 3e9):
        for frac in (0.25, 0.5, 1.0):
            tokens = 20 * params * frac
            flops = 6 * params * tokens
            y = 0.25 + 0.75 * np.exp(-2 * (flops / 1e18) ** -0.3 - 0.1)
            p = np.clip(np.concatenate([np.full(n_rise, y), np.full(n_flat, 0.25)]) + rng.normal(0, noise, n_rise + n_flat), 0.01, 0.99)
            rows += [dict(family="syn", run=f"r{params:.0e}", model=f"r{params:.0e}-{frac}", params=params, tokens=tokens, flops=flops,
                          step=int(1000 * frac), task="mc", doc_id=d, kind="multiple_choice", chance=0.25, p_gold=v,
                          acc=float(v > 0.5), acc_norm=float(v > 0.5), pass_rate=np.nan) for d, v in enumerate(p)]
    return pd.DataFrame(rows)


def signal_test_placement() -> None:
    """Where should ``--method cod``'s signal test look: the whole benchmark (today) or COD's subset?"""
    from capcast.cod.law import cod_law
    from capcast.laws.base import Target
    from capcast.tables.series import Series

    print("\n## Signal test on the whole benchmark or on COD's subset? (synthetic, planted signal)\n")
    print("160 four-choice items, p_gold per item and checkpoint; 15 checkpoints of 1e8-1e9 params fit, target 3e9 "
          "(final). 'planted': 24 items follow COD's law, 136 stay at chance; 'null': all 160 at chance.\n")
    print("| case | seed | whole-benchmark signal test | COD (paper's filter) | subset signal test | COD forecast (90%) | actual | error (pts) |")
    print("|---|---|---|---|---|---|---|---|")
    for case, (n_rise, n_flat) in (("planted", (24, 136)), ("null", (0, 160))):
        for seed in range(3):
            table = planted_table(n_rise, n_flat, seed)
            ck = (table[table["params"] < 3e9].groupby(["run", "model", "params", "tokens", "flops", "step"], as_index=False)["p_gold"]
                  .mean().sort_values("flops"))
            whole = Series(task="mc", metric="p_gold", model=ck["model"].to_numpy(object), run=ck["run"].to_numpy(object),
                           params=ck["params"].to_numpy(float), tokens=ck["tokens"].to_numpy(float), flops=ck["flops"].to_numpy(float),
                           value=ck["p_gold"].to_numpy(float), n_items=np.full(len(ck), 160.0), chance=0.25,
                           step=ck["step"].to_numpy(float), family="syn")
            target = table[(table["params"] == 3e9) & (table["step"] == 1000)]
            actual = float(target["p_gold"].mean())
            try:
                fit = cod_law(table).fit(whole)
            except NotPredictable as exc:
                print(f"| {case} | {seed} | {signal_verdict(whole)[:60]} | {str(exc)[:70]} | | | {actual:.3f} | |")
                continue
            r = fit.result
            rank = np.argsort(np.argsort(ck["flops"].to_numpy()))
            sub = replace(whole, value=np.asarray(r.subset_scores, float)[rank], n_items=np.full(len(ck), float(r.subset_size)))
            pred = fit.predict(Target(name="t", params=3e9, tokens=6e10, flops=float(target["flops"].iloc[0])), LEVEL)
            print(f"| {case} | {seed} | {signal_verdict(whole)[:60]} | kept {len(r.kept)} cluster(s), {r.subset_size} items | "
                  f"{signal_verdict(sub)[:40]} | {pred.mean:.3f} ({pred.lower:.3f} to {pred.upper:.3f}) | {actual:.3f} | "
                  f"{100 * abs(pred.mean - actual):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="/tmp/capcast-cod-miniladder")
    args = parser.parse_args()
    started = time.perf_counter()
    eval_seconds = evaluate(args.store)
    print("# COD on the reference mini-ladder (benchmarks/cod_miniladder.py)\n")
    print(f"python {platform.python_version()}, capcast {capcast.__version__}, {os.cpu_count()} CPUs; store {args.store}; "
          f"evaluation {eval_seconds:.0f} s (0 when reused)")
    print(f"fit: sizes {', '.join(FIT_SIZES)} (18 checkpoints); held out: size l (whole runs); targets {', '.join(TARGETS)}; "
          f"COD with the paper's constants, {CODConfig().bootstrap} bootstrap replicates; {int(LEVEL * 100)}% intervals")

    registry = registry_with_sampled_add2()
    mc = api.backtest(store=args.store, methods=list(MC_METHODS), tasks=list(MC_TASKS), metric="acc", registry=registry)
    mc_rows = backtest_table(mc, "Multiple choice: `capcast backtest --store DIR --metric acc` (COD on per-choice p_gold)")
    samples = api.samples(args.store)
    gen_tasks = [*SAMPLED_TASKS, *GREEDY_TASKS]
    gen = api.backtest(samples=samples, methods=list(GEN_METHODS), tasks=gen_tasks, registry=registry)
    gen_rows = backtest_table(gen, "Generative: `capcast backtest --samples FILE` (pass_rate; COD on per-instance pass rates)")

    print("\n## COD's insides (fitting checkpoints only)")
    scores = scores_from_store(args.store)
    instances = from_store(args.store)
    gen_scores = samples_to_scores(samples)
    for task, metric, table, rows in ([(t, "acc", scores, mc_rows) for t in MC_TASKS]
                                      + [(t, "pass_rate", gen_scores, gen_rows) for t in gen_tasks]):
        actual = rows[rows["task"] == task].drop_duplicates("model").set_index("model")["actual"].to_dict()
        cod_insides(task, metric, table[table["metric"] == metric], instances, actual)
    signal_test_placement()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
