"""z3fold (mm/z3fold.c): layout rules, compaction that moves objects, handles that follow.

Page counts are checked against the kernel in tests/zswap/test_guest_recordings.py
(6.1's store-only and reclaiming runs); here each rule of the source, and a stateful
test that random frees and reclaims never lose a byte or break a list.
"""

from __future__ import annotations

import errno

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, rule

from zsmalloc.errors import BadHandleError, InvalidSizeError
from zsmalloc.zpool.z3fold import (
    PAGE_HEADLESS,
    Z3foldPool,
    num_free_chunks,
    z3fold_geometry,
)
from zsmalloc.zpool.z3fold import (
    test_bit as page_bit,
)


def test_geometry() -> None:
    """struct z3fold_header is 88 bytes on x86_64: two 64-byte chunks, 62 left for data."""
    g = z3fold_geometry(4096)
    assert (g["zhdr_size"], g["zhdr_chunks"], g["nchunks"], g["max_buddy_size"]) == (
        128, 2, 62, 3904)
    g16 = z3fold_geometry(16384)
    assert (g16["chunk_size"], g16["zhdr_size"], g16["nchunks"]) == (256, 256, 63)


def test_three_buddies_then_headless() -> None:
    pool = Z3foldPool()
    a = pool.malloc(1000)  # 16 chunks: first buddy of page 1
    b = pool.malloc(1000)  # the last buddy of page 1
    c = pool.malloc(640)  # 10 chunks: the middle one, right after the first
    assert pool.layout(1) == (16, 10, 16, 2 + 16) and pool.total_pages() == 1
    assert pool.unbuddied() == {}  # all three taken: on no list
    h = pool.malloc(3905)  # too big to share: a headless page of its own
    assert h == (2 << 12) | 1 and page_bit(pool.state, 2, PAGE_HEADLESS)
    assert pool.malloc(3904) & 1 == 0  # the largest buddy shares a page
    with pytest.raises(InvalidSizeError) as e:
        pool.malloc(4097)
    assert e.value.errno == errno.ENOSPC
    for x in (a, b, c, h):
        pool.write(x, bytes([x % 255]) * 10)
        assert pool.read(x, 10) == bytes([x % 255]) * 10


def test_a_free_compacts_and_the_handle_follows_the_object() -> None:
    pool = Z3foldPool()
    a = pool.malloc(1000)
    b = pool.malloc(1000)
    c = pool.malloc(640)
    pool.write(c, b"middle" * 100)
    pool.free(a)  # last and middle left: the middle moves up against the last (gap >= 3)
    assert pool.layout(1) == (0, 10, 16, 64 - 16 - 10)
    assert pool.read(c, 600) == b"middle" * 100
    pool.free(b)  # the middle alone: no other page has room, it becomes the first
    assert pool.layout(1) == (10, 0, 0, 0)
    assert pool.read(c, 600) == b"middle" * 100
    pool.free(c)
    assert pool.total_pages() == 0


def test_a_lone_object_moves_to_another_page() -> None:
    """compact_single_buddy(): the page empties into one with room, and is released."""
    pool = Z3foldPool()
    a = pool.malloc(3000)  # page 1: 47 chunks first
    x = pool.malloc(2000)  # page 2 (no room in page 1): first buddy
    y = pool.malloc(100)  # page 1's last buddy (lowest list with room: 15 free chunks)
    pool.write(x, b"x" * 2000)
    assert pool.total_pages() == 2
    pool.free(a)  # page 1 keeps y alone; page 2 has room: y moves there, page 1 goes
    assert pool.total_pages() == 1
    assert pool.layout(2) == (32, 0, 2, 0)
    assert int(pool.state.foreign_handles[2]) == 1
    pool.free(y)  # a foreign handle: its slots in the released page's structure
    assert int(pool.state.foreign_handles[2]) == 0
    assert pool.read(x, 2000) == b"x" * 2000


def test_reclaim_order_middle_first_last_and_headless() -> None:
    pool = Z3foldPool(lru=True)
    a = pool.malloc(1000)
    b = pool.malloc(1000)
    c = pool.malloc(640)
    for h, tag in ((a, b"A"), (b, b"B"), (c, b"C")):
        pool.write(h, tag * 8)
    h = pool.malloc(4000)  # headless, newest
    pool.write(h, b"H" * 8)
    assert pool.lru() == [2, 1]
    seen: list[bytes] = []

    def evict(handle: int) -> int:
        seen.append(pool.read_unchecked(handle, 1))  # the on-stack handle reads the object
        return -errno.EEXIST if len(seen) == 2 else 0

    assert pool.reclaim_page(1, evict) == -errno.EAGAIN
    assert seen == [b"C", b"A"] and pool.lru() == [1, 2]  # back at the head
    seen.clear()
    assert pool.reclaim_page(1, lambda hh: seen.append(pool.read_unchecked(hh, 1)) or 0) == 0
    assert seen == [b"H"] and pool.total_pages() == 1  # the headless page went
    assert Z3foldPool(lru=False).reclaim_page(8, evict) == -errno.EINVAL


def test_bad_handles() -> None:
    pool = Z3foldPool()
    h = pool.malloc(100)
    for bad in (h + 8, h | 1, 0, -8, "h"):
        with pytest.raises(BadHandleError):
            pool.free(bad)  # type: ignore[arg-type]
    pool.free(h)
    with pytest.raises(BadHandleError):
        pool.free(h)


class Z3foldMachine(RuleBasedStateMachine):
    """Random allocations and frees: every byte survives the moves; the lists stay true."""

    handles = Bundle("handles")

    def __init__(self) -> None:
        super().__init__()
        self.pool = Z3foldPool(max_pages=512)
        self.data: dict[int, bytes] = {}
        self.serial = 0

    @rule(target=handles, size=st.one_of(st.integers(1, 4096),
                                          st.sampled_from([64, 65, 640, 1984, 3904, 3905])))
    def malloc(self, size: int) -> int:
        h = self.pool.malloc(size)
        self.serial += 1
        payload = self.serial.to_bytes(4, "little") * (size // 4) + b"z" * (size % 4)
        self.pool.write(h, payload)
        self.data[h] = payload
        return h

    @rule(h=consumes(handles))
    def free(self, h: int) -> None:
        self.pool.free(h)
        del self.data[h]

    @invariant()
    def bytes_survive(self) -> None:
        for h, payload in self.data.items():
            assert self.pool.read(h, len(payload)) == payload

    @invariant()
    def pages_and_lists(self) -> None:
        st_ = self.pool.state
        pages = set()
        for h in self.data:
            if h & 1:
                pages.add(h >> 12)
            else:
                pages.add(int(st_.slot_val[h >> 6, (h >> 3) & 3]) >> 12)
        assert self.pool.total_pages() == len(pages)
        listed = [p for lst in self.pool.unbuddied().values() for p in lst]
        assert len(listed) == len(set(listed))
        for i, lst in self.pool.unbuddied().items():
            for p in lst:
                assert p in pages and int(num_free_chunks(st_, p)) == i
        for p in pages:
            if not page_bit(st_, p, PAGE_HEADLESS):
                f, m, la, sm = self.pool.layout(p)
                assert f + m + la <= 62
                if m:  # the middle object between the ends, inside the page
                    assert (f + 2 if f else 2) <= sm and sm + m <= (64 - la)


Z3foldMachine.TestCase.settings = settings(max_examples=80, stateful_step_count=50, deadline=None)
TestZ3foldMachine = Z3foldMachine.TestCase
