"""The allocator's numba-level API: zs_malloc, zs_free, object access, compaction, totals.

Mirrors zs_malloc(), obj_malloc(), zs_free(), obj_free(), find_get_zspage(),
zs_obj_read_begin()/zs_obj_read_end(), zs_obj_write() and zs_get_total_pages() in
mm/zsmalloc.c (6.18); compaction lives in :mod:`zsmalloc.zs.compact` and page migration
in :mod:`zsmalloc.zs.migrate`, re-exported here.  A 6.1 pool
(:class:`~zsmalloc.zs.state.PoolState61`) runs the same functions, with 6.1's
find_get_zspage() and, below them, its fullness groups and list insertion
(:mod:`zsmalloc.zs.zspage`) and compaction (:mod:`zsmalloc.zs.compact_61`).

Every function is ``@njit`` and takes the pool state ``st`` (a
:class:`~zsmalloc.zs.state.PoolState`, obtained as ``Pool.state``), so other numba
code (zram, zswap) calls the allocator with no Python in between.  Errors come back as
negative errno values; a call that fails on bad input has changed nothing.  Any call
may instead return ``-EBUG`` (:data:`zsmalloc.mm.page.EBUG`): the pool's structures are
broken, a bug in this package (the kernel would BUG_ON); callers pass it up and the
Python layer raises :class:`~zsmalloc.errors.InvariantError`.

Public API (stable; other modules code against these names)::

    zs_malloc(st, size) -> handle > 0, or -EINVAL (size 0), -ENOSPC (size > PAGE_SIZE),
                           -ENOMEM (arena, zspage or handle table exhausted)
    zs_free(st, handle) -> 0, or -EINVAL for a freed, forged or never-allocated handle
    zs_malloc_inline, zs_free_inline: the same two, inlined into a caller that is itself
                           compiled without NRT (hot_njit): no call, no copy of the state
    zs_obj_write(st, handle, src, length) -> 0 / -EINVAL: copy src[:length] into the object
    zs_obj_read(st, handle, dst, length) -> 0 / -EINVAL: copy the object's first length
                           bytes into dst[:length]
    zs_obj_capacity(st, handle) -> bytes the object can hold (class size - 8; 4096 if
                           huge), or -EINVAL
    zs_get_total_pages(st) -> pool->pages_allocated
    zs_compact(st) -> pages freed by this compaction (also added to pages_compacted)
    zs_pages_compacted(st) -> pool->stats.pages_compacted
    zs_can_compact_total(st) -> the shrinker's count: sum of zs_can_compact over classes
    zs_shrinker_scan(st) -> zs_compact(st) (the shrinker's scan callback)
    zs_huge_class_size(st) -> requests of at least this many bytes are stored huge
    zs_page_migrate_pfn(st, pfn) -> new pfn, or -errno (isolate, migrate, putback)

Reads and writes work on objects that straddle two pages.  A length larger than the
object's capacity (the slot size less the 8-byte handle header, or the whole page of a
huge object) is refused: the kernel would silently run into the next object.
"""

from __future__ import annotations

from errno import EINVAL, ENOMEM

import numpy as np

from zsmalloc.mm.hotpath import hot_inline, hot_njit
from zsmalloc.mm.page import EBUG, memcpy, pfn_valid
from zsmalloc.mm.zpdesc import kmap_local_zpdesc
from zsmalloc.profile import ZS_HANDLE_SIZE
from zsmalloc.zs.compact import (
    zs_can_compact_total,
    zs_compact,
    zs_pages_compacted,
    zs_shrinker_scan,
)
from zsmalloc.zs.handle import (
    cache_alloc_handle,
    cache_free_handle,
    handle_is_live,
    handle_to_obj,
    obj_to_obj_idx,
    obj_to_pfn,
)
from zsmalloc.zs.migrate import zs_page_migrate_pfn
from zsmalloc.zs.obj import obj_free, obj_malloc
from zsmalloc.zs.size_class import (
    ZS_ALMOST_FULL,
    ZS_EMPTY,
    ZS_INUSE_RATIO_0,
    ZS_INUSE_RATIO_99,
    size_class_index,
)
from zsmalloc.zs.state import (
    ZS_OBJS_ALLOCATED,
    ZS_OBJS_INUSE,
    PoolState,
    fullness_4_groups,
)
from zsmalloc.zs.zspage import (
    SetZsPageMovable,
    ZsHugePage,
    alloc_zspage,
    can_alloc_zspage,
    class_stat_add,
    class_stat_sub,
    fix_fullness_group,
    free_zspage,
    get_fullness_group,
    get_next_zpdesc,
    get_zspage,
    insert_zspage,
    zspage_class,
)

__all__ = [
    "obj_free",
    "obj_malloc",
    "zs_can_compact_total",
    "zs_compact",
    "zs_free",
    "zs_free_inline",
    "zs_get_total_pages",
    "zs_huge_class_size",
    "zs_malloc",
    "zs_malloc_inline",
    "zs_obj_capacity",
    "zs_obj_read",
    "zs_obj_write",
    "zs_page_migrate_pfn",
    "zs_pages_compacted",
    "zs_shrinker_scan",
]


@hot_njit
def get_size_class_index(st: PoolState, size: int) -> int:
    """Mirrors get_size_class_index(): the size_class[] index for a slot of ``size``."""
    v = st.vars[0]
    return size_class_index(size, v.min_alloc_size, v.size_class_delta, st.class_size.shape[0])


@hot_njit
def find_get_zspage(st: PoolState, cls: int) -> int:
    """Mirrors find_get_zspage(): the head of groups 99 % down to 0 %; never the full group."""
    if fullness_4_groups(st):
        return find_get_zspage_61(st, cls)
    for fg in range(ZS_INUSE_RATIO_99, ZS_INUSE_RATIO_0 - 1, -1):
        zspage = st.fullness_head[cls, fg]
        if zspage != 0:
            return zspage
    return 0


@hot_njit
def find_get_zspage_61(st: PoolState, cls: int) -> int:
    """Mirrors find_get_zspage() (6.1): the head of ALMOST_FULL, then ALMOST_EMPTY, then EMPTY.

    The same idea with four coarse groups: any almost-full zspage before any almost-empty
    one, whatever their exact fill.
    """
    for fg in range(ZS_ALMOST_FULL, ZS_EMPTY - 1, -1):
        zspage = st.fullness_head[cls, fg]
        if zspage != 0:
            return zspage
    return 0


@hot_njit
def zs_malloc(st: PoolState, size: int) -> int:
    """Mirrors zs_malloc(): a handle, or -EINVAL / -ENOSPC / -ENOMEM (nothing changed)."""
    if size <= 0:
        return -EINVAL
    if size > st.vars[0].max_alloc_size:
        return -st.vars[0].oversize_errno  # -ENOSPC since 6.12
    # Always add the header before the lookup, even for objects that end up huge.
    cls = st.class_index[get_size_class_index(st, size + ZS_HANDLE_SIZE)]
    zspage = find_get_zspage(st, cls)
    # The kernel takes the handle first and gives it back if no zspage can be made;
    # checking first instead leaves a failed call with nothing changed.
    if zspage == 0 and not can_alloc_zspage(st, cls):
        return -ENOMEM
    handle = cache_alloc_handle(st)
    if handle == 0:
        return -ENOMEM
    if zspage != 0:
        obj_malloc(st, zspage, handle)
        fix_fullness_group(st, cls, zspage)
        class_stat_add(st, cls, ZS_OBJS_INUSE, 1)
        return handle
    zspage = alloc_zspage(st, cls)
    obj_malloc(st, zspage, handle)
    insert_zspage(st, cls, zspage, get_fullness_group(st, cls, zspage))
    st.vars[0].pages_allocated += st.class_ppz[cls]
    class_stat_add(st, cls, ZS_OBJS_ALLOCATED, st.class_objs[cls])
    class_stat_add(st, cls, ZS_OBJS_INUSE, 1)
    SetZsPageMovable(st, zspage)
    return handle


@hot_njit
def handle_zspage(st: PoolState, handle: int) -> int:
    """The zspage of a live handle; -EINVAL if the handle is not live (freed, forged).

    A live handle whose obj does not lead to a live zspage is a broken invariant: -EBUG.
    """
    if not handle_is_live(st, handle):
        return -EINVAL
    pfn = obj_to_pfn(st, handle_to_obj(st, handle))
    if not pfn_valid(st.mm, pfn):
        return -EBUG
    zspage = get_zspage(st, pfn)
    if zspage <= 0:
        return -EBUG
    return zspage


@hot_njit
def zs_free(st: PoolState, handle: int) -> int:
    """Mirrors zs_free(): 0, or -EINVAL for a handle that is not live (nothing changed).

    -EBUG when the pool's structures are found broken.
    """
    zspage = handle_zspage(st, handle)
    if zspage < 0:
        return zspage
    obj = handle_to_obj(st, handle)
    cls = zspage_class(st, zspage)
    class_stat_sub(st, cls, ZS_OBJS_INUSE, 1)
    err = obj_free(st, st.class_size[cls], obj)
    if err < 0:
        return err
    if fix_fullness_group(st, cls, zspage) == ZS_INUSE_RATIO_0:
        err = free_zspage(st, cls, zspage)
    cache_free_handle(st, handle)
    return err


@hot_njit
def zs_obj_capacity(st: PoolState, handle: int) -> int:
    """Bytes an object can hold: class size less the header, or the page if huge."""
    zspage = handle_zspage(st, handle)
    if zspage < 0:
        return zspage
    size = st.class_size[zspage_class(st, zspage)]
    return size if ZsHugePage(st, zspage) else size - ZS_HANDLE_SIZE


@hot_njit
def obj_span(st: PoolState, handle: int, length: int) -> tuple[int, int, int, int]:
    """Where an object's data lies: (arena offset 1, bytes there, arena offset 2, bytes there).

    Resolves the handle as zs_obj_read_begin()/zs_obj_write() do; the data starts
    ``hdr`` bytes into the slot (8, or 0 for huge) and continues at offset 0 of the next
    page of the chain when it crosses the page end.  (-errno, 0, 0, 0) on a bad handle
    or a length beyond the object.
    """
    zspage = handle_zspage(st, handle)
    if zspage < 0:
        return zspage, 0, 0, 0
    mm = st.mm
    cls = zspage_class(st, zspage)
    size = st.class_size[cls]
    hdr = 0 if ZsHugePage(st, zspage) else ZS_HANDLE_SIZE
    if length < 0 or length > size - hdr:
        return -EINVAL, 0, 0, 0
    obj = handle_to_obj(st, handle)
    zpdesc = obj_to_pfn(st, obj)
    off = ((size * obj_to_obj_idx(st, obj)) & (mm.page_size - 1)) + hdr
    first = min(length, mm.page_size - off)
    addr1 = kmap_local_zpdesc(mm, zpdesc) + off
    if first == length:
        return addr1, first, 0, 0
    nxt = get_next_zpdesc(st, zspage, zpdesc)
    return addr1, first, kmap_local_zpdesc(mm, nxt), length - first


@hot_njit
def zs_obj_write(st: PoolState, handle: int, src: np.ndarray, length: int) -> int:
    """Mirrors zs_obj_write(): copy ``src[:length]`` into the object (split at a page end)."""
    if length > src.shape[0]:
        return -EINVAL
    a1, n1, a2, n2 = obj_span(st, handle, length)
    if a1 < 0:
        return a1
    arena = st.mm.arena
    memcpy(arena, a1, src, 0, n1)
    memcpy(arena, a2, src, n1, n2)
    return 0


@hot_njit
def zs_obj_read(st: PoolState, handle: int, dst: np.ndarray, length: int) -> int:
    """zs_obj_read_begin() + copy + zs_obj_read_end(): the first ``length`` bytes into dst."""
    if length > dst.shape[0]:
        return -EINVAL
    a1, n1, a2, n2 = obj_span(st, handle, length)
    if a1 < 0:
        return a1
    arena = st.mm.arena
    memcpy(dst, 0, arena, a1, n1)
    memcpy(dst, n1, arena, a2, n2)
    return 0


@hot_njit
def zs_get_total_pages(st: PoolState) -> int:
    """Mirrors zs_get_total_pages(): pool->pages_allocated."""
    return st.vars[0].pages_allocated


@hot_njit
def zs_huge_class_size(st: PoolState) -> int:
    """Mirrors zs_huge_class_size(): requests of at least this size are stored huge."""
    return st.vars[0].huge_class_size


# zs_malloc and zs_free inlined into the caller (mm/hotpath.py, hot_inline): for loops
# compiled without NRT that call the allocator for every operation (bench/replay.py).
zs_malloc_inline = hot_inline(zs_malloc)
zs_free_inline = hot_inline(zs_free)
