"""Readers of external results: each turns files people already have into a capcast scores table.

Built-ins (registered through ``register_readers`` like a third-party reader): ``lm-eval-results``
(a folder of lm-eval ``results*.json``), ``pythia`` (the Pythia suite's evals) and ``openlm``
(Gadre et al.'s OpenLM runs). :func:`import_scores` picks one and validates what it reads. See
``docs/readers.md``.
"""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from capcast.errors import CapcastError
from capcast.tables.readers.base import Reader

if TYPE_CHECKING:
    import pandas as pd

    from capcast.plugins.registry import Registry

__all__ = ["Reader", "import_scores", "choose_reader"]


def _detects(reader: Reader, source: Path) -> bool:
    try:
        return bool(reader.detect(source))
    except Exception:  # a reader's detect that fails does not claim the source
        return False


def _builtin_readers() -> dict[str, Reader]:
    from capcast.tables.readers.builtin import READERS

    return {r.name: r for r in READERS}


def choose_reader(source: Path, reader: Optional[str], registry: Optional["Registry"] = None) -> Reader:
    """The reader called ``reader``, or the one reader whose ``detect`` claims ``source``, among
    ``registry``'s readers (default: the built-in readers only)."""
    readers = registry.readers if registry is not None else _builtin_readers()
    known = ", ".join(sorted(readers)) or "none"
    if reader is not None:
        if registry is not None:
            return registry.reader(reader)  # also refuses a name two plugins registered
        if reader not in readers:
            raise CapcastError(f"unknown reader {reader!r}; known readers: {known}")
        return readers[reader]
    detected = [r for _, r in sorted(readers.items()) if r.detect is not None and _detects(r, source)]
    if len(detected) == 1:
        return detected[0]
    if not detected:
        raise CapcastError(f"{source}: no reader recognises it; pass --reader NAME (readers: {known})")
    names = ", ".join(r.name for r in detected)
    raise CapcastError(f"{source}: several readers recognise it ({names}); pass --reader NAME (readers: {known})")


def _one_line(exc: BaseException) -> str:
    """An unexpected exception as one line: type, message and where it was raised."""
    message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {message}{where}"


def import_scores(source: str | Path, reader: Optional[str] = None, spec: str | Path | None = None,
                  registry: Optional["Registry"] = None) -> "pd.DataFrame":
    """A validated scores table read from ``source`` by the reader called ``reader`` (default: the
    one whose ``detect`` recognises ``source``); ``spec`` is a family spec YAML for formats that
    record neither parameters nor training tokens (lm-eval results). ``registry`` is a loaded
    :class:`capcast.plugins.registry.Registry` (plugins' readers included, as ``capcast import``
    and :func:`capcast.api.import_scores` pass); None means the built-in readers only."""
    import pandas as pd

    from capcast.tables.scores import validate_scores

    source = Path(source)
    if not source.exists():
        raise CapcastError(f"{source}: no such file or folder; pass the results to import")
    if spec is not None and not Path(spec).is_file():
        raise CapcastError(f"{spec}: no such family spec file; pass the path to a family YAML")
    chosen = choose_reader(source, reader, registry)
    try:
        frame = chosen.read(source, Path(spec) if spec is not None else None)
    except CapcastError:
        raise
    except Exception as exc:  # a reader's bug or an unexpected file: one line, with where it happened
        raise CapcastError(f"reader {chosen.name} failed on {source}: {_one_line(exc)}") from None
    if not isinstance(frame, pd.DataFrame):
        raise CapcastError(f"reader {chosen.name} returned {type(frame).__name__}, not a pandas DataFrame; fix the reader")
    return validate_scores(frame, f"{source} (reader {chosen.name})")
