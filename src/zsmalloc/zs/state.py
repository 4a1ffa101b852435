"""The pool's state as numba sees it: ``struct zs_pool`` and its slab caches as arrays.

Mirrors the data of ``struct zs_pool``, ``struct size_class`` and ``struct zspage``
(mm/zsmalloc.c, 6.18), laid out for numba: one named tuple of numpy arrays
(:class:`PoolState`) that every ``@njit`` function of ``zsmalloc.zs`` takes as ``st``.

* ``st.mm`` is physical memory (:class:`zsmalloc.mm.page.MemMap`): the arena with the
  page frames, and ``mem_map`` seen through ``struct zpdesc`` field views.
* Size classes (``size_class[]``): parallel arrays indexed by class index; merged
  aliases point at their real class through ``class_index``.
* ``fullness_head[class, group]``: the head zspage of each of the 12 fullness lists
  (0 = empty).  The lists are doubly linked through ``zs_prev``/``zs_next``; insertion
  is always at the head (``list_add``), as the kernel does.
* ``stats[class, 14]``: ``class->stats.objs[]`` - zspages per fullness group 0..11,
  then ZS_OBJS_ALLOCATED and ZS_OBJS_INUSE.  Changed only by ``class_stat_add/sub``.
* The zspage table replaces the ``zspage`` slab cache: ids 1.. (0 = NULL), recycled
  LIFO through ``zs_next``.  ``zs_bits`` packs the kernel's bitfields
  ``huge:1 fullness:4 class:9 magic:8`` at the same bit positions.
* The handle table replaces the ``zs_handle`` slab cache.  A handle is ``id << 3``
  (8-aligned like a slab object address, so ``handle | OBJ_ALLOCATED_TAG`` works);
  ``handle_obj[id]`` is the 8-byte slot holding ``obj``.  A live slot holds ``obj > 0``
  (pfn 0 is never used, so obj is never 0); a free slot holds ``-1 - next_free_id``,
  so a freed or never-allocated handle is detected by one load.

Everything sized by ``max_pages`` lives in anonymous mappings, so only the part that
is used becomes resident.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from zsmalloc.mm.page import MemMap, anon_zeros, new_mem_map
from zsmalloc.profile import KernelProfile

# ---- fixed constants (x86_64) ------------------------------------------------------------
ZS_HANDLE_SIZE = 8
OBJ_ALLOCATED_TAG = 1
OBJ_TAG_BITS = 1
OBJ_TAG_MASK = 1
ZSPAGE_MAGIC = 0x58
NR_FULLNESS_GROUPS = 12
ZS_INUSE_RATIO_0 = 0
ZS_INUSE_RATIO_10 = 1
ZS_INUSE_RATIO_99 = 10
ZS_INUSE_RATIO_100 = 11
ZS_OBJS_ALLOCATED = NR_FULLNESS_GROUPS  # 12
ZS_OBJS_INUSE = NR_FULLNESS_GROUPS + 1  # 13
NR_CLASS_STAT_TYPES = NR_FULLNESS_GROUPS + 2  # 14
HANDLE_SHIFT = 3  # handles are 8-aligned, like slab object addresses
MAX_SCRATCH = 64  # >= the longest page chain (CONFIG_ZSMALLOC_CHAIN_SIZE <= 16)

# zspage bitfield positions (struct zspage: huge:1, fullness:4, class:9, magic:8)
ZS_HUGE_SHIFT = 0
ZS_FULLNESS_SHIFT = 1
ZS_FULLNESS_MASK = 0xF
ZS_CLASS_SHIFT = 5
ZS_CLASS_MASK = 0x1FF
ZS_MAGIC_SHIFT = 14
ZS_MAGIC_MASK = 0xFF

# PoolState.vars slots
V_PAGES_ALLOCATED = 0  # pool->pages_allocated
V_PAGES_COMPACTED = 1  # pool->stats.pages_compacted
V_ZS_HWM = 2  # next never-used zspage id
V_ZS_FREE = 3  # head of the free zspage ids (0 = none)
V_ZS_CAP = 4  # zspage table capacity
V_H_HWM = 5  # next never-used handle id
V_H_FREE = 6  # head of the free handle ids (0 = none)
V_H_CAP = 7  # handle table capacity
V_COMPACTION_IN_PROGRESS = 8
V_OBJ_INDEX_BITS = 9  # OBJ_INDEX_BITS of this page size / version
V_OBJ_TAG_SHIFT = 10  # 0 since 6.12; 1 for 6.1/6.6 (obj = (pfn<<bits | idx) << 1)
V_H_LIVE = 11  # live handles
V_NR_ZSPAGES = 12  # live zspages
V_MAX_ALLOC_SIZE = 13  # ZS_MAX_ALLOC_SIZE = PAGE_SIZE
V_MIN_ALLOC_SIZE = 14  # ZS_MIN_ALLOC_SIZE
V_SIZE_CLASS_DELTA = 15  # ZS_SIZE_CLASS_DELTA
V_HUGE_CLASS_SIZE = 16  # zs_huge_class_size()
V_OVERSIZE_ERRNO = 17  # errno of zs_malloc(size > PAGE_SIZE): ENOSPC since 6.12
NR_POOL_VARS = 18


class PoolState(NamedTuple):
    """Everything ``zsmalloc.zs.core`` works on; obtained as ``Pool.state``."""

    mm: MemMap
    class_size: np.ndarray  # int64[nr]: class->size of the (real) class at each index
    class_index: np.ndarray  # int64[nr]: class->index (the real class of a merged alias)
    class_ppz: np.ndarray  # int64[nr]: pages_per_zspage
    class_objs: np.ndarray  # int64[nr]: objs_per_zspage
    fullness_head: np.ndarray  # int64[nr, 12]: head zspage of each fullness list
    stats: np.ndarray  # int64[nr, 14]: class->stats.objs[]
    zs_bits: np.ndarray  # uint32[cap]: huge, fullness, class, magic
    zs_inuse: np.ndarray  # int32[cap]: live objects
    zs_freeobj: np.ndarray  # uint32[cap]: first free object index
    zs_first: np.ndarray  # int32[cap]: first_zpdesc (pfn)
    zs_prev: np.ndarray  # int32[cap]: fullness-list links (zs_next also chains free ids)
    zs_next: np.ndarray  # int32[cap]
    handle_obj: np.ndarray  # int64[cap]: the handle slots
    vars: np.ndarray  # int64[NR_POOL_VARS]
    scratch: np.ndarray  # int64[MAX_SCRATCH]: page lists built by alloc/migrate (no NRT)


def new_pool_state(table: object, max_pages: int) -> tuple[np.ndarray, PoolState]:
    """Allocate a pool for class table ``table`` (a ``size_class.ClassTable``).

    Returns ``(mem_map, state)``.  ``max_pages`` bounds the arena (pfn 0 reserved).
    """
    page_size = int(table.page_size)  # type: ignore[attr-defined]
    prof = KernelProfile(str(table.version), page_size, int(table.chain_size))  # type: ignore[attr-defined]
    nr = len(table.size)  # type: ignore[attr-defined]
    mem_map, mm = new_mem_map(max_pages, page_size)
    zs_cap = max_pages + 1  # every zspage owns at least one page
    # Every live object occupies at least 32 bytes of some page: a handle bound.
    h_cap = max_pages * (page_size // 32) + 1
    v = np.zeros(NR_POOL_VARS, np.int64)
    v[V_ZS_HWM] = 1
    v[V_ZS_CAP] = zs_cap
    v[V_H_HWM] = 1
    v[V_H_CAP] = h_cap
    v[V_OBJ_INDEX_BITS] = prof.OBJ_INDEX_BITS
    v[V_OBJ_TAG_SHIFT] = prof.obj_tag_shift
    v[V_OVERSIZE_ERRNO] = prof.oversize_errno
    v[V_MAX_ALLOC_SIZE] = page_size
    v[V_MIN_ALLOC_SIZE] = int(table.min_alloc_size)  # type: ignore[attr-defined]
    v[V_SIZE_CLASS_DELTA] = int(table.size_class_delta)  # type: ignore[attr-defined]
    v[V_HUGE_CLASS_SIZE] = int(table.huge_class_size)  # type: ignore[attr-defined]
    st = PoolState(
        mm=mm,
        class_size=np.asarray(table.size, np.int64).copy(),  # type: ignore[attr-defined]
        class_index=np.asarray(table.index, np.int64).copy(),  # type: ignore[attr-defined]
        class_ppz=np.asarray(table.pages_per_zspage, np.int64).copy(),  # type: ignore[attr-defined]
        class_objs=np.asarray(table.objs_per_zspage, np.int64).copy(),  # type: ignore[attr-defined]
        fullness_head=np.zeros((nr, NR_FULLNESS_GROUPS), np.int64),
        stats=np.zeros((nr, NR_CLASS_STAT_TYPES), np.int64),
        zs_bits=anon_zeros(zs_cap, np.uint32),
        zs_inuse=anon_zeros(zs_cap, np.int32),
        zs_freeobj=anon_zeros(zs_cap, np.uint32),
        zs_first=anon_zeros(zs_cap, np.int32),
        zs_prev=anon_zeros(zs_cap, np.int32),
        zs_next=anon_zeros(zs_cap, np.int32),
        handle_obj=anon_zeros(h_cap, np.int64),
        vars=v,
        scratch=np.zeros(MAX_SCRATCH, np.int64),
    )
    return mem_map, st


def host_bytes_used(st: PoolState) -> dict[str, int]:
    """Host metadata in use beyond the arena, per structure, in bytes.

    Counts the touched part of each lazily backed table (entries up to its high-water
    mark, rounded up to whole 4 KiB host pages) and the fixed per-class arrays.
    """

    def touched(entries: int, itemsize: int) -> int:
        nbytes = entries * itemsize
        return -(-nbytes // 4096) * 4096

    mm = st.mm
    pages_hwm = int(mm.vars[1])
    zs_hwm = int(st.vars[V_ZS_HWM])
    h_hwm = int(st.vars[V_H_HWM])
    zs_item = sum(a.itemsize for a in (st.zs_bits, st.zs_inuse, st.zs_freeobj, st.zs_first,
                                       st.zs_prev, st.zs_next))
    return {
        "mem_map": touched(pages_hwm, 64),
        "free_page_stack": touched(pages_hwm, mm.free_stack.itemsize),
        "zspage_table": touched(zs_hwm, zs_item),
        "handle_table": touched(h_hwm, st.handle_obj.itemsize),
        "size_classes": sum(a.nbytes for a in (st.class_size, st.class_index, st.class_ppz,
                                               st.class_objs, st.fullness_head, st.stats)),
    }
