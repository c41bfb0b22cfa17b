"""`Reader`: what a plugin registers (``register_readers``) to turn external results into a scores table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional


@dataclass(frozen=True)
class Reader:
    """One source format capcast can import.

    Attributes:
        name: unique reader name (``capcast import SOURCE --reader NAME``).
        read: ``read(source: Path, spec: Path | None) -> pandas.DataFrame``: the scores table
            (columns of :data:`capcast.schema.SCORES_COLUMNS`; validated by capcast afterwards).
            ``spec`` is an optional family spec YAML naming the checkpoints, for formats that
            do not record parameters or training tokens themselves.
        description: one line shown by ``capcast plugins``.
        detect: optional ``detect(source) -> bool``: True when ``source`` looks like this
            format (lets ``capcast import`` pick the reader when ``--reader`` is omitted).
    """

    name: str
    read: Callable[[Path, Optional[Path]], Any]
    description: str = ""
    detect: Optional[Callable[[Path], bool]] = None
