"""LRU writeback order with second chance (spec §9), worker and shrinker.

Expected orders come from the spec's walk: the head is visited first; a
referenced entry loses the bit and rotates to the tail; an unreferenced one is
written back.  New entries start referenced, so an entry goes on its second visit.
A plain LRU or FIFO without the second chance fails these tests.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from zsmalloc.zswap.zswap import Zswap

RAW = 5000


def written_back(z: Zswap, before: set[int]) -> set[int]:
    return {o for o in before if o not in z.tree and z.slots.get(o) and z.slots[o].where == "disk"}


def test_shrinker_second_chance_order(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20, shrinker_enabled=True)
    for o in range(4):
        z.store(o, clen=700)
    assert z.shrinker_scan(None, 4) == 0  # four first visits: only rotations
    assert z.lru_order() == [0, 1, 2, 3]
    assert z.shrinker_scan(None, 2) == 2
    assert written_back(z, set(range(4))) == {0, 1}
    z.store(9, clen=700)  # new, referenced, at the tail
    assert z.shrinker_scan(None, 3) == 2  # 2, 3 written back, 9 rotated
    assert z.lru_order() == [9]
    assert z.counters.written_back_pages == 4 and z.counters.zswpwb == 4
    assert z.debugfs()["stored_pages"] == 1


def test_reswapped_page_goes_to_tail_with_reference(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20, shrinker_enabled=True)
    for o in range(3):
        z.store(o, clen=700)
    z.shrinker_scan(None, 3)  # all unreferenced now
    z.load(0)
    z.store(0, clen=700)  # swapped in and out again: new entry, tail, referenced
    assert z.lru_order() == [1, 2, 0]
    assert z.shrinker_scan(None, 3) == 2
    assert z.lru_order() == [0] and 0 in z.tree


def test_shrinker_disabled_or_no_writeback(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20, shrinker_enabled=False)
    z.store(0, clen=700)
    assert z.shrinker_count() == 0 and z.shrinker_scan(None, 10) == 0
    z.set_param("shrinker_enabled", "Y")
    z.mkdir_memcg("a")
    z.memcg("a").set_file("memory.zswap.writeback", "0")
    z.store(1, clen=700, memcg="a")
    assert z.shrinker_count("a") == 0 and z.shrinker_scan("a", 10) == 0


def test_shrinker_count_formula(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20, shrinker_enabled=True)
    z.mkdir_memcg("a")
    for o, clen in enumerate([1000, 2000, 5000, 300]):
        z.store(o, clen=clen, memcg="a")
    # freeable 4, backing = (1000+2000+4096+300) >> 12 = 1, stored 4: 4 * 1 // 4
    assert z.shrinker_count("a") == 1
    for o in range(4, 12):
        z.store(o, clen=4000, memcg="a")
    # freeable 12, backing (7396 + 32000) >> 12 = 9, stored 12 -> 12 * 9 // 12
    assert z.shrinker_count("a") == 9
    z.memcg("a").nr_disk_swapins = 5  # recent disk swap-ins are consumed once
    assert z.shrinker_count("a") == 7 * 9 // 12
    assert z.memcg("a").nr_disk_swapins == 0


def test_eexist_stops_shrinker_but_not_worker(make_zswap: Callable[..., Zswap]) -> None:
    z = make_zswap(1 << 20, shrinker_enabled=True)
    for o in range(3):
        z.store(o, clen=700)
    z.shrinker_scan(None, 3)
    z.swapcache_add(0)  # a concurrent swap-in holds a swap-cache folio for 0
    assert z.shrinker_scan(None, 3) == 0  # -EEXIST on the head stops the walk
    assert z.counters.reject_reclaim_fail == 1 and z.lru_order() == [1, 2, 0]


def test_pool_limit_worker(make_zswap: Callable[..., Zswap]) -> None:
    # max 10, thr 5.  Fill 10 (offsets 0..9), the 11th store is rejected and the
    # worker runs: shrink_memcg(root) visits one entry per call.  Ten calls only
    # clear reference bits (each counts as a failure, 10 < 16), then 0, 1, ...
    # are written back until total <= 5: offsets 0..4.
    z = make_zswap(1000, worker="sync", max_pool_percent=1, accept_threshold_percent=50)
    for o in range(10):
        z.store(o, clen=RAW)
    assert not z.store(10, clen=RAW).stored
    assert written_back(z, set(range(10))) == {0, 1, 2, 3, 4}
    assert z.total_pages() == 5 and z.counters.written_back_pages == 5
    assert z.lru_order() == [5, 6, 7, 8, 9]
    assert z.counters.reject_reclaim_fail == 0
    # Below thr now: the next store clears reached_full and is accepted.
    assert z.store(11, clen=RAW).stored


def test_worker_gives_up_after_16_failures(make_zswap: Callable[..., Zswap]) -> None:
    # 20 fresh entries: the worker needs 20 rotations before its first writeback,
    # but stops at the 16th failed shrink_memcg: nothing is written back.
    z = make_zswap(2000, worker="sync", max_pool_percent=1, accept_threshold_percent=50)
    for o in range(20):
        z.store(o, clen=RAW)
    z.store(20, clen=RAW)
    assert z.counters.written_back_pages == 0
    assert z.lru_order()[:4] == [16, 17, 18, 19]  # 16 heads rotated to the tail


def test_worker_round_robin_over_memcgs(make_zswap: Callable[..., Zswap]) -> None:
    # Root holds nothing (-ENOENT, skipped); a and b alternate from the cursor.
    z = make_zswap(800, worker="sync", max_pool_percent=1, accept_threshold_percent=75)
    z.mkdir_memcg("a")
    z.mkdir_memcg("b")
    for o in range(4):
        z.store(o, clen=RAW, memcg="a")
        z.store(10 + o, clen=RAW, memcg="b")
    # total 8 = max; thr 6.  Visits: a0 b10 a1 b11 a2 b12 a3 b13 (all rotations, 8
    # failures), then a0 written back (7 > 6), b10 written back (6 <= 6): stop.
    assert not z.store(99, clen=RAW).stored
    assert written_back(z, set(range(4)) | set(range(10, 14))) == {0, 10}
    assert z.memcg("a").zswpwb == 1 and z.memcg("b").zswpwb == 1 and z.memcg().zswpwb == 2


@given(st.lists(st.integers(0, 11), min_size=1, max_size=60), st.integers(1, 8))
def test_lru_is_second_chance_clock(
    make_zswap: Callable[..., Zswap], stores: list[int], nr: int
) -> None:
    """Property: the scan writes back exactly what a reference-bit clock over a list does."""
    z = make_zswap(1 << 20, shrinker_enabled=True)
    clock: list[list[int]] = []  # [offset, referenced]
    for off in stores:
        z.store(off, clen=900)
        clock = [e for e in clock if e[0] != off] + [[off, 1]]
    expected_wb = []
    for _ in range(nr):
        if not clock:
            break
        head = clock.pop(0)
        if head[1]:
            head[1] = 0
            clock.append(head)
        else:
            expected_wb.append(head[0])
    assert z.shrinker_scan(None, nr) == len(expected_wb)
    assert z.lru_order() == [e[0] for e in clock]
    assert sorted(z.tree) == sorted(e[0] for e in clock)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s", "l", "L", "i", "shrink", "w"]),
            st.integers(0, 15),
            st.sampled_from([0, 60, 900, 3000, 4095, 4096, 6000]),
            st.sampled_from([None, "a", "b"]),
        ),
        max_size=120,
    )
)
def test_accounting_invariants(
    make_zswap: Callable[..., Zswap], ops: list[tuple[str, int, int, str | None]]
) -> None:
    """Whatever happens, the counters recount from the entries (spec §8, §10, §12)."""
    z = make_zswap(1500, max_pool_percent=1, accept_threshold_percent=60, shrinker_enabled=True)
    z.mkdir_memcg("a")
    z.mkdir_memcg("b", "a")
    z.memcg("b").set_file("memory.zswap.writeback", "0")
    for op, off, clen, cg in ops:
        if op == "s":
            z.store(off, clen=clen, memcg=cg)
        elif op in ("l", "L") and (off in z.tree or off in z.slots):
            z.load(off, swapcache=op == "l")
        elif op == "i":
            z.invalidate(off)
        elif op == "shrink":
            z.shrinker_scan(cg, clen % 7)
        elif op == "w" and z.shrink_work_pending:
            z.run_shrink_worker()
        entries = list(z.tree.values())
        d = z.debugfs()
        assert d["stored_pages"] == len(entries) == sum(len(lru) for lru in z.lrus.values())
        assert d["stored_incompressible_pages"] == sum(e.length == 4096 for e in entries)
        assert d["pool_total_size"] > 0 or not entries
        for name in ("/", "a", "b"):
            mc = z.memcg(name)
            mine = [e for e in entries if mc in list(e.memcg.ancestors())]
            assert mc.zswap_b == sum(e.length for e in mine)
            assert mc.zswapped == len(mine)
        assert not any(e.memcg is z.memcg("b") and e.length == 4096 for e in entries)
