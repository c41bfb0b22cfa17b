"""Reader ``pythia-baselines``: OPT and BLOOM, the baselines of the Pythia paper, as a scores table.

Source: the ``pythia`` data folder, its ``evals`` folder, or ``evals/opt`` / ``evals/bloom``
themselves (``opt-<size>.json``, ``bloom-<size>.json``: lm-eval v0.3 JSON, zero-shot, each
model's final checkpoint only, on the Pythia suite's task list).

Rows: family ``opt`` / ``bloom``, model = run = the model's name (``opt-1.3b``); ``step`` empty;
tasks and metrics as the ``pythia`` reader's (:func:`capcast.tables.readers.pythia.result_rows`).

``params``: non-embedding counts from each paper's architecture table, 12 · layers · width²
(the count the Pythia paper uses for its own models, within 0.1% of it; embeddings left out as in
Kaplan et al.: BLOOM's 250,880-token vocabulary alone is 257M parameters at 560m).
``tokens``: every size of a family saw the same data: OPT 180B (Zhang et al. 2022), BLOOM 350B
(the model cards' figure, rounded). With one token count per family, compute is params times a
constant, so a law on compute forecasts the same whatever that constant is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import pandas as pd

from capcast.errors import CapcastError
from capcast.tables.readers.base import Reader
from capcast.tables.readers.pythia import load_results, result_rows

# (layers, width) per model: OPT (Zhang et al. 2022, table 1), BLOOM (BigScience 2022, table 3).
ARCHITECTURES = {
    "opt": {"125m": (12, 768), "350m": (24, 1024), "1.3b": (24, 2048), "2.7b": (32, 2560), "6.7b": (32, 4096),
            "13b": (40, 5120), "30b": (48, 7168), "66b": (64, 9216)},
    "bloom": {"560m": (24, 1024), "1b1": (24, 1536), "1b7": (24, 2048), "3b": (30, 2560), "7b1": (30, 4096)},
}
TOKENS = {"opt": 180e9, "bloom": 350e9}
FAMILIES = tuple(ARCHITECTURES)


def non_embedding_params(family: str, size: str) -> float:
    layers, width = ARCHITECTURES[family][size]
    return 12.0 * layers * width**2


def _folders(source: Path) -> dict[str, Path]:
    """family -> its folder of results, for the folders ``source`` holds (or is)."""
    found = {}
    for family in FAMILIES:
        for candidate in (source, source / family, source / "evals" / family):
            if candidate.is_dir() and any(candidate.glob(f"{family}-*.json")):
                found[family] = candidate
                break
    return found


def read_pythia_baselines(source: Path, subjects: bool = False) -> pd.DataFrame:
    """OPT and BLOOM under ``source`` (see the module docstring) as a scores table; with
    ``subjects`` MMLU's 57 subjects are tasks of their own too (``mmlu_<subject>``)."""
    folders = _folders(Path(source))
    if not folders:
        raise CapcastError(f"{source}: no opt-*.json or bloom-*.json here or under evals/opt, evals/bloom; pass the pythia data "
                           "folder or one of those folders")
    rows: list[dict] = []
    for family, folder in folders.items():
        for path in sorted(folder.glob(f"{family}-*.json")):
            size = re.fullmatch(rf"{family}-(.+)\.json", path.name).group(1)
            if size not in ARCHITECTURES[family]:
                raise CapcastError(f"{path}: {family} has no size {size!r} capcast knows the architecture of "
                                   f"({', '.join(ARCHITECTURES[family])}); remove the file or add its size")
            params, tokens = non_embedding_params(family, size), TOKENS[family]
            model = f"{family}-{size}"
            base = {"family": family, "run": model, "model": model, "params": params, "tokens": tokens,
                    "flops": 6.0 * params * tokens, "step": float("nan")}
            rows.extend(result_rows(load_results(path), base, subjects))
    return pd.DataFrame(rows)


def _read(source: Path, spec: Optional[Path]) -> pd.DataFrame:
    if spec is not None:
        raise CapcastError("reader pythia-baselines takes no --spec: OPT's and BLOOM's parameters and tokens are known; drop --spec")
    return read_pythia_baselines(source)


def detect(source: Path) -> bool:
    # the pythia data folder holds these too; its own reader (pythia) is the one detected there
    source = Path(source)
    return source.name in FAMILIES and bool(_folders(source))


READER = Reader(
    name="pythia-baselines",
    read=_read,
    description="OPT and BLOOM final checkpoints from the Pythia suite's evals (the pythia data folder, or evals/opt, evals/bloom)",
    detect=detect,
)
