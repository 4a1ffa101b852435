"""The zpool layer: one API over zbud, z3fold and zsmalloc (mm/zpool.c, 6.1 .. 6.17).

Mirrors ``zpool_create_pool``, ``zpool_malloc``, ``zpool_free``, ``zpool_map_handle``,
``zpool_shrink``, ``zpool_get_total_size`` (``zpool_get_total_pages`` from 6.9),
``zpool_evictable`` and ``zpool_malloc_support_movable``.  A :class:`Zpool` holds one
driver's pool; the driver table is :data:`DRIVERS`.

What the layer decides (6.1, where it mattered most):

* ``evictable`` = the driver has ``shrink`` and the user passed an ``evict`` op.  zbud
  and z3fold have ``shrink`` in 6.1 (their LRU); zsmalloc has none in 6.1 (its LRU came
  in 6.3 and went with the others' in 6.5, when zswap took the LRU over).  zswap 6.1
  prefixes every object of an evictable pool with an 8-byte ``struct zswap_header``
  (the swap entry) so that eviction, which starts from the allocator's page, can find
  the zswap entry: on zbud and z3fold each object is 8 bytes longer.
* ``zpool_shrink`` without a driver ``shrink`` is -EINVAL, which zswap 6.1's shrink
  worker counts as ``reject_reclaim_fail``.

``malloc`` here returns what ``zpool_malloc`` returns, a handle or a negative errno,
because the errno decides zswap's counters (-ENOSPC: ``reject_compress_poor``, others
``reject_alloc_fail``).
"""

from __future__ import annotations

import errno
from typing import Protocol

from zsmalloc.errors import (
    InvalidSizeError,
    OutOfMemoryError,
    UnknownAlgorithmError,
)
from zsmalloc.profile import KernelProfile
from zsmalloc.zpool.driver import EvictFn, ZpoolDriver
from zsmalloc.zpool.z3fold import Z3foldPool
from zsmalloc.zpool.zbud import ZbudPool
from zsmalloc.zs.pool import Pool

DRIVERS = ("zbud", "z3fold", "zsmalloc")
"""Every zpool driver Linux had (``zpool_register_driver`` callers), in Kconfig order."""


class DriverPool(Protocol):
    """What a driver's pool offers the zpool layer."""

    def malloc(self, size: int) -> int: ...
    def free(self, handle: int) -> None: ...
    def total_pages(self) -> int: ...


class Zpool:
    """``struct zpool``: one driver's pool behind the zpool API."""

    def __init__(
        self,
        driver: str,
        profile: KernelProfile,
        *,
        evict: EvictFn | None = None,
        lru: bool = False,
        max_pages: int | None = None,
        pool: DriverPool | None = None,
    ) -> None:
        if driver not in DRIVERS:
            raise UnknownAlgorithmError(
                f"no zpool driver {driver!r}; known: {', '.join(DRIVERS)}", errno=errno.ENOENT
            )
        self.type = driver
        self.profile = profile
        self.page_size = profile.page_size
        self.evict = evict
        if pool is not None:  # a pool made elsewhere (tests inject zsmalloc pools)
            self.pool: DriverPool = pool
        elif driver == "zbud":
            self.pool = ZbudPool(profile.page_size, lru=lru, max_pages=max_pages)
        elif driver == "z3fold":
            self.pool = Z3foldPool(profile.page_size, lru=lru, max_pages=max_pages)
        else:
            self.pool = Pool(profile=profile, max_pages=max_pages)
        self.has_shrink = driver != "zsmalloc" and lru

    @property
    def evictable(self) -> bool:
        """zpool_evictable(): ``driver->shrink && ops && ops->evict``."""
        return self.has_shrink and self.evict is not None

    def set_evict(self, evict: EvictFn) -> None:
        """The ``zpool_ops.evict`` given to zpool_create_pool() (zswap's writeback)."""
        self.evict = evict

    def malloc(self, size: int) -> int:
        """zpool_malloc(): a handle, or -errno (-ENOSPC too big, -EINVAL, -ENOMEM)."""
        try:
            return self.pool.malloc(size)
        except OutOfMemoryError:
            return -errno.ENOMEM
        except InvalidSizeError as exc:
            return -(exc.errno or errno.EINVAL)

    def free(self, handle: int) -> None:
        """zpool_free()."""
        self.pool.free(handle)

    def write(self, handle: int, data: bytes) -> None:
        """zpool_map_handle(ZPOOL_MM_WO) + memcpy + zpool_unmap_handle()."""
        self.pool.write(handle, data)  # type: ignore[attr-defined]

    def read(self, handle: int, size: int) -> bytes:
        """zpool_map_handle(ZPOOL_MM_RO): the object's first ``size`` bytes.

        Reads through any handle the driver made, including the ones z3fold's reclaim
        builds on its stack and passes to ``evict``.
        """
        if isinstance(self.pool, Z3foldPool):
            return self.pool.read_unchecked(handle, size)
        return self.pool.read(handle, size)  # type: ignore[attr-defined]

    def total_pages(self) -> int:
        """zpool_get_total_pages() (6.9+; before: zpool_get_total_size() / PAGE_SIZE)."""
        return self.pool.total_pages()

    def total_size(self) -> int:
        """zpool_get_total_size(): bytes."""
        return self.total_pages() * self.page_size

    def shrink(self, pages: int) -> tuple[int, int]:
        """zpool_shrink(): (0 or -errno, pages reclaimed); -EINVAL without driver shrink."""
        if not self.has_shrink or not isinstance(self.pool, ZpoolDriver):
            return -errno.EINVAL, 0
        evict = self.evict if self.evict is not None else (lambda h: -errno.ENOENT)
        return self.pool.shrink(pages, evict)

    @property
    def malloc_support_movable(self) -> bool:
        """zsmalloc's pages are movable; zbud's are not (z3fold makes them movable itself)."""
        return self.type == "zsmalloc"

    def __repr__(self) -> str:
        return f"Zpool({self.type}, {self.total_pages()} pages)"


def zpool_create_pool(
    driver: str,
    profile: KernelProfile,
    *,
    evict: EvictFn | None = None,
    lru: bool = False,
    max_pages: int | None = None,
    pool: DriverPool | None = None,
) -> Zpool:
    """zpool_create_pool(type, name, gfp, ops): a pool of ``driver``.

    ``lru`` is whether zbud/z3fold keep their 6.1 LRU (and so have ``shrink``);
    ``evict`` is ``zpool_ops.evict``, called with a handle to write back.
    """
    return Zpool(driver, profile, evict=evict, lru=lru, max_pages=max_pages, pool=pool)
