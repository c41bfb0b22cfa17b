"""``capcast forecast FAMILY.yaml --executor local --workers 2``: the spec's evaluation runs in two
worker processes (the same records as the in-process loop), then the forecast."""

from __future__ import annotations

import json

import pytest

from capcast.testing.cli import run_in_process

pytestmark = pytest.mark.slow


def test_forecast_a_family_through_two_local_workers(grid, tmp_path, capsys, offline_hf_env):
    spec = grid.spec.parent / "family-with-target.yaml"  # beside the checkpoints: the same model paths as the reference runs
    spec.write_text(grid.spec.read_text() + "target:\n  name: tiny-xl\n  params: 5.0e7\n  tokens: 1.0e9\n")
    store = tmp_path / "store"
    args = ["forecast", str(spec), "--tasks", "capcast_add_mc", "--store", str(store), "--limit", str(grid.options["limit"]),
            "--device", "cpu", "--format", "json", "--executor", "local", "--workers", "2"]
    code, out, err = run_in_process(args, capsys)
    assert code == 0, err
    rows = json.loads(out)["rows"]
    assert [(r["task"], r["model"]) for r in rows] == [("capcast_add_mc", "tiny-xl")]
    got, want = grid.records_of(store), grid.records
    assert got["runs"] == [r for r in want["runs"] if r[2] == "capcast_add_mc"]
    mc = [r for r in want["choices"] if r[2] == "capcast_add_mc"]
    assert grid.same(got, {"choices": mc, "samples": [], "runs": got["runs"]})
    code, out2, _ = run_in_process(args, capsys)  # everything stored: no job, the same answer
    assert code == 0 and json.loads(out2)["rows"] == rows
