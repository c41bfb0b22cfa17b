"""`capcast family init` on a folder of real tiny checkpoints, on a list file, and on bad folders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from capcast.errors import CapcastError
from capcast.family_init import parse_step
from capcast.spec import load_family, resolve_model_path
from capcast.testing.cli import run_in_process
from capcast.testing.tiny import build_tiny_checkpoint, non_embedding_params

# folder (relative to the family folder) -> tiny size; three layouts: run-stepN, a bare step folder, run/step
LAYOUT = {"l-s0-step610": "xs", "l-s0-step2441": "s", "step_1000": "m", "run-a/step_500": "xs", "run-a/checkpoint-900": "s"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ckpts") / "myfam"
    for i, (rel, size) in enumerate(LAYOUT.items()):
        build_tiny_checkpoint(root / rel, size=size, seed=i)
    (root / "logs").mkdir()  # not a checkpoint: skipped, named in the output
    (root / "logs" / "train.log").write_text("loss 1.0\n")
    (root / "step_1000" / "trainer_state.json").write_text(json.dumps({"global_step": 1000, "num_input_tokens_seen": 5_120_000}))
    return root


def _direct_counts(path: Path) -> tuple[int, int]:
    """(non-embedding, total) from the real weights, counted directly."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    return non_embedding_params(model), sum(p.numel() for p in model.parameters())


def test_folder_of_tiny_checkpoints_is_described_correctly(folder, tmp_path, capsys):
    out = tmp_path / "family.yaml"
    code, stdout, err = run_in_process(["family", "init", str(folder), "--tokens-per-step", "4096", "-o", str(out)], capsys)
    assert code == 0, err
    assert "every value was inferred" in err and "skipped (no config.json): logs" in err
    spec = load_family(out)  # loads with capcast's own spec loader, paths checked
    assert spec.family == "myfam"
    by_name = {c.name: c for c in spec.checkpoints}
    assert set(by_name) == {"l-s0-step610", "l-s0-step2441", "step_1000", "run-a-step_500", "run-a-checkpoint-900"}
    expected = {  # name -> (folder, run, step)
        "l-s0-step610": ("l-s0-step610", "l-s0", 610),
        "l-s0-step2441": ("l-s0-step2441", "l-s0", 2441),
        "step_1000": ("step_1000", "myfam", 1000),  # a bare step folder: the family folder is its run
        "run-a-step_500": ("run-a/step_500", "run-a", 500),
        "run-a-checkpoint-900": ("run-a/checkpoint-900", "run-a", 900),
    }
    text = out.read_text()
    for name, (rel, run, step) in expected.items():
        ckpt = by_name[name]
        assert Path(resolve_model_path(out, ckpt.model)) == (folder / rel).resolve()
        assert ckpt.run_name == run and ckpt.step == step
        assert ckpt.tokens == step * 4096  # --tokens-per-step wins over trainer_state.json
        non_embedding, total = _direct_counts(folder / rel)
        assert ckpt.params == non_embedding < total
        assert re.search(rf'name: "{name}"\n(?:.*\n)*?    params: {non_embedding}  # non-embedding; total {total:,}\n', text)
    assert "NON-EMBEDDING" in text and "FILL IN" not in text
    assert "l-s0-step2441" in stdout and f"{_direct_counts(folder / 'l-s0-step2441')[1]:,}" in stdout
    # the existing file is not overwritten without --force
    code, _, err = run_in_process(["family", "init", str(folder), "-o", str(out)], capsys)
    assert code == 2 and "exists; pass --force" in err


def test_unknown_tokens_are_marked_and_trainer_state_is_read(folder, tmp_path, capsys):
    out = tmp_path / "family.yaml"
    code, _, err = run_in_process(["family", "init", str(folder), "--family", "mine", "-o", str(out)], capsys)
    assert code == 0, err
    assert "4 value(s) to fill in" in err
    text = out.read_text()
    assert text.count("# tokens: FILL IN") == 4
    assert "tokens: 5120000  # trainer_state.json num_input_tokens_seen" in text
    with pytest.raises(CapcastError, match=r"tokens is missing"):
        load_family(out)  # the loader names the first value left to fill
    filled = re.sub(r"# tokens: FILL IN.*", "tokens: 1.0e6", text)
    out.write_text(filled)
    spec = load_family(out)
    assert spec.family == "mine" and sorted(c.tokens for c in spec.checkpoints) == [1e6] * 4 + [5_120_000]


def test_list_file_of_models(folder, tmp_path, capsys):
    listing = tmp_path / "models.txt"
    listing.write_text(f"# one model per line\n{folder / 'l-s0-step610'}\n{folder / 'l-s0-step2441'}  # final\n\n")
    out = tmp_path / "family.yaml"
    code, _, err = run_in_process(["family", "init", str(listing), "--tokens-per-step", "100", "-o", str(out)], capsys)
    assert code == 0, err
    spec = load_family(out)
    assert spec.family == "models" and [c.name for c in spec.checkpoints] == ["l-s0-step610", "l-s0-step2441"]
    assert [c.tokens for c in spec.checkpoints] == [61_000, 244_100]
    assert spec.checkpoints[1].params == _direct_counts(folder / "l-s0-step2441")[0]


@pytest.mark.parametrize(("name", "expected"), [
    ("step1000", 1000), ("l-s0-step2441", 2441), ("step_500", 500), ("checkpoint-500", 500), ("global_step77", 77),
    ("1200", 1200), ("pythia-70m-step143000", 143000), ("main", None), ("final", None),
])
def test_steps_parsed_from_names(name, expected):
    assert parse_step(name) == expected


def _bad(kind: str, root: Path) -> Path:
    if kind == "missing":
        return root / "nowhere"
    folder = root / kind
    folder.mkdir()
    if kind == "no config.json":
        (folder / "notes").mkdir()
        (folder / "notes" / "a.txt").write_text("x")
    elif kind == "weights without config":
        (folder / "step_1").mkdir()
        (folder / "step_1" / "model.safetensors").write_bytes(b"\0")
    elif kind == "unparsable config":
        (folder / "step_1").mkdir()
        (folder / "step_1" / "config.json").write_text("{not json")
    elif kind == "unknown model type":
        (folder / "step_1").mkdir()
        (folder / "step_1" / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    elif kind == "itself a checkpoint":
        (folder / "config.json").write_text("{}")
    return folder


@pytest.mark.parametrize(("kind", "message"), [
    ("missing", "no such folder"),
    ("empty", "is empty"),
    ("no config.json", "has no subfolder with a config.json"),
    ("weights without config", "has weights but no config.json"),
    ("unparsable config", "cannot read it as a transformers config"),
    ("unknown model type", "cannot read it as a transformers config"),
    ("itself a checkpoint", "is itself one checkpoint"),
])
def test_bad_folders_get_one_line_and_exit_2(kind, message, tmp_path, capsys):
    out = tmp_path / "family.yaml"
    code, stdout, err = run_in_process(["family", "init", str(_bad(kind, tmp_path)), "-o", str(out)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in err + stdout
    assert not out.exists()


def test_the_committed_mini_ladder_comes_out_as_its_own_ladder_yaml(tmp_path, capsys):
    """42 real trained checkpoints: params, tokens (64 rows x 64 characters per step), run and step all
    as the ladder's build wrote them."""
    from capcast.reference.ladder import default_ladder_dir

    ladder = default_ladder_dir()
    out = tmp_path / "ladder.yaml"
    code, _, err = run_in_process(["family", "init", str(ladder), "--tokens-per-step", "4096", "--family", "capcast-mini",
                                   "-o", str(out)], capsys)
    assert code == 0, err
    described = {c.name: c for c in load_family(out).checkpoints}
    committed = load_family(ladder / "ladder.yaml").checkpoints
    assert set(described) == {c.name for c in committed} and len(committed) == 42
    for c in committed:
        mine = described[c.name]
        assert (mine.params, mine.tokens, mine.run_name, mine.step) == (c.params, c.tokens, c.run_name, c.step)
        assert Path(resolve_model_path(out, mine.model)) == Path(resolve_model_path(ladder / "ladder.yaml", c.model))
