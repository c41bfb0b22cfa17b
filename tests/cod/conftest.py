"""A synthetic samples table with two difficulty groups that follow COD's law, for the cod room's tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

SIZES = (1e7, 3e7, 1e8, 3e8, 1e9)
FRACTIONS = (0.25, 0.5, 1.0)
TARGET_PARAMS = 3e9


def law(flops, a, b, c):
    return np.exp(-a * (flops / 1e18) ** -b - c)


def synthetic_samples(n_easy: int = 30, n_flat: int = 30, n_zero: int = 5, n_samples: int = 10_000) -> pd.DataFrame:
    """Sizes 1e7-1e9 (3 checkpoints each) and a 3e9 target: ``n_easy`` instances that scale to a high
    ceiling (a=2, b=0.3, c=0.1: kept), ``n_flat`` with a low ceiling (c=3: dropped), ``n_zero`` never solved."""
    c_of = np.concatenate([np.full(n_easy, 0.1), np.full(n_flat, 3.0), np.full(n_zero, np.inf)])
    rows = []
    for params in (*SIZES, TARGET_PARAMS):
        for fraction in FRACTIONS:
            tokens = 20 * params * fraction
            flops = 6 * params * tokens
            p = law(flops, 2.0, 0.3, c_of)
            correct = np.round(n_samples * p)  # exact rates: each group's instances coincide
            run = f"m{params:.0e}"
            for doc, k in enumerate(correct):
                rows.append({"family": "syn", "run": run, "model": f"{run}-{fraction}", "params": params, "tokens": tokens,
                             "flops": flops, "step": int(1000 * fraction), "task": "gen", "doc_id": doc,
                             "n_samples": n_samples, "n_correct": int(k)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def samples_table() -> pd.DataFrame:
    return synthetic_samples()


@pytest.fixture(scope="session")
def samples_csv(tmp_path_factory, samples_table):
    path = tmp_path_factory.mktemp("cod") / "samples.csv"
    samples_table.to_csv(path, index=False)
    return path
