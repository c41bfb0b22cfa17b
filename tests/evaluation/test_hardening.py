"""Hardening on tiny real checkpoints: two concurrent writers share one store, the recorded device
and dtype are the ones used, generative scores honour the task's filter_list (checked against
lm-eval's own metric on the same run), NaN weights never become a score."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from capcast.errors import CapcastError
from capcast.evaluation import harness
from capcast.evaluation.runner import evaluate_family
from capcast.plugins.registry import load_registry
from capcast.store import Store
from capcast.testing import build_tiny_family

pytestmark = pytest.mark.slow


def test_two_concurrent_evals_do_the_work_once(tiny_family, tmp_path):
    store = tmp_path / "store"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    args = [sys.executable, "-m", "capcast", "eval", str(tiny_family), "--tasks", "capcast_add_mc", "--store", str(store),
            "--limit", "3", "--device", "cpu", "--batch-size", "4"]
    first, second = (subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2))
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    evaluated = sorted(int(out.split("evaluated ")[1].split()[0]) for out, _ in outs)
    assert evaluated == [0, 3]  # one did all three runs; the other waited, then skipped them
    assert any("waiting for the store" in err for _, err in outs)
    runs = Store(store).runs()
    assert len(runs) == 3 and not runs.duplicated(["checkpoint", "task"]).any()


def test_the_recorded_device_and_dtype_are_the_ones_used(tiny_family, tmp_path, offline_hf_env):
    evaluate_family(tiny_family, ["capcast_add_mc"], tmp_path / "s", limit=2, device="cpu", dtype="auto", checkpoints=["tiny-xs"],
                    progress=False)
    run = Store(tmp_path / "s").runs().iloc[0]
    assert (run["device"], run["dtype"]) == ("cpu", "float32")  # "auto" resolved to the checkpoint's own dtype
    import torch

    if not torch.cuda.is_available():  # a CPU machine: cuda:7 would silently run on the CPU
        with pytest.raises(CapcastError, match="no CUDA GPU"):
            evaluate_family(tiny_family, ["capcast_add_mc"], tmp_path / "s2", device="cuda:7", progress=False)
        assert not (tmp_path / "s2" / "parts").exists()


def test_nan_weights_are_refused_not_scored(tmp_path, offline_hf_env):
    from safetensors.torch import load_file, save_file

    spec = build_tiny_family(tmp_path / "fam", sizes=("xs",))
    weights = tmp_path / "fam" / "tiny-xs" / "model.safetensors"
    save_file({k: v * float("nan") for k, v in load_file(str(weights)).items()}, str(weights), metadata={"format": "pt"})
    with pytest.raises(CapcastError, match="log-likelihoods are NaN"):
        evaluate_family(spec, ["capcast_add_mc"], tmp_path / "s", limit=2, device="cpu", progress=False)
    assert not list((tmp_path / "s").glob("parts/*/*/*"))


def _filtered_task_plugin(tmp_path, checker: bool):
    """A GSM8K-like generative task: a regex filter extracts the answer (fallback "[invalid]") and
    take_first keeps one; half the targets are "[invalid]" so lm-eval's exact_match is well above 0."""
    data = tmp_path / "docs.jsonl"
    data.write_text("".join(json.dumps({"q": f"{i}+{i}=", "ans": "[invalid]" if i % 2 else str(i % 10)}) + "\n" for i in range(8)))
    config = {
        "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test",
        "output_type": "generate_until", "doc_to_text": "{{q}}", "doc_to_target": "{{ans}}", "target_delimiter": "",
        "generation_kwargs": {"until": ["\n"], "max_gen_toks": 4, "do_sample": True, "temperature": 1.0},
        "filter_list": [{"name": "strict-match", "filter": [{"function": "regex", "regex_pattern": "([0-9])"},
                                                            {"function": "take_first"}]}],
        "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}],
    }
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    check = ", checker=lambda response, doc: response == doc['ans']" if checker else ""
    (plugins / "gsm.py").write_text("import capcast\n\n@capcast.hookimpl\ndef register_tasks(register):\n"
                                    f"    register(capcast.Task(name='gsm_like', lm_eval_config={config!r}, repeats=1{check}))\n")
    return load_registry(plugins)


@pytest.mark.parametrize("checker", [False, True], ids=["task-metric", "checker"])
def test_generative_scores_honour_the_filter_list_like_lm_eval(tiny_family, tmp_path, offline_hf_env, checker):
    from capcast.evaluation.scores import scores_from_store

    registry = _filtered_task_plugin(tmp_path, checker)
    evaluate_family(tiny_family, ["gsm_like"], tmp_path / "s", device="cpu", checkpoints=["tiny-s"], registry=registry, progress=False)
    run = Store(tmp_path / "s").runs().iloc[0]
    lm_eval_score = json.loads(run["lm_eval_metrics"])["exact_match,strict-match"]
    ours = scores_from_store(tmp_path / "s").set_index("metric").loc["pass_rate", "value"]
    assert lm_eval_score >= 0.5 and ours == pytest.approx(lm_eval_score)  # old capcast: raw text vs target, 0.0
    assert json.loads((tmp_path / "s" / "parts" / "tiny" / "tiny-s" / "gsm_like" / "run.json").read_text())["filter"] == "strict-match"
    with Store(tmp_path / "s").connect() as con:
        responses = {r[0] for r in con.execute("SELECT response FROM samples").fetchall()}
    assert responses <= {"[invalid]", *"0123456789"}
