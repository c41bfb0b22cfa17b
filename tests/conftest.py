"""Shared fixtures. Rooms append their own fixtures below; don't rewrite others'."""

from __future__ import annotations

import os

import pytest

# pytest-xdist's workers (`make test` runs two) start with COLUMNS=80, which rich's consoles take as
# their width when they are created at import: the tests see what a user's pipe gets, no COLUMNS.
for _variable in ("COLUMNS", "LINES"):
    os.environ.pop(_variable, None)


# --- evaluation room: tiny real checkpoints -----------------------------------------------------


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory):
    """Path to the family.yaml of three tiny random-init Llama checkpoints (char tokenizer)."""
    from capcast.testing import build_tiny_family

    return build_tiny_family(tmp_path_factory.mktemp("tiny-family"), sizes=("xs", "s", "m"), seed=0)


@pytest.fixture
def offline_hf_env(monkeypatch, tmp_path):
    """Hugging Face offline settings for in-process runs, restored after the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _process_data_dir_restored():
    """A plain ``api.use_benchmark_data(DIR)`` sets CAPCAST_DATA_DIR for the rest of the process
    (the commands hold it for their own run only, tested in tests/tasks): put it back after each
    test, so that no later test in the same process (an xdist worker runs many files) finds
    benchmark data it did not ask for."""
    from capcast.tasks.standard import DATA_DIR_ENV

    before = os.environ.get(DATA_DIR_ENV)
    yield
    if before is None:
        os.environ.pop(DATA_DIR_ENV, None)
    else:
        os.environ[DATA_DIR_ENV] = before
