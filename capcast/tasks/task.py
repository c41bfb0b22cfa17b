"""`Task`: what a plugin registers to make a benchmark evaluable and forecastable."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

# An answer checker decides whether one generated sample passes: checker(sample_text, doc) -> bool.
Checker = Callable[[str, dict], bool]
# A config builder writes whatever data the task needs under `data_dir` and returns the
# lm-eval task config (a dict with absolute paths), so generated tasks work from any cwd.
ConfigBuilder = Callable[[Path], dict]

LmEvalConfig = Union[str, Path, dict, ConfigBuilder, None]


class Task(BaseModel):
    """One task capcast can evaluate.

    Attributes:
        name: unique task name (also the lm-eval task name).
        lm_eval_config: path to an lm-eval task YAML, a dict with the same keys, a callable
            ``build(data_dir) -> dict`` that generates the data and returns such a dict (or the
            path of a YAML it wrote), or
            ``None`` for one of lm-eval's own built-in tasks called ``name``.
        chance: score of random guessing (0 for generative tasks).
        kind: ``"multiple_choice"`` or ``"generate"``; inferred from the config when omitted.
        metric: the metric forecast by default (``acc`` for multiple choice, ``pass_rate`` for
            generative tasks).
        loss_metric: the per-byte task loss forecast beside ``metric`` (e.g. ``bpb_gold``), if any.
        checker: for generative tasks, decides whether one sample passes.
        repeats: samples per prompt for generative tasks under ``capcast eval``.
        description: one line shown by ``capcast plugins``.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True, extra="forbid")

    name: str = Field(min_length=1)
    lm_eval_config: Any = None
    chance: float = Field(default=0.0, ge=0.0, le=1.0)
    kind: Literal["multiple_choice", "generate"] | None = None
    metric: str | None = None
    loss_metric: str | None = None
    checker: Any = None
    repeats: int = Field(default=1, ge=1)
    description: str = ""

    @property
    def is_builtin_lm_eval(self) -> bool:
        return self.lm_eval_config is None

    @property
    def default_metric(self) -> str:
        if self.metric:
            return self.metric
        return "pass_rate" if self.kind == "generate" else "acc"
