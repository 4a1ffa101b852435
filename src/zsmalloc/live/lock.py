"""One borrower of the machine's swap and zswap state at a time.

zswap's parameters, its debugfs counters and the swap devices are global: two checks
running at once (two ``verify --zswap``, a swap-out test beside it) would read each
other's pages in the counters.  Whoever borrows them takes this lock first: an
``flock`` on a file in /run/lock (or the temp directory), released by the kernel
when the process ends, even on SIGKILL.  zram devices need no lock: each borrower
hot-adds its own.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from zsmalloc.errors import KernelUnavailableError

WAIT_SECONDS = 600.0  # a whole verify run of another process may take this long


def lock_path(name: str) -> Path:
    base = Path("/run/lock")
    if not (base.is_dir() and os.access(base, os.W_OK)):
        base = Path(tempfile.gettempdir())
    return base / f"zsmalloc-{name}.lock"


@contextmanager
def machine_lock(name: str, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the machine-wide lock ``name``; KernelUnavailableError after ``wait`` s."""
    path = lock_path(name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise KernelUnavailableError(
                        f"another zsmalloc process has held {path} for {wait:.0f} s "
                        f"(it is using the machine's {name})"
                    ) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # closing drops the flock
