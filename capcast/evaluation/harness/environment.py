"""The process around lm-eval: offline switches and caches for local runs, quiet libraries, and the
versions recorded in every run manifest."""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
from pathlib import Path


def prepare_environment(store_dir: Path, *, local_tasks: bool, local_models: bool) -> None:
    """Keep runs of local tasks offline and their dataset cache inside the store.

    Hugging Face libraries read these variables when first imported, so this must run before
    them (``capcast eval`` does); values the user set are left alone.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if local_tasks:
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_CACHE", str(Path(store_dir).resolve() / "cache" / "hf-datasets"))
        if local_models:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")


@functools.lru_cache(maxsize=1)
def _quiet_libraries() -> None:
    """Mute log lines and progress bars of the libraries underneath capcast's own progress bar.

    Cosmetic only: lm-eval's per-task request-building bar has no switch, and its git lookup
    prints "fatal: not a git repository" outside a repo, so both are swapped for silent
    equivalents inside lm-eval's modules (same results).
    """
    import subprocess

    for name in ("lm_eval", "lm-eval", "transformers", "datasets", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import datasets
        import transformers

        datasets.disable_progress_bars()
        datasets.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    except Exception:
        pass
    try:
        import lm_eval.api.task
        import lm_eval.evaluator
        from tqdm import tqdm

        def git_hash_quietly() -> str | None:
            try:
                out = subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, check=False)
                return out.stdout.strip() or None
            except OSError:
                return None

        lm_eval.evaluator.get_git_commit_hash = git_hash_quietly
        lm_eval.api.task.tqdm = functools.partial(tqdm, disable=True)
    except Exception:
        pass
    _lean_lm_eval()


@functools.lru_cache(maxsize=1)
def _lean_lm_eval() -> None:
    """Two per-run costs of lm-eval that do not change any number, removed (same results).

    On small models they were most of a run (profiled on the mini-ladder: 8 of 15 s, 3 of 15 s):
    ``utils.apply_template`` compiles the Jinja template anew for every doc and field (~1 ms each),
    so compiled templates are kept by their source; ``simple_evaluate`` collects torch's
    environment report (``pip list`` and friends in subprocesses, ~0.7 s) for its results JSON,
    which capcast never reads: each run manifest records its own versions (:func:`versions`).
    """
    try:
        import lm_eval.evaluator
        import lm_eval.utils
    except Exception:
        return
    compiled = functools.lru_cache(maxsize=4096)(lm_eval.utils.env.from_string)

    def apply_template(template: str, doc: dict) -> str:
        return compiled(template).render(**doc)

    lm_eval.utils.apply_template = apply_template
    lm_eval.evaluator.add_env_info = lambda storage: None


def versions() -> dict[str, str]:
    """Versions of the parts that change numbers: recorded in every run manifest."""
    return dict(_installed_versions())


@functools.lru_cache(maxsize=1)  # installed versions do not change within a process
def _installed_versions() -> dict[str, str]:
    out = {}
    for dist in ("lm_eval", "transformers", "torch", "tokenizers", "datasets", "vllm"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out
