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
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from zsmalloc.args import as_byte_array, as_int
from zsmalloc.errors import BadHandleError, InvalidSizeError, InvariantError, OutOfMemoryError
from zsmalloc.mm.hotpath import as_i64, hot_njit
from zsmalloc.mm.page import EBUG, MemMap, alloc_page, anon_zeros, free_page, memcpy
from zsmalloc.mm.zpdesc import new_mem_map
from zsmalloc.zpool.list import (
    INIT_LIST_HEAD,
    list_add,
    list_del,
    list_empty,
    list_first,
    list_last,
    list_nodes,
)
from zsmalloc.zs.pool import DEFAULT_ARENA_BYTES

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
EvictFn = Callable[[int], int]
"""``zpool_ops.evict``: called with a handle to write its object back; 0 on success (having
freed the handle), else a negative errno."""


class ZbudPool:
    """One zbud pool over its own arena of page frames.

    ``lru=True`` is 6.1's zbud (an LRU of pages and :meth:`reclaim_page`); 6.5 to 6.14
    have none.  ``max_pages`` bounds the arena (default: 4 GiB worth of pages, only the
    used ones resident) (``malloc`` then fails with -ENOMEM).
    """

    kind = "zbud"

    def __init__(self, page_size: int = 4096, *, lru: bool = False, max_pages: int | None = None):
        if page_size not in (4096, 16384, 65536):
            raise InvalidSizeError(f"page size must be 4096, 16384 or 65536, found {page_size}")
        if max_pages is None:
            max_pages = DEFAULT_ARENA_BYTES // page_size
        max_pages = as_int(max_pages, "max_pages")
        if not 1 <= max_pages < 2**31 - 1:
            raise InvalidSizeError(f"max_pages must be 1..2**31-2, found {max_pages}")
        self.page_size = page_size
        self.max_pages = max_pages
        self.geometry = zbud_geometry(page_size)
        self.state = new_zbud_state(max_pages + 1, page_size, lru)

    @property
    def has_lru(self) -> bool:
        return bool(self.state.vars[0].has_lru)

    @property
    def max_size(self) -> int:
        """The largest object: PAGE_SIZE - ZHDR_SIZE_ALIGNED - CHUNK_SIZE."""
        return self.geometry["max_size"]

    def _bug(self, res: int, what: str) -> int:
        if res == -EBUG:
            raise InvariantError(f"{what}: a zbud page frame could not be freed (a bug)")
        return res

    def malloc(self, size: int) -> int:
        """zbud_alloc(size): a handle; InvalidSizeError (-EINVAL/-ENOSPC) or OutOfMemoryError."""
        size = as_int(size, "zbud_alloc size")
        res = int(zbud_alloc(self.state, size))
        if res == -errno.ENOMEM:
            raise OutOfMemoryError(
                f"zbud_alloc({size}): the arena of {self.max_pages} pages is exhausted"
            )
        if res < 0:
            limit = f"1..{self.max_size}"
            raise InvalidSizeError(f"zbud_alloc size must be {limit}, found {size}", errno=-res)
        return res

    def _check(self, handle: object) -> tuple[int, int, int]:
        """(handle, pfn, capacity in bytes) of a live handle, else BadHandleError."""
        if isinstance(handle, bool) or not isinstance(handle, int | np.integer):
            raise BadHandleError(f"expected an int handle from malloc, found {handle!r}")
        h = int(handle)
        st = self.state
        pfn = h >> int(st.vars[0].page_shift)
        if 1 <= pfn < int(st.mm.vars[0].hwm) and st.mm.refcount[pfn] > 0:
            shift = int(st.vars[0].chunk_shift)
            if handle_is_first(st, h) and st.first_chunks[pfn]:
                return h, pfn, int(st.first_chunks[pfn]) << shift
            if st.last_chunks[pfn] and h == encode_handle(st, pfn, LAST):
                return h, pfn, int(st.last_chunks[pfn]) << shift
        raise BadHandleError(f"handle {h:#x} is not a live zbud object")

    def free(self, handle: int) -> None:
        """zbud_free(handle)."""
        h, _, _ = self._check(handle)
        self._bug(int(zbud_free(self.state, h)), f"zbud_free({h:#x})")

    def write(self, handle: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Copy ``data`` to the start of the object (zbud_map() + memcpy)."""
        src = as_byte_array(data, "data to write")
        h, _, cap = self._check(handle)
        if len(src) > cap:
            raise InvalidSizeError(f"write of {len(src)} bytes to a {cap}-byte zbud object")
        memcpy(self.state.mm.arena, h, src, 0, len(src))

    def read(self, handle: int, size: int) -> bytes:
        """The object's first ``size`` bytes."""
        h, _, cap = self._check(handle)
        size = as_int(size, "read size")
        if not 0 <= size <= cap:
            raise InvalidSizeError(f"read of {size} bytes from a {cap}-byte zbud object")
        return self.state.mm.arena[h : h + size].tobytes()

    def total_pages(self) -> int:
        """zbud_get_pool_size(): pages in the pool."""
        return int(self.state.vars[0].pages_nr)

    def reclaim_page(self, retries: int, evict: EvictFn) -> int:
        """Mirrors zbud_reclaim_page(pool, retries) with ``evict`` as ``ops->evict``.

        0 when a page was freed, -EINVAL with no LRU or an empty one, -EAGAIN when
        ``retries`` pages could not be emptied.
        """
        st = self.state
        if retries == 0:
            return -errno.EINVAL
        for _ in range(retries):
            pfn = int(zbud_reclaim_take(st))
            if pfn < 0:
                return pfn
            # Encode the handles before evicting: eviction frees them.
            first = int(encode_handle(st, pfn, FIRST)) if st.first_chunks[pfn] else 0
            last = int(encode_handle(st, pfn, LAST)) if st.last_chunks[pfn] else 0
            for h in (first, last):
                if h and evict(h) != 0:
                    break
            if self._bug(int(zbud_reclaim_putback(st, pfn)), "zbud_reclaim_page") == 1:
                return 0
        return -errno.EAGAIN

    def shrink(self, pages: int, evict: EvictFn) -> tuple[int, int]:
        """Mirrors zbud_zpool_shrink(): (return code, pages reclaimed); 8 retries a page."""
        total, ret = 0, -errno.EINVAL
        while total < pages:
            ret = self.reclaim_page(8, evict)
            if ret < 0:
                break
            total += 1
        return ret, total

    # ---- views for checks ------------------------------------------------------------
    def unbuddied(self) -> dict[int, list[int]]:
        """pfns on each non-empty unbuddied list (free chunks -> pages, first to last)."""
        st, base = self.state, int(self.state.vars[0].unbuddied)
        out = {}
        for i in range(1, int(st.vars[0].nchunks)):
            nodes = list_nodes(st.buddy_nxt, base + i)
            if nodes:
                out[i] = nodes
        return out

    def buddied(self) -> list[int]:
        return list_nodes(self.state.buddy_nxt, int(self.state.vars[0].unbuddied))

    def lru(self) -> list[int]:
        """pfns on the LRU, newest first."""
        return list_nodes(self.state.lru_nxt, int(self.state.vars[0].lru))
