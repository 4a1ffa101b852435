"""The arena's order-0 page allocator and the zpdesc helpers over mem_map."""

from __future__ import annotations

import numpy as np

from zsmalloc.mm import zpdesc as zp
from zsmalloc.mm.page import (
    EBUG,
    PAGE_TYPE_UNTYPED,
    PG_private,
    alloc_page,
    free_page,
    page_flag_set,
    put_page,
)
from zsmalloc.mm.zpdesc import new_mem_map


def test_alloc_skips_pfn0_and_reuses_lifo() -> None:
    _, mm = new_mem_map(8)
    pfns = [alloc_page(mm) for _ in range(7)]
    assert pfns == [1, 2, 3, 4, 5, 6, 7]
    assert alloc_page(mm) == -1  # exhausted
    assert put_page(mm, 3) == 0 and put_page(mm, 5) == 0
    assert alloc_page(mm) == 5 and alloc_page(mm) == 3  # last freed, first reused
    assert mm.vars[0].nr_used == 7


def test_alloc_state_and_free_checks() -> None:
    mem_map, mm = new_mem_map(4)
    pfn = alloc_page(mm)
    assert mem_map["_refcount"][pfn] == 1
    assert mem_map["page_type"][pfn] == PAGE_TYPE_UNTYPED
    page_flag_set(mm, pfn, PG_private)
    assert free_page(mm, pfn) == -EBUG  # bad_page: PG_private still set at free
    zp.reset_zpdesc(mm, pfn)
    mem_map["memcg_data"][pfn] = 1
    assert free_page(mm, pfn) == -EBUG  # charged page
    assert mm.vars[0].bad_pages == 2  # reported, and the frame kept (leaked) both times
    assert mm.vars[0].nr_used == 1
    mem_map["memcg_data"][pfn] = 0
    assert free_page(mm, pfn) == 0


def test_zpdesc_overlays_page_fields() -> None:
    mem_map, mm = new_mem_map(4)
    pfn = alloc_page(mm)
    assert zp.__zpdesc_set_zsmalloc(mm, pfn)
    assert not zp.__zpdesc_set_zsmalloc(mm, pfn)  # only an untyped page can be typed
    assert mem_map["page_type"][pfn] == 0xF6000000
    zp.set_first_obj_offset(mm, pfn, 2432)
    assert mem_map["page_type"][pfn] == 0xF6000000 | 2432
    assert zp.get_first_obj_offset(mm, pfn) == 2432
    zp.set_first_obj_offset(mm, pfn, 0x1000000 | 768)  # masked to 24 bits
    assert zp.get_first_obj_offset(mm, pfn) == 768 and zp.zpdesc_is_zsmalloc(mm, pfn)
    zp.set_zpdesc_handle(mm, pfn, 0x1239)
    assert zp.get_next_zpdesc_raw(mm, pfn) == 0x1239  # next and handle are one word
    assert mem_map["__folio_index"][pfn] == 0x1239
    zp.set_zpdesc_zspage(mm, pfn, 7)
    assert mem_map["private"][pfn] == 7
    assert np.all(mem_map["memcg_data"] == 0)


def test_zpdesc_lock_and_refcount() -> None:
    mem_map, mm = new_mem_map(4)
    pfn = alloc_page(mm)
    assert zp.zpdesc_trylock(mm, pfn)
    assert zp.zpdesc_is_locked(mm, pfn) and mem_map["flags"][pfn] & 1
    assert not zp.zpdesc_trylock(mm, pfn)
    zp.zpdesc_unlock(mm, pfn)
    assert not zp.zpdesc_is_locked(mm, pfn)
    zp.zpdesc_get(mm, pfn)
    assert mem_map["_refcount"][pfn] == 2
    assert zp.zpdesc_put(mm, pfn) == 0 and mem_map["_refcount"][pfn] == 1
    zp.__zpdesc_set_movable(mm, pfn)
    assert zp.zpdesc_is_movable(mm, pfn) and mem_map["flags"][pfn] >> 3 & 1  # PG_uptodate
    zp.zpdesc_set_isolated(mm, pfn, True)
    assert zp.zpdesc_is_isolated(mm, pfn) and mem_map["flags"][pfn] >> 16 & 1  # PG_reclaim
    assert zp.zpdesc_pfn(zp.pfn_zpdesc(pfn)) == pfn == zp.zpdesc_page(zp.page_zpdesc(pfn))
    assert zp.kmap_local_zpdesc(mm, pfn) == pfn * 4096


def test_memcpy_contiguous_and_strided() -> None:
    from zsmalloc.mm.page import memcpy

    src = np.arange(256, dtype=np.uint8)
    dst = np.zeros(300, np.uint8)
    memcpy(dst, 10, src, 5, 100)  # unit stride: llvm.memcpy under numba
    assert dst[10:110].tolist() == list(range(5, 105)) and not dst[:10].any()
    assert not dst[110:].any()
    strided = np.zeros(600, np.uint8)[::2]
    memcpy(strided, 0, src, 0, 50)  # strided destination: the byte loop
    assert strided[:50].tolist() == list(range(50)) and not strided[50:].any()
    memcpy(dst, 0, src[::3], 0, 20)  # strided source
    assert dst[:20].tolist() == list(range(0, 60, 3))
    memcpy(dst, 0, src, 0, 0)  # nothing
