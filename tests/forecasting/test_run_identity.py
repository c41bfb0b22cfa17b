"""A checkpoint is not a run: on the mini-ladder's real store (14 runs x 3 checkpoints), trimming,
final-checkpoint selection, the signal test and the target's exclusion all act per run."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from capcast.evaluation.runner import evaluate_family
from capcast.evaluation.scores import scores_from_store
from capcast.forecasting.backtest import backtest_scores
from capcast.forecasting.forecast import run_forecasts, scores_for_forecast
from capcast.laws.signal import drop_early_checkpoints, final_checkpoints
from capcast.reference.ladder import default_ladder_dir
from capcast.spec import load_family
from capcast.tables.scores import build_series, read_scores

pytestmark = pytest.mark.slow

LADDER = default_ladder_dir()
TASK = "ref_facts"
LIMIT = 6


@pytest.fixture(scope="module")
def ladder_store(tmp_path_factory):
    """The store as the demo builds it: every checkpoint of ladder.yaml, here on one task, 6 items."""
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    store = tmp_path_factory.mktemp("ladder-store")
    evaluate_family(LADDER / "ladder.yaml", [TASK], store, limit=LIMIT, batch_size=32, device="cpu", progress=False)
    return store


@pytest.fixture(scope="module")
def ladder_scores(ladder_store) -> pd.DataFrame:
    return read_scores(scores_from_store(ladder_store))


def test_store_scores_carry_the_run_of_each_checkpoint(ladder_scores):
    checkpoints = ladder_scores.drop_duplicates(["run", "model", "tokens"])
    assert len(checkpoints) == 42
    per_run = checkpoints.groupby("run")["model"].nunique()
    assert len(per_run) == 14 and set(per_run) == {3}
    assert set(per_run.index) == {f"{size}-s{seed}" for size in ("xs", "s", "sm1", "sm2", "sm3", "m", "l") for seed in (0, 1)}
    # the default rule: the checkpoint name without its -step<N>
    assert all(model.startswith(run + "-step") for run, model in zip(checkpoints["run"], checkpoints["model"]))


def test_trimming_and_final_checkpoints_act_per_run(ladder_scores):
    series = build_series(ladder_scores, TASK, "acc")
    assert len(series) == 42 and len(set(series.runs)) == 14
    final = final_checkpoints(series)
    assert final.sum() == 14  # one per run, not one per checkpoint
    for run in set(series.runs):
        rows = series.runs == run
        assert series.tokens[final & rows] == series.tokens[rows].max()
    # each run's first checkpoint is at 1/4 of its training: kept at the default 10%, cut at 30%
    assert len(drop_early_checkpoints(series)) == 42
    trimmed = drop_early_checkpoints(series, fraction=0.3)
    assert len(trimmed) == 28 and set(trimmed.runs) == set(series.runs)
    assert all(t >= 0.3 * series.tokens[series.runs == r].max() for t, r in zip(trimmed.tokens, trimmed.runs))


@pytest.mark.parametrize("target", ["l-s0-step2441", "l-s0"])
def test_forecasting_a_checkpoint_never_fits_its_run(ladder_scores, target):
    results = run_forecasts(ladder_scores, target, [TASK], metric="acc", method="linear")
    (result,) = results
    fitted = set(result.series.runs)
    assert "l-s0" not in fitted
    assert "l-s1" in fitted  # the other seed of the same size is another run: it may be fitted
    assert result.target.name == "l-s0-step2441"  # a run name means its final checkpoint
    truth = ladder_scores[(ladder_scores["model"] == "l-s0-step2441") & (ladder_scores["metric"] == "acc")]["value"].item()
    assert result.row.actual == pytest.approx(truth)


def test_backtest_holds_out_whole_runs_and_forecasts_their_final_checkpoints(ladder_scores):
    report = backtest_scores(ladder_scores, holdout_largest=1, methods=["linear"], tasks=[TASK], metric="acc")
    assert sorted(r["model"] for r in report.rows) == ["l-s0-step2441", "l-s1-step2441"]
    all_steps = backtest_scores(ladder_scores, holdout_largest=1, methods=["linear"], tasks=[TASK], metric="acc", all_steps=True)
    assert len(all_steps.rows) == 6


def test_one_command_forecast_fits_only_the_spec_checkpoints(ladder_store):
    """family.yaml and ladder.yaml share a family name and a store: the fit for family.yaml's
    target (m-s0-step977) must hold family.yaml's checkpoints only: no other m-* checkpoint, no l-*."""
    spec = load_family(LADDER / "family.yaml")
    table, target = scores_for_forecast(LADDER / "family.yaml", None, ladder_store, [TASK], limit=LIMIT, device="cpu")
    assert set(table["model"]) == {c.name for c in spec.checkpoints} | {spec.target.name}
    (result,) = run_forecasts(table, spec.target.name, [TASK], metric="acc", method="linear")
    assert not any(str(m).startswith(("m-", "l-")) for m in result.series.model)


def test_table_without_run_column_loads_with_one_note(caplog):
    frame = pd.DataFrame({
        "family": "f", "model": ["a", "a", "b"], "params": [1e6, 1e6, 2e6], "tokens": [1e9, 2e9, 2e9],
        "task": "t", "metric": "acc", "value": [0.3, 0.4, 0.5],
    })
    with caplog.at_level(logging.INFO, logger="capcast"):
        table = read_scores(frame)
    assert list(table["run"]) == ["a", "a", "b"]
    notes = [r.getMessage() for r in caplog.records if r.name == "capcast"]
    assert len(notes) == 1 and "no run column" in notes[0]
    # checkpoints of one model (= run) at several token counts stay distinct
    assert final_checkpoints(build_series(table, "t", "acc")).sum() == 2


def test_pythia_gsm8k_samples_load_as_one_table_with_every_size_and_checkpoint():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from passuntil_data import available, read_pythia_gsm8k_samples

    from capcast.tables.samples import task_table, to_series, validate_samples

    if not available():
        pytest.skip("shared pythia-gsm8k-samples data not present")
    raw = read_pythia_gsm8k_samples().drop(columns="size")
    # As a new user writes it: model = the size's run name, checkpoints told apart by tokens.
    by_run = validate_samples(raw.assign(model=raw["run"]))
    checkpoints = by_run.drop_duplicates(["run", "tokens"])
    assert by_run["run"].nunique() == 9 and len(checkpoints) == 81
    table = task_table(by_run, estimator="mle")
    assert len(table) == 81
    series = to_series(by_run, "gsm8k", estimator="mle")
    assert len(series) == 81 and final_checkpoints(series).sum() == 9
    # the provenance note's fact: pass@1 of 6.9B at 300B tokens
    six = table[(table["run"] == "Pythia_6.9B") & (table["tokens"] == table["tokens"].max())]
    assert six["pass_rate"].item() == pytest.approx(0.012878, abs=1e-6)
    # old-style tables (no run column, model = checkpoint nickname) still load
    legacy = validate_samples(raw.drop(columns="run"))
    assert legacy["run"].equals(legacy["model"]) and np.all(legacy["model"].str.contains("_"))
