"""One-line checks of the options that pick the machine and the checkpoint (device, backend,
dtype, weights, seed), run before any work so that a mistake stops in one line."""

from __future__ import annotations

from pathlib import Path

from capcast.errors import CapcastError

BACKENDS = ("hf", "vllm", "capcast-hf")
# capcast-hf (capcast.evaluation.backend): lm-eval's hf backend that encodes each shared context once.
SHARED_CONTEXT_BACKEND = "capcast-hf"
# why a continuation must fit, and the mend: said the same on every backend
CONTINUATION_HINT = "lm-eval scores a continuation whole; use a model with a longer context"


class ContinuationTooLong(CapcastError):
    """A request's continuation is longer than the model's context (capcast-hf raises it where
    lm-eval's HFLM asserts); the harness names the task it came from."""

    def __init__(self, tokens: int, context: int):
        super().__init__(f"a continuation of {tokens} tokens does not fit the model's context of {context} tokens ({CONTINUATION_HINT})")


def check_device(device: str | None) -> None:
    """A one-line error for a device that is none of cpu, cuda, cuda:N or mps (None: auto), or that
    this machine does not have (lm-eval would fall back to the CPU and the run would be mislabelled)."""
    import re

    if device is None or device == "cpu":
        return
    if not (re.fullmatch(r"cuda(:\d+)?", device) or device == "mps"):
        raise CapcastError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N")
    import torch

    if device == "mps":
        if not torch.backends.mps.is_available():
            raise CapcastError("--device mps: this machine has no Apple GPU; use --device cpu")
        return
    if not torch.cuda.is_available():
        raise CapcastError(f"--device {device}: no CUDA GPU is visible on this machine; use --device cpu (or leave --device out)")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise CapcastError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s), cuda:0 to "
                           f"cuda:{torch.cuda.device_count() - 1}; pick one of those")


def check_backend(backend: str) -> None:
    """A one-line error for an unknown backend, or for vllm where vLLM is not installed."""
    import importlib.util

    if backend not in BACKENDS:
        raise CapcastError(f"--backend {backend!r} is unknown; use one of {', '.join(BACKENDS)}")
    try:
        absent = backend == "vllm" and importlib.util.find_spec("vllm") is None
    except ValueError:  # sys.modules holds None for it: blocked, as good as absent
        absent = True
    if absent:
        raise CapcastError("--backend vllm needs vLLM, which is not installed here; `pip install 'capcast[vllm]'` on a GPU machine, "
                           "or use --backend hf")


def check_dtype(dtype: str | None) -> None:
    """A one-line error for a dtype torch does not know as a floating type (None and auto are fine)."""
    if dtype is None or dtype == "auto":
        return
    import torch

    value = getattr(torch, dtype, None) if dtype.isidentifier() else None
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise CapcastError(f"--dtype {dtype!r} is not a floating-point torch dtype; use auto, float32, float16 or bfloat16")


def check_weights(model: str) -> None:
    """A local checkpoint must hold safetensors weights: pickle weights (``pytorch_model.bin``,
    ``.pt``) can run code when loaded, so capcast refuses them in one line, before any work."""
    folder = Path(model).expanduser()
    if not folder.is_dir():
        return  # a hub id: the hub's files are checked when downloaded
    files = [p for p in folder.rglob("*") if p.is_file()]
    if any(p.suffix == ".safetensors" for p in files):
        return
    pickled = sorted(p.name for p in files if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
    if pickled:
        raise CapcastError(f"checkpoint {model} holds only pickle weights ({', '.join(pickled[:3])}), which can run code when loaded; "
                           "convert it to safetensors (transformers: model.save_pretrained(folder, safe_serialization=True))")



def check_seed(seed: int) -> None:
    if not 0 <= seed < 2**32:
        raise CapcastError(f"--seed {seed} is out of range; use a whole number from 0 to {2**32 - 1}")
