"""The bad-input battery: every command, fed bad inputs, answers with one line on stderr and exit 2,
never a traceback, and leaves nothing half-written (the store's parts and the -o files untouched).

One tiny real store (a one-checkpoint family evaluated through the CLI) is shared by the module;
almost every bad input fails before any model runs. A real bug still shows its traceback with
``--debug``.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from capcast.testing import build_tiny_family
from capcast.testing.cli import run_in_process

pytestmark = pytest.mark.slow

TASKS = "capcast_add_mc,capcast_add_gen"
DOCS = [{"q": f"{i}+1=", "a": i % 2, "ans": str(i + 1)} for i in range(4)]


def _plugin(root: Path) -> Path:
    """Plugins with broken tasks: bad Jinja, a missing doc field, a gold index out of range, a greedy
    generative task, a checker that always raises."""
    data = root / "docs.jsonl"
    data.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    mc = {"dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(data)}}, "test_split": "test",
          "output_type": "multiple_choice", "doc_to_text": "{{q}}", "doc_to_choice": ["no", "yes"], "doc_to_target": "a",
          "metric_list": [{"metric": "acc"}]}
    gen = {**mc, "output_type": "generate_until", "doc_to_target": "{{ans}}", "doc_to_choice": None,
           "generation_kwargs": {"until": ["\n"], "max_gen_toks": 3, "do_sample": True, "temperature": 1.0},
           "metric_list": [{"metric": "exact_match"}]}
    gen.pop("doc_to_choice")
    tasks = {
        "bad_jinja": {**mc, "doc_to_text": "{{q"},
        "missing_field": {**mc, "doc_to_text": "{{nofield.x}}"},
        "target_out_of_range": {**mc, "doc_to_target": "{{a + 5}}"},
        "greedy_gen": {**gen, "generation_kwargs": {"until": ["\n"], "max_gen_toks": 3, "do_sample": False}},
        "raising_gen": gen,
    }
    plugins = root / "plugins"
    plugins.mkdir()
    lines = ["import capcast", "", "def boom(response, doc):", "    raise RuntimeError('checker is broken')", "",
             "@capcast.hookimpl", "def register_tasks(register):"]
    for name, config in tasks.items():
        checker = {"raising_gen": ", checker=boom", "greedy_gen": ", checker=lambda response, doc: True"}.get(name, "")
        lines.append(f"    register(capcast.Task(name={name!r}, lm_eval_config={config!r}, repeats=2{checker}))")
    (plugins / "broken_tasks.py").write_text("\n".join(lines) + "\n")
    return plugins


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Paths of a tiny evaluated store, its family, broken variants of it, and a scores table."""
    root = tmp_path_factory.mktemp("battery")
    spec = build_tiny_family(root / "fam", sizes=("xs",))
    with pytest.MonkeyPatch.context() as mp:
        for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
            mp.setenv(key, value)
        from capcast.evaluation.runner import evaluate_family

        evaluate_family(spec, TASKS.split(","), root / "store", limit=3, batch_size=4, device="cpu", progress=False)
    family = yaml.safe_load(spec.read_text())
    w = {"root": root, "spec": spec, "store": root / "store", "eval_store": root / "eval-store", "plugins": _plugin(root)}

    def variant(file: str, **changes) -> Path:
        data = json.loads(json.dumps(family))
        data["checkpoints"][0].update(changes)
        path = root / "fam" / f"{file}.yaml"
        path.write_text(yaml.safe_dump(data))
        return path

    truncated = root / "fam" / "truncated"
    shutil.copytree(root / "fam" / "tiny-xs", truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    w["truncated"] = variant("truncated", model="./truncated")
    pickled = root / "fam" / "pickled"
    shutil.copytree(root / "fam" / "tiny-xs", pickled)
    import torch
    from safetensors.torch import load_file

    torch.save(load_file(str(pickled / "model.safetensors")), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    w["pickled"] = variant("pickled", model="./pickled")
    w["long_name"] = variant("long", name="c" * 300)
    w["inf_params"] = root / "fam" / "inf.yaml"
    w["inf_params"].write_text(spec.read_text().replace(f"params: {family['checkpoints'][0]['params']}", "params: .inf"))
    w["latin1"] = root / "fam" / "latin1.yaml"
    w["latin1"].write_bytes(spec.read_bytes() + "# caf\xe9\n".encode("latin-1"))
    w["a_file"] = root / "a-file"
    w["a_file"].write_text("not a folder\n")
    scores = root / "scores.csv"
    code, _, err = _run(["scores", "--store", str(w["store"]), "-f", "csv", "-o", str(scores)])
    assert code == 0, err
    w["scores"] = scores
    import pandas as pd

    table = pd.read_csv(scores)
    table.loc[table["metric"] == "acc", "value"] *= 100  # accuracy in percent
    w["percent_scores"] = root / "percent.csv"
    table.to_csv(w["percent_scores"], index=False)
    table = pd.read_csv(scores)
    table["n_items"] = 0
    w["zero_items"] = root / "zero-items.csv"
    table.to_csv(w["zero_items"], index=False)
    w["samples0"] = root / "samples0.csv"
    w["samples0"].write_text("family,run,model,params,tokens,task,doc_id,n_samples,n_correct,target_successes\n"
                             "f,r,m,1e6,2e7,t,0,4,1,0\nf,r2,m2,2e6,4e7,t,0,4,2,0\n")
    return w


def _run(args: list[str]):
    import io
    import contextlib

    from capcast import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def _eval(w, spec_key="spec", *extra, tasks=TASKS, store=None):
    """``capcast eval`` into a store of its own (the shared one holds runs with other settings)."""
    return ["eval", str(w[spec_key]), "--tasks", tasks, "--store", str(store or w["eval_store"]), "--limit", "2", "--device", "cpu", *extra]


# (case id, args from the world, words the one line must hold)
CASES = [
    ("eval-truncated-safetensors", lambda w: _eval(w, "truncated"), "cannot load model"),
    ("eval-pickle-bin", lambda w: _eval(w, "pickled"), "pickle weights"),
    ("eval-device-cuda-99", lambda w: _eval(w, "spec", "--device", "cuda:99"), "--device cuda:99"),
    ("eval-device-junk", lambda w: _eval(w, "spec", "--device", "tpu"), "is not a device"),
    ("eval-dtype-foo", lambda w: _eval(w, "spec", "--dtype", "foo"), "--dtype 'foo'"),
    ("eval-backend-unknown", lambda w: _eval(w, "spec", "--backend", "tensorrt"), "--backend 'tensorrt'"),
    ("eval-seed-negative", lambda w: _eval(w, "spec", "--seed", "-1"), "--seed"),
    ("eval-batch-size-junk", lambda w: _eval(w, "spec", "--batch-size", "many"), "--batch-size"),
    ("eval-non-utf8-yaml", lambda w: _eval(w, "latin1"), "UTF-8"),
    ("eval-missing-spec", lambda w: _eval(w, "spec") [:1] + ["nope.yaml"] + _eval(w, "spec")[2:], "no such family spec"),
    ("eval-inf-params", lambda w: _eval(w, "inf_params"), "params"),
    ("eval-store-is-a-file", lambda w: _eval(w, store=w["a_file"]), "is a file"),
    ("eval-name-over-255-bytes", lambda w: _eval(w, "long_name"), "255"),
    ("eval-unknown-task", lambda w: _eval(w, tasks="no_such_task_xyz"), "unknown task"),
    ("eval-bad-jinja", lambda w: ["--plugins-dir", str(w["plugins"])] + _eval(w, tasks="bad_jinja"), "bad_jinja"),
    ("eval-missing-task-field", lambda w: ["--plugins-dir", str(w["plugins"])] + _eval(w, tasks="missing_field"), "missing_field"),
    ("eval-target-out-of-range", lambda w: ["--plugins-dir", str(w["plugins"])] + _eval(w, tasks="target_out_of_range"), "doc_to_target"),
    ("eval-raising-checker", lambda w: ["--plugins-dir", str(w["plugins"])] + _eval(w, tasks="raising_gen"), "checker is broken"),
    ("sample-greedy-task", lambda w: ["--plugins-dir", str(w["plugins"]), "sample", str(w["spec"]), "--tasks", "greedy_gen", "--store",
                                      str(w["store"]), "--limit", "1", "--device", "cpu"], "greedily"),
    ("sample-successes-0", lambda w: ["sample", str(w["spec"]), "--tasks", "capcast_add_gen", "--store", str(w["store"]), "--successes", "0"],
     "successes"),
    ("sample-seed-negative", lambda w: ["sample", str(w["spec"]), "--tasks", "capcast_add_gen", "--store", str(w["store"]), "--seed", "-5"],
     "--seed"),
    ("sample-multiple-choice", lambda w: ["sample", str(w["spec"]), "--tasks", "capcast_add_mc", "--store", str(w["store"])], "checker"),
    ("sample-store-is-a-file", lambda w: ["sample", str(w["spec"]), "--tasks", "capcast_add_gen", "--store", str(w["a_file"])], "is a file"),
    ("scores-missing-store", lambda w: ["scores", "--store", str(w["root"] / "nope")], "does not exist"),
    ("scores-store-is-a-file", lambda w: ["scores", "--store", str(w["a_file"])], "store"),
    ("scores-bad-format", lambda w: ["scores", "--store", str(w["store"]), "-f", "xml"], "--format"),
    ("scores-o-missing-folder", lambda w: ["scores", "--store", str(w["store"]), "-f", "csv", "-o", str(w["root"] / "no" / "s.csv")],
     "does not exist"),
    ("scores-o-under-a-file", lambda w: ["scores", "--store", str(w["store"]), "-f", "csv", "-o", str(w["a_file"] / "s.csv")], "is a file"),
    ("scores-disk-full", lambda w: ["scores", "--store", str(w["store"]), "-f", "csv", "-o", "/dev/full"], "No space left"),
    ("samples-missing-store", lambda w: ["samples", "--store", str(w["root"] / "nope")], "does not exist"),
    ("samples-o-missing-folder", lambda w: ["samples", "--store", str(w["store"]), "-o", str(w["root"] / "no" / "s.csv")], "does not exist"),
    ("forecast-missing-scores", lambda w: ["forecast", "--scores", str(w["root"] / "nope.csv"), "--target", "x"], "no such scores file"),
    ("forecast-percent-accuracy", lambda w: ["forecast", "--scores", str(w["percent_scores"]), "--target", "tiny-xs"], "[0, 1]"),
    ("forecast-zero-items", lambda w: ["forecast", "--scores", str(w["zero_items"]), "--target", "tiny-xs"], "n_items"),
    ("forecast-plot-onto-a-file", lambda w: ["forecast", "--scores", str(w["scores"]), "--target-params", "1e9", "--target-tokens", "2e10",
                                             "--plot", str(w["a_file"])], "is a file"),
    ("forecast-target-successes-0", lambda w: ["forecast", "--samples", str(w["samples0"]), "--target-params", "1e9",
                                               "--target-tokens", "2e10"], "target_successes"),
    ("backtest-nothing", lambda w: ["backtest"], "--scores"),
    ("backtest-missing-scores", lambda w: ["backtest", "--scores", str(w["root"] / "nope.csv")], "no such scores file"),
    ("import-missing-source", lambda w: ["import", str(w["root"] / "nope"), "-o", str(w["root"] / "out.csv")], "nope"),
    ("import-o-bad-suffix", lambda w: ["import", str(w["root"]), "-o", str(w["root"] / "out.xlsx")], ".csv"),
    ("store-verify-missing-store", lambda w: ["store", "verify", "--store", str(w["root"] / "nope")], "does not exist"),
    ("unknown-command", lambda w: ["no-such-command"], "no-such-command"),
]


def _snapshot(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted((store / "parts").rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_a_bad_input_gets_one_line_and_exit_2(world, case, offline_hf_env):
    _, make_args, words = case
    before = _snapshot(world["store"])
    assert not (world["eval_store"] / "parts").exists()
    outputs = [world["root"] / "no", world["root"] / "out.csv", world["root"] / "out.xlsx"]
    code, out, err = _run(make_args(world))
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err + out
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert words in lines[0], lines[0]
    assert _snapshot(world["store"]) == before  # nothing half-written
    assert not (world["eval_store"] / "parts").exists()
    assert not any(p.exists() for p in outputs)


def _command_paths() -> list[list[str]]:
    """Every command of the app (sub-apps' commands too), as argv prefixes."""
    from capcast.cli.app import app
    from typer.main import get_command

    out = []

    def walk(command, prefix):
        subcommands = getattr(command, "commands", None)
        if subcommands:
            for name, sub in subcommands.items():
                walk(sub, prefix + [name])
        else:
            out.append(prefix)

    walk(get_command(app), [])
    return out


def test_every_command_answers_an_unknown_option_with_one_line(world):
    paths = _command_paths()
    assert ["eval"] in paths and ["store", "verify"] in paths and len(paths) >= 10
    covered = {tuple(make(world)[:2]) for _, make, _ in CASES} | {tuple(make(world)[:1]) for _, make, _ in CASES}
    for path in paths:
        code, out, err = _run([*path, "--no-such-option"])
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and "No such option" in lines[0], (path, err)
        assert "Traceback" not in err + out
    # the named commands that take inputs each have their own bad inputs above
    for name in ("eval", "scores", "forecast", "backtest", "sample", "samples", "import"):
        assert (name,) in covered


def test_a_real_bug_is_one_line_and_shows_its_traceback_with_debug(world, monkeypatch):
    import capcast.evaluation.scores as scores

    def broken(store_dir):
        raise ZeroDivisionError("planted bug")

    monkeypatch.setattr(scores, "scores_from_store", broken)
    code, out, err = _run(["scores", "--store", str(world["store"])])
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == ["error: unexpected ZeroDivisionError: planted bug; this is a capcast bug: "
                                        "re-run with --debug for the traceback and report it"]
    with pytest.raises(ZeroDivisionError, match="planted bug"):
        _run(["scores", "--store", str(world["store"]), "--debug"])


@pytest.fixture
def read_only_store(tmp_path):
    """An empty folder nobody may write into: chmod 0555, or as root (who ignores modes) a read-only tmpfs."""
    import os
    import subprocess

    folder = tmp_path / "ro-store"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"running as root and cannot mount a read-only tmpfs here ({mounted.stderr.decode().strip()[:80]})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.parametrize("command", ["eval", "sample"])
def test_a_read_only_store_is_one_line(world, read_only_store, command, offline_hf_env):
    task = "capcast_add_mc" if command == "eval" else "capcast_add_gen"
    code, out, err = _run([command, str(world["spec"]), "--tasks", task, "--store", str(read_only_store), "--limit", "1", "--device", "cpu"])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err
    assert "cannot be written" in lines[0] and ("Read-only" in lines[0] or "Permission denied" in lines[0]), lines[0]
