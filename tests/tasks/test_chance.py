"""lm-eval tasks' chance levels for tables without a ``chance`` column (lm-eval's results files
record none): the table's facts, their agreement with capcast's own standard benchmarks, and the
fallback with its notes in :func:`capcast.tables.scores.build_series`."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from capcast.tables.scores import build_series, note_missing_chance
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


def test_an_empty_chance_column_takes_lm_evals_and_a_chance_column_wins():
    assert build_series(_table("hellaswag", "acc", np.nan), "hellaswag", "acc").chance == 0.25
    assert build_series(_table("hellaswag", "acc", 0.2), "hellaswag", "acc").chance == 0.2
    assert build_series(_table("my_private_task", "acc", np.nan), "my_private_task", "acc").chance == 0.0
    assert build_series(_table("gsm8k", "exact_match/strict-match", np.nan), "gsm8k", "exact_match/strict-match").chance == 0.0


def test_one_note_says_which_tasks_took_lm_evals_chance_and_which_kept_0(caplog):
    frame = pd.concat([_table(t, "acc", c) for t, c in
                       (("hellaswag", np.nan), ("piqa", np.nan), ("sciq", 0.25), ("my_private_task", np.nan), ("gsm8k", np.nan))])
    with caplog.at_level(logging.INFO, logger="capcast"):
        note_missing_chance(frame, ["hellaswag", "piqa", "sciq", "my_private_task", "gsm8k"], "acc")
    notes = _notes(caplog)
    assert notes == [
        "no chance in the table for 2 task(s) (acc), lm-eval's used: hellaswag 0.25 (lm-eval's hellaswag has 4 choices), "
        "piqa 0.5 (lm-eval's piqa has 2 choices); a chance column overrides it",
        "no chance in the table for 1 task(s) (acc) and none known: my_private_task: their floor is 0; a multiple-choice "
        "task's chance is 1/choices (brier's 1 - 1/choices): give the table a chance column"]


def test_a_table_with_every_chance_needs_no_note(caplog):
    frame = pd.concat([_table("hellaswag", "acc", 0.25), _table("gsm8k", "exact_match", np.nan)])
    with caplog.at_level(logging.INFO, logger="capcast"):
        note_missing_chance(frame, ["hellaswag"], "acc")
        note_missing_chance(frame, ["gsm8k"], "exact_match")
    assert _notes(caplog) == []
