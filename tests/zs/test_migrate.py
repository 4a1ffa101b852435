"""Page migration (spec §6): bytes move, obj and descriptors follow, nothing else changes."""

from __future__ import annotations

import numpy as np

from zsmalloc import Pool
from zsmalloc.zs.check import check_pool, fullness_lists, live_zspages, zspage_info


def _fill(pool: Pool, size: int, n: int) -> dict[int, bytes]:
    rng = np.random.default_rng(size)
    data = {}
    for _ in range(n):
        h = pool.malloc(size)
        payload = rng.integers(0, 256, pool.capacity(h), dtype=np.uint8).tobytes()
        pool.write(h, payload)
        data[h] = payload
    return data


def test_migrate_every_page_of_a_straddling_zspage() -> None:
    pool = Pool(max_pages=64)
    data = _fill(pool, 3256, 3)  # class 202: 3264 B, 4 pages, 5 objs; offsets 0,2432,1600,768
    (z,) = live_zspages(pool.state)
    info = zspage_info(pool.state, z)
    lists = fullness_lists(pool.state, 202)
    stats = pool.stats()
    for i, old in enumerate(info.pages):
        new = pool.migrate(old)
        assert new != old and new not in info.pages
        after = zspage_info(pool.state, z)
        assert after.pages[i] == new
        assert after.pages[:i] + after.pages[i + 1 :] == info.pages[:i] + info.pages[i + 1 :]
        assert after.free_list == info.free_list
        assert pool.mem_map["page_type"][new] & 0xFFFFFF == [0, 2432, 1600, 768][i]
        assert pool.mem_map["private"][old] == 0 and pool.mem_map["_refcount"][old] == 0
        info = after
        check_pool(pool.state)
    assert fullness_lists(pool.state, 202) == lists
    assert np.array_equal(pool.stats(), stats)
    assert pool.total_pages() == 4
    for h, payload in data.items():
        assert pool.read(h, len(payload)) == payload
    old_first = info.pages[0]
    pool.migrate(old_first)
    # the freed frame is the next one handed out
    assert pool.mem_map["_refcount"][old_first] == 0
    pool.malloc(4000)
    assert pool.mem_map["_refcount"][old_first] == 1


def test_migrate_huge_page_moves_handle() -> None:
    pool = Pool(max_pages=8)
    data = _fill(pool, 4096, 1)
    (h,) = data
    (z,) = live_zspages(pool.state)
    old = zspage_info(pool.state, z).pages[0]
    tagged = int(pool.mem_map["__folio_index"][old])
    assert tagged == h | 1  # zpdesc.handle of a huge zspage
    new = pool.migrate(old)
    assert int(pool.mem_map["__folio_index"][new]) == tagged
    assert int(pool.mem_map["__folio_index"][old]) == 0
    assert pool.read(h, 4096) == data[h]
    check_pool(pool.state)
    pool.free(h)
    assert pool.total_pages() == 0
    check_pool(pool.state)


def test_compaction_after_migration() -> None:
    pool = Pool(max_pages=128)
    data = _fill(pool, 3000, 12)  # three full zspages of class 190
    for h in list(data)[::2]:
        pool.free(h)
        del data[h]
    for z in live_zspages(pool.state):
        for pfn in zspage_info(pool.state, z).pages:
            pool.migrate(pfn)
    assert pool.compact() == 3
    check_pool(pool.state)
    for h, payload in data.items():
        assert pool.read(h, len(payload)) == payload



def test_isolated_pages_counted_in_61_and_66_only() -> None:
    """6.1/6.6 zs_page_isolate() does inc_zspage_isolation() and zs_page_putback() or
    zs_page_migrate() the dec (read in Debian's 6.1 source); 6.12 has no such count."""
    from zsmalloc.zs.migrate import zs_page_isolate, zs_page_putback
    from zsmalloc.zs.state import ZS_ISOLATED_MASK, ZS_ISOLATED_SHIFT

    for version, counted in (("6.1", True), ("6.6", True), ("6.12", False), ("6.18", False)):
        pool = Pool(max_pages=64, version=version)
        _fill(pool, 3000, 2)
        (z,) = live_zspages(pool.state)
        first, second = zspage_info(pool.state, z).pages[:2]
        assert zs_page_isolate(pool.state, first) and zs_page_isolate(pool.state, second)
        isolated = (int(pool.state.zs_bits[z]) >> ZS_ISOLATED_SHIFT) & ZS_ISOLATED_MASK
        assert isolated == (2 if counted else 0)
        zs_page_putback(pool.state, first)
        zs_page_putback(pool.state, second)
        pool.migrate(second)  # isolate + migrate: the count comes back to 0
        check_pool(pool.state)  # which checks that no page is left counted as isolated
