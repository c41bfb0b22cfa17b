"""Reader ``openlm``: Gadre et al. (2024)'s 104 OpenLM runs as a scores table.

Source: the ``openlm-overtraining`` data folder (which holds ``exp_data``) or ``exp_data`` itself
(``models/*.json``, ``evals/evaluation_<run>_heavy.json``, ``eval_metadata.csv``).

Rows: family = training set (``c4_original``, ``rpj``, ``rw_original``), model = run name
(``rw_original-open_lm_7b-1.0``), ``run`` = ``model`` (one final checkpoint per run), ``step``
empty. 46 downstream tasks with metric ``acc`` (``n_items`` and ``chance`` from
``eval_metadata.csv``) and 8 validation losses as task ``val/<set>`` metric ``loss`` (nats/token).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Optional

import pandas as pd

from capcast.errors import CapcastError
from capcast.tables.readers.base import Reader

METADATA_FILE = "eval_metadata.csv"
# Substrings of a loss evaluation's val_data path -> the validation set's short name.
VAL_NAMES = (
    ("c4_val", "c4"), ("/openlm/", "openlm"), ("paloma_c4_en", "paloma_c4_en"),
    ("programing_languages", "paloma_code"), ("falcon-refinedweb", "paloma_refinedweb"),
    ("paloma_ptb", "paloma_ptb"), ("paloma_redpajama", "paloma_redpajama"), ("de-en", "de_en"),
)

# Gadre et al.'s 17-task split (their scaling/constants.py SUBSET), in this table's task names.
GADRE_17 = ["arc_easy", "bigbench_cs_algorithms", "bigbench_dyck_languages", "bigbench_novel_concepts",
            "bigbench_operators", "bigbench_qa_wikidata", "boolq", "commonsense_qa", "copa", "coqa",
            "hellaswag_zeroshot", "hellaswag", "lambada_openai", "piqa", "pubmed_qa_labeled", "squad", "winogrande"]


def _looks_like_exp_data(folder: Path) -> bool:
    return (folder / METADATA_FILE).is_file() and (folder / "models").is_dir() and (folder / "evals").is_dir()


def exp_data_root(source: Path) -> Optional[Path]:
    """The ``exp_data`` folder for ``source`` (that folder or the ``openlm-overtraining`` one above it)."""
    source = Path(source)
    for candidate in (source, source / "exp_data"):
        if _looks_like_exp_data(candidate):
            return candidate
    return None


def val_name(val_data: list[str]) -> str:
    path = val_data[0]
    for key, name in VAL_NAMES:
        if key in path:
            return name
    return Path(path).parent.name


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CapcastError(f"{path}: missing; every run in models/ needs its evals/evaluation_<run>_heavy.json") from None
    except (OSError, ValueError):
        raise CapcastError(f"{path}: not valid JSON; restore the file from the mlfoundations/scaling repository") from None


def read_openlm(source: Path) -> pd.DataFrame:
    """The OpenLM runs under ``source``: downstream accuracies plus validation losses."""
    root = exp_data_root(Path(source))
    if root is None:
        raise CapcastError(f"{source}: not the OpenLM over-training data; pass the openlm-overtraining folder or its exp_data "
                           f"(it holds {METADATA_FILE}, models/ and evals/)")
    meta = {}
    with open(root / METADATA_FILE, newline="") as fh:
        for rec in csv.DictReader(fh):
            meta[rec["Eval Task"]] = (float(rec["#datapoints"]), float(rec["Random baseline"]) / 100)
    rows: list[dict] = []
    for model_path in sorted((root / "models").glob("*.json")):
        model = _json(model_path)
        try:
            hp = model["hyperparameters"]
            name, params, tokens = model["name"], float(hp["params"]), float(hp["tokens"])
            base = {"family": model["dataset_name"], "run": name, "model": name, "params": params, "tokens": tokens,
                    "flops": 6.0 * params * tokens, "step": math.nan}
            for res in model["results"]:
                rows.append({**base, "task": f"val/{val_name(res['val_data'])}", "metric": "loss",
                             "value": float(res["loss"]), "n_items": math.nan, "chance": math.nan})
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise CapcastError(f"{model_path}: not an OpenLM run record (missing or bad {exc}); restore the file") from None
        evals_path = root / "evals" / f"evaluation_{name}_heavy.json"
        icl = _json(evals_path).get("eval_metrics", {}).get("icl")
        if not isinstance(icl, dict):
            raise CapcastError(f"{evals_path}: no eval_metrics.icl mapping of task -> accuracy; restore the file")
        for task, value in icl.items():
            n, chance = meta.get(task, (math.nan, math.nan))
            rows.append({**base, "task": task, "metric": "acc", "value": float(value), "n_items": n, "chance": chance})
    return pd.DataFrame(rows)


def _read(source: Path, spec: Optional[Path]) -> pd.DataFrame:
    if spec is not None:
        raise CapcastError("reader openlm takes no --spec: the runs record their parameters and tokens; drop --spec")
    return read_openlm(source)


def detect(source: Path) -> bool:
    return exp_data_root(Path(source)) is not None


READER = Reader(
    name="openlm",
    read=_read,
    description="Gadre et al.'s OpenLM over-training runs (the openlm-overtraining folder or its exp_data)",
    detect=detect,
)
