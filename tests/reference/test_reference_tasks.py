"""The reference tasks: registered by the built-in plugin, valid items, absolute-path configs."""

from __future__ import annotations

import json
from pathlib import Path

from capcast.plugins.registry import load_registry
from capcast.reference import corpus, items
from capcast.reference.tasks import REFERENCE_TASK_NAMES, exact_answer


def test_builtin_plugin_registers_every_reference_task():
    registry = load_registry()
    assert not [b for b in registry.broken if "reference" in b.name]
    assert set(REFERENCE_TASK_NAMES) <= set(registry.tasks)
    kinds = {registry.tasks[n].kind for n in REFERENCE_TASK_NAMES}
    assert kinds == {"multiple_choice", "generate"} and len(REFERENCE_TASK_NAMES) >= 6
    sampled = registry.tasks["ref_add3"]
    assert sampled.repeats > 1 and sampled.default_metric == "pass_rate"


def test_configs_write_their_data_with_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    registry = load_registry()
    for name in REFERENCE_TASK_NAMES:
        task = registry.tasks[name]
        config = task.lm_eval_config(Path("data"))  # relative on purpose: must come back absolute
        data_file = Path(config["dataset_kwargs"]["data_files"]["test"])
        assert data_file.is_absolute() and data_file.is_file()
        docs = [json.loads(line) for line in data_file.read_text().splitlines()]
        assert len(docs) >= 100
        assert config["target_delimiter"] == ""
        if task.kind == "generate":
            sampled = config["generation_kwargs"]["do_sample"]
            assert sampled == (task.repeats > 1)
            assert config["generation_kwargs"]["max_gen_toks"] >= max(len(d["answer"]) for d in docs)
            assert len({d["prompt"] for d in docs}) == len(docs)  # no duplicate items
        # Building twice leaves the file untouched (caches stay valid).
        before = data_file.stat().st_mtime_ns
        task.lm_eval_config(Path("data"))
        assert data_file.stat().st_mtime_ns == before


def test_multiple_choice_golds_are_right():
    world = dict(corpus.entities())
    for doc in items.fact_items():
        assert doc["choices"][doc["label"]] == world[doc["prompt"][2:-1]]
        assert len(set(doc["choices"])) == 4
    for doc in items.carry_items():
        a, b = doc["prompt"].rstrip("=").split("+")
        assert doc["choices"][doc["label"]] == str(int(a) + int(b))
        assert len(set(doc["choices"])) == 4 and all(len(c) == 3 for c in doc["choices"])
    for doc in items.kv_items():
        pairs = dict((p[0], p[1]) for p in doc["prompt"][2:].split("?")[0].split())
        assert doc["choices"][doc["label"]] == pairs[doc["prompt"].split("?")[1][0]]


def test_generative_answers_are_right_and_checked_exactly():
    for doc in items.add3_items():
        a, b = doc["prompt"].rstrip("=").split("+")
        assert doc["answer"] == str(int(a) + int(b))
        assert exact_answer(f" {doc['answer']}\n", doc)
        assert not exact_answer(doc["answer"] + "0", doc)
    assert all(d["answer"] == d["prompt"][2:-1] for d in items.copy_items())


def test_facts_span_popular_to_rare_entities():
    ranks = [d["rank"] for d in items.fact_items()]
    assert min(ranks) == 0 and max(ranks) == corpus.N_ENTITIES - 1
    assert items.fact_items() == items.fact_items()  # deterministic
