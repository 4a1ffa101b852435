"""Page frames: ``struct page``, the physical-memory arena and an order-0 page allocator.

Mirrors ``struct page`` (include/linux/mm_types.h), the PG_* bits
(include/linux/page-flags.h) and the order-0 path of the buddy allocator
(``alloc_pages`` / ``__free_page``) of Linux 6.18 on x86_64, as far as zsmalloc sees
them.  One arena buffer holds ``nr_frames`` real pages of ``page_size`` bytes; page
frame number ``pfn`` is bytes ``pfn * page_size ...`` of it.  ``mem_map[pfn]`` is that
page's 64-byte ``struct page`` record, a numpy structured array with the kernel's
offsets (spec §9.1), checked at import.

Why this shape:

* The arena and ``mem_map`` are anonymous ``mmap``s: the kernel only backs what is
  touched, so a pool sized for gigabytes costs RSS only for the pages it has used.
* Address space is reserved lazily: ``nr_frames`` frames exist now, and the pool
  replaces the arrays by larger copies (:func:`zsmalloc.zs.state.grow_pool_state`)
  when they run out, up to ``max_frames``.  A refused reservation (``ulimit -v``,
  strict overcommit) only means a smaller start.  The physical memory zsmalloc
  allocates from in the kernel simply exists; here it has to be reserved first.
  The allocator hands out never-used frames in ascending pfn order (a high-water
  mark) and recycles freed frames LIFO, like the per-cpu page lists.
* pfn 0 is never handed out, so 0 can mean NULL in the pointer-sized fields that
  zsmalloc stores pfns and zspage ids in (``next``, ``private``).
* Hot code runs under numba: it takes :class:`MemMap`, a named tuple of per-field views
  (``mem_map["flags"]`` ...), never whole records.

Field table (x86_64, 6.18, MEMCG=y, no KMSAN, last_cpupid in flags)::

    off size  struct page          zsmalloc use
      0    8  flags                PG_locked, PG_movable_ops(=uptodate), PG_private,
                                   PG_movable_ops_isolated(=reclaim)
      8   16  lru                  migration core's isolation lists (unused here)
     24    8  mapping              must stay NULL (6.17+)
     32    8  __folio_index        zpdesc next / handle
     40    8  private              zpdesc zspage
     48    4  page_type            0xF6 << 24 | first_obj_offset
     52    4  _refcount            1 while a zspage owns the page
     56    8  memcg_data           must stay 0 (not overlaid)

The free-time checks of the kernel (``PAGE_FLAGS_CHECK_AT_FREE``, ``mapping`` and
``memcg_data`` NULL) are made by :func:`free_page`; a failure is a bug in the caller.
The kernel's ``bad_page()`` reports it, taints and leaks the page; here the page is
leaked too, counted in ``bad_pages``, and the call returns ``-EBUG``.

``EBUG`` (``-EUCLEAN``, "structure needs cleaning") is the one return code of the
numba layer for a broken invariant, where the kernel would BUG_ON or report a bad page:
every caller passes it up, and the Python API turns it into
:class:`~zsmalloc.errors.InvariantError`, never into a user error.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from zsmalloc.layout import Field, Layout, check_struct
from zsmalloc.mm.hotpath import as_i64, bytes_copy, hot_njit

# ---- PG_* bit numbers (mainline 6.18, spec §9.1; Android shifts PG_private to 15) ------
PG_locked = 0
PG_uptodate = 3
PG_private = 14
PG_reclaim = 16
PG_movable_ops = PG_uptodate  # 6.17+: a movable_ops page reuses the uptodate bit
PG_movable_ops_isolated = PG_reclaim  # set only by the migration core
PAGE_FLAGS_CHECK_AT_FREE = (1 << PG_locked) | (1 << PG_private)  # the bits zsmalloc touches

EBUG = errno.EUCLEAN  # -EBUG: a broken invariant (BUG_ON, bad_page) in the numba layer

# ---- page_type --------------------------------------------------------------------------
PAGE_TYPE_UNTYPED = 0xFFFFFFFF  # UINT_MAX == _mapcount -1: what the buddy allocator leaves
PGTY_zsmalloc = 0xF6
PAGE_TYPE_SHIFT = 24

STRUCT_PAGE = Layout(
    "struct page",
    size=64,
    fields=(
        Field("flags", "memdesc_flags_t", "u8", 0, "PG_* bits"),
        Field("lru", "struct list_head", "V16", 8, "buddy/pcp/isolation list link"),
        Field("mapping", "struct address_space *", "u8", 24, "NULL for zsmalloc pages (6.17+)"),
        Field("__folio_index", "pgoff_t", "u8", 32, "page-cache index; zpdesc next/handle"),
        Field("private", "unsigned long", "u8", 40, "owner data; zpdesc zspage"),
        Field("page_type", "unsigned int", "u4", 48, "PGTY_* << 24 | type data (_mapcount)"),
        Field("_refcount", "atomic_t", "i4", 52, "reference count"),
        Field("memcg_data", "unsigned long", "u8", 56, "memcg ownership; 0 for zsmalloc"),
    ),
    doc="struct page, x86_64, 6.18 (spec §9.1)",
)
check_struct(STRUCT_PAGE)  # our static_assert: declared offsets == dtype offsets
PAGE_DTYPE = STRUCT_PAGE.dtype


# MAP_NORESERVE: no commit charge for what is never touched, so a large reservation is
# not refused by the overcommit heuristic (it still counts against ``ulimit -v``).
_ANON_FLAGS = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_NORESERVE", 0)
_MADV_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)


def anon_zeros(count: int, dtype: npt.DTypeLike, *, huge: bool = False) -> np.ndarray:
    """A zero-filled array in its own anonymous mapping: untouched pages cost no RSS.

    ``huge`` asks for transparent huge pages (``MADV_HUGEPAGE``), for the arena and
    mem_map: both are touched from their start upwards (frames are handed out in pfn
    order), so at most one 2 MiB page is partly unused, and the allocator's random
    accesses into hundreds of megabytes stop missing the TLB (bench/replay.py: a third
    fewer cycles).  The other tables keep 4 KiB pages.
    Raises OSError (ENOMEM) or MemoryError when the host refuses the reservation.
    """
    dt = np.dtype(dtype)
    nbytes = max(1, count * dt.itemsize)
    buf = mmap.mmap(-1, nbytes, flags=_ANON_FLAGS)
    if huge and _MADV_HUGEPAGE is not None:
        with contextlib.suppress(OSError):  # THP not built in, or refused: 4 KiB pages
            buf.madvise(_MADV_HUGEPAGE)
    return np.frombuffer(buf, dtype=np.uint8, count=count * dt.itemsize).view(dt)


class MemMap(NamedTuple):
    """Physical memory as numba sees it: the arena, field views of ``mem_map``, the free lists.

    ``flags`` .. ``memcg_data`` are ``struct page`` field views (strided over the
    64-byte records); ``zp_*`` are the ``struct zpdesc`` views of the same bytes
    (mm/zpdesc.py) - zsmalloc code uses only those.
    """

    page_size: int
    page_shift: int
    arena: np.ndarray  # uint8[nr_frames * page_size]: the page frames
    arena64: np.ndarray  # int64 view of the arena: 8-byte words (free links, headers)
    flags: np.ndarray
    mapping: np.ndarray
    refcount: np.ndarray
    page_type: np.ndarray
    memcg_data: np.ndarray
    zp_flags: np.ndarray  # zpdesc.flags
    zp_next: np.ndarray  # zpdesc.next (pfn, 0 = NULL); same word as zp_handle
    zp_handle: np.ndarray  # zpdesc.handle (handle | OBJ_ALLOCATED_TAG of a huge object)
    zp_zspage: np.ndarray  # zpdesc.zspage (zspage id, 0 = NULL)
    zp_first_obj_offset: np.ndarray  # zpdesc.first_obj_offset (whole page_type word)
    zp_refcount: np.ndarray  # zpdesc._refcount
    free_stack: np.ndarray  # int32[nr_frames]: freed pfns, LIFO
    vars: np.recarray  # one MM_VARS_DTYPE record: the page allocator's counters


MM_VARS_DTYPE = np.dtype(
    [
        ("nr_free", np.int64),  # depth of free_stack
        ("hwm", np.int64),  # next never-used pfn
        ("nr_frames", np.int64),  # frames reserved now (array lengths), pfn 0 included
        ("max_frames", np.int64),  # the most nr_frames may grow to (the arena's limit)
        ("nr_zspages", np.int64),  # vmstat NR_ZSPAGES
        ("nr_used", np.int64),  # pages currently allocated (any owner)
        ("bad_pages", np.int64),  # frames bad_page() refused to free (a bug; leaked)
    ]
)
"""``MemMap.vars``: hot code reads ``v = mm.vars[0]; v.hwm``, a record field, as fast as
an array slot (numba compiles a record access to one load)."""


@hot_njit
def page_address(mm: MemMap, pfn: int) -> int:
    """Byte offset of page ``pfn`` in the arena (the kernel's page_address/kmap)."""
    return pfn << mm.page_shift


@hot_njit
def memcpy(dst: np.ndarray, dst_off: int, src: np.ndarray, src_off: int, n: int) -> None:
    """Copy ``n`` bytes (the kernel's memcpy/copy_page) between uint8 arrays."""
    bytes_copy(dst, dst_off, src, src_off, n)


@hot_njit
def alloc_page(mm: MemMap) -> int:
    """Allocate one order-0 page: its pfn, or -1 when the arena is exhausted.

    Mirrors alloc_pages(gfp, 0) as seen by the caller: a recently freed frame first
    (LIFO), else the next never-used one; ``_refcount`` 1, no flags, untyped.
    The contents are whatever the frame held (the kernel does not zero them either).
    -1 also when the reserved frames are used up below ``max_frames``: the caller
    returns -ENOMEM with nothing changed and the pool grows and retries.
    """
    v = mm.vars[0]
    if v.nr_free > 0:
        v.nr_free -= 1
        pfn = as_i64(mm.free_stack[v.nr_free])
    elif v.hwm < v.nr_frames:
        pfn = v.hwm
        v.hwm += 1
    else:
        return -1
    mm.flags[pfn] = np.uint64(0)
    mm.page_type[pfn] = np.uint32(PAGE_TYPE_UNTYPED)
    mm.refcount[pfn] = 1
    v.nr_used += 1
    return pfn


@hot_njit
def free_page(mm: MemMap, pfn: int) -> int:
    """Return a page whose last reference is gone to the allocator; 0 or -EBUG.

    Mirrors the free-time checks of free_pages_prepare(): PG_locked and PG_private
    clear, ``mapping`` and ``memcg_data`` NULL, else bad_page() (the frame is leaked).
    Resets ``page_type`` to untyped and clears flags (PG_movable_ops goes with them),
    as the buddy does.
    """
    bad = (mm.flags[pfn] & np.uint64(PAGE_FLAGS_CHECK_AT_FREE)) != np.uint64(0)
    if bad or mm.mapping[pfn] != np.uint64(0) or mm.memcg_data[pfn] != np.uint64(0):
        mm.vars[0].bad_pages += 1
        return -EBUG
    mm.flags[pfn] = np.uint64(0)
    mm.page_type[pfn] = np.uint32(PAGE_TYPE_UNTYPED)
    mm.refcount[pfn] = 0
    v = mm.vars[0]
    mm.free_stack[v.nr_free] = pfn
    v.nr_free += 1
    v.nr_used -= 1
    return 0


@hot_njit
def get_page(mm: MemMap, pfn: int) -> None:
    """Take a reference (folio_get)."""
    mm.refcount[pfn] += 1


@hot_njit
def put_page(mm: MemMap, pfn: int) -> int:
    """Drop a reference (folio_put); the last one frees the page.  0 or -EBUG."""
    mm.refcount[pfn] -= 1
    if mm.refcount[pfn] == 0:
        return free_page(mm, pfn)
    return 0


@hot_njit
def page_flag_test(mm: MemMap, pfn: int, bit: int) -> bool:
    """Is PG_<bit> set on page ``pfn``?"""
    return (mm.flags[pfn] >> np.uint64(bit)) & np.uint64(1) != np.uint64(0)


@hot_njit
def page_flag_set(mm: MemMap, pfn: int, bit: int) -> None:
    """Set PG_<bit> (the non-atomic __SetPage* form is fine: we are single-threaded)."""
    mm.flags[pfn] = mm.flags[pfn] | (np.uint64(1) << np.uint64(bit))


@hot_njit
def page_flag_clear(mm: MemMap, pfn: int, bit: int) -> None:
    """Clear PG_<bit>."""
    mm.flags[pfn] = mm.flags[pfn] & ~(np.uint64(1) << np.uint64(bit))


@hot_njit
def page_has_type(mm: MemMap, pfn: int, pgty: int) -> bool:
    """PageZsmalloc() and friends: is the top byte of ``page_type`` ``pgty``?"""
    return (as_i64(mm.page_type[pfn]) >> PAGE_TYPE_SHIFT) == pgty


@hot_njit
def pfn_valid(mm: MemMap, pfn: int) -> bool:
    """Is ``pfn`` a frame the allocator has ever handed out (and not the reserved 0)?"""
    return 1 <= pfn < mm.vars[0].hwm


@hot_njit
def nr_free_pages(mm: MemMap) -> int:
    """Order-0 pages the reserved frames can still hand out (growth may add more)."""
    v = mm.vars[0]
    return v.nr_free + v.nr_frames - v.hwm


@hot_njit
def mod_zspages_stat(mm: MemMap, delta: int) -> None:
    """vmstat NR_ZSPAGES += delta (inc/dec_zone_page_state; the arena is one zone)."""
    mm.vars[0].nr_zspages += delta
