"""The paper's improved MeanShift (radius rule, K = 10 dissolve, relabel far points), KMeans and DBSCAN."""

from __future__ import annotations

import numpy as np
import pytest

from capcast.cod.clustering import cluster, improved_meanshift, radius_for
from capcast.errors import CapcastError


def blobs(sizes=(40, 25, 6), seed=0, spread=0.01):
    rng = np.random.default_rng(seed)
    centres = [np.full(4, 0.1), np.full(4, 0.5), np.full(4, 0.9)]
    X = np.vstack([c + rng.normal(0, spread, (n, 4)) for c, n in zip(centres, sizes)])
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return X, truth


def test_clusters_under_k_dissolve_into_outliers():
    X, truth = blobs()
    result = cluster(X)
    assert sorted(result.sizes.values()) == [25, 40]
    assert (result.labels[truth == 2] == -1).all()  # the blob of 6 < K = 10
    for k in (0, 1):  # each big blob is one cluster of its own
        assert len(set(result.labels[truth == k])) == 1
    # with K = 5 the small blob stands as a cluster
    assert sorted(cluster(X, min_cluster=5).sizes.values()) == [6, 25, 40]


def test_radius_is_the_bandwidth_estimate_capped_at_a_tenth_of_the_space_diameter():
    from sklearn.cluster import estimate_bandwidth

    X, _ = blobs()
    assert radius_for(X) == pytest.approx(min(estimate_bandwidth(X, quantile=0.1), np.sqrt(4) / 10))
    spread = np.random.default_rng(1).random((200, 4))  # a wide cloud: the cap binds
    assert radius_for(spread) == pytest.approx(0.2)


def test_points_farther_than_the_radius_from_their_centre_are_relabelled():
    X, _ = blobs(sizes=(40, 40))
    stray = np.vstack([X, np.full((1, 4), 0.1 + 0.08)])  # near blob 0 but beyond a radius of 0.05
    labels, rounds = improved_meanshift(stray, radius=0.05)
    assert labels[-1] == -1 and rounds >= 2
    centre = stray[labels == labels[0]].mean(axis=0)
    assert (np.linalg.norm(stray[labels == labels[0]] - centre, axis=1) <= 0.05).all()


def test_every_method_is_deterministic_for_a_seed():
    X, _ = blobs(seed=3, spread=0.05)
    for method in ("meanshift", "kmeans", "dbscan"):
        first, again = cluster(X, method, seed=7), cluster(X, method, seed=7)
        np.testing.assert_array_equal(first.labels, again.labels)
    assert len(cluster(X, "kmeans", n_clusters=3).sizes) == 3
    with pytest.raises(CapcastError, match="unknown clustering method 'spectral'"):
        cluster(X, "spectral")
