"""Compaction and the shrinker.

Mirrors zs_compact(), __zs_compact(), isolate_src_zspage(), isolate_dst_zspage(),
putback_zspage(), migrate_zspage(), zs_shrinker_count() and zs_shrinker_scan() in
mm/zsmalloc.c (6.18; the same algorithm since 6.5).

Per real class, from the largest index down: while ``zs_can_compact`` says a whole
zspage's worth of slots is free, take a destination (head of the fullest non-full group,
10 down to 1) and a source (head of the emptiest non-empty group, 1 up to 10), both taken
off their lists, and move the source's objects to the destination in ascending object
index until the destination is full or the source is empty.  The source goes back at the
head of its new group (and is freed if empty); the destination stays isolated and keeps
receiving from further sources until it is full.  Every put-back is a head insertion, so
compaction reorders the lists - which later allocations see.

A 6.1 pool compacts each class with 6.1's loop instead
(:func:`~zsmalloc.zs.compact_61.__zs_compact_61`), chosen from the state's type when
numba compiles :func:`zs_compact`.
"""

from __future__ import annotations

from zsmalloc.mm.hotpath import hot_njit
from zsmalloc.zs.compact_61 import __zs_compact_61
from zsmalloc.zs.handle import handle_to_obj
from zsmalloc.zs.obj import find_alloced_obj, obj_free, obj_malloc, zs_object_copy
from zsmalloc.zs.size_class import (
    ZS_INUSE_RATIO_0,
    ZS_INUSE_RATIO_10,
    ZS_INUSE_RATIO_99,
    ZS_INUSE_RATIO_100,
)
from zsmalloc.zs.state import (
    PoolState,
    compaction_61,
)
from zsmalloc.zs.zspage import (
    free_zspage,
    get_first_zpdesc,
    get_fullness_group,
    get_next_zpdesc,
    insert_zspage,
    remove_zspage,
    zs_can_compact,
    zspage_empty,
    zspage_full,
)


@hot_njit
def isolate_head_zspage(st: PoolState, cls: int, first: int, last: int, step: int) -> int:
    """The head of the first non-empty group from ``first`` to ``last``, taken off its list."""
    for fg in range(first, last + step, step):
        zspage = st.fullness_head[cls, fg]
        if zspage != 0:
            remove_zspage(st, cls, zspage)
            return zspage
    return 0


@hot_njit
def isolate_src_zspage(st: PoolState, cls: int) -> int:
    """Mirrors isolate_src_zspage(): the emptiest non-empty zspage (groups 10 % .. 99 %)."""
    return isolate_head_zspage(st, cls, ZS_INUSE_RATIO_10, ZS_INUSE_RATIO_99, 1)


@hot_njit
def isolate_dst_zspage(st: PoolState, cls: int) -> int:
    """Mirrors isolate_dst_zspage(): the fullest non-full zspage (groups 99 % .. 10 %)."""
    return isolate_head_zspage(st, cls, ZS_INUSE_RATIO_99, ZS_INUSE_RATIO_10, -1)


@hot_njit
def putback_zspage(st: PoolState, cls: int, zspage: int) -> int:
    """Mirrors putback_zspage(): insert at the head of the group its inuse implies."""
    fullness = get_fullness_group(st, cls, zspage)
    insert_zspage(st, cls, zspage, fullness)
    return fullness


@hot_njit
def migrate_zspage(st: PoolState, cls: int, src_zspage: int, dst_zspage: int) -> int:
    """Mirrors migrate_zspage(): move src's objects, ascending, until dst full or src empty.

    0, or -EBUG when an object's location is corrupt.
    """
    size = st.class_size[cls]
    obj_idx = 0
    s_zpdesc = get_first_zpdesc(st, src_zspage)
    while True:
        handle, obj_idx = find_alloced_obj(st, src_zspage, s_zpdesc, obj_idx)
        if handle == 0:
            s_zpdesc = get_next_zpdesc(st, src_zspage, s_zpdesc)
            if s_zpdesc == 0:
                break
            obj_idx = 0
            continue
        used_obj = handle_to_obj(st, handle)
        free_obj = obj_malloc(st, dst_zspage, handle)
        zs_object_copy(st, size, free_obj, used_obj)
        obj_idx += 1
        err = obj_free(st, size, used_obj)
        if err < 0:
            return err
        if zspage_full(st, cls, dst_zspage):
            break
        if zspage_empty(st, src_zspage):
            break
    return 0


@hot_njit
def __zs_compact(st: PoolState, cls: int) -> int:
    """Mirrors __zs_compact(): compact one class; returns the pages freed, or -EBUG."""
    dst_zspage = 0
    pages_freed = 0
    while zs_can_compact(st, cls) > 0:
        if dst_zspage == 0:
            dst_zspage = isolate_dst_zspage(st, cls)
            if dst_zspage == 0:
                break
        src_zspage = isolate_src_zspage(st, cls)
        if src_zspage == 0:
            break
        err = migrate_zspage(st, cls, src_zspage, dst_zspage)
        if err < 0:
            return err
        if putback_zspage(st, cls, src_zspage) == ZS_INUSE_RATIO_0:
            err = free_zspage(st, cls, src_zspage)
            if err < 0:
                return err
            pages_freed += st.class_ppz[cls]
        if get_fullness_group(st, cls, dst_zspage) == ZS_INUSE_RATIO_100:
            putback_zspage(st, cls, dst_zspage)
            dst_zspage = 0
    if dst_zspage != 0:
        putback_zspage(st, cls, dst_zspage)
    return pages_freed


@hot_njit
def zs_compact(st: PoolState) -> int:
    """Mirrors zs_compact(): every real class, largest first; adds to pages_compacted.

    (6.1 and 6.18 share it, down to the ``compaction_in_progress`` guard Debian's 6.1
    carries; only the per-class loop differs.)

    Returns the pages freed, or -EBUG (a broken invariant stops the walk).
    """
    v = st.vars[0]
    if v.compaction_in_progress != 0:
        return 0
    v.compaction_in_progress = 1
    pages_freed = 0
    for i in range(st.class_size.shape[0] - 1, -1, -1):
        if st.class_index[i] != i:  # merged alias
            continue
        freed = __zs_compact_61(st, i) if compaction_61(st) else __zs_compact(st, i)
        if freed < 0:
            v.compaction_in_progress = 0
            return freed
        pages_freed += freed
    v.pages_compacted += pages_freed
    v.compaction_in_progress = 0
    return pages_freed


@hot_njit
def zs_pages_compacted(st: PoolState) -> int:
    """pool->stats.pages_compacted (what zs_pool_stats() reports)."""
    return st.vars[0].pages_compacted


@hot_njit
def zs_can_compact_total(st: PoolState) -> int:
    """Mirrors zs_shrinker_count(): the sum of zs_can_compact over real classes."""
    total = 0
    for i in range(st.class_size.shape[0] - 1, -1, -1):
        if st.class_index[i] == i:
            total += zs_can_compact(st, i)
    return total


@hot_njit
def zs_shrinker_scan(st: PoolState) -> int:
    """Mirrors zs_shrinker_scan(): a full zs_compact, ignoring nr_to_scan; pages freed."""
    return zs_compact(st)
