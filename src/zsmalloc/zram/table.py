"""The zram slot table and the per-slot store/free paths, compiled with numba.

Mirrors ``struct zram_table_entry`` and the slot helpers of
drivers/block/zram/zram_drv.c (6.18): ``zram_free_page`` (renamed
``slot_free`` after 6.18), the store paths of ``zram_write_page``
(``write_same_filled_page``, ``write_incompressible_page`` and the normal
path), ``zram_can_store_page`` / ``update_used_max``, the "accessed" mark,
``mark_idle`` and the backing-device bitmap (``alloc_block_bdev`` /
``free_block_bdev``, here because freeing a WB slot releases its block).

This module is the one owner of slot state: the device (:mod:`.device`),
writeback (:mod:`.writeback`) and recompression (:mod:`.recompress`) change
slots only through :func:`zram_free_page`, :func:`slot_install` and
:func:`slot_store_obj`, so dependencies run one way
(device -> writeback/recompress -> table -> zs.core).

Everything a slot path touches travels as one :class:`ZramTable`, a named tuple
of arrays that numba passes as a single argument (as ``zs.core`` takes its
``PoolState``):

============ ==============================================================
``handle``   per slot: zsmalloc handle, the fill word (SAME), the backing
             block (WB), or 0 for an empty slot
``flags``    per slot: the object size in the low ``ZRAM_FLAG_SHIFT`` bits,
             ``enum zram_pageflags`` above them
``ac_time``  per slot: last access (CONFIG_ZRAM_TRACK_ENTRY_ACTIME), 0 when
             freed; an empty array when not built in
``stats``    ``struct zram_stats``: one :data:`~.stats.ZRAM_STATS_DTYPE` record
``dev``      the ``struct zram`` scalars the paths read: one
             :data:`ZRAM_DEVICE_DTYPE` record (``limit_pages``,
             ``huge_class_size``)
``bd_map``   ``zram->bitmap``: one byte a backing block (one unused byte
             without a backing device)
``layout``   PAGE_SIZE and the flag bits of the profile, as one
             :data:`SLOT_LAYOUT_DTYPE` record (:class:`SlotLayout` in Python)
============ ==============================================================

The flag bits depend on PAGE_SHIFT (``ZRAM_FLAG_SHIFT = PAGE_SHIFT + 1``), so
they come from the device's :class:`~zsmalloc.profile.KernelProfile` through
:func:`slot_layout`; with 4 KiB pages they are the 6.18 ``enum zram_pageflags``
read from the reference kernel's BTF (spec zram.md §0.2): SAME bit 13 ... the
priority in bits 20-21.

Order matters and is the kernel's: a store allocates the new object, samples
the pool total and raises the maximum, checks the limit, and only then frees
the old content (the 6.17 race fix ce4be9e4307c), so ``mem_used_max`` can hold
old and new object at once.  :func:`slot_store_obj` is that order, written once.
"""

from __future__ import annotations

import errno
from functools import lru_cache
from typing import Final, NamedTuple

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.profile import MAX_CHAIN_SIZE, KernelProfile
from zsmalloc.zram.stats import new_stats
from zsmalloc.zs.core import (
    zs_free,
    zs_get_total_pages,
    zs_malloc,
    zs_obj_read,
    zs_obj_write,
)
from zsmalloc.zs.pool import MAX_POOL_PAGES, Pool
from zsmalloc.zs.state import PoolState

# Named for numba: compiled code reads module globals as constants.
ENOMEM: Final = errno.ENOMEM

# The store/free paths are small and call each other several levels deep with the
# pool state and the table (two tuples of many arrays) as arguments; inlined into
# their callers (numba's IR-level inlining) they cost nothing beyond their bodies,
# where real calls would copy both tuples at every level (measured with
# bench/zram_replay.py: 25 % slower than separate array arguments as calls, 30 %
# faster inlined).
hot_njit = njit(inline="always")

# enum zram_pageflags (6.18, BTF order); the bit of each is ZRAM_FLAG_SHIFT + position.
ZRAM_PAGEFLAGS: Final = (
    "ZRAM_SAME",  # the slot holds a same-filled word, no object
    "ZRAM_ENTRY_LOCK",  # the slot lock (never held across calls here)
    "ZRAM_WB",  # written back: handle is the backing block
    "ZRAM_PP_SLOT",  # a post-processing (writeback/recompress) candidate
    "ZRAM_HUGE",  # a raw PAGE_SIZE object
    "ZRAM_IDLE",
    "ZRAM_INCOMPRESSIBLE",  # no secondary algorithm made it smaller
    "ZRAM_COMP_PRIORITY_BIT1",  # two bits: the algorithm that compressed it
    "ZRAM_COMP_PRIORITY_BIT2",
)


class SlotLayout(NamedTuple):
    """PAGE_SIZE and the bits of a slot's ``flags`` word for one profile.

    Flag fields are masks (``BIT(flag)``), except ZRAM_COMP_PRIORITY_BIT1, the
    priority's shift.  Python code reads this tuple; compiled code reads the same
    values from :meth:`record` (``ZramTable.layout``), since numba's dispatcher types
    a named tuple of ints about 1.5 µs slower per call than an array, and Python
    reads a record's fields ten times slower than a tuple's.
    """

    PAGE_SIZE: int
    PAGE_SHIFT: int
    ZRAM_FLAG_SHIFT: int  # PAGE_SHIFT + 1: the object size fits below it
    ZRAM_SIZE_MASK: int  # BIT(ZRAM_FLAG_SHIFT) - 1
    ZRAM_SAME: int
    ZRAM_ENTRY_LOCK: int
    ZRAM_WB: int
    ZRAM_PP_SLOT: int
    ZRAM_HUGE: int
    ZRAM_IDLE: int
    ZRAM_INCOMPRESSIBLE: int
    ZRAM_COMP_PRIORITY_BIT1: int
    ZRAM_COMP_PRIORITY_MASK: int

    def record(self) -> np.ndarray:
        """The same values as one read-only :data:`SLOT_LAYOUT_DTYPE` record, for numba."""
        return _layout_record(self)

    def flag_names(self, flags: int) -> list[str]:
        """The names of the flags set in one slot's word (``huge``, ``idle`` ...)."""
        shown = ("SAME", "WB", "PP_SLOT", "HUGE", "IDLE", "INCOMPRESSIBLE")
        return [n.lower() for n in shown if flags & getattr(self, f"ZRAM_{n}")]


SLOT_LAYOUT_DTYPE = np.dtype([(name, np.int64) for name in SlotLayout._fields], align=True)


@lru_cache
def slot_layout(profile: KernelProfile) -> SlotLayout:
    """The layout of ``profile``: ZRAM_FLAG_SHIFT from it, the enum above it."""
    shift = profile.ZRAM_FLAG_SHIFT
    bit = {name: shift + i for i, name in enumerate(ZRAM_PAGEFLAGS)}
    prio = bit["ZRAM_COMP_PRIORITY_BIT1"]
    return SlotLayout(
        PAGE_SIZE=profile.page_size,
        PAGE_SHIFT=profile.PAGE_SHIFT,
        ZRAM_FLAG_SHIFT=shift,
        ZRAM_SIZE_MASK=(1 << shift) - 1,
        ZRAM_SAME=1 << bit["ZRAM_SAME"],
        ZRAM_ENTRY_LOCK=1 << bit["ZRAM_ENTRY_LOCK"],
        ZRAM_WB=1 << bit["ZRAM_WB"],
        ZRAM_PP_SLOT=1 << bit["ZRAM_PP_SLOT"],
        ZRAM_HUGE=1 << bit["ZRAM_HUGE"],
        ZRAM_IDLE=1 << bit["ZRAM_IDLE"],
        ZRAM_INCOMPRESSIBLE=1 << bit["ZRAM_INCOMPRESSIBLE"],
        ZRAM_COMP_PRIORITY_BIT1=prio,
        ZRAM_COMP_PRIORITY_MASK=3 << prio,
    )


@lru_cache
def _layout_record(layout: SlotLayout) -> np.ndarray:
    rec = np.array([tuple(layout)], SLOT_LAYOUT_DTYPE)
    rec.setflags(write=False)  # shared by every table of the profile
    return rec


# The struct zram scalars the slot paths read (not statistics, so not in zram_stats).
ZRAM_DEVICE_DTYPE = np.dtype(
    [
        ("limit_pages", np.int64),  # zram->limit_pages: mem_limit in pages, 0 = none
        ("huge_class_size", np.int64),  # zs_huge_class_size() of the pool, 0 before init
    ],
    align=True,
)


def new_device() -> np.ndarray:
    """A zeroed device record (no limit, not initialised), in a one-element array."""
    return np.zeros(1, ZRAM_DEVICE_DTYPE)


class ZramTable(NamedTuple):
    """``zram->table`` with the device state its paths read; see the module docstring."""

    handle: np.ndarray  # int64[nr_pages]
    flags: np.ndarray  # int64[nr_pages]
    ac_time: np.ndarray  # float64[nr_pages], or float64[0] without access-time tracking
    stats: np.ndarray  # ZRAM_STATS_DTYPE[1]
    dev: np.ndarray  # ZRAM_DEVICE_DTYPE[1]
    bd_map: np.ndarray  # uint8[backing blocks]; uint8[1] without a backing device
    layout: np.ndarray  # SLOT_LAYOUT_DTYPE[1], read-only: SlotLayout.record()


def new_table(
    profile: KernelProfile,
    nr_pages: int = 0,
    *,
    stats: np.ndarray | None = None,
    dev: np.ndarray | None = None,
    bd_map: np.ndarray | None = None,
    track_actime: bool = False,
) -> ZramTable:
    """``vzalloc(nr_pages * sizeof(entry))``: all slots empty.

    ``stats``, ``dev`` and ``bd_map`` are shared, not copied: the device keeps them
    across the table it has before init and the one disksize allocates.
    """
    return ZramTable(
        handle=np.zeros(nr_pages, np.int64),
        flags=np.zeros(nr_pages, np.int64),
        ac_time=np.zeros(nr_pages if track_actime else 0, np.float64),
        stats=new_stats() if stats is None else stats,
        dev=new_device() if dev is None else dev,
        bd_map=np.zeros(1, np.uint8) if bd_map is None else bd_map,
        layout=slot_layout(profile).record(),
    )


def zram_create_pool(profile: KernelProfile, nr_pages: int) -> Pool:
    """The device's zsmalloc pool (zs_create_pool at disksize), sized never to run out first.

    Worst case: every slot huge (a page each), one partly used zspage per class
    (at most MAX_CHAIN_SIZE pages each) and the transient object of an overwrite;
    capped at the largest arena the model can address (a disk beyond 8 TiB cannot be
    filled here anyway).  The pool reserves host memory as it grows, so a large
    disksize costs nothing until it is written.
    """
    return Pool(
        profile=profile,
        max_pages=min(MAX_POOL_PAGES, nr_pages + profile.ZS_SIZE_CLASSES * MAX_CHAIN_SIZE + 64),
    )


# ---- slot queries, for Python callers (a compiled call would cost more than the
# bit operations) ----------------------------------------------------------------------


def zram_get_obj_size(lay: SlotLayout, flags: int) -> int:
    """Mirrors zram_get_obj_size() on a slot's flags word: the low ZRAM_FLAG_SHIFT bits."""
    return int(flags) & lay.ZRAM_SIZE_MASK


def zram_get_priority(lay: SlotLayout, flags: int) -> int:
    """Mirrors zram_get_priority() on a slot's flags word: the ZRAM_COMP_PRIORITY bits."""
    return (int(flags) & lay.ZRAM_COMP_PRIORITY_MASK) >> lay.ZRAM_COMP_PRIORITY_BIT1


def zram_allocated(lay: SlotLayout, flags: int) -> bool:
    """Mirrors zram_allocated() on a slot's flags word: a size, or SAME, or WB."""
    return bool(int(flags) & (lay.ZRAM_SIZE_MASK | lay.ZRAM_SAME | lay.ZRAM_WB))


def zram_accessed(zt: ZramTable, lay: SlotLayout, index: int, now: float) -> None:
    """Mirrors zram_accessed(): clear IDLE and PP_SLOT, stamp ac_time when tracked."""
    zt.flags[index] &= ~(lay.ZRAM_IDLE | lay.ZRAM_PP_SLOT)
    if zt.ac_time.size > 0:
        zt.ac_time[index] = now


# ---- backing-device blocks ----------------------------------------------------------


def alloc_block_bdev(zt: ZramTable) -> int:
    """Mirrors alloc_block_bdev(): lowest free block >= 1, or 0 when full.

    ``find_next_zero_bit(bitmap, nr_pages, 1)``: block 0 is never used.
    """
    free = np.flatnonzero(zt.bd_map[1:] == 0)
    if free.size == 0:
        return 0
    blk_idx = int(free[0]) + 1
    zt.bd_map[blk_idx] = 1
    zt.stats[0]["bd_count"] += 1
    return blk_idx


@hot_njit
def free_block_bdev(zt: ZramTable, blk_idx: int) -> None:
    """Mirrors free_block_bdev()."""
    zt.bd_map[blk_idx] = 0
    s = zt.stats[0]
    s["bd_count"] -= 1


# ---- free and store -----------------------------------------------------------------


@hot_njit
def zram_free_page(st: PoolState, zt: ZramTable, index: int) -> None:
    """Mirrors zram_free_page() in drivers/block/zram/zram_drv.c (6.18).

    Freeing an empty slot changes no counter (the kernel returns early), but
    ac_time is zeroed and the IDLE / INCOMPRESSIBLE / PP_SLOT bits and the
    priority are cleared first.
    """
    lay = zt.layout[0]
    s = zt.stats[0]
    if zt.ac_time.size > 0:
        zt.ac_time[index] = 0.0
    f = zt.flags[index] & ~(
        lay["ZRAM_IDLE"]
        | lay["ZRAM_INCOMPRESSIBLE"]
        | lay["ZRAM_PP_SLOT"]
        | lay["ZRAM_COMP_PRIORITY_MASK"]
    )
    if f & lay["ZRAM_HUGE"]:
        f &= ~lay["ZRAM_HUGE"]
        s["huge_pages"] -= 1
    if f & lay["ZRAM_WB"]:
        f &= ~lay["ZRAM_WB"]
        free_block_bdev(zt, zt.handle[index])
    elif f & lay["ZRAM_SAME"]:
        f &= ~lay["ZRAM_SAME"]
        s["same_pages"] -= 1
    else:
        if zt.handle[index] == 0:
            zt.flags[index] = f
            return
        zs_free(st, zt.handle[index])
        s["compr_data_size"] -= f & lay["ZRAM_SIZE_MASK"]
    s["pages_stored"] -= 1
    zt.handle[index] = 0
    zt.flags[index] = f & ~lay["ZRAM_SIZE_MASK"]


@hot_njit
def slot_install(
    st: PoolState, zt: ZramTable, index: int, word: int, size: int, set_flags: int
) -> None:
    """Free the slot's old content, then make it hold ``word``: the end of every store.

    Each store path of 6.18 ends the same way: slot_free(), zram_set_handle(),
    zram_set_obj_size() and the entry's flag, then the counters.  ``word`` is a
    zsmalloc handle (``size`` its object size, ``set_flags`` 0, ZRAM_HUGE or a
    priority: zram_write_page, write_incompressible_page, recompress_slot), the
    fill word (ZRAM_SAME: write_same_filled_page) or a backing block (ZRAM_WB:
    zram_writeback_slots); ``size`` is 0 for the last two.
    """
    lay = zt.layout[0]
    zram_free_page(st, zt, index)
    zt.handle[index] = word
    zt.flags[index] = (zt.flags[index] & ~lay["ZRAM_SIZE_MASK"]) | size | set_flags
    s = zt.stats[0]
    if set_flags & lay["ZRAM_SAME"]:
        s["same_pages"] += 1
    if set_flags & lay["ZRAM_HUGE"]:
        s["huge_pages"] += 1
        s["huge_pages_since"] += 1
    s["compr_data_size"] += size
    s["pages_stored"] += 1


@hot_njit
def zram_can_store_page(st: PoolState, zt: ZramTable) -> bool:
    """Mirrors zram_can_store_page() and update_used_max(): raise the max, then check.

    The maximum is raised before the limit check, so mem_used_max can end
    above mem_limit; the limit is strict (``pages > limit_pages`` refuses).
    """
    pages = zs_get_total_pages(st)
    s = zt.stats[0]
    if pages > s["max_used_pages"]:
        s["max_used_pages"] = pages
    limit = zt.dev[0]["limit_pages"]
    return limit == 0 or pages <= limit


@hot_njit
def slot_store_obj(
    st: PoolState,
    zt: ZramTable,
    index: int,
    size: int,
    data: np.ndarray,
    set_flags: int,
    check_limit: bool,
) -> int:
    """Store a new ``size``-byte object at ``index``, in the kernel's order; 0 or -errno.

    zs_malloc, then (``check_limit``: zram_write_page) zram_can_store_page, then
    zs_obj_write, and only then :func:`slot_install` frees the old content.
    recompress_slot neither raises the maximum nor checks the limit.  ``data``
    holds the bytes to copy into the object; an empty array stores sizes only,
    for trace replay.  On failure the old content stays, as in 6.18.
    """
    h = zs_malloc(st, size)
    if h <= 0:
        return h if h < 0 else -ENOMEM
    if check_limit and not zram_can_store_page(st, zt):
        zs_free(st, h)
        return -ENOMEM
    if data.size > 0:
        zs_obj_write(st, h, data, size)
    slot_install(st, zt, index, h, size, set_flags)
    return 0


@hot_njit
def zram_write_same(st: PoolState, zt: ZramTable, index: int, word: int) -> None:
    """Mirrors write_same_filled_page(): no allocation, no limit or max check."""
    slot_install(st, zt, index, word, 0, zt.layout[0]["ZRAM_SAME"])


@hot_njit
def zram_write_obj(
    st: PoolState, zt: ZramTable, index: int, comp_len: int, page: np.ndarray, comp: np.ndarray
) -> int:
    """Store one page that is not same-filled at ``index``; 0 or -errno.

    Mirrors the rest of zram_write_page() (6.18): the one huge test,
    ``comp_len >= huge_class_size``, sends the page to write_incompressible_page
    (a PAGE_SIZE object holding the raw ``page``); otherwise the ``comp_len``
    compressed bytes ``comp`` are stored.  Trace replay passes empty arrays:
    sizes only.
    """
    lay = zt.layout[0]
    if comp_len >= zt.dev[0]["huge_class_size"]:
        return slot_store_obj(st, zt, index, lay["PAGE_SIZE"], page, lay["ZRAM_HUGE"], True)
    return slot_store_obj(st, zt, index, comp_len, comp, 0, True)


@njit
def zram_read_obj(st: PoolState, zt: ZramTable, index: int, dst: np.ndarray) -> int:
    """Copy a stored object's bytes into ``dst``; returns the object size."""
    size = zt.flags[index] & zt.layout[0]["ZRAM_SIZE_MASK"]
    zs_obj_read(st, zt.handle[index], dst, size)
    return size


@njit
def zram_discard_range(st: PoolState, zt: ZramTable, first: int, nr_pages: int) -> None:
    """Mirrors zram_bio_discard() for whole slots: free each, ``notify_free`` per slot.

    notify_free counts every covered slot, even an empty one.
    """
    s = zt.stats[0]
    for index in range(first, first + nr_pages):
        zram_free_page(st, zt, index)
        s["notify_free"] += 1


def mem_limit_pages(lay: SlotLayout, limit: int | np.ndarray) -> int | np.ndarray:
    """Mirrors mem_limit_store(): ``limit_pages = PAGE_ALIGN(limit) >> PAGE_SHIFT``.

    Python integers (a u64 from memparse: PAGE_ALIGN wraps at 2**64 as in C, so a
    limit within a page of 2**64 is 0, no limit) or an int64 array (trace values,
    below 2**62).
    """
    if isinstance(limit, np.ndarray):
        return (limit + lay.PAGE_SIZE - 1) >> lay.PAGE_SHIFT
    return ((int(limit) + lay.PAGE_SIZE - 1) & ((1 << 64) - 1)) >> lay.PAGE_SHIFT


@njit
def zram_reset_max_used(st: PoolState, zt: ZramTable) -> None:
    """Mirrors mem_used_max_store(): max_used_pages = zs_get_total_pages()."""
    s = zt.stats[0]
    s["max_used_pages"] = zs_get_total_pages(st)


def mark_idle(zt: ZramTable, lay: SlotLayout, cutoff: float | None) -> None:
    """Mirrors mark_idle(): IDLE on every stored slot (not WB, not SAME).

    With a ``cutoff`` (access-time tracking) only slots accessed strictly before
    it become IDLE, and IDLE is cleared on the others.
    """
    f = zt.flags
    special = (f & (lay.ZRAM_SAME | lay.ZRAM_WB)) != 0
    eligible = ((f & lay.ZRAM_SIZE_MASK) != 0) & ~special
    if cutoff is None:
        f[eligible] |= lay.ZRAM_IDLE
        return
    old = zt.ac_time < cutoff
    f[eligible & old] |= lay.ZRAM_IDLE
    f[eligible & ~old] &= ~lay.ZRAM_IDLE
