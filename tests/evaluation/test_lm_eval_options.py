"""The options lm-eval users know, on a tiny real checkpoint: --num-fewshot, --model-args,
--gen-kwargs, --include-path (in `capcast eval` and `capcast sample`), and `capcast export-samples`
(lm-eval's --log_samples JSONL of the stored records)."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from capcast import api
from capcast.cli import main
from capcast.errors import CapcastError
from capcast.evaluation import harness
from capcast.evaluation.export import lm_eval_line
from capcast.evaluation.runner import evaluate_family
from capcast.passuntil import rounds
from capcast.passuntil.runner import SamplerConfig
from capcast.plugins.registry import load_registry
from capcast.store import Store

pytestmark = pytest.mark.slow

TASKS = ["capcast_add_mc", "capcast_add_gen"]
LIMIT = 3
SHOTS = 2
OPTIONS = dict(num_fewshot=SHOTS, model_args="dtype=float64", gen_kwargs="temperature=0.5,top_k=5")
CKPT = "tiny-xs"


def _examples(context: str) -> int:
    """Solved sums in an arithmetic context ("a+b=c" lines before the question "a+b=")."""
    return len(re.findall(r"\d+\+\d+=\d+", context))


@pytest.fixture(scope="module")
def evaluated(tiny_family, tmp_path_factory):
    import os

    for key, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
        os.environ.setdefault(key, value)
    store = tmp_path_factory.mktemp("store-options")
    summary = evaluate_family(tiny_family, TASKS, store, limit=LIMIT, batch_size=4, device="cpu", checkpoints=[CKPT], progress=False,
                              **OPTIONS)
    assert len(summary.evaluated) == 2
    return tiny_family, store


def _manifest(store, task):
    return Store(store).run_manifest("tiny", CKPT, task)


def test_options_are_recorded_in_each_runs_settings(evaluated):
    _, store = evaluated
    mc, gen = _manifest(store, "capcast_add_mc"), _manifest(store, "capcast_add_gen")
    for m in (mc, gen):
        assert m["num_fewshot"] == SHOTS
        assert m["model_args"] == {"dtype": "float64"}
        assert m["dtype"] == "float64"  # the weights were loaded in float64: --model-args reached the constructor
    assert gen["gen_kwargs"] == {"temperature": 0.5, "top_k": 5}  # parsed as lm-eval parses them
    assert mc["gen_kwargs"] is None  # lm-eval applies gen_kwargs to generative tasks only


def test_num_fewshot_puts_n_examples_in_every_context_and_gen_kwargs_reach_the_requests(evaluated, tmp_path):
    task = load_registry().tasks["capcast_add_gen"]
    default = harness.prepare_task(task, tmp_path)
    shots = harness.prepare_task(task, tmp_path, num_fewshot=SHOTS, gen_kwargs={"temperature": 0.5})
    plain = harness.build_requests(default, limit=LIMIT)
    fewshot = harness.build_requests(shots, limit=LIMIT)
    assert [_examples(args[0]) for _, _, args in plain] == [0] * LIMIT
    assert [_examples(args[0]) for _, _, args in fewshot] == [SHOTS] * LIMIT
    assert all(args[1]["temperature"] == 0.5 and args[1]["do_sample"] is True for _, _, args in fewshot)
    assert harness.effective_num_fewshot(shots) == SHOTS and harness.effective_num_fewshot(default) == 0


def test_resume_tells_the_few_shot_setting_and_gen_kwargs_apart(evaluated):
    family, store = evaluated
    again = evaluate_family(family, TASKS, store, limit=LIMIT, device="cpu", checkpoints=[CKPT], progress=False, **OPTIONS)
    assert again.evaluated == [] and len(again.skipped) == 2
    with pytest.raises(CapcastError, match=r"num_fewshot") as err:
        evaluate_family(family, ["capcast_add_mc"], store, limit=LIMIT, device="cpu", checkpoints=[CKPT], progress=False)
    assert "\n" not in str(err.value) and "--force" in str(err.value)
    with pytest.raises(CapcastError, match=r"gen_kwargs"):
        evaluate_family(family, ["capcast_add_gen"], store, limit=LIMIT, device="cpu", checkpoints=[CKPT], progress=False,
                        num_fewshot=SHOTS, model_args="dtype=float64", gen_kwargs="temperature=0.9")


@pytest.mark.parametrize("options, fragment", [
    ({"model_args": "pretrained=gpt2"}, "--model-args pretrained=... is not allowed"),
    ({"model_args": "dtype=float64", "dtype": "float32"}, "dtype is given twice"),
    ({"model_args": "max_length"}, "'max_length' is not key=value"),
    ({"gen_kwargs": "temperature"}, "--gen-kwargs 'temperature'"),
    ({"model_args": "dtype=int8"}, "not a floating-point torch dtype"),
    ({"num_fewshot": -1}, "--num-fewshot -1 is negative"),
])
def test_bad_options_are_one_line_before_any_work(options, fragment, tiny_family, tmp_path):
    with pytest.raises(CapcastError) as err:
        evaluate_family(tiny_family, ["capcast_add_mc"], tmp_path / "store", limit=1, device="cpu", progress=False, **options)
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "store").exists()


def test_include_path_runs_an_lm_eval_yaml_as_is(evaluated, tmp_path):
    family, store = evaluated
    data = Store(store).task_data_dir("capcast_add_mc") / "capcast_add_mc.jsonl"
    folder = tmp_path / "my_tasks"
    folder.mkdir()
    # an lm-eval task YAML as lm-eval users write them: the built-in task's prompts over its data file
    (folder / "my_add.yaml").write_text(textwrap.dedent(f"""\
        task: my_add_mc
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        test_split: test
        output_type: multiple_choice
        doc_to_text: "{{{{question}}}}"
        doc_to_choice: choices
        doc_to_target: gold
        target_delimiter: ""
        metric_list:
          - metric: acc
        """))
    assert harness.include_path_tasks(folder) == {"my_add_mc": folder / "my_add.yaml"}
    evaluate_family(family, ["my_add_mc"], store, limit=LIMIT, batch_size=4, device="cpu", checkpoints=[CKPT], progress=False,
                    include_path=folder, **OPTIONS)
    mine, builtin = _manifest(store, "my_add_mc"), _manifest(store, "capcast_add_mc")
    assert mine["task_hash"] == builtin["task_hash"]  # the same docs, few-shot contexts and targets
    with Store(store).connect() as con:
        rows = con.execute("SELECT task, doc_id, choice_idx, loglik FROM choices WHERE checkpoint = ? ORDER BY task, doc_id, choice_idx",
                           [CKPT]).fetchall()
    by_task = {t: [(d, i, ll) for tt, d, i, ll in rows if tt == t] for t in ("my_add_mc", "capcast_add_mc")}
    assert len(by_task["my_add_mc"]) == LIMIT * 4
    assert [r[:2] for r in by_task["my_add_mc"]] == [r[:2] for r in by_task["capcast_add_mc"]]
    assert [r[2] for r in by_task["my_add_mc"]] == pytest.approx([r[2] for r in by_task["capcast_add_mc"]], abs=1e-9)
    with pytest.raises(CapcastError, match="is not a folder"):
        harness.include_path_tasks(tmp_path / "missing")


def test_export_samples_writes_lm_evals_log_samples_lines(evaluated, tmp_path, capsys):
    family, store = evaluated
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as done:
        main(["export-samples", "--store", str(store), "--tasks", ",".join(TASKS), "-o", str(out)])
    assert done.value.code in (0, None), capsys.readouterr().err
    files = {p.name.split("_2")[0]: p for p in (out / "tiny" / CKPT).glob("samples_*.jsonl")}
    assert sorted(files) == ["samples_capcast_add_gen", "samples_capcast_add_mc"]
    exported = {task: [json.loads(line) for line in files[f"samples_{task}"].read_text().splitlines()] for task in TASKS}

    # lm-eval's own logged samples of the same run (same model, options, limit and seed), in its file form
    registry = load_registry()
    loaded = harness.load_model(str(family.parent / CKPT), device="cpu", batch_size=4, model_args={"dtype": "float64"})
    prepared = harness.prepare_task(registry.tasks["capcast_add_mc"], Store(store).task_data_dir("capcast_add_mc"), num_fewshot=SHOTS)
    res, _ = harness._evaluate(loaded, prepared, limit=LIMIT, seed=1234)
    real = [lm_eval_line(s) for s in res["samples"]["capcast_add_mc"]]
    mine = exported["capcast_add_mc"]
    assert len(mine) == LIMIT
    for a, b in zip(mine, real):
        assert set(a) == set(b) >= {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps", "filter", "metrics",
                                     "doc_hash", "prompt_hash", "target_hash", "acc", "acc_norm"}
        assert {k: a[k] for k in a if "resps" not in k} == {k: b[k] for k in b if "resps" not in k}
        assert [float(r[0][0]) for r in a["resps"]] == pytest.approx([float(r[0][0]) for r in b["resps"]], abs=1e-9)
        assert _examples(a["arguments"]["gen_args_0"]["arg_0"]) == SHOTS

    gen = exported["capcast_add_gen"]
    with Store(store).connect() as con:
        texts = con.execute("SELECT doc_id, text FROM samples WHERE task = 'capcast_add_gen' ORDER BY doc_id, sample_idx").fetchall()
    repeats = _manifest(store, "capcast_add_gen")["repeats"]
    for line in gen:
        assert line["resps"] == [[t for d, t in texts if d == line["doc_id"]]] and len(line["resps"][0]) == repeats
        assert line["filtered_resps"] == [line["resps"][0][0].strip()]  # the task's filter: remove_whitespace, take_first
        assert line["arguments"]["gen_args_0"]["arg_1"]["temperature"] == 0.5
        assert line["exact_match"] == float(line["filtered_resps"][0] == line["target"])


def test_sample_takes_the_same_options_and_resume_tells_them_apart(evaluated, tmp_path):
    family, _ = evaluated
    store = tmp_path / "store"
    config = SamplerConfig(successes=1, max_samples_per_instance=4, first_batch=2)
    common = dict(limit=2, batch_size=4, device="cpu", checkpoints=[CKPT])
    api.sample(family, ["capcast_add_gen"], store, config, num_fewshot=1, model_args="dtype=float64", gen_kwargs="temperature=0.7", **common)
    manifest = rounds.read_manifest(rounds.run_dir(Store(store), "tiny", CKPT, "capcast_add_gen"))
    assert manifest["num_fewshot"] == 1 and manifest["gen_kwargs"] == {"temperature": 0.7}
    assert manifest["model_args"] == {"dtype": "float64"}
    with pytest.raises(CapcastError, match="gen_kwargs"):
        api.sample(family, ["capcast_add_gen"], store, config, num_fewshot=1, gen_kwargs="temperature=0.9", **common)
    with pytest.raises(CapcastError, match="num_fewshot|task_hash"):
        api.sample(family, ["capcast_add_gen"], store, config, num_fewshot=3, gen_kwargs="temperature=0.7", **common)
