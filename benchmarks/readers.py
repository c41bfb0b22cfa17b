"""Readers that turn the real published results in ``../shared/data`` into capcast scores tables.

They read the files in place (never copy them into the repository). Override the data folder with
``CAPCAST_SHARED_DATA`` (the folder that holds ``pythia/`` and ``openlm-overtraining/``).

    python benchmarks/readers.py pythia out.parquet      # write a scores table
    python benchmarks/readers.py openlm out.csv

Pythia (lm-eval v0.3 JSON, one file per size x step x shot setting):
  family ``pythia`` / ``pythia-deduped`` (+ ``-5shot``), model ``pythia-<size>`` plus the family's
  suffix (``pythia-12b-deduped``), one row per
  (step, task, metric). ``n_items`` is recovered from the reported binomial stderr
  (n = p(1-p)/se^2 + 1, exact for lm-eval's sample stderr). ``mmlu`` is the mean of the 57
  ``hendrycksTest-*`` subjects (n_items = their sum). LAMBADA's perplexity is kept as metric
  ``ppl``: a loss the two-step laws can use.
OpenLM (Gadre et al. 2024): family = training set (``c4_original``, ``rpj``, ``rw_original``),
  one final checkpoint per run, 46 downstream tasks (metric ``acc``; ``n_items`` and ``chance`` from
  ``eval_metadata.csv``) and 8 validation losses as task ``val/<set>`` metric ``loss`` (nats/token).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import sys
from pathlib import Path

import pandas as pd

DATA_ENV = "CAPCAST_SHARED_DATA"
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


def shared_data_dir() -> Path:
    """The shared data folder: $CAPCAST_SHARED_DATA, else ``../shared/data`` beside the repo."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _n_from_stderr(p: float, se: float | None) -> float:
    if se is None or not se > 0 or not 0 < p < 1:
        return math.nan
    return round(p * (1 - p) / se**2 + 1)


def _pythia_rows(path: Path, family: str, size: str, step: int) -> list[dict]:
    results = json.loads(path.read_text())["results"]
    params = PYTHIA_PARAMS[size]
    tokens = float(step * TOKENS_PER_STEP)
    # model names are unique across families (pythia-1b, pythia-1b-deduped, pythia-1b-5shot, ...)
    model = f"pythia-{size}" + family.removeprefix("pythia")
    base = {"family": family, "model": model, "params": params, "tokens": tokens,
            "flops": 6.0 * params * tokens, "step": step}
    rows = []
    for task in PYTHIA_TASKS:
        if task == "mmlu" or task not in results:
            continue
        res = results[task]
        for metric in ("acc", "acc_norm"):
            if metric in res:
                n = _n_from_stderr(res[metric], res.get(f"{metric}_stderr"))
                rows.append({**base, "task": task, "metric": metric, "value": float(res[metric]),
                             "n_items": n, "chance": PYTHIA_CHANCE[task]})
        if "ppl" in res:
            rows.append({**base, "task": task, "metric": "ppl", "value": float(res["ppl"]),
                         "n_items": math.nan, "chance": math.nan})
    subjects = [v for k, v in results.items() if k.startswith("hendrycksTest-")]
    if len(subjects) == 57:
        for metric in ("acc", "acc_norm"):
            values = [s[metric] for s in subjects]
            ns = [_n_from_stderr(s[metric], s.get(f"{metric}_stderr")) for s in subjects]
            rows.append({**base, "task": "mmlu", "metric": metric, "value": sum(values) / len(values),
                         "n_items": float(sum(ns)), "chance": 0.25})
    return rows


def read_pythia(data_dir: Path | None = None, deduped: bool = True, five_shot: bool = False) -> pd.DataFrame:
    """The Pythia v1 suite (standard runs, optionally deduped and five-shot) as a scores table."""
    root = (data_dir or shared_data_dir()) / "pythia" / "evals" / "pythia-v1"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found; set {DATA_ENV} to the shared data folder")
    rows: list[dict] = []
    for size in PYTHIA_PARAMS:
        variants = [("pythia", "pythia-1b-bf16" if size == "1b" else f"pythia-{size}")]
        if deduped:
            variants.append(("pythia-deduped", f"pythia-{size}-deduped"))
        for family, folder in variants:
            settings = [("zero-shot", "")] + ([("five-shot", "-5shot")] if five_shot else [])
            for setting, suffix in settings:
                for path in sorted((root / folder / setting).glob("*_step*.json")):
                    step = int(re.search(r"_step(\d+)\.json$", path.name).group(1))
                    rows.extend(_pythia_rows(path, family + suffix, size, step))
    return pd.DataFrame(rows)


def _val_name(val_data: list[str]) -> str:
    path = val_data[0]
    for key, name in (("c4_val", "c4"), ("/openlm/", "openlm"), ("paloma_c4_en", "paloma_c4_en"),
                      ("programing_languages", "paloma_code"), ("falcon-refinedweb", "paloma_refinedweb"),
                      ("paloma_ptb", "paloma_ptb"), ("paloma_redpajama", "paloma_redpajama"), ("de-en", "de_en")):
        if key in path:
            return name
    return Path(path).parent.name


def read_openlm(data_dir: Path | None = None) -> pd.DataFrame:
    """Gadre et al.'s 104 OpenLM runs: downstream accuracies plus validation losses."""
    root = (data_dir or shared_data_dir()) / "openlm-overtraining" / "exp_data"
    if not root.is_dir():
        raise FileNotFoundError(f"{root} not found; set {DATA_ENV} to the shared data folder")
    meta = {}
    with open(root / "eval_metadata.csv", newline="") as fh:
        for rec in csv.DictReader(fh):
            meta[rec["Eval Task"]] = (float(rec["#datapoints"]), float(rec["Random baseline"]) / 100)
    rows: list[dict] = []
    for model_path in sorted((root / "models").glob("*.json")):
        model = json.loads(model_path.read_text())
        hp = model["hyperparameters"]
        params, tokens = float(hp["params"]), float(hp["tokens"])
        base = {"family": model["dataset_name"], "model": model["name"], "params": params, "tokens": tokens,
                "flops": 6.0 * params * tokens, "step": math.nan}
        for res in model["results"]:
            rows.append({**base, "task": f"val/{_val_name(res['val_data'])}", "metric": "loss",
                         "value": float(res["loss"]), "n_items": math.nan, "chance": math.nan})
        evals = json.loads((root / "evals" / f"evaluation_{model['name']}_heavy.json").read_text())
        for task, value in evals["eval_metrics"]["icl"].items():
            n, chance = meta.get(task, (math.nan, math.nan))
            rows.append({**base, "task": task, "metric": "acc", "value": float(value), "n_items": n, "chance": chance})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    which, out = sys.argv[1], Path(sys.argv[2])
    frame = read_pythia() if which == "pythia" else read_openlm()
    frame.to_parquet(out) if out.suffix == ".parquet" else frame.to_csv(out, index=False)
    print(f"wrote {len(frame)} rows to {out}")
