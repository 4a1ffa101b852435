"""Writeback of zram slots to a backing device (CONFIG_ZRAM_WRITEBACK, 6.18).

Mirrors ``backing_dev_store()``, ``writeback_store()`` (the 6.16+ syntax:
``type=``/legacy mode words, ``page_index=``, ``page_indexes=``),
``writeback_limit_store()``, ``writeback_limit_enable_store()``,
``scan_slots_for_writeback()``, ``zram_writeback_slots()`` and
``read_from_bdev()`` in drivers/block/zram/zram_drv.c.  The reference kernel was
built without it, so this follows the 6.18 source as written down in spec
zram.md §2.13.

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
  and each page written lowers it by one page in 4 KiB units.

The backing device itself (opened once, exclusively, kept open) is
:mod:`zsmalloc.zram.bdev`.

Slots change only through :mod:`zsmalloc.zram.table`; what this module needs of
the device is the :class:`WritebackDevice` protocol (the device imports this
module, never the other way round).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from zsmalloc.errors import InvariantError, SysfsError
from zsmalloc.kparse import kstrtoull, next_args
from zsmalloc.profile import KernelProfile
from zsmalloc.zram.bdev import BackingDev
from zsmalloc.zram.postprocess import PpCtl
from zsmalloc.zram.sysfs import fail
from zsmalloc.zram.table import (
    ZramTable,
    alloc_block_bdev,
    free_block_bdev,
    slot_install,
    slot_layout,
    zram_allocated,
)

if TYPE_CHECKING:
    from zsmalloc.zs.pool import Pool

IDLE_WRITEBACK = 1 << 0
HUGE_WRITEBACK = 1 << 1
INCOMPRESSIBLE_WRITEBACK = 1 << 2
_MODES = {
    "idle": IDLE_WRITEBACK,
    "huge": HUGE_WRITEBACK,
    "huge_idle": IDLE_WRITEBACK | HUGE_WRITEBACK,
    "incompressible": INCOMPRESSIBLE_WRITEBACK,
}


@dataclass
class WbLimit:
    """``zram->wb_limit_enable`` and ``zram->bd_wb_limit`` (4 KiB units); reset keeps them."""

    enable: bool = False
    bd_wb_limit: int = 0

    def exhausted(self) -> bool:
        """The check at the top of each zram_writeback_slots() iteration."""
        return self.enable and self.bd_wb_limit == 0


class WritebackDevice(Protocol):
    """What writeback reads of the device (:class:`zsmalloc.zram.device.Zram`)."""

    @property
    def name(self) -> str: ...
    @property
    def profile(self) -> KernelProfile: ...
    @property
    def initstate(self) -> bool: ...
    @property
    def nr_pages(self) -> int: ...
    @property
    def table(self) -> ZramTable: ...
    @property
    def pool(self) -> Pool: ...
    @property
    def backing_dev(self) -> BackingDev | None: ...
    @property
    def wb_limit(self) -> WbLimit: ...
    def read_from_zspool(self, index: int) -> bytes: ...


def writeback_limit_store(wbl: WbLimit, text: str) -> None:
    """Mirrors writeback_limit_store(): a u64 in 4 KiB units, stored as written."""
    wbl.bd_wb_limit = kstrtoull(text, 10, attr="writeback_limit")


def writeback_limit_enable_store(wbl: WbLimit, text: str) -> None:
    """Mirrors writeback_limit_enable_store(): any nonzero u64 enables."""
    wbl.enable = kstrtoull(text, 10, attr="writeback_limit_enable") != 0


def scan_slots_for_writeback(ctl: PpCtl, mode: int, lo: int, hi: int) -> None:
    """Mirrors scan_slots_for_writeback(): slots lo..hi-1 matching ``mode`` become candidates."""
    lay, flags = ctl.lay, ctl.zt.flags
    for index in range(lo, hi):
        f = int(flags[index])
        if not zram_allocated(lay, f) or f & (lay.ZRAM_WB | lay.ZRAM_SAME):
            continue
        if mode & IDLE_WRITEBACK and not f & lay.ZRAM_IDLE:
            continue
        if mode & HUGE_WRITEBACK and not f & lay.ZRAM_HUGE:
            continue
        if mode & INCOMPRESSIBLE_WRITEBACK and not f & lay.ZRAM_INCOMPRESSIBLE:
            continue
        ctl.place_pp_slot(index)


def zram_writeback_slots(dev: WritebackDevice, ctl: PpCtl) -> int:
    """Mirrors zram_writeback_slots() (6.18): 0, or the last error as -errno."""
    zt, lay = dev.table, ctl.lay
    wbl = dev.wb_limit
    backing_dev = dev.backing_dev
    if backing_dev is None:  # writeback_store() checked it
        raise InvariantError("zram_writeback_slots() without a backing device")
    ret = 0
    blk_idx = 0
    while (sel := ctl.select_pp_slot()) is not None:
        bid, index = sel
        if wbl.exhausted():
            ret = -errno.EIO
            break
        if not blk_idx:
            blk_idx = alloc_block_bdev(zt)
            if not blk_idx:
                ret = -errno.ENOSPC
                break
        if not zt.flags[index] & lay.ZRAM_PP_SLOT:
            ctl.release_pp_slot(bid)
            continue
        page = dev.read_from_zspool(index)
        try:
            backing_dev.write_block(blk_idx, page)
        except OSError as exc:  # bio errors are not fatal: remember, go on
            ctl.release_pp_slot(bid)
            ret = -(exc.errno or errno.EIO)
            continue
        zt.stats[0]["bd_writes"] += 1
        if zt.flags[index] & lay.ZRAM_PP_SLOT:  # not accessed or freed meanwhile
            slot_install(dev.pool.state, zt, index, blk_idx, 0, lay.ZRAM_WB)
            blk_idx = 0
            if wbl.enable and wbl.bd_wb_limit > 0:
                wbl.bd_wb_limit -= 1 << (lay.PAGE_SHIFT - 12)
        ctl.release_pp_slot(bid)
    if blk_idx:
        free_block_bdev(zt, blk_idx)
    ctl.drain()
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


def writeback_store(dev: WritebackDevice, text: str) -> None:
    """Mirrors writeback_store() (6.16+ syntax as in 6.18).

    Tokens are taken in order: a mode (``type=MODE`` or a bare legacy
    ``MODE``) scans the range selected so far and ends parsing;
    ``page_index=N`` / ``page_indexes=A-B`` select and scan a range.  Errors
    found while parsing leave the slots untouched (the candidates are
    released); errors while writing are raised after the work done so far.
    """
    if not dev.initstate:
        raise fail("writeback", text, errno.EINVAL, f"{dev.name} is not initialised")
    if dev.backing_dev is None:
        raise fail("writeback", text, errno.ENODEV, "no backing device (write backing_dev first)")
    zt = dev.table
    nr_pages = dev.nr_pages
    lo, hi, mode = 0, nr_pages, 0  # page_index alone: any slot
    ctl = PpCtl(zt, slot_layout(dev.profile))
    try:
        for key, val in next_args(text):
            if not val or key == "type":  # a bare (legacy) mode word, or type=MODE
                word = val or key
                if word not in _MODES:
                    raise fail("writeback", text, errno.EINVAL, f"unknown writeback mode {word!r}")
                scan_slots_for_writeback(ctl, _MODES[word], lo, hi)
                break
            if key == "page_index":
                lo, hi = _parse_page_index(text, val, nr_pages)
                scan_slots_for_writeback(ctl, mode, lo, hi)
            elif key == "page_indexes":
                lo, hi = _parse_page_indexes(text, val, nr_pages)
                scan_slots_for_writeback(ctl, mode, lo, hi)
    except SysfsError:
        ctl.drain()
        raise
    err = zram_writeback_slots(dev, ctl)
    if err:
        why = {errno.EIO: "writeback limit reached", errno.ENOSPC: "backing device full"}
        raise SysfsError(
            f"writeback <- {text.strip()!r}: {why.get(-err, os.strerror(-err))} "
            f"({errno.errorcode.get(-err, -err)})",
            errno=-err,
        )
