"""Our own zram device on the running kernel: hot_add -> use -> reset -> hot_remove.

Live checks compare the model with the real thing.  They must never touch a
zram device they did not create (zram0 belongs to the machine, and may hold
swap), and must always remove what they created, whatever happens.  Everything
here goes through :class:`LiveZram`, a context manager that does exactly that.

Without root or without ``/sys/class/zram-control`` it raises
:class:`~zsmalloc.errors.KernelUnavailableError` with the precise reason, which
tests turn into a skip and the CLI into exit status 2.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
from pathlib import Path
from types import TracebackType

from zsmalloc.errors import KernelUnavailableError, SysfsError

ZRAM_CONTROL = Path("/sys/class/zram-control")
PAGE = 4096
BLKDISCARD = 0x1277  # _IO(0x12, 119)


def zram_unavailable_reason() -> str | None:
    """Why no zram device of our own can be made here, or None if one can."""
    if os.geteuid() != 0:
        return "not root: hot-adding a zram device needs root"
    if not (ZRAM_CONTROL / "hot_add").exists():
        return "no /sys/class/zram-control: this kernel has no zram (or it is not loaded)"
    return None


def read_mm_stat_text(dev_id: int) -> str:
    return (Path(f"/sys/block/zram{dev_id}") / "mm_stat").read_text()


class LiveZram:
    """A zram device of our own, hot-added on enter and removed on exit.

    >>> with LiveZram(algorithm="lz4", disksize=64 << 20) as z:   # doctest: +SKIP
    ...     z.write_page(0, page)
    ...     z.mm_stat()
    """

    def __init__(
        self,
        algorithm: str | None = None,
        disksize: int = 64 << 20,
        algorithm_params: str | None = None,
        mem_limit: int | str | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.disksize = disksize
        self.algorithm_params = algorithm_params
        self.mem_limit = mem_limit
        self.dev_id: int | None = None
        self._fd: int | None = None
        self._buf: mmap.mmap | None = None

    # -- sysfs ---------------------------------------------------------------
    @property
    def sysfs(self) -> Path:
        if self.dev_id is None:
            raise KernelUnavailableError("zram device not created yet")
        return Path(f"/sys/block/zram{self.dev_id}")

    @property
    def path(self) -> str:
        return f"/dev/zram{self.dev_id}"

    def attr(self, name: str) -> str:
        return (self.sysfs / name).read_text()

    def set_attr(self, name: str, value: str | int) -> None:
        """Write a sysfs attribute; a refusal becomes SysfsError with the kernel's errno."""
        try:
            with open(self.sysfs / name, "w") as f:
                f.write(str(value))
        except OSError as exc:
            raise SysfsError(
                f"zram{self.dev_id}/{name} <- {value!r}: {os.strerror(exc.errno or 0)}",
                errno=exc.errno,
            ) from None

    def mm_stat(self) -> list[int]:
        return [int(x) for x in self.attr("mm_stat").split()]

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self) -> LiveZram:
        reason = zram_unavailable_reason()
        if reason:
            raise KernelUnavailableError(reason)
        self.dev_id = int((ZRAM_CONTROL / "hot_add").read_text())
        try:
            self.configure()
        except BaseException:
            self.remove()
            raise
        return self

    def configure(self) -> None:
        """(Re)initialise: reset, algorithm, params, limit, disksize, then open O_DIRECT."""
        self.close()
        self.set_attr("reset", 1)
        if self.algorithm:
            self.set_attr("comp_algorithm", self.algorithm)
        if self.algorithm_params:
            self.set_attr("algorithm_params", self.algorithm_params)
        if self.mem_limit is not None:
            self.set_attr("mem_limit", self.mem_limit)
        self.set_attr("disksize", self.disksize)
        self._fd = os.open(self.path, os.O_RDWR | os.O_DIRECT)
        self._buf = mmap.mmap(-1, PAGE)  # page-aligned, as O_DIRECT needs

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._buf is not None:
            self._buf.close()
            self._buf = None

    def remove(self) -> None:
        """Close, reset and hot-remove our device; never raises."""
        self.close()
        if self.dev_id is None:
            return
        with contextlib.suppress(OSError):
            (self.sysfs / "reset").write_text("1")
        with contextlib.suppress(OSError):
            (ZRAM_CONTROL / "hot_remove").write_text(str(self.dev_id))
        self.dev_id = None

    # -- I/O -------------------------------------------------------------------
    def write_page(self, slot: int, data: bytes | memoryview) -> None:
        """One O_DIRECT 4 KiB write to ``slot`` (a failed store raises OSError)."""
        assert self._fd is not None and self._buf is not None
        if len(data) != PAGE:
            raise ValueError(f"expected a {PAGE}-byte page, found {len(data)} bytes")
        self._buf.seek(0)
        self._buf.write(data)
        os.pwritev(self._fd, [self._buf], slot * PAGE)

    def read_page(self, slot: int) -> bytes:
        assert self._fd is not None and self._buf is not None
        os.preadv(self._fd, [self._buf], slot * PAGE)
        return bytes(self._buf)

    def discard(self, slot: int, nr_pages: int = 1) -> None:
        """BLKDISCARD of whole slots: one zs_free per stored page."""
        assert self._fd is not None
        fcntl.ioctl(self._fd, BLKDISCARD, struct.pack("QQ", slot * PAGE, nr_pages * PAGE))

    def compact(self) -> None:
        self.set_attr("compact", 1)
