"""The validators catch corruption: each invariant of zsmalloc.zs.check can fail."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from zsmalloc import Pool
from zsmalloc.errors import InvariantError
from zsmalloc.zs.check import check_pool, live_zspages, zspage_info
from zsmalloc.zs.state import ZS_OBJS_ALLOCATED, PoolState


def _pool() -> Pool:
    pool = Pool(max_pages=64)
    hs = [pool.malloc(3000) for _ in range(6)]  # class 190: A full, B with 2
    pool.free(hs[0])
    pool.malloc(4096)  # a huge zspage too
    check_pool(pool.state)
    return pool


def _first(st: PoolState) -> int:
    return live_zspages(st)[0]


CORRUPTIONS: dict[str, tuple[Callable[[PoolState], None], str]] = {
    "stats group": (lambda st: st.stats[190].__setitem__(8, 5), "stats say"),
    "ALLOCATED": (lambda st: st.stats[190].__setitem__(ZS_OBJS_ALLOCATED, 9), "ZS_OBJS_ALLOCATED"),
    "inuse": (lambda st: st.zs_inuse.__setitem__(_first(st), 1), "free list|inuse"),
    "pages_allocated": (lambda st: setattr(st.vars[0], "pages_allocated", 99), "pages_allocated"),
    "object header": (  # slot 1 (offset 3072 of page 0) loses its handle tag
        lambda st: st.mm.arena64.__setitem__(
            zspage_info(st, _first(st)).pages[0] * 512 + 3072 // 8, 2 << 1
        ),
        "slot 1: tag 0",
    ),
    "handle": (lambda st: st.handle_obj.__setitem__(1, st.handle_obj[2]), "does not hold it"),
    "refcount": (
        lambda st: st.mm.zp_refcount.__setitem__(zspage_info(st, _first(st)).pages[1], 2),
        "refcount",
    ),
    "page_type": (
        lambda st: st.mm.zp_first_obj_offset.__setitem__(
            zspage_info(st, _first(st)).pages[1], 0xF6000000
        ),
        "page_type",
    ),
    "list link": (lambda st: st.zs_prev.__setitem__(_first(st), 77), "prev link"),
}


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_corruption_detected(name: str) -> None:
    pool = _pool()
    corrupt, message = CORRUPTIONS[name]
    corrupt(pool.state)
    with pytest.raises(InvariantError, match=message):
        check_pool(pool.state)


def test_debug_mode_checks_after_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZSMALLOC_DEBUG", "1")
    pool = Pool(max_pages=16)
    h = pool.malloc(100)
    pool.state.stats[5, 13] += 1  # INUSE of class 5 now disagrees
    with pytest.raises(InvariantError):
        pool.free(h)
