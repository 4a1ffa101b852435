"""The spec's worked example (zsmalloc.md §11, 6.18), step by step.

User size 3000 -> +8 -> index 186 -> merged class 190 (3072 B, 3 pages, 4 objects);
fullness groups for inuse 1/2/3/4 are 3/6/8/11.  Every expected value below is the
spec's table, not output of the code under test.
"""

from __future__ import annotations

from zsmalloc import Pool
from zsmalloc.zs.check import check_pool, fullness_lists, zspage_info

CLS = 190


def _state(pool: Pool, names: dict[int, str]) -> tuple[int, dict[int, list[str]]]:
    lists = fullness_lists(pool.state, CLS)
    return pool.total_pages(), {g: [names[z] for z in zs] for g, zs in lists.items()}


def _free(pool: Pool, zspage: int) -> list[int]:
    return list(zspage_info(pool.state, zspage).free_list)


def test_worked_example_every_step() -> None:
    pool = Pool(max_pages=64)
    h = [pool.malloc(3000)]
    (a,) = fullness_lists(pool.state, CLS)[3]
    names = {a: "A"}
    assert _state(pool, names) == (3, {3: ["A"]})
    assert _free(pool, a) == [1, 2, 3]
    h += [pool.malloc(3000) for _ in range(3)]
    assert _state(pool, names) == (3, {11: ["A"]})
    h.append(pool.malloc(3000))  # h4: new zspage B, object 0
    (b,) = fullness_lists(pool.state, CLS)[3]
    names[b] = "B"
    assert _state(pool, names) == (6, {3: ["B"], 11: ["A"]})
    h += [pool.malloc(3000) for _ in range(3)]
    assert _state(pool, names) == (6, {11: ["B", "A"]})
    h.append(pool.malloc(3000))  # h8: new zspage C
    (c,) = fullness_lists(pool.state, CLS)[3]
    names[c] = "C"
    assert _state(pool, names) == (9, {3: ["C"], 11: ["B", "A"]})
    pool.free(h[0])
    assert _state(pool, names) == (9, {3: ["C"], 8: ["A"], 11: ["B"]})
    assert _free(pool, a) == [0]
    pool.free(h[1])
    assert _state(pool, names) == (9, {3: ["C"], 6: ["A"], 11: ["B"]})
    assert _free(pool, a) == [1, 0]  # LIFO
    pool.free(h[5])
    assert _state(pool, names) == (9, {3: ["C"], 6: ["A"], 8: ["B"]})
    assert _free(pool, b) == [1]
    pool.free(h[8])  # C empty: freed at once
    names.pop(c)
    assert _state(pool, names) == (6, {6: ["A"], 8: ["B"]})
    pool.free(h[2])
    assert _state(pool, names) == (6, {3: ["A"], 8: ["B"]})
    assert _free(pool, a) == [2, 1, 0]
    # zs_can_compact: ALLOCATED 8, INUSE 4 -> (4 // 4) * 3 = 3
    st = pool.stats()
    assert (st[CLS, 12], st[CLS, 13]) == (8, 4)
    assert pool.can_compact() == 3
    check_pool(pool.state)
    # h3 lives at A/3 and moves to B/1, B's free-list head; A is freed.
    before = pool.read(h[3], 16)
    assert pool.compact() == 3
    assert pool.pages_compacted == 3
    names.pop(a)
    assert _state(pool, names) == (3, {11: ["B"]})
    assert pool.read(h[3], 16) == before
    assert pool.can_compact() == 0
    check_pool(pool.state)
    # A following malloc of this class finds no non-full zspage: +3 pages.
    pool.malloc(3000)
    assert pool.total_pages() == 6
