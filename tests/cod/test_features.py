"""Difficulty features from per-instance records: pass rates, smoothing over a run's neighbours, what is set aside."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from capcast.cod.features import build_features
from capcast.cod.instances import NEEDS_INSTANCES, as_instances, from_samples
from capcast.errors import CapcastError


def _table(rows):
    cols = ["family", "run", "model", "params", "tokens", "task", "doc_id", "n_samples", "n_correct"]
    return pd.DataFrame(rows, columns=cols)


def small_table():
    """Two runs (sizes 1e6 and 1e7) x 3 checkpoints, 3 instances; doc 2 is never solved, doc 1 lacks one record."""
    rows = []
    correct = {  # (run, checkpoint index) -> n_correct of docs 0, 1, 2 out of 10
        ("a", 0): (0, 1, 0), ("a", 1): (2, 1, 0), ("a", 2): (4, 3, 0),
        ("b", 0): (5, 2, 0), ("b", 1): (6, None, 0), ("b", 2): (9, 8, 0),
    }
    for (run, i), counts in correct.items():
        params = 1e6 if run == "a" else 1e7
        for doc, k in enumerate(counts):
            if k is not None:
                rows.append(["f", run, f"{run}-{i}", params, 1e8 * (i + 1), "t", doc, 10, k])
    return _table(rows)


def test_features_are_pass_rates_in_compute_order_smoothed_over_each_runs_neighbours():
    feats = build_features(from_samples(small_table()), "pass_rate")
    assert list(feats.checkpoints["model"]) == ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"]  # by compute
    np.testing.assert_array_equal(feats.never_solved, [2])
    assert feats.clustered.tolist() == [True, True, False]
    raw = feats.values["pass_rate"]
    np.testing.assert_allclose(raw[0], [0.0, 0.2, 0.4, 0.5, 0.6, 0.9])
    assert np.isnan(raw[1, 4])
    # doc 0: a-0 = mean(a-0, a-1), a-1 = mean(a-0, a-1, a-2), ...; never across runs (a-2 and b-0 are not neighbours)
    np.testing.assert_allclose(feats.matrix[0], [0.1, 0.2, 0.3, 0.55, 2.0 / 3, 0.75])
    # doc 1's missing b-1 is skipped by the mean of its neighbours
    np.testing.assert_allclose(feats.matrix[1], [0.1, 5 / 30, 0.2, 0.2, 0.5, 0.8])


def test_unsmoothed_features_keep_the_raw_values_and_a_lone_gap_sets_the_instance_aside():
    feats = build_features(from_samples(small_table()), "pass_rate", smooth=False)
    np.testing.assert_array_equal(feats.missing, [1])
    assert feats.matrix.shape == (1, 6)


def test_passuntil_counts_use_the_unbiased_estimate():
    table = small_table().assign(target_successes=3)
    table.loc[table["n_correct"] > 3, "n_correct"] = 3  # PassUntil stops at the r-th success
    rates = from_samples(table)["pass_rate"].to_numpy()
    stopped = (table["n_correct"] == 3).to_numpy()
    np.testing.assert_allclose(rates[stopped], (3 - 1) / (10 - 1))  # (r-1)/(K-1), not r/K


def test_a_scores_table_is_refused_with_one_line():
    scores = pd.DataFrame({"family": ["f"], "model": ["m"], "task": ["t"], "metric": ["acc"], "value": [0.5]})
    with pytest.raises(CapcastError) as err:
        as_instances(scores)
    assert str(err.value) == NEEDS_INSTANCES and "\n" not in NEEDS_INSTANCES
