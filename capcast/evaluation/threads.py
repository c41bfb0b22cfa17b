"""How many CPU threads torch uses for a model: ``--threads N``, the environment, or a measured default.

torch starts one intra-op thread per core. For the small models capcast evaluates on a CPU that
pays nothing when the machine is idle and costs a lot when it is not: on a 2-core machine with a
second CPU-bound process beside it, sampling a 1M-parameter model ran 1.69x slower with torch's 2
threads and 1.00x with one (see docs/speed.md and ``benchmarks/speed.py``). So the default is one
thread for models below :data:`SMALL_MODEL_PARAMS` and torch's own choice above it, where more
threads pay off.

The order of precedence: an explicit ``--threads N`` (:func:`request_threads`), then
``TORCH_NUM_THREADS`` (which torch itself ignores), then ``OMP_NUM_THREADS`` (which torch read at
start-up: it is left as it is), then the default by model size. GPU runs are not affected beyond
the CPU side of the work.
"""

from __future__ import annotations

import os

from capcast.errors import CapcastError

# Below this many parameters one thread is as fast as two on an idle machine (measured on 2
# cores by benchmarks/speed.py, "threads"), and much faster on a busy one.
SMALL_MODEL_PARAMS = 100_000_000

_requested: int | None = None
_torch_default: int | None = None  # torch's own count, before capcast first changed it


def request_threads(threads: int | None) -> None:
    """Record ``--threads N`` (None: no request) for the models loaded after this call."""
    global _requested
    if threads is not None and threads < 1:
        raise CapcastError("--threads must be at least 1")
    _requested = threads


def _env_threads() -> tuple[int | None, str | None]:
    for name in ("TORCH_NUM_THREADS", "OMP_NUM_THREADS"):
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                value = int(raw)
            except ValueError:
                raise CapcastError(f"{name}={raw!r} is not a whole number; set it to a thread count such as 1") from None
            if value < 1:
                raise CapcastError(f"{name}={raw!r} must be at least 1")
            return value, name
    return None, None


def choose_threads(params: int | None) -> tuple[int | None, str]:
    """``(threads, why)``: the thread count to set (None: leave torch's) and where it came from."""
    if _requested is not None:
        return _requested, "--threads"
    value, name = _env_threads()
    if name == "OMP_NUM_THREADS":
        return None, name  # torch already honours it
    if value is not None:
        return value, str(name)
    if params is not None and params < SMALL_MODEL_PARAMS:
        return 1, f"default (model below {SMALL_MODEL_PARAMS:,} parameters)"
    return None, "default (torch's own)"


def apply_threads(model=None) -> int:
    """Set torch's intra-op threads for ``model`` (a torch module, or None) and return the count in use."""
    import torch

    global _torch_default
    if _torch_default is None:
        _torch_default = torch.get_num_threads()
    params = sum(p.numel() for p in model.parameters()) if model is not None and hasattr(model, "parameters") else None
    threads, _ = choose_threads(params)
    threads = threads if threads is not None else _torch_default
    if threads is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()
