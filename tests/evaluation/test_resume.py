"""`capcast eval` resumes only runs whose settings match; --force replaces the others atomically.

Real lm-eval runs on tiny real checkpoints: one base store (2 checkpoints x 2 tasks, 4 items) is
evaluated once per module and copied for every test that changes it.
"""

from __future__ import annotations

from capcast.testing.cli import run_in_process

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from capcast.errors import CapcastError
from capcast.evaluation import harness
from capcast.evaluation.runner import evaluate_family
from capcast.plugins.registry import load_registry
from capcast.store import Store
from capcast.testing import build_tiny_checkpoint, build_tiny_family

pytestmark = pytest.mark.slow

TASKS = ["capcast_add_mc", "capcast_add_gen"]
LIMIT = 4


def _offline(monkeypatch, root: Path) -> None:
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false"),
                       ("HF_DATASETS_CACHE", str(root / "hf-datasets"))):
        monkeypatch.setenv(key, value)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """(family spec, evaluated store, folder of an alternative checkpoint)."""
    root = tmp_path_factory.mktemp("resume")
    spec = build_tiny_family(root / "family", sizes=("xs", "s"))
    build_tiny_checkpoint(root / "family" / "alt-xs", size="xs", seed=99)
    with pytest.MonkeyPatch.context() as mp:
        _offline(mp, root)
        summary = evaluate_family(spec, TASKS, root / "store", limit=LIMIT, batch_size=8, device="cpu", progress=False)
    assert len(summary.evaluated) == 4
    return spec, root / "store", root / "family" / "alt-xs"


@pytest.fixture
def store(base, tmp_path, offline_hf_env):
    """A private copy of the base store."""
    copy = tmp_path / "store"
    shutil.copytree(base[1], copy)
    return copy


def parts_snapshot(store: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under parts/ with its bytes and mtime (byte-identical and untouched)."""
    return {str(p.relative_to(store)): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted((store / "parts").rglob("*")) if p.is_file()}


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``capcast ARGS`` in-process (no interpreter start-up): (exit code, stdout, stderr)."""
    return run_in_process(list(args), capsys)


def eval_args(spec: Path, store: Path, *extra: str) -> list[str]:
    return ["eval", str(spec), "--tasks", ",".join(TASKS), "--store", str(store), "--batch-size", "8", "--device", "cpu", *extra]


def no_model_loads(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(harness, "load_model", refuse)


def test_same_settings_skip_everything_and_leave_the_records_byte_identical(base, store, capsys, monkeypatch):
    spec, _, _ = base
    before = parts_snapshot(store)
    no_model_loads(monkeypatch)
    code, out, err = cli(capsys, *eval_args(spec, store, "--limit", str(LIMIT)))
    assert code == 0, err
    assert "evaluated 0 (checkpoint, task) runs, skipped 4 already stored" in out
    assert parts_snapshot(store) == before


def test_the_pre_run_task_hash_is_the_one_lm_eval_records(base, store):
    registry = load_registry()
    runs = Store(store).runs().set_index(["checkpoint", "task"])
    for task in TASKS:
        prepared = harness.prepare_task(registry.tasks[task], Store(store).task_data_dir(task))
        plan = harness.plan_run(prepared, limit=LIMIT, seed=1234)
        assert plan.task_hash == runs.loc[("tiny-xs", task), "task_hash"] == runs.loc[("tiny-s", task), "task_hash"]
        assert plan.repeats == runs.loc[("tiny-xs", task), "repeats"]
        assert plan.task_docs == (1000 if task == "capcast_add_mc" else 500)
        assert harness.plan_run(prepared, limit=LIMIT + 1, seed=1234).task_hash != plan.task_hash


def test_few_shot_prompts_depend_on_the_seed_and_the_pre_run_hash_follows(base, tmp_path, offline_hf_env):
    spec, _, _ = base
    task = load_registry().tasks["capcast_add_mc"]
    prepared = harness.prepare_task(task, tmp_path / "data")
    few_shot = harness.PreparedTask(task, {**prepared.spec, "num_fewshot": 2, "fewshot_split": prepared.spec["test_split"]},
                                    prepared.task_manager, prepared.kind, prepared.lm_eval_name, prepared.target_delimiter)
    loaded = harness.load_model(str(spec.parent / "tiny-xs"), device="cpu", batch_size=8)
    hashes = []
    for seed in (1, 2):
        run = harness.run_task(loaded, few_shot, limit=3, seed=seed)
        assert harness.plan_run(few_shot, limit=3, seed=seed).task_hash == run.settings["task_hash"]
        hashes.append(run.settings["task_hash"])
    assert hashes[0] != hashes[1]


def test_another_limit_stops_with_one_line_and_touches_nothing(base, store):
    spec, _, _ = base
    before = parts_snapshot(store)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-m", "capcast", *eval_args(spec, store, "--limit", "3")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    line = lines[0]
    assert line.startswith(f"error: store {store} holds tiny-xs x capcast_add_mc made with other settings: "
                           "limit stored 4, requested 3 (and 3 more stored runs with other settings); nothing was evaluated.")
    assert "--force" in line and "another --store" in line
    assert parts_snapshot(store) == before


def test_another_seed_on_a_generative_task_is_refused(base, store, monkeypatch):
    spec, _, _ = base
    no_model_loads(monkeypatch)
    with pytest.raises(CapcastError) as err:
        evaluate_family(spec, ["capcast_add_gen"], store, limit=LIMIT, seed=7, device="cpu", progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert "tiny-xs x capcast_add_gen" in message and "seed stored 1234, requested 7" in message
    assert "limit" not in message.split(";")[0]  # only the seed differs


def test_another_model_folder_revision_or_weights_are_refused_and_force_replaces_only_those(base, store, tmp_path, capsys, monkeypatch):
    spec, _, alt = base
    entries = yaml.safe_load(spec.read_text())
    before = parts_snapshot(store)

    # The same checkpoint name pointing at another folder: model path and weights differ.
    moved = {**entries, "checkpoints": [{**entries["checkpoints"][0], "model": "./alt-xs"}, entries["checkpoints"][1]]}
    moved_spec = spec.parent / "moved.yaml"
    moved_spec.write_text(yaml.safe_dump(moved, sort_keys=False))
    with pytest.raises(CapcastError) as err:
        evaluate_family(moved_spec, TASKS, store, limit=LIMIT, device="cpu", progress=False)
    assert "tiny-xs x capcast_add_mc made with other settings: model stored './tiny-xs', requested './alt-xs'; weights_hash stored " in str(err.value)
    assert "(and 1 more stored run with other settings)" in str(err.value)

    # A revision named where none was.
    revised = {**entries, "checkpoints": [entries["checkpoints"][0], {**entries["checkpoints"][1], "revision": "v2"}]}
    revised_spec = spec.parent / "revised.yaml"
    revised_spec.write_text(yaml.safe_dump(revised, sort_keys=False))
    with pytest.raises(CapcastError, match=r"holds tiny-s x capcast_add_mc made with other settings: revision stored none, requested 'v2'"):
        evaluate_family(revised_spec, TASKS, store, limit=LIMIT, device="cpu", progress=False)

    # Same spec, same model path, other weights in the folder: only the weights hash differs.
    other = tmp_path / "family"
    shutil.copytree(spec.parent, other)
    shutil.rmtree(other / "tiny-xs")
    shutil.copytree(alt, other / "tiny-xs")
    with pytest.raises(CapcastError) as err:
        evaluate_family(other / "family.yaml", TASKS, store, limit=LIMIT, device="cpu", progress=False)
    differing = str(err.value).split("other settings: ")[1].split(" (and")[0]
    assert differing.startswith("weights_hash stored ") and ";" not in differing
    assert parts_snapshot(store) == before

    # --force re-runs the two differing runs of tiny-xs and leaves tiny-s alone.
    code, out, err_text = cli(capsys, *eval_args(other / "family.yaml", store, "--limit", str(LIMIT), "--force"))
    assert code == 0, err_text
    assert "evaluated 2 (checkpoint, task) runs (2 replacing stored runs with other settings), skipped 2 already stored" in out
    after = parts_snapshot(store)
    assert {k: v for k, v in after.items() if "/tiny-s/" in k} == {k: v for k, v in before.items() if "/tiny-s/" in k}
    runs = Store(store).runs().set_index(["checkpoint", "task"])
    alt_hash = harness.weights_hash(str(alt))
    assert (runs.loc["tiny-xs", "weights_hash"] == alt_hash).all() and (runs.loc["tiny-s", "weights_hash"] != alt_hash).all()


def test_force_with_another_limit_replaces_the_runs_and_the_scores_follow(base, store, capsys):
    spec, _, _ = base
    from capcast.evaluation.scores import scores_from_store

    assert (scores_from_store(store)["n_items"] == LIMIT).all()
    code, out, err = cli(capsys, *eval_args(spec, store, "--limit", "3", "--force"))
    assert code == 0, err
    assert "evaluated 4 (checkpoint, task) runs (4 replacing stored runs with other settings), skipped 0" in out
    scores = scores_from_store(store)
    assert len(scores) == 2 * (6 + 1) and (scores["n_items"] == 3).all()
    runs = Store(store).runs()
    assert len(runs) == 4 and (runs["limit"] == 3).all() and (runs["n_docs"] == 3).all()
    assert not any((store / "tmp").glob("*"))
    # ... and the replaced runs are now the ones a rerun resumes.
    code, out, _ = cli(capsys, *eval_args(spec, store, "--limit", "3"))
    assert code == 0 and "evaluated 0 (checkpoint, task) runs, skipped 4" in out


class Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing on the way catches it."""


def test_a_force_killed_after_writing_the_new_records_leaves_the_old_run_intact(base, store, monkeypatch):
    spec, _, _ = base
    from capcast.store import parts

    before = parts_snapshot(store)
    real_write_json = parts.write_json

    def write_json_then_die(obj, path):
        real_write_json(obj, path)
        if Path(path).name == "run.json" and Path(path).parent.parent == store / "tmp":
            assert (Path(path).parent / "choices.parquet").is_file()  # the new records are written
            raise Killed

    monkeypatch.setattr(parts, "write_json", write_json_then_die)
    with pytest.raises(Killed):
        evaluate_family(spec, ["capcast_add_mc"], store, limit=3, device="cpu", progress=False, force=True)
    assert parts_snapshot(store) == before
    assert not any((store / "tmp").glob("*"))


def _fake_run(checkpoint: str, limit: int) -> tuple[dict, pa.Table]:
    manifest = {"family": "fam", "checkpoint": checkpoint, "task": "t", "limit": limit, "n_docs": limit, "params": 1e6, "tokens": 2e7}
    table = pa.table({"doc_id": pa.array(range(limit), pa.int64()), "choice_idx": pa.array([0] * limit, pa.int32()),
                      "loglik": pa.array([-1.0 - i for i in range(limit)]),  # all equal would be refused as degenerate "n_tokens": pa.array([1] * limit, pa.int32()),
                      "n_bytes": pa.array([1] * limit, pa.int32()), "n_chars": pa.array([1] * limit, pa.int32()),
                      "is_greedy": pa.array([True] * limit), "is_gold": pa.array([True] * limit)})
    return manifest, table


def test_a_replacement_that_fails_between_its_renames_puts_the_old_run_back(tmp_path, monkeypatch):
    from capcast.store import parts

    store = Store(tmp_path)
    manifest, records = _fake_run("c", 2)
    store.write_run(manifest, "multiple_choice", records)
    before = parts_snapshot(tmp_path)
    real_rename = os.rename

    def rename(src, dst):  # the new run cannot get in (the old one is out of parts/ by then)
        if Path(src).parent == store.tmp and not Path(src).name.endswith(".old") and Path(dst) == store.run_dir("fam", "c", "t"):
            raise OSError("disk on fire")
        real_rename(src, dst)

    monkeypatch.setattr(parts.os, "rename", rename)
    manifest, records = _fake_run("c", 3)
    with pytest.raises(OSError, match="disk on fire"):
        store.write_run(manifest, "multiple_choice", records, replace=True)
    monkeypatch.undo()
    assert parts_snapshot(tmp_path) == before
    store.clean_tmp()
    assert parts_snapshot(tmp_path) == before and store.run_manifest("fam", "c", "t")["limit"] == 2


def test_a_replacement_killed_between_its_renames_is_rolled_forward(tmp_path):
    """A real process death (os._exit) right after the old run left parts/: the next clean_tmp
    (the start of every `capcast eval`) puts the complete new run in its place."""
    store = Store(tmp_path)
    manifest, records = _fake_run("c", 2)
    store.write_run(manifest, "multiple_choice", records)
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        import pyarrow as pa
        from capcast.store import Store, parts
        store = Store({str(tmp_path)!r})
        real = os.rename
        def rename(src, dst):
            real(src, dst)
            if Path(dst).name.endswith(".old"):
                os._exit(9)  # killed: the old run is out of parts/, the new one not yet in
        parts.os.rename = rename
        n = 3
        table = pa.table({{"doc_id": pa.array(range(n), pa.int64()), "choice_idx": pa.array([0] * n, pa.int32()),
                          "loglik": pa.array([-1.0 - i for i in range(n)]), "n_tokens": pa.array([1] * n, pa.int32()),
                          "n_bytes": pa.array([1] * n, pa.int32()), "n_chars": pa.array([1] * n, pa.int32()),
                          "is_greedy": pa.array([True] * n), "is_gold": pa.array([True] * n)}})
        store.write_run({{"family": "fam", "checkpoint": "c", "task": "t", "limit": n, "n_docs": n, "params": 1e6, "tokens": 2e7}},
                        "multiple_choice", table, replace=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 9, proc.stderr
    assert not store.has_run("fam", "c", "t")  # the instant between the two renames
    store.clean_tmp()
    assert store.run_manifest("fam", "c", "t")["limit"] == 3
    assert len(store.runs()) == 1 and not store.tmp.exists()
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM choices").fetchone()[0] == 3


def test_the_one_command_forecast_reports_a_limit_mismatch_too(base, store, monkeypatch):
    spec, _, _ = base
    from capcast.forecasting.forecast import scores_for_forecast

    no_model_loads(monkeypatch)
    with pytest.raises(CapcastError, match=r"holds tiny-xs x capcast_add_mc made with other settings: limit stored 4, requested none \(all items\)"):
        scores_for_forecast(family=spec, store=store, tasks=TASKS, device="cpu")
    table, _ = scores_for_forecast(family=spec, store=store, tasks=TASKS, limit=LIMIT, device="cpu")
    assert set(table["model"]) == {"tiny-xs", "tiny-s"}


def test_a_limit_covering_the_whole_task_equals_no_limit(tmp_path, offline_hf_env, monkeypatch):
    """A stored run of a 6-item task made with --limit 50 answers a run without --limit."""
    spec = build_tiny_family(tmp_path / "family", sizes=("xs",))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "small.py").write_text(textwrap.dedent(
        """
        import capcast
        from capcast.tasks.arithmetic import task_builder

        @capcast.hookimpl
        def register_tasks(register):
            register(capcast.Task(name="small_mc", lm_eval_config=task_builder("add_mc", "small_mc", digits=1, n=6), kind="multiple_choice"))
        """
    ))
    registry = load_registry(plugins)
    evaluate_family(spec, ["small_mc"], tmp_path / "store", limit=50, device="cpu", registry=registry, progress=False)
    no_model_loads(monkeypatch)
    summary = evaluate_family(spec, ["small_mc"], tmp_path / "store", device="cpu", registry=registry, progress=False)
    assert summary.skipped == [("tiny-xs", "small_mc")]
    manifest = json.loads((Store(tmp_path / "store").run_dir("tiny", "tiny-xs", "small_mc") / "run.json").read_text())
    assert manifest["limit"] == 50 and manifest["n_docs"] == 6


def test_when_even_putting_the_old_run_back_fails_the_next_start_restores_it(tmp_path, monkeypatch):
    from capcast.store import parts

    store = Store(tmp_path)
    manifest, records = _fake_run("c", 2)
    store.write_run(manifest, "multiple_choice", records)
    before = parts_snapshot(tmp_path)
    real_rename = os.rename

    def rename(src, dst):  # nothing gets into the run's folder any more
        if Path(dst) == store.run_dir("fam", "c", "t"):
            raise OSError("disk on fire")
        real_rename(src, dst)

    monkeypatch.setattr(parts.os, "rename", rename)
    manifest, records = _fake_run("c", 3)
    with pytest.raises(OSError, match="disk on fire"):
        store.write_run(manifest, "multiple_choice", records, replace=True)
    monkeypatch.undo()
    assert not store.has_run("fam", "c", "t")
    store.clean_tmp()  # the old run, whole under tmp/, goes back
    assert {k: v[0] for k, v in parts_snapshot(tmp_path).items()} == {k: v[0] for k, v in before.items()}
