"""The checkpoint-family spec: a YAML file naming small checkpoints and, optionally, the target.

``run`` names the training run a checkpoint belongs to (one size, one seed, one schedule); it
defaults to the checkpoint name without a trailing ``-step<N>`` or ``_step<N>``, so
``l-s0-step610`` and ``l-s0-step2441`` are two checkpoints of run ``l-s0``. Everything that means
"the final checkpoint of a run", "the target's run" or "early checkpoints" uses it.

``params`` counts non-embedding parameters when you have them (the convention of Kaplan et al.
and Pythia's published counts); total parameters work too, as long as one family uses one
convention. ``tokens`` is the number of training tokens seen by the checkpoint. ``flops``
defaults to 6 * params * tokens.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from capcast.errors import CapcastError
from capcast.schema import default_flops, default_run


class _Strict(BaseModel):
    # allow_inf_nan=False: `params: .inf` (or nan) is refused, not turned into a compute of inf
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Checkpoint(_Strict):
    name: str = Field(min_length=1)
    run: str | None = Field(default=None, min_length=1, description="training run; default: name without -step<N>")
    model: str = Field(min_length=1, description="local path or hub id")
    revision: str | None = None
    params: float = Field(gt=0)
    tokens: float = Field(gt=0)
    flops: float | None = Field(default=None, gt=0)
    step: int | None = Field(default=None, ge=0)

    @property
    def compute(self) -> float:
        return self.flops if self.flops is not None else default_flops(self.params, self.tokens)

    @property
    def run_name(self) -> str:
        """The training run this checkpoint belongs to: ``run``, else the name without a trailing
        ``-step<N>``/``_step<N>`` (:func:`capcast.schema.default_run`)."""
        return self.run if self.run is not None else default_run(self.name)


class TargetSpec(_Strict):
    name: str = Field(min_length=1)
    model: str | None = None
    revision: str | None = None
    params: float | None = Field(default=None, gt=0)
    tokens: float | None = Field(default=None, gt=0)
    flops: float | None = Field(default=None, gt=0)
    step: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _needs_size(self):
        if self.flops is None and (self.params is None or self.tokens is None):
            raise ValueError("give params and tokens, or flops")
        return self


class Schedule(_Strict):
    """One run's learning-rate schedule (docs/family-spec.md "Schedules"): linear warm-up over
    ``warmup_steps``, then ``decay`` from ``peak_lr`` to ``final_lr`` by step ``total_steps``
    (``wsd``: stable at peak, then linear over the last ``decay_fraction`` of the steps). A
    relative schedule (``peak_lr: 1``, ``final_lr: 0.1``) serves as well as the absolute one:
    schedule-aware laws use the learning rate relative to the run's peak."""

    warmup_steps: int = Field(default=0, ge=0)
    peak_lr: float = Field(gt=0)
    final_lr: float = Field(default=0.0, ge=0)
    decay: Literal["cosine", "linear", "constant", "wsd"] = "cosine"
    decay_fraction: float | None = Field(default=None, gt=0, le=1)
    total_steps: int = Field(gt=0)
    tokens_per_step: float = Field(gt=0)

    @model_validator(mode="after")
    def _consistent(self):
        if self.final_lr > self.peak_lr:
            raise ValueError(f"final_lr {self.final_lr:g} is above peak_lr {self.peak_lr:g}; give final_lr <= peak_lr")
        if self.warmup_steps >= self.total_steps:
            raise ValueError(f"warmup_steps {self.warmup_steps} is not below total_steps {self.total_steps}")
        if (self.decay == "wsd") != (self.decay_fraction is not None):
            raise ValueError("decay_fraction (the share of steps in the final decay) goes with decay: wsd, and only with it")
        return self


class Family(_Strict):
    family: str = Field(min_length=1)
    checkpoints: list[Checkpoint] = Field(min_length=1)
    target: TargetSpec | None = None
    # run name -> its learning-rate schedule (optional; schedule-aware laws need them)
    schedules: dict[str, Schedule] = Field(default_factory=dict)

    @field_validator("checkpoints")
    @classmethod
    def _unique_names(cls, checkpoints: list[Checkpoint]) -> list[Checkpoint]:
        seen: set[str] = set()
        for i, ckpt in enumerate(checkpoints):
            if ckpt.name in seen:
                raise ValueError(f"duplicate checkpoint name {ckpt.name!r} (entry {i}); give every checkpoint a unique name")
            seen.add(ckpt.name)
        return checkpoints

    @field_validator("schedules")
    @classmethod
    def _schedules_name_runs(cls, schedules: dict[str, Schedule], info) -> dict[str, Schedule]:
        checkpoints, target = info.data.get("checkpoints") or [], info.data.get("target")
        runs = {c.run_name for c in checkpoints} | ({default_run(target.name)} if target is not None else set())
        unknown = sorted(set(schedules) - runs)
        if unknown and runs:
            raise ValueError(f"run(s) {', '.join(map(repr, unknown))} that no checkpoint or target belongs to; "
                             f"key schedules by run names such as {sorted(runs)[0]!r}")
        return schedules

    def checkpoint(self, name: str) -> Checkpoint:
        for ckpt in self.checkpoints:
            if ckpt.name == name:
                return ckpt
        raise CapcastError(f"family {self.family!r} has no checkpoint named {name!r}")


_FIXES = {
    "greater_than": "use a positive number",
    "float_parsing": "use a number such as 1.2e9",
    "float_type": "use a number such as 1.2e9",
    "finite_number": "use a finite number such as 1.2e9",
    "too_short": "list at least one entry",
}


def _field_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel]:
    """The nested spec model that owns the field at ``loc`` (for listing its allowed keys)."""
    for part in loc:
        if isinstance(part, int) or part not in model.model_fields:  # a list index or a mapping key (a run name)
            continue
        annotation = model.model_fields[part].annotation
        nested = [a for a in typing.get_args(annotation) or (annotation,) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not nested:
            break
        model = nested[0]
    return model


def _one_line(path: Path, err: dict) -> str:
    where = _field_path(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = ", ".join(_model_at(Family, err["loc"][:-1]).model_fields)
        return f"{path}: unknown key {where!r}; remove it (allowed keys: {allowed})"
    if kind == "missing":
        return f"{path}: {where} is missing; add it"
    msg = err["msg"].removeprefix("Value error, ")
    fix = _FIXES.get(kind)
    return f"{path}: {where}: {msg}" + (f"; {fix}" if fix else "")


def load_family(path: str | Path, check_paths: bool = True) -> Family:
    """Read and validate a family spec. Every mistake raises one-line :class:`CapcastError`."""
    path = Path(path)
    if not path.is_file():
        raise CapcastError(f"{path}: no such family spec file; pass the path to a family YAML")
    try:
        raw = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CapcastError(f"{path}: not UTF-8 text (byte {exc.start}); save the family spec as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise CapcastError(f"{path}: malformed YAML{where}; fix the syntax there") from None
    if not isinstance(raw, dict):
        raise CapcastError(f"{path}: expected a mapping with keys family, checkpoints, target (and optionally schedules)")
    try:
        family = Family.model_validate(raw)
    except ValidationError as exc:
        raise CapcastError(_one_line(path, exc.errors()[0])) from None
    if check_paths:
        for i, ckpt in enumerate(family.checkpoints):
            _check_model_path(path, f"checkpoints[{i}].model", ckpt.model)
    return family


def open_family(family: str | Path | Family) -> tuple[Path, Family]:
    """(spec path, Family) from a spec file, or from a :class:`Family` built in memory, whose
    relative model paths then resolve against the working folder."""
    if isinstance(family, Family):
        return Path.cwd() / "family.yaml", family
    return Path(family), load_family(family)


def _looks_local(model: str) -> bool:
    # A hub id is "org/name" (or a bare "name"); anything starting like a filesystem path is local.
    return model.startswith((".", "/", "~")) or model.count("/") > 1 or Path(model).exists()


def resolve_model_path(spec_path: Path, model: str) -> str:
    """Local paths resolve against the spec file's folder; hub ids pass through unchanged."""
    if not _looks_local(model):
        return model
    candidate = Path(model).expanduser()
    if not candidate.is_absolute():
        candidate = (spec_path.parent / candidate).resolve()
    return str(candidate)


def _check_model_path(spec_path: Path, field: str, model: str) -> None:
    if _looks_local(model) and not Path(resolve_model_path(spec_path, model)).exists():
        raise CapcastError(
            f"{spec_path}: {field}: local path {model!r} does not exist; fix the path (relative paths resolve against the spec's folder) or use a hub id"
        )
