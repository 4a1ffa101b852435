"""zbud: two compressed objects per page, "buddied" at the two ends of the page.

Mirrors mm/zbud.c of Linux 6.1 (with its LRU and ``zbud_reclaim_page``) and of 6.5 to
6.14 (the same allocator with the LRU gone: zswap keeps its own since 6.5); zbud was
removed in 6.15.  It was zswap's default pool until 6.3 and still is in Debian 12's
6.1 (``CONFIG_ZSWAP_ZPOOL_DEFAULT_ZBUD=y``).

Why it is shaped so: zbud gives up density for simple, deterministic reclaim.  A zbud
page holds at most two objects, the *first* buddy left-justified after the header and
the *last* buddy right-justified at the end of the page, so the free space is always
one hole in the middle; evicting a page means writing back at most two objects.  The
ratio of objects to pages is therefore never above 2, and never below 1.

Pages are cut into 64 chunks (``NCHUNKS_ORDER`` 6: 64 bytes with 4 KiB pages).  The
first chunk holds ``struct zbud_header`` (``ZHDR_SIZE_ALIGNED``), leaving ``NCHUNKS`` =
63 chunks for data; an object takes ``size_to_chunks(size)`` whole chunks, and the
largest object is ``PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE`` bytes (3968): a page
must keep room for a buddy (-ENOSPC above that, which zswap counts as
``reject_compress_poor``).

==================  ===========================================================
structure           here
==================  ===========================================================
zbud_header         per-pfn arrays ``first_chunks``, ``last_chunks``,
                    ``under_reclaim`` and the two list links (``buddy``, ``lru``)
unbuddied[NCHUNKS]  list heads: pages with one buddy, by their free chunks
buddied             the same head as ``unbuddied[0]`` (the kernel's union: no page
                    with one buddy has 0 free chunks)
lru                 pages by their most recent allocation, newest first (6.1 only)
pages_nr            ``vars.pages_nr``: the pool's size in pages
==================  ===========================================================

Orderings exactness depends on, all from zbud_alloc()/zbud_free(): an allocation takes
the *first* page of the lowest unbuddied list with enough free chunks
(``list_first_entry``), so the page most recently put there; a page goes back on a list
with ``list_add`` (at the head); a page with one buddy free fills the free end (first
before last); an emptied page is freed at once.  Reclaim (6.1) takes the LRU's *last*
page, evicts its first then its last buddy, and puts a page it could not empty back at
the head of the LRU.

A handle is the object's address, as in the kernel: ``pfn << PAGE_SHIFT`` plus its
offset in the page (``ZHDR_SIZE_ALIGNED`` for a first buddy, ``PAGE_SIZE -
last_chunks * CHUNK_SIZE`` for a last one).  The object's bytes live in the page
frames of :mod:`zsmalloc.mm.page`.

Eviction calls back into the pool's user (zswap's ``zswap_writeback_entry``), which
numba cannot do: :func:`zbud_reclaim_take` takes the page off the LRU, Python calls the
callback for each buddy (:meth:`ZbudPool.reclaim_page`), and :func:`zbud_reclaim_putback`
frees or returns the page, together the steps of ``zbud_reclaim_page``.
"""

from __future__ import annotations

import errno
from typing import NamedTuple

import numpy as np

from zsmalloc.mm.hotpath import as_i64, hot_njit
from zsmalloc.mm.page import MemMap, alloc_page, anon_zeros, free_page
from zsmalloc.mm.zpdesc import new_mem_map
from zsmalloc.zpool.driver import DriverOps, ZpoolDriver
from zsmalloc.zpool.driver import EvictFn as EvictFn  # re-exported: zpool_ops.evict
from zsmalloc.zpool.list import (
    INIT_LIST_HEAD,
    list_add,
    list_del,
    list_empty,
    list_first,
    list_last,
    list_nodes,
)

NCHUNKS_ORDER = 6  # PAGE_SIZE / 64 bytes per chunk
FIRST, LAST = 0, 1  # enum buddy

ZBUD_VARS_DTYPE = np.dtype(
    [
        ("pages_nr", np.int64),  # pool->pages_nr
        ("page_shift", np.int64),
        ("chunk_shift", np.int64),  # CHUNK_SHIFT = PAGE_SHIFT - NCHUNKS_ORDER
        ("zhdr_size", np.int64),  # ZHDR_SIZE_ALIGNED = CHUNK_SIZE
        ("nchunks", np.int64),  # NCHUNKS: free chunks of an empty page
        ("max_size", np.int64),  # PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE
        ("unbuddied", np.int64),  # node of unbuddied[0] (= buddied); unbuddied[i] is +i
        ("lru", np.int64),  # node of the pool LRU head
        ("has_lru", np.int64),  # 1: 6.1's LRU and reclaim
    ]
)


class ZbudState(NamedTuple):
    """``struct zbud_pool`` and the ``struct zbud_header`` of every page, as arrays."""

    mm: MemMap
    buddy_nxt: np.ndarray  # int64[nodes]: zhdr->buddy and the unbuddied/buddied heads
    buddy_prv: np.ndarray
    lru_nxt: np.ndarray  # int64[nodes]: zhdr->lru and the pool LRU head
    lru_prv: np.ndarray
    first_chunks: np.ndarray  # int32[max_pages]
    last_chunks: np.ndarray  # int32[max_pages]
    under_reclaim: np.ndarray  # uint8[max_pages]
    vars: np.recarray  # one ZBUD_VARS_DTYPE record


def zbud_geometry(page_size: int) -> dict[str, int]:
    """The chunk constants of a zbud page (NCHUNKS 63, 64-byte chunks on 4 KiB pages)."""
    page_shift = page_size.bit_length() - 1
    chunk_shift = page_shift - NCHUNKS_ORDER
    chunk = 1 << chunk_shift
    return {
        "chunk_shift": chunk_shift,
        "chunk_size": chunk,
        "zhdr_size": chunk,
        "nchunks": (page_size - chunk) >> chunk_shift,
        "max_size": page_size - chunk - chunk,
    }


def new_zbud_state(max_pages: int, page_size: int, lru: bool) -> ZbudState:
    """zbud_create_pool(): an empty pool over its own arena of ``max_pages`` frames."""
    g = zbud_geometry(page_size)
    _, mm = new_mem_map(max_pages, page_size)
    nodes = max_pages + g["nchunks"] + 1  # pfns, unbuddied[NCHUNKS], lru
    v = np.zeros(1, ZBUD_VARS_DTYPE).view(np.recarray)
    r = v[0]
    r.page_shift = page_size.bit_length() - 1
    r.chunk_shift = g["chunk_shift"]
    r.zhdr_size = g["zhdr_size"]
    r.nchunks = g["nchunks"]
    r.max_size = g["max_size"]
    r.unbuddied = max_pages
    r.lru = max_pages + g["nchunks"]
    r.has_lru = int(lru)
    st = ZbudState(
        mm=mm,
        buddy_nxt=anon_zeros(nodes, np.int64),
        buddy_prv=anon_zeros(nodes, np.int64),
        lru_nxt=anon_zeros(nodes, np.int64),
        lru_prv=anon_zeros(nodes, np.int64),
        first_chunks=anon_zeros(max_pages, np.int32),
        last_chunks=anon_zeros(max_pages, np.int32),
        under_reclaim=anon_zeros(max_pages, np.uint8),
        vars=v,
    )
    for i in range(g["nchunks"]):
        INIT_LIST_HEAD(st.buddy_nxt, st.buddy_prv, max_pages + i)
    INIT_LIST_HEAD(st.lru_nxt, st.lru_prv, max_pages + g["nchunks"])
    return st


# ---- helpers ------------------------------------------------------------------------------
@hot_njit
def size_to_chunks(st: ZbudState, size: int) -> int:
    """Bytes to whole chunks, rounding up."""
    cs = st.vars[0].chunk_shift
    return (size + (1 << cs) - 1) >> cs


@hot_njit
def num_free_chunks(st: ZbudState, pfn: int) -> int:
    """NCHUNKS less both buddies (a free buddy has 0 chunks)."""
    return st.vars[0].nchunks - st.first_chunks[pfn] - st.last_chunks[pfn]


@hot_njit
def encode_handle(st: ZbudState, pfn: int, bud: int) -> int:
    """The buddy's address: after the header (first), or ending at the page's end (last)."""
    v = st.vars[0]
    base = pfn << v.page_shift
    if bud == FIRST:
        return base + v.zhdr_size
    return base + (1 << v.page_shift) - (as_i64(st.last_chunks[pfn]) << v.chunk_shift)


@hot_njit
def handle_to_pfn(st: ZbudState, handle: int) -> int:
    """handle_to_zbud_header(): the page of a handle (``handle & PAGE_MASK``)."""
    return handle >> st.vars[0].page_shift


@hot_njit
def handle_is_first(st: ZbudState, handle: int) -> bool:
    """zbud_free()'s test: a first buddy sits exactly ZHDR_SIZE_ALIGNED into its page."""
    v = st.vars[0]
    return ((handle - v.zhdr_size) & ((1 << v.page_shift) - 1)) == 0


@hot_njit
def add_to_lists(st: ZbudState, pfn: int) -> None:
    """One buddy: unbuddied[free chunks]; two: buddied.  Both at the head."""
    v = st.vars[0]
    if st.first_chunks[pfn] == 0 or st.last_chunks[pfn] == 0:
        list_add(st.buddy_nxt, st.buddy_prv, pfn, v.unbuddied + num_free_chunks(st, pfn))
    else:
        list_add(st.buddy_nxt, st.buddy_prv, pfn, v.unbuddied)  # buddied == unbuddied[0]


# ---- the allocator --------------------------------------------------------------------------
@hot_njit
def zbud_alloc(st: ZbudState, size: int) -> int:
    """Mirrors zbud_alloc(): a handle, or -EINVAL (size 0), -ENOSPC (too big), -ENOMEM."""
    v = st.vars[0]
    if size <= 0:
        return -errno.EINVAL
    if size > v.max_size:
        return -errno.ENOSPC
    chunks = size_to_chunks(st, size)
    pfn = 0
    bud = FIRST
    # First, the lowest unbuddied list with enough room, its first page.
    for i in range(chunks, v.nchunks):
        head = v.unbuddied + i
        if not list_empty(st.buddy_nxt, head):
            pfn = list_first(st.buddy_nxt, head)
            list_del(st.buddy_nxt, st.buddy_prv, pfn)
            bud = FIRST if st.first_chunks[pfn] == 0 else LAST
            break
    if pfn == 0:  # none: a new page
        pfn = alloc_page(st.mm)
        if pfn < 0:
            return -errno.ENOMEM
        v.pages_nr += 1
        st.first_chunks[pfn] = 0  # init_zbud_page()
        st.last_chunks[pfn] = 0
        st.under_reclaim[pfn] = 0
        INIT_LIST_HEAD(st.buddy_nxt, st.buddy_prv, pfn)
        INIT_LIST_HEAD(st.lru_nxt, st.lru_prv, pfn)
    if bud == FIRST:
        st.first_chunks[pfn] = chunks
    else:
        st.last_chunks[pfn] = chunks
    add_to_lists(st, pfn)
    if v.has_lru:  # add/move the page to the beginning of the LRU
        if not list_empty(st.lru_nxt, pfn):
            list_del(st.lru_nxt, st.lru_prv, pfn)
        list_add(st.lru_nxt, st.lru_prv, pfn, v.lru)
    return encode_handle(st, pfn, bud)


@hot_njit
def _free_zbud_page(st: ZbudState, pfn: int) -> int:
    st.vars[0].pages_nr -= 1
    return free_page(st.mm, pfn)


@hot_njit
def zbud_free(st: ZbudState, handle: int) -> int:
    """Mirrors zbud_free(): 0, or -EBUG if the page frame cannot be freed."""
    pfn = handle_to_pfn(st, handle)
    if handle_is_first(st, handle):
        st.first_chunks[pfn] = 0
    else:
        st.last_chunks[pfn] = 0
    if st.under_reclaim[pfn]:  # reclaim frees the page
        return 0
    list_del(st.buddy_nxt, st.buddy_prv, pfn)
    if st.first_chunks[pfn] == 0 and st.last_chunks[pfn] == 0:
        if st.vars[0].has_lru:
            list_del(st.lru_nxt, st.lru_prv, pfn)
        return _free_zbud_page(st, pfn)
    list_add(st.buddy_nxt, st.buddy_prv, pfn, st.vars[0].unbuddied + num_free_chunks(st, pfn))
    return 0


@hot_njit
def zbud_reclaim_take(st: ZbudState) -> int:
    """The first half of one zbud_reclaim_page() round: take the LRU's last page.

    Its pfn (off the LRU and the buddy lists, ``under_reclaim`` set), or -EINVAL when
    the pool has no LRU or an empty one.
    """
    v = st.vars[0]
    if not v.has_lru or list_empty(st.lru_nxt, v.lru):
        return -errno.EINVAL
    pfn = list_last(st.lru_prv, v.lru)
    list_del(st.lru_nxt, st.lru_prv, pfn)
    list_del(st.buddy_nxt, st.buddy_prv, pfn)
    st.under_reclaim[pfn] = 1
    return pfn


@hot_njit
def zbud_reclaim_putback(st: ZbudState, pfn: int) -> int:
    """The second half: 1 if both buddies are gone (the page is freed), else 0.

    A page still holding a buddy goes back on its buddy list and at the *head* of the
    LRU, as zbud_reclaim_page() does after a failed eviction.
    """
    st.under_reclaim[pfn] = 0
    if st.first_chunks[pfn] == 0 and st.last_chunks[pfn] == 0:
        res = _free_zbud_page(st, pfn)
        return 1 if res == 0 else res
    add_to_lists(st, pfn)
    list_add(st.lru_nxt, st.lru_prv, pfn, st.vars[0].lru)
    return 0


@hot_njit
def zbud_alloc_many(st: ZbudState, sizes: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = zbud_alloc(sizes[i])`` for every i, in order (estimates, replays)."""
    for i in range(sizes.shape[0]):
        out[i] = zbud_alloc(st, as_i64(sizes[i]))


# ---- the Python face ------------------------------------------------------------------------
class ZbudPool(ZpoolDriver[ZbudState]):
    """One zbud pool over its own arena of page frames (arguments: :class:`ZpoolDriver`)."""

    kind = "zbud"
    _ops = DriverOps(zbud_geometry, new_zbud_state, zbud_alloc, zbud_free, zbud_reclaim_take)
    _broken = "a zbud page frame could not be freed"
    _unbuddied_from = 1  # unbuddied[0] is the buddied list: buddied() shows it

    @property
    def max_size(self) -> int:
        """The largest object: PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE."""
        return self.geometry["max_size"]

    def _capacity(self, h: int) -> int:
        st = self.state
        pfn = h >> int(st.vars[0].page_shift)
        if 1 <= pfn < int(st.mm.vars[0].hwm) and st.mm.refcount[pfn] > 0:
            shift = int(st.vars[0].chunk_shift)
            if handle_is_first(st, h) and st.first_chunks[pfn]:
                return int(st.first_chunks[pfn]) << shift
            if st.last_chunks[pfn] and h == encode_handle(st, pfn, LAST):
                return int(st.last_chunks[pfn]) << shift
        return 0

    def _map(self, h: int) -> int:
        return h  # zbud_map(): a handle is the object's address

    def _unmap(self, h: int) -> None:
        pass

    def _reclaim_handles(self, pfn: int) -> list[int]:
        st = self.state
        first = int(encode_handle(st, pfn, FIRST)) if st.first_chunks[pfn] else 0
        last = int(encode_handle(st, pfn, LAST)) if st.last_chunks[pfn] else 0
        return [first, last]

    def _reclaim_putback(self, pfn: int, ret: int) -> int:
        return self._bug(int(zbud_reclaim_putback(self.state, pfn)), "zbud_reclaim_page")

    # ---- views for checks ------------------------------------------------------------
    def buddied(self) -> list[int]:
        return list_nodes(self.state.buddy_nxt, int(self.state.vars[0].unbuddied))
