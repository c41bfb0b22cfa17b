"""The mini-ladder leaderboard recipe (what `make leaderboards` and the demo run) on the committed
reference scores: registered, then resolved; rebuilding registers nothing new."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from capcast.leaderboard.published import MINI_TARGET, build_mini_ladder
from capcast.leaderboard.registry import load_registry

REFERENCE_SCORES = Path(__file__).resolve().parents[2] / "docs" / "reference-scores.csv"


@pytest.mark.slow
def test_mini_ladder_registers_then_resolves_its_target(tmp_path):
    index = build_mini_ladder(REFERENCE_SCORES, tmp_path / "mini")
    registry = load_registry(tmp_path / "mini" / "registry.jsonl")
    target = [r for r in registry.registrations if r["forecast"]["model"] == MINI_TARGET]
    untrained = [r for r in registry.registrations if r["forecast"]["model"] != MINI_TARGET]
    assert len(target) == len(untrained) == 8  # one per reference task
    assert all(r["id"] in registry.resolutions for r in target) and not any(r["id"] in registry.resolutions for r in untrained)
    html = index.read_text()
    assert html.count('class="badge resolved"') == 8 and html.count('class="badge registered"') == 8
    before = (tmp_path / "mini" / "registry.jsonl").read_text()
    build_mini_ladder(REFERENCE_SCORES, tmp_path / "mini")
    assert (tmp_path / "mini" / "registry.jsonl").read_text() == before
