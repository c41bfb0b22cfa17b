"""``capcast family init``: write a family spec from a folder of checkpoints (or a list of hub ids).

A folder holds one subfolder per checkpoint (``step_1000/``, ``l-s0-step2441/``), or one folder
per run with one subfolder per checkpoint (``run-a/step_500/``). A list file holds one checkpoint
per line: ``MODEL [REVISION]`` (or ``MODEL@REVISION``), a hub id or a local path; ``#`` starts a
comment. For each checkpoint:

- **params** are counted from its ``config.json`` alone, on the meta device (transformers
  ``AutoModelForCausalLM.from_config`` under ``torch.device("meta")``: no weights are read or
  allocated). The spec's ``params`` is the **non-embedding** count (every ``nn.Embedding`` and the
  output head left out: Kaplan et al.'s and Pythia's convention, the one capcast's spec asks
  for); the total is written beside it as a comment.
- **tokens** come from ``--tokens-per-step`` x step, else from a ``trainer_state.json`` in the
  checkpoint folder (``num_input_tokens_seen``), else they are left for the user to fill.
- **step** is parsed from the name (``step1000``, ``step_1000``, ``checkpoint-500``,
  ``global_step500``, a bare number) or taken from ``trainer_state.json``'s ``global_step``;
  **run** is the run folder, else the name without ``-step<N>`` (:func:`capcast.schema.default_run`).

What could not be inferred is written as a commented ``FILL IN`` line, so the file loads once
those are filled (until then the spec loader names the first missing field). See
docs/family-init.md.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from capcast.errors import CapcastError
from capcast.schema import default_run

PARAMS_CONVENTION = "non-embedding"
_STEP = re.compile(r"(?:^|[-_.])(?:global_step|step|checkpoint|ckpt|iter)[-_]?(\d+)$", re.IGNORECASE)
_BARE_STEP = re.compile(r"^(?:(?:global_step|step|checkpoint|ckpt|iter)[-_]?)?(\d+)$", re.IGNORECASE)
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth")


@dataclass(frozen=True)
class FoundCheckpoint:
    """One checkpoint as ``family init`` described it; ``None`` marks what it could not infer."""

    name: str
    model: str  # local folder (absolute) or hub id
    run: str
    step: int | None
    params: int  # non-embedding
    total_params: int
    tokens: float | None
    tokens_from: str  # where ``tokens`` came from, or why it is missing
    revision: str | None = None
    local: bool = True


@dataclass
class FamilyDraft:
    family: str
    source: Path
    checkpoints: list[FoundCheckpoint]
    tokens_per_step: float | None = None
    skipped: list[str] = field(default_factory=list)  # subfolders that are not checkpoints
    path: Path | None = None  # where the YAML was written

    @property
    def missing(self) -> list[str]:
        """``checkpoint: field`` for every value left to fill in."""
        return [f"{c.name}: tokens" for c in self.checkpoints if c.tokens is None]


def count_params(model: str, revision: str | None = None) -> tuple[int, int]:
    """(non-embedding, total) parameters of the causal LM that ``model``'s config describes,
    built on the meta device (no weights read or allocated)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(model, revision=revision)
    except Exception as exc:  # json errors, unknown model_type, missing file, offline hub: all one line
        where = f"{model}/config.json" if Path(model).is_dir() else f"{model}" + (f" at revision {revision}" if revision else "")
        raise CapcastError(f"{where}: cannot read it as a transformers config ({_first_line(exc)}); fix it or leave that checkpoint out") from None
    try:
        with torch.device("meta"):
            net = AutoModelForCausalLM.from_config(config)
    except Exception as exc:
        raise CapcastError(f"{model}: its config ({config.model_type}) does not build a causal LM ({_first_line(exc)}); "
                           "capcast forecasts causal LMs") from None
    return non_embedding_params(net), sum(p.numel() for p in net.parameters())


def non_embedding_params(model) -> int:
    """Parameters outside every embedding table (token, position) and the output head."""
    import torch

    left_out = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    head = model.get_output_embeddings()
    if head is not None:
        left_out.add(id(head.weight))
    return sum(p.numel() for p in model.parameters() if id(p) not in left_out)


def parse_step(name: str) -> int | None:
    """The training step in a checkpoint's name or revision: ``step1000``, ``l-s0-step2441``,
    ``step_500``, ``checkpoint-500``, ``global_step500``, ``1000``; None when it has none."""
    found = _STEP.search(name) or _BARE_STEP.match(name)
    return int(found.group(1)) if found else None


def describe_folder(folder: str | Path, tokens_per_step: float | None = None, family: str | None = None) -> FamilyDraft:
    """Describe every checkpoint under ``folder`` (one subfolder each, or run/checkpoint)."""
    root = Path(folder)
    if not root.exists():
        raise CapcastError(f"{root}: no such folder; pass the folder that holds one subfolder per checkpoint")
    if not root.is_dir():
        raise CapcastError(f"{root}: not a folder; pass a folder of checkpoints or a text file of hub ids")
    if (root / "config.json").is_file():
        raise CapcastError(f"{root} is itself one checkpoint; pass the folder above it, which holds one subfolder per checkpoint")
    name = family or root.resolve().name
    found, skipped = [], []
    for child in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (child / "config.json").is_file():
            found.append((child, None))
            continue
        _refuse_weights_without_config(child)
        inner = sorted(p for p in child.iterdir() if p.is_dir() and (p / "config.json").is_file())
        for grandchild in child.iterdir():
            if grandchild.is_dir() and not (grandchild / "config.json").is_file():
                _refuse_weights_without_config(grandchild)
        if inner:
            found.extend((p, child.name) for p in inner)
        else:
            skipped.append(child.name)
    if not found:
        what = "is empty" if not any(root.iterdir()) else "has no subfolder with a config.json"
        raise CapcastError(f"{root} {what}; a family folder holds one subfolder per checkpoint, each with its config.json")
    checkpoints = [_describe_local(path, run, name, tokens_per_step) for path, run in found]
    return FamilyDraft(family=name, source=root, checkpoints=_ordered(checkpoints), tokens_per_step=tokens_per_step, skipped=skipped)


def describe_list(path: str | Path, tokens_per_step: float | None = None, family: str | None = None) -> FamilyDraft:
    """Describe the checkpoints of a list file: ``MODEL [REVISION]`` per line (hub id or local path)."""
    path = Path(path)
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) == 1 and "@" in parts[0]:
            parts = parts[0].rsplit("@", 1)
        if len(parts) > 2:
            raise CapcastError(f"{path}:{number}: expected `MODEL [REVISION]`, got {line!r}")
        entries.append((parts[0], parts[1] if len(parts) == 2 else None))
    if not entries:
        raise CapcastError(f"{path}: no checkpoints listed; write one `MODEL [REVISION]` per line (hub id or local path)")
    checkpoints = []
    for model, revision in entries:
        local = Path(model).expanduser()
        local = local if local.is_absolute() else path.parent / local
        if local.is_dir():
            checkpoints.append(_describe_local(local.resolve(), None, None, tokens_per_step, revision=revision))
            continue
        non_embedding, total = count_params(model, revision)
        name = model.rstrip("/").split("/")[-1] + (f"-{revision}" if revision else "")
        step = parse_step(revision) if revision else parse_step(name)
        tokens, origin = _tokens(step, tokens_per_step, None)
        checkpoints.append(FoundCheckpoint(name=name, model=model, run=default_run(name), step=step, params=non_embedding,
                                           total_params=total, tokens=tokens, tokens_from=origin, revision=revision, local=False))
    names = [c.name for c in checkpoints]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise CapcastError(f"{path}: two lines give the checkpoint name {duplicates[0]!r}; list each model and revision once")
    return FamilyDraft(family=family or path.stem, source=path, checkpoints=_ordered(checkpoints), tokens_per_step=tokens_per_step)


def family_init(source: str | Path, out: str | Path = "family.yaml", tokens_per_step: float | None = None,
                family: str | None = None) -> FamilyDraft:
    """Describe ``source`` (a folder of checkpoints or a list file) and write the spec to ``out``."""
    source = Path(source)
    if tokens_per_step is not None and not tokens_per_step > 0:
        raise CapcastError(f"--tokens-per-step {tokens_per_step:g}: give a positive number of training tokens per step")
    if source.is_file():
        draft = describe_list(source, tokens_per_step, family)
    else:
        draft = describe_folder(source, tokens_per_step, family)
    out = Path(out)
    out.write_text(render_yaml(draft, out, command=f"capcast family init {source}"))
    draft.path = out
    return draft


def render_yaml(draft: FamilyDraft, out: Path, command: str = "capcast family init") -> str:
    """The spec as commented YAML: values inferred, their origin, and ``FILL IN`` lines."""
    lines = [
        f"# Written by `{command}` on {datetime.date.today().isoformat()}.",
        "# params: NON-EMBEDDING parameters (embedding tables and output head left out: Kaplan et al.'s",
        "#   and Pythia's convention, what capcast's spec expects), counted from each config.json on the",
        "#   meta device; each checkpoint's total (embeddings included) is in its comment.",
        "# tokens: training tokens the checkpoint has seen; flops defaults to 6 * params * tokens.",
    ]
    if draft.missing:
        lines.append(f"# {len(draft.missing)} value(s) could not be inferred: replace each `# ... FILL IN` line with the value.")
    lines += [f"family: {_quote(draft.family)}", "checkpoints:"]
    for c in draft.checkpoints:
        lines.append(f"  - name: {_quote(c.name)}")
        if c.run != default_run(c.name):
            lines.append(f"    run: {_quote(c.run)}")
        lines.append(f"    model: {_quote(_model_field(c, out))}")
        if c.revision:
            lines.append(f"    revision: {_quote(c.revision)}")
        lines.append(f"    params: {c.params}  # non-embedding; total {c.total_params:,}")
        if c.tokens is None:
            lines.append(f"    # tokens: FILL IN training tokens seen ({c.tokens_from})")
        else:
            lines.append(f"    tokens: {int(c.tokens) if float(c.tokens).is_integer() else c.tokens}  # {c.tokens_from}")
        if c.step is not None:
            lines.append(f"    step: {c.step}")
    lines += [
        "# Optional: the model to forecast (give params and tokens, or flops), e.g.",
        "# target:",
        "#   name: my-7b",
        "#   params: 6.5e9",
        "#   tokens: 2.0e12",
    ]
    return "\n".join(lines) + "\n"


def _describe_local(path: Path, run: str | None, family: str | None, tokens_per_step: float | None,
                    revision: str | None = None) -> FoundCheckpoint:
    leaf = path.name
    name = f"{run}-{leaf}" if run else leaf
    state = _trainer_state(path)
    step = parse_step(leaf)
    if step is None and isinstance(state.get("global_step"), int):
        step = state["global_step"]
    if run is None:
        bare = _BARE_STEP.match(leaf) is not None  # `step_1000/`: the folder is the run
        run = (family or path.parent.name) if bare else default_run(name)
    non_embedding, total = count_params(str(path), None)
    tokens, origin = _tokens(step, tokens_per_step, state)
    return FoundCheckpoint(name=name, model=str(path), run=run, step=step, params=non_embedding, total_params=total,
                           tokens=tokens, tokens_from=origin, revision=revision)


def _tokens(step: int | None, tokens_per_step: float | None, state: dict | None) -> tuple[float | None, str]:
    if tokens_per_step is not None:
        if step is None:
            return None, "no step in its name or trainer_state.json for --tokens-per-step"
        if step == 0:
            return None, "step 0: an untrained checkpoint; capcast needs tokens > 0, so drop it or give its tokens"
        return step * tokens_per_step, f"step {step:,} x --tokens-per-step {tokens_per_step:,.0f}"
    seen = (state or {}).get("num_input_tokens_seen")
    if isinstance(seen, (int, float)) and seen > 0:
        return float(seen), "trainer_state.json num_input_tokens_seen"
    if state:
        return None, "trainer_state.json has no num_input_tokens_seen; or pass --tokens-per-step"
    return None, "no trainer_state.json with num_input_tokens_seen; or pass --tokens-per-step"


def _trainer_state(path: Path) -> dict:
    file = path / "trainer_state.json"
    if not file.is_file():
        return {}
    try:
        state = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise CapcastError(f"{file}: not valid JSON ({_first_line(exc)}); fix or delete it") from None
    return state if isinstance(state, dict) else {}


def _refuse_weights_without_config(folder: Path) -> None:
    if any(next(folder.glob(pattern), None) for pattern in _WEIGHTS):
        raise CapcastError(f"{folder} has weights but no config.json; save the model's config there (model.config.save_pretrained)")


def _ordered(checkpoints: list[FoundCheckpoint]) -> list[FoundCheckpoint]:
    return sorted(checkpoints, key=lambda c: (c.run, c.step if c.step is not None else -1, c.name))


def _model_field(c: FoundCheckpoint, out: Path) -> str:
    if not c.local:
        return c.model
    try:
        relative = os.path.relpath(c.model, Path(out).resolve().parent)
    except ValueError:  # another drive (Windows)
        return c.model
    return relative if relative.startswith("..") else f"./{relative}"


def _quote(text: str) -> str:
    return json.dumps(text)  # a JSON string is a YAML string, whatever characters it holds


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


__all__ = ["FamilyDraft", "FoundCheckpoint", "PARAMS_CONVENTION", "count_params", "describe_folder", "describe_list",
           "family_init", "non_embedding_params", "parse_step", "render_yaml"]
