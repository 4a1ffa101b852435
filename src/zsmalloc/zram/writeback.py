"""Writeback of zram slots to a backing device (CONFIG_ZRAM_WRITEBACK, 6.18).

Mirrors ``backing_dev_store()``, ``writeback_store()`` (the 6.16+ syntax:
``type=``/legacy mode words, ``page_index=``, ``page_indexes=``),
``scan_slots_for_writeback()``, ``zram_writeback_slots()``,
``alloc_block_bdev()``/``free_block_bdev()`` and ``read_from_bdev()`` in
drivers/block/zram/zram_drv.c.  The reference kernel was built without it, so
this follows the 6.18 source as written down in spec zram.md §2.13.

Rules that decide the numbers:

* candidates are placed in size buckets (:mod:`zsmalloc.zram.postprocess`):
  largest objects are written first;
* block 0 is never used (``find_next_zero_bit(bitmap, nr_pages, 1)``); a
  block is reserved (``bd_count += 1``) before the slot is checked and kept
  for the next slot if that one is skipped; an unused reserved block is
  released at the end;
* a written-back slot is freed (``compr_data_size`` and ``huge_pages`` drop,
  ``huge_pages_since`` does not) and becomes WB with ``handle = block``;
  ``pages_stored`` is unchanged;
* with the limit enabled, writeback stops with EIO when ``bd_wb_limit`` is 0
  and each page written lowers it by one 4 KiB unit.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zsmalloc.errors import SysfsError
from zsmalloc.kparse import kstrtoull, next_args
from zsmalloc.zram.postprocess import PpCtl
from zsmalloc.zram.stats import BD_COUNT, BD_WRITES, PAGE_SHIFT, PAGE_SIZE, PAGES_STORED
from zsmalloc.zram.sysfs import fail
from zsmalloc.zram.table import (
    ZRAM_HUGE,
    ZRAM_IDLE,
    ZRAM_INCOMPRESSIBLE,
    ZRAM_PP_SLOT,
    ZRAM_SAME,
    ZRAM_WB,
    zram_allocated,
    zram_free_page,
)

if TYPE_CHECKING:
    from zsmalloc.zram.device import Zram

IDLE_WRITEBACK = 1 << 0
HUGE_WRITEBACK = 1 << 1
INCOMPRESSIBLE_WRITEBACK = 1 << 2
_MODES = {
    "idle": IDLE_WRITEBACK,
    "huge": HUGE_WRITEBACK,
    "huge_idle": IDLE_WRITEBACK | HUGE_WRITEBACK,
    "incompressible": INCOMPRESSIBLE_WRITEBACK,
}


def backing_dev_store(zram: Zram, text: str) -> None:
    """Mirrors backing_dev_store(): EBUSY once init, EINVAL for an empty device.

    A regular file is accepted as well as a block device (user space cannot
    claim block devices); its size in whole pages is the number of blocks.
    """
    path = text[:-1] if text.endswith("\n") else text
    if zram.initstate:
        raise fail("backing_dev", text, errno.EBUSY, "cannot change backing device after init")
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError as exc:
        raise fail(
            "backing_dev", text, exc.errno or errno.EINVAL, exc.strerror or "cannot open"
        ) from None
    try:
        nr_pages = os.lseek(fd, 0, os.SEEK_END) >> PAGE_SHIFT
    finally:
        os.close(fd)
    if nr_pages == 0:
        raise fail("backing_dev", text, errno.EINVAL, "backing device holds no whole page")
    zram.backing_dev = Path(path)
    zram.bd_map = np.zeros(nr_pages, dtype=np.uint8)


def alloc_block_bdev(zram: Zram) -> int:
    """Mirrors alloc_block_bdev(): lowest free block >= 1, or 0 when full."""
    free = np.flatnonzero(zram.bd_map[1:] == 0)
    if free.size == 0:
        return 0
    blk_idx = int(free[0]) + 1
    zram.bd_map[blk_idx] = 1
    zram.stats[BD_COUNT] += 1
    return blk_idx


def free_block_bdev(zram: Zram, blk_idx: int) -> None:
    """Mirrors free_block_bdev()."""
    zram.bd_map[blk_idx] = 0
    zram.stats[BD_COUNT] -= 1


def read_from_bdev(zram: Zram, blk_idx: int) -> bytes:
    """Mirrors read_from_bdev(): one page at ``blk_idx * PAGE_SIZE`` of the backing file."""
    assert zram.backing_dev is not None
    with open(zram.backing_dev, "rb") as f:
        f.seek(blk_idx * PAGE_SIZE)
        return f.read(PAGE_SIZE)


def _write_to_bdev(zram: Zram, blk_idx: int, page: bytes) -> None:
    assert zram.backing_dev is not None
    with open(zram.backing_dev, "r+b") as f:
        f.seek(blk_idx * PAGE_SIZE)
        f.write(page)


def scan_slots_for_writeback(zram: Zram, mode: int, lo: int, hi: int, ctl: PpCtl) -> None:
    """Mirrors scan_slots_for_writeback(): slots lo..hi-1 matching ``mode`` become candidates."""
    flags = zram.flags
    for index in range(lo, hi):
        f = int(flags[index])
        if not zram_allocated(zram.handle, flags, index) or f & (ZRAM_WB | ZRAM_SAME):
            continue
        if mode & IDLE_WRITEBACK and not f & ZRAM_IDLE:
            continue
        if mode & HUGE_WRITEBACK and not f & ZRAM_HUGE:
            continue
        if mode & INCOMPRESSIBLE_WRITEBACK and not f & ZRAM_INCOMPRESSIBLE:
            continue
        ctl.place_pp_slot(flags, index)


def zram_writeback_slots(zram: Zram, ctl: PpCtl) -> int:
    """Mirrors zram_writeback_slots() (6.18): 0, or the last error as -errno."""
    ret = 0
    blk_idx = 0
    st = zram.pool.state
    while (sel := ctl.select_pp_slot()) is not None:
        bid, index = sel
        if zram.wb_limit_enable and zram.bd_wb_limit == 0:
            ret = -errno.EIO
            break
        if not blk_idx:
            blk_idx = alloc_block_bdev(zram)
            if not blk_idx:
                ret = -errno.ENOSPC
                break
        if not zram.flags[index] & ZRAM_PP_SLOT:
            ctl.release_pp_slot(zram.flags, bid)
            continue
        page = zram.read_from_zspool(index)
        try:
            _write_to_bdev(zram, blk_idx, page)
        except OSError as exc:  # bio errors are not fatal: remember, go on
            ctl.release_pp_slot(zram.flags, bid)
            ret = -(exc.errno or errno.EIO)
            continue
        zram.stats[BD_WRITES] += 1
        if zram.flags[index] & ZRAM_PP_SLOT:
            zram_free_page(st, zram.handle, zram.flags, zram.stats, zram.bd_map, index)
            zram._forget_actime(index, 1)
            zram.flags[index] |= ZRAM_WB
            zram.handle[index] = blk_idx
            blk_idx = 0
            zram.stats[PAGES_STORED] += 1
            if zram.wb_limit_enable and zram.bd_wb_limit > 0:
                zram.bd_wb_limit -= 1 << (PAGE_SHIFT - 12)
        ctl.release_pp_slot(zram.flags, bid)
    if blk_idx:
        free_block_bdev(zram, blk_idx)
    ctl.drain(zram.flags)
    return ret


def _parse_page_index(text: str, val: str, nr_pages: int) -> tuple[int, int]:
    n = kstrtoull(val, 10, attr="writeback")
    if n >= nr_pages:
        raise fail("writeback", text, errno.ERANGE, f"page_index {n} >= {nr_pages} slots")
    return n, n + 1


def _parse_page_indexes(text: str, val: str, nr_pages: int) -> tuple[int, int]:
    if "-" not in val:
        raise fail("writeback", text, errno.EINVAL, "page_indexes needs FIRST-LAST")
    a, _, b = val.partition("-")
    lo, hi = kstrtoull(a, 10, attr="writeback"), kstrtoull(b, 10, attr="writeback")
    if lo > hi or hi >= nr_pages:
        raise fail("writeback", text, errno.ERANGE, f"range {lo}-{hi} outside 0..{nr_pages - 1}")
    return lo, hi + 1


def writeback_store(zram: Zram, text: str) -> None:
    """Mirrors writeback_store() (6.16+ syntax as in 6.18).

    Tokens are taken in order: a mode (``type=MODE`` or a bare legacy
    ``MODE``) scans the range selected so far and ends parsing;
    ``page_index=N`` / ``page_indexes=A-B`` select and scan a range.  Errors
    found while parsing leave the slots untouched (the candidates are
    released); errors while writing are raised after the work done so far.
    """
    if not zram.initstate:
        raise fail("writeback", text, errno.EINVAL, f"{zram.name} is not initialised")
    if zram.backing_dev is None:
        raise fail("writeback", text, errno.ENODEV, "no backing device (write backing_dev first)")
    nr_pages = zram.nr_pages
    lo, hi, mode = 0, nr_pages, 0  # page_index alone: any slot
    ctl = PpCtl()
    try:
        for key, val in next_args(text):
            if not val or key == "type":  # a bare (legacy) mode word, or type=MODE
                word = val or key
                if word not in _MODES:
                    raise fail("writeback", text, errno.EINVAL, f"unknown writeback mode {word!r}")
                scan_slots_for_writeback(zram, _MODES[word], lo, hi, ctl)
                break
            if key == "page_index":
                lo, hi = _parse_page_index(text, val, nr_pages)
                scan_slots_for_writeback(zram, mode, lo, hi, ctl)
            elif key == "page_indexes":
                lo, hi = _parse_page_indexes(text, val, nr_pages)
                scan_slots_for_writeback(zram, mode, lo, hi, ctl)
    except SysfsError:
        ctl.drain(zram.flags)
        raise
    err = zram_writeback_slots(zram, ctl)
    if err:
        why = {errno.EIO: "writeback limit reached", errno.ENOSPC: "backing device full"}
        raise SysfsError(
            f"writeback <- {text.strip()!r}: {why.get(-err, os.strerror(-err))} "
            f"({errno.errorcode.get(-err, -err)})",
            errno=-err,
        )
