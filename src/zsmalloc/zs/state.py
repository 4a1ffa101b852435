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
  ``huge:1 fullness:4 class:9 magic:8`` in the kernel's order, the class field
  widened to 13 bits for class-table variants with more indices.
* The handle table replaces the ``zs_handle`` slab cache.  A handle is ``id << 3``
  (8-aligned like a slab object address, so ``handle | OBJ_ALLOCATED_TAG`` works);
  ``handle_obj[id]`` is the 8-byte slot holding ``obj``.  A live slot holds ``obj > 0``
  (pfn 0 is never used, so obj is never 0); a free slot holds ``-1 - next_free_id``,
  so a freed or never-allocated handle is detected by one load.

Everything sized by the number of page frames lives in anonymous mappings, so only the
part that is used becomes resident.

Reservation and growth.  The kernel's zsmalloc allocates from memory that exists; here
the arena, ``mem_map`` and the tables must first be reserved as address space, which
``ulimit -v`` or strict overcommit may refuse.  So a pool reserves what it can up front
(up to :data:`RESERVE_ARENA_BYTES` of arena, an eighth of what ``ulimit -v`` leaves,
halving on refusal) and grows when it runs out (:func:`grow_pool_state`), up to its
limit (``max_frames``):

* a numba call that runs out of reserved frames or handle slots fails as at the limit
  (-ENOMEM, nothing changed: zs_malloc and migration check before they change
  anything); :func:`pool_short` then tells the caller whether growing would help, and
  the caller grows and calls again.  Growth never changes which pfn, zspage id or
  handle the next allocation gets, so the numbers are those of an unbounded pool.
* growing builds larger arrays, copies the used part and returns a *new*
  :class:`PoolState` (a named tuple of arrays cannot change in place), counters
  included; the old state is left as it was, so a stale holder works on a detached
  copy, never past the end of an array.  Holders of a state (``Pool.state``, loops
  that took ``st`` as an argument) must take the new one: :class:`~zsmalloc.zs.pool.
  Pool` does so under its lock.
* the zspage table grows with the frames (every zspage owns at least one frame); the
  handle table grows on its own, as objects per frame vary from 1 to
  PAGE_SIZE / ZS_MIN_ALLOC_SIZE.

Growth is the exception: with no address-space limit the first reservation covers a
4 GiB arena (the default pool's whole limit), so hot loops never meet it.

**Which kernel's rules.**  The allocation rules (fullness groups, list insertion, the
allocation search, compaction) are a property of the state's *type*:
:class:`PoolState` follows 6.3 and later, :class:`PoolState61` 6.1, and
:func:`new_pool_state` picks the type from the profile's ``fullness_scheme`` and
``compaction``.  The few functions that differ ask :func:`fullness_4_groups` or
:func:`compaction_61`, which numba answers from the argument's type while it compiles:
each kind of state gets its own machine code, with the other kernel's branch gone, so
the choice costs nothing per operation (and nothing at all for a kernel not used).
Growth keeps the type (``_replace`` makes an instance of the same class).
"""

from __future__ import annotations

import mmap
import resource
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np

from zsmalloc._jit import HAVE_NUMBA, on_numba_load
from zsmalloc.errors import OutOfMemoryError
from zsmalloc.mm.hotpath import hot_njit
from zsmalloc.mm.page import MemMap, anon_zeros
from zsmalloc.mm.zpdesc import grow_mem_map, new_mem_map
from zsmalloc.profile import MAX_CHAIN_SIZE, MAX_CLASS_BITS, KernelProfile
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

# zspage bitfield positions (struct zspage: huge:1, fullness:4, class:CLASS_BITS+1, magic:8).
# The kernel's class field is 9 bits (CLASS_BITS 8); the model's is MAX_CLASS_BITS + 1 = 13,
# wide enough for the class-table variants with finer deltas (8189 indices at delta 8 on
# 64 KiB pages).  Nothing outside the model reads these words, so only the order matters.
ZS_HUGE_SHIFT = 0
ZS_FULLNESS_SHIFT = 1
ZS_FULLNESS_MASK = 0xF
ZS_CLASS_SHIFT = 5
ZS_CLASS_MASK = (1 << (MAX_CLASS_BITS + 1)) - 1
ZS_MAGIC_SHIFT = ZS_CLASS_SHIFT + MAX_CLASS_BITS + 1
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
        ("zs_cap", np.int64),  # table capacity (grows with the frames)
        ("nr_zspages", np.int64),  # live zspages
        # the zs_handle slab cache: the handle table
        ("h_hwm", np.int64),  # next never-used handle id
        ("h_free", np.int64),  # head of the free handle ids (0 = none)
        ("h_cap", np.int64),  # table capacity now
        ("h_max", np.int64),  # the most h_cap may grow to
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
    zs_bits: np.ndarray  # uint32[zs_cap]: huge, fullness, class, magic
    zs_inuse: np.ndarray  # int32[zs_cap]: live objects
    zs_freeobj: np.ndarray  # uint32[zs_cap]: first free object index
    zs_first: np.ndarray  # int32[zs_cap]: first_zpdesc (pfn)
    zs_prev: np.ndarray  # int32[zs_cap]: fullness-list links (zs_next also chains free ids)
    zs_next: np.ndarray  # int32[zs_cap]
    handle_obj: np.ndarray  # int64[h_cap]: the handle slots
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

    @on_numba_load
    def _define_overloads() -> None:
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


RESERVE_ARENA_BYTES = 4 << 30
"""Arena reserved when a pool is made (less if its limit is smaller or the host refuses):
address space only, resident as it is used."""
RESERVE_HANDLES_PER_FRAME = 8
"""Handle slots reserved per reserved frame; the table grows past it for small objects."""
_ZS_FIELDS = ("zs_bits", "zs_inuse", "zs_freeobj", "zs_first", "zs_prev", "zs_next")
_ZS_DTYPES = (np.uint32, np.int32, np.uint32, np.int32, np.int32, np.int32)


def _zspage_table(zs_cap: int) -> dict[str, np.ndarray]:
    return {name: anon_zeros(zs_cap, dt) for name, dt in zip(_ZS_FIELDS, _ZS_DTYPES, strict=True)}


def _handle_limit(table: ClassTable, max_frames: int) -> int:
    """Handle slots the pool can ever need: every frame full of the smallest objects."""
    return (max_frames - 1) * (table.page_size // table.profile.ZS_MIN_ALLOC_SIZE) + 1


def address_space_left() -> int | None:
    """Bytes of address space this process may still map (``ulimit -v``), None if unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as f:
            used = int(f.read().split()[0]) * mmap.PAGESIZE
    except (OSError, ValueError, IndexError):
        used = 0
    return max(0, soft - used)


def _bytes_per_frame(page_size: int) -> int:
    """Host bytes reserved per frame: the page, its struct page, free-stack and zspage-table
    entries, and the handle slots reserved with it."""
    zs_entry = sum(np.dtype(dt).itemsize for dt in _ZS_DTYPES)
    return page_size + 64 + 4 + zs_entry + 8 * RESERVE_HANDLES_PER_FRAME


def _reserve_sizes(want: int, floor: int) -> Iterator[int]:
    """``want``, then halves of it down to ``floor``: what to try when the host refuses."""
    n = want
    while n > floor:
        yield n
        n //= 2
    yield floor


def new_pool_state(
    table: ClassTable, max_frames: int, *, reserve_frames: int | None = None
) -> tuple[np.ndarray, PoolState]:
    """Allocate a pool for class table ``table``; every constant comes from its profile.

    Returns ``(mem_map, state)``, the state of the type that carries the profile's
    allocation rules (:func:`state_class`).  ``max_frames`` bounds the arena (pfn 0
    included, never handed out).  ``reserve_frames`` (default: :data:`RESERVE_ARENA_BYTES` worth)
    are reserved now, fewer if the host refuses; OutOfMemoryError if it refuses even a
    chain's worth.
    """
    prof = table.profile
    page_size = prof.page_size
    nr = table.nr_size_classes
    if reserve_frames is None:
        reserve_frames = RESERVE_ARENA_BYTES // page_size
        left = address_space_left()
        if left is not None:  # under ulimit -v: take a modest share, grow when used
            reserve_frames = min(reserve_frames, left // 8 // _bytes_per_frame(page_size))
    floor = min(max_frames, MAX_CHAIN_SIZE + 2)
    h_max = _handle_limit(table, max_frames)
    for frames in _reserve_sizes(max(floor, min(reserve_frames, max_frames)), floor):
        try:
            mem_map, mm = new_mem_map(frames, page_size, max_frames)
            zs = _zspage_table(frames + 1)  # every zspage owns at least one frame
            h_cap = min(h_max, frames * RESERVE_HANDLES_PER_FRAME + 1)
            handle_obj = anon_zeros(h_cap, np.int64)
            break
        except (OSError, MemoryError):
            continue
    else:
        raise OutOfMemoryError(
            f"cannot reserve host memory for a zsmalloc pool of even {floor - 1} pages "
            "(a limit such as ulimit -v?)"
        )
    v = np.zeros(1, POOL_VARS_DTYPE).view(np.recarray)
    r = v[0]
    r.zs_hwm = 1  # id 0 is NULL
    r.zs_cap = frames + 1
    r.h_hwm = 1  # handle 0 is NULL
    r.h_cap = h_cap
    r.h_max = h_max
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
        handle_obj=handle_obj,
        vars=v,
        scratch=np.zeros(MAX_SCRATCH, np.int64),
        **zs,
    )
    return mem_map, st


# ---- growth ---------------------------------------------------------------------------------
@hot_njit
def frames_short(st: PoolState) -> bool:
    """Fewer free reserved frames than the longest chain, and room to reserve more."""
    m = st.mm.vars[0]
    free = m.nr_free + m.nr_frames - m.hwm
    return free < MAX_CHAIN_SIZE and m.nr_frames < m.max_frames


@hot_njit
def handles_short(st: PoolState) -> bool:
    """No free handle slot left in the reserved table, and room to reserve more."""
    v = st.vars[0]
    return v.h_free == 0 and v.h_hwm >= v.h_cap and v.h_cap < v.h_max


@hot_njit
def pool_short(st: PoolState) -> bool:
    """After an -ENOMEM: would :func:`grow_pool_state` let the call succeed?

    Cheap, so compiled loops ask it on their failure path and return to Python to grow.
    """
    return frames_short(st) or handles_short(st)


def _grow_steps(cap: int, limit: int, need: int) -> Iterator[int]:
    """New capacities to try, largest first: double, then smaller steps down to ``need``."""
    step = max(cap, need)
    while step > need:
        yield min(limit, cap + step)
        step //= 2
    yield min(limit, cap + need)


def grow_pool_state(
    mem_map: np.ndarray, st: PoolState
) -> tuple[np.ndarray, PoolState] | None:
    """Reserve more of whatever :func:`pool_short` finds short: a new ``(mem_map, state)``.

    None when nothing can grow (every short table is at its limit: the -ENOMEM stands).
    OutOfMemoryError when the host refuses even the smallest useful step of everything
    that was short.  ``st`` itself is never changed.
    """
    if not pool_short(st):
        return None
    grown = False
    if frames_short(st):
        m = st.mm.vars[0]
        cap, limit = int(m.nr_frames), int(m.max_frames)
        for frames in _grow_steps(cap, limit, min(limit - cap, MAX_CHAIN_SIZE)):
            try:
                zs = _zspage_table(frames + 1)
                new_map, mm = grow_mem_map(mem_map, st.mm, frames)
            except (OSError, MemoryError):
                continue
            used = int(st.vars[0].zs_hwm)
            for name in _ZS_FIELDS:
                zs[name][:used] = getattr(st, name)[:used]
            v = st.vars.copy()
            v[0].zs_cap = frames + 1
            mem_map, st, grown = new_map, st._replace(mm=mm, vars=v, **zs), True
            break
    if handles_short(st):
        v = st.vars[0]
        cap, limit = int(v.h_cap), int(v.h_max)
        for h_cap in _grow_steps(cap, limit, 1):
            try:
                handle_obj = anon_zeros(h_cap, np.int64)
            except (OSError, MemoryError):
                continue
            used = int(v.h_hwm)
            handle_obj[:used] = st.handle_obj[:used]
            hv = st.vars.copy()
            hv[0].h_cap = h_cap
            st, grown = st._replace(handle_obj=handle_obj, vars=hv), True
            break
    if not grown:
        raise OutOfMemoryError(
            "cannot reserve more host memory for the zsmalloc pool "
            f"({int(st.mm.vars[0].nr_frames) - 1} pages reserved; a limit such as ulimit -v?)"
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
