"""zswap: the compressed swap cache in front of a swap device, on zsmalloc pools.

Mirrors mm/zswap.c (6.18) as ../shared/spec/zswap.md describes it, with the
kernel's names: ``zswap_store`` / ``zswap_store_page``, ``zswap_load``,
``zswap_invalidate``, ``zswap_entry_free``, ``zswap_check_limits``,
``zswap_writeback_entry``, ``shrink_memcg_cb``, ``shrink_memcg``,
``shrink_worker``, ``zswap_shrinker_count`` / ``zswap_shrinker_scan``.

The picture (spec §1)::

    swap-out of a page at swap offset OFF
       all zeros? -> swap zero map (zswap never sees it)
       zswap_store: may_zswap (memcg) -> check_limits -> compress -> zs_malloc
          ok  -> entry in the tree at OFF, at the LRU tail, referenced
          no  -> stale entry at OFF freed; the page goes to the swap device,
                 unless the memcg forbids writeback (then it stays in memory)
    swap-in of OFF: zero map, else zswap_load (exclusive), else the device
    slot freed: zswap_invalidate(OFF)

State (spec §3): one tree (offset -> entry) for the one modelled swap device;
a list of pools, the first current, each a zsmalloc :class:`~zsmalloc.Pool`
with its compressor; one LRU per memcg; the counters of spec §10.

Where the model has to pick what concurrency decides in the kernel, it says so:

* The pool-limit shrink worker is queued by a rejected store while the pool is
  full.  ``worker="sync"`` (default) runs it to completion right after that
  store; ``worker="manual"`` leaves it pending until :meth:`run_shrink_worker`.
* The dynamic shrinker is driven by reclaim; the model runs it only when asked
  (:meth:`shrinker_scan`), with the kernel's count (:meth:`shrinker_count`).
* Writeback never meets a page already in the swap cache (-EEXIST) unless the
  offset was marked with :meth:`swapcache_add`; decompression never fails.

Pages are given by content (compressed with the pool's compressor) or by their
compressed length ``clen`` with unlimited room (:mod:`.compression`).  Contents
are not kept: the model needs only lengths.

Concurrency: every public method takes ``Zswap.lock`` (the tree, LRU and pool
locks of the kernel in one, :mod:`zsmalloc.locking`), so threads may share a
model.  Arguments follow :mod:`zsmalloc.args`: offsets and lengths are integers,
pages are buffers of PAGE_SIZE raw bytes, cgroups are names (or this model's own
:class:`MemCgroup` objects).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from zsmalloc.args import as_byte_array, as_int, as_str
from zsmalloc.errors import (
    InputError,
    InvalidSizeError,
    InvalidTypeError,
    OutOfMemoryError,
    SysfsError,
)
from zsmalloc.locking import serialized
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile
from zsmalloc.zs.pool import Pool
from zsmalloc.zswap.compression import (
    is_zero_filled,
    length_function,
    zswap_compress_outcome,
)
from zsmalloc.zswap.lru import ListLru
from zsmalloc.zswap.memcg import MemCgroup, MemCgroupTree
from zsmalloc.zswap.params import ZswapParams
from zsmalloc.zswap.stats import ZswapCounters

MAX_RECLAIM_RETRIES = 16  # include/linux/swap.h
SHRINK_MEMCG_NR_TO_WALK = 1  # shrink_memcg(): entries per node per call (6.12..6.18)


class ZsPoolLike(Protocol):
    """What zswap needs of a zsmalloc pool (zs_malloc, zs_free, zs_get_total_pages)."""

    def malloc(self, size: int) -> int: ...
    def free(self, handle: int) -> None: ...
    def total_pages(self) -> int: ...


def default_pool_factory(profile: KernelProfile = DEFAULT_PROFILE) -> ZsPoolLike:
    """zs_create_pool() for zswap: a zsmalloc Pool of the kernel ``profile``."""
    return Pool(profile=profile)


@dataclass(eq=False)
class ZswapPool:
    """``struct zswap_pool``: one zsmalloc pool and its compressor."""

    name: str  # "zswap<n>"
    compressor: str
    zs_pool: ZsPoolLike
    nr_entries: int = 0  # stands for the percpu_ref the entries hold


@dataclass(eq=False, slots=True)
class ZswapEntry:
    """``struct zswap_entry``: the stored form of one swapped-out page."""

    offset: int
    length: int  # 1..4095 compressed, 4096 stored as-is
    pool: ZswapPool
    handle: int
    memcg: MemCgroup
    referenced: bool = True


@dataclass
class SwapSlot:
    """Where the page at a swap offset lives when zswap does not hold it."""

    where: str  # "zero" (zero map), "disk" (swap device), "memory" (store refused, no wb)
    memcg: MemCgroup


@dataclass
class StoreResult:
    stored: bool
    where: str  # "zswap", "zero", "disk" or "memory"


class Zswap:
    """The zswap model.

    >>> z = Zswap(totalram_pages=1 << 18, params=ZswapParams(enabled=True))  # doctest: +SKIP
    >>> z.store(0, clen=1200); z.debugfs()["stored_pages"]                      # doctest: +SKIP
    1
    """

    def __init__(
        self,
        totalram_pages: int,
        params: ZswapParams | None = None,
        *,
        pool_factory: Callable[[], ZsPoolLike] | None = None,
        profile: KernelProfile = DEFAULT_PROFILE,
        worker: str = "sync",
        nr_swap_slots: int | None = None,
    ) -> None:
        totalram_pages = as_int(totalram_pages, "totalram_pages")
        if totalram_pages <= 0:
            raise InvalidSizeError(f"totalram_pages must be positive, found {totalram_pages}")
        if not isinstance(worker, str) or worker not in ("sync", "manual"):
            raise InputError(f"worker must be 'sync' or 'manual', found {worker!r}")
        if params is not None and not isinstance(params, ZswapParams):
            raise InvalidTypeError(f"params must be ZswapParams, found {type(params).__name__}")
        if not isinstance(profile, KernelProfile):
            raise InvalidTypeError(f"profile must be a KernelProfile, found {profile!r}")
        if pool_factory is not None and not callable(pool_factory):
            raise InvalidTypeError(f"pool_factory must be callable, found {pool_factory!r}")
        if nr_swap_slots is not None:
            nr_swap_slots = as_int(nr_swap_slots, "nr_swap_slots")
            if nr_swap_slots <= 0:
                raise InvalidSizeError(f"nr_swap_slots must be positive, found {nr_swap_slots}")
        self.lock = threading.RLock()
        self.totalram_pages = totalram_pages
        self.params = ZswapParams()
        self.profile = profile
        self.page_size = profile.page_size
        self.pool_factory = pool_factory or (lambda: default_pool_factory(profile))
        self.worker = worker
        self.nr_swap_slots = nr_swap_slots
        self.counters = ZswapCounters()
        self.memcgs = MemCgroupTree(self.page_size)
        self.pools: list[ZswapPool] = []  # pools[0] is current
        self.tree: dict[int, ZswapEntry] = {}
        self.slots: dict[int, SwapSlot] = {}
        self.lrus: dict[MemCgroup, ListLru[ZswapEntry]] = {}
        self.swapcache: set[int] = set()
        self.reached_full = False  # zswap_pool_reached_full
        self.shrink_work_pending = False
        self.next_shrink: MemCgroup | None = None  # zswap_next_shrink
        self.ever_enabled = False
        self._clen_fns: dict[str, Callable[[bytes], int]] = {}
        self._nr_pools_created = 0
        for name, value in (params or ZswapParams()).as_sysfs().items():
            if name != "enabled":
                self.set_param(name, value)
        if params is not None and params.enabled:
            self.set_param("enabled", "Y")

    # -- parameters ----------------------------------------------------------------
    @serialized
    def set_param(self, name: str, value: str | int | bool) -> None:
        """Write ``/sys/module/zswap/parameters/NAME``; refused values change nothing."""
        new = self.params.with_value(as_str(name, "zswap parameter name"), value)
        if name == "compressor" and self.ever_enabled and new.compressor != self.current_compressor:
            self._switch_pool(new.compressor)
        if name == "enabled" and new.enabled and not self.ever_enabled:
            # zswap_setup(): the first pool is made with the compressor set by then.
            self._switch_pool(new.compressor)
            self.ever_enabled = True
        self.params = new

    @property
    def current_compressor(self) -> str:
        return self.pools[0].compressor if self.pools else self.params.compressor

    def _switch_pool(self, compressor: str) -> None:
        """__zswap_param_set(): revive a draining pool of that compressor, or create one."""
        for p in self.pools:
            if p.compressor == compressor:
                self.pools.remove(p)
                self.pools.insert(0, p)
                break
        else:
            pool = ZswapPool(f"zswap{self._nr_pools_created:x}", compressor, self.pool_factory())
            self._nr_pools_created += 1
            self.pools.insert(0, pool)
        self._drop_drained_pools()

    def _drop_drained_pools(self) -> None:
        """A non-current pool goes when its last entry does (percpu_ref release)."""
        self.pools[1:] = [p for p in self.pools[1:] if p.nr_entries]

    # -- sizes ------------------------------------------------------------------------
    @serialized
    def total_pages(self) -> int:
        """Mirrors zswap_total_pages(): zsmalloc pages of every pool, draining ones too."""
        return sum(p.zs_pool.total_pages() for p in self.pools)

    @serialized
    def max_pages(self) -> int:
        """Mirrors zswap_max_pages(): totalram * max_pool_percent / 100."""
        return self.totalram_pages * self.params.max_pool_percent // 100

    @serialized
    def accept_thr_pages(self) -> int:
        """Mirrors zswap_accept_thr_pages(): of max_pages, not of RAM."""
        return self.max_pages() * self.params.accept_threshold_percent // 100

    @serialized
    def check_limits(self) -> bool:
        """Mirrors zswap_check_limits(): True means full, reject this store (spec §6)."""
        cur = self.total_pages()
        if cur >= self.max_pages():
            self.counters.pool_limit_hit += 1
            self.reached_full = True
        elif self.reached_full and cur <= self.accept_thr_pages():
            self.reached_full = False
        return self.reached_full

    @serialized
    def writeback_enabled(self, memcg: MemCgroup) -> bool:
        """Mirrors mem_cgroup_zswap_writeback_enabled(): always true when zswap is off."""
        memcg = self.memcg(memcg)
        return not self.params.enabled or memcg.writeback_enabled()

    # -- cgroups ----------------------------------------------------------------------
    @serialized
    def mkdir_memcg(self, name: str, parent: str | None = None) -> MemCgroup:
        return self.memcgs.mkdir(name, parent)

    @serialized
    def memcg(self, name: str | MemCgroup | None = None) -> MemCgroup:
        """The cgroup called ``name`` (None: the root); SysfsError if there is none."""
        if isinstance(name, MemCgroup):
            if self.memcgs.by_name.get(name.name) is not name:
                raise SysfsError(
                    f"cgroup {name.name!r} belongs to another zswap model", errno=errno.ENOENT
                )
            return name
        if name is not None and not isinstance(name, str):
            raise InvalidTypeError(f"a cgroup is a name, found {name!r} ({type(name).__name__})")
        return self.memcgs.get(name)

    def _lru(self, memcg: MemCgroup) -> ListLru[ZswapEntry]:
        lru = self.lrus.get(memcg)
        if lru is None:
            lru = self.lrus[memcg] = ListLru()
        return lru

    # -- store ------------------------------------------------------------------------
    def _check_offset(self, offset: int) -> int:
        offset = as_int(offset, "swap offset")
        if offset < 0 or (self.nr_swap_slots is not None and offset >= self.nr_swap_slots):
            limit = f"0..{self.nr_swap_slots - 1}" if self.nr_swap_slots else ">= 0"
            raise InputError(f"swap offset must be {limit}, found {offset}")
        return offset

    def _clen(self, page: bytes, compressor: str) -> int:
        fn = self._clen_fns.get(compressor)
        if fn is None:
            fn = self._clen_fns[compressor] = length_function(compressor)
        return fn(page)

    @serialized
    def store(
        self,
        offset: int,
        page: bytes | None = None,
        *,
        clen: int | None = None,
        memcg: str | MemCgroup | None = None,
    ) -> StoreResult:
        """Swap out one page at ``offset``: by content, or by compressed length ``clen``."""
        return self.store_folio(
            offset,
            [page] if page is not None else None,
            clens=[clen] if clen is not None else None,
            memcg=memcg,
        )

    @serialized
    def store_folio(
        self,
        offset: int,
        pages: Sequence[bytes] | None = None,
        *,
        clens: Sequence[int] | None = None,
        memcg: str | MemCgroup | None = None,
    ) -> StoreResult:
        """Swap out a folio of ``n`` pages at offsets ``offset..offset+n-1``.

        Mirrors swap_writeout() (zero map) then zswap_store(folio) (spec §1, §4).
        Exactly one of ``pages`` (4096-byte each) and ``clens`` (each >= 1, or 0 for
        an all-zero page) is given.  All input is validated before any state changes.
        """
        mc = self.memcg(memcg)
        if (pages is None) == (clens is None):
            raise InputError("give exactly one of pages= or clens=")
        offset = as_int(offset, "swap offset")
        if pages is not None:
            if isinstance(pages, str | bytes | bytearray | memoryview) or not isinstance(
                pages, Sequence
            ):
                raise InvalidTypeError(f"pages: expected a sequence of pages, found {pages!r}")
            pages = [as_byte_array(p, f"page {k}").tobytes() for k, p in enumerate(pages)]
        else:
            if isinstance(clens, str | bytes) or not isinstance(clens, Sequence):
                raise InvalidTypeError(f"clens: expected a sequence of lengths, found {clens!r}")
            clens = [as_int(c, f"clen {k}") for k, c in enumerate(clens)]
        n = len(pages) if pages is not None else len(clens)  # type: ignore[arg-type]
        if n == 0:
            raise InputError("a folio has at least one page")
        for k in range(n):
            self._check_offset(offset + k)
        if pages is not None:
            for k, p in enumerate(pages):
                if len(p) != self.page_size:
                    raise InvalidSizeError(
                        f"page {k}: expected {self.page_size} bytes, found {len(p)}"
                    )
            zero = all(is_zero_filled(p) for p in pages)
        else:
            for k, c in enumerate(clens):  # type: ignore[arg-type]
                if c < 0:
                    raise InvalidSizeError(f"page {k}: compressed length must be >= 0, found {c}")
            zero = all(c == 0 for c in clens)  # type: ignore[union-attr]
            if not zero and any(c == 0 for c in clens):  # type: ignore[union-attr]
                raise InvalidSizeError("clen 0 (a zero page) mixed with data pages in one folio")

        if zero:
            # is_folio_zero_filled(): zero map, no I/O; zswap is not called at all.
            for k in range(n):
                self.slots[offset + k] = SwapSlot("zero", mc)
            return StoreResult(False, "zero")
        if pages is not None:
            clens = [self._clen(p, self.current_compressor) for p in pages]
        ok = self._zswap_store(offset, clens, mc)  # type: ignore[arg-type]
        if ok:
            for k in range(n):
                self.slots.pop(offset + k, None)
            return StoreResult(True, "zswap")
        # Not stored: disk, unless this memcg forbids writeback (spec §1 step 4).
        where = "disk" if self.writeback_enabled(mc) else "memory"
        for k in range(n):
            self.slots[offset + k] = SwapSlot(where, mc)
        return StoreResult(False, where)

    def _zswap_store(self, offset: int, clens: Sequence[int], mc: MemCgroup) -> bool:
        """Mirrors zswap_store() in mm/zswap.c (6.18), for a folio of ``len(clens)`` pages."""
        n = len(clens)
        ret = self.params.enabled and self._zswap_store_pages(offset, clens, mc)
        if not ret and self.params.enabled and self.reached_full:
            self._queue_shrink_work()
        if not ret:
            # check_old: drop stale entries at every offset of the folio.
            for k in range(n):
                entry = self.tree.pop(offset + k, None)
                if entry is not None:
                    self._entry_free(entry)
        return ret

    def _zswap_store_pages(self, offset: int, clens: Sequence[int], mc: MemCgroup) -> bool:
        if not mc.may_zswap() and self.shrink_memcg(mc) != 0:
            return False  # no counter for a memcg zswap.max reject
        if self.check_limits():
            return False
        if not self.pools:
            return False
        pool = self.pools[0]
        for k, clen in enumerate(clens):
            if not self._store_page(offset + k, clen, pool, mc):
                return False
        self.counters.zswpout += len(clens)
        mc.count_event("zswpout", len(clens))
        return True

    def _store_page(self, offset: int, clen: int, pool: ZswapPool, mc: MemCgroup) -> bool:
        """Mirrors zswap_store_page(): compress, zs_malloc, tree insert, charge, LRU add."""
        outcome = zswap_compress_outcome(
            pool.compressor, clen, self.writeback_enabled(mc), self.page_size
        )
        if outcome.length is None:
            self.counters.bump(outcome.reject_counter)  # type: ignore[arg-type]
            return False
        try:
            handle = pool.zs_pool.malloc(outcome.length)
        except OutOfMemoryError:
            self.counters.reject_alloc_fail += 1
            return False
        old = self.tree.get(offset)
        entry = ZswapEntry(offset, outcome.length, pool, handle, mc)
        self.tree[offset] = entry
        if old is not None:
            self._entry_free(old)
        pool.nr_entries += 1
        mc.charge(entry.length)
        self.counters.stored_pages += 1
        if entry.length == self.page_size:
            self.counters.stored_incompressible_pages += 1
        self._lru(mc).add(entry)
        return True

    # -- free, load, invalidate -------------------------------------------------------
    def _entry_free(self, entry: ZswapEntry) -> None:
        """Mirrors zswap_entry_free() (spec §8); the caller took it out of the tree."""
        self._lru(entry.memcg).delete(entry)
        entry.pool.zs_pool.free(entry.handle)
        entry.pool.nr_entries -= 1
        if entry.pool is not self.pools[0] and not entry.pool.nr_entries:
            self._drop_drained_pools()
        entry.memcg.uncharge(entry.length)
        if entry.length == self.page_size:
            self.counters.stored_incompressible_pages -= 1
        self.counters.stored_pages -= 1

    @serialized
    def load(self, offset: int, *, swapcache: bool = True) -> str:
        """Swap in ``offset``; returns where the page came from ("zswap", "zero", "disk", ...).

        Mirrors swap_read_folio() -> zswap_load() (spec §1, §7).  Through the swap
        cache (the normal case) the entry is freed; ``swapcache=False`` is the
        SWP_SYNCHRONOUS_IO fault that keeps it.  A disk read adds one to the
        memcg's ``nr_disk_swapins``.  The slot stays allocated until invalidated.
        """
        offset = self._check_offset(offset)
        if not isinstance(swapcache, bool):
            raise InvalidTypeError(f"swapcache must be True or False, found {swapcache!r}")
        slot = self.slots.get(offset)
        if slot is not None and slot.where == "zero":
            return "zero"
        entry = self.tree.get(offset) if self.ever_enabled else None
        if entry is not None:
            self.counters.zswpin += 1
            entry.memcg.count_event("zswpin")
            if swapcache:
                del self.tree[offset]
                self._entry_free(entry)
                # The page is now in memory (dirty); the slot still belongs to it.
                self.slots[offset] = SwapSlot("memory", entry.memcg)
            return "zswap"
        if slot is None:
            raise InputError(f"swap offset {offset} holds no page (never stored, or invalidated)")
        if slot.where == "disk":
            slot.memcg.nr_disk_swapins += 1
        return slot.where

    @serialized
    def invalidate(self, offset: int) -> None:
        """The swap slot is freed: mirrors zswap_invalidate() (spec §8); no-op if empty."""
        offset = self._check_offset(offset)
        self.slots.pop(offset, None)
        self.swapcache.discard(offset)
        entry = self.tree.pop(offset, None)
        if entry is not None:
            self._entry_free(entry)

    @serialized
    def swapcache_add(self, offset: int) -> None:
        """Mark ``offset`` as having a folio in the swap cache: writeback then gets -EEXIST."""
        offset = self._check_offset(offset)
        self.swapcache.add(offset)

    @serialized
    def swapcache_del(self, offset: int) -> None:
        self.swapcache.discard(self._check_offset(offset))

    # -- writeback ------------------------------------------------------------------
    def _writeback_entry(self, entry: ZswapEntry) -> int:
        """Mirrors zswap_writeback_entry(): 0, or -EEXIST when a swap-cache folio exists."""
        if entry.offset in self.swapcache:
            return -errno.EEXIST
        del self.tree[entry.offset]
        self.counters.zswpwb += 1
        entry.memcg.count_event("zswpwb")
        self._entry_free(entry)
        self.slots[entry.offset] = SwapSlot("disk", entry.memcg)
        return 0

    def _walk(self, memcg: MemCgroup, nr_to_walk: int, stop_on_eexist: bool) -> tuple[int, int]:
        """list_lru_walk_one() with shrink_memcg_cb(): (entries written back, visited).

        Each visit takes the head: a referenced entry loses the bit and rotates to
        the tail (second chance); otherwise it rotates to the tail and is written
        back; a failure counts ``reject_reclaim_fail`` and, for the dynamic
        shrinker, -EEXIST stops the walk.
        """
        lru = self._lru(memcg)
        shrunk = visited = 0
        while visited < nr_to_walk:
            entry = lru.head()
            if entry is None:
                break
            visited += 1
            lru.move_tail(entry)
            if entry.referenced:
                entry.referenced = False
                continue
            ret = self._writeback_entry(entry)
            if ret == 0:
                self.counters.written_back_pages += 1
                shrunk += 1
            else:
                self.counters.reject_reclaim_fail += 1
                if ret == -errno.EEXIST and stop_on_eexist:
                    break
        return shrunk, visited

    @serialized
    def shrink_memcg(self, memcg: MemCgroup) -> int:
        """Mirrors shrink_memcg(): 0 if something was written back, else -ENOENT/-EAGAIN."""
        memcg = self.memcg(memcg)
        if not self.writeback_enabled(memcg):
            return -errno.ENOENT
        shrunk, scanned = self._walk(memcg, SHRINK_MEMCG_NR_TO_WALK, stop_on_eexist=False)
        if not scanned:
            return -errno.ENOENT
        return 0 if shrunk else -errno.EAGAIN

    def _queue_shrink_work(self) -> None:
        if self.worker == "sync":
            self.run_shrink_worker()
        else:
            self.shrink_work_pending = True

    @serialized
    def run_shrink_worker(self) -> None:
        """Mirrors shrink_worker(): round-robin over memcgs until total <= accept threshold."""
        self.shrink_work_pending = False
        thr = self.accept_thr_pages()
        failures = attempts = 0
        while True:
            memcg = self.memcgs.next_after(self.next_shrink)
            self.next_shrink = memcg
            if memcg is None:
                if not attempts:
                    failures += 1
                    if failures == MAX_RECLAIM_RETRIES:
                        break
                attempts = 0
            else:
                ret = self.shrink_memcg(memcg)
                if ret != -errno.ENOENT:
                    attempts += 1
                    if ret:
                        failures += 1
                        if failures == MAX_RECLAIM_RETRIES:
                            break
            if self.total_pages() <= thr:
                break

    @serialized
    def shrinker_count(self, memcg: str | MemCgroup | None = None) -> int:
        """Mirrors zswap_shrinker_count() for one memcg (spec §9); consumes disk swap-ins."""
        mc = self.memcg(memcg)
        if not self.params.shrinker_enabled or not self.writeback_enabled(mc):
            return 0
        nr_backing, nr_stored = mc.zswap_b // self.page_size, mc.zswapped
        if not nr_stored:
            return 0
        nr_freeable = len(self._lru(mc))
        if not nr_freeable:
            return 0
        consumed = min(nr_freeable, mc.nr_disk_swapins)
        mc.nr_disk_swapins -= consumed
        nr_freeable -= consumed
        if not nr_freeable:
            return 0
        return nr_freeable * nr_backing // nr_stored  # mult_frac

    @serialized
    def shrinker_scan(self, memcg: str | MemCgroup | None, nr_to_scan: int) -> int:
        """Mirrors zswap_shrinker_scan(): walk ``nr_to_scan`` entries; returns written back."""
        mc = self.memcg(memcg)
        nr_to_scan = as_int(nr_to_scan, "nr_to_scan")
        if nr_to_scan < 0:
            raise InputError(f"nr_to_scan must be >= 0, found {nr_to_scan}")
        if not self.params.shrinker_enabled or not self.writeback_enabled(mc):
            return 0
        shrunk, _ = self._walk(mc, nr_to_scan, stop_on_eexist=True)
        return shrunk

    # -- views ------------------------------------------------------------------------
    @serialized
    def debugfs(self) -> dict[str, int]:
        """``/sys/kernel/debug/zswap/*`` now."""
        return self.counters.debugfs(self.total_pages(), self.page_size)

    @serialized
    def lru_order(self, memcg: str | MemCgroup | None = None) -> list[int]:
        """Offsets on a memcg's LRU, head (next to be visited) first."""
        mc = self.memcg(memcg)
        return [e.offset for e in self._lru(mc)]

    @serialized
    def summary(self) -> dict[str, Any]:
        return {
            "debugfs": self.debugfs(),
            "vmstat": self.counters.vmstat(),
            "params": self.params.as_sysfs(),
            "reached_full": self.reached_full,
        }
