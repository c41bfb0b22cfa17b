"""The evaluation library in-process: duplicate weights, sampling API, task resolution, plugins."""

from __future__ import annotations

import json
import textwrap

import pytest

import capcast
from capcast.evaluation import harness
from capcast.errors import CapcastError
from capcast.evaluation.runner import DuplicateWeightsWarning, evaluate_family, resolve_tasks
from capcast.plugins.registry import load_registry
from capcast.store import Store
from capcast.testing import build_tiny_family
from capcast.tasks.arithmetic import add_gen_docs


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


WINO_DOCS = [  # winogrande-like: the choices complete the context, the continuation is shared
    {"options": ["5+2=7 and 1+1=2, so", "5+2=8 and 1+1=2, so"], "label": 0, "rest": "the first sum is right."},
    {"options": ["9-3=5 but 4+4=8, so", "9-3=6 but 4+4=8, so"], "label": 1, "rest": "both sums hold."},
    {"options": ["a cat has 4 legs, so", "a cat has 3 legs, so"], "label": 0, "rest": "cats walk well."},
    {"options": ["2*3=5 is wrong; 2*3=", "2*3=5 is wrong; 2*3=6"], "label": 1, "rest": "is what we want."},
    {"options": ["ten > nine, so we say", "nine > ten, so we say"], "label": 0, "rest": "yes."},
    {"options": ["the sky is green, so", "the sky is blue, so"], "label": 1, "rest": "it is a clear day."},
]


def test_multiple_input_task_gold_and_logliks_match_lm_eval_and_transformers(tiny_family, tmp_path, offline_hf_env):
    """lm-eval's multiple_input tasks (winogrande): doc_to_text gives the gold index, doc_to_choice the
    contexts, and every choice scores the same continuation. is_gold must follow the index (not the
    shared target text, which every choice matches), and the records must match a direct computation."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    data = tmp_path / "wino.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in WINO_DOCS))
    config = {
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "label",  # an int: lm-eval's multiple_input (as winogrande's doc_to_text)
        "doc_to_choice": "options",
        "doc_to_target": "rest",
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")],
    }
    prepared = harness.prepare_task(capcast.Task(name="wino_like", lm_eval_config=config, chance=0.5), tmp_path / "data")
    path = tiny_family.parent / "tiny-s"
    loaded = harness.load_model(str(path), device="cpu", batch_size=4)
    run = harness.run_task(loaded, prepared)
    rows = run.records.to_pandas().sort_values(["doc_id", "choice_idx"])
    assert run.n_docs == len(WINO_DOCS) and len(rows) == 2 * len(WINO_DOCS)
    assert rows.groupby("doc_id")["is_gold"].sum().eq(1).all()  # one gold per doc, not both

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    for row in rows.itertuples():
        doc = WINO_DOCS[row.doc_id]
        context, continuation = doc["options"][row.choice_idx], " " + doc["rest"]
        ids = tok.encode(context + continuation)
        n_context = len(tok.encode(context))
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), dim=-1)
        positions = range(n_context, len(ids))
        assert row.loglik == pytest.approx(sum(logp[i - 1, ids[i]].item() for i in positions), abs=1e-4)
        assert row.is_greedy == all(logp[i - 1].argmax().item() == ids[i] for i in positions)
        assert row.is_gold == (row.choice_idx == doc["label"])
        assert row.n_tokens == len(continuation)  # one token per character, the shared continuation
        assert row.n_bytes == len(continuation.encode("utf-8"))
        assert row.n_chars == len(doc["options"][row.choice_idx])  # lm-eval's acc_norm length: the choice

    # and the records reproduce lm-eval's own acc and acc_norm for this task
    by_doc = list(rows.groupby("doc_id"))
    acc = np.mean([g["is_gold"].to_numpy()[np.argmax(g["loglik"].to_numpy())] for _, g in by_doc])
    acc_norm = np.mean([g["is_gold"].to_numpy()[np.argmax(g["loglik"].to_numpy() / g["n_chars"].to_numpy())] for _, g in by_doc])
    assert acc == pytest.approx(run.lm_eval_metrics["acc,none"])
    assert acc_norm == pytest.approx(run.lm_eval_metrics["acc_norm,none"])


def test_auto_batch_size_records_the_size_lm_eval_used(tiny_family, tmp_path, offline_hf_env):
    store = tmp_path / "store"
    evaluate_family(tiny_family, ["capcast_compare_mc", "capcast_add_gen"], store, limit=2, batch_size="auto",
                    device="cpu", checkpoints=["tiny-xs"], progress=False)
    runs = Store(store).runs()
    assert len(runs) == 2
    for _, run in runs.iterrows():
        # HFLM detects the largest batch that fits (64 at most), for loglikelihood and generation alike
        assert 1 <= int(run["batch_size"]) <= 64, run["batch_size"]
        manifest = json.loads((Store(store).run_dir("tiny", "tiny-xs", run["task"]) / "run.json").read_text())
        assert manifest["batch_size_requested"] == "auto" and manifest["batch_size"] == run["batch_size"]


def test_a_bad_device_is_one_line_before_any_work(tiny_family, tmp_path):
    with pytest.raises(CapcastError, match="--device 'gpu' is not a device; use cpu, cuda or cuda:N"):
        evaluate_family(tiny_family, ["capcast_compare_mc"], tmp_path / "store", device="gpu", progress=False)
    assert not (tmp_path / "store").exists()
