"""zbud (mm/zbud.c): page counts from the kernel, list order from a list-based oracle."""

from __future__ import annotations

import errno
import gzip
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from naive import NaiveZbud, NaiveZbudPage
from zsmalloc import compress
from zsmalloc.errors import BadHandleError, InvalidSizeError, OutOfMemoryError
from zsmalloc.zpool.zbud import ZbudPool, zbud_geometry

DATA = Path(__file__).resolve().parents[1] / "data"
HEADER = 8  # 6.1's struct zswap_header before each object
# Debian 6.1 guests (tests/data/kernels/zswap-6.1): pool_total_size of the shared pages.
GUEST_POOL_PAGES = {"lzo": 1916928 // 4096, "lz4": 1966080 // 4096}


def shared_sizes(algo: str) -> list[int]:
    """What 6.1's zswap asks zbud for, per shared page, in order: length + header."""
    data = gzip.decompress((DATA / "shared_pages.bin.gz").read_bytes())
    c = compress.get(algo)
    out = []
    for i in range(0, len(data), 4096):
        page = data[i : i + 4096]
        words = memoryview(page).cast("Q")
        if all(w == words[0] for w in words):
            continue  # same-filled: no object
        clen = c.compressed_len(page)
        if clen <= 4096 and clen + HEADER <= 3968:
            out.append(clen + HEADER)
    return out


@pytest.mark.parametrize("algo", ["lzo", "lz4"])
def test_oracle_and_pool_match_the_kernel(algo: str) -> None:
    """The oracle is checked against the guest first; then the pool against both."""
    sizes = shared_sizes(algo)
    naive = NaiveZbud()
    for s in sizes:
        naive.malloc(s)
    assert naive.pages == GUEST_POOL_PAGES[algo]
    pool = ZbudPool(lru=True)
    for s in sizes:
        pool.malloc(s)
    assert pool.total_pages() == GUEST_POOL_PAGES[algo]


@pytest.mark.parametrize(
    ("page_size", "chunk", "nchunks", "largest"),
    [(4096, 64, 63, 3968), (16384, 256, 63, 15872), (65536, 1024, 63, 63488)],
)
def test_geometry(page_size: int, chunk: int, nchunks: int, largest: int) -> None:
    g = zbud_geometry(page_size)
    assert (g["chunk_size"], g["nchunks"], g["max_size"]) == (chunk, nchunks, largest)
    pool = ZbudPool(page_size, max_pages=4)
    h = pool.malloc(largest)
    assert h == (1 << (page_size.bit_length() - 1)) + chunk  # pfn 1, after the header
    with pytest.raises(InvalidSizeError) as e:
        pool.malloc(largest + 1)
    assert e.value.errno == errno.ENOSPC


def test_buddies_sit_at_both_ends_and_keep_their_bytes() -> None:
    pool = ZbudPool()
    a = pool.malloc(100)  # 2 chunks, first buddy of page 1
    b = pool.malloc(1000)  # 16 chunks: the last buddy of the same page
    assert (a, b) == (4096 + 64, 2 * 4096 - 16 * 64)
    assert pool.total_pages() == 1 and pool.buddied() == [1] and pool.unbuddied() == {}
    pool.write(a, b"a" * 100)
    pool.write(b, b"b" * 1000)
    assert pool.read(a, 100) == b"a" * 100 and pool.read(b, 1000) == b"b" * 1000
    c = pool.malloc(3000)  # no room: a new page, on unbuddied[63 - 47]
    assert pool.total_pages() == 2 and pool.unbuddied() == {16: [2]}
    pool.free(a)  # page 1 keeps its last buddy: unbuddied[63 - 16]
    assert pool.unbuddied() == {16: [2], 47: [1]}
    pool.free(b)
    pool.free(c)
    assert pool.total_pages() == 0


def test_refused_calls_change_nothing() -> None:
    pool = ZbudPool(max_pages=1)
    h = pool.malloc(3000)
    before = (pool.total_pages(), pool.unbuddied(), pool.lru())
    with pytest.raises(InvalidSizeError) as e:
        pool.malloc(0)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OutOfMemoryError):
        pool.malloc(3000)  # needs a second page; the arena has one
    for bad in (h + 8, 0, -1, 1 << 40, "x", True):
        with pytest.raises(BadHandleError):
            pool.free(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidSizeError):
        pool.write(h, bytes(3009))  # 47 chunks hold 3008 bytes
    assert (pool.total_pages(), pool.unbuddied(), pool.lru()) == before
    pool.free(h)
    with pytest.raises(BadHandleError):
        pool.free(h)


def test_reclaim_takes_the_oldest_page_and_puts_a_failure_back_first() -> None:
    pool = ZbudPool(lru=True)
    h1 = pool.malloc(3000)  # page 1
    h2 = pool.malloc(3000)  # page 2
    h3 = pool.malloc(500)  # last buddy of page 2 (the lowest list with room): page 2 newest
    assert pool.lru() == [2, 1]
    seen: list[int] = []

    def refuse(h: int) -> int:
        seen.append(h)
        return -errno.EEXIST

    assert pool.reclaim_page(1, refuse) == -errno.EAGAIN
    assert seen == [h1] and pool.lru() == [1, 2]  # back at the head

    def evict(h: int) -> int:
        seen.append(h)
        pool.free(h)
        return 0

    seen.clear()
    assert pool.shrink(1, evict) == (0, 1)
    assert seen == [h2, h3] and pool.lru() == [1] and pool.total_pages() == 1
    assert ZbudPool(lru=False).reclaim_page(8, evict) == -errno.EINVAL


class ZbudMachine(RuleBasedStateMachine):
    """The pool and the oracle side by side: pages, every list's order, the bytes."""

    handles = Bundle("handles")

    def __init__(self) -> None:
        super().__init__()
        self.pool = ZbudPool(lru=True, max_pages=256)
        self.naive = NaiveZbud()
        self.pfn_of: dict[int, int] = {}  # id(naive page) -> pfn
        self.data: dict[int, bytes] = {}  # live handles and their bytes
        self.owner: dict[int, object] = {}  # live handle -> the bundle entry that owns it

    def _map(self, pg: NaiveZbudPage | None, pfn: int) -> None:
        if pg is not None:
            self.pfn_of[id(pg)] = pfn

    @rule(
        target=handles,
        size=st.one_of(st.integers(1, 3968), st.sampled_from([1, 64, 65, 1984, 2048, 3968])),
    )
    def malloc(self, size: int) -> tuple[int, tuple[NaiveZbudPage, str]]:
        h = self.pool.malloc(size)
        nh = self.naive.malloc(size)
        self._map(nh[0], h >> 12)
        payload = bytes([size % 251]) * size
        self.pool.write(h, payload)
        self.data[h] = payload
        self.owner[h] = nh  # a handle is an address: a later object may reuse it
        return h, nh

    @rule(pair=consumes(handles))
    def free(self, pair: tuple[int, tuple[NaiveZbudPage, str]]) -> None:
        h, nh = pair
        if self.owner.get(h) is not nh:  # reclaim wrote it back and freed it already
            return
        self.pool.free(h)
        self.naive.free(nh)
        del self.data[h], self.owner[h]

    @precondition(lambda self: self.naive.lru)
    @rule(ok=st.lists(st.booleans(), min_size=2, max_size=2))
    def reclaim(self, ok: list[bool]) -> None:
        results = iter(ok)

        def evict(h: int) -> int:
            if next(results):
                self.pool.free(h)
                del self.data[h], self.owner[h]
                return 0
            return -errno.EEXIST

        self.pool.reclaim_page(1, evict)
        pg, _ = self.naive.reclaim(iter(ok))
        assert pg is not None

    @invariant()
    def same_pages_and_lists(self) -> None:
        assert self.pool.total_pages() == self.naive.pages
        want = {
            i: [self.pfn_of[id(p)] for p in lst]
            for i, lst in enumerate(self.naive.unbuddied)
            if lst
        }
        assert self.pool.unbuddied() == want
        assert self.pool.buddied() == [self.pfn_of[id(p)] for p in self.naive.buddied]
        assert self.pool.lru() == [self.pfn_of[id(p)] for p in self.naive.lru]

    @invariant()
    def bytes_survive(self) -> None:
        for h, payload in self.data.items():
            assert self.pool.read(h, len(payload)) == payload


ZbudMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestZbudMachine = ZbudMachine.TestCase
