"""Shared fixtures of the forecasting tests."""

from __future__ import annotations

from contextlib import contextmanager

import pytest


@pytest.fixture
def recorded_bars(monkeypatch):
    """(bars opened as (description, total), every advance) of ``capcast.progress.counting``,
    which still draws its bars."""
    import capcast.progress as progress

    calls, advanced = [], []
    real = progress.counting

    @contextmanager
    def recording(description, total):
        calls.append((description, total))
        with real(description, total) as advance:
            yield lambda n=1: (advanced.append(n), advance(n))

    monkeypatch.setattr(progress, "counting", recording)
    return calls, advanced
