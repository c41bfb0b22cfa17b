"""``--method cod``: COD behind the law interface, bound to the per-instance records it needs.

COD is not a series law: a :class:`capcast.Series` holds one value per checkpoint, and COD needs
every instance's value at every checkpoint. So it is not in the law registry (``check_law`` could
not fit it from a series alone); ``--method cod`` is recognised by name in
:func:`capcast.forecasting.forecast.law_for`, which asks :func:`cod_law` for a law bound to the
instances table. Its ``fit(series)`` takes from the series only which checkpoints to fit (the
forecast's own choice: never the target's run, nothing at or above its compute) and runs
:func:`capcast.cod.pipeline.fit_cod` on those checkpoints' records. Without records (a scores
table) it refuses with one line.

Records reach it from a samples table (:func:`forecast_samples_cod`, :func:`backtest_samples_cod`,
called by :mod:`capcast.api` for ``--samples``) or a family spec's store (:func:`store_instances`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from capcast.cod.instances import NEEDS_INSTANCES, as_instances
from capcast.cod.pipeline import CODConfig, CODResult, fit_cod
from capcast.errors import CapcastError
from capcast.laws.base import NotPredictable, Prediction, Series, Target

COD_METHOD = "cod"
DESCRIPTION = "COD (Xu et al. 2025): cluster instances by difficulty, per-cluster laws, mapped to the full benchmark"


@dataclass(frozen=True)
class CODFit:
    result: CODResult
    law: str = COD_METHOD

    @property
    def params(self) -> dict[str, float]:
        c = self.result.counts()
        return {"clusters": float(len(self.result.clusters)), "kept": float(len(self.result.kept)),
                "subset_share": c["subset"] / max(c["instances"], 1)}

    @property
    def cov(self) -> np.ndarray:
        return np.zeros((0, 0))

    @property
    def notes(self) -> str:
        return self.result.notes()

    def predict(self, target: Target, level: float = 0.9) -> Prediction:
        if target.compute is None:
            raise NotPredictable("COD's cluster laws run on compute: give the target's params and tokens, or flops")
        mean, lower, upper = self.result.predict(float(target.compute), level)
        return Prediction(mean=mean, lower=lower, upper=upper, level=level)

    def summary(self) -> str:
        return self.result.notes()


@dataclass(frozen=True, eq=False)
class CODLaw:
    instances: pd.DataFrame | None = None
    config: CODConfig = field(default_factory=CODConfig)
    anchors: tuple[str, ...] = ()
    name: str = COD_METHOD
    description: str = DESCRIPTION

    def fit(self, series: Series) -> CODFit:
        if self.instances is None:
            raise CapcastError(NEEDS_INSTANCES)
        checkpoints = pd.DataFrame({"run": series.runs.astype(str), "model": np.asarray(series.model).astype(str),
                                    "tokens": np.asarray(series.tokens, dtype=float)})
        result = fit_cod(self.instances, series.task, family=series.family, metric=series.metric, checkpoints=checkpoints,
                         anchors=list(self.anchors), config=self.config)
        if not result.kept:
            raise NotPredictable(result.unpredictable_reason())
        return CODFit(result)


def cod_law(instances=None, config: CODConfig | None = None, anchors=()) -> CODLaw:
    """The COD law bound to ``instances`` (an instances or samples table); one line when there are none."""
    if instances is None:
        raise CapcastError(NEEDS_INSTANCES)
    return CODLaw(instances=as_instances(instances), config=config or CODConfig(), anchors=tuple(anchors))


def store_instances(family_spec, store=None) -> pd.DataFrame:
    """The instances table of a family spec's checkpoints (and target) from its store (default capcast-store)."""
    from pathlib import Path

    from capcast.cod.instances import from_store
    from capcast.spec import load_family

    spec = load_family(family_spec)
    names = {c.name for c in spec.checkpoints} | ({spec.target.name} if spec.target is not None else set())
    return from_store(Path(store) if store is not None else Path("capcast-store"), family=spec.family, models=names)


def forecast_samples_cod(samples, target, tasks=None, interval: float = 0.9, max_step=None, registry=None):
    """``capcast forecast --samples FILE --method cod``: the forecast rows, as for any other law."""
    from capcast.forecasting.forecast import run_forecasts
    from capcast.forecasting.samples import METRIC, load_samples, samples_to_scores

    frame = load_samples(samples)
    return run_forecasts(samples_to_scores(frame), target, tasks, METRIC, COD_METHOD, interval, max_step, registry,
                         instances=as_instances(frame))


def backtest_samples_cod(samples, holdout_largest: int = 1, methods=("cod",), tasks=None, interval: float = 0.9,
                         max_step=None, registry=None, families=None):
    """``capcast backtest --samples FILE --methods cod,...``: COD's rows beside the other methods' rows."""
    from capcast.forecasting.backtest import BacktestReport, backtest_scores, score_rows
    from capcast.forecasting.samples import METRIC, backtest_samples, load_samples, samples_to_scores

    frame = load_samples(samples)
    methods = list(methods)
    others = [m for m in methods if m != COD_METHOD]
    report = backtest_samples(frame, holdout_largest, others, tasks, interval, max_step, registry, families) if others \
        else BacktestReport(methods={}, rows=[])
    cod = backtest_scores(samples_to_scores(frame), holdout_largest, [COD_METHOD], tasks, METRIC, interval, max_step, False, registry,
                          families=families, instances=as_instances(frame))
    rows = list(report.rows) + list(cod.rows)
    return BacktestReport(methods={m: score_rows(r for r in rows if r["method"] == m) for m in methods}, rows=rows)


def with_config(law: CODLaw, **changes) -> CODLaw:
    return replace(law, config=replace(law.config, **changes))
