"""Handles and the ``obj`` encoding.

Mirrors cache_alloc_handle(), cache_free_handle(), record_obj(), handle_to_obj(),
location_to_obj() and obj_to_location() in mm/zsmalloc.c (6.18).

A handle is what ``zs_malloc`` returns: in the kernel, the address of an 8-byte
object from the ``zs_handle-<pool>`` slab cache whose contents are ``obj``, the
current location of the object.  Compaction and page migration move objects and
rewrite ``obj``; the handle never changes.  Here the slab cache is the
``handle_obj`` table of :class:`~zsmalloc.zs.state.PoolState`, a handle is
``id << 3`` (8-aligned like a slab address, so the tagged header ``handle | 1`` of
an allocated object is unambiguous), and free slots are chained LIFO, as a slab
freelist would reuse them, with ``-1 - next_id`` so that one load tells a live
handle (obj > 0) from a freed or never-allocated one.

``obj`` (6.12 to 7.2) is ``pfn << OBJ_INDEX_BITS | obj_idx``: the page the object
*starts* in, and its zspage-wide index.  6.1 and 6.6 shifted that left by one more
bit (``OBJ_TAG_BITS``, ``vars.obj_tag_shift``); 7.3 keeps the class index between the
two (``pfn << ZS_OBJ_PFN_SHIFT | class << ZS_OBJ_IDX_BITS | obj_idx``, so zs_free finds
the class without the zspage), ``vars.obj_pfn_shift`` being ``obj_index_bits`` plus
those class bits.  One formula serves all three: the class term is empty where the
profile has no class bits.
"""

from __future__ import annotations

from zsmalloc.mm.hotpath import hot_njit
from zsmalloc.zs.state import (
    HANDLE_SHIFT,
    PoolState,
)


@hot_njit
def cache_alloc_handle(st: PoolState) -> int:
    """A fresh handle (> 0), or 0 when the handle table is full (the slab's -ENOMEM)."""
    v = st.vars[0]
    hid = v.h_free
    if hid != 0:
        v.h_free = -1 - st.handle_obj[hid]
    elif v.h_hwm < v.h_cap:
        hid = v.h_hwm
        v.h_hwm += 1
    else:
        return 0
    st.handle_obj[hid] = 0
    v.h_live += 1
    return hid << HANDLE_SHIFT


@hot_njit
def cache_free_handle(st: PoolState, handle: int) -> None:
    """Return ``handle`` to the table; its slot is poisoned so later use is detected."""
    v = st.vars[0]
    hid = handle >> HANDLE_SHIFT
    st.handle_obj[hid] = -1 - v.h_free
    v.h_free = hid
    v.h_live -= 1


@hot_njit
def handle_is_live(st: PoolState, handle: int) -> bool:
    """Is ``handle`` one that zs_malloc returned and zs_free has not yet taken back?"""
    if handle <= 0 or (handle & ((1 << HANDLE_SHIFT) - 1)) != 0:
        return False
    hid = handle >> HANDLE_SHIFT
    if hid >= st.vars[0].h_hwm:
        return False
    return st.handle_obj[hid] > 0


@hot_njit
def record_obj(st: PoolState, handle: int, obj: int) -> None:
    """Store ``obj`` in the handle's slot."""
    st.handle_obj[handle >> HANDLE_SHIFT] = obj


@hot_njit
def handle_to_obj(st: PoolState, handle: int) -> int:
    """The ``obj`` a handle holds."""
    return st.handle_obj[handle >> HANDLE_SHIFT]


@hot_njit
def location_to_obj(st: PoolState, zpdesc: int, obj_idx: int, cls: int) -> int:
    """Mirrors location_to_obj(): (start page, zspage-wide index, class) as ``obj``."""
    v = st.vars[0]
    bits = v.obj_index_bits
    class_mask = (1 << (v.obj_pfn_shift - bits)) - 1  # 0 but on 7.3
    obj = (zpdesc << v.obj_pfn_shift) | ((cls & class_mask) << bits)
    obj |= obj_idx & ((1 << bits) - 1)
    return obj << v.obj_tag_shift


@hot_njit
def obj_to_pfn(st: PoolState, obj: int) -> int:
    """The start page of ``obj``."""
    return (obj >> st.vars[0].obj_tag_shift) >> st.vars[0].obj_pfn_shift


@hot_njit
def obj_to_obj_idx(st: PoolState, obj: int) -> int:
    """The zspage-wide index of ``obj``."""
    bits = st.vars[0].obj_index_bits
    return (obj >> st.vars[0].obj_tag_shift) & ((1 << bits) - 1)
