"""``Pool``: the Python face of one zsmalloc pool (``struct zs_pool``).

Mirrors zs_create_pool(), zs_malloc(), zs_free(), zs_obj_write(),
zs_obj_read_begin()/end(), zs_compact(), zs_get_total_pages(), zs_pool_stats(),
zs_huge_class_size(), the shrinker and page migration of mm/zsmalloc.c (6.18), as
methods.  The work is done by the ``@njit`` functions of :mod:`zsmalloc.zs.core` on
``pool.state``; this class validates arguments first and raises
:mod:`zsmalloc.errors` exceptions, so a refused call leaves the pool unchanged.

Example::

    >>> from zsmalloc import Pool
    >>> pool = Pool()
    >>> h = pool.malloc(3000)            # class 190: 3 pages, 4 objects
    >>> pool.write(h, b"x" * 3000)
    >>> pool.total_pages()
    3
    >>> pool.read(h, 3)
    b'xxx'
    >>> pool.free(h); pool.total_pages()
    0
"""

from __future__ import annotations

import errno as _errno
import os
import threading

import numpy as np

from zsmalloc.args import as_byte_array, as_int
from zsmalloc.errors import (
    BadHandleError,
    InvalidSizeError,
    InvalidTypeError,
    InvariantError,
    OutOfMemoryError,
    ZsmallocError,
)
from zsmalloc.mm.page import EBUG
from zsmalloc.profile import DEFAULT_PROFILE, DEFAULT_VERSION, KernelProfile, require_allocator
from zsmalloc.zs import core
from zsmalloc.zs.size_class import ClassTable, check_malloc_size, class_table
from zsmalloc.zs.state import (
    PoolState,
    grow_pool_state,
    host_bytes_used,
    new_pool_state,
)
from zsmalloc.zs.stats import bytes_report, classes_text

DEFAULT_ARENA_BYTES = 4 << 30  # the default arena limit; reserved lazily, resident as used
MAX_POOL_PAGES = 2**31 - 2  # pfns are 32-bit (pfn 0 is NULL): the largest arena (8 TiB at 4 KiB)


class Pool:
    """One zsmalloc pool over its own arena of page frames.

    ``chain_size`` is CONFIG_ZSMALLOC_CHAIN_SIZE, ``page_size`` PAGE_SIZE, ``version`` the
    kernel (a row of :data:`zsmalloc.profile.VERSIONS`: 6.1 has its own allocation rules
    and class table; 6.6 and later share the rules, the obj encoding and errno follow the
    version); or pass a ready ``profile`` (:class:`zsmalloc.profile.KernelProfile`),
    which then sets all three.  ``max_pages``
    bounds the arena (default: 4 GiB worth of pages); malloc fails with
    OutOfMemoryError when it is exhausted, as zs_malloc fails with -ENOMEM.  Host
    memory is reserved as the pool grows (:mod:`zsmalloc.zs.state`), so any
    ``max_pages`` works under ``ulimit -v``; ``reserve_pages`` sets how much is
    reserved up front (default: all of ``max_pages`` up to 4 GiB of arena).

    Thread safety: every method takes the pool's lock (``pool->lock``), so threads
    may share a pool; each read gets its own buffer.  ``state`` is replaced when the
    pool grows: code calling the numba layer directly takes ``pool.state`` afresh
    after any method call (or holds ``pool.lock``).
    """

    def __init__(
        self,
        chain_size: int = 8,
        page_size: int = DEFAULT_PROFILE.page_size,
        *,
        max_pages: int | None = None,
        version: str = DEFAULT_VERSION,
        profile: KernelProfile | None = None,
        reserve_pages: int | None = None,
    ) -> None:
        if profile is None:
            profile = KernelProfile(
                version, as_int(page_size, "page_size"), as_int(chain_size, "chain_size")
            )
        elif not isinstance(profile, KernelProfile):
            raise InvalidTypeError(
                f"profile must be a KernelProfile, found {type(profile).__name__}"
            )
        self.profile = require_allocator(profile)
        self.table: ClassTable = class_table(profile)
        page_size = profile.page_size
        if max_pages is None:
            max_pages = DEFAULT_ARENA_BYTES // page_size
        max_pages = as_int(max_pages, "max_pages")
        if not 2 <= max_pages <= MAX_POOL_PAGES:
            raise InvalidSizeError(f"max_pages must be 2..{MAX_POOL_PAGES}, found {max_pages}")
        if reserve_pages is not None:
            reserve_pages = as_int(reserve_pages, "reserve_pages")
            if reserve_pages < 1:
                raise InvalidSizeError(f"reserve_pages must be >= 1, found {reserve_pages}")
            reserve_pages += 1  # pfn 0
        self.max_pages = max_pages
        self.mem_map, self.state = new_pool_state(
            self.table, max_pages + 1, reserve_frames=reserve_pages
        )
        # pool->lock: one caller at a time, as the kernel's class and pool locks ensure
        # for the structures each call touches; a handle checked live stays live.
        self.lock = threading.RLock()
        # ZSMALLOC_DEBUG=1: recount everything after each change (zsmalloc.zs.check).
        self.debug = os.environ.get("ZSMALLOC_DEBUG", "0") not in ("", "0")

    def _debug_check(self) -> None:
        if self.debug:
            from zsmalloc.zs.check import check_pool

            check_pool(self.state)

    # ---- properties ------------------------------------------------------------------
    @property
    def page_size(self) -> int:
        """PAGE_SIZE of this pool."""
        return self.table.page_size

    @property
    def huge_class_size(self) -> int:
        """zs_huge_class_size(): requests of at least this many bytes take a whole page."""
        return self.table.huge_class_size

    @property
    def pages_compacted(self) -> int:
        """Pages freed by all compactions so far (zs_pool_stats().pages_compacted)."""
        return int(core.zs_pages_compacted(self.state))

    @property
    def nr_objects(self) -> int:
        """Live objects (handles)."""
        return int(self.state.vars[0].h_live)

    @property
    def nr_zspages(self) -> int:
        """Live zspages."""
        return int(self.state.vars[0].nr_zspages)

    # ---- growth ------------------------------------------------------------------------
    def grow(self) -> bool:
        """After an -ENOMEM from the numba layer: reserve more if that would help.

        True when the state was replaced by a larger one (call again); False when the
        pool is at its limits (the -ENOMEM stands).  OutOfMemoryError when the host
        refuses to reserve more.  Callers of the numba layer hold :attr:`lock`.
        """
        with self.lock:
            grown = grow_pool_state(self.mem_map, self.state)
            if grown is None:
                return False
            self.mem_map, self.state = grown
            return True

    # ---- results of the numba layer ----------------------------------------------------
    def _bug(self, res: int, what: str) -> int:
        """``res`` if it is not -EBUG; else raise InvariantError (a bug, not a user error)."""
        if res == -EBUG:
            raise InvariantError(
                f"{what}: the pool's structures are broken (a bug in zsmalloc; "
                "ZSMALLOC_DEBUG=1 checks them after every call)"
            )
        return res

    # ---- allocation --------------------------------------------------------------------
    def malloc(self, size: int) -> int:
        """zs_malloc(size): a handle for an object of ``size`` bytes (1..PAGE_SIZE)."""
        size = as_int(size, "zs_malloc size")
        if size <= 0 or size > self.page_size:
            check_malloc_size(size, self.profile)
        with self.lock:
            while True:
                handle = self._bug(int(core.zs_malloc(self.state, size)), f"zs_malloc({size})")
                if handle != -_errno.ENOMEM or not self.grow():
                    break
            if handle < 0:
                raise OutOfMemoryError(
                    f"zs_malloc({size}): the arena of {self.max_pages} pages is exhausted",
                    errno=-handle,
                )
            self._debug_check()
        return handle

    def _capacity(self, handle: object) -> tuple[int, int]:
        """(handle, capacity) of a live handle, else BadHandleError.  Caller holds the lock."""
        if isinstance(handle, bool) or not isinstance(handle, int | np.integer):
            raise BadHandleError(f"expected an int handle from malloc, found {handle!r}")
        h = int(handle)
        cap = -_errno.EINVAL
        if 0 < h < 1 << 63:
            cap = self._bug(int(core.zs_obj_capacity(self.state, h)), f"handle {h:#x}")
        if cap < 0:
            raise BadHandleError(f"handle {h:#x} is not live (freed, forged or never allocated)")
        return h, cap

    def free(self, handle: int) -> None:
        """zs_free(handle).  BadHandleError for a freed, forged or unknown handle."""
        with self.lock:
            h, _ = self._capacity(handle)
            self._bug(int(core.zs_free(self.state, h)), f"zs_free({h:#x})")
            self._debug_check()

    def capacity(self, handle: int) -> int:
        """Bytes the object can hold: its class size less the 8-byte header (huge: a page)."""
        with self.lock:
            return self._capacity(handle)[1]

    def write(self, handle: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """zs_obj_write(): store the raw bytes of ``data`` at the start of the object."""
        src = as_byte_array(data, "data to write")
        with self.lock:
            h, cap = self._capacity(handle)
            if len(src) > cap:
                raise InvalidSizeError(
                    f"write of {len(src)} bytes to handle {h:#x}: the object holds at most {cap}",
                    errno=_errno.EINVAL,
                )
            self._bug(int(core.zs_obj_write(self.state, h, src, len(src))), f"write {h:#x}")

    def read(self, handle: int, size: int) -> bytes:
        """The object's first ``size`` bytes (zs_obj_read_begin() + copy + _end())."""
        size = as_int(size, "read size")
        with self.lock:
            h, cap = self._capacity(handle)
            if not 0 <= size <= cap:
                raise InvalidSizeError(
                    f"read of {size} bytes from handle {h:#x}: the object holds at most {cap}",
                    errno=_errno.EINVAL,
                )
            buf = np.empty(size, np.uint8)  # per call: concurrent readers never share it
            self._bug(int(core.zs_obj_read(self.state, h, buf, size)), f"read {h:#x}")
        return buf.tobytes()

    # ---- compaction, shrinker, migration ---------------------------------------------
    def compact(self) -> int:
        """zs_compact(): pages freed (also added to ``pages_compacted``)."""
        with self.lock:
            freed = self._bug(int(core.zs_compact(self.state)), "zs_compact")
            self._debug_check()
        return freed

    def can_compact(self) -> int:
        """The shrinker's count: pages a compaction would free now."""
        with self.lock:
            return int(core.zs_can_compact_total(self.state))

    def shrink(self) -> int:
        """The shrinker's scan: a full compaction; pages freed."""
        with self.lock:
            freed = self._bug(int(core.zs_shrinker_scan(self.state)), "zs_shrinker_scan")
            self._debug_check()
        return freed

    def migrate(self, pfn: int) -> int:
        """Migrate page ``pfn`` of a zspage to a new page frame; returns the new pfn."""
        pfn = as_int(pfn, "pfn")
        with self.lock:
            res = -_errno.EINVAL  # beyond any pfn: the arena is < 2^31 pages
            while 0 <= pfn < 1 << 62:
                res = self._bug(int(core.zs_page_migrate_pfn(self.state, pfn)), f"migrate({pfn})")
                if res != -_errno.ENOMEM or not self.grow():
                    break
            if res == -_errno.ENOMEM:
                raise OutOfMemoryError(f"migrate({pfn}): no free page frame for the copy")
            if res < 0:
                raise ZsmallocError(
                    f"migrate({pfn}): expected a movable, non-isolated page of a live zspage",
                    errno=-res,
                )
            self._debug_check()
        return res

    # ---- totals and statistics ---------------------------------------------------------
    def total_pages(self) -> int:
        """zs_get_total_pages(): pages held by zspages."""
        return int(core.zs_get_total_pages(self.state))

    def stats(self) -> np.ndarray:
        """A copy of the per-class counters ``[class, 14]`` (groups 0..11, ALLOCATED, INUSE)."""
        with self.lock:
            return self.state.stats.copy()

    def classes_text(self) -> str:
        """The debugfs ``classes`` file, in the exact format of the pool's kernel."""
        with self.lock:
            return classes_text(self.state)

    def bytes_report(self) -> dict[str, int]:
        """Where the arena bytes held by zspages went; the parts sum to total_pages * PAGE_SIZE."""
        with self.lock:
            return bytes_report(self.state)

    def host_bytes(self) -> dict[str, int]:
        """Host memory spent on metadata beyond the arena, per structure."""
        return host_bytes_used(self.state)

    def __repr__(self) -> str:
        return (
            f"Pool(chain_size={self.table.chain_size}, page_size={self.page_size}, "
            f"max_pages={self.max_pages}): {self.nr_objects} objects, "
            f"{self.total_pages()} pages"
        )


__all__ = ["Pool", "PoolState"]
