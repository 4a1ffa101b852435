"""A zram device of our own used as swap: mkswap, swapon at the top priority, always undone.

``zsmalloc estimate --pid`` says what swapping a process out puts in zram;
:mod:`zsmalloc.live.verify_swap` checks it by doing exactly that.
:class:`LiveZramSwap` hot-adds a zram device (:class:`~zsmalloc.live.zram.LiveZram`),
writes a swap header on it with ``mkswap`` (the one page it stores before any
swap-out, :attr:`LiveZramSwap.header`), and turns it on as swap with priority
32767, so that reclaim picks it before any other swap area.  zswap, if enabled,
would catch the pages first: it is switched off meanwhile.

On exit -- normal, exception, Ctrl-C, or SIGTERM/SIGHUP, which
:func:`terminations_interrupt` turns into ``KeyboardInterrupt`` -- it swaps the
device off, resets and hot-removes it and puts zswap back.  What the machine
refuses is recorded in ``undo_errors``, never raised.  Swap is machine-wide:
the caller holds ``machine_lock("swap")``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from zsmalloc.errors import KernelUnavailableError
from zsmalloc.live.cgroup import memory_cgroup_root
from zsmalloc.live.zram import LiveZram, zram_unavailable_reason
from zsmalloc.profile import DEFAULT_PROFILE

SWAP_FLAG_PREFER = 0x8000  # include/linux/swap.h
SWAP_FLAG_PRIO_MASK = 0x7FFF
TOP_PRIORITY = 32767
ZSWAP_ENABLED = Path("/sys/module/zswap/parameters/enabled")
PAGE = DEFAULT_PROFILE.page_size


def swap_unavailable_reason() -> str | None:
    """Why no process can be swapped out to a zram device of our own here, or None."""
    reason = zram_unavailable_reason()
    if reason:
        return reason
    if memory_cgroup_root() is None:
        return "no memory cgroup controller (neither cgroup v2 nor the v1 memory hierarchy)"
    if not Path("/proc/kpageflags").exists():
        return "no /proc/kpageflags (CONFIG_PROC_PAGE_MONITOR): folios cannot be told apart"
    return None


def swapon(path: str | os.PathLike[str], priority: int | None = None) -> None:
    """swapon(2) on a path, at ``priority`` (None: the kernel's default, below all others)."""
    flags = 0 if priority is None else SWAP_FLAG_PREFER | (priority & SWAP_FLAG_PRIO_MASK)
    _path_syscall("swapon", path, flags)


def swapoff(path: str | os.PathLike[str]) -> None:
    """swapoff(2): every page still in the area is read back into memory first."""
    _path_syscall("swapoff", path)


def _path_syscall(name: str, path: str | os.PathLike[str], *args: int) -> None:
    fn = getattr(ctypes.CDLL(None, use_errno=True), name)
    if fn(os.fsencode(path), *args) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{name}({path}): {os.strerror(err)}")


@contextlib.contextmanager
def terminations_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP raise KeyboardInterrupt meanwhile, so cleanups run (main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


class LiveZramSwap:
    """A hot-added zram device with ``algorithm``, used as swap at the top priority."""

    def __init__(self, algorithm: str, disksize: int) -> None:
        self.zram = LiveZram(algorithm=algorithm, disksize=disksize)
        self.header = b""  # page 0 as mkswap wrote it: the one page stored before swap-out
        self.undo_errors: list[str] = []
        self._swap_on = False
        self._zswap_was: str | None = None

    @property
    def name(self) -> str:
        return self.zram.name

    def __enter__(self) -> LiveZramSwap:
        self.zram.__enter__()
        try:
            self.zram.close()  # swapon opens the device exclusively
            self._mkswap()
            if ZSWAP_ENABLED.exists() and ZSWAP_ENABLED.read_text().strip() == "Y":
                ZSWAP_ENABLED.write_text("N")  # or zswap would take the pages before zram
                self._zswap_was = "Y"
            swapon(self.zram.path, TOP_PRIORITY)
            self._swap_on = True
        except (OSError, subprocess.CalledProcessError) as exc:
            self.restore()
            detail = (
                exc.stderr.decode().strip()
                if isinstance(exc, subprocess.CalledProcessError)
                else ""
            )
            raise KernelUnavailableError(
                f"cannot use {self.zram.path} as swap: {exc} {detail}"
            ) from exc
        except BaseException:
            self.restore()
            raise
        return self

    def _mkswap(self) -> None:
        """Write the swap header with mkswap (or, without it, as mkswap would) and keep it."""
        if shutil.which("mkswap"):
            subprocess.run(["mkswap", self.zram.path], check=True, capture_output=True)
        else:
            from zsmalloc.live.zswap import swap_header

            with open(self.zram.path, "r+b", buffering=0) as f:
                f.write(swap_header(self.zram.disksize // PAGE))
        with open(self.zram.path, "rb", buffering=0) as f:
            self.header = f.read(PAGE)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    def restore(self) -> None:
        """swapoff, remove the device, put zswap back; what fails goes to ``undo_errors``."""
        if self._swap_on:
            try:
                swapoff(self.zram.path)
            except OSError as exc:
                self.undo_errors.append(f"swapoff {self.zram.path}: {exc}")
            self._swap_on = False
        self.zram.remove()
        if self._zswap_was is not None:
            try:
                ZSWAP_ENABLED.write_text(self._zswap_was)
            except OSError as exc:
                self.undo_errors.append(f"zswap enabled <- {self._zswap_was}: {exc}")
            self._zswap_was = None
