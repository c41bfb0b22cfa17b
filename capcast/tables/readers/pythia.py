"""Reader ``pythia``: the Pythia suite's published lm-eval results as a scores table.

Source: the ``pythia`` data folder (which holds ``evals/pythia-v1``) or the ``evals/pythia-v1``
folder itself. Its files are lm-eval v0.3 JSON, one per size x step x shot setting
(``<model>/<zero-shot|five-shot>/..._step<N>.json``).

Rows: family ``pythia`` / ``pythia-deduped`` (+ ``-5shot``), model ``pythia-<size>`` plus the
family's suffix (``pythia-12b-deduped``, ``pythia-70m-5shot``); ``run`` = ``model`` (each model is
one training run, its checkpoints told apart by ``tokens`` and ``step``). One row per
(step, task, metric). ``params`` are the paper's non-embedding counts, ``tokens`` = step x
2,097,152. ``n_items`` is recovered from the reported binomial stderr (n = p(1-p)/se^2 + 1, exact
for lm-eval's sample stderr). ``mmlu`` is the mean of the 57 ``hendrycksTest-*`` subjects
(n_items = their sum); with ``subjects=True`` each subject is also a task of its own,
``mmlu_<subject>`` (lm-eval 0.4's name). LAMBADA's perplexity is kept as metric ``ppl``: a loss the two-step laws
can use. :func:`pythia_schedules` gives every run's learning-rate schedule (for ``ladder-schedule``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Optional

import pandas as pd

from capcast.errors import CapcastError
from capcast.tables.readers.base import Reader

TOKENS_PER_STEP = 2_097_152

# Non-embedding parameter counts from the Pythia paper (data/pythia/PROVENANCE.md).
PYTHIA_PARAMS = {
    "70m": 18_915_328,
    "160m": 85_056_000,
    "410m": 302_311_424,
    "1b": 805_736_448,
    "1.4b": 1_208_602_624,
    "2.8b": 2_517_652_480,
    "6.9b": 6_444_163_072,
    "12b": 11_327_027_200,
}
# Chance accuracy per task. lm-eval v0.3 ``wsc`` is the SuperGLUE binary version.
PYTHIA_CHANCE = {
    "arc_easy": 0.25,
    "arc_challenge": 0.25,
    "lambada_openai": 0.0,
    "logiqa": 0.25,
    "piqa": 0.5,
    "sciq": 0.25,
    "winogrande": 0.5,
    "wsc": 0.5,
    "mmlu": 0.25,
}
PYTHIA_TASKS = tuple(PYTHIA_CHANCE)
# The standard backtest on this suite (benchmarks/forecast_accuracy.py, the published leaderboard):
# the metric forecast per task (ARC-Challenge with acc_norm, MMLU the mean of its subjects), the
# fitting sizes and the targets.
BACKTEST_TASKS = {"arc_easy": "acc", "arc_challenge": "acc_norm", "lambada_openai": "acc", "piqa": "acc", "sciq": "acc",
                  "winogrande": "acc", "wsc": "acc", "logiqa": "acc", "mmlu": "acc"}
BACKTEST_FIT = ["70m", "160m", "410m", "1b", "1.4b"]
BACKTEST_TARGETS = ["6.9b", "12b"]
SUITE_FOLDER = Path("evals") / "pythia-v1"
# Pythia's learning-rate schedule (Biderman et al. 2023): 1% warm-up, cosine to 10% of the peak over
# 143,000 steps of 2,097,152 tokens, for every size. Relative (peak 1): schedule-aware laws use the
# rate relative to each run's peak, so the per-size peak rates are not needed.
TOTAL_STEPS = 143_000
PYTHIA_SCHEDULE = {"warmup_steps": TOTAL_STEPS // 100, "peak_lr": 1.0, "final_lr": 0.1, "decay": "cosine",
                   "total_steps": TOTAL_STEPS, "tokens_per_step": TOKENS_PER_STEP}


def pythia_schedules(sizes=tuple(PYTHIA_PARAMS), family: str = "pythia") -> dict[str, dict]:
    """run name -> its schedule's fields (a family spec's ``schedules`` entries, :class:`capcast.spec.Schedule`)."""
    suffix = family.removeprefix("pythia")
    return {f"pythia-{size}{suffix}": dict(PYTHIA_SCHEDULE) for size in sizes}
SETTINGS = (("zero-shot", ""), ("five-shot", "-5shot"))
MMLU_PREFIX = "hendrycksTest-"  # lm-eval v0.3's name of an MMLU subject


def n_from_stderr(p: float, se: float | None) -> float:
    """The number of items behind a binomial proportion ``p`` with sample stderr ``se``."""
    if se is None or not se > 0 or not 0 < p < 1:
        return math.nan
    return round(p * (1 - p) / se**2 + 1)


def _run_folder(size: str, family: str) -> str:
    if family == "pythia-deduped":
        return f"pythia-{size}-deduped"
    return "pythia-1b-bf16" if size == "1b" else f"pythia-{size}"  # the standard 1B run's folder


def _looks_like_suite(folder: Path) -> bool:
    return folder.is_dir() and any((folder / _run_folder(size, "pythia") / "zero-shot").is_dir() for size in PYTHIA_PARAMS)


def suite_root(source: Path) -> Optional[Path]:
    """The ``evals/pythia-v1`` folder for ``source`` (that folder or the ``pythia`` folder above it)."""
    source = Path(source)
    for candidate in (source, source / SUITE_FOLDER):
        if _looks_like_suite(candidate):
            return candidate
    return None


def load_results(path: Path) -> dict:
    """The ``results`` mapping of one lm-eval v0.3 JSON; a one-line error for anything else."""
    try:
        results = json.loads(path.read_text())["results"]
        if not isinstance(results, dict):
            raise TypeError
        return results
    except (OSError, ValueError, KeyError, TypeError):
        raise CapcastError(f"{path}: not an lm-eval results JSON with a 'results' mapping; restore the file from the Pythia repository") from None


def result_rows(results: dict, base: dict, subjects: bool = False) -> list[dict]:
    """Rows (``base`` plus task, metric, value, n_items, chance) of one evaluation's ``results``:
    the suite's tasks, LAMBADA's ``ppl``, ``mmlu`` (and with ``subjects`` each subject)."""
    rows = []
    for task in PYTHIA_TASKS:
        if task == "mmlu" or task not in results:
            continue
        res = results[task]
        for metric in ("acc", "acc_norm"):
            if metric in res:
                n = n_from_stderr(res[metric], res.get(f"{metric}_stderr"))
                rows.append({**base, "task": task, "metric": metric, "value": float(res[metric]),
                             "n_items": n, "chance": PYTHIA_CHANCE[task]})
        if "ppl" in res:
            rows.append({**base, "task": task, "metric": "ppl", "value": float(res["ppl"]),
                         "n_items": math.nan, "chance": math.nan})
    by_subject = {k.removeprefix(MMLU_PREFIX): v for k, v in results.items() if k.startswith(MMLU_PREFIX)}
    if len(by_subject) == 57:
        for metric in ("acc", "acc_norm"):
            values = [s[metric] for s in by_subject.values()]
            ns = [n_from_stderr(s[metric], s.get(f"{metric}_stderr")) for s in by_subject.values()]
            rows.append({**base, "task": "mmlu", "metric": metric, "value": sum(values) / len(values),
                         "n_items": float(sum(ns)), "chance": 0.25})
            if subjects:
                rows.extend({**base, "task": f"mmlu_{name}", "metric": metric, "value": float(value), "n_items": n, "chance": 0.25}
                            for name, value, n in zip(by_subject, values, ns))
    return rows


def _rows(path: Path, family: str, size: str, step: int, subjects: bool = False) -> list[dict]:
    params = PYTHIA_PARAMS[size]
    tokens = float(step * TOKENS_PER_STEP)
    # model names are unique across families (pythia-1b, pythia-1b-deduped, pythia-1b-5shot, ...)
    model = f"pythia-{size}" + family.removeprefix("pythia")
    base = {"family": family, "run": model, "model": model, "params": params, "tokens": tokens,
            "flops": 6.0 * params * tokens, "step": step}
    return result_rows(load_results(path), base, subjects)


def read_pythia(source: Path, deduped: bool = True, five_shot: bool = False, subjects: bool = False) -> pd.DataFrame:
    """The Pythia v1 suite under ``source`` (the ``pythia`` folder or its ``evals/pythia-v1``):
    the standard runs, optionally the deduped ones, the five-shot evaluations and MMLU's 57
    subjects as tasks of their own (``mmlu_<subject>``; ``mmlu`` is their mean either way)."""
    root = suite_root(Path(source))
    if root is None:
        raise CapcastError(f"{source}: not the Pythia suite's results; pass the pythia data folder or its {SUITE_FOLDER} folder "
                           f"(it holds pythia-70m/zero-shot/...)")
    rows: list[dict] = []
    for size in PYTHIA_PARAMS:
        families = ["pythia"] + (["pythia-deduped"] if deduped else [])
        for family in families:
            for setting, suffix in SETTINGS[: 2 if five_shot else 1]:
                for path in sorted((root / _run_folder(size, family) / setting).glob("*_step*.json")):
                    step = int(re.search(r"_step(\d+)\.json$", path.name).group(1))
                    rows.extend(_rows(path, family + suffix, size, step, subjects=subjects))
    return pd.DataFrame(rows)


def _read(source: Path, spec: Optional[Path]) -> pd.DataFrame:
    if spec is not None:
        raise CapcastError("reader pythia takes no --spec: the suite's parameters and tokens are known; drop --spec")
    return read_pythia(source, deduped=True, five_shot=True)


def detect(source: Path) -> bool:
    return suite_root(Path(source)) is not None


READER = Reader(
    name="pythia",
    read=_read,
    description="Pythia suite evals (the pythia data folder or its evals/pythia-v1): standard, deduped, zero- and five-shot",
    detect=detect,
)
