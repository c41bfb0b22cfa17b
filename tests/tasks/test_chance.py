"""lm-eval tasks' chance levels for tables without a ``chance`` column (lm-eval's results files
record none): the table's facts, their agreement with capcast's own standard benchmarks, and the
fallback with its notes in :func:`capcast.tables.scores.build_series`."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from capcast.tables.scores import build_series
from capcast.tasks.chance import choices_of, known_chance


@pytest.mark.parametrize(("task", "metric", "chance"), [
    ("hellaswag", "acc", 0.25), ("hellaswag", "acc_norm", 0.25), ("piqa", "acc", 0.5), ("super_glue_cb", "acc", None),
    ("cb", "acc", 1 / 3), ("commonsense_qa", "acc", 0.2), ("mmlu_abstract_algebra", "acc", 0.25),
    ("blimp_anaphor_gender_agreement", "acc", 0.5), ("hellaswag", "brier", 0.75), ("hellaswag", "p_gold", 0.25),
    ("gsm8k", "exact_match/strict-match", 0.0), ("lambada_openai", "acc", 0.0),
    ("csqa", "acc_per_char", 0.2), ("socialiqa", "acc_uncond", 1 / 3), ("siqa", "acc", None),
    ("hellaswag", "bpb_gold", None), ("lambada_openai", "perplexity", None), ("my_private_task", "acc", None),
])
def test_known_chance_follows_the_number_of_choices(task, metric, chance):
    found = known_chance(task, metric)
    if chance is None:
        assert found is None
    else:
        assert found is not None and found[0] == pytest.approx(chance)


def test_the_table_agrees_with_capcasts_own_standard_benchmarks():
    """Every standard benchmark capcast evaluates on lm-eval's own YAML declares its chance; the
    table must say the same for its name and default metric."""
    from capcast.tasks.standard import benchmarks

    standard = benchmarks()
    assert len(standard) > 60  # the 57 MMLU subjects among them
    for b in standard:
        found = known_chance(b.name, "acc" if b.kind == "multiple_choice" else "pass_rate")
        assert found is not None, b.name
        assert found[0] == pytest.approx(b.chance), (b.name, found, b.chance)
        assert (choices_of(b.name) == 0) == (b.chance == 0), b.name


def _table(task: str, metric: str, chance) -> pd.DataFrame:
    rows = [{"family": "f", "run": f"r{i}", "model": f"m{i}", "params": 10.0 ** (7 + i), "tokens": 2e9 * (i + 1),
             "flops": 6 * 10.0 ** (7 + i) * 2e9 * (i + 1), "step": 1.0, "task": task, "metric": metric,
             "value": 0.3 + 0.05 * i, "n_items": 1000.0, "chance": chance} for i in range(4)]
    return pd.DataFrame(rows)


def _notes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "capcast"]


def test_an_empty_chance_column_takes_lm_evals_with_a_note(caplog):
    with caplog.at_level(logging.INFO, logger="capcast"):
        series = build_series(_table("hellaswag", "acc", np.nan), "hellaswag", "acc")
    assert series.chance == 0.25
    assert any("no chance in the table; 0.25 used (lm-eval's hellaswag has 4 choices)" in n for n in _notes(caplog))


def test_a_chance_column_wins_over_the_table(caplog):
    with caplog.at_level(logging.INFO, logger="capcast"):
        series = build_series(_table("hellaswag", "acc", 0.2), "hellaswag", "acc")
    assert series.chance == 0.2
    assert not any("chance" in n for n in _notes(caplog))


def test_an_unknown_multiple_choice_task_keeps_0_and_asks_for_the_column(caplog):
    with caplog.at_level(logging.INFO, logger="capcast"):
        series = build_series(_table("my_private_task", "acc", np.nan), "my_private_task", "acc")
    assert series.chance == 0.0
    assert any("none known for this task: the floor is 0" in n and "give the table a chance column" in n for n in _notes(caplog))


def test_a_generative_task_needs_no_note(caplog):
    with caplog.at_level(logging.INFO, logger="capcast"):
        series = build_series(_table("gsm8k", "exact_match/strict-match", np.nan), "gsm8k", "exact_match/strict-match")
    assert series.chance == 0.0
    assert not any("chance" in n for n in _notes(caplog))
