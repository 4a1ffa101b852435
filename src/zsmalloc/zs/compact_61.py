"""Compaction as Linux 6.1 does it: one source at a time, emptied into destinations.

Mirrors __zs_compact(), isolate_zspage(), migrate_zspage() and putback_zspage() in
mm/zsmalloc.c (6.1; zsmalloc.md §10.1).  6.5 rewrote this loop (:mod:`zsmalloc.zs.compact`);
the two differ in which zspages meet and in what order they go back on the lists, which
later allocations see, so a 6.1 pool needs this one to match a 6.1 kernel page for page.

Per real class, largest index first (``zs_compact`` is shared): take a *source* (head of
ALMOST_EMPTY, else of ALMOST_FULL) off its list, and only then ask ``zs_can_compact``;
if nothing can be freed the source goes back (which may move it: put-backs follow 6.1's
insertion-second rule).  Otherwise move the source's objects, in ascending index, into
destinations (head of ALMOST_FULL, else of ALMOST_EMPTY), each taken off its list in
turn: a destination found full before the next object is put back and the next one
taken, the position in the source carried over.  When the source is empty, the last
destination and then the source go back, and the empty source is freed.  No destination
left ends the class, the source going back unfinished.

Guest recordings of Debian's 6.1.0-57 (6.1.192) kernel replay exactly under these
rules (tests/data/kernels/6.1-*); that kernel also carries the
``compaction_in_progress`` guard of 6.5 (backported to 6.1.y), which
:func:`~zsmalloc.zs.compact.zs_compact` applies to every version.
"""

from __future__ import annotations

from zsmalloc.mm.hotpath import hot_njit
from zsmalloc.zs.handle import handle_to_obj
from zsmalloc.zs.obj import find_alloced_obj, obj_free, obj_malloc, zs_object_copy
from zsmalloc.zs.size_class import ZS_ALMOST_EMPTY, ZS_ALMOST_FULL, ZS_EMPTY
from zsmalloc.zs.state import PoolState
from zsmalloc.zs.zspage import (
    free_zspage,
    get_first_zpdesc,
    get_fullness_group,
    get_next_zpdesc,
    insert_zspage,
    remove_zspage,
    zs_can_compact,
    zspage_full,
)

MIGRATE_SRC_DONE = 0  # migrate_zspage() returned 0: no object left in the source
MIGRATE_DST_FULL = 1  # it returned -ENOMEM: the destination filled up first


@hot_njit
def isolate_zspage_61(st: PoolState, cls: int, source: bool) -> int:
    """Mirrors isolate_zspage() (6.1): a source from ALMOST_EMPTY then ALMOST_FULL, a
    destination from ALMOST_FULL then ALMOST_EMPTY; the head, taken off its list (0: none)."""
    first, second = ZS_ALMOST_EMPTY, ZS_ALMOST_FULL
    if not source:
        first, second = ZS_ALMOST_FULL, ZS_ALMOST_EMPTY
    zspage = st.fullness_head[cls, first]
    if zspage == 0:
        zspage = st.fullness_head[cls, second]
    if zspage != 0:
        remove_zspage(st, cls, zspage)
    return zspage


@hot_njit
def putback_zspage_61(st: PoolState, cls: int, zspage: int) -> int:
    """Mirrors putback_zspage() (6.1): back on the list its inuse implies; that group."""
    fullness = get_fullness_group(st, cls, zspage)
    insert_zspage(st, cls, zspage, fullness)
    return fullness


@hot_njit
def migrate_zspage_61(
    st: PoolState, cls: int, src_zspage: int, dst_zspage: int, s_zpdesc: int, obj_idx: int
) -> tuple[int, int, int]:
    """Mirrors migrate_zspage() (6.1): move objects from (s_zpdesc, obj_idx) on into dst.

    Returns (status, s_zpdesc, obj_idx): the position reached (zs_compact_control's
    ``s_page``/``obj_idx``), and MIGRATE_SRC_DONE when the source has no object left or
    MIGRATE_DST_FULL when the destination was full before the next one; -EBUG on a
    corrupt location.  The "full" test comes *before* each move (6.5 tests after).
    """
    size = st.class_size[cls]
    while True:
        handle, obj_idx = find_alloced_obj(st, src_zspage, s_zpdesc, obj_idx)
        if handle == 0:
            s_zpdesc = get_next_zpdesc(st, src_zspage, s_zpdesc)
            if s_zpdesc == 0:
                return MIGRATE_SRC_DONE, 0, obj_idx
            obj_idx = 0
            continue
        if zspage_full(st, cls, dst_zspage):
            return MIGRATE_DST_FULL, s_zpdesc, obj_idx
        used_obj = handle_to_obj(st, handle)
        free_obj = obj_malloc(st, dst_zspage, handle)
        zs_object_copy(st, size, free_obj, used_obj)
        obj_idx += 1
        err = obj_free(st, size, used_obj)
        if err < 0:
            return err, s_zpdesc, obj_idx


@hot_njit
def __zs_compact_61(st: PoolState, cls: int) -> int:
    """Mirrors __zs_compact() (6.1): compact one class; the pages freed, or -EBUG."""
    pages_freed = 0
    while True:
        src_zspage = isolate_zspage_61(st, cls, True)
        if src_zspage == 0:
            return pages_freed
        if zs_can_compact(st, cls) == 0:
            break
        obj_idx = 0
        s_zpdesc = get_first_zpdesc(st, src_zspage)
        dst_zspage = isolate_zspage_61(st, cls, False)
        while dst_zspage != 0:
            status, s_zpdesc, obj_idx = migrate_zspage_61(
                st, cls, src_zspage, dst_zspage, s_zpdesc, obj_idx
            )
            if status < 0:
                return status
            if status == MIGRATE_SRC_DONE:
                break
            putback_zspage_61(st, cls, dst_zspage)
            dst_zspage = isolate_zspage_61(st, cls, False)
        if dst_zspage == 0:  # "Stop if we couldn't find slot"
            break
        putback_zspage_61(st, cls, dst_zspage)
        if putback_zspage_61(st, cls, src_zspage) == ZS_EMPTY:
            err = free_zspage(st, cls, src_zspage)
            if err < 0:
                return err
            pages_freed += st.class_ppz[cls]
    putback_zspage_61(st, cls, src_zspage)
    return pages_freed
