"""COD end to end: features -> clusters -> per-cluster laws and filter -> subset forecast -> mapping.

    result = fit_cod(instances, task="gsm8k", checkpoints=fitting)     # a CODResult
    result.predict(target_flops, level=0.9)                             # full-benchmark forecast
    save_result(result, "cod-clusters/gsm8k"); load_result(...)         # capcast cluster / cluster show

The predictable subset is the union of the kept clusters; its forecast at compute C is the
cluster-size-weighted mean of the clusters' y(C), mapped to the full benchmark by
:mod:`capcast.cod.mapping`. The interval is a **bootstrap over instances** (clusters held fixed):
instances are resampled, every kept cluster's law and the mapping refitted, the forecast
recomputed; the percentiles of ``bootstrap`` replicates are the interval. It measures the noise of
a finite benchmark, not how far the law may be from the truth at a size it never saw.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from capcast.cod.cluster_law import COMPUTE_UNIT, ClusterFit, Thresholds, fit_cluster, keep_reason
from capcast.cod.clustering import MIN_CLUSTER, QUANTILE, RADIUS_DIVISOR, cluster
from capcast.cod.features import CHECKPOINT, build_features, fitting_checkpoints
from capcast.cod.instances import feature_metric, forecast_metrics, task_chance
from capcast.cod.mapping import RMSE_TARGET, Mapping, fit_mapping
from capcast.errors import CapcastError
from capcast.laws.base import NotPredictable

NO_ANCHOR = "no anchor model: the mapping rests on the fitting checkpoints alone (the paper's error without one: 2.65 vs 1.55 points)"
RESULT_FILE, CLUSTERS_FILE = "cod.json", "clusters.csv"


@dataclass(frozen=True)
class CODConfig:
    """COD's settings; the defaults are the paper's constants (methods.md, COD section)."""

    method: str = "meanshift"
    seed: int = 0
    n_clusters: int = 8  # kmeans only
    quantile: float = QUANTILE
    radius_divisor: float = RADIUS_DIVISOR
    min_cluster: int = MIN_CLUSTER
    thresholds: Thresholds = field(default_factory=Thresholds)
    compute_unit: float = COMPUTE_UNIT
    smooth: bool = True
    rmse_target: float = RMSE_TARGET
    bootstrap: int = 200

    def to_dict(self) -> dict:
        out = asdict(self)
        out["thresholds"] = self.thresholds.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict) -> "CODConfig":
        return cls(**{**d, "thresholds": Thresholds(**d["thresholds"])})


@dataclass(frozen=True)
class ClusterSummary:
    label: int
    size: int
    fit: ClusterFit
    kept: bool
    reason: str
    curve: list[float]  # the cluster's mean score at each fitting checkpoint

    def to_dict(self) -> dict:
        return {"label": self.label, "size": self.size, "fit": self.fit.to_dict(), "kept": self.kept, "reason": self.reason,
                "curve": self.curve}

    @classmethod
    def from_dict(cls, d: dict) -> "ClusterSummary":
        return cls(d["label"], d["size"], ClusterFit(**d["fit"]), d["kept"], d["reason"], d["curve"])


@dataclass(frozen=True)
class CODResult:
    family: str
    task: str
    metric: str
    feature: str
    config: CODConfig
    checkpoints: pd.DataFrame  # the fitting checkpoints, compute order
    clusters: list[ClusterSummary]
    docs: pd.DataFrame  # doc_id, cluster (-1 none), status: cluster | outlier | never_solved | missing, in_subset
    mapping: Mapping | None
    subset_scores: np.ndarray
    full_scores: np.ndarray
    anchors: list[dict]  # model, subset, full
    radius: float | None
    rounds: int
    # For the bootstrap (not saved): the per-instance metric (docs x checkpoints) and the anchors' (docs x anchors).
    values: np.ndarray | None = None
    anchor_values: np.ndarray | None = None
    forecast: dict | None = None  # target, flops, forecast, lower, upper, actual (capcast cluster --target)

    @property
    def kept(self) -> list[ClusterSummary]:
        return [c for c in self.clusters if c.kept]

    @property
    def subset_size(self) -> int:
        return int(self.docs["in_subset"].sum())

    def counts(self) -> dict[str, int]:
        status = self.docs["status"].value_counts()
        return {"instances": len(self.docs), "subset": self.subset_size,
                **{k: int(status.get(k, 0)) for k in ("cluster", "outlier", "never_solved", "missing")}}

    def notes(self) -> str:
        c = self.counts()
        parts = [f"COD: {len(self.kept)} of {len(self.clusters)} clusters kept ({self.config.thresholds.text()}), "
                 f"predictable subset {c['subset']} of {c['instances']} instances; set aside: {c['never_solved']} never solved, "
                 f"{c['outlier']} outliers, {c['missing']} with missing records; interval: bootstrap over instances "
                 f"({self.config.bootstrap} replicates, clusters fixed)"]
        parts.append(NO_ANCHOR if not self.anchors else f"anchors: {', '.join(a['model'] for a in self.anchors)}")
        return "; ".join(parts)

    def subset_forecast(self, compute: float) -> float:
        kept = self.kept
        if not kept:
            raise NotPredictable(self.unpredictable_reason())
        preds = np.array([float(c.fit.predict(compute, self.config.compute_unit)) for c in kept])
        sizes = np.array([c.size for c in kept], dtype=float)
        return float(np.sum(sizes * preds) / sizes.sum())

    def unpredictable_reason(self) -> str:
        if not self.clusters:
            c = self.counts()
            return (f"COD found no cluster of at least {self.config.min_cluster} instances "
                    f"({c['cluster'] + c['outlier']} clustered, {c['never_solved']} never solved)")
        reasons = "; ".join(f"cluster {c.label} ({c.size}): {c.reason}" for c in self.clusters[:4])
        return f"COD: no cluster passes the filter ({self.config.thresholds.text()}): {reasons}"

    def predict(self, compute: float, level: float = 0.9) -> tuple[float, float, float]:
        """(mean, lower, upper) of the full benchmark's score at ``compute`` FLOPs."""
        subset = self.subset_forecast(compute)
        mean = float(self.mapping(subset))
        draws = self._draws(compute)
        if len(draws) < 10:
            return mean, mean, mean
        lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
        return mean, float(min(lo, mean)), float(max(hi, mean))

    @cached_property
    def _replicates(self) -> list[tuple[list[tuple[float, ClusterFit]], Mapping]]:
        """The bootstrap's refitted (size, law) per kept cluster and mapping, once per result."""
        if self.values is None or not self.kept or self.config.bootstrap <= 0:
            return []
        rng = np.random.default_rng(self.config.seed)
        labels = self.docs["cluster"].to_numpy()
        subset = self.docs["in_subset"].to_numpy()
        compute = self.checkpoints["flops"].to_numpy(float)
        out = []
        for _ in range(self.config.bootstrap):
            idx = rng.integers(0, len(labels), len(labels))
            vals, lab = self.values[idx], labels[idx]
            fits = []
            for c in self.kept:
                members = lab == c.label
                if members.any():
                    curve = _nanmean(vals[members])
                    fits.append((float(members.sum()), fit_cluster(compute, curve, self.config.compute_unit, start=c.fit.params)))
            pairs = [(float(np.nanmean(self.anchor_values[idx][subset[idx], j])), float(np.nanmean(self.anchor_values[idx][:, j])))
                     for j in range(self.anchor_values.shape[1])] if self.anchor_values is not None else []
            mapping = fit_mapping(_nanmean(vals[subset[idx]]), _nanmean(vals), pairs, self.config.rmse_target)
            out.append((fits, mapping))
        return out

    def _draws(self, compute: float) -> np.ndarray:
        draws = []
        for fits, mapping in self._replicates:
            good = [(n, f) for n, f in fits if f.ok]
            if good:
                sizes = np.array([n for n, _ in good])
                preds = np.array([float(f.predict(compute, self.config.compute_unit)) for _, f in good])
                draws.append(float(mapping(np.sum(sizes * preds) / sizes.sum())))
        return np.asarray(draws)

    def to_dict(self) -> dict:
        return {
            "family": self.family, "task": self.task, "metric": self.metric, "feature": self.feature, "config": self.config.to_dict(),
            "checkpoints": self.checkpoints.astype(object).where(self.checkpoints.notna(), None).to_dict(orient="records"),
            "clusters": [c.to_dict() for c in self.clusters], "mapping": None if self.mapping is None else self.mapping.to_dict(),
            "subset_scores": self.subset_scores.tolist(), "full_scores": self.full_scores.tolist(), "anchors": self.anchors,
            "radius": self.radius, "rounds": self.rounds, "counts": self.counts(), "notes": self.notes(), "forecast": self.forecast,
        }


def _nanmean(block: np.ndarray) -> np.ndarray:
    seen = np.isfinite(block)
    counts = seen.sum(axis=0)
    return np.where(counts > 0, np.where(seen, block, 0.0).sum(axis=0) / np.maximum(counts, 1), np.nan)


def fit_cod(instances: pd.DataFrame, task: str, family: str | None = None, metric: str | None = None,
            checkpoints: pd.DataFrame | None = None, anchors: list[str] | None = None, config: CODConfig = CODConfig()) -> CODResult:
    """Cluster ``task``'s instances on ``checkpoints`` (default: every checkpoint in ``instances``
    except the anchors), fit and filter the cluster laws, fit the mapping.

    ``metric``: the score to forecast (default: the feature: ``pass_rate`` or ``p_gold``; ``acc``
    or ``acc_norm`` for multiple choice too). ``anchors``: model names in ``instances`` used only
    as extra mapping points (their subset and full scores), never for features or laws.
    """
    rows = instances[instances["task"] == task]
    if family is None:
        families = sorted(rows["family"].unique())
        if len(families) != 1:
            raise CapcastError(f"task {task!r} appears in {len(families)} families ({', '.join(families)}); pass one family")
        family = families[0]
    rows = rows[rows["family"] == family]
    feature = feature_metric(rows, task)
    metric = metric or feature
    if metric not in forecast_metrics(rows, task):
        raise CapcastError(f"COD forecasts {', '.join(forecast_metrics(rows, task))} for task {task!r} from its per-instance records, "
                           f"not {metric!r}")
    anchors = list(anchors or [])
    unknown = [a for a in anchors if a not in set(rows["model"])]
    if unknown:
        raise CapcastError(f"anchor model(s) {', '.join(unknown)} have no records for task {task!r}; name models in the same table")
    anchor_rows = rows[rows["model"].isin(anchors)]
    fit_rows = rows[~rows["model"].isin(anchors)]
    if checkpoints is not None:
        fit_rows = fit_rows.merge(checkpoints[CHECKPOINT].drop_duplicates(), on=CHECKPOINT)
    if fit_rows.empty:
        raise CapcastError(f"no fitting checkpoint has records for task {task!r} in family {family!r}")
    ck = fitting_checkpoints(fit_rows)
    feats = build_features(fit_rows, feature, (metric,), config.smooth, ck)
    grouping = cluster(feats.matrix, config.method, config.seed, config.n_clusters, config.quantile, config.radius_divisor,
                       config.min_cluster)
    labels = np.full(len(feats.doc_ids), -1)
    labels[feats.clustered] = grouping.labels
    status = np.where(np.isin(feats.doc_ids, feats.never_solved), "never_solved",
                      np.where(np.isin(feats.doc_ids, feats.missing), "missing", np.where(labels >= 0, "cluster", "outlier")))
    values = feats.values[metric]
    compute = ck["flops"].to_numpy(float)
    summaries = []
    for label, size in grouping.sizes.items():
        curve = _nanmean(values[labels == label])
        fit = fit_cluster(compute, curve, config.compute_unit)
        kept, reason = keep_reason(fit, config.thresholds, compute, config.compute_unit)
        summaries.append(ClusterSummary(label, size, fit, kept, reason, [float(v) for v in curve]))
    kept_labels = [c.label for c in summaries if c.kept]
    in_subset = np.isin(labels, kept_labels)
    docs = pd.DataFrame({"doc_id": feats.doc_ids, "cluster": labels, "status": status, "in_subset": in_subset})
    subset_scores = _nanmean(values[in_subset]) if in_subset.any() else np.full(len(ck), np.nan)
    full_scores = _nanmean(values)
    anchor_values, anchor_pairs = _anchors(anchor_rows, feats.doc_ids, metric, in_subset)
    mapping = fit_mapping(subset_scores, full_scores, [(a["subset"], a["full"]) for a in anchor_pairs], config.rmse_target) \
        if in_subset.any() else None
    return CODResult(family, task, metric, feature, config, ck, summaries, docs, mapping, subset_scores, full_scores, anchor_pairs,
                     grouping.radius, grouping.rounds, values, anchor_values)


def _anchors(anchor_rows: pd.DataFrame, doc_ids: np.ndarray, metric: str, in_subset: np.ndarray):
    if anchor_rows.empty:
        return None, []
    ck = fitting_checkpoints(anchor_rows)
    from capcast.cod.features import _pivot

    values = _pivot(anchor_rows[anchor_rows["doc_id"].isin(doc_ids)], ck, doc_ids, metric)
    pairs = [{"model": str(m), "subset": float(np.nanmean(values[in_subset, j])) if in_subset.any() else float("nan"),
              "full": float(np.nanmean(values[:, j]))} for j, m in enumerate(ck["model"])]
    return values, pairs


def save_result(result: CODResult, out_dir: str | Path) -> Path:
    """Write ``cod.json`` (fits, filter, mapping, counts) and ``clusters.csv`` (each instance's cluster) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / RESULT_FILE).write_text(json.dumps(result.to_dict(), indent=2, default=float) + "\n")
    result.docs.to_csv(out_dir / CLUSTERS_FILE, index=False)
    return out_dir


def load_result(out_dir: str | Path) -> CODResult:
    """A saved result. Its per-instance values are not saved, so its predictions carry no interval."""
    out_dir = Path(out_dir)
    path = out_dir / RESULT_FILE
    if not path.is_file():
        raise CapcastError(f"{out_dir}: no {RESULT_FILE}; run `capcast cluster ... --out {out_dir.parent}` first")
    d = json.loads(path.read_text())
    config = CODConfig.from_dict(d["config"])
    return CODResult(d["family"], d["task"], d["metric"], d["feature"], config, pd.DataFrame(d["checkpoints"]),
                     [ClusterSummary.from_dict(c) for c in d["clusters"]], pd.read_csv(out_dir / CLUSTERS_FILE),
                     None if d["mapping"] is None else Mapping.from_dict(d["mapping"]), np.asarray(d["subset_scores"], float),
                     np.asarray(d["full_scores"], float), d["anchors"], d["radius"], d["rounds"], forecast=d.get("forecast"))
