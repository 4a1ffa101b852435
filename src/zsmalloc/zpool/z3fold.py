"""z3fold: up to three compressed objects per page, with in-page compaction.

Mirrors mm/z3fold.c of Linux 6.1 (with its LRU and ``z3fold_reclaim_page``) and of 6.5
to 6.14 (the LRU gone; deprecated in 6.12, removed in 6.15).  One CPU: the model is a
uniprocessor, as the guests it is checked against are.

Why it is shaped so: z3fold is zbud with a third, *middle* object.  The first object
sits after the header, the last one at the end of the page, the middle one anywhere
between (``start_middle``); when objects are freed the middle one is moved to close the
gaps (:func:`z3fold_compact_page`), or, when it is alone, into another page
(:func:`compact_single_buddy`) so that its page can go.  Because the middle object
moves, handles are indirect: a handle is the address of a word in a ``struct
z3fold_buddy_slots`` (four words, 64-byte aligned, from a slab cache) that holds the
object's page and buddy number; moving the object rewrites that word.  Objects too big
to share a page (more than ``PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE`` bytes, 3904 on
4 KiB pages) get a *headless* page of their own, whose handle is the page address with
bit 0 set.

Pages are cut into 64 chunks.  ``struct z3fold_header`` takes 88 bytes on x86_64
without lock debugging (Debian's build), rounded up to two chunks
(``ZHDR_SIZE_ALIGNED`` 128), so ``NCHUNKS`` = 62 chunks hold data.

==========================  =====================================================
structure                   here
==========================  =====================================================
z3fold_header               per-pfn arrays: ``first/middle/last_chunks``,
                            ``start_middle``, ``first_num`` (2 bits),
                            ``mapped_count``, ``foreign_handles``, ``cpu``, the
                            kref ``refcount``, ``slots`` and the buddy-list link
page->private bits          ``pflags``: PAGE_HEADLESS, MIDDLE_CHUNK_MAPPED,
                            NEEDS_COMPACTING, PAGE_STALE, PAGE_CLAIMED
page->lru                   the LRU link (6.1)
unbuddied (per cpu)         NCHUNKS list heads: pages with a free buddy, by the
                            largest free region in chunks
z3fold_buddy_slots          ``slot_val[id, 4]`` and ``slot_nofree[id]``; ids from 2,
                            recycled LIFO like a slab cache; id 1 is the on-stack
                            slots z3fold_reclaim_page() encodes handles in
pages_nr                    ``vars.pages_nr``
==========================  =====================================================

Where the model has to choose what concurrency decides in the kernel: freeing an
object queues the page's compaction on a workqueue (``queue_work_on``) when the page is
on an unbuddied list; here that work runs at once, inside :func:`z3fold_free`, as it
does in the kernel when the page was on no list.  A released page is freed at once
instead of through the ``stale`` list and its work item (``pages_nr`` drops at release
in the kernel too, so the pool size is the same).  Page migration is not modelled.

Eviction calls back into zswap, which numba cannot do: :func:`z3fold_reclaim_take`
and :func:`z3fold_reclaim_putback` are the two halves of one round of
``z3fold_reclaim_page``, and :meth:`Z3foldPool.reclaim_page` calls the callback between
them (middle, then first, then last buddy, as the kernel does).
"""

from __future__ import annotations

import errno
from typing import NamedTuple

import numpy as np

from zsmalloc.mm.hotpath import as_i64, hot_njit
from zsmalloc.mm.page import EBUG, MemMap, alloc_page, anon_zeros, free_page, memcpy
from zsmalloc.mm.zpdesc import new_mem_map
from zsmalloc.zpool.driver import DriverOps, ZpoolDriver
from zsmalloc.zpool.driver import EvictFn as EvictFn  # re-exported: zpool_ops.evict
from zsmalloc.zpool.list import (
    INIT_LIST_HEAD,
    list_add,
    list_del,
    list_del_init,
    list_empty,
    list_first,
)

NCHUNKS_ORDER = 6
ZHDR_SIZE = 88  # sizeof(struct z3fold_header): x86_64, no spinlock debugging, no lockdep
BUDDY_MASK = 0x3
BUDDY_SHIFT = 2
SLOTS_SHIFT = 6  # SLOTS_ALIGN 0x40: a slots structure is 64-byte aligned
BIG_CHUNK_GAP = 3  # z3fold_compact_page() moves the middle object for at least this gain
HEADLESS, FIRST, MIDDLE, LAST = 0, 1, 2, 3  # enum buddy
RECLAIM_SLOTS = 1  # the slots z3fold_reclaim_page() keeps on its stack
FIRST_SLOTS = 2  # first id of the slab cache

# page->private bits (enum z3fold_page_flags)
PAGE_HEADLESS = 0
MIDDLE_CHUNK_MAPPED = 1
NEEDS_COMPACTING = 2
PAGE_STALE = 3
PAGE_CLAIMED = 4

Z3FOLD_VARS_DTYPE = np.dtype(
    [
        ("pages_nr", np.int64),  # pool->pages_nr
        ("page_shift", np.int64),
        ("chunk_shift", np.int64),
        ("zhdr_size", np.int64),  # ZHDR_SIZE_ALIGNED
        ("zhdr_chunks", np.int64),  # ZHDR_CHUNKS
        ("total_chunks", np.int64),  # TOTAL_CHUNKS = PAGE_SIZE >> CHUNK_SHIFT
        ("nchunks", np.int64),  # NCHUNKS = TOTAL_CHUNKS - ZHDR_CHUNKS
        ("unbuddied", np.int64),  # node of unbuddied[0] (cpu 0)
        ("lru", np.int64),  # node of the LRU head
        ("has_lru", np.int64),  # 1: 6.1's LRU and reclaim
        ("slots_hwm", np.int64),  # next never-used slots id
        ("slots_free", np.int64),  # head of the freed slots ids (0 = none)
        ("slots_live", np.int64),  # slots structures allocated
    ]
)


class Z3foldState(NamedTuple):
    """``struct z3fold_pool`` and every page's ``struct z3fold_header``, as arrays."""

    mm: MemMap
    buddy_nxt: np.ndarray  # int64[nodes]: zhdr->buddy and the unbuddied heads
    buddy_prv: np.ndarray
    lru_nxt: np.ndarray  # int64[nodes]: page->lru and the pool LRU head
    lru_prv: np.ndarray
    pflags: np.ndarray  # uint8[max_pages]: page->private bits
    first_chunks: np.ndarray  # int32[max_pages]
    middle_chunks: np.ndarray
    last_chunks: np.ndarray
    start_middle: np.ndarray
    first_num: np.ndarray  # int8: 2-bit bitfield
    mapped_count: np.ndarray  # int32
    foreign_handles: np.ndarray  # int32
    cpu: np.ndarray  # int8: -1, or the cpu whose unbuddied list holds the page (0)
    refcount: np.ndarray  # int32: the kref
    slots: np.ndarray  # int64[max_pages]: zhdr->slots (id, 0 = NULL)
    slot_val: np.ndarray  # int64[cap, 4]: slots->slot[]
    slot_nofree: np.ndarray  # uint8[cap]: HANDLES_NOFREE in slots->pool
    slot_next: np.ndarray  # int64[cap]: free-id chain of the slab cache
    vars: np.recarray  # one Z3FOLD_VARS_DTYPE record


def z3fold_geometry(page_size: int) -> dict[str, int]:
    """The chunk constants (4 KiB pages: 64-byte chunks, a 128-byte header, 62 chunks)."""
    page_shift = page_size.bit_length() - 1
    chunk_shift = page_shift - NCHUNKS_ORDER
    chunk = 1 << chunk_shift
    zhdr = -(-ZHDR_SIZE // chunk) * chunk  # round_up(sizeof(struct z3fold_header), CHUNK_SIZE)
    total = page_size >> chunk_shift
    return {
        "chunk_shift": chunk_shift,
        "chunk_size": chunk,
        "zhdr_size": zhdr,
        "zhdr_chunks": zhdr >> chunk_shift,
        "total_chunks": total,
        "nchunks": total - (zhdr >> chunk_shift),
        "max_buddy_size": page_size - zhdr - chunk,  # larger objects go headless
    }


def new_z3fold_state(max_pages: int, page_size: int, lru: bool) -> Z3foldState:
    """z3fold_create_pool(): an empty pool over its own arena of ``max_pages`` frames."""
    g = z3fold_geometry(page_size)
    _, mm = new_mem_map(max_pages, page_size)
    nodes = max_pages + g["nchunks"] + 1
    # Every live slots structure holds at least one live handle, and a page holds at most
    # three objects: 3 * pages bounds the structures in use.
    cap = 3 * max_pages + FIRST_SLOTS
    v = np.zeros(1, Z3FOLD_VARS_DTYPE).view(np.recarray)
    r = v[0]
    r.page_shift = page_size.bit_length() - 1
    for k in ("chunk_shift", "zhdr_size", "zhdr_chunks", "total_chunks", "nchunks"):
        setattr(r, k, g[k])
    r.unbuddied = max_pages
    r.lru = max_pages + g["nchunks"]
    r.has_lru = int(lru)
    r.slots_hwm = FIRST_SLOTS
    st = Z3foldState(
        mm=mm,
        buddy_nxt=anon_zeros(nodes, np.int64),
        buddy_prv=anon_zeros(nodes, np.int64),
        lru_nxt=anon_zeros(nodes, np.int64),
        lru_prv=anon_zeros(nodes, np.int64),
        pflags=anon_zeros(max_pages, np.uint8),
        first_chunks=anon_zeros(max_pages, np.int32),
        middle_chunks=anon_zeros(max_pages, np.int32),
        last_chunks=anon_zeros(max_pages, np.int32),
        start_middle=anon_zeros(max_pages, np.int32),
        first_num=anon_zeros(max_pages, np.int8),
        mapped_count=anon_zeros(max_pages, np.int32),
        foreign_handles=anon_zeros(max_pages, np.int32),
        cpu=anon_zeros(max_pages, np.int8),
        refcount=anon_zeros(max_pages, np.int32),
        slots=anon_zeros(max_pages, np.int64),
        slot_val=anon_zeros(cap * 4, np.int64).reshape(cap, 4),
        slot_nofree=anon_zeros(cap, np.uint8),
        slot_next=anon_zeros(cap, np.int64),
        vars=v,
    )
    st.slot_nofree[RECLAIM_SLOTS] = 1  # slots.pool = pool | (1 << HANDLES_NOFREE)
    for i in range(g["nchunks"]):
        INIT_LIST_HEAD(st.buddy_nxt, st.buddy_prv, max_pages + i)
    INIT_LIST_HEAD(st.lru_nxt, st.lru_prv, max_pages + g["nchunks"])
    return st


# ---- page->private bits -------------------------------------------------------------------
@hot_njit
def test_bit(st: Z3foldState, pfn: int, bit: int) -> bool:
    return (st.pflags[pfn] >> bit) & 1 != 0


@hot_njit
def set_bit(st: Z3foldState, pfn: int, bit: int) -> None:
    st.pflags[pfn] = st.pflags[pfn] | np.uint8(1 << bit)


@hot_njit
def clear_bit(st: Z3foldState, pfn: int, bit: int) -> None:
    st.pflags[pfn] = st.pflags[pfn] & np.uint8(0xFF ^ (1 << bit))


@hot_njit
def test_and_set_bit(st: Z3foldState, pfn: int, bit: int) -> bool:
    old = test_bit(st, pfn, bit)
    set_bit(st, pfn, bit)
    return old


@hot_njit
def test_and_clear_bit(st: Z3foldState, pfn: int, bit: int) -> bool:
    old = test_bit(st, pfn, bit)
    clear_bit(st, pfn, bit)
    return old


# ---- slots and handles --------------------------------------------------------------------
@hot_njit
def alloc_slots(st: Z3foldState) -> int:
    """kmem_cache_zalloc(pool->c_handle): a zeroed slots structure (LIFO reuse)."""
    v = st.vars[0]
    if v.slots_free:
        sid = v.slots_free
        v.slots_free = as_i64(st.slot_next[sid])
    else:
        sid = v.slots_hwm
        v.slots_hwm += 1
    for i in range(4):
        st.slot_val[sid, i] = 0
    st.slot_nofree[sid] = 0
    v.slots_live += 1
    return sid


@hot_njit
def free_slots(st: Z3foldState, sid: int) -> None:
    """kmem_cache_free(pool->c_handle, slots)."""
    if sid < FIRST_SLOTS:
        return
    v = st.vars[0]
    st.slot_next[sid] = v.slots_free
    v.slots_free = sid
    v.slots_live -= 1


@hot_njit
def handle_word(handle: int) -> tuple[int, int]:
    """(slots id, slot index) of a non-headless handle (``&slots->slot[idx]``)."""
    return handle >> SLOTS_SHIFT, (handle >> 3) & BUDDY_MASK


@hot_njit
def get_z3fold_header(st: Z3foldState, handle: int) -> int:
    """The pfn of a handle's page: through its slot word, or the headless page itself."""
    if handle & (1 << PAGE_HEADLESS):
        return handle >> st.vars[0].page_shift
    sid, idx = handle_word(handle)
    return as_i64(st.slot_val[sid, idx]) >> st.vars[0].page_shift


@hot_njit
def __idx(st: Z3foldState, pfn: int, bud: int) -> int:
    """The slot index of buddy ``bud``: (bud + first_num) & BUDDY_MASK."""
    return (bud + as_i64(st.first_num[pfn])) & BUDDY_MASK


@hot_njit
def __encode_handle(st: Z3foldState, pfn: int, sid: int, bud: int) -> int:
    """Write the buddy's word into slots ``sid``; the handle is that word's address."""
    h = pfn << st.vars[0].page_shift
    if bud == HEADLESS:
        return h | (1 << PAGE_HEADLESS)
    idx = __idx(st, pfn, bud)
    h += idx
    if bud == LAST:
        h |= as_i64(st.last_chunks[pfn]) << BUDDY_SHIFT
    st.slot_val[sid, idx] = h
    return (sid << SLOTS_SHIFT) | (idx << 3)


@hot_njit
def encode_handle(st: Z3foldState, pfn: int, bud: int) -> int:
    return __encode_handle(st, pfn, as_i64(st.slots[pfn]), bud)


@hot_njit
def handle_to_chunks(st: Z3foldState, handle: int) -> int:
    """A LAST buddy's size in chunks, kept in its slot word."""
    sid, idx = handle_word(handle)
    return (as_i64(st.slot_val[sid, idx]) & ((1 << st.vars[0].page_shift) - 1)) >> BUDDY_SHIFT


@hot_njit
def handle_to_buddy(st: Z3foldState, handle: int) -> int:
    """(word - first_num) & BUDDY_MASK: the buddy a handle names in its page now."""
    sid, idx = handle_word(handle)
    addr = as_i64(st.slot_val[sid, idx])
    pfn = addr >> st.vars[0].page_shift
    return (addr - as_i64(st.first_num[pfn])) & BUDDY_MASK


@hot_njit
def free_handle(st: Z3foldState, handle: int, pfn: int) -> None:
    """Clear the handle's word; free its slots when all four words are clear."""
    sid, idx = handle_word(handle)
    st.slot_val[sid, idx] = 0
    if st.slot_nofree[sid]:
        return
    if st.slots[pfn] != sid:
        st.foreign_handles[pfn] -= 1
    for i in range(4):
        if st.slot_val[sid, i] != 0:
            return
    if st.slots[pfn] == sid:
        st.slots[pfn] = 0
    free_slots(st, sid)


# ---- pages ---------------------------------------------------------------------------------
@hot_njit
def init_z3fold_page(st: Z3foldState, pfn: int, headless: bool) -> None:
    st.pflags[pfn] = 0
    INIT_LIST_HEAD(st.lru_nxt, st.lru_prv, pfn)
    if headless:
        return
    st.first_chunks[pfn] = 0
    st.middle_chunks[pfn] = 0
    st.last_chunks[pfn] = 0
    st.start_middle[pfn] = 0
    st.first_num[pfn] = 0
    st.mapped_count[pfn] = 0
    st.foreign_handles[pfn] = 0
    st.refcount[pfn] = 1  # kref_init
    st.cpu[pfn] = -1
    st.slots[pfn] = alloc_slots(st)
    INIT_LIST_HEAD(st.buddy_nxt, st.buddy_prv, pfn)


@hot_njit
def __release_z3fold_page(st: Z3foldState, pfn: int) -> int:
    """The page's last reference is gone: off the LRU, out of the pool (and freed here)."""
    set_bit(st, pfn, PAGE_STALE)
    clear_bit(st, pfn, NEEDS_COMPACTING)
    if not list_empty(st.lru_nxt, pfn):
        list_del_init(st.lru_nxt, st.lru_prv, pfn)
    st.vars[0].pages_nr -= 1
    # The kernel frees the frame later from the stale list; nothing can reach it now.
    return free_page(st.mm, pfn)


@hot_njit
def kref_put(st: Z3foldState, pfn: int, on_list: bool) -> int:
    """Drop a reference: 1 if that released the page (``release_z3fold_page_locked`` or,
    ``on_list``, ``..._locked_list``, which first takes it off its buddy list), else 0;
    -EBUG if the frame could not be freed."""
    st.refcount[pfn] -= 1
    if st.refcount[pfn] > 0:
        return 0
    if on_list:
        list_del_init(st.buddy_nxt, st.buddy_prv, pfn)
    res = __release_z3fold_page(st, pfn)
    return 1 if res == 0 else res


@hot_njit
def num_free_chunks(st: Z3foldState, pfn: int) -> int:
    """The larger free region beside a middle object, or all that the ends leave."""
    v = st.vars[0]
    middle = as_i64(st.middle_chunks[pfn])
    if middle != 0:
        start = as_i64(st.start_middle[pfn])
        before = 0 if st.first_chunks[pfn] else start - v.zhdr_chunks
        after = 0 if st.last_chunks[pfn] else v.total_chunks - (start + middle)
        return max(before, after)
    return v.nchunks - st.first_chunks[pfn] - st.last_chunks[pfn]


@hot_njit
def add_to_unbuddied(st: Z3foldState, pfn: int) -> None:
    """A page with a free buddy goes first on unbuddied[free chunks] of this cpu (0)."""
    if st.first_chunks[pfn] == 0 or st.last_chunks[pfn] == 0 or st.middle_chunks[pfn] == 0:
        list_add(st.buddy_nxt, st.buddy_prv, pfn, st.vars[0].unbuddied + num_free_chunks(st, pfn))
        st.cpu[pfn] = 0


@hot_njit
def get_free_buddy(st: Z3foldState, pfn: int, chunks: int) -> int:
    """Where an object of ``chunks`` goes in this page: FIRST, LAST, MIDDLE (or HEADLESS: none)."""
    if st.middle_chunks[pfn]:
        if not st.first_chunks[pfn] and chunks <= st.start_middle[pfn] - st.vars[0].zhdr_chunks:
            return FIRST
        if not st.last_chunks[pfn]:
            return LAST
        return HEADLESS
    if not st.first_chunks[pfn]:
        return FIRST
    if not st.last_chunks[pfn]:
        return LAST
    return MIDDLE


@hot_njit
def buddy_single(st: Z3foldState, pfn: int) -> bool:
    """Does the page hold at most one object?"""
    f = st.first_chunks[pfn] != 0
    m = st.middle_chunks[pfn] != 0
    la = st.last_chunks[pfn] != 0
    return not ((f and m) or (f and la) or (m and la))


@hot_njit
def memmove(arena: np.ndarray, dst: int, src: int, n: int) -> None:
    """memmove() within the arena (the regions may overlap)."""
    if dst < src:
        for k in range(n):
            arena[dst + k] = arena[src + k]
    elif dst > src:
        for k in range(n - 1, -1, -1):
            arena[dst + k] = arena[src + k]


@hot_njit
def mchunk_memmove(st: Z3foldState, pfn: int, dst_chunk: int) -> None:
    """Move the middle object to chunk ``dst_chunk`` of its page."""
    cs = st.vars[0].chunk_shift
    base = pfn << st.vars[0].page_shift
    memmove(
        st.mm.arena,
        base + (dst_chunk << cs),
        base + (as_i64(st.start_middle[pfn]) << cs),
        as_i64(st.middle_chunks[pfn]) << cs,
    )


@hot_njit
def z3fold_compact_page(st: Z3foldState, pfn: int) -> int:
    """Mirrors z3fold_compact_page(): move the middle object to close a gap; 1 if moved."""
    v = st.vars[0]
    if test_bit(st, pfn, MIDDLE_CHUNK_MAPPED) or st.middle_chunks[pfn] == 0:
        return 0
    first = as_i64(st.first_chunks[pfn])
    last = as_i64(st.last_chunks[pfn])
    middle = as_i64(st.middle_chunks[pfn])
    start = as_i64(st.start_middle[pfn])
    if first == 0 and last == 0:  # alone: it becomes the first object
        mchunk_memmove(st, pfn, v.zhdr_chunks)
        st.first_chunks[pfn] = middle
        st.middle_chunks[pfn] = 0
        st.start_middle[pfn] = 0
        st.first_num[pfn] = (as_i64(st.first_num[pfn]) + 1) & BUDDY_MASK
        return 1
    # Moving data is expensive: only for a gain of at least BIG_CHUNK_GAP chunks.
    if first != 0 and last == 0 and start - (first + v.zhdr_chunks) >= BIG_CHUNK_GAP:
        mchunk_memmove(st, pfn, first + v.zhdr_chunks)
        st.start_middle[pfn] = first + v.zhdr_chunks
        return 1
    if last != 0 and first == 0 and v.total_chunks - (last + start + middle) >= BIG_CHUNK_GAP:
        new_start = v.total_chunks - last - middle
        mchunk_memmove(st, pfn, new_start)
        st.start_middle[pfn] = new_start
        return 1
    return 0


@hot_njit
def __z3fold_alloc(st: Z3foldState, size: int) -> int:
    """Mirrors __z3fold_alloc(): a page with room for ``size`` taken off its list, or 0.

    The lowest unbuddied list with enough chunks, its first page; a page being compacted
    or reclaimed is dropped from the list and the search starts over, as in the kernel.
    (Other cpus' lists are searched for an exact fit next; with one cpu there are none.)
    """
    v = st.vars[0]
    chunks = (size + (1 << v.chunk_shift) - 1) >> v.chunk_shift
    pfn = 0
    retry = True
    while retry:
        retry = False
        pfn = 0
        for i in range(chunks, v.nchunks):
            head = v.unbuddied + i
            if list_empty(st.buddy_nxt, head):
                continue
            pfn = list_first(st.buddy_nxt, head)
            list_del_init(st.buddy_nxt, st.buddy_prv, pfn)
            st.cpu[pfn] = -1
            if test_bit(st, pfn, NEEDS_COMPACTING) or test_bit(st, pfn, PAGE_CLAIMED):
                retry = True
                break
            st.refcount[pfn] += 1  # kref_get: the new object's reference
            break
    if pfn and not st.slots[pfn]:
        st.slots[pfn] = alloc_slots(st)
    return pfn


@hot_njit
def buddy_chunks(st: Z3foldState, pfn: int, bud: int) -> int:
    """The size in chunks of buddy ``bud`` of a page (0: free)."""
    if bud == FIRST:
        return as_i64(st.first_chunks[pfn])
    if bud == MIDDLE:
        return as_i64(st.middle_chunks[pfn])
    return as_i64(st.last_chunks[pfn])


@hot_njit
def set_buddy_chunks(st: Z3foldState, pfn: int, bud: int, chunks: int) -> None:
    if bud == FIRST:
        st.first_chunks[pfn] = chunks
    elif bud == MIDDLE:
        st.middle_chunks[pfn] = chunks
    else:
        st.last_chunks[pfn] = chunks


@hot_njit
def buddy_offset(st: Z3foldState, pfn: int, bud: int) -> int:
    """Where buddy ``bud`` starts in its page, in bytes."""
    v = st.vars[0]
    if bud == FIRST:
        return v.zhdr_size
    if bud == MIDDLE:
        return as_i64(st.start_middle[pfn]) << v.chunk_shift
    return (1 << v.page_shift) - (as_i64(st.last_chunks[pfn]) << v.chunk_shift)


@hot_njit
def compact_single_buddy(st: Z3foldState, pfn: int) -> int:
    """Mirrors compact_single_buddy(): move the page's one object into another page.

    Returns the page it went to, or 0 when no other page has room (nothing moves).  The
    object keeps its handle: its slot word now names the new page, which counts it
    as a foreign handle.
    """
    v = st.vars[0]
    cs = v.chunk_shift
    base = pfn << v.page_shift
    sid = as_i64(st.slots[pfn])
    which = HEADLESS  # the buddy that moves: the first one still named by a handle
    for bud in (FIRST, MIDDLE, LAST):
        if buddy_chunks(st, pfn, bud) and st.slot_val[sid, __idx(st, pfn, bud)]:
            which = bud
            break
    if which == HEADLESS:
        return 0
    chunks = buddy_chunks(st, pfn, which)
    sz = chunks << cs
    idx = __idx(st, pfn, which)
    src = base + buddy_offset(st, pfn, which)
    new = __z3fold_alloc(st, sz)
    if new == 0:
        return 0
    new_bud = get_free_buddy(st, new, chunks)
    nbase = new << v.page_shift
    if new == pfn or new_bud == HEADLESS:  # out_fail (cannot happen: pfn is on no list)
        if kref_put(st, new, False) == 0:
            add_to_unbuddied(st, new)
        return 0
    if new_bud == FIRST:
        st.first_chunks[new] = chunks
        dst = nbase + v.zhdr_size
    elif new_bud == MIDDLE:
        st.middle_chunks[new] = chunks
        st.start_middle[new] = st.first_chunks[new] + v.zhdr_chunks
        dst = nbase + (as_i64(st.start_middle[new]) << cs)
    else:
        st.last_chunks[new] = chunks
        dst = nbase + (1 << v.page_shift) - (chunks << cs)
    st.foreign_handles[new] += 1
    memcpy(st.mm.arena, dst, st.mm.arena, src, sz)
    word = nbase + __idx(st, new, new_bud)
    if new_bud == LAST:
        word |= as_i64(st.last_chunks[new]) << BUDDY_SHIFT
    st.slot_val[sid, idx] = word
    add_to_unbuddied(st, new)
    set_buddy_chunks(st, pfn, which, 0)
    return new


@hot_njit
def do_compact_page(st: Z3foldState, pfn: int) -> int:
    """Mirrors do_compact_page(): the work a free queued on the page (0, or -EBUG)."""
    if not test_and_clear_bit(st, pfn, NEEDS_COMPACTING):
        return 0  # WARN_ON in the kernel
    list_del_init(st.buddy_nxt, st.buddy_prv, pfn)
    res = kref_put(st, pfn, False)  # the reference taken when the work was queued
    if res != 0:
        return min(res, 0)
    if test_bit(st, pfn, PAGE_STALE) or test_and_set_bit(st, pfn, PAGE_CLAIMED):
        return 0
    if (
        st.foreign_handles[pfn] == 0
        and buddy_single(st, pfn)
        and st.mapped_count[pfn] == 0
        and compact_single_buddy(st, pfn) != 0
    ):
        res = kref_put(st, pfn, False)  # the moved object's reference
        if res == 0:
            clear_bit(st, pfn, PAGE_CLAIMED)
        return min(res, 0)
    z3fold_compact_page(st, pfn)
    add_to_unbuddied(st, pfn)
    clear_bit(st, pfn, PAGE_CLAIMED)
    return 0


# ---- the allocator --------------------------------------------------------------------------
@hot_njit
def z3fold_alloc(st: Z3foldState, size: int) -> int:
    """Mirrors z3fold_alloc(): a handle, or -EINVAL (size 0), -ENOSPC (> PAGE_SIZE), -ENOMEM."""
    v = st.vars[0]
    page_size = 1 << v.page_shift
    if size <= 0:
        return -errno.EINVAL
    if size > page_size:
        return -errno.ENOSPC
    chunks = (size + (1 << v.chunk_shift) - 1) >> v.chunk_shift
    pfn = 0
    bud = HEADLESS
    if size <= page_size - v.zhdr_size - (1 << v.chunk_shift):
        pfn = __z3fold_alloc(st, size)
        if pfn:
            bud = get_free_buddy(st, pfn, chunks)
            if bud == HEADLESS:  # a WARN and a retry in the kernel: the lists promise room
                return -EBUG
        else:
            bud = FIRST
    if pfn == 0:
        pfn = alloc_page(st.mm)
        if pfn < 0:
            return -errno.ENOMEM
        init_z3fold_page(st, pfn, bud == HEADLESS)
        v.pages_nr += 1
        if bud == HEADLESS:
            set_bit(st, pfn, PAGE_HEADLESS)
    if bud != HEADLESS:
        if bud == FIRST:
            st.first_chunks[pfn] = chunks
        elif bud == LAST:
            st.last_chunks[pfn] = chunks
        else:
            st.middle_chunks[pfn] = chunks
            st.start_middle[pfn] = st.first_chunks[pfn] + v.zhdr_chunks
        add_to_unbuddied(st, pfn)
    if v.has_lru:  # add/move the page to the beginning of the LRU
        if not list_empty(st.lru_nxt, pfn):
            list_del(st.lru_nxt, st.lru_prv, pfn)
        list_add(st.lru_nxt, st.lru_prv, pfn, v.lru)
    return encode_handle(st, pfn, bud)


@hot_njit
def z3fold_free(st: Z3foldState, handle: int) -> int:
    """Mirrors z3fold_free(), the queued compaction run at once: 0, or -EBUG."""
    pfn = get_z3fold_header(st, handle)
    page_claimed = test_and_set_bit(st, pfn, PAGE_CLAIMED)
    if test_bit(st, pfn, PAGE_HEADLESS):
        if not page_claimed:  # a headless page under reclaim is freed by reclaim
            if st.vars[0].has_lru:
                list_del(st.lru_nxt, st.lru_prv, pfn)
            st.vars[0].pages_nr -= 1
            return free_page(st.mm, pfn)
        return 0
    bud = handle_to_buddy(st, handle)
    if bud == FIRST:
        st.first_chunks[pfn] = 0
    elif bud == MIDDLE:
        st.middle_chunks[pfn] = 0
    elif bud == LAST:
        st.last_chunks[pfn] = 0
    else:
        return -EBUG  # "unknown bud": a corrupt slot word
    if not page_claimed:
        free_handle(st, handle, pfn)
    res = kref_put(st, pfn, True)
    if res != 0:
        return min(res, 0)
    if page_claimed:  # reclaim owns the page
        return 0
    if test_and_set_bit(st, pfn, NEEDS_COMPACTING):
        clear_bit(st, pfn, PAGE_CLAIMED)
        return 0
    st.cpu[pfn] = -1
    st.refcount[pfn] += 1  # the compaction work's reference
    clear_bit(st, pfn, PAGE_CLAIMED)
    return do_compact_page(st, pfn)


@hot_njit
def z3fold_map(st: Z3foldState, handle: int) -> int:
    """Mirrors z3fold_map(): the object's address in the arena (a middle one is pinned)."""
    v = st.vars[0]
    pfn = get_z3fold_header(st, handle)
    addr = pfn << v.page_shift
    if test_bit(st, pfn, PAGE_HEADLESS):
        return addr
    bud = handle_to_buddy(st, handle)
    if bud == FIRST:
        addr += v.zhdr_size
    elif bud == MIDDLE:
        addr += as_i64(st.start_middle[pfn]) << v.chunk_shift
        set_bit(st, pfn, MIDDLE_CHUNK_MAPPED)
    elif bud == LAST:
        addr += (1 << v.page_shift) - (handle_to_chunks(st, handle) << v.chunk_shift)
    else:
        return -EBUG
    st.mapped_count[pfn] += 1
    return addr


@hot_njit
def z3fold_unmap(st: Z3foldState, handle: int) -> None:
    """Mirrors z3fold_unmap()."""
    pfn = get_z3fold_header(st, handle)
    if test_bit(st, pfn, PAGE_HEADLESS):
        return
    if handle_to_buddy(st, handle) == MIDDLE:
        clear_bit(st, pfn, MIDDLE_CHUNK_MAPPED)
    st.mapped_count[pfn] -= 1


@hot_njit
def z3fold_reclaim_take(st: Z3foldState) -> int:
    """The first half of one z3fold_reclaim_page() round.

    Walks the LRU from its oldest page and claims the first it may evict (not a page
    holding foreign handles), encoding its objects' handles in the on-stack slots
    (:data:`RECLAIM_SLOTS`).  Returns its pfn; 0 when no page can be evicted;
    -EINVAL with no LRU or an empty one.
    """
    v = st.vars[0]
    if not v.has_lru or list_empty(st.lru_nxt, v.lru):
        return -errno.EINVAL
    pfn = as_i64(st.lru_prv[v.lru])
    found = 0
    while pfn != v.lru:
        if test_bit(st, pfn, PAGE_HEADLESS):
            if not test_and_set_bit(st, pfn, PAGE_CLAIMED):
                found = pfn
                break
        elif st.foreign_handles[pfn] == 0 and not test_and_set_bit(st, pfn, PAGE_CLAIMED):
            list_del_init(st.buddy_nxt, st.buddy_prv, pfn)
            st.cpu[pfn] = -1
            st.refcount[pfn] += 1
            found = pfn
            break
        pfn = as_i64(st.lru_prv[pfn])
    if found == 0:
        return 0
    list_del_init(st.lru_nxt, st.lru_prv, found)
    if not test_bit(st, found, PAGE_HEADLESS):
        for i in range(4):
            st.slot_val[RECLAIM_SLOTS, i] = 0
    return found


@hot_njit
def z3fold_reclaim_handle(st: Z3foldState, pfn: int, bud: int) -> int:
    """The handle reclaim evicts buddy ``bud`` with (0: the buddy is free)."""
    if test_bit(st, pfn, PAGE_HEADLESS):
        return __encode_handle(st, pfn, 0, HEADLESS) if bud == FIRST else 0
    if bud == FIRST and not st.first_chunks[pfn]:
        return 0
    if bud == MIDDLE and not st.middle_chunks[pfn]:
        return 0
    if bud == LAST and not st.last_chunks[pfn]:
        return 0
    return __encode_handle(st, pfn, RECLAIM_SLOTS, bud)


@hot_njit
def z3fold_reclaim_putback(st: Z3foldState, pfn: int, ret: int) -> int:
    """The second half: 1 if the page was freed, 0 if it went back (LRU head), or -EBUG.

    ``ret`` is the last eviction's result (0: every object was written back).
    """
    v = st.vars[0]
    if test_bit(st, pfn, PAGE_HEADLESS):
        if ret == 0:
            v.pages_nr -= 1
            res = free_page(st.mm, pfn)
            return 1 if res == 0 else res
        list_add(st.lru_nxt, st.lru_prv, pfn, v.lru)
        clear_bit(st, pfn, PAGE_CLAIMED)
        return 0
    sid = as_i64(st.slots[pfn])
    res = kref_put(st, pfn, False)
    if res != 0:
        if res == 1:
            free_slots(st, sid)
        return res
    list_add(st.lru_nxt, st.lru_prv, pfn, v.lru)
    if list_empty(st.buddy_nxt, pfn):
        add_to_unbuddied(st, pfn)
    clear_bit(st, pfn, PAGE_CLAIMED)
    return 0


@hot_njit
def z3fold_alloc_many(st: Z3foldState, sizes: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = z3fold_alloc(sizes[i])`` for every i, in order (estimates, replays)."""
    for i in range(sizes.shape[0]):
        out[i] = z3fold_alloc(st, as_i64(sizes[i]))


# ---- the Python face ------------------------------------------------------------------------
class Z3foldPool(ZpoolDriver[Z3foldState]):
    """One z3fold pool over its own arena of page frames (arguments: :class:`ZpoolDriver`)."""

    kind = "z3fold"
    _ops = DriverOps(
        z3fold_geometry, new_z3fold_state, z3fold_alloc, z3fold_free, z3fold_reclaim_take
    )
    _broken = "the z3fold pool's structures are broken"

    @property
    def max_size(self) -> int:
        """The largest object: PAGE_SIZE (a headless page)."""
        return self.page_size

    def _capacity(self, h: int) -> int:
        st = self.state
        v = st.vars[0]
        hwm = int(st.mm.vars[0].hwm)
        if h > 0 and h & 1:
            pfn = h >> int(v.page_shift)
            if 1 <= pfn < hwm and st.mm.refcount[pfn] > 0 and test_bit(st, pfn, PAGE_HEADLESS):
                return self.page_size
        elif h > 0 and not h & 7:
            sid, idx = h >> SLOTS_SHIFT, (h >> 3) & BUDDY_MASK
            if FIRST_SLOTS <= sid < int(v.slots_hwm) and st.slot_val[sid, idx]:
                pfn = int(st.slot_val[sid, idx]) >> int(v.page_shift)
                if 1 <= pfn < hwm and st.mm.refcount[pfn] > 0:
                    bud = int(handle_to_buddy(st, h))
                    chunks = {
                        FIRST: st.first_chunks,
                        MIDDLE: st.middle_chunks,
                        LAST: st.last_chunks,
                    }.get(bud)
                    if chunks is not None and chunks[pfn]:
                        return int(chunks[pfn]) << int(v.chunk_shift)
        return 0

    def _map(self, h: int) -> int:
        return self._bug(int(z3fold_map(self.state, h)), f"z3fold_map({h:#x})")

    def _unmap(self, h: int) -> None:
        z3fold_unmap(self.state, h)

    def map(self, handle: int) -> int:
        """z3fold_map(): the object's address (an offset into the arena); unmap() after."""
        h, _ = self._check(handle)
        return self._map(h)

    def unmap(self, handle: int) -> None:
        self._unmap(int(handle))

    def read_unchecked(self, handle: int, size: int) -> bytes:
        """Read through any handle z3fold made, the reclaim's on-stack ones included."""
        addr = self._bug(int(z3fold_map(self.state, int(handle))), "z3fold_map")
        out = self.state.mm.arena[addr : addr + size].tobytes()
        z3fold_unmap(self.state, int(handle))
        return out

    def _reclaim_handles(self, pfn: int) -> list[int]:
        # Middle first: z3fold_reclaim_page() evicts it before the first and last buddies.
        return [int(z3fold_reclaim_handle(self.state, pfn, b)) for b in (MIDDLE, FIRST, LAST)]

    def _reclaim_putback(self, pfn: int, ret: int) -> int:
        return self._bug(int(z3fold_reclaim_putback(self.state, pfn, ret)), "z3fold_reclaim")

    # ---- views for checks ------------------------------------------------------------
    def layout(self, pfn: int) -> tuple[int, int, int, int]:
        """(first, middle, last chunks, start_middle) of a page."""
        st = self.state
        return (
            int(st.first_chunks[pfn]),
            int(st.middle_chunks[pfn]),
            int(st.last_chunks[pfn]),
            int(st.start_middle[pfn]),
        )
