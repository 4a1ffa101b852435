"""Lazy reservation: a pool that starts tiny and grows is the pool that had it all.

A pool reserves host memory as it goes (zsmalloc.zs.state); the kernel's zsmalloc
has no such step, so growing must change no number: the same handles, pfns, zspage
ids, statistics and bytes as a pool reserved in full from the start.  And when the
host refuses to reserve more, the call fails cleanly with the pool as it was.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zs_helpers import snapshot

import zsmalloc.zs.state as state_mod
from zsmalloc import OutOfMemoryError, Pool
from zsmalloc.errors import ZsmallocError
from zsmalloc.zs import core
from zsmalloc.zs.check import check_pool

SIZES = st.one_of(
    st.integers(1, 64),  # small objects: many per page, the handle table grows
    st.integers(1, 4096),
    st.sampled_from([3000, 3264, 3265, 4095, 4096]),  # straddling and huge classes
)
OPS = st.lists(
    st.tuples(st.sampled_from(["malloc"] * 6 + ["free"] * 3 + ["compact", "migrate"]),
              SIZES, st.integers(0, 2**31)),
    min_size=1,
    max_size=300,
)


def _run(pool: Pool, ops: list[tuple[str, int, int]]) -> list[object]:
    """Apply ``ops``; every outcome (handle, error class, pfn, pages freed) in order."""
    out: list[object] = []
    live: list[tuple[int, bytes]] = []
    for kind, size, r in ops:
        try:
            if kind == "malloc":
                h = pool.malloc(size)
                data = bytes([r % 251]) * min(size, pool.capacity(h))
                pool.write(h, data)
                live.append((h, data))
                out.append(h)
            elif kind == "free" and live:
                h, data = live.pop(r % len(live))
                assert pool.read(h, len(data)) == data
                pool.free(h)
                out.append(("free", h))
            elif kind == "compact":
                out.append(("compact", pool.compact()))
            elif kind == "migrate" and pool.total_pages():
                pfns = np.flatnonzero(pool.mem_map["_refcount"][: pool.state.mm.vars[0].hwm])
                out.append(("migrate", pool.migrate(int(pfns[r % len(pfns)]))))
        except ZsmallocError as exc:
            out.append(type(exc).__name__)
    for h, data in live:
        assert pool.read(h, len(data)) == data
    out.append(pool.classes_text())
    out.append(pool.stats().tobytes())
    return out


@settings(max_examples=25)
@given(ops=OPS)
def test_a_growing_pool_is_the_pool_reserved_in_full(ops: list[tuple[str, int, int]]) -> None:
    full = Pool(max_pages=200)  # all 200 pages reserved at once
    tiny = Pool(max_pages=200, reserve_pages=1)  # grows from the smallest reservation
    assert int(tiny.state.mm.vars[0].nr_frames) < 200
    assert _run(tiny, ops) == _run(full, ops)
    check_pool(tiny.state)
    assert snapshot(tiny).keys() == snapshot(full).keys()
    a, b = snapshot(tiny), snapshot(full)
    assert {k: a[k] for k in a if k not in ("vars", "mm_vars")} == {
        k: b[k] for k in b if k not in ("vars", "mm_vars")
    }


def test_the_handle_table_grows_for_small_objects() -> None:
    pool = Pool(max_pages=64, reserve_pages=2)
    cap = int(pool.state.vars[0].h_cap)
    handles = [pool.malloc(8) for _ in range(3 * cap)]  # 8 + 8 bytes: 256 a page
    assert int(pool.state.vars[0].h_cap) > cap
    assert len(set(handles)) == len(handles) and pool.nr_objects == 3 * cap
    check_pool(pool.state)


def test_the_limit_stays_the_limit() -> None:
    full, tiny = Pool(max_pages=40), Pool(max_pages=40, reserve_pages=1)
    counts = []
    for pool in (full, tiny):
        n = 0
        with pytest.raises(OutOfMemoryError, match="arena of 40 pages is exhausted"):
            while True:
                pool.malloc(4096)
                n += 1
        counts.append(n)
    assert counts[0] == counts[1] == 40


def test_host_refusal_is_a_clean_out_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    pool = Pool(max_pages=1000, reserve_pages=1)
    handles = []
    while pool.state.mm.vars[0].hwm + 16 < pool.state.mm.vars[0].nr_frames:
        handles.append(pool.malloc(4096))

    def refuse(count: int, dtype: object) -> np.ndarray:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    monkeypatch.setattr(state_mod, "anon_zeros", refuse)
    monkeypatch.setattr("zsmalloc.mm.zpdesc.anon_zeros", refuse)
    with pytest.raises(OutOfMemoryError, match="cannot reserve more host memory") as exc:
        for _ in range(100):
            before = snapshot(pool)
            handles.append(pool.malloc(4096))
    assert exc.value.errno == errno.ENOMEM
    assert snapshot(pool) == before
    monkeypatch.undo()
    h = pool.malloc(4096)  # once the host allows it again, the pool grows
    assert h not in handles


def test_the_first_reservation_is_refused_down_to_a_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    real = state_mod.new_mem_map
    tried: list[int] = []

    def refuse_large(frames: int, page_size: int, max_frames: int) -> object:
        tried.append(frames)
        if frames > 100:
            raise OSError(errno.ENOMEM, "Cannot allocate memory")
        return real(frames, page_size, max_frames)

    monkeypatch.setattr(state_mod, "new_mem_map", refuse_large)
    pool = Pool()
    assert tried[0] == state_mod.RESERVE_ARENA_BYTES // 4096 and tried[-1] <= 100
    assert pool.malloc(4096) > 0


def test_numba_callers_resume_after_growth() -> None:
    """The numba layer says -ENOMEM; pool_short() tells a loop it should grow and go on."""
    pool = Pool(max_pages=100, reserve_pages=1)
    n = 0
    while True:
        h = core.zs_malloc(pool.state, 4096)
        if h > 0:
            n += 1
            continue
        assert h == -errno.ENOMEM
        if not state_mod.pool_short(pool.state):
            break
        assert pool.grow()
    assert n == 100 and not pool.grow()
