"""Difficulty features: each instance's expected correctness at every fitting checkpoint, in order of compute.

COD (Xu et al. 2025, arXiv 2502.17262) describes an instance by how its difficulty evolves across
the small models: its pass rate (generative tasks) or the gold choice's renormalised probability
``p_gold`` (multiple choice) at each fitting checkpoint, ordered by compute. Following their
App. A.2, each value is smoothed as the mean over the checkpoint and its neighbours in the same
training run (the checkpoints just before and after it, when fitted): this lowers sampling noise
and the number of all-zero vectors. Missing records are skipped by that mean.

Set aside before clustering, and counted: instances that no fitting checkpoint ever solves (all
raw values 0: the paper's zero-performance samples, which take no part in extrapolation) and
instances with no record at some checkpoint and none at its neighbours either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CHECKPOINT = ["run", "model", "tokens"]


@dataclass(frozen=True)
class Features:
    """The feature matrix and what was set aside.

    ``checkpoints``: the fitting checkpoints in compute order (columns of every matrix),
    ``doc_ids``: every instance of the task (rows of ``values``), ``clustered``: a mask of the
    instances that are clustered (rows of ``matrix``), ``values``: the raw per-instance metric
    for each metric asked (NaN where a checkpoint has no record of the instance).
    """

    checkpoints: pd.DataFrame
    doc_ids: np.ndarray
    matrix: np.ndarray
    clustered: np.ndarray
    never_solved: np.ndarray
    missing: np.ndarray
    values: dict[str, np.ndarray]
    feature: str
    smoothed: bool

    @property
    def n_dims(self) -> int:
        return self.matrix.shape[1]


def fitting_checkpoints(instances: pd.DataFrame) -> pd.DataFrame:
    """The distinct checkpoints of ``instances`` in compute order (then run, model)."""
    cols = ["family", "run", "model", "params", "tokens", "flops", "step"]
    ck = instances[cols].drop_duplicates(CHECKPOINT)
    return ck.sort_values(["flops", "run", "model"]).reset_index(drop=True)


def _pivot(instances: pd.DataFrame, checkpoints: pd.DataFrame, doc_ids: np.ndarray, column: str) -> np.ndarray:
    keyed = instances.merge(checkpoints[CHECKPOINT].reset_index().rename(columns={"index": "col"}), on=CHECKPOINT)
    row_of = pd.Series(np.arange(len(doc_ids)), index=doc_ids)
    out = np.full((len(doc_ids), len(checkpoints)), np.nan)
    out[row_of.loc[keyed["doc_id"].to_numpy()].to_numpy(), keyed["col"].to_numpy()] = keyed[column].to_numpy(dtype=float)
    return out


def smooth_over_neighbours(matrix: np.ndarray, checkpoints: pd.DataFrame) -> np.ndarray:
    """Each column replaced by the mean of itself and its neighbours in the same run (NaN skipped)."""
    out = np.full_like(matrix, np.nan)
    for _, run in checkpoints.groupby("run", sort=False):
        cols = run.sort_values("tokens").index.to_numpy()
        for i, col in enumerate(cols):
            near = cols[max(0, i - 1): i + 2]
            block = matrix[:, near]
            seen = np.isfinite(block)
            counts = seen.sum(axis=1)
            total = np.where(seen, block, 0.0).sum(axis=1)
            out[:, col] = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
    return out


def build_features(instances: pd.DataFrame, feature: str, metrics: tuple[str, ...] = (), smooth: bool = True,
                   checkpoints: pd.DataFrame | None = None) -> Features:
    """Features of one (family, task)'s instances over ``checkpoints`` (default: all in ``instances``)."""
    checkpoints = fitting_checkpoints(instances) if checkpoints is None else checkpoints.reset_index(drop=True)
    doc_ids = np.sort(instances["doc_id"].unique())
    raw = _pivot(instances, checkpoints, doc_ids, feature)
    values = {m: (raw if m == feature else _pivot(instances, checkpoints, doc_ids, m)) for m in dict.fromkeys((feature, *metrics))}
    matrix = smooth_over_neighbours(raw, checkpoints) if smooth else raw
    never = np.nan_to_num(raw, nan=0.0).max(axis=1) <= 0
    missing = ~never & ~np.isfinite(matrix).all(axis=1)
    clustered = ~never & ~missing
    return Features(checkpoints=checkpoints, doc_ids=doc_ids, matrix=matrix[clustered], clustered=clustered,
                    never_solved=doc_ids[never], missing=doc_ids[missing], values=values, feature=feature, smoothed=smooth)
