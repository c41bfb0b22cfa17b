"""A built-in law registered by reference keeps its recent fits by series: the same series is fitted
once (auto's candidates alone and inside auto, auto under another rule), anything else is fitted."""

from __future__ import annotations

import pickle
import sys
from dataclasses import replace

import numpy as np
import pytest

from capcast.laws.base import NotPredictable
from capcast.plugins.builtin import laws as builtin
from capcast.plugins.builtin.laws import LazyLaw
from capcast.tables.series import Series


class CountingLaw:
    """Refuses series whose task is "refused"; counts the fits it was asked for."""

    calls = 0

    def __init__(self, **kwargs):
        self.name = "counting"

    def fit(self, series):
        CountingLaw.calls += 1
        if series.task == "refused":
            raise NotPredictable("no signal")
        return ("fit of", series.task, float(series.value.sum()))


def series(task="t", values=(0.3, 0.4, 0.5), extra=None) -> Series:
    n = len(values)
    return Series(task=task, metric="acc", model=np.array([f"m{i}" for i in range(n)], dtype=object),
                  params=np.arange(1.0, n + 1), tokens=np.full(n, 10.0), flops=np.arange(1.0, n + 1) * 60,
                  value=np.array(values), n_items=np.full(n, 100.0), chance=0.25, extra=extra or {})


@pytest.fixture
def law(monkeypatch):
    monkeypatch.setattr(CountingLaw, "calls", 0)
    monkeypatch.setitem(sys.modules, "counting_law_module", type("M", (), {"CountingLaw": CountingLaw}))
    return LazyLaw("counting_law_module:CountingLaw", "counting", "counts its fits")


def test_the_same_series_is_fitted_once_and_any_difference_refits(law):
    first = law.fit(series())
    again = law.fit(series())  # another object, the same content
    assert again is first and CountingLaw.calls == 1
    law.fit(series(values=(0.3, 0.4, 0.51)))
    law.fit(series(extra={"bpb_gold": np.array([1.0, 0.9, 0.8])}))
    law.fit(replace(series(), chance=0.5))
    law.fit(replace(series(), run=np.array(["a", "a", "b"], dtype=object)))
    assert CountingLaw.calls == 5


def test_a_refusal_is_kept_and_raised_again(law):
    for _ in range(2):
        with pytest.raises(NotPredictable, match="no signal"):
            law.fit(series(task="refused"))
    assert CountingLaw.calls == 1


def test_only_the_recent_fits_are_kept_and_a_pickled_law_keeps_none(law):
    for i in range(builtin.RECENT_FITS + 1):
        law.fit(series(values=(0.3, 0.4, 0.5 + i / 1000)))
    assert len(law._fits) == builtin.RECENT_FITS
    law.fit(series(values=(0.3, 0.4, 0.5)))  # the oldest was dropped: fitted again
    assert CountingLaw.calls == builtin.RECENT_FITS + 2
    assert len(pickle.loads(pickle.dumps(law))._fits) == 0


def test_fingerprints_differ_on_every_field_a_law_reads():
    base = series()
    changed = [replace(base, task="u"), replace(base, metric="acc_norm"), replace(base, params=base.params * 2),
               replace(base, tokens=base.tokens + 1), replace(base, flops=base.flops + 1), replace(base, n_items=None),
               replace(base, step=np.array([1, 2, 3])), replace(base, family="f"),
               replace(base, model=np.array(["a", "b", "c"], dtype=object))]
    prints = {s.fingerprint() for s in changed} | {base.fingerprint()}
    assert len(prints) == len(changed) + 1
    assert series().fingerprint() == base.fingerprint()
