"""The backing device of zram writeback: ``backing_dev_store()`` and ``zram->bdev_file``.

Mirrors backing_dev_store(), reset_bdev() and backing_dev_show() in
drivers/block/zram/zram_drv.c (6.18).  The device is opened once, as the kernel
opens it (``bdev_file_open_by_path(..., BLK_OPEN_READ | BLK_OPEN_WRITE, zram)``),
and kept open until reset: every block is read and written through that
descriptor, so a file that is renamed, deleted or replaced afterwards, or a
``chdir``, changes nothing, and a short read (a file truncated behind the device's
back) is an I/O error (EIO), as a failed bio is.  ``backing_dev`` shows the open
file's current path, ``(deleted)`` included, as d_path() does.

The open is exclusive to one device (an ``flock``, the model's ``BLK_OPEN_EXCL``
holder): a second device naming the same file gets EBUSY, in this process or
another.  User space cannot claim a block device, so a regular file is accepted as
well as a block device (opened ``O_EXCL``); anything else -- a FIFO, a directory, a
character device -- is ENOTBLK, as ``lookup_bdev()`` answers.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import weakref

import numpy as np

from zsmalloc.zram.sysfs import fail


class BackingDev:
    """An open backing device: ``zram->bdev_file``, its size in blocks, its path.

    Blocks are PAGE_SIZE bytes at ``block * PAGE_SIZE``.  Closed by :meth:`close`
    (reset, another backing_dev, the device going away) or when garbage-collected.
    """

    def __init__(self, fd: int, path: str, nr_pages: int, page_size: int) -> None:
        self.fd = fd
        self.path = path  # absolute, as opened (the shown path follows the file)
        self.nr_pages = nr_pages
        self.page_size = page_size
        self.finalizer = weakref.finalize(self, os.close, fd)

    @property
    def closed(self) -> bool:
        return not self.finalizer.alive

    def close(self) -> None:
        """Release the device (blkdev_fput in reset_bdev): the descriptor and its claim."""
        self.finalizer()

    def show(self) -> str:
        """What backing_dev_show() prints: the file's current path (d_path: ``(deleted)``)."""
        try:
            return os.readlink(f"/proc/self/fd/{self.fd}")
        except OSError:
            return self.path

    def same_file(self, st: os.stat_result) -> bool:
        own = os.fstat(self.fd)
        return (own.st_dev, own.st_ino) == (st.st_dev, st.st_ino)

    def read_block(self, blk_idx: int) -> bytes:
        """One block, as read_from_bdev() submits it; OSError(EIO) on a short read."""
        data = os.pread(self.fd, self.page_size, blk_idx * self.page_size)
        if len(data) != self.page_size:
            raise OSError(
                errno.EIO,
                f"{self.show()}: block {blk_idx} gave {len(data)} of {self.page_size} bytes "
                "(the file was truncated)",
            )
        return data

    def write_block(self, blk_idx: int, page: bytes) -> None:
        """The bio zram_writeback_slots() submits; OSError(EIO) on a short write."""
        n = os.pwrite(self.fd, page, blk_idx * self.page_size)
        if n != len(page):
            raise OSError(errno.EIO, f"{self.show()}: short write of block {blk_idx}")


def _open_exclusive(attr_text: str, path: str) -> int:
    """Open ``path`` read-write, claimed by this device alone; SysfsError as the kernel's."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise fail(
            "backing_dev", attr_text, exc.errno or errno.EINVAL, exc.strerror or "cannot open"
        ) from None
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise fail(
            "backing_dev", attr_text, errno.ENOTBLK,
            "not a block device (a regular file is accepted too)",
        )
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_EXCL if stat.S_ISBLK(st.st_mode) else 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise fail(
            "backing_dev", attr_text, exc.errno or errno.EINVAL, exc.strerror or "cannot open"
        ) from None
    try:
        fst = os.fstat(fd)
        if not (stat.S_ISREG(fst.st_mode) or stat.S_ISBLK(fst.st_mode)):  # replaced meanwhile
            raise fail("backing_dev", attr_text, errno.ENOTBLK, "not a block device")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise fail(
                "backing_dev", attr_text, errno.EBUSY,
                "already the backing device of another zram device",
            ) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def backing_dev_store(
    text: str, initstate: bool, page_size: int, current: BackingDev | None = None
) -> tuple[BackingDev, np.ndarray]:
    """Mirrors backing_dev_store(): EBUSY once init, ENOTBLK, EBUSY if claimed, EINVAL if empty.

    Returns the opened device and a zeroed ``zram->bitmap`` (one byte a page-sized
    block) for the device to keep; it releases ``current`` itself once the new one
    is in place (reset_bdev), so a failed write changes nothing.  Naming the file
    ``current`` already holds reopens nothing: the holder is the same device.
    """
    path = text[:-1] if text.endswith("\n") else text
    if initstate:
        raise fail("backing_dev", text, errno.EBUSY, "cannot change backing device after init")
    if "\0" in path or not path:
        raise fail("backing_dev", text, errno.ENOENT, "no such file")
    if current is not None and not current.closed:
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is not None and current.same_file(st):
            nr_pages = current.nr_pages
            return current, np.zeros(nr_pages, dtype=np.uint8)
    fd = _open_exclusive(text, path)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
    except OSError as exc:
        os.close(fd)
        raise fail("backing_dev", text, exc.errno or errno.EINVAL, "cannot size it") from None
    nr_pages = size // page_size
    if nr_pages == 0:
        os.close(fd)
        raise fail("backing_dev", text, errno.EINVAL, "backing device holds no whole page")
    bdev = BackingDev(fd, os.path.abspath(path), nr_pages, page_size)
    return bdev, np.zeros(nr_pages, dtype=np.uint8)
