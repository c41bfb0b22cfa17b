"""How ``auto`` should weight its candidates: the rules of ``capcast.laws.auto.WEIGHTINGS`` on the
development data only, each on the same forecasts; writes benchmarks/auto_weighting.txt.

    python benchmarks/auto_weighting.py [--draws 30]

1. Pythia (development), fit up to 410m / 1b / 1.4b / 2.8b (every checkpoint) and up to 1.4b on
   each run's final checkpoint only ("1.4b-final"), forecast 6.9b and 12b on the 9 tasks of
   benchmarks/forecast_accuracy.py; the mini-ladder (development), fit
   xs..sm3, forecast both runs of m and l. Per rule: auto's MAE, 90% coverage, median width and
   answered forecasts, and auto against logacc-power on the forecasts both answered (the issue's
   comparison). Only the weights differ; the answered forecasts can too (the width rule reads the
   mixture's interval).
2. Simulated families (benchmarks/calibration.py's "law", "saturating" and "loss-exp" shapes,
   ``--draws`` per condition, seed 101 as tests/forecasting/test_calibration.py): pooled coverage
   and auto's median width over the true law's, per rule.

pythia-deduped and OpenLM (validation) are not read: the rule is chosen here, then reported there
by benchmarks/forecast_accuracy.py.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import calibration  # noqa: E402
import forecast_accuracy as fa  # noqa: E402

from capcast.forecasting.backtest import score_rows  # noqa: E402
from capcast.laws.auto import WEIGHTINGS  # noqa: E402
from capcast.plugins.builtin.laws import LazyAutoLaw  # noqa: E402
from capcast.plugins.registry import load_registry  # noqa: E402

RULES = tuple(WEIGHTINGS)
# "1.4b-final": fit up to 1.4b on each run's final checkpoint only (the shape of most public results)
SPLITS = ("1.4b", "410m", "1b", "2.8b", "1.4b-final", "mini-ladder")
SHAPES = ("law", "saturating", "loss-exp")
SEED = 101


class _Registry:
    """The capcast registry plus ``auto`` under each variant (name -> AutoLaw keyword arguments),
    named ``auto:<name>``."""

    def __init__(self, variants: dict[str, dict]) -> None:
        self.base = load_registry()
        auto = self.base.law("auto")
        self.extra = {f"auto:{name}": LazyAutoLaw(auto.target, f"auto:{name}", auto.description, kwargs={**auto.kwargs, **options})
                      for name, options in variants.items()}

    def law(self, name: str):
        return self.extra[name] if name in self.extra else self.base.law(name)

    def __getattr__(self, attribute: str):
        return getattr(self.base, attribute)


def _split(job: tuple[str, dict]) -> tuple[str, list[dict]]:
    warnings.simplefilter("ignore")
    split, variants = job
    fa.REGISTRY = _Registry(variants)  # the splits' backtests read the module's registry
    methods = tuple(f"auto:{name}" for name in variants) + ("logacc-power",)
    if split == "mini-ladder":
        return split, fa.miniladder_rows(laws=methods)
    cutoff, _, final = split.partition("-")
    return split, fa.pythia_split_rows("pythia", cutoff, methods, final_only=bool(final))


def _shape(job: tuple[str, float, str, int, dict]) -> tuple[tuple, dict]:
    warnings.simplefilter("ignore")
    shape, lof, regime, draws, variants = job
    true_law = calibration.TRUE_LAW[shape]
    figures = calibration.measure(shape, lof, regime, draws, laws=(true_law,) + tuple(f"auto:{name}" for name in variants),
                                  seed=SEED, registry=_Registry(variants))
    return (shape, lof, regime), figures


def _cell(score) -> str:
    if score.mae is None:
        return "-"
    return f"{score.mae:.2f} / {100 * score.coverage:.0f}% / {score.median_width:.1f} / {score.n}"


def compare(variants: dict[str, dict], shapes: tuple[str, ...], draws: int, what: str) -> list[str]:
    """The report's lines: each ``auto`` variant on the development splits and the simulated
    ``shapes`` (``draws`` per condition); ``what`` heads the table's first column."""
    conditions = [(shape, lof, regime, draws, variants) for shape in shapes for lof, regime in
                  [(c[1], c[2]) for c in calibration.CONDITIONS if c[0] == shape]]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        splits = dict(pool.map(_split, [(s, variants) for s in SPLITS]))
        measured = dict(pool.map(_shape, conditions))
    lines = ["# cells: MAE (pts) / 90% coverage / median width (pts) / answered; Pythia splits named by the largest fitting size",
             "", f"{what} | " + " | ".join(SPLITS) + " | common set vs logacc-power (MAE auto vs logacc-power, forecasts)"]
    for variant in variants:
        name = f"auto:{variant}"
        cells = [_cell(score_rows(r for r in splits[s] if r["method"] == name)) for s in SPLITS]
        common = []
        for s in SPLITS:
            keys, a, b = fa.on_common_set(splits[s], name, "logacc-power")
            common.append(f"{s} {a.mae:.2f} vs {b.mae:.2f} ({len(keys)})" if a.mae is not None else f"{s} -")
        lines.append(f"{variant} | " + " | ".join(cells) + " | " + "; ".join(common))
    # Each variant against the first on the forecasts both answered, every split pooled: a fit is
    # (split, family, task, metric). The splits share tasks and nest their data (Pythia up to 410m
    # is inside Pythia up to 1b), so the fits are not independent and the standard error is too small.
    first = f"auto:{next(iter(variants))}"
    pooled_rows = [{**r, "family": f"{s}:{r['family']}"} for s in SPLITS for r in splits[s]]
    lines += ["", f"# {what} against {next(iter(variants))}, every split pooled (paired absolute error on the forecasts both "
              "answered; the splits share tasks and nest their data, so the standard error is too small)"]
    for variant in list(variants)[1:]:
        diff = fa.paired_difference(pooled_rows, f"auto:{variant}", first)
        lines.append(f"{variant}: " + ("no forecast both answered" if diff is None else diff.describe()))
    lines += ["", f"# simulated families (benchmarks/calibration.py shapes, {draws} draws per condition, seed {SEED}): "
              "pooled coverage (answered draws), median over conditions of auto's median width / the true law's"]
    lines.append(f"{what} | " + " | ".join(shapes))
    for variant in variants:
        name = f"auto:{variant}"
        cells = []
        for shape in shapes:
            per = [f for (s, _, _), f in measured.items() if s == shape]
            coverage, n = calibration.pooled([f[name] for f in per])
            ratio = np.median([f[name]["median_width"] / f[calibration.TRUE_LAW[shape]]["median_width"] for f in per])
            cells.append(f"{100 * coverage:.1f}% ({n}), width {ratio:.2f}x")
        lines.append(f"{variant} | " + " | ".join(cells))
    return lines


def report(script: str, title: str, draws: int, lines_for) -> None:
    """A rule benchmark's command line: ``--draws`` (default ``draws``) and ``--out`` (default
    benchmarks/<script>.txt); writes and prints a heading, ``lines_for(draws)`` and the time taken."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=draws, help="simulated families per condition")
    parser.add_argument("--out", type=Path, default=HERE / f"{script}.txt")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    lines = [f"# python benchmarks/{script}.py --draws {args.draws}: {title}"] + lines_for(args.draws)
    lines.append(f"# {time.perf_counter() - started:.0f} s")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def option_benchmark(script: str, title: str, option: str, rules, shapes: tuple[str, ...], what: str = "rule",
                     draws: int = 30, more_lines=None) -> None:
    """A benchmark of ``auto`` under each of ``rules`` for one ``AutoLaw`` keyword ``option``: its
    command line and report (:func:`report`, :func:`compare`), plus ``more_lines(variants)``."""
    variants = {rule: {option: rule} for rule in rules}
    report(script, title, draws, lambda n: compare(variants, shapes, n, what) + (more_lines(variants) if more_lines else []))


def main() -> None:
    option_benchmark("auto_weighting", "auto's weighting rules on the development data", "weighting", RULES, SHAPES)


if __name__ == "__main__":
    main()
