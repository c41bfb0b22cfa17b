"""Start-up stays light: `capcast plugins` imports no numerical stack, and the built-in laws and
readers registered by reference are the real ones (names, descriptions, behaviour)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("statsmodels", "scipy", "pandas", "torch", "lm_eval", "transformers", "sklearn")


def _imported_modules(args: list[str]) -> tuple[set[str], subprocess.CompletedProcess]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "capcast", *args], capture_output=True, text=True, timeout=120)
    modules = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return modules, proc


def test_capcast_plugins_imports_no_numerical_stack():
    modules, proc = _imported_modules(["plugins"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "capcast.plugins.registry" in modules  # the importtime listing was read
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY) == []
    assert not any(m.startswith("capcast.laws.") and m != "capcast.laws.base" for m in modules)
    for name in ("sigmoid", "ladder", "loss-error", "auto", "passuntil_compute", "lm-eval-results", "pythia"):
        assert name in proc.stdout


def test_lazy_builtin_laws_are_the_real_laws():
    from capcast.laws.base import Law
    from capcast.plugins.builtin.laws import BUILTIN_LAWS
    from capcast.plugins.registry import load_registry

    for lazy in BUILTIN_LAWS:
        real = lazy.law
        assert isinstance(lazy, Law) and isinstance(real, Law)
        assert (lazy.name, lazy.description, lazy.auto_candidate) == (real.name, real.description, getattr(real, "auto_candidate", False))
    auto = load_registry().law("auto")
    assert [c.name for c in auto.law.candidates] == ["sigmoid", "ladder", "loss-error", "logacc-power", "saturating-power", "ladder-schedule"]
    assert type(auto.law).__name__ == "AutoLaw"


def test_a_lazy_law_fits_like_the_real_one():
    import numpy as np

    from capcast.laws.baselines import LinearLaw
    from capcast.laws.base import Series, Target
    from capcast.plugins.registry import load_registry

    params = np.array([1e7, 3e7, 1e8, 3e8, 1e9])
    series = Series(task="t", metric="acc", model=np.array([f"m{i}" for i in range(5)]), params=params, tokens=20 * params,
                    flops=120 * params**2, value=np.array([0.30, 0.36, 0.45, 0.55, 0.64]), n_items=np.full(5, 1000), chance=0.25)
    target = Target(name="big", params=3e9, tokens=6e10, flops=120 * 9e18)
    lazy = load_registry().law("linear").fit(series).predict(target)
    real = LinearLaw().fit(series).predict(target)
    assert (lazy.mean, lazy.lower, lazy.upper) == pytest.approx((real.mean, real.lower, real.upper))


def test_lazy_readers_are_the_real_readers(tmp_path):
    import importlib

    from capcast.plugins.builtin.readers import LAZY_READERS
    from capcast.plugins.registry import load_registry

    registry = load_registry()
    for module, name, description in LAZY_READERS:
        real = importlib.import_module(module).READER
        lazy = registry.reader(name)
        assert (lazy.name, lazy.description) == (real.name, real.description)
        assert lazy.detect(tmp_path) == real.detect(tmp_path) is False
