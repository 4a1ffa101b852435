"""The closed-form fill model against the kernel's numbers and an independent allocator.

- shared_pages.tsv gives, per page and algorithm, the bytes the kernel stored;
  from those alone the model must give shared_pages.mm_stat (recorded on 6.18.44).
- For any sequence of stored sizes, the model must agree with tests/naive.py (a
  list-based zsmalloc that replays the kernel's traces exactly) fed one
  zs_malloc per page in order: every mm_stat column, the fullness bands and the
  pages freed by compaction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from naive import NaiveZsmalloc
from zsmalloc.estimate.fill import (
    chain_size_totals,
    fill_state,
    stored_size_histogram,
)
from zsmalloc.estimate.pool_fill import fill_pool
from zsmalloc.profile import KernelProfile
from zsmalloc.zram.stats import MmStat
from zsmalloc.zs.size_class import class_table

PAGE = 4096


def read_mm_stat(testdata: Path) -> dict[tuple[str, bool], MmStat]:
    out = {}
    for line in (testdata / "shared_pages.mm_stat").read_text().splitlines():
        parts = line.split()
        after = parts[2] == "after-compact"
        out[(parts[1], after)] = MmStat.parse(" ".join(parts[3 if after else 2 :]))
    return out


def read_tsv(testdata: Path) -> dict[str, np.ndarray]:
    rows = [
        line.split("\t")
        for line in (testdata / "shared_pages.tsv").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    header = [h.strip() for h in rows[0]]
    data = np.array([[int(x) for x in r] for r in rows[1:]])
    return {name: data[:, j] for j, name in enumerate(header) if name != "page"}


def hist_of(sizes: np.ndarray) -> tuple[np.ndarray, int]:
    """(length histogram of non-same pages, same-filled count) from stored sizes."""
    nz = sizes[sizes > 0]
    return np.bincount(nz, minlength=PAGE + 1).astype(np.int64), int((sizes == 0).sum())


@pytest.mark.parametrize("algo", ["lzo", "lzo-rle", "lz4"])
def test_kernel_stored_sizes_give_kernel_mm_stat(testdata: Path, algo: str) -> None:
    expected = read_mm_stat(testdata)
    hist, same = hist_of(read_tsv(testdata)[algo])
    state = fill_state(hist, same, class_table(KernelProfile(page_size=PAGE, chain_size=8)))
    assert state.mm_stat() == expected[(algo, False)]
    assert state.mm_stat(compacted=True) == expected[(algo, True)]


def naive_fill(sizes: list[int], chain: int) -> tuple[NaiveZsmalloc, list[int]]:
    """Write the pages in order through the naive allocator, zram's way (spec zram.md §2.2)."""
    t = class_table(KernelProfile(page_size=PAGE, chain_size=chain))
    zs = NaiveZsmalloc(t)
    max_used = 0
    for s in sizes:
        if s == 0:
            continue
        zs.malloc(PAGE if s >= t.huge_class_size else s)
        max_used = max(max_used, zs.pages)
    huge = sum(1 for s in sizes if s >= t.huge_class_size)
    compr = sum(PAGE if s >= t.huge_class_size else s for s in sizes)
    same = sum(1 for s in sizes if s == 0)
    mm = [len(sizes) * PAGE, compr, zs.pages * PAGE, 0, max_used * PAGE, same, 0, huge, huge]
    return zs, mm


lengths = st.lists(
    st.one_of(
        st.just(0),  # same-filled
        st.integers(1, 4096),  # any compressed length, huge ones included
        st.integers(1, 400),  # many small objects: classes with many objs per zspage
        st.sampled_from([3624, 3625, 3632, 4095]),  # the huge boundary
    ),
    max_size=600,
)


@given(sizes=lengths, chain=st.sampled_from([4, 8, 16]))
def test_fill_model_matches_naive_allocator(sizes: list[int], chain: int) -> None:
    zs, mm = naive_fill(sizes, chain)
    hist, same = hist_of(np.array(sizes, dtype=np.int64))
    state = fill_state(hist, same, class_table(KernelProfile(page_size=PAGE, chain_size=chain)))
    assert state.mm_stat() == MmStat(*mm)
    # The fullness bands the debugfs table would show.
    for k, cls in enumerate(state.index):
        groups = [len(zs.lists[int(cls)][g]) for g in range(1, 12)]
        assert list(state.bands[k]) == groups, int(cls)
        assert state.freeable[k] == zs.can_compact(int(cls))
    # Compaction in the allocator frees what the model says (nothing) and leaves mm_stat.
    freed = zs.compact()
    assert freed == state.mm_stat(compacted=True).pages_compacted
    assert zs.pages * PAGE == state.mm_stat(compacted=True).mem_used_total
    # The numba allocator given the same objects agrees too (fill_pool checks the total).
    pool = fill_pool(state)
    assert (pool.pages_compacted, pool.total_pages_after_compact) == (freed, zs.pages)


@given(sizes=lengths)
def test_lost_bytes_add_up(sizes: list[int]) -> None:
    hist, same = hist_of(np.array(sizes, dtype=np.int64))
    state = fill_state(hist, same, class_table(KernelProfile(page_size=PAGE, chain_size=8)))
    lost = state.lost_bytes()
    for parts in lost.values():
        assert (parts >= 0).all()
    total = sum(lost.values())
    assert (total == state.pages_used * PAGE - state.stored_bytes).all()
    assert int(total.sum()) == state.total_pages * PAGE - state.compr_data_size


def test_huge_threshold_moves_with_chain_size() -> None:
    # 3700 bytes: huge at chain 8 (huge_class_size 3625), a normal object at chain 16 (3833).
    hist = np.zeros(PAGE + 1, dtype=np.int64)
    hist[3700] = 9
    assert class_table(KernelProfile(page_size=PAGE, chain_size=16)).huge_class_size == 3833
    totals = chain_size_totals(hist, 0, PAGE, [8, 16])
    assert totals[8] == 9 * PAGE
    t16 = class_table(KernelProfile(page_size=PAGE, chain_size=16))
    cls = t16.class_index_for_malloc(3700)
    per = int(t16.objs_per_zspage[cls])
    assert totals[16] == -(-9 // per) * int(t16.pages_per_zspage[cls]) * PAGE


def test_stored_size_histogram_huge_rule() -> None:
    h = np.zeros(PAGE + 1, dtype=np.int64)
    h[[10, 3624, 3625, 4096]] = [1, 2, 3, 4]
    out = stored_size_histogram(h, PAGE, 3625)
    assert out[10] == 1 and out[3624] == 2 and out[3625] == 0 and out[PAGE] == 7


@given(sizes=lengths, chain=st.sampled_from([4, 8, 16]))
def test_fill_model_matches_full_zram_replay(sizes: list[int], chain: int) -> None:
    """The closed form equals the step-by-step zram + numba zsmalloc model (--verify)."""
    from zsmalloc.estimate.verify import replay_check

    arr = np.array(sizes, dtype=np.int64)
    hist, same = hist_of(arr)
    state = fill_state(hist, same, class_table(KernelProfile(page_size=PAGE, chain_size=chain)))
    summary = replay_check(arr, state)  # raises InvariantError on any differing column
    assert summary["m_checked"] == 2


def test_replay_check_catches_a_wrong_closed_form(testdata: Path) -> None:
    from zsmalloc.errors import InvariantError
    from zsmalloc.estimate.verify import replay_check

    sizes = read_tsv(testdata)["lz4"]
    hist, same = hist_of(sizes)
    hist[100] += 1  # one object too many in the closed form
    state = fill_state(hist, same, class_table(KernelProfile(page_size=PAGE, chain_size=8)))
    with pytest.raises(InvariantError, match="disagree"):
        replay_check(sizes, state)


@pytest.mark.parametrize("algo", ["lzo", "lz4"])
def test_json_class_rows_match_the_pool_debugfs_table(testdata: Path, algo: str) -> None:
    """The closed form's per-class rows equal zs_stats_size_show() of a real Pool;
    zs_compact on that pool frees what the kernel's compact freed (nothing)."""
    from zsmalloc.estimate.driver import Tally
    from zsmalloc.estimate.report import build_report

    hist, same = hist_of(read_tsv(testdata)[algo])
    tally = Tally(page_size=PAGE, algos=[algo], len_hist={algo: hist}, same_pages=same)
    tally.pages = int(hist.sum()) + same
    r = build_report(tally, run_pool=True).algos[algo]
    assert r.pool is not None
    lines = r.pool.classes_text.splitlines()
    rows = {int(line.split()[0]): [int(x) for x in line.split()] for line in lines[1:-2]}
    for c in r.classes():
        got = rows[c["class"]]
        assert got[1] == c["size"] and got[2:13] == c["fullness"]
        assert got[13:] == [
            c["obj_allocated"],
            c["obj_used"],
            c["pages_used"],
            c["pages_per_zspage"],
            c["freeable"],
        ]
    assert len(rows) == len(r.classes()) == 119
    expected = read_mm_stat(testdata)
    assert r.mm_stat_after_compact == expected[(algo, True)]
    assert r.pool.pages_compacted == expected[(algo, True)][6]


@given(sizes=lengths, chain=st.sampled_from([4, 5, 8, 16]))  # Kconfig: range 4 16
def test_fill_state_invariants(sizes: list[int], chain: int) -> None:
    """Per class: bands count every zspage, slots cover objects, pages follow zspages."""
    arr = np.array(sizes, dtype=np.int64)
    hist, same = hist_of(arr)
    state = fill_state(hist, same, class_table(KernelProfile(page_size=PAGE, chain_size=chain)))
    zspages = state.obj_allocated // state.objs_per_zspage
    assert (state.bands.sum(axis=1) == zspages).all()
    assert (state.bands[:, :10].sum(axis=1) <= 1).all()  # at most one partial zspage
    assert (state.obj_allocated >= state.obj_used).all()
    assert (state.obj_allocated - state.obj_used < state.objs_per_zspage).all()
    assert (state.pages_used == zspages * state.pages_per_zspage).all()
    assert int(state.obj_used.sum()) == int((arr > 0).sum())
    assert state.pages_stored == len(sizes) and state.same_pages == int((arr == 0).sum())
    assert state.total_pages * PAGE >= state.compr_data_size
