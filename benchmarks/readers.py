"""Scores tables of the real published results in ``../shared/data``, for the benchmarks.

A thin script over capcast's built-in readers (:mod:`capcast.tables.readers.pythia`,
:mod:`capcast.tables.readers.openlm`; ``capcast import DIR --reader pythia|openlm`` does the same
from the command line). They read the files in place (never copy them into the repository).
Override the data folder with ``CAPCAST_SHARED_DATA`` (the folder that holds ``pythia/`` and
``openlm-overtraining/``).

    python benchmarks/readers.py pythia out.parquet      # write a scores table
    python benchmarks/readers.py openlm out.csv

See the reader modules (and docs/readers.md) for the column mapping.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd

from capcast.tables.readers import openlm as _openlm
from capcast.tables.readers import pythia as _pythia
from capcast.tables.readers.openlm import read_openlm as _read_openlm
from capcast.tables.readers.pythia_baselines import read_pythia_baselines as _read_pythia_baselines
from capcast.tables.readers.pythia import PYTHIA_CHANCE, PYTHIA_PARAMS, PYTHIA_TASKS, TOKENS_PER_STEP  # noqa: F401
from capcast.tables.readers.pythia import read_pythia as _read_pythia

DATA_ENV = "CAPCAST_SHARED_DATA"


def shared_data_dir() -> Path:
    """The shared data folder: $CAPCAST_SHARED_DATA, else ``../shared/data`` beside the repo."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def read_pythia(data_dir: Path | None = None, deduped: bool = True, five_shot: bool = False, subjects: bool = False) -> pd.DataFrame:
    """The Pythia v1 suite (standard runs, optionally deduped, five-shot and MMLU's subjects) as a scores table."""
    root = (data_dir or shared_data_dir()) / "pythia"
    if _pythia.suite_root(root) is None:
        raise FileNotFoundError(f"{root / _pythia.SUITE_FOLDER} not found; set {DATA_ENV} to the shared data folder")
    return _read_pythia(root, deduped=deduped, five_shot=five_shot, subjects=subjects)


def read_pythia_baselines(data_dir: Path | None = None) -> pd.DataFrame:
    """OPT and BLOOM (the Pythia paper's baselines; final checkpoints, zero-shot) as a scores table."""
    root = (data_dir or shared_data_dir()) / "pythia"
    if not (root / "evals" / "opt").is_dir():
        raise FileNotFoundError(f"{root / 'evals' / 'opt'} not found; set {DATA_ENV} to the shared data folder")
    return _read_pythia_baselines(root)


def read_openlm(data_dir: Path | None = None) -> pd.DataFrame:
    """Gadre et al.'s 104 OpenLM runs: downstream accuracies plus validation losses."""
    root = (data_dir or shared_data_dir()) / "openlm-overtraining"
    if _openlm.exp_data_root(root) is None:
        raise FileNotFoundError(f"{root / 'exp_data'} not found; set {DATA_ENV} to the shared data folder")
    return _read_openlm(root)


if __name__ == "__main__":
    which, out = sys.argv[1], Path(sys.argv[2])
    frame = read_pythia() if which == "pythia" else read_openlm()
    frame.to_parquet(out) if out.suffix == ".parquet" else frame.to_csv(out, index=False)
    print(f"wrote {len(frame)} rows to {out}")
