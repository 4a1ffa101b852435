"""Bad input: a clear zsmalloc.errors exception and a pool left exactly as it was."""

from __future__ import annotations

import errno
import sys
import threading

import numpy as np
import pytest
from zs_helpers import snapshot

from zsmalloc import BadHandleError, InvalidSizeError, InvalidTypeError, OutOfMemoryError, Pool
from zsmalloc.errors import InvariantError, ZsmallocError
from zsmalloc.zs import core
from zsmalloc.zs.check import live_zspages


@pytest.fixture
def pool() -> Pool:
    p = Pool(max_pages=32)
    for size in (3000, 100, 4096, 2000):  # a straddling class, a small one, huge, 2 per page
        h = p.malloc(size)
        p.write(h, bytes([size % 251]) * min(size, p.capacity(h)))
    return p


def test_malloc_bad_sizes(pool: Pool) -> None:
    before = snapshot(pool)
    with pytest.raises(InvalidSizeError, match="at least 1 byte, found 0") as e0:
        pool.malloc(0)
    assert e0.value.errno == errno.EINVAL
    with pytest.raises(InvalidSizeError, match="ZS_MAX_ALLOC_SIZE=4096 bytes, found 4097") as e1:
        pool.malloc(4097)
    assert e1.value.errno == errno.ENOSPC
    with pytest.raises(InvalidSizeError):
        pool.malloc(-5)
    assert snapshot(pool) == before
    # the numba API answers with the kernel's errno and changes nothing either
    assert core.zs_malloc(pool.state, 0) == -errno.EINVAL
    assert core.zs_malloc(pool.state, 4097) == -errno.ENOSPC
    assert snapshot(pool) == before


def test_double_free_and_forged_handles(pool: Pool) -> None:
    h = pool.malloc(500)
    pool.free(h)
    before = snapshot(pool)
    for bad in (h, 0, -8, 8 * 10**6, h + 1, 1 << 70, "x", 3.0, True):
        with pytest.raises(BadHandleError):
            pool.free(bad)  # type: ignore[arg-type]
        with pytest.raises(BadHandleError):
            pool.read(bad, 1)  # type: ignore[arg-type]
        with pytest.raises(BadHandleError):
            pool.write(bad, b"a")  # type: ignore[arg-type]
    assert core.zs_free(pool.state, h) == -errno.EINVAL
    assert snapshot(pool) == before


def test_message_names_the_handle(pool: Pool) -> None:
    h = pool.malloc(64)
    pool.free(h)
    with pytest.raises(BadHandleError, match=f"handle {h:#x} is not live"):
        pool.free(h)


def test_read_write_beyond_object(pool: Pool) -> None:
    h = pool.malloc(3000)  # class 190: 3072-byte slots, 3064 usable
    assert pool.capacity(h) == 3064
    before = snapshot(pool)
    with pytest.raises(InvalidSizeError, match="holds at most 3064"):
        pool.read(h, 3065)
    with pytest.raises(InvalidSizeError, match="holds at most 3064"):
        pool.write(h, b"z" * 3065)
    with pytest.raises(InvalidSizeError):
        pool.read(h, -1)
    assert snapshot(pool) == before
    huge = pool.malloc(3625)  # huge_class_size: a whole page, no header
    assert pool.capacity(huge) == 4096
    with pytest.raises(InvalidSizeError):
        pool.read(huge, 4097)


def test_arena_exhausted_leaves_pool_unchanged() -> None:
    pool = Pool(max_pages=4)
    handles = [pool.malloc(4000) for _ in range(4)]
    before = snapshot(pool)
    with pytest.raises(OutOfMemoryError, match="exhausted"):
        pool.malloc(4000)
    with pytest.raises(OutOfMemoryError):
        pool.malloc(3000)  # needs a 3-page zspage
    assert snapshot(pool) == before
    assert core.zs_malloc(pool.state, 4000) == -errno.ENOMEM
    pool.free(handles[0])
    pool.malloc(4000)


def test_migrate_bad_pfn(pool: Pool) -> None:
    before = snapshot(pool)
    for pfn in (0, -1, 10**6, pool.max_pages):
        with pytest.raises(ZsmallocError, match="movable, non-isolated page"):
            pool.migrate(pfn)
    assert snapshot(pool) == before


def test_bad_pool_config() -> None:
    with pytest.raises(InvalidSizeError):
        Pool(page_size=8192)
    with pytest.raises(InvalidSizeError):
        Pool(chain_size=17)
    with pytest.raises(InvalidSizeError):
        Pool(max_pages=1)


def test_wrong_types_are_zsmalloc_errors(pool: Pool) -> None:
    h = pool.malloc(200)
    before = snapshot(pool)
    for bad in ("abc", 100.0, 3.5, None, True, b"12"):
        with pytest.raises(InvalidTypeError, match="zs_malloc size must be an integer"):
            pool.malloc(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="read size"):
        pool.read(h, 3.0)  # type: ignore[arg-type]
    for data in ("text", 12345, None):
        with pytest.raises(InvalidTypeError, match="bytes-like"):
            pool.write(h, data)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        pool.migrate(1.0)  # type: ignore[arg-type]
    with pytest.raises(ZsmallocError, match="movable"):
        pool.migrate(2**70)
    assert snapshot(pool) == before


def test_array_data_is_written_as_its_raw_bytes(pool: Pool) -> None:
    h = pool.malloc(800)
    data = np.full(100, 300.7)  # 800 bytes of float64, never cast to uint8
    pool.write(h, data)
    assert pool.read(h, 800) == data.tobytes()
    strided = np.arange(400, dtype=np.uint16)[::2]  # not contiguous: its elements' bytes
    pool.write(h, strided)
    assert pool.read(h, 400) == strided.tobytes()


def test_corrupt_zspage_is_a_bug_not_a_bad_handle(pool: Pool) -> None:
    h = pool.malloc(700)
    zspage = live_zspages(pool.state)[0]
    pool.state.zs_bits[zspage] &= ~np.uint32(0xFF << 14)  # wipe ZSPAGE_MAGIC
    handles = [x for x in range(8, 8 * int(pool.state.vars[0].h_hwm), 8)]
    hit = [x for x in handles if zspage_of(pool, x) == zspage]
    assert hit, "some live handle lives in the corrupted zspage"
    with pytest.raises(InvariantError, match="structures are broken"):
        pool.free(hit[0])
    with pytest.raises(InvariantError):
        pool.read(hit[0], 1)
    assert h > 0


def zspage_of(pool: Pool, handle: int) -> int:
    """The zspage id the handle's obj names (bypassing the magic check)."""
    obj = int(pool.state.handle_obj[handle >> 3])
    if obj <= 0:
        return 0
    pfn = obj >> int(pool.state.vars[0].obj_index_bits)
    return int(pool.state.mm.zp_zspage[pfn])


def test_concurrent_readers_get_their_own_bytes() -> None:
    pool = Pool(max_pages=64)
    handles = []
    for k in range(4):
        h = pool.malloc(3000)
        pool.write(h, bytes([k + 1]) * 3000)
        handles.append(h)
    errors: list[str] = []

    def reader(k: int) -> None:
        want = bytes([k + 1]) * 3000
        for _ in range(3000):
            if pool.read(handles[k], 3000) != want:
                errors.append(f"reader {k} got another object's bytes")
                return

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    try:
        threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert errors == []
