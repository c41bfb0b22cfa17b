"""The committed mini-ladder: shape, hashes, specs, and an end-to-end demo on its smallest members."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from capcast.family import load_family, resolve_model_path
from capcast.reference.ladder import default_ladder_dir, load_manifest, verify_ladder

LADDER = default_ladder_dir()


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(LADDER)


def _smallest(manifest, n=2):
    return [c["name"] for c in sorted(manifest["checkpoints"], key=lambda c: c["flops"])[:n]]


def test_committed_weights_match_their_hashes():
    assert verify_ladder(LADDER) == []


def test_ladder_shape_meets_the_brief(manifest):
    ckpts = manifest["checkpoints"]
    sizes = {c["size"] for c in ckpts}
    assert len(sizes) >= 4
    for size in sizes:
        per_seed = {}
        for c in ckpts:
            if c["size"] == size:
                per_seed.setdefault(c["seed"], []).append(c)
        assert all(len(run) >= 3 for run in per_seed.values())
    assert len({c["seed"] for c in ckpts}) >= 2
    flops = [c["flops"] for c in ckpts]
    assert math.log10(max(flops) / min(flops)) > 2  # more than two orders of magnitude
    # Tokens grow with size: the final checkpoint of each larger size saw more tokens.
    finals = sorted({c["size"]: c for c in ckpts if c["step"] == max(d["step"] for d in ckpts if d["size"] == c["size"])}.values(), key=lambda c: c["params"])
    assert [c["tokens"] for c in finals] == sorted(c["tokens"] for c in finals)
    weights = sum((LADDER / c["name"] / "model.safetensors").stat().st_size for c in ckpts)
    assert weights <= 25 * 2**20


def test_specs_load_and_mark_the_largest_final_checkpoint_as_target(manifest):
    backtest = load_family(LADDER / "family.yaml")
    largest = max(c["params"] for c in manifest["checkpoints"])
    assert backtest.target is not None and backtest.target.params == largest
    top = [c for c in manifest["checkpoints"] if c["params"] == largest and c["seed"] == 0]
    assert backtest.target.name == max(top, key=lambda c: c["step"])["name"]
    assert all(c.params < largest for c in backtest.checkpoints)
    assert Path(resolve_model_path(LADDER / "family.yaml", backtest.target.model)).is_dir()
    everything = load_family(LADDER / "ladder.yaml")
    assert len(everything.checkpoints) == len(manifest["checkpoints"])
    assert backtest.target.name in {c.name for c in everything.checkpoints}


def test_committed_checkpoints_load_and_learned_the_format(manifest):
    """The largest final checkpoint continues a copy prompt correctly; the smallest does not."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    largest = max(manifest["checkpoints"], key=lambda c: c["flops"])["name"]
    smallest = _smallest(manifest, 1)[0]
    prompt, answer = "c kowplen>", "kowplen"
    outputs = {}
    for name in (smallest, largest):
        tok = AutoTokenizer.from_pretrained(LADDER / name)
        model = LlamaForCausalLM.from_pretrained(LADDER / name).eval()
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=len(answer), do_sample=False, pad_token_id=tok.pad_token_id)
        outputs[name] = tok.decode(out[0, ids.shape[1]:])
    assert outputs[largest] == answer
    assert outputs[smallest] != answer


@pytest.mark.slow
def test_demo_end_to_end_on_the_two_smallest_members(manifest, tmp_path, monkeypatch):
    """run_demo on the 2 smallest checkpoints x 2 tasks; stored logliks match transformers."""
    import json

    from transformers import AutoTokenizer, LlamaForCausalLM

    from capcast.reference.demo import run_demo
    from capcast.store import Store

    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    names = _smallest(manifest, 2)
    result = run_demo(tmp_path / "demo", tasks=["ref_facts", "ref_add3"], checkpoints=names, limit=6, progress=False)
    assert list(result.table["model"]) == names  # ordered by compute
    assert set(result.metrics) == {"ref_facts", "ref_add3"}
    assert result.metrics["ref_add3"] == "pass_rate"
    assert result.table["ref_facts"].between(0, 1).all() and result.table["ref_add3"].between(0, 1).all()
    assert sorted(p.name for p in result.plots) == ["ref_add3.png", "ref_facts.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result.plots)

    with Store(result.store).connect() as con:
        choices = con.execute("SELECT * FROM choices WHERE checkpoint = ? ORDER BY doc_id, choice_idx", [names[0]]).df()
        samples = con.execute("SELECT * FROM samples WHERE checkpoint = ?", [names[0]]).df()
    docs = [json.loads(l) for l in (result.store / "tasks" / "ref_facts" / "ref_facts.jsonl").read_text().splitlines()]
    assert len(samples) == 6 * 16  # every sampled repeat is kept
    tok = AutoTokenizer.from_pretrained(LADDER / names[0])
    model = LlamaForCausalLM.from_pretrained(LADDER / names[0]).eval()
    for row in choices.itertuples():
        doc = docs[row.doc_id]
        choice = doc["choices"][row.choice_idx]
        assert row.n_chars == len(choice)  # empty target delimiter: the choice follows the prompt
        assert row.is_gold == (row.choice_idx == doc["label"])
        ids = torch.tensor([tok(doc["prompt"] + choice, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
        start = len(doc["prompt"])
        direct = sum(logp[t - 1, ids[0, t]].item() for t in range(start, ids.shape[1]))
        assert row.loglik == pytest.approx(direct, abs=1e-3)

    # A second run reuses the store: nothing is evaluated again.
    again = run_demo(tmp_path / "demo", tasks=["ref_facts", "ref_add3"], checkpoints=names, limit=6, progress=False)
    assert again.table.equals(result.table)
