"""The zram slot table and the per-slot store/free paths, compiled with numba.

Mirrors ``struct zram_table_entry`` and the slot helpers of
drivers/block/zram/zram_drv.c (6.18): ``zram_free_page`` (renamed
``slot_free`` after 6.18), the two store paths of ``zram_write_page``
(``write_same_filled_page``, ``write_incompressible_page`` and the normal
path), ``zram_can_store_page`` / ``update_used_max`` and the "accessed" mark.

Each slot is two machine words, kept as two ``int64`` arrays so numba loops
index them directly:

============ ==============================================================
``handle``   zsmalloc handle, the fill word (SAME), the backing block (WB),
             or 0 for an empty slot
``flags``    bits 0..12 the object size (0..4096); ZRAM_* flags above
============ ==============================================================

Flag numbers are the 6.18 ``enum zram_pageflags`` read from the reference
kernel's BTF (spec zram.md §0.2).  Order matters and is the kernel's: a store
allocates the new object, samples the pool total and raises the maximum,
checks the limit, and only then frees the old content (the 6.17 race fix
ce4be9e4307c), so ``mem_used_max`` can hold old and new object at once.

Every function takes the allocator state ``st`` and calls the numba-level
allocator API in :mod:`zsmalloc.zs.core`; ``stats`` is the counter array of
:mod:`zsmalloc.zram.stats` and ``bd_map`` the backing-device block bitmap
(one byte a block; empty when there is no backing device).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from zsmalloc._jit import njit
from zsmalloc.zram.stats import (
    BD_COUNT,
    COMPR_DATA_SIZE,
    HUGE_PAGES,
    HUGE_PAGES_SINCE,
    LIMIT_PAGES,
    MAX_USED_PAGES,
    NOTIFY_FREE,
    PAGE_SIZE,
    PAGES_STORED,
    SAME_PAGES,
)
from zsmalloc.zs.core import (
    zs_free,
    zs_get_total_pages,
    zs_malloc,
    zs_obj_read,
    zs_obj_write,
)
from zsmalloc.zs.state import PoolState

if TYPE_CHECKING:
    from zsmalloc.zs.pool import Pool

ZRAM_FLAG_SHIFT = 13  # PAGE_SHIFT + 1: bits below hold the object size
ZRAM_SIZE_MASK = (1 << ZRAM_FLAG_SHIFT) - 1

# enum zram_pageflags (6.18, from BTF)
ZRAM_SAME = 1 << 13
ZRAM_ENTRY_LOCK = 1 << 14
ZRAM_WB = 1 << 15
ZRAM_PP_SLOT = 1 << 16
ZRAM_HUGE = 1 << 17
ZRAM_IDLE = 1 << 18
ZRAM_INCOMPRESSIBLE = 1 << 19
ZRAM_COMP_PRIORITY_BIT1 = 20
ZRAM_COMP_PRIORITY_MASK = 3 << ZRAM_COMP_PRIORITY_BIT1

FLAG_NAMES = {
    ZRAM_SAME: "same",
    ZRAM_WB: "wb",
    ZRAM_PP_SLOT: "pp_slot",
    ZRAM_HUGE: "huge",
    ZRAM_IDLE: "idle",
    ZRAM_INCOMPRESSIBLE: "incompressible",
}

ENOMEM = 12
ENOSPC = 28


def zram_create_pool(nr_pages: int, chain_size: int = 8) -> Pool:
    """The device's zsmalloc pool (zs_create_pool at disksize), sized never to run out first.

    Worst case: every slot huge (a page each), one partly used zspage per class
    (at most 16 pages each) and the transient object of an overwrite.
    """
    from zsmalloc import Pool

    return Pool(chain_size=chain_size, page_size=PAGE_SIZE, max_pages=nr_pages + 255 * 16 + 64)


def new_table(nr_pages: int) -> tuple[np.ndarray, np.ndarray]:
    """``vzalloc(nr_pages * sizeof(entry))``: all slots empty."""
    return np.zeros(nr_pages, dtype=np.int64), np.zeros(nr_pages, dtype=np.int64)


@njit
def zram_get_obj_size(flags: np.ndarray, index: int) -> int:
    """Mirrors zram_get_obj_size(): the low ZRAM_FLAG_SHIFT bits."""
    return flags[index] & ZRAM_SIZE_MASK


@njit
def zram_get_priority(flags: np.ndarray, index: int) -> int:
    """Mirrors zram_get_priority(): bits 20-21."""
    return (flags[index] & ZRAM_COMP_PRIORITY_MASK) >> ZRAM_COMP_PRIORITY_BIT1


@njit
def zram_allocated(handle: np.ndarray, flags: np.ndarray, index: int) -> bool:
    """Mirrors zram_allocated(): a size, or SAME, or WB."""
    f = flags[index]
    return (f & ZRAM_SIZE_MASK) != 0 or (f & (ZRAM_SAME | ZRAM_WB)) != 0


@njit
def zram_free_page(
    st: PoolState,
    handle: np.ndarray,
    flags: np.ndarray,
    stats: np.ndarray,
    bd_map: np.ndarray,
    index: int,
) -> None:
    """Mirrors zram_free_page() in drivers/block/zram/zram_drv.c (6.18).

    Freeing an empty slot changes no counter (step 6 returns early), but the
    IDLE / INCOMPRESSIBLE / PP_SLOT bits and the priority are cleared first.
    """
    f = flags[index] & ~(ZRAM_IDLE | ZRAM_INCOMPRESSIBLE | ZRAM_PP_SLOT | ZRAM_COMP_PRIORITY_MASK)
    if f & ZRAM_HUGE:
        f &= ~ZRAM_HUGE
        stats[HUGE_PAGES] -= 1
    if f & ZRAM_WB:
        f &= ~ZRAM_WB
        bd_map[handle[index]] = 0  # free_block_bdev()
        stats[BD_COUNT] -= 1
    elif f & ZRAM_SAME:
        f &= ~ZRAM_SAME
        stats[SAME_PAGES] -= 1
    else:
        if handle[index] == 0:
            flags[index] = f
            return
        zs_free(st, handle[index])
        stats[COMPR_DATA_SIZE] -= f & ZRAM_SIZE_MASK
    stats[PAGES_STORED] -= 1
    handle[index] = 0
    flags[index] = f & ~ZRAM_SIZE_MASK


@njit
def zram_write_same(
    st: PoolState,
    handle: np.ndarray,
    flags: np.ndarray,
    stats: np.ndarray,
    bd_map: np.ndarray,
    index: int,
    word: int,
) -> None:
    """Mirrors write_same_filled_page(): no allocation, no limit or max check."""
    zram_free_page(st, handle, flags, stats, bd_map, index)
    flags[index] |= ZRAM_SAME
    handle[index] = word
    stats[SAME_PAGES] += 1
    stats[PAGES_STORED] += 1


@njit
def zram_can_store_page(st: PoolState, stats: np.ndarray) -> bool:
    """Mirrors zram_can_store_page() and update_used_max(): raise the max, then check.

    The maximum is raised before the limit check, so mem_used_max can end
    above mem_limit; the limit is strict (``pages > limit_pages`` refuses).
    """
    pages = zs_get_total_pages(st)
    if pages > stats[MAX_USED_PAGES]:
        stats[MAX_USED_PAGES] = pages
    return stats[LIMIT_PAGES] == 0 or pages <= stats[LIMIT_PAGES]


@njit
def zram_write_obj(
    st: PoolState,
    handle: np.ndarray,
    flags: np.ndarray,
    stats: np.ndarray,
    bd_map: np.ndarray,
    index: int,
    comp_len: int,
    huge_class_size: int,
    data: np.ndarray,
) -> int:
    """Store one compressed (or huge) page at ``index``; 0 or -errno.

    Mirrors the non-same-filled part of zram_write_page() (6.18): a
    ``comp_len >= huge_class_size`` page takes the huge path
    (write_incompressible_page: a 4096-byte object holding the raw page).
    ``data`` holds the bytes to copy into the object (the raw page when huge,
    else ``comp_len`` compressed bytes); an empty array stores sizes only, for
    trace replay.  On -ENOMEM the old content stays, as in 6.18.
    """
    huge = comp_len >= huge_class_size
    size = PAGE_SIZE if huge else comp_len
    h = zs_malloc(st, size)
    if h <= 0:
        return h if h < 0 else -ENOMEM
    if not zram_can_store_page(st, stats):
        zs_free(st, h)
        return -ENOMEM
    if data.size > 0:
        zs_obj_write(st, h, data, size)
    zram_free_page(st, handle, flags, stats, bd_map, index)
    handle[index] = h
    f = (flags[index] & ~ZRAM_SIZE_MASK) | size
    if huge:
        f |= ZRAM_HUGE
        stats[HUGE_PAGES] += 1
        stats[HUGE_PAGES_SINCE] += 1
    flags[index] = f
    stats[COMPR_DATA_SIZE] += size
    stats[PAGES_STORED] += 1
    return 0


@njit
def zram_read_obj(
    st: PoolState, handle: np.ndarray, flags: np.ndarray, index: int, dst: np.ndarray
) -> int:
    """Copy a stored object's bytes into ``dst``; returns the object size."""
    size = flags[index] & ZRAM_SIZE_MASK
    zs_obj_read(st, handle[index], dst, size)
    return size


@njit
def zram_accessed(flags: np.ndarray, index: int) -> None:
    """Mirrors zram_accessed(): clear IDLE and PP_SLOT (no ac_time in this build)."""
    flags[index] &= ~(ZRAM_IDLE | ZRAM_PP_SLOT)


@njit
def zram_discard_range(
    st: PoolState,
    handle: np.ndarray,
    flags: np.ndarray,
    stats: np.ndarray,
    bd_map: np.ndarray,
    first: int,
    nr_pages: int,
) -> None:
    """Mirrors zram_bio_discard() for whole slots: free each, ``notify_free`` per slot.

    notify_free counts every covered slot, even an empty one.
    """
    for index in range(first, first + nr_pages):
        zram_free_page(st, handle, flags, stats, bd_map, index)
        stats[NOTIFY_FREE] += 1
