"""``struct zpdesc``: zsmalloc's view of a page descriptor, overlaid on ``struct page``.

Mirrors mm/zpdesc.h (6.18, "zsmalloc pool memory descriptor") and the zpdesc helpers
defined in mm/zsmalloc.c.  A zpdesc *is* the ``struct page`` of the frame, read
through different field names: the same 64-byte record of ``mem_map``, viewed with a
second numpy dtype.  The casts ``zpdesc_page`` / ``page_zpdesc`` are therefore the
identity on the pfn, and ``zpdesc_pfn`` / ``pfn_zpdesc`` likewise.

Field table (each alias checked at import, as ZPDESC_MATCH does)::

    off size  struct zpdesc       aliases struct page   meaning
      0    8  flags               flags                 PG_private = first page of a zspage,
                                                        PG_locked, PG_movable_ops(_isolated)
      8   16  lru                 lru                   migration core's lists only
     24    8  movable_ops         mapping               unused since 6.17, must stay NULL
     32    8  next                __folio_index         next page of the chain (pfn; 0=NULL)
     32    8  handle              __folio_index         huge zspage: handle | 1, or 0 if free
     40    8  zspage              private               owning zspage id (0 = NULL)
     48    4  first_obj_offset    page_type             PGTY_zsmalloc << 24 | offset (24 bits)
     52    4  _refcount           _refcount             1 while owned by a zspage

``sizeof(struct zpdesc)`` is 56: it never grows into ``memcg_data`` (zsmalloc pages
are not memcg-charged and a non-zero memcg_data is a bad page at free).

Where we differ from C: pointers are stored as numbers - ``next`` holds a pfn,
``zspage`` a zspage table id - with 0 as NULL (pfn 0 is never allocated).  They are
declared signed (``i8``) so numba arithmetic on them stays integral; the alias check
compares offsets and widths, which is what the C asserts compare.

Only the helpers below touch zpdesc fields; ``first_obj_offset`` in particular is read
and written only through :func:`get_first_obj_offset` / :func:`set_first_obj_offset`,
which apply the 24-bit mask and keep the PGTY_zsmalloc byte.
"""

from __future__ import annotations

import numpy as np

from zsmalloc.errors import InvariantError, LayoutError
from zsmalloc.layout import Field, Layout, check_overlay
from zsmalloc.mm.hotpath import as_i64, hot_njit
from zsmalloc.mm.page import (
    MM_VARS_DTYPE,
    PAGE_DTYPE,
    PAGE_TYPE_SHIFT,
    PAGE_TYPE_UNTYPED,
    STRUCT_PAGE,
    MemMap,
    PG_locked,
    PG_movable_ops,
    PG_movable_ops_isolated,
    PG_private,
    PGTY_zsmalloc,
    anon_zeros,
    get_page,
    mod_zspages_stat,
    page_address,
    page_flag_clear,
    page_flag_set,
    page_flag_test,
    page_has_type,
    put_page,
)
from zsmalloc.profile import DEFAULT_PROFILE

FIRST_OBJ_PAGE_TYPE_MASK = 0xFFFFFF  # low 24 bits of page_type
ZS_PAGE_TYPE = PGTY_zsmalloc << PAGE_TYPE_SHIFT  # 0xF6000000

STRUCT_ZPDESC = Layout(
    "struct zpdesc",
    size=56,
    base=STRUCT_PAGE,
    fields=(
        Field("flags", "unsigned long", "u8", 0, "PG_private/PG_locked/PG_movable_ops", "flags"),
        Field("lru", "struct list_head", "V16", 8, "migration core's lists", "lru"),
        Field("movable_ops", "unsigned long", "u8", 24, "unused (6.17+), NULL", "mapping"),
        Field("next", "struct zpdesc *", "i8", 32, "next page of the zspage", "__folio_index"),
        Field("handle", "unsigned long", "i8", 32, "huge: handle | 1", "__folio_index"),
        Field("zspage", "struct zspage *", "i8", 40, "owning zspage", "private"),
        Field("first_obj_offset", "unsigned int", "u4", 48, "24-bit offset", "page_type"),
        Field("_refcount", "atomic_t", "i4", 52, "reference count", "_refcount"),
    ),
    doc="struct zpdesc, mm/zpdesc.h 6.18",
)


def check_zpdesc_layout(zpdesc: Layout = STRUCT_ZPDESC) -> None:
    """ZPDESC_MATCH for every field, sizeof(zpdesc) <= sizeof(page), memcg_data untouched."""
    check_overlay(zpdesc, forbidden=("memcg_data",))
    if zpdesc.dtype.itemsize != zpdesc.base.dtype.itemsize:  # type: ignore[union-attr]
        raise LayoutError("struct zpdesc records must have the struct page stride")


check_zpdesc_layout()  # import-time static_assert
ZPDESC_DTYPE = STRUCT_ZPDESC.dtype


# ---- casts (zero cost: a zpdesc is its struct page) -----------------------------------
@hot_njit
def zpdesc_page(zpdesc: int) -> int:
    """The struct page of a zpdesc: the same frame."""
    return zpdesc



def mem_map_view(
    mem_map: np.ndarray, arena: np.ndarray, free_stack: np.ndarray, vars_: np.recarray,
    page_size: int,
) -> MemMap:
    """The :class:`MemMap` numba view of ``mem_map`` (structured records) and its arrays.

    Lives here, not in :mod:`zsmalloc.mm.page`, because the view includes the zpdesc
    overlay: page frames know nothing of their users, zpdesc knows the page.
    """
    zp = mem_map.view(ZPDESC_DTYPE)
    return MemMap(
        page_size=page_size,
        page_shift=page_size.bit_length() - 1,
        arena=arena,
        arena64=arena.view(np.int64),
        flags=mem_map["flags"],
        mapping=mem_map["mapping"],
        refcount=mem_map["_refcount"],
        page_type=mem_map["page_type"],
        memcg_data=mem_map["memcg_data"],
        zp_flags=zp["flags"],
        zp_next=zp["next"],
        zp_handle=zp["handle"],
        zp_zspage=zp["zspage"],
        zp_first_obj_offset=zp["first_obj_offset"],
        zp_refcount=zp["_refcount"],
        free_stack=free_stack,
        vars=vars_,
    )


MAX_FRAMES = 2**31 - 1
"""Frames an arena may ever have, pfn 0 included: pfns are kept in 32 bits (8 TiB of
4 KiB pages; MAX_POSSIBLE_PHYSMEM_BITS allows at most 2^40 bytes anyway)."""


def new_mem_map(
    nr_frames: int, page_size: int = DEFAULT_PROFILE.page_size, max_frames: int | None = None
) -> tuple[np.ndarray, MemMap]:
    """Create ``mem_map`` (structured records) and the :class:`MemMap` numba view of it.

    ``nr_frames`` frames are reserved now (pfn 0, which is never handed out, included);
    :func:`grow_mem_map` may later raise that to ``max_frames`` (default: no growth).
    Raises OSError or MemoryError when the host refuses the reservation.
    """
    if max_frames is None:
        max_frames = nr_frames
    if not 2 <= nr_frames <= max_frames <= MAX_FRAMES:
        raise InvariantError(
            f"frames: expected 2 <= nr_frames {nr_frames} <= max_frames {max_frames} "
            f"<= {MAX_FRAMES}"
        )
    mem_map = anon_zeros(nr_frames, PAGE_DTYPE, huge=True)
    arena = anon_zeros(nr_frames * page_size, np.uint8, huge=True)
    free_stack = anon_zeros(nr_frames, np.int32)
    vars_ = np.zeros(1, MM_VARS_DTYPE).view(np.recarray)
    vars_[0].hwm = 1  # pfn 0 is never handed out: 0 means NULL
    vars_[0].nr_frames = nr_frames
    vars_[0].max_frames = max_frames
    return mem_map, mem_map_view(mem_map, arena, free_stack, vars_, page_size)


def grow_mem_map(mem_map: np.ndarray, mm: MemMap, nr_frames: int) -> tuple[np.ndarray, MemMap]:
    """Larger copies of the arena, ``mem_map``, the free stack and the counters.

    Only the used part is copied (frames below the high-water mark, the free stack's
    depth): the rest of each new mapping stays untouched, costing no RSS.  The old
    view is left as it was, so a stale holder of it works on a detached copy rather
    than past the end of an array.  Raises OSError or MemoryError when the host
    refuses the reservation.
    """
    v = mm.vars[0]
    if not v.nr_frames < nr_frames <= v.max_frames:
        raise InvariantError(
            f"grow_mem_map: {nr_frames} frames is not above {v.nr_frames} and within "
            f"{v.max_frames}"
        )
    page_size = mm.page_size
    new_map = anon_zeros(nr_frames, PAGE_DTYPE, huge=True)
    arena = anon_zeros(nr_frames * page_size, np.uint8, huge=True)
    free_stack = anon_zeros(nr_frames, np.int32)
    hwm, depth = int(v.hwm), int(v.nr_free)
    new_map[:hwm] = mem_map[:hwm]
    arena[: hwm * page_size] = mm.arena[: hwm * page_size]
    free_stack[:depth] = mm.free_stack[:depth]
    vars_ = mm.vars.copy()
    vars_[0].nr_frames = nr_frames
    return new_map, mem_map_view(new_map, arena, free_stack, vars_, page_size)


@hot_njit
def page_zpdesc(page: int) -> int:
    """The zpdesc of a struct page: the same frame."""
    return page


@hot_njit
def zpdesc_pfn(zpdesc: int) -> int:
    """Page frame number of a zpdesc."""
    return zpdesc


@hot_njit
def pfn_zpdesc(pfn: int) -> int:
    """The zpdesc of page frame ``pfn``."""
    return pfn


@hot_njit
def kmap_local_zpdesc(mm: MemMap, zpdesc: int) -> int:
    """Map the page: its byte offset in the arena (every page is always mapped here)."""
    return page_address(mm, zpdesc)


# ---- lock, refcount, flags --------------------------------------------------------------
@hot_njit
def zpdesc_trylock(mm: MemMap, zpdesc: int) -> bool:
    """folio_trylock(): take PG_locked if free."""
    if page_flag_test(mm, zpdesc, PG_locked):
        return False
    page_flag_set(mm, zpdesc, PG_locked)
    return True


@hot_njit
def zpdesc_lock(mm: MemMap, zpdesc: int) -> None:
    """folio_lock(); single-threaded, so it never waits."""
    page_flag_set(mm, zpdesc, PG_locked)


@hot_njit
def zpdesc_unlock(mm: MemMap, zpdesc: int) -> None:
    """folio_unlock()."""
    page_flag_clear(mm, zpdesc, PG_locked)


@hot_njit
def zpdesc_is_locked(mm: MemMap, zpdesc: int) -> bool:
    """folio_test_locked()."""
    return page_flag_test(mm, zpdesc, PG_locked)


@hot_njit
def zpdesc_get(mm: MemMap, zpdesc: int) -> None:
    """folio_get()."""
    get_page(mm, zpdesc)


@hot_njit
def zpdesc_ref_count(mm: MemMap, zpdesc: int) -> int:
    """folio_ref_count()."""
    return as_i64(mm.zp_refcount[zpdesc])


@hot_njit
def zpdesc_wait_locked(mm: MemMap, zpdesc: int) -> None:
    """folio_wait_locked(): single-threaded, a held lock would never be released: no-op."""


@hot_njit
def zpdesc_put(mm: MemMap, zpdesc: int) -> int:
    """folio_put(): the last reference frees the page (0, or -EBUG for a bad page)."""
    return put_page(mm, zpdesc)


@hot_njit
def zpdesc_set_first(mm: MemMap, zpdesc: int) -> None:
    """Mark the first page of a zspage (SetPagePrivate)."""
    page_flag_set(mm, zpdesc, PG_private)


@hot_njit
def is_first_zpdesc(mm: MemMap, zpdesc: int) -> bool:
    """Is this the first page of its zspage (PagePrivate)?"""
    return page_flag_test(mm, zpdesc, PG_private)


@hot_njit
def __zpdesc_set_movable(mm: MemMap, zpdesc: int) -> None:
    """Set PG_movable_ops: the page may be migrated through zsmalloc's movable ops."""
    page_flag_set(mm, zpdesc, PG_movable_ops)


@hot_njit
def zpdesc_is_movable(mm: MemMap, zpdesc: int) -> bool:
    """Has PG_movable_ops (the migration core's candidate test, with PageZsmalloc)."""
    return page_flag_test(mm, zpdesc, PG_movable_ops)


@hot_njit
def zpdesc_is_isolated(mm: MemMap, zpdesc: int) -> bool:
    """Is PG_movable_ops_isolated set (the core isolated it for migration)?"""
    return page_flag_test(mm, zpdesc, PG_movable_ops_isolated)


@hot_njit
def zpdesc_set_isolated(mm: MemMap, zpdesc: int, isolated: bool) -> None:
    """Set or clear PG_movable_ops_isolated (migration core only)."""
    if isolated:
        page_flag_set(mm, zpdesc, PG_movable_ops_isolated)
    else:
        page_flag_clear(mm, zpdesc, PG_movable_ops_isolated)


@hot_njit
def __zpdesc_set_zsmalloc(mm: MemMap, zpdesc: int) -> bool:
    """__SetPageZsmalloc(): an untyped page becomes PGTY_zsmalloc (offset 0).  False if typed."""
    if mm.zp_first_obj_offset[zpdesc] != np.uint32(PAGE_TYPE_UNTYPED):
        return False
    mm.zp_first_obj_offset[zpdesc] = np.uint32(ZS_PAGE_TYPE)
    return True


@hot_njit
def __zpdesc_clear_zsmalloc(mm: MemMap, zpdesc: int) -> None:
    """__ClearPageZsmalloc(): back to untyped (6.14-6.16; 6.18 leaves it to the buddy)."""
    mm.zp_first_obj_offset[zpdesc] = np.uint32(PAGE_TYPE_UNTYPED)


@hot_njit
def zpdesc_is_zsmalloc(mm: MemMap, zpdesc: int) -> bool:
    """PageZsmalloc()."""
    return page_has_type(mm, zpdesc, PGTY_zsmalloc)


@hot_njit
def zpdesc_zone(mm: MemMap, zpdesc: int) -> int:
    """page_zone(): the arena is one zone (ZONE_NORMAL of node 0), numbered 0."""
    return 0


# ---- zsmalloc's own fields ----------------------------------------------------------------
@hot_njit
def get_first_obj_offset(mm: MemMap, zpdesc: int) -> int:
    """Offset of the first object starting in this page (low 24 bits of page_type)."""
    return as_i64(mm.zp_first_obj_offset[zpdesc]) & FIRST_OBJ_PAGE_TYPE_MASK


@hot_njit
def set_first_obj_offset(mm: MemMap, zpdesc: int, offset: int) -> None:
    """Store ``offset`` in the low 24 bits of page_type, keeping the PGTY byte."""
    word = as_i64(mm.zp_first_obj_offset[zpdesc])
    word = (word & ~FIRST_OBJ_PAGE_TYPE_MASK) | (offset & FIRST_OBJ_PAGE_TYPE_MASK)
    mm.zp_first_obj_offset[zpdesc] = np.uint32(word)


@hot_njit
def get_next_zpdesc_raw(mm: MemMap, zpdesc: int) -> int:
    """zpdesc->next as stored (the caller knows the zspage is not huge)."""
    return mm.zp_next[zpdesc]


@hot_njit
def set_zpdesc_next(mm: MemMap, zpdesc: int, next_zpdesc: int) -> None:
    """zpdesc->next = next_zpdesc (0 = NULL); also clears a huge page's handle word."""
    mm.zp_next[zpdesc] = next_zpdesc


@hot_njit
def get_zpdesc_handle(mm: MemMap, zpdesc: int) -> int:
    """zpdesc->handle: handle | OBJ_ALLOCATED_TAG of a huge zspage's object, or 0."""
    return mm.zp_handle[zpdesc]


@hot_njit
def set_zpdesc_handle(mm: MemMap, zpdesc: int, handle: int) -> None:
    """zpdesc->handle = handle."""
    mm.zp_handle[zpdesc] = handle


@hot_njit
def get_zpdesc_zspage(mm: MemMap, zpdesc: int) -> int:
    """zpdesc->zspage: the owning zspage id, 0 if none."""
    return mm.zp_zspage[zpdesc]


@hot_njit
def set_zpdesc_zspage(mm: MemMap, zpdesc: int, zspage: int) -> None:
    """zpdesc->zspage = zspage."""
    mm.zp_zspage[zpdesc] = zspage


@hot_njit
def reset_zpdesc(mm: MemMap, zpdesc: int) -> None:
    """Mirrors reset_zpdesc() in mm/zsmalloc.c (6.18): clear PG_private, zspage, next.

    page_type stays PGTY_zsmalloc (6.18: sticky until the buddy allocator frees it).
    """
    page_flag_clear(mm, zpdesc, PG_private)
    mm.zp_zspage[zpdesc] = 0
    mm.zp_next[zpdesc] = 0


@hot_njit
def zpdesc_inc_zone_page_state(mm: MemMap, zpdesc: int) -> None:
    """NR_ZSPAGES += 1 for the page's zone (one zone here)."""
    mod_zspages_stat(mm, 1)


@hot_njit
def zpdesc_dec_zone_page_state(mm: MemMap, zpdesc: int) -> None:
    """NR_ZSPAGES -= 1 for the page's zone (one zone here)."""
    mod_zspages_stat(mm, -1)
