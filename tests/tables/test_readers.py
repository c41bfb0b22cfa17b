"""Readers of external results through ``capcast import``: lm-eval results JSON written by the real
lm-eval CLI on tiny checkpoints, the Pythia and OpenLM suites (skipped where ../shared/data is
absent), and a third-party reader from a plugins folder."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from capcast.errors import CapcastError
from capcast.plugins.registry import load_registry
from capcast.tables.readers import import_scores
from capcast.tables.readers.lm_eval_results import LmEvalReaderWarning, metric_name

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("CAPCAST_SHARED_DATA", REPO.parent / "shared" / "data"))
TASK = "readers_max_mc"
LIMIT = 20

TASK_YAML = """\
task: {task}
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
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1
"""

TOY_READER_PLUGIN = '''
from pathlib import Path
import pandas as pd
import capcast

def read(source, spec):
    rows = []
    for line in Path(source).read_text().splitlines():
        model, params, tokens, task, acc = line.split()
        rows.append({"family": "toy", "run": model, "model": model, "params": float(params), "tokens": float(tokens),
                     "task": task, "metric": "acc", "value": float(acc)})
    return pd.DataFrame(rows)

@capcast.hookimpl
def register_readers(register):
    register(capcast.Reader(name="toy-lines", read=read, description="model params tokens task acc per line"))
'''


def clean_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "CAPCAST_PLUGINS_DIR"}
    env.update({"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp / "hf-datasets"),
                "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"})
    return env


def run_cli(*args: str, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "capcast", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def write_task(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    with open(folder / "docs.jsonl", "w") as fh:
        for _ in range(30):
            a, b = rng.sample(range(10, 100), 2)
            fh.write(json.dumps({"question": f"max({a},{b})=", "choices": [str(a), str(b)], "gold": 0 if a > b else 1}) + "\n")
    (folder / f"{TASK}.yaml").write_text(TASK_YAML.format(task=TASK, data=folder / "docs.jsonl"))
    return folder


@pytest.fixture(scope="module")
def lm_eval_run(tmp_path_factory):
    """(family.yaml, lm-eval --output_path folder, env): the real lm-eval CLI run on two tiny checkpoints."""
    from capcast.testing import build_tiny_family

    tmp = tmp_path_factory.mktemp("lm-eval-readers")
    spec = build_tiny_family(tmp / "family", sizes=("xs", "s"))
    tasks = write_task(tmp / "tasks")
    out = tmp / "lm-eval-out"
    env = clean_env(tmp)
    procs = []
    for ckpt in yaml.safe_load(spec.read_text())["checkpoints"]:
        model = spec.parent / ckpt["name"]
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=float32",
             "--tasks", TASK, "--include_path", str(tasks), "--limit", str(LIMIT), "--output_path", str(out),
             "--device", "cpu", "--batch_size", "8"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp))
    for proc in procs:
        log, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, log[-3000:]
    return spec, out, env


def results_json(out: Path) -> dict[str, dict]:
    """checkpoint name -> its lm-eval results JSON (the folder is lm-eval's sanitized model path)."""
    found = {}
    for path in out.rglob("results_*.json"):
        data = json.loads(path.read_text())
        found[Path(data["config"]["model_args"]["pretrained"]).name] = data
    return found


def test_real_lm_eval_results_import_then_forecast(lm_eval_run, tmp_path) -> None:
    spec, out, env = lm_eval_run
    scores = tmp_path / "scores.csv"
    proc = run_cli("import", str(out), "--reader", "lm-eval-results", "--spec", str(spec), "-o", str(scores), env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote 4 rows (2 checkpoints, 1 tasks) to {scores}" in proc.stderr
    table = pd.read_csv(scores)
    family = yaml.safe_load(spec.read_text())
    by_name = {c["name"]: c for c in family["checkpoints"]}
    raw = results_json(out)
    assert set(raw) == set(by_name) == set(table["model"])
    for name, data in raw.items():
        rows = table[table["model"] == name].set_index("metric")
        assert rows.loc["acc", "value"] == data["results"][TASK]["acc,none"]
        assert rows.loc["acc_norm", "value"] == data["results"][TASK]["acc_norm,none"]
        assert set(rows["n_items"]) == {data["n-samples"][TASK]["effective"]} == {LIMIT}
        assert set(rows["params"]) == {by_name[name]["params"]} and set(rows["tokens"]) == {by_name[name]["tokens"]}
        assert set(rows["run"]) == {name} and set(rows["family"]) == {"tiny"} and set(rows["step"]) == {1000}
    assert set(table["task"]) == {TASK}

    forecast = run_cli("forecast", "--scores", str(scores), "--target-params", "1e5", "--target-tokens", "2e6", "--format", "csv", env=env)
    assert forecast.returncode == 0, forecast.stderr
    assert TASK in forecast.stdout
    # lm-eval records no chance and capcast does not know this task: the forecast says its floor is 0
    assert f"note: no chance in the table for 1 task(s) (acc) and none known: {TASK}: their floor is 0" in forecast.stderr


def test_lm_eval_results_without_spec_is_one_line_error(lm_eval_run, tmp_path) -> None:
    _, out, env = lm_eval_run
    proc = run_cli("import", str(out), "--reader", "lm-eval-results", "-o", str(tmp_path / "s.csv"), env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "training tokens" in lines[0] and "--spec FAMILY.yaml" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "s.csv").exists()


def _copy_run(out: Path, dest: Path) -> Path:
    shutil.copytree(out, dest)
    return dest


def test_newest_results_file_wins_with_a_warning(lm_eval_run, tmp_path) -> None:
    spec, out, _ = lm_eval_run
    folder = _copy_run(out, tmp_path / "out")
    original = next(p for p in folder.rglob("results_*.json") if p.parent.name.endswith("tiny-xs"))
    data = json.loads(original.read_text())
    data["results"][TASK]["acc,none"] = 0.125
    del data["results"][TASK]["acc_norm,none"]
    newest = original.parent / "results_2999-01-01T00-00-00.000001.json"
    newest.write_text(json.dumps(data))
    (original.parent / "results_1999-01-01T00-00-00.000001.json").write_text(json.dumps({**data, "results": {TASK: {"acc,none": 0.875}}}))
    with pytest.warns(LmEvalReaderWarning) as caught:
        table = import_scores(folder, reader="lm-eval-results", spec=spec)
    messages = [str(w.message) for w in caught if issubclass(w.category, LmEvalReaderWarning)]
    assert len(messages) == 2 and all("tiny-xs" in m for m in messages)  # 1999 < original < 2999
    assert any(m.endswith("kept the newer " + str(newest.relative_to(folder))) for m in messages)
    xs = table[table["model"] == "tiny-xs"].set_index("metric")["value"]
    assert xs["acc"] == 0.125  # from the newest file
    assert xs["acc_norm"] == json.loads(original.read_text())["results"][TASK]["acc_norm,none"]  # only in the original
    assert len(table) == 4


def test_filters_folder_matching_revisions_and_old_model_args(lm_eval_run, tmp_path) -> None:
    spec, out, _ = lm_eval_run
    data = json.loads(next(out.rglob("results_*.json")).read_text())
    data["results"][TASK]["exact_match,strict-match"] = 0.25
    data["results"][TASK]["exact_match_stderr,strict-match"] = 0.1
    data["results"][TASK]["bleu,none"] = "N/A"
    # (b): a hub id no checkpoint names, in a folder named after the checkpoint
    hub = {**data, "config": {**data["config"], "model_args": {"pretrained": "org/elsewhere"}}}
    (tmp_path / "src" / "tiny-s").mkdir(parents=True)
    (tmp_path / "src" / "tiny-s" / "results_2020-01-01T00-00-00.json").write_text(json.dumps(hub))
    table = import_scores(tmp_path / "src", spec=spec)  # detected: only lm-eval-results claims it
    assert set(table["model"]) == {"tiny-s"}
    assert set(table["metric"]) == {"acc", "acc_norm", "exact_match/strict-match"}
    assert metric_name("acc,none") == "acc" and metric_name("acc_stderr,none") is None

    # (a) with a revision, in lm-eval's older "k=v,k=v" model_args text
    family = yaml.safe_load(spec.read_text())
    family["checkpoints"].append({**family["checkpoints"][0], "name": "tiny-xs-step500", "revision": "step500", "tokens": 1000, "step": 500})
    spec2 = spec.parent / "family-rev.yaml"
    spec2.write_text(yaml.safe_dump(family))
    older = {**data, "config": {**data["config"], "model_args": f"pretrained={spec.parent / 'tiny-xs'},revision=step500,dtype=float32"}}
    del older["n-samples"]
    older["results"] = {TASK: {k: v for k, v in data["results"][TASK].items() if k != "sample_len"}}
    (tmp_path / "rev" / "anywhere").mkdir(parents=True)
    (tmp_path / "rev" / "anywhere" / "results_2020-01-01T00-00-00.json").write_text(json.dumps(older))
    table = import_scores(tmp_path / "rev", reader="lm-eval-results", spec=spec2)
    assert set(table["model"]) == {"tiny-xs-step500"} and set(table["tokens"]) == {1000} and set(table["run"]) == {"tiny-xs"}
    em = table[table["metric"] == "exact_match/strict-match"]["n_items"].iloc[0]
    assert em == round(0.25 * 0.75 / 0.1**2 + 1)  # from the stderr when n-samples is absent

    # no checkpoint matches: the file and its model_args are named
    (tmp_path / "none" / "x").mkdir(parents=True)
    (tmp_path / "none" / "x" / "results_2020-01-01T00-00-00.json").write_text(json.dumps(hub))
    with pytest.raises(CapcastError, match=r"results_2020.*matches no checkpoint.*pretrained=org/elsewhere"):
        import_scores(tmp_path / "none", reader="lm-eval-results", spec=spec)


def test_bad_inputs_are_one_line_errors(tmp_path) -> None:
    (tmp_path / "results_x.json").write_text("{not json")
    (tmp_path / "family.yaml").write_text("family: f\ncheckpoints:\n- {name: a, model: org/a, params: 10, tokens: 100}\n")
    registry = load_registry()
    for source, kwargs, message in [
        (tmp_path / "results_x.json", {"spec": tmp_path / "family.yaml"}, "cannot read it as JSON"),
        (tmp_path / "missing", {}, "no such file or folder"),
        (tmp_path, {"reader": "nope"}, "unknown reader 'nope'"),
        (tmp_path / "family.yaml", {}, "no reader recognises it; pass --reader NAME"),
        (tmp_path, {"reader": "lm-eval-results", "spec": tmp_path / "nope.yaml"}, "no such family spec"),
    ]:
        with pytest.raises(CapcastError, match=message) as info:
            import_scores(source, registry=registry, **kwargs)
        assert "\n" not in str(info.value)


@pytest.mark.skipif(not (SHARED_DATA / "pythia").is_dir(), reason="shared data folder absent (../shared/data)")
def test_pythia_and_openlm_through_capcast_import(tmp_path) -> None:
    env = clean_env(tmp_path)
    env["CAPCAST_SHARED_DATA"] = str(SHARED_DATA)
    pythia_csv, openlm_csv = tmp_path / "pythia.csv", tmp_path / "openlm.parquet"
    proc = run_cli("import", str(SHARED_DATA / "pythia"), "-o", str(pythia_csv), env=env)  # detected
    assert proc.returncode == 0, proc.stderr
    pythia = pd.read_csv(pythia_csv)
    final = pythia[(pythia.step == 143000) & (pythia.metric == "acc")].set_index(["model", "task"])["value"]
    facts = {("pythia-70m", "arc_easy"): 0.3737, ("pythia-1.4b", "arc_easy"): 0.6065, ("pythia-6.9b", "arc_easy"): 0.6734,
             ("pythia-12b", "arc_easy"): 0.7024, ("pythia-70m", "lambada_openai"): 0.1846, ("pythia-1.4b", "lambada_openai"): 0.6161,
             ("pythia-6.9b", "lambada_openai"): 0.6728, ("pythia-12b", "lambada_openai"): 0.7046}
    for key, expected in facts.items():
        assert final[key] == pytest.approx(expected, abs=5e-5)
    one_b = pythia[(pythia.model == "pythia-1b") & (pythia.step == 143000)]
    assert one_b["params"].iloc[0] == 805_736_448 and one_b["tokens"].iloc[0] == 143000 * 2_097_152
    assert (pythia["run"] == pythia["model"]).all()
    assert {"pythia", "pythia-deduped", "pythia-5shot", "pythia-deduped-5shot"} == set(pythia["family"])
    assert pythia[pythia.family == "pythia"].groupby("model")["step"].nunique().min() == 27

    proc = run_cli("import", str(SHARED_DATA / "openlm-overtraining" / "exp_data"), "--reader", "openlm", "-o", str(openlm_csv), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "(104 checkpoints," in proc.stderr
    openlm = pd.read_parquet(openlm_csv)
    assert openlm[openlm.metric == "acc"]["task"].nunique() == 46 and (openlm["run"] == openlm["model"]).all()
    c4 = openlm[(openlm.model == "rw_original-open_lm_7b-1.0") & (openlm.task == "val/c4")]
    assert float(c4["value"].iloc[0]) == pytest.approx(2.4547, abs=1e-4)


@pytest.mark.skipif(not (SHARED_DATA / "pythia").is_dir(), reason="shared data folder absent (../shared/data)")
def test_pythia_mmlu_subjects_as_tasks_of_their_own() -> None:
    """``subjects=True`` (the wide development split of benchmarks/forecast_accuracy.py) keeps each
    of MMLU's 57 subjects as ``mmlu_<subject>``; ``mmlu`` stays their mean, its items their sum."""
    from capcast.tables.readers.pythia import read_pythia
    from capcast.tasks.chance import known_chance

    frame = read_pythia(SHARED_DATA / "pythia", deduped=False, subjects=True)
    final = frame[(frame.model == "pythia-12b") & (frame.step == 143000) & (frame.metric == "acc")]
    subjects = final[final.task.str.startswith("mmlu_")]
    assert len(subjects) == 57 and subjects.task.is_unique and "mmlu_abstract_algebra" in set(subjects.task)
    mean = final[final.task == "mmlu"].iloc[0]
    assert mean["value"] == pytest.approx(subjects["value"].mean(), abs=1e-12)
    assert mean["n_items"] == subjects["n_items"].sum()
    assert subjects["n_items"].min() >= 100 and (subjects["chance"] == 0.25).all()
    assert all(known_chance(task, "acc")[0] == 0.25 for task in subjects.task)  # the lm-eval table agrees
    plain = read_pythia(SHARED_DATA / "pythia", deduped=False)
    assert not plain.task.str.startswith("mmlu_").any()
    evaluations = plain.groupby(["model", "step"]).ngroups  # each adds 57 subjects x (acc, acc_norm)
    assert len(frame) == len(plain) + 2 * 57 * evaluations


@pytest.mark.skipif(not (SHARED_DATA / "pythia").is_dir(), reason="shared data folder absent (../shared/data)")
def test_pythia_baselines_opt_and_bloom_through_capcast_import(tmp_path) -> None:
    """OPT and BLOOM (the Pythia paper's baselines, one final checkpoint per size): read from the
    pythia data folder by name, detected on evals/opt itself, and --spec refused in one line."""
    env = clean_env(tmp_path)
    out = tmp_path / "baselines.csv"
    proc = run_cli("import", str(SHARED_DATA / "pythia"), "--reader", "pythia-baselines", "-o", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "(13 checkpoints," in proc.stderr  # 8 OPT sizes, 5 BLOOM sizes
    table = pd.read_csv(out)
    assert set(table["family"]) == {"opt", "bloom"} and (table["run"] == table["model"]).all() and table["step"].isna().all()
    acc = table[table.metric == "acc"].set_index(["model", "task"])["value"]
    assert acc[("opt-1.3b", "arc_easy")] == pytest.approx(0.5702862, abs=1e-7)  # evals/opt/opt-1.3b.json
    facts = table.drop_duplicates("model").set_index("model")
    assert facts.loc["opt-1.3b", "params"] == 12 * 24 * 2048**2 == 1_207_959_552
    assert facts.loc["bloom-7b1", "params"] == 12 * 30 * 4096**2 and facts.loc["bloom-7b1", "tokens"] == 350e9
    assert (facts.loc[facts.index.str.startswith("opt-"), "tokens"] == 180e9).all()
    assert facts.loc["opt-66b", "flops"] == pytest.approx(6 * facts.loc["opt-66b", "params"] * 180e9)
    assert set(table["task"]) >= {"arc_easy", "arc_challenge", "lambada_openai", "piqa", "sciq", "winogrande", "wsc", "logiqa", "mmlu"}

    detected = tmp_path / "opt.csv"
    proc = run_cli("import", str(SHARED_DATA / "pythia" / "evals" / "opt"), "-o", str(detected), env=env)
    assert proc.returncode == 0, proc.stderr
    assert set(pd.read_csv(detected)["family"]) == {"opt"}

    proc = run_cli("import", str(SHARED_DATA / "pythia"), "--reader", "pythia-baselines", "--spec", str(out), "-o",
                   str(tmp_path / "x.csv"), env=env)
    assert proc.returncode == 2 and "takes no --spec" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_third_party_reader_from_a_plugins_dir(tmp_path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "toy_reader.py").write_text(textwrap.dedent(TOY_READER_PLUGIN))
    source = tmp_path / "toy.txt"
    source.write_text("m1 1e6 2e7 quiz 0.4\nm2 4e6 8e7 quiz 0.6\n")
    out = tmp_path / "toy.csv"
    proc = run_cli("--plugins-dir", str(plugins), "import", str(source), "--reader", "toy-lines", "-o", str(out), env=clean_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "wrote 2 rows (2 checkpoints, 1 tasks)" in proc.stderr
    table = pd.read_csv(out)
    assert list(table["model"]) == ["m1", "m2"] and list(table["value"]) == [0.4, 0.6]
    assert list(table["flops"]) == [6 * 1e6 * 2e7, 6 * 4e6 * 8e7]  # validated: flops filled in
    registry = load_registry(plugins)
    assert "toy-lines" in registry.readers and not registry.broken
