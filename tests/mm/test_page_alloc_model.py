"""Property tests: the page allocator and the handle table against set models."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zsmalloc import Pool
from zsmalloc.mm.page import alloc_page, put_page
from zsmalloc.mm.zpdesc import new_mem_map
from zsmalloc.zs.handle import cache_alloc_handle, cache_free_handle, handle_is_live, record_obj

ops = st.lists(st.tuples(st.booleans(), st.integers(0, 10**6)), max_size=500)


@given(ops)
def test_page_allocator_matches_a_set(steps: list[tuple[bool, int]]) -> None:
    """Frames are unique while held, never pfn 0, reused LIFO, refcount 1 while held."""
    mem_map, mm = new_mem_map(33)
    held: list[int] = []
    freed: list[int] = []
    for do_alloc, r in steps:
        if do_alloc:
            pfn = alloc_page(mm)
            if len(held) == 32:
                assert pfn == -1
                continue
            assert pfn not in held and 1 <= pfn < 33
            if freed:
                assert pfn == freed.pop()  # most recently freed first
            held.append(pfn)
            assert mem_map["_refcount"][pfn] == 1
        elif held:
            pfn = held.pop(r % len(held))
            assert put_page(mm, pfn) == 0
            assert mem_map["_refcount"][pfn] == 0
            freed.append(pfn)
        assert mm.vars[0].nr_used == len(held)


@given(ops)
def test_handle_table_matches_a_set(steps: list[tuple[bool, int]]) -> None:
    """Live handles are 8-aligned, unique and recognised; freed ones never are."""
    st_ = Pool(max_pages=2).state  # 3 frames (pfn 0 included) x 128: 384 handles
    capacity = int(st_.vars[0].h_cap) - 1
    live: list[int] = []
    dead: set[int] = set()
    for do_alloc, r in steps:
        if do_alloc:
            h = cache_alloc_handle(st_)
            if h == 0:
                assert len(live) == capacity
                continue
            assert h > 0 and h % 8 == 0 and h not in live
            assert not handle_is_live(st_, h)  # not live until it holds an obj
            record_obj(st_, h, 1 << 24 | r % 128)
            live.append(h)
            dead.discard(h)
        elif live:
            h = live.pop(r % len(live))
            cache_free_handle(st_, h)
            dead.add(h)
        for h in live:
            assert handle_is_live(st_, h)
        for h in dead:
            assert not handle_is_live(st_, h)
        assert not handle_is_live(st_, r * 8 + 1)  # misaligned
