"""The chance level of well-known lm-eval tasks, for scores tables that carry none.

capcast's own evaluations record each task's chance (``capcast scores``), and so do the Pythia
and OpenLM readers; lm-eval's ``results*.json`` do not (``capcast import lm-eval-results`` leaves
the column empty), nor do most tables users write by hand. A multiple-choice task forecast with a
floor of 0 instead of its chance bends every law: on Pythia (fit up to 1.4b), emptying the column
took ``auto`` from 1.27 to 2.56 points MAE (benchmarks/chance_fallback.txt). So where the table
has no chance for a task, :func:`known_chance` gives the one its lm-eval config implies: the number
of choices of every document (``doc_to_choice``; checked against lm-eval 0.4.9's YAMLs), for the
metrics whose chance follows from it, and 0 for generative tasks. A task it does not know keeps 0
and the forecast says so (:mod:`capcast.tables.scores`).

Names are lm-eval's (and two of OLMES's, ``csqa`` and ``socialiqa``): another harness's task of the
same name may offer other choices (LLM Foundry's ``commonsense_qa`` has 4, lm-eval's 5; its ``siqa``
2, lm-eval's ``social_iqa`` 3, so ``siqa`` is left out), so a table from elsewhere should carry its
own column.
"""

from __future__ import annotations

from capcast.metrics import base_metric

# lm-eval task -> choices per document (0: generative; the score of a random guess is 0)
LM_EVAL_CHOICES: dict[str, int] = {
    # 2 choices
    "piqa": 2, "winogrande": 2, "boolq": 2, "copa": 2, "wsc": 2, "wsc273": 2, "rte": 2, "qnli": 2, "sst2": 2,
    "mrpc": 2, "qqp": 2, "wnli": 2, "wic": 2, "cola": 2, "storycloze_2016": 2, "storycloze_2018": 2, "toxigen": 2,
    # 3 choices
    "cb": 3, "mnli": 3, "mnli_mismatch": 3, "anli_r1": 3, "anli_r2": 3, "anli_r3": 3, "social_iqa": 3, "pubmedqa": 3,
    # 4 choices
    "hellaswag": 4, "arc_easy": 4, "arc_challenge": 4, "openbookqa": 4, "sciq": 4, "mmlu": 4, "logiqa": 4,
    "logiqa2": 4, "race": 4, "swag": 4, "prost": 4, "medmcqa": 4, "mutual": 4, "mutual_plus": 4,
    # 5 choices
    "commonsense_qa": 5, "mathqa": 5,
    # the same tasks under OLMES's names (OLMo's evaluations): csqa is commonsense_qa, socialiqa social_iqa
    "csqa": 5, "socialiqa": 3,
    # generative
    "lambada_openai": 0, "lambada_standard": 0, "gsm8k": 0, "triviaqa": 0, "nq_open": 0, "humaneval": 0, "mbpp": 0,
    "drop": 0, "coqa": 0,
}
# task families named by a prefix: each of their subtasks offers this many choices
PREFIX_CHOICES: tuple[tuple[str, int], ...] = (
    ("mmlu_", 4), ("blimp_", 2), ("xcopa_", 2), ("xwinograd_", 2), ("xstorycloze_", 2), ("xnli_", 3),
    ("arithmetic_", 0),
)
# metric -> its chance given k choices (the metrics whose chance the number of choices fixes)
CHANCE_OF_CHOICES = {
    "acc": lambda k: 1.0 / k,
    "acc_norm": lambda k: 1.0 / k,
    # the accuracies OLMES reports beside them (other normalisations of the choices' log-likelihoods)
    "acc_per_char": lambda k: 1.0 / k,
    "acc_per_token": lambda k: 1.0 / k,
    "acc_raw": lambda k: 1.0 / k,
    "acc_uncond": lambda k: 1.0 / k,
    "p_gold": lambda k: 1.0 / k,  # the gold choice's probability renormalised over k choices
    "brier": lambda k: 1.0 - 1.0 / k,  # uniform probabilities: (1 - 1/k)^2 + (k - 1) / k^2
}
# the metrics of a generative task whose chance is 0
GENERATIVE_METRICS = ("acc", "exact_match", "pass_rate", "f1")


def choices_of(task: str) -> int | None:
    """The number of choices of lm-eval's ``task`` (0: generative), or None where it is not known."""
    if task in LM_EVAL_CHOICES:
        return LM_EVAL_CHOICES[task]
    for prefix, k in PREFIX_CHOICES:
        if task.startswith(prefix):
            return k
    return None


def chance_follows_choices(metric: str) -> bool:
    """Whether ``metric``'s chance is fixed by the number of choices (:data:`CHANCE_OF_CHOICES`)."""
    return base_metric(metric) in CHANCE_OF_CHOICES


def known_chance(task: str, metric: str) -> tuple[float, str] | None:
    """(the chance of ``metric`` on lm-eval's ``task``, where it comes from), or None where the
    task or the metric's chance is not known."""
    k = choices_of(task)
    base = base_metric(metric)  # a filtered metric (exact_match/strict-match) is its metric's
    if k is None:
        return None
    if k == 0:
        return (0.0, f"lm-eval's {task} is generative") if base in GENERATIVE_METRICS else None
    rule = CHANCE_OF_CHOICES.get(base)
    if rule is None:
        return None
    return float(rule(k)), f"lm-eval's {task} has {k} choices"
