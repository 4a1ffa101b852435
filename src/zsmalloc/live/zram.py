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
import errno
import fcntl
import mmap
import os
import struct
from pathlib import Path
from types import TracebackType

import numpy as np

from zsmalloc.errors import InvalidSizeError, KernelUnavailableError, SysfsError
from zsmalloc.zram.stats import MmStat

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")  # the running kernel's: one zram slot

ZRAM_CONTROL = Path("/sys/class/zram-control")
BLKDISCARD = 0x1277  # _IO(0x12, 119), include/uapi/linux/fs.h
WRITE_CHUNK = 256  # pages per O_DIRECT write (1 MiB): zram handles a bio page by page, in order


def zram_unavailable_reason() -> str | None:
    """Why no zram device of our own can be made here, or None if one can."""
    if os.geteuid() != 0:
        return "not root: hot-adding a zram device needs root"
    if not (ZRAM_CONTROL / "hot_add").exists():
        return "no /sys/class/zram-control: this kernel has no zram (or it is not loaded)"
    if os.sysconf("SC_PAGE_SIZE") != PAGE_SIZE:
        return f"this kernel's page size is {os.sysconf('SC_PAGE_SIZE')}, the model's {PAGE_SIZE}"
    return None


class LiveZram:
    """A zram device of our own, hot-added on enter and removed on exit.

    >>> with LiveZram(algorithm="lz4", disksize=64 << 20) as z:   # doctest: +SKIP
    ...     z.write_page(0, page)
    ...     z.mm_stat().compr_data_size
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

    # -- sysfs -----------------------------------------------------------------------
    @property
    def sysfs(self) -> Path:
        if self.dev_id is None:
            raise KernelUnavailableError("the zram device is not created: use LiveZram in `with`")
        return Path(f"/sys/block/zram{self.dev_id}")

    @property
    def name(self) -> str:
        """``zramN``: the device's name, the same as the model's."""
        return self.sysfs.name

    @property
    def path(self) -> str:
        return f"/dev/{self.name}"

    def attr(self, name: str) -> str:
        return (self.sysfs / name).read_text()

    def set_attr(self, name: str, value: str | int) -> None:
        """Write a sysfs attribute; a refusal becomes SysfsError with the kernel's errno."""
        try:
            with open(self.sysfs / name, "w") as f:
                f.write(str(value))
        except OSError as exc:
            raise SysfsError(
                f"{self.name}/{name} <- {value!r}: {os.strerror(exc.errno or 0)}",
                errno=exc.errno,
            ) from None

    def mm_stat(self) -> MmStat:
        return MmStat.parse(self.attr("mm_stat"))

    def io_stat(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.attr("io_stat").split())

    # -- lifecycle -------------------------------------------------------------------
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
        self._buf = mmap.mmap(-1, WRITE_CHUNK * PAGE_SIZE)  # page-aligned, as O_DIRECT needs

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def close(self) -> None:
        """Close our file descriptor (tools such as dd can then open the device alone)."""
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

    # -- I/O -------------------------------------------------------------------------
    def _open(self) -> tuple[int, mmap.mmap]:
        if self._fd is None or self._buf is None:
            raise KernelUnavailableError(
                f"{self.name} is not open: use LiveZram in `with` (and not after close())"
            )
        return self._fd, self._buf

    def write_page(self, slot: int, data: bytes | memoryview) -> None:
        """One O_DIRECT page write to ``slot``; a store zram refuses raises OSError (EIO)."""
        fd, buf = self._open()
        if len(data) != PAGE_SIZE:
            raise InvalidSizeError(f"expected a {PAGE_SIZE}-byte page, found {len(data)} bytes")
        buf[:PAGE_SIZE] = data
        os.pwritev(fd, [memoryview(buf)[:PAGE_SIZE]], slot * PAGE_SIZE)

    def write_pages(self, pages: np.ndarray, first_slot: int = 0) -> None:
        """Sequential O_DIRECT writes of ``pages`` (n x PAGE_SIZE bytes), 1 MiB at a time."""
        fd, buf = self._open()
        if pages.ndim != 2 or pages.shape[1] != PAGE_SIZE:
            raise InvalidSizeError(f"expected (n, {PAGE_SIZE}) pages, found shape {pages.shape}")
        view = np.frombuffer(buf, dtype=np.uint8).reshape(WRITE_CHUNK, PAGE_SIZE)
        try:
            for lo in range(0, len(pages), WRITE_CHUNK):
                n = min(WRITE_CHUNK, len(pages) - lo)
                view[:n] = pages[lo : lo + n]
                done = os.pwritev(
                    fd, [memoryview(buf)[: n * PAGE_SIZE]], (first_slot + lo) * PAGE_SIZE
                )
                if done != n * PAGE_SIZE:
                    raise OSError(errno.EIO, f"short write to {self.path}: {done} bytes")
        finally:
            del view

    def read_page(self, slot: int) -> bytes:
        fd, buf = self._open()
        os.preadv(fd, [memoryview(buf)[:PAGE_SIZE]], slot * PAGE_SIZE)
        return bytes(buf[:PAGE_SIZE])

    def discard(self, slot: int, nr_pages: int = 1) -> None:
        """BLKDISCARD of whole slots: one zs_free per stored page."""
        fd, _ = self._open()
        fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", slot * PAGE_SIZE, nr_pages * PAGE_SIZE))

    def compact(self) -> None:
        self.set_attr("compact", 1)
