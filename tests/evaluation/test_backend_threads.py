"""Torch threads: --threads N, then TORCH_NUM_THREADS, then OMP_NUM_THREADS (left to torch), then one
thread for small models. Checked on a real model load through the harness, in a fresh process
(torch's thread count is process-wide)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from capcast.errors import CapcastError
from capcast.evaluation import threads

PROGRAM = """
import sys, torch
torch.set_num_threads(2)  # as torch starts on a 2-core machine, whatever this one has
from capcast.evaluation import harness, threads
if sys.argv[2] != "none":
    threads.request_threads(int(sys.argv[2]))
loaded = harness.load_model(sys.argv[1], device="cpu", batch_size=2)
print(torch.get_num_threads())
"""


def _threads_after_load(model: str, requested: str, **env: str) -> int:
    environ = {k: v for k, v in os.environ.items() if k not in ("TORCH_NUM_THREADS", "OMP_NUM_THREADS")} | env
    out = subprocess.run([sys.executable, "-c", PROGRAM, model, requested], capture_output=True, text=True, env=environ, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return int(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_thread_count_follows_the_documented_order(tiny_family):
    model = str(tiny_family.parent / "tiny-xs")
    assert _threads_after_load(model, "none") == 1  # a small model: one thread
    assert _threads_after_load(model, "none", TORCH_NUM_THREADS="3") == 3  # torch ignores it; capcast does not
    assert _threads_after_load(model, "2", TORCH_NUM_THREADS="3") == 2  # --threads wins


def test_choose_threads_rules(monkeypatch):
    monkeypatch.delenv("TORCH_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_requested", None)
    assert threads.choose_threads(10_000)[0] == 1
    assert threads.choose_threads(threads.SMALL_MODEL_PARAMS)[0] is None  # big: torch's own count
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert threads.choose_threads(10_000) == (None, "OMP_NUM_THREADS")  # torch read it at start-up
    monkeypatch.setenv("TORCH_NUM_THREADS", "many")
    with pytest.raises(CapcastError, match="TORCH_NUM_THREADS='many' is not a whole number"):
        threads.choose_threads(10_000)
    with pytest.raises(CapcastError, match="--threads must be at least 1"):
        threads.request_threads(0)
