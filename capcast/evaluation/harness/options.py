"""lm-eval's own run options as capcast passes them on: ``--model-args``, ``--gen-kwargs`` (parsed
as lm-eval's CLI parses them) and ``--num-fewshot`` (applied to Task objects as simple_evaluate
applies it)."""

from __future__ import annotations

from typing import Any

from capcast.errors import CapcastError
from capcast.evaluation.harness.checks import check_dtype


# Set by capcast itself: the family spec names the checkpoint, --batch-size and --device the rest.
_OWN_MODEL_ARGS = {"pretrained": "the family spec's model", "revision": "the family spec's revision",
                   "batch_size": "--batch-size", "device": "--device"}


def check_model_args(model_args: dict | None, dtype: str | None = None) -> dict:
    """``--model-args`` as given, or one line for a key capcast sets from elsewhere (or dtype twice)."""
    model_args = dict(model_args or {})
    for key, where in _OWN_MODEL_ARGS.items():
        if key in model_args:
            raise CapcastError(f"--model-args {key}=... is not allowed: capcast takes it from {where}; drop it from --model-args")
    if "dtype" in model_args:
        if dtype is not None:
            raise CapcastError("dtype is given twice (--dtype and --model-args dtype=...); keep one")
        check_dtype(str(model_args["dtype"]))
    return model_args



def apply_lm_eval_options(obj: Any, num_fewshot: int | None, gen_kwargs: dict | None) -> Any:
    """``--num-fewshot`` and ``--gen-kwargs`` on an lm-eval Task object, by simple_evaluate's own
    rules: gen_kwargs update a generative task's ``generation_kwargs``; num_fewshot replaces the
    task's setting, except where its config sets ``num_fewshot: 0`` (lm-eval never overrides that)."""
    if gen_kwargs and obj.get_config("output_type") == "generate_until":
        obj.set_config(key="generation_kwargs", value=dict(gen_kwargs), update=True)
    if num_fewshot is not None and obj.get_config("num_fewshot") != 0:
        obj.set_config(key="num_fewshot", value=int(num_fewshot))
    return obj


def parse_args_string(text: str | None, option: str) -> dict:
    """``k=v,k2=v2`` parsed as lm-eval's CLI parses ``--model_args`` and ``--gen_kwargs``
    (``true``/``false``/numbers become bools/numbers); one line for an item without ``=``."""
    from lm_eval.utils import simple_parse_args_string

    if text is None or not text.strip():
        return {}
    bad = [item for item in text.split(",") if item.strip() and "=" not in item]
    if bad:
        raise CapcastError(f"{option} {text!r}: {bad[0]!r} is not key=value; write it as key=value,key2=value2")
    return simple_parse_args_string(text)
