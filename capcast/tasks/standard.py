"""The standard benchmarks (ARC, HellaSwag, MMLU, PIQA, SciQ, WinoGrande, LAMBADA, BoolQ, GSM8K,
HumanEval) on lm-eval's OWN task configs, with only the data source swapped.

Each task is a :class:`capcast.Task` whose config builder writes a two-part YAML into the store's
task folder: ``include:`` lm-eval's installed YAML for the task (prompts, ``doc_to_text``,
``doc_to_choice``, ``process_docs``, few-shot split and sampler, generation settings all come
from there), then, with a data folder (``capcast eval --data-dir DIR`` or ``CAPCAST_DATA_DIR``),
``dataset_path: json`` and the local files converted to the hub schema
(:mod:`capcast.tasks.benchmark_data`). Without a data folder the hub dataset of lm-eval's YAML is
used (online). The few changes to lm-eval's configs are listed in :data:`BENCHMARKS` (``overrides``)
and in docs/benchmarks.md: LAMBADA is scored as a one-choice task (same context and
continuation, so the same log-likelihoods), HumanEval's code runs in capcast's sandbox instead of
lm-eval's in-process ``code_eval``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from capcast.errors import CapcastError
from capcast.tasks import benchmark_data as data
from capcast.tasks.arithmetic import write_if_changed
from capcast.tasks.task import Task

DATA_DIR_ENV = "CAPCAST_DATA_DIR"
SPLIT_KEYS = ("training_split", "validation_split", "test_split", "fewshot_split")


def checked_data_dir(path: str | Path) -> Path:
    """``path`` as the absolute benchmark folder ``--data-dir`` names, or one line saying why not."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise CapcastError(f"--data-dir {path} is not a folder; point it at the benchmark folder (layout in docs/benchmarks.md)")
    return folder


def data_dir() -> Path | None:
    value = os.environ.get(DATA_DIR_ENV)
    if not value:
        return None
    folder = Path(value)
    if not folder.is_dir():
        raise CapcastError(f"{DATA_DIR_ENV}={value} is not a folder; point it at the benchmark folder (layout in docs/benchmarks.md)")
    return folder


def lm_eval_tasks_dir() -> Path:
    """lm-eval's installed task YAMLs, found without importing lm-eval (only the harness imports it)."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise CapcastError("lm-eval is not installed; pip install 'lm-eval>=0.4.9,<0.5'")
    return Path(list(spec.submodule_search_locations)[0]) / "tasks"


# ----------------------------------------------------------------------------------- checkers


_GSM8K_STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
_GSM8K_IGNORE = (re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$"))


def _gsm8k_normal(text: str) -> str:
    for pattern in _GSM8K_IGNORE:
        text = pattern.sub("", text)
    return text.strip().lower()


def gsm8k_answer(sample: str, doc: dict) -> bool:
    """lm-eval's gsm8k ``strict-match``: the first ``#### <number>`` of the sample, then its
    ``exact_match`` (ignore case, commas, ``$``, a final period) against the reference answer."""
    found = _GSM8K_STRICT.findall(sample)
    prediction = found[0] if found else "[invalid]"
    return _gsm8k_normal(prediction) == _gsm8k_normal(doc["answer"])


def humaneval_checker(sample: str, doc: dict) -> bool:
    """Runs prompt + completion + tests in the sandbox (:mod:`capcast.tasks.sandbox`)."""
    from capcast.tasks.sandbox import code_checker

    return code_checker()(sample, doc)


humaneval_checker.requires_sandbox = True  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------- benchmarks


@dataclass(frozen=True)
class Benchmark:
    """One standard task: lm-eval's YAML, where its local files live, and its forecasting metadata.

    ``files`` maps an lm-eval split name to candidate paths under the data folder (first found
    wins); ``required`` is the split the task is evaluated on (lm-eval's test split, else validation).
    """

    name: str
    yaml: str  # relative to lm_eval/tasks
    files: dict[str, tuple[str, ...]]
    convert: data.Convert
    source: str
    chance: float
    metric: str
    loss_metric: str | None = "bpb_gold"
    kind: str = "multiple_choice"
    checker: Callable | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    row_filter: tuple[str, str] | None = None  # (field, value): keep only these rows (MMLU subjects)
    # Copy the YAML's keys instead of ``include:``-ing it: lm-eval's humaneval/utils.py loads HF
    # evaluate's code_eval from the hub on import, which an include would trigger offline.
    inline: bool = False
    description: str = ""


def _arc(name: str, subset: str, metric: str) -> Benchmark:
    return Benchmark(
        name, f"arc/{name}.yaml",
        {"train": (f"arc/{subset}-train.jsonl", f"arc/{subset}-Train.jsonl"),
         "validation": (f"arc/{subset}-validation.jsonl", f"arc/{subset}-Dev.jsonl"),
         "test": (f"arc/{subset}-test.jsonl", f"arc/{subset}-Test.jsonl")},
        data.arc, "ARC from https://allenai.org/data/arc (AI2 release jsonl) or HF allenai/ai2_arc rows", 0.25, metric,
        description=f"AI2 Reasoning Challenge, {subset.split('-')[1]} set (lm-eval's {name})",
    )


MMLU_SOURCE = "MMLU from https://github.com/hendrycks/test (data/<split>/<subject>_<split>.csv) or HF hails/mmlu_no_train rows"


def _mmlu_files(split: str, csv_split: str, subject: str | None) -> tuple[str, ...]:
    names = (f"mmlu/mmlu-{split}.jsonl", f"mmlu/mmlu-{split}.jsonl.gz")
    return names + ((f"mmlu/data/{csv_split}/{subject}_{csv_split}.csv",) if subject else ())


def mmlu_subjects() -> list[str]:
    folder = lm_eval_tasks_dir() / "mmlu" / "default"
    return sorted(p.stem[len("mmlu_"):] for p in folder.glob("mmlu_*.yaml"))


def _mmlu(subject: str | None) -> Benchmark:
    files = {"test": _mmlu_files("test", "test", subject), "validation": _mmlu_files("validation", "val", subject),
             "dev": _mmlu_files("dev", "dev", subject)}
    if subject:
        return Benchmark(f"mmlu_{subject}", f"mmlu/default/mmlu_{subject}.yaml", files, data.mmlu, MMLU_SOURCE, 0.25, "acc",
                         row_filter=("subject", subject), description=f"MMLU subject {subject.replace('_', ' ')} (lm-eval's mmlu_{subject})")
    # All 57 subjects as one task: the mean over items (lm-eval's group mean, weighted by size),
    # with per-subject records; each item keeps its subject's description, as in lm-eval.
    return Benchmark(
        "mmlu", "mmlu/default/_default_template_yaml", files, data.mmlu, MMLU_SOURCE, 0.25, "acc",
        overrides={"dataset_name": "all",
                   "description": "The following are multiple choice questions (with answers) about {{subject.split('_')|join(' ')}}.\n\n"},
        description="MMLU, all 57 subjects as one task (zero-shot contexts equal the subject tasks'; few-shot: use mmlu_<subject>)",
    )


def benchmarks() -> list[Benchmark]:
    out = [
        _arc("arc_easy", "ARC-Easy", "acc"),
        _arc("arc_challenge", "ARC-Challenge", "acc_norm"),
        Benchmark("hellaswag", "hellaswag/hellaswag.yaml",
                  {"train": ("hellaswag/hellaswag_train.jsonl", "hellaswag/hellaswag_train.jsonl.gz"),
                   "validation": ("hellaswag/hellaswag_val.jsonl", "hellaswag/hellaswag_val.jsonl.gz")},
                  data.hellaswag, "HellaSwag from https://github.com/rowanz/hellaswag (data/hellaswag_val.jsonl)", 0.25, "acc_norm",
                  description="HellaSwag sentence completion (lm-eval's hellaswag, validation split)"),
        Benchmark("piqa", "piqa/piqa.yaml",
                  {"train": ("piqa/piqa-train-hf.jsonl",), "validation": ("piqa/piqa-validation-hf.jsonl", "piqa/valid.jsonl")},
                  data.piqa, "PIQA from https://yonatanbisk.com/piqa (valid.jsonl + valid-labels.lst) or HF rows", 0.5, "acc",
                  description="Physical interaction QA (lm-eval's piqa, validation split)"),
        Benchmark("sciq", "sciq/sciq.yaml",
                  {"train": ("sciq/sciq-train.jsonl", "sciq/train.json"), "validation": ("sciq/sciq-validation.jsonl", "sciq/valid.json"),
                   "test": ("sciq/sciq-test.jsonl", "sciq/test.json")},
                  data.sciq, "SciQ from https://allenai.org/data/sciq (valid.json) or HF allenai/sciq rows", 0.25, "acc",
                  description="Science exam QA (lm-eval's sciq)"),
        Benchmark("winogrande", "winogrande/default.yaml",
                  {"train": ("winogrande/winogrande_xl-train.jsonl", "winogrande/train_xl.jsonl"),
                   "validation": ("winogrande/winogrande_xl-validation.jsonl", "winogrande/dev.jsonl")},
                  data.winogrande, "WinoGrande from https://github.com/allenai/winogrande (dev.jsonl) or HF rows", 0.5, "acc",
                  description="WinoGrande pronoun resolution (lm-eval's winogrande, xl, validation split)"),
        Benchmark("lambada_openai", "lambada/lambada_openai.yaml",
                  {"test": ("lambada/lambada_openai-text.jsonl", "lambada/lambada_test.jsonl", "lambada/lambada_openai-llmfoundry.jsonl")},
                  data.lambada, "LAMBADA (OpenAI variant) jsonl with {text} (EleutherAI/lambada_openai) or {context, continuation}",
                  0.0, "bpb_gold",
                  # lm-eval scores LAMBADA as one loglikelihood request per doc; the same request
                  # as a one-choice task gives the same log-likelihood, and exact_match = lm-eval's acc.
                  overrides={"output_type": "multiple_choice", "doc_to_choice": "{{[' '+text.split(' ')[-1]]}}",
                             "doc_to_target": 0, "target_delimiter": "",
                             "metric_list": [{"metric": "exact_match", "aggregation": "mean", "higher_is_better": True}]},
                  description="LAMBADA last-word prediction (lm-eval's lambada_openai context and continuation)"),
        Benchmark("boolq", "super_glue/boolq/default.yaml",
                  {"train": ("boolq/boolq-train.jsonl", "boolq/train.jsonl"),
                   "validation": ("boolq/boolq-validation.jsonl", "boolq/dev.jsonl")},
                  data.boolq, "BoolQ from https://github.com/google-research-datasets/boolean-questions (dev.jsonl) or HF rows",
                  0.5, "acc", description="BoolQ yes/no questions (lm-eval's boolq, validation split)"),
        Benchmark("gsm8k", "gsm8k/gsm8k.yaml",
                  {"train": ("gsm8k/train.jsonl", "gsm8k/train.jsonl.gz"), "test": ("gsm8k/test.jsonl", "gsm8k/test.jsonl.gz")},
                  data.gsm8k, "GSM8K from https://github.com/openai/grade-school-math (grade_school_math/data/test.jsonl)", 0.0,
                  "pass_rate", loss_metric=None, kind="generate", checker=gsm8k_answer,
                  description="GSM8K grade-school math, 5-shot, lm-eval's strict-match answer check"),
        Benchmark("humaneval", "humaneval/humaneval.yaml", {"test": ("humaneval/HumanEval.jsonl.gz", "humaneval/HumanEval.jsonl")},
                  data.humaneval, "HumanEval from https://github.com/openai/human-eval (data/HumanEval.jsonl.gz)", 0.0, "pass_rate",
                  loss_metric=None, kind="generate", checker=humaneval_checker, inline=True,
                  # capcast's sandbox runs the tests (the checker); lm-eval's in-process code_eval never runs.
                  overrides={"unsafe_code": False, "metric_list": [{"metric": "bypass", "aggregation": "bypass", "higher_is_better": True}],
                             "filter_list": [{"name": "none", "filter": [{"function": "take_first"}]}]},
                  description="HumanEval Python functions, tests run in capcast's sandbox (needs bubblewrap)"),
        _mmlu(None),
    ]
    return out + [_mmlu(subject) for subject in mmlu_subjects()]


# ------------------------------------------------------------------------------ config builder


def _pick(folder: Path, candidates: tuple[str, ...]) -> Path | None:
    return next((folder / c for c in candidates if (folder / c).is_file()), None)


def _piqa_labels(path: Path, rows: list[dict]) -> list[dict]:
    """PIQA's release keeps labels in a separate ``valid-labels.lst`` next to ``valid.jsonl``."""
    labels = path.with_name(path.name.replace(".jsonl", "-labels.lst"))
    if not labels.is_file():
        raise CapcastError(f"task 'piqa': {path} has no labels and {labels} is missing; both come from https://yonatanbisk.com/piqa")
    values = labels.read_text().split()
    if len(values) != len(rows):
        raise CapcastError(f"task 'piqa': {labels} has {len(values)} labels for {len(rows)} rows of {path}; use the matching files")
    return [{**row, "label": int(value)} for row, value in zip(rows, values)]




def _local_source(bench: Benchmark, folder: Path, out: Path) -> dict:
    """``dataset_*`` and split keys that point lm-eval at converted local files."""
    data_files: dict[str, str] = {}
    for split, candidates in bench.files.items():
        path = _pick(folder, candidates)
        if path is None:
            continue
        rows = data.load_rows(path, bench.convert, task=bench.name, source=bench.source)
        if bench.name == "piqa" and any(r["label"] is None for r in rows):
            rows = _piqa_labels(path, rows)
        if bench.row_filter:
            key, value = bench.row_filter
            rows = [r for r in rows if r.get(key) == value]
            if not rows:
                raise CapcastError(f"task {bench.name!r}: {path} has no rows with {key} {value!r}; expected {bench.source}")
        target = out / f"{split}.jsonl"
        write_if_changed(target, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows))
        data_files[split] = str(target)
    return data_files


def _split_keys(original: dict, found: set[str]) -> dict:
    """lm-eval's split settings, with splits that have no local file set to null."""
    return {key: (original.get(key) if original.get(key) in found else None) for key in SPLIT_KEYS if key in original}


def _raw_yaml(path: Path) -> dict:
    """The YAML's own keys (``!function`` tags kept as text), following ``include:`` files."""

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: f"!{suffix}")
    raw = yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
    included = {}
    for name in ([raw.pop("include")] if isinstance(raw.get("include"), str) else raw.pop("include", None) or []):
        included.update(_raw_yaml(path.parent / name))
    return {**included, **raw}


def build_config(bench: Benchmark, out: Path) -> Path:
    """Write ``out/<task>.yaml`` (lm-eval's YAML + overrides + local data) and return its path."""
    source = lm_eval_tasks_dir() / bench.yaml
    if not source.is_file():
        raise CapcastError(f"task {bench.name!r}: lm-eval's config {source} is missing; install lm-eval>=0.4.9,<0.5")
    if bench.checker is humaneval_checker:
        from capcast.tasks.sandbox import require_isolation

        require_isolation()  # before any model is loaded
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    wrapper: dict[str, Any] = {"include": str(source), "task": bench.name, **bench.overrides}
    if bench.inline:
        wrapper = {**_raw_yaml(source), "task": bench.name, **bench.overrides}
        left = [k for k, v in wrapper.items() if isinstance(v, str) and v.startswith("!")]
        if left:
            raise CapcastError(f"task {bench.name!r}: lm-eval's {source} now has Python hooks in {', '.join(left)}; capcast cannot copy it")
    folder = data_dir()
    if folder is not None:
        files = _local_source(bench, folder, out)
        original = _raw_yaml(source)
        needed = original.get("test_split") or original.get("validation_split")
        eval_split = needed if needed in files else ("validation" if "validation" in files and original.get("validation_split") else None)
        if eval_split is None:
            wanted = ", ".join(bench.files.get(needed, ()) or [c for cs in bench.files.values() for c in cs])
            raise CapcastError(f"task {bench.name!r}: no evaluation file under {folder}: expected one of {wanted}; "
                               f"get it from {bench.source} (layout in docs/benchmarks.md)")
        wrapper.update({"dataset_path": "json", "dataset_name": None, "dataset_kwargs": {"data_files": files}})
        wrapper.update(_split_keys(original, set(files)))
    elif os.environ.get("HF_DATASETS_OFFLINE") == "1":
        raise CapcastError(f"task {bench.name!r} has no local data and HF_DATASETS_OFFLINE=1; pass --data-dir DIR "
                           f"(files from {bench.source}) or set HF_DATASETS_OFFLINE=0 to download from the hub")
    path = out / f"{bench.name}.yaml"
    write_if_changed(path, yaml.safe_dump(wrapper, sort_keys=False, allow_unicode=True))
    return path


def standard_tasks() -> list[Task]:
    """The :class:`capcast.Task` of every standard benchmark (registered by the built-in plugin)."""
    from functools import partial

    return [
        Task(name=b.name, lm_eval_config=partial(build_config, b), chance=b.chance, kind=b.kind, metric=b.metric,
             checker=b.checker, loss_metric=b.loss_metric, description=b.description)
        for b in benchmarks()
    ]
