"""Read the Pythia GSM8K repeated-sampling counts (Schaeffer et al. 2025) into a capcast samples table.

The files stay where they are (``$CAPCAST_SHARED_DATA/pythia-gsm8k-samples``, default
``/work/shared/data``); they carry no license, so they are read in place and never copied.

    python benchmarks/passuntil_data.py out.parquet      # write the samples table

One row per (checkpoint, GSM8K problem): family ``pythia-gsm8k``, run = the size's training run
(``Pythia_1.4B``), model = the source's nickname for the checkpoint (``Pythia_1.4B_300B``), params =
parameters excluding embeddings, tokens, step from the revision.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

import pandas as pd

DATA_ENV = "CAPCAST_SHARED_DATA"
SUBDIR = "pythia-gsm8k-samples"
COUNTS = "data/raw_data/large_language_monkeys/gsm8k_pass_at_k.parquet"
MODELS = "data/raw_data/gpt4_gsm8k/models_pythia.csv"


def samples_dir() -> Path:
    return Path(os.environ.get(DATA_ENV, "/work/shared/data")) / SUBDIR


def available() -> bool:
    root = samples_dir()
    return (root / COUNTS).is_file() and (root / MODELS).is_file()


def run_on_samples(report: Callable[[pd.DataFrame], None]) -> None:
    """Run a benchmark's ``report(table)`` on :func:`read_pythia_gsm8k_samples` with a timing
    footer; one line instead when the data are not there."""
    if not available():
        print("pythia-gsm8k-samples not found; set CAPCAST_SHARED_DATA")
        return
    started = time.perf_counter()
    report(read_pythia_gsm8k_samples())
    print(f"\n[{time.perf_counter() - started:.0f} s]")


def read_pythia_gsm8k_samples(root: Path | None = None) -> pd.DataFrame:
    """The samples table (capcast.schema.SAMPLES_COLUMNS) for all 81 Pythia checkpoints."""
    root = root or samples_dir()
    counts = pd.read_parquet(root / COUNTS, columns=["Model Nickname", "prompt_idx", "Num. Samples", "Num. Samples Correct"])
    # One row per (model, problem, k) in the source; the two counts repeat across k.
    counts = counts.drop_duplicates(["Model Nickname", "prompt_idx"])
    models = pd.read_csv(root / MODELS)
    meta = pd.DataFrame(
        {
            "model": models["Model Nickname"],
            "params": models["Parameters Excluding Embeddings"].astype(float),
            "tokens": models["Tokens"].astype(float),
            "step": models["HuggingFace Revision"].str.removeprefix("step").astype(int),
            "size": models["Model Nickname"].str.split("_").str[1],
        }
    )
    table = counts.rename(
        columns={"Model Nickname": "model", "prompt_idx": "doc_id", "Num. Samples": "n_samples", "Num. Samples Correct": "n_correct"}
    ).merge(meta, on="model", how="inner", validate="many_to_one")
    table["family"] = "pythia-gsm8k"
    table["run"] = "Pythia_" + table["size"]
    table["task"] = "gsm8k"
    table["flops"] = 6.0 * table["params"] * table["tokens"]
    table["n_correct"] = table["n_correct"].astype(int)
    table["n_samples"] = table["n_samples"].astype(int)
    columns = ["family", "run", "model", "params", "tokens", "flops", "step", "task", "doc_id", "n_samples", "n_correct", "size"]
    return table[columns].sort_values(["params", "tokens", "doc_id"]).reset_index(drop=True)


def recorded_pass_rates(table: pd.DataFrame) -> pd.DataFrame:
    """Per-checkpoint GSM8K pass@1 = mean over problems of n_correct / n_samples."""
    rates = table.assign(rate=table.n_correct / table.n_samples)
    return rates.groupby(["model", "size", "params", "tokens"], as_index=False)["rate"].mean()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/passuntil_data.py OUT.(csv|parquet)")
    out = Path(sys.argv[1])
    frame = read_pythia_gsm8k_samples().drop(columns="size")
    frame.to_csv(out, index=False) if out.suffix == ".csv" else frame.to_parquet(out, index=False)
    print(f"wrote {len(frame)} rows to {out}")
