"""The family spec's optional ``schedules:`` (run -> learning-rate schedule): validation in one line,
and the reference mini-ladder's committed specs carrying their runs' schedules."""

from __future__ import annotations

from pathlib import Path

import pytest

from capcast.errors import CapcastError
from capcast.spec import load_family

SPEC = """\
family: tiny
checkpoints:
  - name: tiny-s-step100
    model: EleutherAI/pythia-70m
    params: 1.0e5
    tokens: 2.0e7
  - name: tiny-m-step100
    model: EleutherAI/pythia-160m
    params: 5.0e5
    tokens: 2.0e7
target:
  name: tiny-xl-step100
  params: 5.0e6
  tokens: 2.0e8
schedules:
  tiny-s:
    warmup_steps: 10
    peak_lr: 3.0e-3
    final_lr: 3.0e-4
    decay: cosine
    total_steps: 100
    tokens_per_step: 2.0e5
  tiny-xl:
    peak_lr: 1
    final_lr: 0
    decay: wsd
    decay_fraction: 0.2
    total_steps: 1000
    tokens_per_step: 2.0e5
"""


def load(tmp_path: Path, text: str):
    path = tmp_path / "family.yaml"
    path.write_text(text)
    return load_family(path, check_paths=False)


def test_schedules_load_by_run_name_for_checkpoints_and_the_target(tmp_path: Path) -> None:
    family = load(tmp_path, SPEC)
    assert set(family.schedules) == {"tiny-s", "tiny-xl"}
    assert family.schedules["tiny-s"].warmup_steps == 10 and family.schedules["tiny-xl"].decay_fraction == 0.2
    assert family.schedules["tiny-xl"].warmup_steps == 0  # warm-up defaults to none
    assert load(tmp_path, SPEC.split("schedules:")[0]).schedules == {}  # optional


@pytest.mark.parametrize("old, new, message", [
    ("  tiny-xl:\n", "  tiny-q:\n", "schedules: run(s) 'tiny-q' that no checkpoint or target belongs to; key schedules by run names such as"),
    ("    decay: cosine\n", "    decay: exponential\n", "schedules.tiny-s.decay: Input should be 'cosine', 'linear', 'constant' or 'wsd'"),
    ("    final_lr: 3.0e-4\n", "    final_lr: 3.0e-2\n", "final_lr 0.03 is above peak_lr 0.003"),
    ("    decay_fraction: 0.2\n", "", "decay_fraction (the share of steps in the final decay) goes with decay: wsd"),
    ("    warmup_steps: 10\n", "    warmup_steps: 100\n", "warmup_steps 100 is not below total_steps 100"),
    ("    tokens_per_step: 2.0e5\n  tiny-xl", "    tokens_per_step: 0\n  tiny-xl", "schedules.tiny-s.tokens_per_step: Input should be greater than 0"),
    ("    warmup_steps: 10\n", "    warmup: 10\n", "unknown key 'schedules.tiny-s.warmup'; remove it (allowed keys: warmup_steps, peak_lr"),
    ("    total_steps: 100\n", "", "schedules.tiny-s.total_steps is missing; add it"),
])
def test_schedule_mistakes_are_one_line(tmp_path: Path, old: str, new: str, message: str) -> None:
    assert old in SPEC
    with pytest.raises(CapcastError) as info:
        load(tmp_path, SPEC.replace(old, new, 1))
    text = str(info.value)
    assert message in text and "\n" not in text, text


def test_the_committed_mini_ladder_specs_carry_every_runs_training_schedule() -> None:
    from capcast.laws.schedule import learning_rates
    from capcast.reference.ladder import default_ladder_dir, load_manifest, member_schedule
    from capcast.reference.train import MemberSpec, _lr_at

    ladder = default_ladder_dir()
    manifest = load_manifest(ladder)
    everything = load_family(ladder / "ladder.yaml", check_paths=False)
    backtest = load_family(ladder / "family.yaml", check_paths=False)
    runs = {c.run_name for c in everything.checkpoints}
    assert set(everything.schedules) == runs
    # family.yaml: the fitting runs and the target's run, no others
    assert set(backtest.schedules) == {c.run_name for c in backtest.checkpoints} | {"m-s0"}
    for member in manifest["members"]:
        run = f"{member['size']}-s{member['seed']}"
        assert everything.schedules[run].model_dump(exclude={"decay_fraction"}) == member_schedule(member)
        spec = MemberSpec(**{k: tuple(v) if k == "save_at" else v for k, v in member.items()})
        rates = learning_rates(everything.schedules[run])
        steps = [0, spec.steps // 20 - 1, spec.steps // 2, spec.steps - 1]
        assert [rates[i] for i in steps] == pytest.approx([_lr_at(i, spec) for i in steps], rel=1e-12)
