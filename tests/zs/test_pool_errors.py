"""Bad input: a clear zsmalloc.errors exception and a pool left exactly as it was."""

from __future__ import annotations

import errno

import pytest
from zs_helpers import snapshot

from zsmalloc import BadHandleError, InvalidSizeError, OutOfMemoryError, Pool
from zsmalloc.errors import ZsmallocError
from zsmalloc.zs import core


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
