"""Clustering instances by their difficulty features: the paper's improved MeanShift, KMeans, DBSCAN.

Improved MeanShift (Xu et al., App. A.1, Algorithm 1), on scikit-learn's ``MeanShift``:

1. radius ``R = min(estimate_bandwidth(X, quantile=Q), U)``, ``Q = 0.1``, ``U`` = the diameter of
   the feature space [0, 1]^d (sqrt(d)) divided by 10;
2. every label starts at -1;
3. repeat until no label changes: run MeanShift with bandwidth R on the instances labelled -1 and
   give them new cluster numbers; relabel -1 every instance farther than R from its cluster's
   centre (the mean of its members); dissolve (relabel -1) every cluster with fewer than K = 10
   members; renumber.

Instances still labelled -1 at the end are outliers: they belong to no cluster. ``kmeans`` and
``dbscan`` (the paper's ablation baselines) are plain scikit-learn: KMeans with ``n_clusters``,
DBSCAN with ``eps`` = R and ``min_samples`` = K (its noise is -1). Every method is deterministic
for a seed (MeanShift and DBSCAN use none; KMeans is seeded).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from capcast.errors import CapcastError

METHODS = ("meanshift", "kmeans", "dbscan")
QUANTILE = 0.1      # the paper's Q
RADIUS_DIVISOR = 10  # U = max distance / 10
MIN_CLUSTER = 10     # the paper's K
MAX_ROUNDS = 100


@dataclass(frozen=True)
class Clustering:
    labels: np.ndarray  # one per clustered instance; -1 = outlier
    method: str
    radius: float | None
    rounds: int

    @property
    def sizes(self) -> dict[int, int]:
        ids, counts = np.unique(self.labels[self.labels >= 0], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts)}


def radius_for(X: np.ndarray, quantile: float = QUANTILE, divisor: float = RADIUS_DIVISOR, seed: int = 0) -> float:
    """``min(estimate_bandwidth(X, quantile), sqrt(d) / divisor)``; the cap alone where the estimate is 0."""
    from sklearn.cluster import estimate_bandwidth

    cap = float(np.sqrt(X.shape[1])) / divisor
    estimate = float(estimate_bandwidth(X, quantile=quantile, random_state=seed)) if len(X) > 1 else 0.0
    return min(estimate, cap) if estimate > 0 else cap


def _renumber(labels: np.ndarray) -> np.ndarray:
    out = np.full_like(labels, -1)
    for new, old in enumerate(sorted(set(labels[labels >= 0].tolist()), key=lambda k: int(np.flatnonzero(labels == k)[0]))):
        out[labels == old] = new
    return out


def _prune(X: np.ndarray, labels: np.ndarray, radius: float, min_cluster: int) -> np.ndarray:
    """Relabel -1 the members farther than ``radius`` from their cluster's centre, then dissolve small clusters."""
    labels = labels.copy()
    for k in np.unique(labels[labels >= 0]):
        members = labels == k
        centre = X[members].mean(axis=0)
        far = members & (np.linalg.norm(X - centre, axis=1) > radius)
        labels[far] = -1
    for k, count in zip(*np.unique(labels[labels >= 0], return_counts=True)):
        if count < min_cluster:
            labels[labels == k] = -1
    return labels


def improved_meanshift(X: np.ndarray, radius: float, min_cluster: int = MIN_CLUSTER, max_rounds: int = MAX_ROUNDS) -> tuple[np.ndarray, int]:
    """Algorithm 1: (labels, rounds run)."""
    from sklearn.cluster import MeanShift

    labels = np.full(len(X), -1)
    for rounds in range(1, max_rounds + 1):
        before = labels.copy()
        free = np.flatnonzero(labels == -1)
        if len(free):
            found = MeanShift(bandwidth=radius).fit(X[free]).labels_
            next_id = labels.max() + 1
            labels[free] = found + next_id
        labels = _renumber(_prune(X, labels, radius, min_cluster))
        if np.array_equal(labels, before):
            return labels, rounds
    return labels, max_rounds


def cluster(X: np.ndarray, method: str = "meanshift", seed: int = 0, n_clusters: int = 8, quantile: float = QUANTILE,
            divisor: float = RADIUS_DIVISOR, min_cluster: int = MIN_CLUSTER) -> Clustering:
    """Cluster the rows of ``X`` with ``method`` (one of :data:`METHODS`)."""
    if method not in METHODS:
        raise CapcastError(f"unknown clustering method {method!r}; use one of {', '.join(METHODS)}")
    if len(X) == 0:
        return Clustering(labels=np.zeros(0, dtype=int), method=method, radius=None, rounds=0)
    from threadpoolctl import threadpool_limits

    # One thread: scikit-learn's parallel neighbour search costs far more than it saves on a few
    # hundred instances (6x slower on a busy 2-core machine), and one thread keeps results exact.
    with threadpool_limits(1):
        return _cluster(X, method, seed, n_clusters, quantile, divisor, min_cluster)


def _cluster(X, method, seed, n_clusters, quantile, divisor, min_cluster) -> Clustering:
    if method == "kmeans":
        from sklearn.cluster import KMeans

        k = min(n_clusters, len(X))
        labels = KMeans(n_clusters=k, random_state=seed, n_init=10).fit(X).labels_
        return Clustering(labels=_renumber(np.asarray(labels)), method=method, radius=None, rounds=1)
    radius = radius_for(X, quantile, divisor, seed)
    if method == "dbscan":
        from sklearn.cluster import DBSCAN

        labels = DBSCAN(eps=radius, min_samples=min_cluster).fit(X).labels_
        return Clustering(labels=_renumber(np.asarray(labels)), method=method, radius=radius, rounds=1)
    labels, rounds = improved_meanshift(X, radius, min_cluster)
    return Clustering(labels=labels, method=method, radius=radius, rounds=rounds)
