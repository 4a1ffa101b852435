"""estimate's stderr: a spinner and a pages/s bar on a terminal, plain lines otherwise.

rich is imported only when stderr is a terminal (:func:`stderr_console`): its console,
progress and text modules cost some 25-50 ms of a start that, for a one-page estimate
or ``--json`` into a pipe, is otherwise a quarter of a second.
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol


class ErrConsole(Protocol):
    """What estimate asks of its stderr console (rich's Console, or :class:`PlainStderr`)."""

    @property
    def is_terminal(self) -> bool: ...

    def print(self, *objects: Any, **kwargs: Any) -> None: ...


class PlainStderr:
    """stderr when it is not a terminal: lines as they are, no markup, no rich."""

    is_terminal = False

    def print(self, *objects: Any, **_: Any) -> None:
        print(*objects, file=sys.stderr)


def stderr_console() -> ErrConsole:
    """rich's stderr Console on a terminal, :class:`PlainStderr` otherwise."""
    if not sys.stderr.isatty():
        return PlainStderr()
    from rich.console import Console

    return Console(stderr=True)


def status(console: ErrConsole, what: str) -> AbstractContextManager[object]:
    """A spinner with ``what...`` on a terminal; nothing otherwise."""
    if not console.is_terminal:
        return nullcontext()
    return console.status(f"{what}...")  # type: ignore[attr-defined]


class NullProgress:
    """The bar's interface, doing nothing (stderr is not a terminal)."""

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        return 0

    def advance(self, task: int, advance: float = 1) -> None:
        return None

    def update(self, task: int, **_: Any) -> None:
        return None

    def reset(self, task: int, **_: Any) -> None:
        return None


def progress_bar(console: ErrConsole, page_size: int) -> Any:
    """The pages/s progress bar (stderr; nothing when it is not a terminal): rich's
    Progress or a :class:`NullProgress` (typed Any: rich wants its own TaskID type)."""
    if not console.is_terminal:
        return NullProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class PagesPerSecond(ProgressColumn):
        """Throughput in pages/s and MiB/s."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if not speed:
                return Text("-- pages/s", style="progress.data.speed")
            mib = speed * page_size / 2**20
            return Text(f"{speed:,.0f} pages/s ({mib:,.0f} MiB/s)", style="progress.data.speed")

    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        PagesPerSecond(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    return Progress(*columns, console=console, transient=True)  # type: ignore[arg-type]
