"""The Python face zbud and z3fold share: what their ``struct zpool_driver`` ops wrap.

In the kernel each of mm/zbud.c and mm/z3fold.c fills a ``struct zpool_driver`` with
thin wrappers (``zbud_zpool_malloc``, ``z3fold_zpool_shrink``, ...) over its own
allocator, and the wrappers are the same but for the names.  Here the allocators are
numba kernels over array state, and the wrapper layer (argument checks, errno to
exception, copying bytes in and out, the reclaim loop that calls ``evict`` between the
kernels' two halves) is :class:`ZpoolDriver`, once.  A driver supplies its kernels
(:class:`DriverOps`), its error wording and the few steps that differ: where a handle's
object lies, how it is mapped, and which handles a reclaimed page evicts.
"""

from __future__ import annotations

import errno
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from zsmalloc.args import as_byte_array, as_int
from zsmalloc.errors import BadHandleError, InvalidSizeError, InvariantError, OutOfMemoryError
from zsmalloc.mm.page import EBUG, MemMap, memcpy
from zsmalloc.zpool.list import list_nodes
from zsmalloc.zs.pool import DEFAULT_ARENA_BYTES

EvictFn = Callable[[int], int]
"""``zpool_ops.evict``: called with a handle to write its object back; 0 on success (having
freed the handle), else a negative errno."""


class DriverState(Protocol):
    """The fields of ``ZbudState`` and ``Z3foldState`` the shared wrappers read."""

    @property
    def mm(self) -> MemMap: ...
    @property
    def buddy_nxt(self) -> np.ndarray: ...
    @property
    def lru_nxt(self) -> np.ndarray: ...
    @property
    def vars(self) -> np.recarray: ...


S = TypeVar("S", bound=DriverState)


class DriverOps(NamedTuple):
    """A driver's numba kernels; a NamedTuple so that they are never bound as methods."""

    geometry: Callable[[int], dict[str, int]]  # zbud_geometry(page_size)
    create: Callable[[int, int, bool], Any]  # new_zbud_state(nr_frames, page_size, lru)
    alloc: Callable[[Any, int], int]  # zbud_alloc(st, size): handle or -errno
    free: Callable[[Any, int], int]  # zbud_free(st, handle): 0 or -EBUG
    reclaim_take: Callable[[Any], int]  # the first half of *_reclaim_page(): pfn or -errno


class ZpoolDriver(ABC, Generic[S]):
    """One zbud or z3fold pool over its own arena of page frames.

    ``lru=True`` is 6.1's allocator (an LRU of pages and :meth:`reclaim_page`); 6.5 to
    6.14 have none.  ``max_pages`` bounds the arena (default: 4 GiB worth of pages, only
    the used ones resident) (``malloc`` then fails with -ENOMEM).
    """

    kind: ClassVar[str]  # "zbud": the driver's name, and the prefix of its kernel names
    _ops: ClassVar[DriverOps]
    _broken: ClassVar[str]  # what a -EBUG from a kernel means, for InvariantError
    _unbuddied_from: ClassVar[int] = 0  # the first list unbuddied() shows

    def __init__(
        self, page_size: int = 4096, *, lru: bool = False, max_pages: int | None = None
    ) -> None:
        if page_size not in (4096, 16384, 65536):
            raise InvalidSizeError(f"page size must be 4096, 16384 or 65536, found {page_size}")
        if max_pages is None:
            max_pages = DEFAULT_ARENA_BYTES // page_size
        max_pages = as_int(max_pages, "max_pages")
        if not 1 <= max_pages < 2**31 - 1:
            raise InvalidSizeError(f"max_pages must be 1..2**31-2, found {max_pages}")
        self.page_size = page_size
        self.max_pages = max_pages
        self.geometry = self._ops.geometry(page_size)
        # One frame more than max_pages: pfn 0 is never handed out (a handle of 0 is NULL).
        self.state: S = self._ops.create(max_pages + 1, page_size, lru)

    # ---- what each driver supplies -----------------------------------------------------
    @property
    @abstractmethod
    def max_size(self) -> int:
        """The largest object ``malloc`` takes."""

    @abstractmethod
    def _capacity(self, h: int) -> int:
        """The bytes of the live object behind handle ``h``, or 0 if there is none."""

    @abstractmethod
    def _map(self, h: int) -> int:
        """*_map() of a checked handle: the object's address in the arena."""

    @abstractmethod
    def _unmap(self, h: int) -> None:
        """*_unmap() of a handle ``_map`` mapped."""

    @abstractmethod
    def _reclaim_handles(self, pfn: int) -> list[int]:
        """The handles of a taken page's objects in the order reclaim evicts them (0: free)."""

    @abstractmethod
    def _reclaim_putback(self, pfn: int, ret: int) -> int:
        """The second half of a reclaim round: 1 if the page was freed, else 0."""

    # ---- the shared wrappers ----------------------------------------------------------
    @property
    def has_lru(self) -> bool:
        return bool(self.state.vars[0].has_lru)

    def _bug(self, res: int, what: str) -> int:
        if res == -EBUG:
            raise InvariantError(f"{what}: {self._broken} (a bug)")
        return res

    def malloc(self, size: int) -> int:
        """*_alloc(size): a handle; InvalidSizeError (-EINVAL/-ENOSPC) or OutOfMemoryError."""
        alloc = f"{self.kind}_alloc"
        size = as_int(size, f"{alloc} size")
        res = int(self._ops.alloc(self.state, size))
        if res == -errno.ENOMEM:
            raise OutOfMemoryError(
                f"{alloc}({size}): the arena of {self.max_pages} pages is exhausted"
            )
        if res < 0:
            raise InvalidSizeError(
                f"{alloc} size must be 1..{self.max_size}, found {size}", errno=-res
            )
        return res

    def _check(self, handle: object) -> tuple[int, int]:
        """(handle, capacity in bytes) of a live handle, else BadHandleError."""
        if isinstance(handle, bool) or not isinstance(handle, int | np.integer):
            raise BadHandleError(f"expected an int handle from malloc, found {handle!r}")
        h = int(handle)
        cap = self._capacity(h)
        if not cap:
            raise BadHandleError(f"handle {h:#x} is not a live {self.kind} object")
        return h, cap

    def free(self, handle: int) -> None:
        """*_free(handle)."""
        h, _ = self._check(handle)
        self._bug(int(self._ops.free(self.state, h)), f"{self.kind}_free({h:#x})")

    def write(self, handle: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Copy ``data`` to the start of the object (map, memcpy, unmap)."""
        src = as_byte_array(data, "data to write")
        h, cap = self._check(handle)
        if len(src) > cap:
            raise InvalidSizeError(f"write of {len(src)} bytes to a {cap}-byte {self.kind} object")
        addr = self._map(h)
        memcpy(self.state.mm.arena, addr, src, 0, len(src))
        self._unmap(h)

    def read(self, handle: int, size: int) -> bytes:
        """The object's first ``size`` bytes."""
        h, cap = self._check(handle)
        size = as_int(size, "read size")
        if not 0 <= size <= cap:
            raise InvalidSizeError(f"read of {size} bytes from a {cap}-byte {self.kind} object")
        addr = self._map(h)
        out = self.state.mm.arena[addr : addr + size].tobytes()
        self._unmap(h)
        return out

    def total_pages(self) -> int:
        """*_get_pool_size(): pages in the pool."""
        return int(self.state.vars[0].pages_nr)

    def reclaim_page(self, retries: int, evict: EvictFn) -> int:
        """Mirrors *_reclaim_page(pool, retries) with ``evict`` as ``ops->evict``.

        0 when a page was freed, -EINVAL with no LRU or an empty one, -EAGAIN when
        ``retries`` pages could not be emptied (or z3fold could claim none).
        """
        if retries == 0:
            return -errno.EINVAL
        for _ in range(retries):
            pfn = int(self._ops.reclaim_take(self.state))
            if pfn < 0:
                return pfn
            if pfn == 0:  # z3fold: every page on the LRU is claimed or has foreign handles
                break
            # The handles are taken before evicting: eviction frees them.
            ret = -1
            for h in self._reclaim_handles(pfn):
                if h:
                    ret = evict(h)
                    if ret:
                        break
            if self._reclaim_putback(pfn, ret) == 1:
                return 0
        return -errno.EAGAIN

    def shrink(self, pages: int, evict: EvictFn) -> tuple[int, int]:
        """Mirrors *_zpool_shrink(): (return code, pages reclaimed); 8 retries a page."""
        total, ret = 0, -errno.EINVAL
        while total < pages:
            ret = self.reclaim_page(8, evict)
            if ret < 0:
                break
            total += 1
        return ret, total

    # ---- views for checks ------------------------------------------------------------
    def unbuddied(self) -> dict[int, list[int]]:
        """pfns on each non-empty unbuddied list (free chunks -> pages, first to last)."""
        st, base = self.state, int(self.state.vars[0].unbuddied)
        out = {}
        for i in range(self._unbuddied_from, int(st.vars[0].nchunks)):
            nodes = list_nodes(st.buddy_nxt, base + i)
            if nodes:
                out[i] = nodes
        return out

    def lru(self) -> list[int]:
        """pfns on the LRU, newest first."""
        return list_nodes(self.state.lru_nxt, int(self.state.vars[0].lru))
