"""The standard benchmarks from local files: the requests capcast sends equal those lm-eval's own
task config builds for the same documents (few-shot contexts included), every task runs offline
through ``capcast eval --data-dir`` on a tiny checkpoint, and bad data fails in one line."""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pytest

from capcast.errors import CapcastError
from capcast.tasks import standard

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "benchmarks"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason=f"benchmark files not present at {DATA} (only the project machines have them)")


def _rows(relative: str) -> list[dict]:
    path = DATA / relative
    text = gzip.open(path, "rt", encoding="utf-8").read() if path.suffix == ".gz" else path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def _subject(rows, subject):
    return [r for r in rows if r["subject"] == subject]


# The hub datasets lm-eval's YAMLs name, rebuilt here from the files independently of capcast's
# converters: split -> rows.
REFERENCE = {
    "arc_easy": lambda: {"validation": _rows("arc/ARC-Easy-validation.jsonl")},
    "arc_challenge": lambda: {"validation": _rows("arc/ARC-Challenge-validation.jsonl")},
    "hellaswag": lambda: {"validation": [{**r, "label": str(r["label"])} for r in _rows("hellaswag/hellaswag_val.jsonl.gz")]},
    "piqa": lambda: {"validation": _rows("piqa/piqa-validation-hf.jsonl")},
    "sciq": lambda: {"validation": _rows("sciq/sciq-validation.jsonl")},
    "winogrande": lambda: {"validation": _rows("winogrande/winogrande_xl-validation.jsonl")},
    "lambada_openai": lambda: {"test": _rows("lambada/lambada_openai-text.jsonl")},
    "boolq": lambda: {"validation": [{"question": r["question"], "passage": r["passage"], "label": int(r["answer"])}
                                     for r in _rows("boolq/boolq-validation.jsonl")]},
    "gsm8k": lambda: {"train": _rows("gsm8k/train.jsonl.gz"), "test": _rows("gsm8k/test.jsonl")},
    "humaneval": lambda: {"test": _rows("humaneval/HumanEval.jsonl.gz")},
    "mmlu_anatomy": lambda: {"test": _subject(_rows("mmlu/mmlu-test.jsonl.gz"), "anatomy"),
                             "validation": _subject(_rows("mmlu/mmlu-validation.jsonl"), "anatomy"),
                             "dev": _subject(_rows("mmlu/mmlu-dev.jsonl"), "anatomy")},
}
# None: the task's own setting (gsm8k: 5). HellaSwag zero-shot: its 10k docs through process_docs
# twice would cost ~20 s; its few-shot path is the same lm-eval code as the other tasks'.
FEWSHOT = {"gsm8k": None, "humaneval": None, "mmlu_anatomy": 5, "lambada_openai": 0, "hellaswag": 0}


def _lm_eval_own_requests(name: str, limit: int, num_fewshot):
    """lm-eval's own YAML for the task, unchanged except that its dataset is the REFERENCE rows."""
    import datasets
    from lm_eval.tasks import TaskManager
    from lm_eval.tasks._yaml_loader import load_yaml

    bench = next(b for b in standard.benchmarks() if b.name == name)
    if name == "humaneval":  # its utils.py loads HF evaluate's code_eval from the hub on import: read the YAML without hooks
        import yaml

        class NoHooks(yaml.SafeLoader):
            pass

        NoHooks.add_multi_constructor("!", lambda loader, suffix, node: None)
        config = yaml.load((standard.lm_eval_tasks_dir() / bench.yaml).read_text(), Loader=NoHooks)  # noqa: S506
        config.pop("filter_list")
    else:
        config = load_yaml(standard.lm_eval_tasks_dir() / bench.yaml, resolve_func=True, recursive=True)
    splits = REFERENCE[name]()
    if num_fewshot == 0:  # zero-shot contexts depend on the evaluated docs alone
        splits = {k: v[:limit] for k, v in splits.items()}
    config["custom_dataset"] = lambda **_: datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in splits.items()})
    for key in standard.SPLIT_KEYS:
        if config.get(key) is not None and config[key] not in splits:
            config[key] = None  # the hub dataset has it; the local folder does not
    if name == "humaneval":  # metrics do not shape requests
        config["metric_list"] = [{"metric": "bypass", "aggregation": "bypass", "higher_is_better": True}]
    obj = TaskManager(include_defaults=False).load([config])["tasks"][name]
    obj.set_config(key="num_fewshot", value=num_fewshot if num_fewshot is not None else (obj.get_config("num_fewshot") or 0))
    obj.set_fewshot_seed(seed=1234)
    obj.build_all_requests(limit=limit, rank=0, world_size=1)
    return sorted((int(i.doc_id), int(i.idx), tuple(i.arguments)) for i in obj.instances)


@needs_data
@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_requests_equal_lm_evals_own_for_the_same_docs(name, tmp_path, monkeypatch):
    from capcast.evaluation import harness

    monkeypatch.setenv(standard.DATA_DIR_ENV, str(DATA))
    task = next(t for t in standard.standard_tasks() if t.name == name)
    prepared = harness.prepare_task(task, tmp_path / name)
    fewshot = FEWSHOT.get(name, 2)  # multiple choice: 2-shot, so few-shot contexts are compared too
    ours = harness.build_requests(prepared, limit=3, num_fewshot=fewshot)
    theirs = _lm_eval_own_requests(name, 3, fewshot)
    assert len(ours) >= 3
    if name == "lambada_openai":  # a one-choice task: the same (context, continuation) as lm-eval's loglikelihood request
        assert [(d, a) for d, _, a in ours] == [(d, a) for d, _, a in theirs]
    else:
        assert ours == theirs
    if fewshot or name == "gsm8k":
        assert ours[0][2][0].count("\n\n") >= (fewshot or 5)  # few-shot examples really are in the context


@pytest.fixture(scope="module")
def one_tiny_checkpoint(tmp_path_factory):
    """One random-init tiny checkpoint whose context may hold GSM8K's 5-shot prompt and HumanEval's
    1024 generated tokens (rotary positions: a longer limit needs no other weights)."""
    from capcast.testing import build_tiny_family

    spec = build_tiny_family(tmp_path_factory.mktemp("one-tiny"), sizes=("xs",), seed=0)
    config = spec.parent / "tiny-xs" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "max_position_embeddings": 4096}))
    return spec


@needs_data
@pytest.mark.slow
def test_every_standard_task_runs_offline_through_capcast_eval(one_tiny_checkpoint, tmp_path, monkeypatch):
    from capcast.cli import main
    from capcast.evaluation.scores import scores_from_store

    tiny_family = one_tiny_checkpoint
    monkeypatch.delenv(standard.DATA_DIR_ENV, raising=False)

    names = ["arc_easy", "arc_challenge", "hellaswag", "piqa", "sciq", "winogrande", "lambada_openai", "boolq", "mmlu_anatomy", "gsm8k", "humaneval"]
    store = tmp_path / "store"
    try:
        main(["eval", str(tiny_family), "-t", ",".join(names), "--store", str(store), "--limit", "2", "--data-dir", str(DATA)])
    except SystemExit as exc:
        assert not exc.code
    # --data-dir held for the command only: a later evaluation in this process does not find it
    assert standard.DATA_DIR_ENV not in os.environ
    scores = scores_from_store(store)
    assert set(scores["task"]) == set(names)
    assert (scores.loc[scores["metric"] == "acc", "n_items"] == 2).all()
    bpb = scores[(scores["task"] == "lambada_openai") & (scores["metric"] == "bpb_gold")]["value"]
    assert (bpb > 0).all()


@needs_data
def test_missing_files_name_the_file_the_task_and_the_source(tmp_path, monkeypatch):
    monkeypatch.setenv(standard.DATA_DIR_ENV, str(tmp_path))
    bench = next(b for b in standard.benchmarks() if b.name == "gsm8k")
    with pytest.raises(CapcastError) as missing:
        standard.build_config(bench, tmp_path / "out")
    message = str(missing.value)
    assert "'gsm8k'" in message and "gsm8k/test.jsonl" in message and "grade-school-math" in message and "\n" not in message


def test_bad_data_dir_bad_file_and_wrong_format_are_one_line_each(tmp_path, monkeypatch):
    with pytest.raises(CapcastError, match="is not a folder"):
        standard.checked_data_dir(tmp_path / "nowhere")
    arc = next(b for b in standard.benchmarks() if b.name == "arc_easy")
    (tmp_path / "arc").mkdir()
    bad = tmp_path / "arc" / "ARC-Easy-validation.jsonl"
    monkeypatch.setenv(standard.DATA_DIR_ENV, str(tmp_path))
    bad.write_text('{"question": "q", "answerKey": "A", "choices": {"text": ["x"], "label": ["A"]}}\n{not json\n')
    with pytest.raises(CapcastError) as broken:
        standard.build_config(arc, tmp_path / "out")
    assert "line 2 is not JSON" in str(broken.value) and str(bad) in str(broken.value) and "\n" not in str(broken.value)
    bad.write_text('{"query": "Question: q", "choices": ["x"], "gold": 0}\n')  # llm-foundry's layout, not ARC's
    with pytest.raises(CapcastError) as wrong:
        standard.build_config(arc, tmp_path / "out")
    assert "without question, answerKey" in str(wrong.value) and "allenai.org/data/arc" in str(wrong.value)


def test_official_release_layouts_convert_to_the_hub_schema(tmp_path, monkeypatch):
    """AI2's ARC jsonl, hendrycks' MMLU CSV, PIQA's separate label file, Google's BoolQ."""
    (tmp_path / "arc").mkdir()
    (tmp_path / "arc" / "ARC-Easy-Test.jsonl").write_text(json.dumps(
        {"id": "x1", "question": {"stem": "Which?", "choices": [{"text": "a", "label": "A"}, {"text": "b", "label": "B"}]}, "answerKey": "B"}) + "\n")
    (tmp_path / "mmlu" / "data" / "test").mkdir(parents=True)
    (tmp_path / "mmlu" / "data" / "test" / "anatomy_test.csv").write_text('"What, then?",w,x,y,z,C\n')
    (tmp_path / "piqa").mkdir()
    (tmp_path / "piqa" / "valid.jsonl").write_text('{"goal": "g", "sol1": "s1", "sol2": "s2"}\n')
    (tmp_path / "piqa" / "valid-labels.lst").write_text("1\n")
    (tmp_path / "boolq").mkdir()
    (tmp_path / "boolq" / "dev.jsonl").write_text('{"question": "is it", "title": "t", "answer": true, "passage": "p"}\n')
    monkeypatch.setenv(standard.DATA_DIR_ENV, str(tmp_path))
    expected = {
        "arc_easy": ("test", {"id": "x1", "question": "Which?", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "B"}),
        "mmlu_anatomy": ("test", {"question": "What, then?", "subject": "anatomy", "choices": ["w", "x", "y", "z"], "answer": 2}),
        "piqa": ("validation", {"goal": "g", "sol1": "s1", "sol2": "s2", "label": 1}),
        "boolq": ("validation", {"question": "is it", "passage": "p", "label": 1}),
    }
    for name, (split, row) in expected.items():
        bench = next(b for b in standard.benchmarks() if b.name == name)
        standard.build_config(bench, tmp_path / "out" / name)
        assert json.loads((tmp_path / "out" / name / f"{split}.jsonl").read_text()) == row


def test_gsm8k_checker_is_lm_evals_strict_match():
    doc = {"answer": "She makes 9 * 2 = $18.\n#### 1,018"}
    assert standard.gsm8k_answer("so the answer is\n#### 1018.", doc)
    assert not standard.gsm8k_answer("the answer is 1018", doc)  # strict: needs '#### '
    assert not standard.gsm8k_answer("#### 17", doc)


def test_humaneval_refuses_without_the_sandbox(tmp_path, monkeypatch):
    from capcast.tasks import sandbox

    monkeypatch.setattr(sandbox, "isolation", lambda: sandbox.Isolation(None, "bubblewrap is not installed", False))
    monkeypatch.delenv(sandbox.UNSAFE_ENV, raising=False)
    bench = next(b for b in standard.benchmarks() if b.name == "humaneval")
    with pytest.raises(CapcastError, match="bubblewrap is not installed"):
        standard.build_config(bench, tmp_path)


def test_every_issue_benchmark_is_registered_with_its_metadata():
    tasks = {t.name: t for t in standard.standard_tasks()}
    for name in ("arc_easy", "arc_challenge", "hellaswag", "mmlu", "piqa", "sciq", "winogrande", "lambada_openai", "boolq", "gsm8k", "humaneval"):
        assert name in tasks, name
    assert sum(n.startswith("mmlu_") for n in tasks) == 57
    assert tasks["arc_challenge"].metric == "acc_norm" and tasks["arc_easy"].chance == 0.25 and tasks["piqa"].chance == 0.5
    assert tasks["hellaswag"].loss_metric == "bpb_gold"
    assert tasks["gsm8k"].kind == "generate" and tasks["gsm8k"].checker is standard.gsm8k_answer
    assert getattr(tasks["humaneval"].checker, "requires_sandbox", False)


def test_use_benchmark_data_holds_for_a_with_block_or_for_the_process(tmp_path, monkeypatch):
    from capcast import api
    from capcast.tasks import sandbox

    monkeypatch.delenv(standard.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv(sandbox.UNSAFE_ENV, "0")
    with api.use_benchmark_data(tmp_path, allow_unsafe_code=True):
        assert standard.data_dir() == tmp_path.resolve() and os.environ[sandbox.UNSAFE_ENV] == "1"
    assert standard.DATA_DIR_ENV not in os.environ and os.environ[sandbox.UNSAFE_ENV] == "0"  # what was there before
    with pytest.raises(CapcastError, match="is not a folder"):
        api.use_benchmark_data(tmp_path / "nowhere")
    assert standard.DATA_DIR_ENV not in os.environ  # a refused folder sets nothing
    api.use_benchmark_data(tmp_path)  # a plain call: the rest of the process (monkeypatch undoes it)
    assert standard.data_dir() == tmp_path.resolve()
