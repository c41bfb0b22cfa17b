"""Output hygiene and table validation: control characters escaped, piped tables never cut, plot
names that never collide, a scores CSV identical to the last digit run after run, and the
validation gaps of tables and specs closed (one line each)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from capcast.errors import CapcastError
from capcast.store import Store
from capcast.tables.samples import to_series, validate_samples
from capcast.tables.scores import build_series, validate_scores
from capcast.testing.cli import run_in_process


def _choices(n_docs: int, rng) -> pa.Table:
    k = 4
    n = n_docs * k
    return pa.table({
        "doc_id": pa.array(np.repeat(np.arange(n_docs), k), pa.int64()), "choice_idx": pa.array(np.tile(np.arange(k), n_docs), pa.int32()),
        "loglik": pa.array(rng.normal(-5, 2, n)), "n_tokens": pa.array(np.full(n, 3), pa.int32()),
        "n_bytes": pa.array(np.full(n, 3), pa.int32()), "n_chars": pa.array(np.full(n, 3), pa.int32()),
        "is_greedy": pa.array(np.zeros(n, bool)), "is_gold": pa.array(np.tile(np.arange(k) == 0, n_docs)),
    })


def test_control_characters_are_escaped_and_piped_tables_are_not_cut(tmp_path, capsys):
    store = Store(tmp_path)
    name = "evil\x1b[2J-" + "m" * 120
    store.write_run({"family": "f", "checkpoint": name, "task": "passuntil_instance_task", "params": 1e6, "tokens": 2e7},
                    "multiple_choice", _choices(3, np.random.default_rng(0)))
    code, out, err = run_in_process(["scores", "--store", str(tmp_path)], capsys)
    assert code == 0, err
    assert "\x1b" not in out and "evil\\x1b[2J-" in out
    assert "passuntil_instance_task" in out and "…" not in out and name[-20:] in out  # nothing cut at 80 columns
    code, _, err = run_in_process(["scores", "--store", str(tmp_path / "no\x1b[2Jpe")], capsys)
    assert code == 2 and "\x1b" not in err and "no\\x1b[2Jpe" in err


def test_plot_names_that_clean_up_alike_get_distinct_files():
    from capcast.forecasting.plots import _file_names

    names = _file_names(["x/y", "x_y", "plain", "t" * 400])
    assert len(set(names)) == 4 and names[2] == "plain.png"
    assert all(len(n.encode()) <= 255 for n in names)


@pytest.mark.slow
def test_the_scores_csv_is_the_same_to_the_last_digit_every_run(tmp_path, capsys):
    rng = np.random.default_rng(1)
    store = Store(tmp_path)
    for i in range(2):  # enough rows that DuckDB sums in parallel
        store.write_run({"family": "f", "checkpoint": f"c{i}", "task": "t", "params": 1e6, "tokens": 2e7}, "multiple_choice",
                        _choices(60_000, rng))
    outputs = set()
    for _ in range(3):
        code, out, err = run_in_process(["scores", "--store", str(tmp_path), "-f", "csv"], capsys)
        assert code == 0, err
        outputs.add(out)
    assert len(outputs) == 1


def _scores(**change) -> pd.DataFrame:
    rows = [{"family": "f", "run": f"r{i}", "model": f"m{i}", "params": p, "tokens": 20 * p, "task": "t", "metric": "acc",
             "value": v, "n_items": 40, "chance": 0.25} for i, (p, v) in enumerate([(1e7, 0.3), (1e8, 0.4), (1e9, 0.5)])]
    frame = pd.DataFrame(rows)
    for col, value in change.items():
        frame.loc[0, col] = value
    return frame


@pytest.mark.parametrize("change, words", [
    ({"value": 87.5}, "divide by 100"), ({"value": 1.2}, "outside its range [0, 1]"), ({"n_items": 0}, "n_items"),
    ({"n_items": -3}, "n_items"), ({"params": np.inf}, "params is infinite"), ({"tokens": np.inf}, "tokens is infinite"),
])
def test_scores_tables_refuse_out_of_range_values_in_one_line(change, words):
    with pytest.raises(CapcastError, match=words.replace("[", r"\[").replace("]", r"\]")) as err:
        validate_scores(_scores(**change))
    assert "\n" not in str(err.value)


def test_a_table_with_flops_and_no_tokens_reads_tokens_from_flops(caplog):
    given = _scores()
    given["flops"] = 6 * given["params"] * given["tokens"]
    with caplog.at_level(logging.INFO, logger="capcast"):
        frame = validate_scores(given.drop(columns="tokens"), "t.csv")
    assert np.allclose(frame["tokens"], given["tokens"]) and np.allclose(frame["flops"], given["flops"])
    assert any(r.getMessage() == "t.csv: no tokens column; tokens read as flops / (6 * params)" for r in caplog.records)
    with pytest.raises(CapcastError, match=r"missing column\(s\) tokens; .*or a flops column"):
        validate_scores(_scores().drop(columns="tokens"))


def test_different_item_counts_across_checkpoints_get_a_note(caplog):
    frame = validate_scores(_scores(n_items=5))
    with caplog.at_level(logging.INFO, logger="capcast"):
        build_series(frame, "t", "acc")
    assert any("different numbers of items (5 to 40)" in r.getMessage() for r in caplog.records)


def test_samples_tables_refuse_r_0_and_note_different_instance_sets(caplog):
    rows = [{"family": "f", "run": "a", "model": "a", "params": 1e6, "tokens": 2e7, "task": "t", "doc_id": d, "n_samples": 4,
             "n_correct": 1} for d in range(5)]
    rows += [{**r, "run": "b", "model": "b", "params": 2e6, "tokens": 4e7, "doc_id": d} for d, r in zip(range(40), rows * 8)]
    frame = pd.DataFrame(rows)
    with pytest.raises(CapcastError, match="target_successes"):
        validate_samples(frame.assign(target_successes=0))
    with pytest.raises(CapcastError, match="params must be finite"):
        validate_samples(frame.assign(params=np.inf))
    with caplog.at_level(logging.INFO, logger="capcast"):
        to_series(validate_samples(frame), "t")
    assert any("different instance sets (5 to 40 instances" in r.getMessage() for r in caplog.records)


def test_a_family_spec_refuses_infinite_params(tmp_path):
    from capcast.spec import load_family

    spec = tmp_path / "f.yaml"
    spec.write_text("family: f\ncheckpoints:\n  - {name: a, model: org/a, params: .inf, tokens: 1e9}\n")
    with pytest.raises(CapcastError, match=r"checkpoints\[0\]\.params: .*finite"):
        load_family(spec)


def test_a_reason_every_task_shares_prints_once_and_each_tasks_own_stays(tmp_path, capsys):
    """A simulated family without a loss metric: auto's "ladder skipped (no loss metric ...)" is
    the same for every task; the table's text says it once, and each task's weights on its own line.
    The CSV keeps every row's whole reason."""
    from capcast.testing.simulate import simulate_family

    frames = []
    for i, task in enumerate(("task_a", "task_b", "task_c")):
        frames.append(simulate_family(np.random.default_rng(i), n_sizes=5, task=task).scores)
    scores = tmp_path / "scores.csv"
    pd.concat(frames).to_csv(scores, index=False)
    code, out, err = run_in_process(["forecast", "--scores", str(scores), "--target", "target"], capsys)
    assert code == 0, err
    assert out.count("ladder skipped (no loss metric in the table") == 1
    assert "every task: ladder skipped (no loss metric in the table" in out
    for task in ("task_a", "task_b", "task_c"):
        assert f"sim {task}: auto weighted" in out
    code, csv_out, err = run_in_process(["forecast", "--scores", str(scores), "--target", "target", "--format", "csv"], capsys)
    assert code == 0, err
    assert csv_out.count("ladder skipped (no loss metric in the table") == 3


def test_top_level_clauses_split_only_outside_parentheses():
    from capcast.cli.forecasting import top_level_clauses

    assert top_level_clauses("a (b; c); d; e (f (g; h))") == ["a (b; c)", "d", "e (f (g; h))"]
    assert top_level_clauses("one") == ["one"]


def test_forecast_help_names_every_registered_law(capsys):
    # the help once listed six laws by hand and missed logacc-power, saturating-power and ladder-schedule
    from capcast.plugins.registry import load_registry

    code, out, err = run_in_process(["forecast", "--help"], capsys)
    assert code == 0, err
    flat = " ".join(out.replace("│", " ").split())
    for name in load_registry().laws:
        assert f" {name}," in flat or f" {name} " in flat, name
