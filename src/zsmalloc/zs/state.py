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
  is at the head (``list_add``), as the kernel does (6.1: sometimes second).
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

**Which kernel's rules.**  The allocation rules (fullness groups, list insertion, the
allocation search, compaction) are a property of the state's *type*:
:class:`PoolState` follows 6.3 and later, :class:`PoolState61` 6.1, and
:func:`new_pool_state` picks the type from the profile's ``fullness_scheme`` and
``compaction``.  The few functions that differ ask :func:`fullness_4_groups` or
:func:`compaction_61`, which numba answers from the argument's type while it compiles:
each kind of state gets its own machine code, with the other kernel's branch gone, so
the choice costs nothing per operation (and nothing at all for a kernel not used).
"""

from __future__ import annotations

import mmap
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from zsmalloc._jit import HAVE_NUMBA
from zsmalloc.mm.page import MemMap, anon_zeros
from zsmalloc.mm.zpdesc import new_mem_map
from zsmalloc.profile import CLASS_BITS, MAX_CHAIN_SIZE, KernelProfile
from zsmalloc.zs.size_class import NR_FULLNESS_GROUPS, ClassTable

# ---- fixed constants (x86_64) ------------------------------------------------------------
OBJ_ALLOCATED_TAG = 1
OBJ_TAG_MASK = 1
ZSPAGE_MAGIC = 0x58
ZS_OBJS_ALLOCATED = NR_FULLNESS_GROUPS  # 12: enum class_stat_type continues the groups
ZS_OBJS_INUSE = NR_FULLNESS_GROUPS + 1  # 13
NR_CLASS_STAT_TYPES = NR_FULLNESS_GROUPS + 2  # 14
HANDLE_SHIFT = 3  # handles are 8-aligned, like slab object addresses
MAX_SCRATCH = 4 * MAX_CHAIN_SIZE  # >= the longest page chain

# zspage bitfield positions (struct zspage: huge:1, fullness:4, class:CLASS_BITS+1, magic:8)
ZS_HUGE_SHIFT = 0
ZS_FULLNESS_SHIFT = 1
ZS_FULLNESS_MASK = 0xF
ZS_CLASS_SHIFT = 5
ZS_CLASS_MASK = (1 << (CLASS_BITS + 1)) - 1
ZS_MAGIC_SHIFT = ZS_CLASS_SHIFT + CLASS_BITS + 1
ZS_MAGIC_MASK = 0xFF
# 6.1 and 6.6 also count the zspage's pages isolated for migration (isolated:3, between
# class and magic there; above magic here, so one layout serves every version).
ZS_ISOLATED_SHIFT = ZS_MAGIC_SHIFT + 8
ZS_ISOLATED_MASK = 0x7

POOL_VARS_DTYPE = np.dtype(
    [
        # struct zs_pool
        ("pages_allocated", np.int64),  # pool->pages_allocated
        ("pages_compacted", np.int64),  # pool->stats.pages_compacted
        ("compaction_in_progress", np.int64),  # pool->compaction_in_progress
        # the zspage slab cache: the zspage table
        ("zs_hwm", np.int64),  # next never-used zspage id
        ("zs_free", np.int64),  # head of the free zspage ids (0 = none)
        ("zs_cap", np.int64),  # table capacity
        ("nr_zspages", np.int64),  # live zspages
        # the zs_handle slab cache: the handle table
        ("h_hwm", np.int64),  # next never-used handle id
        ("h_free", np.int64),  # head of the free handle ids (0 = none)
        ("h_cap", np.int64),  # table capacity
        ("h_live", np.int64),  # live handles
        # the profile's constants, where numba code reads them
        ("obj_index_bits", np.int64),  # OBJ_INDEX_BITS
        ("obj_pfn_shift", np.int64),  # OBJ_INDEX_BITS + the class bits (7.3)
        ("obj_tag_shift", np.int64),  # 0 since 6.12; 1 for 6.1/6.6 (obj << OBJ_TAG_BITS)
        ("max_alloc_size", np.int64),  # ZS_MAX_ALLOC_SIZE = PAGE_SIZE
        ("min_alloc_size", np.int64),  # ZS_MIN_ALLOC_SIZE
        ("size_class_delta", np.int64),  # ZS_SIZE_CLASS_DELTA
        ("huge_class_size", np.int64),  # zs_huge_class_size()
        ("oversize_errno", np.int64),  # errno of zs_malloc(size > PAGE_SIZE)
        ("zspage_isolation", np.int64),  # 1: zspages count isolated pages (6.1, 6.6)
    ]
)
"""``PoolState.vars``: one record.  Hot code does ``v = st.vars[0]`` and reads ``v.h_free``
(numba compiles a record field to one load: as fast as a numbered array slot)."""


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
    vars: np.recarray  # one POOL_VARS_DTYPE record
    scratch: np.ndarray  # int64[MAX_SCRATCH]: page lists built by alloc/migrate (no NRT)


class PoolState61(PoolState):
    """The same state under Linux 6.1's rules (``fullness_scheme`` "4-group", ``compaction``
    "6.1"): four fullness groups in ``fullness_head[:, 0:4]``, the insertion-second rule,
    the ALMOST_FULL-first search and the old compaction (zsmalloc.md §10, §10.1)."""

    __slots__ = ()


STATE_CLASSES: dict[tuple[str, str], type[PoolState]] = {
    ("ratio-12", "6.5"): PoolState,
    ("4-group", "6.1"): PoolState61,
}
"""(profile.fullness_scheme, profile.compaction) -> the state type that carries those rules."""


def state_class(prof: KernelProfile) -> type[PoolState]:
    """The state type for ``prof``'s allocation rules (a KeyError for a combination no kernel
    has; :func:`zsmalloc.profile.require_allocator` refuses those first)."""
    return STATE_CLASSES[(prof.fullness_scheme, prof.compaction)]


# ---- rule predicates, answered from the state's type ------------------------------------
def fullness_4_groups(st: PoolState) -> bool:
    """Does the pool use 6.1's four fullness groups (and its list insertion and search)?"""
    return isinstance(st, PoolState61)


def compaction_61(st: PoolState) -> bool:
    """Does the pool compact with 6.1's algorithm (source first, many destinations)?"""
    return isinstance(st, PoolState61)


if HAVE_NUMBA:
    from numba.extending import overload

    def _constant(answer: bool) -> Callable[[object], bool]:
        # The implementation's parameters must read as the typing function's do.
        def impl(st: object) -> bool:
            return answer

        return impl

    def _type_is_61(st: object) -> bool:
        return getattr(st, "instance_class", None) is PoolState61

    @overload(fullness_4_groups, inline="always")
    def _fullness_4_groups(st: object) -> Callable[[object], bool]:
        return _constant(_type_is_61(st))

    @overload(compaction_61, inline="always")
    def _compaction_61(st: object) -> Callable[[object], bool]:
        return _constant(_type_is_61(st))


def new_pool_state(table: ClassTable, max_pages: int) -> tuple[np.ndarray, PoolState]:
    """Allocate a pool for class table ``table``; every constant comes from its profile.

    Returns ``(mem_map, state)``, the state of the type that carries the profile's
    allocation rules (:func:`state_class`).  ``max_pages`` bounds the arena (pfn 0
    reserved).
    """
    prof = table.profile
    page_size = prof.page_size
    nr = table.nr_size_classes
    mem_map, mm = new_mem_map(max_pages, page_size)
    zs_cap = max_pages + 1  # every zspage owns at least one page
    # Every live object occupies at least ZS_MIN_ALLOC_SIZE bytes of some page.
    h_cap = max_pages * (page_size // prof.ZS_MIN_ALLOC_SIZE) + 1
    v = np.zeros(1, POOL_VARS_DTYPE).view(np.recarray)
    r = v[0]
    r.zs_hwm = 1  # id 0 is NULL
    r.zs_cap = zs_cap
    r.h_hwm = 1  # handle 0 is NULL
    r.h_cap = h_cap
    r.obj_index_bits = prof.OBJ_INDEX_BITS
    r.obj_pfn_shift = prof.OBJ_PFN_SHIFT
    r.obj_tag_shift = prof.obj_tag_shift
    r.oversize_errno = prof.oversize_errno
    r.max_alloc_size = prof.ZS_MAX_ALLOC_SIZE
    r.min_alloc_size = prof.ZS_MIN_ALLOC_SIZE
    r.size_class_delta = prof.ZS_SIZE_CLASS_DELTA
    r.huge_class_size = table.huge_class_size
    r.zspage_isolation = prof.zspage_isolation
    st = state_class(prof)(
        mm=mm,
        class_size=np.asarray(table.size, np.int64).copy(),
        class_index=np.asarray(table.index, np.int64).copy(),
        class_ppz=np.asarray(table.pages_per_zspage, np.int64).copy(),
        class_objs=np.asarray(table.objs_per_zspage, np.int64).copy(),
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
        return -(-nbytes // mmap.PAGESIZE) * mmap.PAGESIZE  # host pages

    mm = st.mm
    pages_hwm = int(mm.vars[0].hwm)
    zs_hwm = int(st.vars[0].zs_hwm)
    h_hwm = int(st.vars[0].h_hwm)
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
