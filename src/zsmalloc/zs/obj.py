"""Objects inside a zspage: allocate, free, test, find and copy one slot.

Mirrors obj_malloc(), obj_free(), obj_allocated(), find_alloced_obj() and
zs_object_copy() in mm/zsmalloc.c (6.18).

Object ``i`` of a zspage starts at byte ``i * size`` of the chain, i.e. in page
``(i * size) >> PAGE_SHIFT`` at offset ``(i * size) % PAGE_SIZE``, and continues at
offset 0 of the next page when it crosses the page end.  Its first 8-byte word is
either a free-list link (``next << 1``, tag clear) or ``handle | OBJ_ALLOCATED_TAG``;
a huge zspage keeps the tagged handle in ``first_zpdesc->handle`` instead.
"""

from __future__ import annotations

from zsmalloc.mm.hotpath import hot_njit
from zsmalloc.mm.page import EBUG, memcpy, pfn_valid
from zsmalloc.mm.zpdesc import (
    get_first_obj_offset,
    get_zpdesc_handle,
    kmap_local_zpdesc,
    set_zpdesc_handle,
)
from zsmalloc.profile import OBJ_TAG_BITS
from zsmalloc.zs.handle import location_to_obj, obj_to_obj_idx, obj_to_pfn, record_obj
from zsmalloc.zs.state import OBJ_ALLOCATED_TAG, OBJ_TAG_MASK, PoolState
from zsmalloc.zs.zspage import (
    ZsHugePage,
    get_first_zpdesc,
    get_freeobj,
    get_next_zpdesc,
    get_zspage,
    mod_zspage_inuse,
    nth_zpdesc,
    set_freeobj,
    zspage_class,
)


@hot_njit
def obj_malloc(st: PoolState, zspage: int, handle: int) -> int:
    """Mirrors obj_malloc(): pop the free-list head, tag it with the handle, record obj."""
    mm = st.mm
    cls = zspage_class(st, zspage)
    obj_idx = get_freeobj(st, zspage)
    offset = obj_idx * st.class_size[cls]
    m_zpdesc = nth_zpdesc(st, zspage, offset >> mm.page_shift)
    m_offset = offset & (mm.page_size - 1)
    word = (kmap_local_zpdesc(mm, m_zpdesc) + m_offset) >> 3
    set_freeobj(st, zspage, mm.arena64[word] >> OBJ_TAG_BITS)
    if not ZsHugePage(st, zspage):
        mm.arena64[word] = handle | OBJ_ALLOCATED_TAG  # the handle header of the object
    else:
        set_zpdesc_handle(mm, get_first_zpdesc(st, zspage), handle | OBJ_ALLOCATED_TAG)
    mod_zspage_inuse(st, zspage, 1)
    obj = location_to_obj(st, m_zpdesc, obj_idx, cls)
    record_obj(st, handle, obj)
    return obj


@hot_njit
def obj_free(st: PoolState, class_size: int, obj: int) -> int:
    """Mirrors obj_free(): push the slot on its zspage's free list (LIFO); 0 or -EBUG."""
    mm = st.mm
    f_zpdesc = obj_to_pfn(st, obj)
    f_objidx = obj_to_obj_idx(st, obj)
    zspage = get_zspage(st, f_zpdesc) if pfn_valid(mm, f_zpdesc) else 0
    if zspage <= 0:  # a live obj always names a page of a live zspage
        return -EBUG
    f_offset = (class_size * f_objidx) & (mm.page_size - 1)
    if not ZsHugePage(st, zspage):
        # get_freeobj() << OBJ_TAG_BITS is an unsigned int shift in C: keep 32 bits.
        link = (get_freeobj(st, zspage) << OBJ_TAG_BITS) & 0xFFFFFFFF
        mm.arena64[(kmap_local_zpdesc(mm, f_zpdesc) + f_offset) >> 3] = link
    else:
        set_zpdesc_handle(mm, f_zpdesc, 0)
    set_freeobj(st, zspage, f_objidx)
    mod_zspage_inuse(st, zspage, -1)
    return 0


@hot_njit
def obj_allocated(st: PoolState, zspage: int, zpdesc: int, addr: int) -> int:
    """Mirrors obj_allocated(): the handle of the slot at arena offset ``addr``, or 0 if free."""
    if ZsHugePage(st, zspage):
        handle = get_zpdesc_handle(st.mm, zpdesc)
    else:
        handle = st.mm.arena64[addr >> 3]
    if not handle & OBJ_ALLOCATED_TAG:
        return 0
    return handle & ~OBJ_TAG_MASK


@hot_njit
def find_alloced_obj(st: PoolState, zspage: int, zpdesc: int, index: int) -> tuple[int, int]:
    """Mirrors find_alloced_obj(): the first allocated slot starting in ``zpdesc``.

    ``index`` counts slots from the page's first_obj_offset.  Returns (handle, index);
    handle 0 when no allocated slot starts at or after ``index`` in this page.
    """
    mm = st.mm
    size = st.class_size[zspage_class(st, zspage)]
    base = kmap_local_zpdesc(mm, zpdesc)
    offset = get_first_obj_offset(mm, zpdesc) + size * index
    handle = 0
    while offset < mm.page_size:
        handle = obj_allocated(st, zspage, zpdesc, base + offset)
        if handle != 0:
            break
        offset += size
        index += 1
    return handle, index


@hot_njit
def zs_object_copy(st: PoolState, size: int, dst_obj: int, src_obj: int) -> None:
    """Mirrors zs_object_copy(): copy a whole slot (header included) between two objs.

    Either side may straddle a page; the copy advances page by page on each side.
    """
    mm = st.mm
    page_size = mm.page_size
    mask = page_size - 1
    s_zpdesc = obj_to_pfn(st, src_obj)
    d_zpdesc = obj_to_pfn(st, dst_obj)
    s_off = (size * obj_to_obj_idx(st, src_obj)) & mask
    d_off = (size * obj_to_obj_idx(st, dst_obj)) & mask
    s_zspage = get_zspage(st, s_zpdesc)
    d_zspage = get_zspage(st, d_zpdesc)
    arena = mm.arena
    left = size
    while left > 0:
        n = min(left, page_size - s_off, page_size - d_off)
        s = kmap_local_zpdesc(mm, s_zpdesc) + s_off
        d = kmap_local_zpdesc(mm, d_zpdesc) + d_off
        memcpy(arena, d, arena, s, n)
        left -= n
        s_off += n
        d_off += n
        if left == 0:
            break
        if s_off == page_size:
            s_zpdesc = get_next_zpdesc(st, s_zspage, s_zpdesc)
            s_off = 0
        if d_off == page_size:
            d_zpdesc = get_next_zpdesc(st, d_zspage, d_zpdesc)
            d_off = 0
