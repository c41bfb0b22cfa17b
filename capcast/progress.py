"""Progress of long library loops: silent by default, a rich bar when a caller asks for one.

The library never prints; the CLI wraps a command in :func:`reporting` and the loops that can run
long (forecasts over many tasks, backtests over families x tasks) pass their items through
:func:`track`, or, when the work comes back in pieces (worker processes), advance a
:func:`counting` bar by what each piece did. Elsewhere (tests, notebooks, other programs) ``track``
hands the items back untouched and ``counting``'s advance does nothing.
The bars start with the first tracked loop and stop with it, so other live displays of the same
command (the evaluation's own bar, before the forecasts) never overlap them.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

_console = None  # where bars go while :func:`reporting` is active
_progress = None  # the running rich Progress (inside the outermost tracked loop)


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Yield ``items``, advancing a bar "description  done/total" when :func:`reporting` is active."""
    if _console is None:
        yield from items
        return
    items = list(items) if total is None else items
    with counting(description, len(items) if total is None else total) as advance:
        for item in items:
            yield item
            advance(1)


@contextmanager
def counting(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A bar "description  done/total" that the block advances itself: ``advance(n)`` after each
    piece of work that came back (e.g. a worker process's share of a backtest). Silent, and
    ``advance`` a no-op, unless :func:`reporting` is active."""
    global _progress
    if _console is None:
        yield lambda n=1: None
        return
    outermost = _progress is None
    if outermost:
        _progress = counting_bar(_console)
        _progress.start()
    from rich.markup import escape

    # a family or task name is data: never rich markup
    task = _progress.add_task(escape(description), total=total)
    progress = _progress
    try:
        yield lambda n=1: progress.advance(task, n)
    finally:
        progress.remove_task(task)
        if outermost:
            progress.stop()
            _progress = None


def silence() -> None:
    """No bars in this process (a worker process: its parent shows the progress)."""
    global _console, _progress
    _console, _progress = None, None


def counting_bar(console, disable: bool = False):
    """The bar capcast shows for counted work ("description  ━━━  done/total  elapsed"), transient:
    the result that follows replaces it, and an error leaves only its own line."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, disable=disable, transient=True)


@contextmanager
def reporting(console) -> Iterator[None]:
    """Show :func:`track`'s bars on ``console`` (a rich Console, e.g. the CLI's stderr) while the
    block runs. Transient: the bars vanish when done, so only the result (or one error line) stays."""
    global _console
    outer = _console
    _console = console
    try:
        yield
    finally:
        _console = outer
