"""Pool, Zram and Zswap shared by threads: every thread gets its own data back.

Each model takes one lock in every public method (zsmalloc/locking.py), as the
kernel's pool, slot and tree locks serialise the same operations.  The dangerous
moments are those where a call replaces structures other threads use: a pool
growing (a new state, the old one detached) while another thread is about to
store into it.  So the pools here start with a tiny reservation and grow under
the threads' feet, and the interpreter switches threads as often as it can.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pytest

import zsmalloc.zs.state as state_mod
from zsmalloc import Pool, Zram, Zswap
from zsmalloc.zs.check import check_pool
from zsmalloc.zswap.params import ZswapParams

PAGE = 4096
THREADS = 4


@contextmanager
def eager_switching() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def run_threads(work: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # reported by the main thread below
            errors.append(exc)

    with eager_switching():
        threads = [threading.Thread(target=guarded, args=(k,)) for k in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


@pytest.fixture
def small_reservations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_mod, "RESERVE_ARENA_BYTES", 32 * PAGE)


def page(k: int, i: int) -> bytes:
    """A page only thread ``k`` writes, different for each ``i``, compressible in parts."""
    rng = np.random.default_rng((k, i))
    return rng.bytes(int(rng.integers(1, PAGE))).ljust(PAGE, bytes([k + 1]))


def test_threads_sharing_a_growing_pool(small_reservations: None) -> None:
    pool = Pool(max_pages=4096)
    assert int(pool.state.mm.vars[0].nr_frames) < 100

    def work(k: int) -> None:
        live: dict[int, bytes] = {}
        for i in range(300):
            size = 1 + (i * 977 + k * 131) % PAGE
            h = pool.malloc(size)
            data = bytes([k + 1, i % 256]) * (min(size, pool.capacity(h)) // 2)
            pool.write(h, data)
            live[h] = data
            if i % 3 == 2:
                victim = next(iter(live))
                assert pool.read(victim, len(live[victim])) == live[victim]
                pool.free(victim)
                del live[victim]
            if i % 50 == 49:
                pool.compact()
        for h, data in live.items():
            assert pool.read(h, len(data)) == data

    run_threads(work)
    assert int(pool.state.mm.vars[0].nr_frames) > 100  # it grew while shared
    check_pool(pool.state)


def test_threads_sharing_a_zram_device(small_reservations: None) -> None:
    z = Zram()
    z.write_attr("disksize", str(THREADS * 256 * PAGE))

    def work(k: int) -> None:
        base = k * 256
        for i in range(256):
            z.write((base + i) * PAGE, page(k, i))
        for i in range(0, 256, 7):
            z.discard((base + i) * PAGE, PAGE)
        if k == 0:
            z.compact()
        for i in range(256):
            want = bytes(PAGE) if i % 7 == 0 else page(k, i)
            assert z.read((base + i) * PAGE, PAGE) == want

    run_threads(work)
    stored = sum(1 for i in range(THREADS * 256) if z.slot(i)["kind"] != "empty")
    assert z.mm_stat().orig_data_size == stored * PAGE == THREADS * (256 - 37) * PAGE
    check_pool(z.pool.state)


def test_threads_sharing_zswap(small_reservations: None) -> None:
    zs = Zswap(1 << 20, ZswapParams(enabled=True))

    def work(k: int) -> None:
        base = k * 1000
        for i in range(400):
            assert zs.store(base + i, clen=1 + (i * 37 + k) % 5000).where in ("zswap", "disk")
        for i in range(0, 400, 3):
            zs.load(base + i)
        for i in range(0, 400, 5):
            zs.invalidate(base + i)

    run_threads(work)
    stats = zs.debugfs()
    assert stats["stored_pages"] == len(zs.tree)
    lengths = [e.length for e in zs.tree.values()]
    assert stats["stored_incompressible_pages"] == sum(n == PAGE for n in lengths)
    assert zs.pools[0].zs_pool.nr_objects == len(zs.tree)  # type: ignore[attr-defined]
