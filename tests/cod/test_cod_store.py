"""COD on multiple choice from a real store: per-choice records of tiny checkpoints evaluated with lm-eval."""

from __future__ import annotations

import json

import numpy as np
import pytest

from capcast.cod.instances import from_store
from capcast.cod.pipeline import fit_cod
from capcast.evaluation.runner import evaluate_family
from capcast.evaluation.scores import scores_from_store
from capcast.testing.cli import run_in_process

pytestmark = pytest.mark.slow
N_DOCS = 24


@pytest.fixture(scope="module")
def mc_store(tiny_family, tmp_path_factory):
    store = tmp_path_factory.mktemp("cod-store") / "store"
    with pytest.MonkeyPatch.context() as env:  # offline, as tests/conftest.py's offline_hf_env (function-scoped)
        for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"),
                           ("HF_DATASETS_CACHE", str(store.parent / "hf-datasets"))):
            env.setenv(key, value)
        evaluate_family(tiny_family, ["capcast_add_mc"], store, limit=N_DOCS, progress=False)
    return store


def test_store_instances_are_the_scores_tables_items(mc_store):
    instances = from_store(mc_store)
    assert set(instances["kind"]) == {"multiple_choice"} and len(instances) == 3 * N_DOCS
    assert instances["p_gold"].between(0, 1).all() and set(instances["acc"]) <= {0.0, 1.0}
    scores = scores_from_store(mc_store)
    for metric in ("p_gold", "acc", "acc_norm"):
        table = scores[scores["metric"] == metric].set_index("model")["value"]
        means = instances.groupby("model")[metric].mean()
        np.testing.assert_allclose(means.loc[table.index].to_numpy(), table.to_numpy(), atol=1e-12)
    np.testing.assert_allclose(instances["chance"], 0.25)

    result = fit_cod(instances, "capcast_add_mc", metric="acc")
    assert result.feature == "p_gold" and result.metric == "acc"
    counts = result.counts()
    assert counts["instances"] == N_DOCS
    assert counts["cluster"] + counts["outlier"] + counts["never_solved"] + counts["missing"] == N_DOCS


def test_cluster_command_on_a_store(mc_store, tmp_path, capsys):
    out = tmp_path / "clusters"
    code, stdout, stderr = run_in_process(["cluster", "--store", str(mc_store), "--metric", "acc", "--out", str(out),
                                           "--bootstrap", "0"], capsys)
    assert code == 0, stderr
    saved = json.loads((out / "capcast_add_mc" / "cod.json").read_text())
    assert saved["feature"] == "p_gold" and saved["metric"] == "acc" and len(saved["checkpoints"]) == 3
    assert "features p_gold" in stdout


def test_method_cod_on_a_family_spec_reads_the_stores_choices(tiny_family, mc_store, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    code, stdout, stderr = run_in_process(["forecast", str(tiny_family), "--store", str(mc_store), "--tasks", "capcast_add_mc",
                                           "--limit", str(N_DOCS), "--method", "cod", "--target-params", "1e8", "--target-tokens", "2e9",
                                           "--format", "json"], capsys)
    assert code == 0, stderr
    row = json.loads(stdout)["rows"][0]
    # random-init checkpoints sit at chance: the signal test answers before COD looks for a subset
    assert row["law"] == "cod" and row["status"] == "not predictable yet" and "chance" in row["reason"], row


def test_backtest_store_route_gives_cod_the_stores_choices(mc_store, capsys):
    code, stdout, stderr = run_in_process(["backtest", "--store", str(mc_store), "--methods", "cod,sigmoid", "--metric", "acc",
                                           "--tasks", "capcast_add_mc", "--format", "json"], capsys)
    assert code == 0, stderr
    report = json.loads(stdout)
    rows = {r["method"]: r for r in report["rows"]}
    assert set(rows) == {"cod", "sigmoid"} and set(report["methods"]) == {"cod", "sigmoid"}
    scores = scores_from_store(mc_store)
    held = scores[(scores["metric"] == "acc")].sort_values("params").iloc[-1]  # the largest size is held out
    for row in rows.values():
        assert row["model"] == held["model"] and row["actual"] == pytest.approx(held["value"])
    # random-init checkpoints sit at chance: COD got the records (no "needs per-instance records") and says so
    assert rows["cod"]["law"] == "cod" and rows["cod"]["status"] == "not predictable yet", rows["cod"]
    assert "per-instance" not in rows["cod"]["reason"]


def test_backtest_takes_one_source(mc_store, tmp_path, capsys):
    table = tmp_path / "scores.csv"
    scores_from_store(mc_store).to_csv(table, index=False)
    code, stdout, stderr = run_in_process(["backtest", "--store", str(mc_store), "--scores", str(table), "--methods", "cod"], capsys)
    assert code == 2 and "exactly one of --scores FILE, --samples FILE or --store DIR" in stderr and "Traceback" not in stderr
