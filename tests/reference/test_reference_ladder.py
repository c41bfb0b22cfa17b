"""The committed mini-ladder: shape, hashes, specs, and an end-to-end demo on its smallest members."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from capcast.spec import load_family, resolve_model_path
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


def test_specs_mark_the_target_and_fit_only_the_sizes_below_it(manifest):
    """family.yaml: the target is TARGET_SIZE's final seed-0 checkpoint; its fitting checkpoints
    are every checkpoint of the smaller sizes' seed-0 runs (never the target's run or its other
    seed); the other seed and the larger sizes are in ladder.yaml only."""
    from capcast.reference.ladder import TARGET_SEED, TARGET_SIZE

    backtest = load_family(LADDER / "family.yaml")
    run = [c for c in manifest["checkpoints"] if c["size"] == TARGET_SIZE and c["seed"] == TARGET_SEED]
    target = max(run, key=lambda c: c["step"])
    assert backtest.target is not None and backtest.target.name == target["name"]
    assert backtest.target.params == target["params"] and backtest.target.tokens == target["tokens"]
    below = [c["name"] for c in manifest["checkpoints"] if c["params"] < target["params"] and c["seed"] == TARGET_SEED]
    assert [c.name for c in backtest.checkpoints] == below
    assert len({c["size"] for c in manifest["checkpoints"] if c["name"] in below}) >= 4  # enough sizes for a 3-parameter law
    assert all(c.compute < 6 * target["params"] * target["tokens"] for c in backtest.checkpoints)
    assert any(c["params"] > target["params"] for c in manifest["checkpoints"])  # a size above the target: never fitted
    assert Path(resolve_model_path(LADDER / "family.yaml", backtest.target.model)).is_dir()
    everything = load_family(LADDER / "ladder.yaml")
    assert [c.name for c in everything.checkpoints] == [c["name"] for c in manifest["checkpoints"]]
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
    """run_demo on the 2 smallest checkpoints (+ one s checkpoint and the target, so a forecast has
    2 sizes and an actual); stored logliks match transformers; forecast and PassUntil parts agree
    with the scores and the store."""
    import json

    from transformers import AutoTokenizer, LlamaForCausalLM

    from capcast.passuntil import rounds as passuntil_store
    from capcast.passuntil.estimators import task_score
    from capcast.forecasting.forecast import STATUS_OK, STATUS_UNPREDICTABLE
    from capcast.reference.demo import PassUntilSettings, run_demo
    from capcast.store import Store

    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    smallest = _smallest(manifest, 2)
    target = load_family(LADDER / "family.yaml").target.name
    largest = max(manifest["checkpoints"], key=lambda c: c["flops"])["name"]  # above the target: never fitted
    names = smallest + ["s-s0-step122", target, largest]  # in compute order
    tasks = ["ref_facts", "ref_add3_greedy", "ref_add3"]
    # The largest checkpoint samples ref_add3 at about 0.45 per sample, the smallest at about 1e-5.
    settings = PassUntilSettings(checkpoints=(smallest[0], largest), limit=4, successes=2, cap=64, first_batch=8, batch_size=256)
    # The leaderboard step is tested on the committed scores (tests/reference/test_demo_steps.py).
    result = run_demo(tmp_path / "demo", tasks=tasks, checkpoints=names, limit=6, progress=False, passuntil=settings,
                      leaderboard=False)
    assert list(result.table["model"]) == names  # ordered by compute
    assert set(result.metrics) == set(tasks)
    assert result.metrics["ref_add3"] == "pass_rate"
    assert all(result.table[t].between(0, 1).all() for t in tasks)
    assert sorted(p.name for p in result.plots) == sorted(f"{t}.png" for t in tasks)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result.plots)

    # Forecast: one row per task, target = family.yaml's, fitted on family.yaml's checkpoints only
    # (the target's own scores are the actual, never a fitting point).
    assert [r.task for r in result.forecasts] == tasks
    fitting = {c.name for c in load_family(LADDER / "family.yaml").checkpoints}  # one seed: xs-s1-* are evaluated, not fitted
    assert result.fit_checkpoints == [n for n in smallest if n in fitting] + ["s-s0-step122"]
    by_task = result.table.set_index("model")
    for row in result.forecasts:
        assert row.model == target and row.metric == result.metrics[row.task]
        assert row.status in {STATUS_OK, STATUS_UNPREDICTABLE}  # a law that fails is a bug, never an outcome
        assert row.actual == pytest.approx(by_task.loc[target, row.task])
        if row.status == STATUS_OK:
            assert row.lower <= row.forecast <= row.upper
        else:
            assert row.forecast is None and row.reason  # never a silent gap
    assert sorted(p.name for p in result.forecast_plots) == sorted(f"{t}.png" for t in tasks)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in result.forecast_plots)
    # The whole scores table is written; every step's time is kept, in step order.
    import pandas as pd

    assert len(pd.read_csv(result.scores_csv)) == len(result.scores)
    assert list(result.timings) == ["evaluation", "tables and plots", "forecast", "backtest", "PassUntil", "COD"]
    assert all(v >= 0 for v in result.timings.values()) and result.seconds >= sum(result.timings.values()) - 1e-6
    # Backtest one size down: holding out s leaves one size (xs) to fit, so it says why it did not run.
    assert result.backtest.rows == [] and "single fitting model size" in result.backtest.reason
    # COD: one row per task, fitted on family.yaml's sizes; 6 items cannot make a cluster of 10, and it says so.
    assert [r.task for r in result.cod] == tasks
    for row in result.cod:
        assert row.status == STATUS_UNPREDICTABLE and "no cluster of at least 10 instances" in row.reason
        assert row.instances == 6 and row.subset == 0
    assert (result.cod_dir / "ref_facts" / "cod.json").is_file()

    # PassUntil: greedy beside the measured rate; numbers agree with the samples in the store.
    assert [r.checkpoint for r in result.passuntil] == [smallest[0], largest]
    with passuntil_store.connect(result.store) as con:
        stored = con.execute(
            "SELECT checkpoint, doc_id, list(correct ORDER BY sample_idx) AS v FROM passuntil_samples "
            "WHERE task = 'ref_add3' GROUP BY checkpoint, doc_id"
        ).df()
    for row in result.passuntil:
        assert row.greedy == pytest.approx(by_task.loc[row.checkpoint, "ref_add3_greedy"])
        mine = stored[stored.checkpoint == row.checkpoint]
        assert row.instances == len(mine) == 4 and row.samples == sum(len(v) for v in mine.v)
        assert all(len(v) <= settings.cap for v in mine.v)
        assert row.passed == sum(any(v) for v in mine.v)
        assert row.solved == sum(sum(v) >= settings.successes for v in mine.v)
        assert (row.pass_rate > 0) == (row.passed > 0)
        assert row.lower <= row.pass_rate <= row.upper and row.upper > 0
        counts = [_truncate(v, settings.successes) for v in mine.v]
        expected = task_score([c for c, _ in counts], [n for _, n in counts], r=settings.successes)
        assert row.pass_rate == pytest.approx(expected.value)
    big = result.passuntil[-1]
    assert big.passed > 0 and big.pass_rate > 0.05  # the target passes often: PassUntil stops early
    assert big.samples < big.instances * settings.cap

    with Store(result.store).connect() as con:
        choices = con.execute("SELECT * FROM choices WHERE checkpoint = ? ORDER BY doc_id, choice_idx", [names[0]]).df()
        samples = con.execute("SELECT * FROM samples WHERE checkpoint = ? AND task = 'ref_add3'", [names[0]]).df()
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

    # A second run reuses the store: nothing is evaluated or sampled again.
    again = run_demo(tmp_path / "demo", tasks=tasks, checkpoints=names, limit=6, progress=False, passuntil=settings,
                     backtest=False, cod=False, leaderboard=False)
    assert again.table.equals(result.table)
    assert [r.to_dict() for r in again.forecasts] == [r.to_dict() for r in result.forecasts]
    assert [(r.pass_rate, r.samples) for r in again.passuntil] == [(r.pass_rate, r.samples) for r in result.passuntil]


def _truncate(verdicts, r):
    from capcast.passuntil.estimators import truncate_at_rth_success

    return truncate_at_rth_success(list(verdicts), r)


@pytest.mark.slow
def test_demo_command_prints_scores_forecast_and_passuntil_tables(tmp_path, monkeypatch):
    """`capcast demo` (thin shell over run_demo) on 3 checkpoints: all three tables, with real values."""
    from typer.testing import CliRunner

    from capcast.cli.app import app

    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    names = "xs-s0-step244,s-s0-step122,m-s0-step977"  # xs-s0-step244 and the target m-s0-step977 are PassUntil checkpoints
    result = CliRunner().invoke(app, [
        "demo", "--out", str(tmp_path / "demo"), "--checkpoints", names, "--tasks", "ref_facts,ref_add3_greedy", "--limit", "4",
        "--passuntil-items", "2", "--passuntil-cap", "64", "--no-leaderboard",
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "forecast of m-s0-step977 from 2 checkpoints of family.yaml (xs, s)" in out
    for task in ("ref_facts", "ref_add3_greedy"):
        assert any(line.startswith(f"│ {task} ") for line in out.splitlines())
    assert "ref_add3: greedy vs PassUntil (first 2 items, r = 2, cap 64" in out
    row = next(line for line in out.splitlines() if line.startswith("│ xs-s0-step244 ") and "/2 " in line)
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[2] == "0.000" and cells[5].endswith("/2") and int(cells[6].replace(",", "")) <= 2 * 64
    assert len(list((tmp_path / "demo" / "forecast-plots").glob("*.png"))) == 2
    # The steps in order, each with its heading; the time of each step and where the outputs are.
    headings = ["1. measured", "2. forecast", "3. backtest", "4. PassUntil", "5. COD", "time per step (s): evaluation"]
    positions = [out.index(h) for h in headings]
    assert positions == sorted(positions)
    assert "6. leaderboard" not in out  # --no-leaderboard
    assert "3. backtest: not run: family 'capcast-mini' has a single fitting model size" in out
    assert "  ref_facts (acc): subset 0 of 4 instances" in out
    timing = next(line for line in out.splitlines() if line.startswith("time per step (s):"))
    for step in ("evaluation", "tables and plots", "forecast", "backtest", "PassUntil", "COD", "total"):
        assert f"{step} " in timing
    assert f"where: plots {tmp_path / 'demo' / 'plots'}" in out
