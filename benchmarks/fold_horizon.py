"""How far ``auto``'s folds forecast: the rules of ``capcast.laws.auto.FOLD_HORIZONS`` on the
development data only, each on the same forecasts; writes benchmarks/fold_horizon.txt.

    python benchmarks/fold_horizon.py [--draws 30]

The same splits and report as benchmarks/auto_weighting.py (Pythia fit up to 410m / 1b / 1.4b /
2.8b and 1.4b on final checkpoints, the mini-ladder; simulated families). Rules: "next" (the
default: fold j fits the sizes below size j and forecasts size j) and "every-later" (the same fold
fits also forecast every larger size, and a candidate's fold error is the mean over all of them,
so that the weights see extrapolations as long as the target's: Pythia's 6.9b and 12b lie 0.7-1
decade of parameters past 1.4b, the next-size folds 0.2-0.4). The folds' variance check reads the
next-size forecasts under both. pythia-deduped and OpenLM (validation) are not read.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import auto_weighting  # noqa: E402

from capcast.laws.auto import FOLD_HORIZONS  # noqa: E402

SHAPES = ("law", "saturating", "loss-exp", "loss")


def main() -> None:
    auto_weighting.option_benchmark("fold_horizon", "how far auto's folds forecast, on the development data", "fold_horizon",
                                    FOLD_HORIZONS, SHAPES, "fold horizon")


if __name__ == "__main__":
    main()
