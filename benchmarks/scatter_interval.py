"""How a forecast's distribution accounts for the size scatter being estimated: the rules of
``capcast.laws.curve.SCATTER_INTERVALS`` on the development data only, each on the same draws and
splits; writes benchmarks/scatter_interval.txt.

    python benchmarks/scatter_interval.py

Rules (docs/forecasting.md "Intervals"):

* ``satterthwaite`` (the default): a t whose degrees of freedom count the estimated share of the
  variance, never fewer than sizes - parameters;
* ``confidence-distribution``: the scatter drawn from its Q-profile confidence distribution, the
  forecast the resulting scale mixture of normals (Nagashima, Noma and Furukawa 2019);
* ``posterior``: the scatter drawn from its posterior under a half-normal prior on its sd, the
  prior's scale the type-II maximum likelihood over every Pythia fit (development: 70m up to
  410m / 1b / 1.4b / 2.8b, the 9 tasks, the laws that measure a scatter), computed here; and, as
  a sensitivity row only, the simulations' own lack of fit (0.15) as the scale, which knows the
  answer (an oracle).

Simulated families: the calibration test's matrix (tests/forecasting/test_calibration.py: the
same shapes, laws, draws and seed), each (law, shape) pooled over its 4 conditions against issue
9's bounds [85%, 96%]; Pythia (fit up to 1.4b and up to 1b) and the mini-ladder: auto's and
sigmoid's MAE / coverage / median width / answered. pythia-deduped and OpenLM are not read.
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
from readers import read_pythia  # noqa: E402

import capcast.laws.curve as curve  # noqa: E402
import capcast.laws.scatter as scatter  # noqa: E402
from capcast.forecasting.backtest import score_rows  # noqa: E402
from capcast.laws.base import FIT_REFUSALS  # noqa: E402
from capcast.tables.readers.pythia import BACKTEST_TASKS  # noqa: E402
from capcast.tables.scores import build_series, read_scores  # noqa: E402

# the calibration test's matrix
SHAPES, CONDITIONS, SEED = calibration.BOUNDED_SHAPES, calibration.BOUNDED_CONDITIONS, calibration.BOUNDED_SEED
SCATTER_LAWS = ("sigmoid", "logacc-power", "saturating-power", "ladder", "loss-error")
SPLITS = ("1.4b", "1b", "mini-ladder")
ORACLE_SD = 0.15


def pythia_scatter_evidence() -> list:
    """Every Pythia (development) fit's :class:`capcast.laws.scatter.ScatterEvidence`."""
    table = read_scores(read_pythia(deduped=True).query("family == 'pythia'"))
    registry = fa.REGISTRY
    out = []
    for cutoff in ("410m", "1b", "1.4b", "2.8b"):
        rows = table[table["model"].isin([f"pythia-{s}" for s in fa.SIZES[: fa.SIZES.index(cutoff) + 1]])]
        for task, metric in BACKTEST_TASKS.items():
            series = build_series(rows, task, metric)
            for law in SCATTER_LAWS:
                try:
                    fit = registry.law(law).fit(series)
                except FIT_REFUSALS:  # a law that refuses a task measures no scatter there
                    continue
                if getattr(fit, "scatter_evidence", None) is not None:
                    out.append(fit.scatter_evidence)
    return out


def type_two_ml_scale(evidence: list, scales=(0.03, 0.05, 0.07, 0.1, 0.12, 0.15, 0.2, 0.3, 0.5)) -> tuple[float, dict]:
    """The half-normal scale of the scatter's sd that maximises the marginal restricted likelihood
    summed over ``evidence`` (each fit's likelihood integrated over the prior on a grid)."""
    tau = np.concatenate([[0.0], np.logspace(-4, np.log10(5.0), 300)])
    loglik = np.array([[e.restricted_loglik(t * t) for t in tau] for e in evidence])
    top = loglik.max(axis=1, keepdims=True)
    totals = {}
    for scale in scales:
        prior = np.sqrt(2 / np.pi) / scale * np.exp(-0.5 * (tau / scale) ** 2)
        density = np.exp(loglik - top) * prior
        marginal = np.sum(0.5 * (density[:, 1:] + density[:, :-1]) * np.diff(tau), axis=1)
        totals[scale] = float(np.sum(top[:, 0] + np.log(marginal)))
    return max(totals, key=totals.get), totals


def _condition(job):
    rule, shape, lof, regime = job
    warnings.simplefilter("ignore")
    draws, laws = SHAPES[shape]
    return job, calibration.measure(shape, lof, regime, draws, laws=laws, seed=SEED)


def _split(job):
    rule, split = job
    warnings.simplefilter("ignore")
    laws = ("auto", "sigmoid")
    if split == "mini-ladder":
        return job, fa.miniladder_rows(laws)
    return job, fa.pythia_split_rows("pythia", split, laws)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=HERE / "scatter_interval.txt")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    evidence = pythia_scatter_evidence()
    scale, totals = type_two_ml_scale(evidence)
    rules = {"satterthwaite": ("satterthwaite", scatter.SCATTER_PRIOR_SD),
             "confidence-distribution": ("confidence-distribution", scatter.SCATTER_PRIOR_SD),
             f"posterior, prior sd {scale:g} (Pythia)": ("posterior", scale),
             f"posterior, prior sd {ORACLE_SD:g} (oracle: the simulations' own)": ("posterior", ORACLE_SD)}
    measured, splits = {}, {}
    default = curve.SCATTER_INTERVAL, scatter.SCATTER_PRIOR_SD
    for rule in rules.values():
        # a fresh pair of processes per rule, forked with it set: auto's fits (cached per process)
        # read the rule when its folds check each member's interval
        curve.SCATTER_INTERVAL, scatter.SCATTER_PRIOR_SD = rule
        with multiprocessing.get_context("fork").Pool(2) as pool:
            # the costliest shapes come first in SHAPES, so neither process is left alone at the end
            measured.update(pool.map(_condition, [(rule, shape, lof, regime) for shape in SHAPES for lof, regime in CONDITIONS],
                                     chunksize=1))
            splits.update(pool.map(_split, [(rule, s) for s in SPLITS], chunksize=1))
    curve.SCATTER_INTERVAL, scatter.SCATTER_PRIOR_SD = default
    lines = ["# python benchmarks/scatter_interval.py: how forecasts account for the estimated size scatter, on the development data",
             f"# the posterior's prior scale by type-II maximum likelihood over {len(evidence)} Pythia fits: "
             + ", ".join(f"{s:g} {t:.1f}" for s, t in totals.items()) + f" (log marginal likelihood): {scale:g}",
             "", "# simulated families (the calibration test's matrix, seed 101): per (law, shape) pooled 90% coverage over "
             "4 conditions (answered draws), median width (pts), within [85%, 96%]; auto: median over conditions of its width / the true law's"]
    cases = [(law, shape) for shape, (_, laws) in SHAPES.items() for law in laws]
    lines.append("rule | " + " | ".join(f"{law} on {shape}" for law, shape in cases) + " | cases within bounds")
    for name, rule in rules.items():
        cells, inside = [], 0
        for law, shape in cases:
            per = [measured[(rule, shape, lof, regime)] for lof, regime in CONDITIONS]
            coverage, n = calibration.pooled([f[law] for f in per])
            width = np.median([100 * f[law]["median_width"] for f in per])
            ok = 0.85 <= coverage <= 0.96
            inside += ok
            cell = f"{100 * coverage:.1f}% ({n}), {width:.1f} pts{'' if ok else ' OUT'}"
            if law == "auto":
                ratio = np.median([f["auto"]["median_width"] / f[SHAPES[shape][1][0]]["median_width"] for f in per])
                cell += f", {ratio:.2f}x"
            cells.append(cell)
        lines.append(f"{name} | " + " | ".join(cells) + f" | {inside}/{len(cases)}")
    lines += ["", "# development splits: MAE (pts) / 90% coverage / median width (pts) / answered",
              "rule | " + " | ".join(f"{law} {split}" for split in SPLITS for law in ("auto", "sigmoid"))]
    for name, rule in rules.items():
        cells = []
        for split in SPLITS:
            for law in ("auto", "sigmoid"):
                s = score_rows(r for r in splits[(rule, split)] if r["method"] == law)
                cells.append("-" if s.mae is None else
                             f"{s.mae:.2f} / {100 * s.coverage:.0f}% / {s.median_width:.1f} / {s.n}/{s.n + s.unpredictable + s.failed}")
        lines.append(f"{name} | " + " | ".join(cells))
    lines.append(f"# {time.perf_counter() - started:.0f} s")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
