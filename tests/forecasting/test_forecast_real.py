"""The readers of real published results, checked against the facts in the data README, and one
real forecast. Skips cleanly where ``../shared/data`` is absent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from readers import read_openlm, read_pythia, shared_data_dir  # noqa: E402

from capcast.forecasting.forecast import forecast_scores  # noqa: E402

pytestmark = pytest.mark.skipif(not (shared_data_dir() / "pythia").is_dir(), reason="shared data folder absent")


@pytest.fixture(scope="module")
def pythia():
    return read_pythia(deduped=False)


def value(frame, model, task, metric="acc", step=143000):
    rows = frame[(frame.model == model) & (frame.task == task) & (frame.metric == metric) & (frame.step == step)]
    assert len(rows) == 1
    return float(rows["value"].iloc[0])


def test_pythia_reader_matches_the_readme_facts(pythia) -> None:
    facts = {("pythia-70m", "arc_easy"): 0.3737, ("pythia-1.4b", "arc_easy"): 0.6065, ("pythia-6.9b", "arc_easy"): 0.6734,
             ("pythia-12b", "arc_easy"): 0.7024, ("pythia-70m", "lambada_openai"): 0.1846,
             ("pythia-1.4b", "lambada_openai"): 0.6161, ("pythia-6.9b", "lambada_openai"): 0.6728,
             ("pythia-12b", "lambada_openai"): 0.7046}
    for (model, task), expected in facts.items():
        assert value(pythia, model, task) == pytest.approx(expected, abs=5e-5)
    one_b = pythia[(pythia.model == "pythia-1b") & (pythia.step == 143000)]
    assert one_b["params"].iloc[0] == 805_736_448 and one_b["tokens"].iloc[0] == 143000 * 2_097_152
    assert pythia.groupby("model")["step"].nunique().min() == 27
    arc = pythia[(pythia.task == "arc_easy") & (pythia.metric == "acc")]
    assert set(arc["n_items"]) == {2376}  # recovered from the reported stderr


def test_openlm_reader_has_runs_tasks_and_losses() -> None:
    frame = read_openlm()
    assert frame["model"].nunique() == 104
    assert frame[frame.metric == "acc"]["task"].nunique() == 46
    c4 = frame[(frame.model == "rw_original-open_lm_7b-1.0") & (frame.task == "val/c4")]
    assert float(c4["value"].iloc[0]) == pytest.approx(2.4547, abs=1e-4)


def test_real_forecast_of_pythia_12b_arc_easy(pythia) -> None:
    fit = pythia[pythia.model.isin(["pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b", "pythia-1.4b", "pythia-12b"])]
    row = forecast_scores(fit, "pythia-12b", ["arc_easy", "wsc"], method="sigmoid")
    arc, wsc = row
    assert arc.status == "ok" and abs(arc.forecast - 0.7024) < 0.03 and arc.lower <= 0.7024 <= arc.upper
    assert wsc.status == "not predictable yet"



def test_pythia_without_a_chance_column_forecasts_as_with_it(pythia, monkeypatch) -> None:
    """As from lm-eval's results files, which record no chance: lm-eval's chance levels
    (capcast.tasks.chance) give the same forecasts as the recorded column; a floor of 0 would not."""
    import numpy as np

    import capcast.tables.scores as scores

    fit = pythia[pythia.model.isin(["pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b", "pythia-1.4b", "pythia-12b"])]
    tasks = ["arc_easy", "piqa", "winogrande"]
    recorded = forecast_scores(fit, "pythia-12b", tasks, method="sigmoid")
    emptied = forecast_scores(fit.assign(chance=np.nan), "pythia-12b", tasks, method="sigmoid")
    assert [r.status for r in recorded] == ["ok"] * 3
    for a, b in zip(recorded, emptied):
        assert (b.forecast, b.lower, b.upper) == pytest.approx((a.forecast, a.lower, a.upper), abs=1e-9)
    monkeypatch.setattr(scores, "known_chance", lambda task, metric: None)
    floor_0 = forecast_scores(fit.assign(chance=np.nan), "pythia-12b", tasks, method="sigmoid")
    assert any(b.forecast is None or abs(b.forecast - a.forecast) > 0.005 for a, b in zip(recorded, floor_0))
