"""Loading a checkpoint through one of lm-eval's model backends, and what capcast records about it:
the device and dtype the weights are on, the batch size used, and each continuation's token count."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from capcast.errors import CapcastError
from capcast.evaluation.harness.checks import BACKENDS, SHARED_CONTEXT_BACKEND
from capcast.evaluation.harness.environment import _quiet_libraries
from capcast.evaluation.harness.options import check_model_args


def resolve_device(device: str | None) -> str:
    """``None`` means auto: ``cuda`` when a GPU is visible, else ``cpu``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class LoadedModel:
    """An lm-eval model instance plus what capcast records about it."""

    lm: Any
    model: str
    revision: str | None
    backend: str
    dtype: str
    device: str
    batch_size: int | str
    # (context, continuation) -> number of continuation tokens, as lm-eval tokenised them.
    continuation_tokens: dict = field(default_factory=dict)
    # with batch_size "auto": the sizes lm-eval's backend detected during the current run
    detected_batch_sizes: list = field(default_factory=list)
    model_args: dict = field(default_factory=dict)  # --model-args given to the backend's constructor

    def used_batch_size(self) -> str:
        """The batch size of the current run, for the manifest: the one given, or for ``auto``
        the size(s) lm-eval detected (largest first); ``auto`` when the backend exposes none (vllm)."""
        if not str(self.batch_size).startswith("auto"):
            return str(self.batch_size)
        sizes = set(self.detected_batch_sizes) | {int(v) for v in (getattr(self.lm, "batch_sizes", None) or {}).values()}
        return ",".join(str(v) for v in sorted(sizes, reverse=True)) if sizes else str(self.batch_size)

    def count_tokens(self, context: str, continuation: str) -> int | None:
        """Continuation tokens of a scored pair: recorded during the run, else re-tokenised."""
        tokens = self.continuation_tokens.get((context, continuation))
        return tokens if tokens is not None else _continuation_tokens_fallback(self.lm, context, continuation)


def load_model(
    model: str,
    revision: str | None = None,
    *,
    backend: str = "hf",
    dtype: str | None = None,
    device: str | None = None,
    batch_size: int | str = 16,
    quiet: bool = True,
    model_args: dict | None = None,
) -> LoadedModel:
    """Load ``model`` (local path or hub id) through lm-eval's ``backend``.

    ``dtype=None`` picks float32 on CPU (exact, and as fast there) and the checkpoint's own
    dtype (``auto``) elsewhere. ``model_args`` (``--model-args``, see :func:`check_model_args`)
    go to the backend's constructor beside ``pretrained``, as lm-eval's ``--model_args`` do.
    """
    given_args = check_model_args(model_args, dtype)
    model_args = dict(given_args)
    if "dtype" in model_args:
        dtype = str(model_args.pop("dtype"))
    if backend not in BACKENDS:
        raise CapcastError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    device = resolve_device(device)
    dtype = dtype or ("float32" if device == "cpu" else "auto")
    if quiet:
        _quiet_libraries()
    from lm_eval.api.registry import get_model

    if backend == SHARED_CONTEXT_BACKEND:
        import capcast.evaluation.backend  # noqa: F401 - registers the backend with lm-eval
    args: dict[str, Any] = {"pretrained": model, "dtype": dtype, **model_args}
    if revision:
        args["revision"] = revision
    try:
        lm = get_model(backend).create_from_arg_obj(args, {"batch_size": batch_size, "device": device})
    except Exception as exc:  # truncated or pickled weights, a broken config, no memory: all say why in one line
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise CapcastError(f"cannot load model {model!r} (revision {revision or 'default'}) with backend {backend}: "
                           f"{type(exc).__name__}: {first}; check the checkpoint's files (safetensors weights, config.json)") from None
    used_device, used_dtype = _used_device_and_dtype(lm, device, dtype)
    loaded = LoadedModel(lm=lm, model=model, revision=revision, backend=backend, dtype=used_dtype, device=used_device,
                         batch_size=batch_size, model_args=given_args)
    from capcast.evaluation.threads import apply_threads

    apply_threads(getattr(lm, "_model", None))  # --threads, TORCH_NUM_THREADS/OMP_NUM_THREADS, or one for small models
    _instrument(loaded, quiet)
    return loaded


def _used_device_and_dtype(lm: Any, device: str, dtype: str) -> tuple[str, str]:
    """The device and dtype the loaded weights are actually on (recorded in the manifest; ``auto``
    becomes the checkpoint's own dtype), or the requested ones where the backend hides its model (vllm)."""
    model = getattr(lm, "_model", None)
    try:
        weight = next(model.parameters())
        return str(weight.device), str(weight.dtype).removeprefix("torch.")
    except (AttributeError, StopIteration, TypeError):
        return str(getattr(lm, "device", device)), dtype


def _instrument(loaded: LoadedModel, quiet: bool) -> None:
    """Record continuation token counts where lm-eval computes them, and mute its progress bars.

    Every TemplateLM backend (hf, vllm) tokenises each (context, continuation) pair once and hands
    ``(pair, context_ids, continuation_ids)`` to ``_loglikelihood_tokens``; reading the lengths
    there costs nothing and matches lm-eval's tokenisation exactly (trailing-space moves, empty
    contexts, special tokens).
    """
    lm = loaded.lm
    sink = loaded.continuation_tokens
    if hasattr(lm, "_loglikelihood_tokens"):
        original = lm._loglikelihood_tokens

        def recording(requests, *args, **kwargs):
            for pair, _context_ids, continuation_ids in requests:
                sink[tuple(pair)] = len(continuation_ids)
            if quiet:
                kwargs["disable_tqdm"] = True
            return original(requests, *args, **kwargs)

        lm._loglikelihood_tokens = recording
    if str(loaded.batch_size).startswith("auto") and hasattr(lm, "_detect_batch_size"):
        # HFLM finds the largest batch that fits (per loglikelihood call, and once per
        # generate_until call) but keeps only the former (lm.batch_sizes): record both here.
        detect = lm._detect_batch_size

        def detecting(*args, **kwargs):
            size = detect(*args, **kwargs)
            loaded.detected_batch_sizes.append(int(size))
            return size

        lm._detect_batch_size = detecting
    if quiet:
        for method in ("loglikelihood", "generate_until", "loglikelihood_rolling"):
            if hasattr(lm, method):
                setattr(lm, method, functools.partial(getattr(lm, method), disable_tqdm=True))


def _continuation_tokens_fallback(lm: Any, context: str, continuation: str) -> int | None:
    """Token count of a continuation the way TemplateLM.loglikelihood encodes it."""
    try:
        if context == "":
            ids = lm.tok_encode(continuation, add_special_tokens=False)
            return len(ids) if lm.prefix_token_id != ids[0] else len(ids) - 1
        return len(lm._encode_pair(context, continuation)[1])
    except Exception:
        return None
