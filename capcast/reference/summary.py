"""The per-task table of docs/reference-family.md, from a scores table of the ladder (the demo's
``scores.csv``, committed as ``docs/reference-scores.csv``)::

    python -m capcast.reference.summary docs/reference-scores.csv

One row per task (its main metric), one column per size: the range over the size's two seeds of
its final checkpoint (``xs`` over all its checkpoints), and the target's own value in bold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from capcast.reference.ladder import SIZES, TARGET_SEED, TARGET_SIZE
from capcast.reference.plots import main_metric_rows
from capcast.reference.tasks import reference_tasks


def _range(values) -> str:
    low, high = min(values), max(values)
    fmt = "{:.4f}" if 0 < high < 0.01 else "{:.2f}"
    return fmt.format(low) if fmt.format(low) == fmt.format(high) else f"{fmt.format(low)}-{fmt.format(high)}"


def size_table(scores: pd.DataFrame) -> str:
    """Markdown: task x size, final checkpoints' range over seeds; the target in bold."""
    metrics = {t.name: t.default_metric for t in reference_tasks()}
    rows = main_metric_rows(scores, metrics)
    rows = rows.assign(size=rows["model"].str.split("-").str[0], seed=rows["model"].str.split("-").str[1])
    sizes = [s for s, *_ in SIZES if s in set(rows["size"])]
    head = ["task", "metric"] + [("xs (all)" if s == "xs" else f"{s} final") for s in sizes]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for task, metric in metrics.items():
        mine = rows[rows["task"] == task]
        cells = [f"`{task}`", metric]
        for size in sizes:
            run = mine[mine["size"] == size]
            final = run if size == "xs" else run[run["tokens"] == run["tokens"].max()]
            cell = _range(final["value"])
            if size == TARGET_SIZE:
                mine_seed = final["seed"] == f"s{TARGET_SEED}"
                cell = f"**{_range(final[mine_seed]['value'])}** (seed {1 - TARGET_SEED}: {_range(final[~mine_seed]['value'])})"
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else Path("docs/reference-scores.csv")
    print(size_table(pd.read_csv(path)))


if __name__ == "__main__":
    main()
