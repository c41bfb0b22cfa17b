"""The evaluation library in-process: duplicate weights, sampling API, task resolution, plugins."""

from __future__ import annotations

import json
import textwrap

import pytest

import capcast
from capcast import harness
from capcast.errors import CapcastError
from capcast.evaluate import DuplicateWeightsWarning, evaluate_family, resolve_tasks
from capcast.plugins import load_registry
from capcast.store import Store
from capcast.testing import build_tiny_family
from capcast_tasks.arithmetic import add_gen_docs


def test_duplicate_weights_under_two_names_warn(tmp_path, offline_hf_env):
    spec = build_tiny_family(tmp_path / "fam", sizes=("xs", "s"), duplicate_of="tiny-xs")
    with pytest.warns(DuplicateWeightsWarning, match="tiny-xs, tiny-xs-copy have identical weights"):
        summary = evaluate_family(spec, ["capcast_compare_mc"], tmp_path / "store", limit=2, progress=False)
    assert summary.duplicates == [["tiny-xs", "tiny-xs-copy"]]
    runs = Store(tmp_path / "store").runs().set_index("checkpoint")
    assert runs.loc["tiny-xs", "weights_hash"] == runs.loc["tiny-xs-copy", "weights_hash"] != runs.loc["tiny-s", "weights_hash"]


def test_generate_samples_draws_n_per_doc_reproducibly(tiny_family, tmp_path, offline_hf_env):
    registry = load_registry()
    task = registry.tasks["capcast_add_gen"]
    prepared = harness.prepare_task(task, tmp_path / "data")
    model = str(tiny_family.parent / "tiny-s")
    loaded = harness.load_model(model, device="cpu", batch_size=4)
    first = harness.generate_samples(loaded, None, prepared, tmp_path / "data", [3, 0], n_per_doc=5, seed=7, batch_size=4)
    again = harness.generate_samples(loaded, None, prepared, tmp_path / "data", [0, 3], n_per_doc=5, seed=7, batch_size=4)
    other = harness.generate_samples(loaded, None, prepared, tmp_path / "data", [0, 3], n_per_doc=5, seed=8, batch_size=4)
    assert sorted(first) == [0, 3] and all(len(v) == 5 for v in first.values())
    assert first == again
    assert first != other
    # A plain model path loads its own model; the docs are the task's, in doc_id order.
    fresh = harness.generate_samples(model, None, task, tmp_path / "data", [0, 3], n_per_doc=5, seed=7, batch_size=4, device="cpu")
    assert fresh == first
    docs = harness.task_docs(prepared, tmp_path / "data")
    assert [d["question"] for d in docs[:4]] == [d["question"] for d in add_gen_docs(4, 3, 1234)]


def test_generate_samples_refuses_multiple_choice(tiny_family, tmp_path, offline_hf_env):
    task = load_registry().tasks["capcast_add_mc"]
    with pytest.raises(CapcastError, match="needs a generative task"):
        harness.generate_samples(str(tiny_family.parent / "tiny-s"), None, task, tmp_path, [0], 2, device="cpu")


def test_unknown_task_names_list_the_known_ones():
    with pytest.raises(CapcastError) as err:
        resolve_tasks(["capcast_add_mc", "no_such_task_anywhere"], load_registry())
    message = str(err.value)
    assert "\n" not in message
    assert "unknown task 'no_such_task_anywhere'" in message
    assert all(name in message for name in ("capcast_add_gen", "capcast_add_mc", "capcast_compare_mc"))


def test_plugin_tasks_from_a_yaml_file_and_a_dict_run(tiny_family, tmp_path, offline_hf_env):
    data = tmp_path / "yesno.jsonl"
    data.write_text("".join(json.dumps({"q": f"{i}?", "a": i % 2}) + "\n" for i in range(6)))
    config = {
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{q}}",
        "doc_to_choice": ["no", "yes"],
        "doc_to_target": "a",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }
    yaml_file = tmp_path / "yesno_yaml.yaml"
    yaml_file.write_text(json.dumps({**config, "task": "yesno_yaml"}))  # JSON is YAML
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "yesno.py").write_text(
        textwrap.dedent(
            f"""
            import capcast

            @capcast.hookimpl
            def register_tasks(register):
                register(capcast.Task(name="yesno_dict", lm_eval_config={config!r}, chance=0.5))
                register(capcast.Task(name="yesno_file", lm_eval_config={str(yaml_file)!r}, chance=0.5))
            """
        )
    )
    registry = load_registry(plugins)
    summary = evaluate_family(tiny_family, ["yesno_dict", "yesno_file"], tmp_path / "store", registry=registry,
                              checkpoints=["tiny-s"], progress=False)
    assert sorted(summary.evaluated) == [("tiny-s", "yesno_dict"), ("tiny-s", "yesno_file")]
    with Store(tmp_path / "store").connect() as con:
        rows = con.execute(
            "SELECT task, count(*), sum(is_gold::INT), min(n_bytes), max(n_bytes) FROM choices GROUP BY task ORDER BY task"
        ).fetchall()
        same = con.execute(
            """SELECT count(*) FROM choices a JOIN choices b USING (doc_id, choice_idx)
               WHERE a.task = 'yesno_dict' AND b.task = 'yesno_file' AND abs(a.loglik - b.loglik) < 1e-9"""
        ).fetchone()[0]
    # 6 docs x 2 choices; continuations are " no" / " yes" (default target delimiter " ").
    assert rows == [("yesno_dict", 12, 6, 3, 4), ("yesno_file", 12, 6, 3, 4)]
    assert same == 12


def test_wrong_kind_in_a_plugin_is_a_one_line_error(tmp_path):
    task = capcast.Task(name="bad", lm_eval_config={"output_type": "multiple_choice", "dataset_path": "json"}, kind="generate")
    with pytest.raises(CapcastError, match="registered as generate but its lm-eval config says multiple_choice"):
        harness.prepare_task(task, tmp_path)
