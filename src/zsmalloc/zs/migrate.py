"""Page migration: move one page of a zspage to another page frame.

Mirrors zs_page_isolate(), zs_page_migrate(), zs_page_putback() and replace_sub_page()
in mm/zsmalloc.c (6.18; 6.1 and 6.6 also count isolated pages per zspage), driven the
way the migration core drives a movable_ops page (isolate_movable_ops_page(), then
move_to_new_folio(), then the put-backs).

Migration copies the page, rewrites the ``obj`` of every allocated object that *starts*
in it (objects continuing into it from the previous page name their start page), and
rebuilds the zspage's chain with the new page in the old one's place.  It never changes
page counts, fullness groups, list order, free lists or object indices.
"""

from __future__ import annotations

from errno import EAGAIN, EBUSY, EINVAL, ENOMEM

from zsmalloc.mm.hotpath import hot_njit
from zsmalloc.mm.page import alloc_page, memcpy, nr_free_pages, pfn_valid
from zsmalloc.mm.zpdesc import (
    __zpdesc_set_movable,
    __zpdesc_set_zsmalloc,
    get_first_obj_offset,
    get_zpdesc_handle,
    kmap_local_zpdesc,
    reset_zpdesc,
    set_first_obj_offset,
    set_zpdesc_handle,
    zpdesc_get,
    zpdesc_is_isolated,
    zpdesc_is_movable,
    zpdesc_is_zsmalloc,
    zpdesc_put,
    zpdesc_ref_count,
    zpdesc_set_isolated,
    zpdesc_trylock,
    zpdesc_unlock,
)
from zsmalloc.zs.handle import (
    handle_to_obj,
    location_to_obj,
    obj_to_obj_idx,
    record_obj,
)
from zsmalloc.zs.obj import obj_allocated
from zsmalloc.zs.state import ZS_ISOLATED_MASK, ZS_ISOLATED_SHIFT, PoolState
from zsmalloc.zs.zspage import (
    ZsHugePage,
    create_page_chain,
    get_first_zpdesc,
    get_next_zpdesc,
    get_zspage,
    zspage_bits_get,
    zspage_bits_set,
    zspage_class,
)


@hot_njit
def replace_sub_page(st: PoolState, cls: int, zspage: int, newzpdesc: int, oldzpdesc: int) -> None:
    """Mirrors replace_sub_page(): the chain with ``newzpdesc`` in place of ``oldzpdesc``."""
    mm = st.mm
    zpdescs = st.scratch
    idx = 0
    zpdesc = get_first_zpdesc(st, zspage)
    while zpdesc != 0:
        zpdescs[idx] = newzpdesc if zpdesc == oldzpdesc else zpdesc
        idx += 1
        zpdesc = get_next_zpdesc(st, zspage, zpdesc)
    create_page_chain(st, cls, zspage, zpdescs, idx)
    set_first_obj_offset(mm, newzpdesc, get_first_obj_offset(mm, oldzpdesc))
    if ZsHugePage(st, zspage):
        set_zpdesc_handle(mm, newzpdesc, get_zpdesc_handle(mm, oldzpdesc))
    __zpdesc_set_movable(mm, newzpdesc)


@hot_njit
def mod_zspage_isolation(st: PoolState, zspage: int, val: int) -> None:
    """Mirrors inc_zspage_isolation()/dec_zspage_isolation() (6.1, 6.6; gone by 6.12)."""
    if st.vars[0].zspage_isolation:
        isolated = zspage_bits_get(st, zspage, ZS_ISOLATED_SHIFT, ZS_ISOLATED_MASK)
        zspage_bits_set(st, zspage, ZS_ISOLATED_SHIFT, ZS_ISOLATED_MASK, isolated + val)


@hot_njit
def zs_page_isolate(st: PoolState, zpdesc: int) -> bool:
    """Mirrors zs_page_isolate(): does the page still belong to a zspage?

    6.1 and 6.6 also count the page in its zspage's ``isolated`` field.
    """
    zspage = get_zspage(st, zpdesc)
    if zspage <= 0:
        return False
    mod_zspage_isolation(st, zspage, 1)
    return True


@hot_njit
def zs_page_putback(st: PoolState, zpdesc: int) -> None:
    """Mirrors zs_page_putback(): a failed migration gives the page back (6.1/6.6: uncount it)."""
    zspage = get_zspage(st, zpdesc)
    if zspage > 0:
        mod_zspage_isolation(st, zspage, -1)


@hot_njit
def zs_page_migrate(st: PoolState, newzpdesc: int, zpdesc: int) -> int:
    """Mirrors zs_page_migrate(): copy ``zpdesc`` to ``newzpdesc`` and repoint everything.

    Both pages are locked by the caller.  Returns 0 (MIGRATEPAGE_SUCCESS).
    """
    mm = st.mm
    zspage = get_zspage(st, zpdesc)
    if zspage <= 0:  # freed meanwhile: the core owns both pages
        return 0
    cls = zspage_class(st, zspage)
    size = st.class_size[cls]
    __zpdesc_set_zsmalloc(mm, newzpdesc)
    s_addr = kmap_local_zpdesc(mm, zpdesc)
    d_addr = kmap_local_zpdesc(mm, newzpdesc)
    page_size = mm.page_size
    memcpy(mm.arena, d_addr, mm.arena, s_addr, page_size)  # copy_page()
    offset = get_first_obj_offset(mm, zpdesc)
    while offset < page_size:
        handle = obj_allocated(st, zspage, zpdesc, s_addr + offset)
        if handle != 0:
            obj_idx = obj_to_obj_idx(st, handle_to_obj(st, handle))
            record_obj(st, handle, location_to_obj(st, newzpdesc, obj_idx, cls))
        offset += size
    replace_sub_page(st, cls, zspage, newzpdesc, zpdesc)
    mod_zspage_isolation(st, zspage, -1)
    zpdesc_get(mm, newzpdesc)
    # Same zone (one arena): NR_ZSPAGES does not move.
    reset_zpdesc(mm, zpdesc)
    zpdesc_put(mm, zpdesc)
    return 0


@hot_njit
def zs_page_migrate_pfn(st: PoolState, pfn: int) -> int:
    """Migrate page ``pfn`` as the core would: the new pfn, or -errno with nothing changed.

    -EINVAL: not a movable zsmalloc page of a live zspage; -EBUSY: locked or already
    isolated; -ENOMEM (-EAGAIN in the core's terms) when no page frame is free.
    """
    mm = st.mm
    if not pfn_valid(mm, pfn) or zpdesc_ref_count(mm, pfn) <= 0:
        return -EINVAL
    if not zpdesc_is_zsmalloc(mm, pfn) or not zpdesc_is_movable(mm, pfn):
        return -EINVAL
    zspage = get_zspage(st, pfn)
    if zspage < 0:  # a zsmalloc page naming a corrupt zspage
        return zspage
    if zspage == 0:
        return -EINVAL
    if zpdesc_is_isolated(mm, pfn):
        return -EBUSY
    if nr_free_pages(mm) == 0:
        return -ENOMEM
    # isolate_movable_ops_page(): pin, lock, ask zsmalloc, mark isolated, unlock.
    zpdesc_get(mm, pfn)
    if not zpdesc_trylock(mm, pfn):
        zpdesc_put(mm, pfn)
        return -EBUSY
    if not zs_page_isolate(st, pfn):
        zpdesc_unlock(mm, pfn)
        zpdesc_put(mm, pfn)
        return -EAGAIN
    zpdesc_set_isolated(mm, pfn, True)
    zpdesc_unlock(mm, pfn)
    # migrate: a new frame, both locked, zsmalloc's callback, then the core's put-backs.
    newpfn = alloc_page(mm)
    zpdesc_trylock(mm, newpfn)
    zpdesc_trylock(mm, pfn)
    zs_page_migrate(st, newpfn, pfn)
    zpdesc_set_isolated(mm, pfn, False)
    zpdesc_unlock(mm, pfn)
    # the isolation reference: the old frame goes back to the allocator (or is bad: -EBUG)
    err = zpdesc_put(mm, pfn)
    zpdesc_unlock(mm, newpfn)
    zpdesc_put(mm, newpfn)  # the core's allocation reference; the zspage holds its own
    return err if err < 0 else newpfn
