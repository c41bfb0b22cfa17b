"""Which of ``auto``'s fold forecasts count as refusals: the rules of
``capcast.laws.auto.FOLD_REFUSAL_RULES``, each on the same forecasts; writes
benchmarks/fold_rules.txt.

    python benchmarks/fold_rules.py [--draws 25]

Rules: "too-wide" (the default since stop 30: a fold the fit's guard refuses, or whose 90%
interval spans more than half the score range, as a forecast row would say "too wide to mean
anything"), "guarded" (the rule before: only the guard's refusals) and "point-only" (as
"too-wide", and a fold fit on too few sizes to give an interval, which a user would get as "not
predictable yet" too). A refused fold takes the fold's worst answered error.

1. The development data and simulated families of benchmarks/auto_weighting.py (the same splits,
   cells and paired differences; the rule is chosen there).
2. The validation tables of benchmarks/forecast_accuracy.py (pythia-deduped fit up to 1.4b;
   OpenLM's three training sets), per rule: reported beside, not used for the choice. They are
   printed because the rules disagree there: "point-only" is worse on the development data and
   better on validation (stop 30's closing note). Choosing it on them would spend them.
"""

from __future__ import annotations

import multiprocessing
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import auto_weighting  # noqa: E402
import forecast_accuracy as fa  # noqa: E402

from capcast.forecasting.backtest import score_rows  # noqa: E402
from capcast.laws.auto import FOLD_REFUSAL_RULES  # noqa: E402

SHAPES = ("law", "saturating", "loss-exp")
VALIDATION = (("pythia-deduped", None),) + tuple(("openlm", s) for s in fa.OPENLM_SETS)


def _validation(job: tuple[tuple[str, str | None], dict]) -> tuple[tuple, list[dict]]:
    warnings.simplefilter("ignore")
    (kind, arg), variants = job
    fa.REGISTRY = auto_weighting._Registry(variants)
    methods = tuple(f"auto:{name}" for name in variants)
    if kind == "openlm":
        return (kind, arg), fa.openlm_rows(arg, methods)
    return (kind, arg), fa.pythia_split_rows("pythia-deduped", "1.4b", methods)


def validation_lines(variants: dict[str, dict]) -> list[str]:
    with multiprocessing.get_context("fork").Pool(2) as pool:
        results = dict(pool.map(_validation, [(v, variants) for v in VALIDATION]))
    deduped = results[("pythia-deduped", None)]
    openlm = [r for (kind, _), rows in results.items() if kind == "openlm" for r in rows]
    lines = ["", "# validation (reported beside, not used for the choice): cells as above",
             "rule | pythia-deduped (fit <= 1.4b, 18 forecasts) | OpenLM (46 tasks x 3 sets, 138 forecasts)"]
    for variant in variants:
        name = f"auto:{variant}"
        cells = [auto_weighting._cell(score_rows(r for r in rows if r["method"] == name)) for rows in (deduped, openlm)]
        lines.append(f"{variant} | " + " | ".join(cells))
    return lines


def main() -> None:
    auto_weighting.option_benchmark("fold_rules", "which of auto's fold forecasts are refusals", "fold_refusals",
                                    FOLD_REFUSAL_RULES, SHAPES, draws=25, more_lines=validation_lines)


if __name__ == "__main__":
    main()
