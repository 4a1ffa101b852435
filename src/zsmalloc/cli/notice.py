"""Telling the user what a silent pause is: the first run compiles the hot loops.

numba compiles a command's loops the first time they run (tens of seconds for the
zram replay) and caches them on disk (:mod:`zsmalloc._jit`); later runs load them in
a moment.  :func:`compile_notice` wraps the one call that compiles (a warm-up on
empty input, before any real work) and says so on stderr if that call has not
returned after :data:`DELAY` seconds: with the cache warm nothing is printed, and
the message never stands beside real work, which starts only after the warm-up.
It is an event (a timer that is cancelled), not a measurement: nothing depends on
how long anything took.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import click

DELAY = 1.0
"""Seconds of silence before the notice; a cache hit returns well within it."""


@contextmanager
def compile_notice(what: str, *, delay: float = DELAY) -> Iterator[None]:
    """Print ``compiling <what>...`` on stderr if the block is still running after ``delay``."""

    def say() -> None:
        click.echo(
            f"zsmalloc: compiling {what} (first run after an install or an update: "
            "up to a minute; cached for later runs) ...",
            err=True,
        )

    timer = threading.Timer(delay, say)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
