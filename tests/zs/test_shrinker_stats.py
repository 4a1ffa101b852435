"""Shrinker count/scan, pages_compacted accumulation and the byte accounting."""

from __future__ import annotations

from zsmalloc import Pool


def test_shrinker_count_scan_and_pages_compacted() -> None:
    pool = Pool(max_pages=256)
    small = [pool.malloc(100) for _ in range(3 * 256)]  # class 5: 112 B, 7 pages, 256 objs
    mid = [pool.malloc(3000) for _ in range(8)]  # class 190: 3 pages, 4 objs
    assert pool.total_pages() == 3 * 7 + 2 * 3
    assert pool.can_compact() == 0 and pool.shrink() == 0
    for h in small[::2]:
        pool.free(h)  # 384 of 768 slots free: (384 // 256) * 7 = 7 pages freeable
    for h in mid[1::2]:
        pool.free(h)  # 4 of 8 free: (4 // 4) * 3 = 3 pages freeable
    assert pool.can_compact() == 7 + 3  # spec §5.1 for each class, summed (§5.4)
    assert pool.shrink() == 10
    assert pool.pages_compacted == 10
    assert pool.total_pages() == 27 - 10
    assert pool.can_compact() == 0 and pool.compact() == 0
    assert pool.pages_compacted == 10
    for h in mid[::2]:
        pool.free(h)
    assert pool.total_pages() == 2 * 7


def test_bytes_report_accounts_for_every_byte() -> None:
    pool = Pool(max_pages=64)
    hs = [pool.malloc(3256) for _ in range(3)]  # class 202: 3264 B, 4 pages, 5 objs, waste 64
    huge = pool.malloc(4000)
    report = pool.bytes_report()
    assert report == {
        "objects": 3 * (3264 - 8) + 4096,
        "handle_headers": 3 * 8,
        "free_slots": 2 * 3264,
        "tail_waste": 64,
    }
    assert sum(report.values()) == pool.total_pages() * 4096 == 5 * 4096
    for h in (*hs, huge):
        pool.free(h)
    assert pool.bytes_report() == dict.fromkeys(report, 0)
