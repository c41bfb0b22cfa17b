"""What a scores table without a ``chance`` column costs, and what capcast's table of lm-eval chance
levels (:mod:`capcast.tasks.chance`) gives back.

    python benchmarks/chance_fallback.py [OUT.txt]

lm-eval's ``results*.json`` record no chance level, so a family imported from them
(``capcast import lm-eval-results``) has an empty column, as do most hand-written tables. Per
split, ``auto``'s MAE (points), 90% coverage and answered share, with:

- ``recorded``: the chance the readers record (Pythia's from its tasks, OpenLM's from its
  ``eval_metadata.csv``);
- ``emptied, floor 0``: the column emptied and no fallback (every floor at 0: what capcast did
  before the table);
- ``emptied, lm-eval table``: the column emptied, each task's chance from capcast's table where it
  knows the task's name (0 elsewhere).

Pythia's task names are lm-eval's. OpenLM's come from LLM Foundry: only some match an lm-eval name
(arc_easy, piqa, copa, boolq, ...), and one that matches may count its choices differently
(Foundry's commonsense_qa has 4, lm-eval's 5), so the last OpenLM row shows what the table does for
a table whose names are not lm-eval's. Nothing here was tuned: the table is lm-eval's configs.
Splits: Pythia fit up to 1.4b (development), pythia-deduped and OpenLM (validation), as in
benchmarks/forecast_accuracy.py.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import numpy as np

import capcast.tables.scores as scores
from capcast.forecasting.backtest import score_rows

sys.path.insert(0, str(Path(__file__).resolve().parent))
import forecast_accuracy as fa  # noqa: E402

VARIANTS = ("recorded", "emptied, floor 0", "emptied, lm-eval table")


def split_rows(split: str, variant: str) -> list[dict]:
    emptied = variant != "recorded"
    known = scores.known_chance
    read_pythia, read_openlm = fa.read_pythia, fa.read_openlm
    try:
        if variant == "emptied, floor 0":
            scores.known_chance = lambda task, metric: None
        if emptied:
            fa.read_pythia = lambda deduped=True: read_pythia(deduped=deduped).assign(chance=np.nan)
            fa.read_openlm = lambda: read_openlm().assign(chance=np.nan)
        if split.startswith("openlm"):
            return fa.openlm_rows(split.split(" ", 1)[1], laws=("auto",))
        family = split.split(" ", 1)[0]
        return fa.pythia_split_rows(family, "1.4b", laws=("auto",))
    finally:
        scores.known_chance, fa.read_pythia, fa.read_openlm = known, read_pythia, read_openlm


def main(out: Path) -> None:
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    splits = {"Pythia (development)": ["pythia"], "pythia-deduped (validation)": ["pythia-deduped"],
              "OpenLM, 3 sets (validation)": [f"openlm {s}" for s in ("c4_original", "rpj", "rw_original")]}
    lines = [f"# python benchmarks/chance_fallback.py: auto without a chance column (see the docstring)",
             "split | chance | MAE (pts) | 90% coverage | answered"]
    for label, parts in splits.items():
        for variant in VARIANTS:
            rows = [r for part in parts for r in split_rows(part, variant)]
            s = score_rows(rows)
            lines.append(f"{label} | {variant} | {s.mae:.2f} | {s.coverage:.0%} | {s.n}/{len(rows)}")
            print(lines[-1], flush=True)
    lines.append(f"# {time.perf_counter() - started:.0f} s")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_suffix(".txt"))
