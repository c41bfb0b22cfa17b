"""`capcast sample` continues stored rounds only when the settings match (budgets may be raised);
--force starts a differing run afresh. Real sampling through lm-eval on a tiny real checkpoint."""

from __future__ import annotations

from capcast.testing.cli import run_in_process

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from capcast.evaluation import harness
from capcast.passuntil import rounds
from capcast.passuntil.rounds import connect
from capcast.testing import build_tiny_family

pytestmark = pytest.mark.slow

PLUGIN = textwrap.dedent(
    '''
    import capcast
    from capcast.tasks.arithmetic import task_builder

    def first_char(sample, doc):
        return sample.strip()[:1] == str(doc["answer"])[:1]

    @capcast.hookimpl
    def register_tasks(register):
        register(capcast.Task(name="pu_resume", lm_eval_config=task_builder("add_gen", "pu_resume", digits=1, n=6),
                              kind="generate", checker=first_char))
    '''
)
SETTINGS = ["--successes", "2", "--batch", "4", "--max-samples-per-instance", "16", "--batch-size", "16", "--device", "cpu"]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``capcast ARGS`` in-process (no interpreter start-up): (exit code, stdout, stderr)."""
    return run_in_process(list(args), capsys)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """(family spec, plugins folder, a store sampled once with SETTINGS)."""
    root = tmp_path_factory.mktemp("pu-resume")
    spec = build_tiny_family(root / "family", sizes=("xs",))
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "pu_task.py").write_text(PLUGIN)
    from capcast.cli.app import main

    with pytest.MonkeyPatch.context() as mp:
        for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("HF_DATASETS_CACHE", str(root / "hf"))):
            mp.setenv(key, value)
        with pytest.raises(SystemExit) as done:
            main(["--plugins-dir", str(plugins), "sample", str(spec), "--tasks", "pu_resume", "--store", str(root / "store"), *SETTINGS])
        assert not done.value.code
    return spec, plugins, root / "store"


@pytest.fixture
def store(base, tmp_path, offline_hf_env):
    copy = tmp_path / "store"
    shutil.copytree(base[2], copy)
    return copy


def sample_args(base, store: Path, *extra: str) -> list[str]:
    spec, plugins, _ = base
    return ["--plugins-dir", str(plugins), "sample", str(spec), "--tasks", "pu_resume", "--store", str(store), *extra]


def run_folder(store: Path) -> Path:
    return store / "passuntil" / "tiny" / "tiny-xs" / "pu_resume"


def snapshot(store: Path) -> dict[str, bytes]:
    folder = run_folder(store)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def samples(store: Path):
    with connect(store) as con:
        return con.execute("SELECT doc_id, round, sample_idx, text, correct FROM passuntil_samples ORDER BY ALL").df()


def test_the_same_settings_resume_without_drawing(base, store, capsys, monkeypatch):
    before = snapshot(store)
    monkeypatch.setattr(harness, "load_model", lambda *a, **k: (_ for _ in ()).throw(AssertionError("a model was loaded")))
    code, out, err = cli(capsys, *sample_args(base, store, *SETTINGS))
    assert code == 0, err
    after = snapshot(store)
    assert {k: v for k, v in after.items() if k != "run.json"} == {k: v for k, v in before.items() if k != "run.json"}


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--successes", "3", "successes stored 2, requested 3"),
        ("--seed", "5", "seed stored 1234, requested 5"),
        ("--limit", "4", "limit stored none (all items), requested 4"),
        ("--batch", "8", "first_batch stored 4, requested 8"),
        ("--max-samples-per-instance", "8", "max_samples_per_instance stored 16, requested 8"),
    ],
)
def test_other_settings_stop_with_one_line_and_keep_the_rounds(base, store, capsys, option, value, expected):
    before = snapshot(store)
    args = [a for a in SETTINGS]
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    code, out, err = cli(capsys, *sample_args(base, store, *args))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"error: store {store} holds PassUntil rounds of tiny-xs x pu_resume made with other settings: {expected};")
    assert "--force" in lines[0] and "another --store" in lines[0]
    assert snapshot(store) == before


def test_force_starts_the_run_afresh(base, store, tmp_path, capsys):
    other = [*SETTINGS]
    other[other.index("--successes") + 1] = "3"
    code, _, err = cli(capsys, *sample_args(base, store, *other, "--force"))
    assert code == 0, err
    manifest = json.loads((run_folder(store) / "run.json").read_text())
    assert manifest["successes"] == 3 and "extended" not in manifest
    assert not any(store.joinpath("tmp").glob("*"))
    # Exactly what a fresh store gets with these settings: no stored round of the old run is left.
    fresh = tmp_path / "fresh"
    code, _, err = cli(capsys, *sample_args(base, fresh, *other))
    assert code == 0, err
    got, want = samples(store), samples(fresh)
    assert len(got) > 0
    assert got.equals(want)


def test_raising_the_cap_continues_the_run_and_is_logged(base, store, capsys):
    before = samples(store)
    more = [*SETTINGS]
    more[more.index("--max-samples-per-instance") + 1] = "32"
    code, _, err = cli(capsys, *sample_args(base, store, *more))
    assert code == 0, err
    assert "tiny-xs x pu_resume: max_samples_per_instance 16 -> 32" in err
    after = samples(store)
    assert after.merge(before).shape[0] == len(before)  # every stored sample is kept
    manifest = json.loads((run_folder(store) / "run.json").read_text())
    assert manifest["max_samples_per_instance"] == 32
    assert manifest["extended"] == [{"max_samples_per_instance": 16, "at_round": int(before["round"].max()) + 1}]
    # A total budget where there was none lowers the budget (none = unlimited): refused.
    code, _, err = cli(capsys, *sample_args(base, store, *more, "--total-budget", "100000"))
    assert code == 2 and "total_budget stored none, requested 100000" in err


def test_setting_differences_rule():
    stored = {"model": "./m", "revision": None, "weights_hash": "a" * 64, "limit": None, "task_hash": "t", "successes": 3, "seed": 1,
              "first_batch": 8, "growth": 2.0, "max_samples_per_instance": 100, "total_budget": 500}
    same = dict(stored)
    assert rounds.setting_differences(stored, same, n_docs=10) == ([], [])
    raised = {**stored, "max_samples_per_instance": 200, "total_budget": None}
    assert rounds.setting_differences(stored, raised, 10) == ([], [("max_samples_per_instance", 100, 200), ("total_budget", 500, None)])
    lowered = {**stored, "total_budget": 400, "batch_size": 3, "backend": "vllm"}  # batch size and backend are informational
    assert rounds.setting_differences(stored, lowered, 10) == ([("total_budget", 500, 400)], [])
    assert rounds.setting_differences(stored, {**stored, "limit": 10}, 10) == ([], [])  # 10 of 10 docs = all
    refused, _ = rounds.setting_differences(stored, {**stored, "limit": 4, "task_hash": "u"}, 10)
    assert refused == [("limit", None, 4)]  # the hash of fewer docs differs of course: not reported
    old = {k: v for k, v in stored.items() if k not in ("weights_hash", "task_hash")}  # manifests of older capcast
    assert rounds.setting_differences(old, {**stored, "weights_hash": "b" * 64}, 10) == ([], [])
