"""How often the signal test's trend check (``capcast.laws.signal.rises_with_compute``) calls a
family's scores rising, with the rank test alone (Spearman over one point per compute: seeds
averaged) and with the noise-weighted slope test beside it (the rule since stop 35), on simulated
families of final checkpoints:

* 4 or 5 sizes half a decade of compute apart, 1 or 2 runs (seeds, scored on the same items) a
  size, 500 or 1,000 items, a per-size lack of fit of sd 0 or 0.15 in logit;
* "flat": the true rate is the same at every size (0.30, 0.60 or 0.85): the share called rising
  is the test's false-alarm rate;
* "rise N": the true rate climbs N points over the sizes, linearly in logit around 0.8 (as
  OPT's SciQ, 0.75 -> 0.86 over 4 sizes): the share called rising is its power.

A false alarm costs little where the largest size is above chance (the laws fit the series and
their folds judge them) and turns a persistence forecast into a refusal near chance; a miss
forecasts persistence for a rising series, as OPT's SciQ was (85.8 against 90-93).

    python benchmarks/trend_test.py [--draws 1000]   # writes benchmarks/trend_test.txt (~2 min)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.special import expit, logit

from capcast.laws.base import Series
from capcast.laws.signal import rises_with_compute

SEED = 7
LEVELS = {"flat 0.30": (0.30, 0.0), "flat 0.60": (0.60, 0.0), "flat 0.85": (0.85, 0.0),
          "rise 5": (0.80, 0.05), "rise 10": (0.80, 0.10), "rise 15": (0.80, 0.15)}


def family(rng: np.random.Generator, sizes: int, runs: int, items: int, lack_of_fit: float, centre: float, rise: float) -> Series:
    """One simulated family's final checkpoints (chance 0.25)."""
    log_compute = 19.0 + 0.5 * np.arange(sizes)
    # the true rate climbs ``rise`` points from the first size to the last, linearly in logit
    ends = logit(np.clip([centre - rise / 2, centre + rise / 2], 1e-3, 1 - 1e-3))
    true = expit(np.linspace(*ends, sizes) + rng.normal(0, lack_of_fit, sizes) if lack_of_fit else np.linspace(*ends, sizes))
    params = np.repeat(10.0 ** (log_compute / 2 - 1), runs)
    flops = np.repeat(10.0**log_compute, runs)
    value = rng.binomial(items, np.repeat(true, runs)) / items
    names = np.array([f"s{i}-r{r}" for i in range(sizes) for r in range(runs)], dtype=object)
    return Series(task="sim", metric="acc", model=names, run=names, params=params, tokens=flops / (6 * params),
                  flops=flops, value=value, n_items=np.full(len(value), items), chance=0.25)


def measure(draws: int) -> list[str]:
    rng = np.random.default_rng(SEED)
    lines = [f"{'truth':10s} {'sizes':>5s} {'runs':>4s} {'items':>5s} {'lof':>4s}  {'rank test alone':>15s}  {'rank or slope':>13s}"]
    for label, (centre, rise) in LEVELS.items():
        for sizes in (4, 5):
            for runs in (1, 2):
                for items in (500, 1000):
                    for lack_of_fit in (0.0, 0.15):
                        rank = either = 0
                        for _ in range(draws):
                            trend = rises_with_compute(family(rng, sizes, runs, items, lack_of_fit, centre, rise))
                            rank += bool(trend.rho > 0 and trend.pvalue <= 0.2)
                            either += trend.rising
                        lines.append(f"{label:10s} {sizes:5d} {runs:4d} {items:5d} {lack_of_fit:4.2f}  {rank / draws:15.3f}  {either / draws:13.3f}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("trend_test.txt"))
    args = parser.parse_args()
    started = time.perf_counter()
    lines = [f"# python benchmarks/trend_test.py --draws {args.draws} (seed {SEED}): share of simulated families called rising",
             "# flat: false alarms; rise N: power (N points over the sizes around 0.80); lof: per-size lack of fit, sd in logit",
             *measure(args.draws)]
    lines.append(f"# {time.perf_counter() - started:.0f} s")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
