"""The mini-ladder's training recipe: deterministic, hashed, and its specs mark the target."""

from __future__ import annotations

import pytest

from capcast.errors import CapcastError
from capcast.spec import load_family
from capcast.reference import corpus
from capcast.reference.ladder import build_ladder, check_ladder, compare_manifests, extend_ladder, tiny_members, verify_ladder
from capcast.reference.tokenizer import build_tokenizer, encode


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    first = tmp_path_factory.mktemp("ladder-a")
    second = tmp_path_factory.mktemp("ladder-b")
    return (first, build_ladder(first, tiny_members(), jobs=1)), (second, build_ladder(second, tiny_members(), jobs=2))


def test_same_recipe_twice_gives_identical_weights(two_builds):
    (_, a), (_, b) = two_builds
    assert len(a["checkpoints"]) == 6  # 2 sizes x 3 checkpoints
    assert compare_manifests(a, b) == []  # serial and parallel builds agree bit for bit
    hashes = [c["sha256"] for c in a["checkpoints"]]
    assert len(set(hashes)) == len(hashes)  # every checkpoint moved: training happened


def test_training_lowers_the_loss_and_records_compute(two_builds):
    (_, manifest), _ = two_builds
    for size in ("xs", "s"):
        run = sorted((c for c in manifest["checkpoints"] if c["size"] == size), key=lambda c: c["step"])
        assert run[-1]["loss"] < run[0]["loss"]
        assert [c["tokens"] for c in run] == sorted(c["tokens"] for c in run)
        assert all(c["flops"] == 6 * c["params"] * c["tokens"] for c in run)


def test_a_different_seed_gives_different_weights(tmp_path):
    from dataclasses import replace

    spec = tiny_members()[0]
    a = build_ladder(tmp_path / "a", [replace(spec, save_at=(1.0,))], jobs=1)
    b = build_ladder(tmp_path / "b", [replace(spec, seed=7, save_at=(1.0,))], jobs=1)
    assert a["checkpoints"][0]["sha256"] != b["checkpoints"][0]["sha256"]


def test_specs_load_and_the_largest_size_is_the_target(two_builds):
    (folder, manifest), _ = two_builds
    backtest = load_family(folder / "family.yaml")
    assert backtest.target is not None and backtest.target.name.startswith("s-s0-")
    assert all(c.name.startswith("xs-") for c in backtest.checkpoints)
    assert backtest.target.params == max(c["params"] for c in manifest["checkpoints"])
    everything = load_family(folder / "ladder.yaml")
    assert {c.name for c in everything.checkpoints} == {c["name"] for c in manifest["checkpoints"]}


def test_extend_trains_only_the_new_sizes_into_a_built_ladder(two_builds, tmp_path):
    """`build --sizes`: a ladder built with xs only, extended by s, equals the full build; xs untouched."""
    (full_folder, full), _ = two_builds
    recipe = tiny_members()
    folder = tmp_path / "ladder"
    small = build_ladder(folder, [m for m in recipe if m.size == "xs"], jobs=1)
    xs_bytes = {c["name"]: (folder / c["name"] / "model.safetensors").read_bytes() for c in small["checkpoints"]}
    extended = extend_ladder(folder, ["s"], recipe=recipe, jobs=1)
    assert [c["name"] for c in extended["checkpoints"]] == [c["name"] for c in full["checkpoints"]]
    assert compare_manifests(extended, full) == [] and verify_ladder(folder) == []
    assert [m["size"] for m in extended["members"]] == [m["size"] for m in full["members"]]
    assert all((folder / n / "model.safetensors").read_bytes() == b for n, b in xs_bytes.items())
    assert extended["extended"][0]["sizes"] == ["s"]
    # the specs are rewritten as build writes them: s is now the target
    assert (folder / "family.yaml").read_text() == (full_folder / "family.yaml").read_text()
    assert (folder / "ladder.yaml").read_text() == (full_folder / "ladder.yaml").read_text()
    with pytest.raises(CapcastError, match="already in manifest.json"):
        extend_ladder(folder, ["s"], recipe=recipe, jobs=1)
    with pytest.raises(CapcastError, match="unknown size"):
        extend_ladder(folder, ["xxl"], recipe=recipe, jobs=1)


def test_verify_catches_tampered_weights(two_builds, tmp_path):
    import shutil

    (folder, manifest), _ = two_builds
    assert verify_ladder(folder) == []
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    victim = manifest["checkpoints"][0]["name"]
    weights = copy / victim / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF  # flip bits of the last weight
    weights.write_bytes(bytes(data))
    assert verify_ladder(copy) == [victim]
    truncated = manifest["checkpoints"][1]["name"]
    (copy / truncated / "model.safetensors").write_bytes(b"\x00" * 16)  # unreadable file
    assert verify_ladder(copy) == [victim, truncated]
    with pytest.raises(CapcastError, match=victim):
        check_ladder(copy)


def test_corpus_is_deterministic_and_in_the_vocabulary():
    a = corpus.CorpusStream(seed=3, row_chars=64)
    b = corpus.CorpusStream(seed=3, row_chars=64)
    rows = [a.row() for _ in range(50)]
    assert rows == [b.row() for _ in range(50)]
    assert rows != [corpus.CorpusStream(seed=4, row_chars=64).row() for _ in range(50)]
    assert all(len(r) == 64 and set(r) <= set(corpus.ALPHABET) for r in rows)


def test_corpus_examples_are_correct():
    import random

    rng = random.Random(0)
    for _ in range(200):
        add = corpus.addition(rng)
        a, b = add.prompt.rstrip("=").split("+")
        assert int(add.answer) == int(a) + int(b)
        rev = corpus.reverse(rng)
        assert rev.answer == rev.prompt[2:-1][::-1]
        srt = corpus.sort_digits(rng)
        assert srt.answer == "".join(sorted(srt.prompt[2:-1]))
        kv = corpus.key_value(rng)
        pairs = dict((p[0], p[1]) for p in kv.prompt[2:].split("?")[0].split())
        assert kv.answer == pairs[kv.prompt.split("?")[1][0]]


def test_hf_tokenizer_agrees_with_the_training_encoder(tmp_path):
    from transformers import AutoTokenizer

    build_tokenizer().save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    text = corpus.CorpusStream(seed=1, row_chars=200).row()
    assert tok(text, add_special_tokens=False)["input_ids"] == encode(text)
    assert tok.decode(encode(text)) == text
    assert tok.pad_token and tok.eos_token


def test_build_cli_rejects_no_out(tmp_path):
    from typer.testing import CliRunner

    from capcast.cli.app import app

    result = CliRunner().invoke(app, ["reference-family", "build"])
    assert result.exit_code == 2 and "--out" in result.output  # a usage error, before any training
