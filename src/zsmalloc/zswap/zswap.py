"""zswap: the compressed swap cache in front of a swap device, on every kernel's pools.

Mirrors mm/zswap.c (6.18) as ../shared/spec/zswap.md describes it, with the
kernel's names: ``zswap_store`` / ``zswap_store_page``, ``zswap_load``,
``zswap_invalidate``, ``zswap_entry_free``, ``zswap_check_limits``,
``zswap_writeback_entry``, ``shrink_memcg_cb``, ``shrink_memcg``,
``shrink_worker``, ``zswap_shrinker_count`` / ``zswap_shrinker_scan``; and the
zswap of older kernels where :mod:`zsmalloc.zswap.rules` says they differ:

* 6.1 (``zswap_frontswap_store``): the pool is a zpool of the ``zpool`` parameter's
  allocator (:mod:`zsmalloc.zpool`: zbud, z3fold or zsmalloc); pages whose words are
  all equal are kept as that word (``same_filled_pages``); ``zswap_is_full`` /
  ``zswap_can_accept`` on the cached ``zswap_pool_total_size``; writeback is the
  allocator's: the shrink work asks the last pool's zpool to reclaim one page
  (``zpool_shrink``), which evicts its objects through ``zswap_writeback_entry``,
  finding each entry by the 8-byte ``struct zswap_header`` stored before the data;
  loads leave the entry in place (frontswap).
* 6.6: the same, with zswap's own LRU per pool (``zswap_reclaim_entry``), 32 zpools a
  pool and the ``exclusive_loads`` parameter.
* 6.12 to 6.17: 6.18's zswap on a zpool (zbud or zsmalloc), nothing stored as-is.

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
a list of pools, the first current, each with its compressor and its zpool(s)
(:class:`~zsmalloc.zpool.zpool.Zpool`: a zsmalloc :class:`~zsmalloc.Pool`, or zbud or
z3fold before 6.15); one LRU per memcg (6.12+) or per pool (6.6); the counters of
spec §10 and the kernel's debugfs list.

Where the model has to pick what concurrency decides in the kernel, it says so:

* The pool-limit shrink worker is queued by a rejected store while the pool is
  full.  ``worker="sync"`` (default) runs it to completion right after that
  store; ``worker="manual"`` leaves it pending until :meth:`run_shrink_worker`.
  (6.1's work item reclaims one allocator page each time it runs.)
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
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from zsmalloc.args import as_byte_array, as_int, as_str
from zsmalloc.errors import (
    InputError,
    InvalidSizeError,
    InvalidTypeError,
    SysfsError,
)
from zsmalloc.locking import serialized
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile
from zsmalloc.zpool.zpool import Zpool
from zsmalloc.zs.pool import Pool
from zsmalloc.zswap.compression import (
    is_same_filled,
    is_zero_filled,
    length_function,
    zswap_compress_outcome,
)
from zsmalloc.zswap.lru import ListLru
from zsmalloc.zswap.memcg import MemCgroup, MemCgroupTree
from zsmalloc.zswap.params import ZswapParams
from zsmalloc.zswap.rules import ZswapRules, zswap_rules
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
    """``struct zswap_pool``: its compressor and its zpool(s) (one; 32 in 6.6)."""

    name: str  # "zswap<n>"
    compressor: str
    zpool_type: str  # "zsmalloc" (the only one from 6.15), "zbud", "z3fold"
    zpools: list[Zpool]
    nr_entries: int = 0  # stands for the percpu_ref the entries hold
    lru: ListLru[ZswapEntry] | None = None  # 6.6: pool->lru (oldest first)
    next_zpool: int = 0  # 6.6: which zpool the next entry goes to (see zpool_for)

    @property
    def zs_pool(self) -> ZsPoolLike:
        """The allocator's pool behind the (first) zpool."""
        return self.zpools[0].pool

    def total_pages(self) -> int:
        return sum(z.total_pages() for z in self.zpools)

    def zpool_for(self) -> Zpool:
        """zswap_find_zpool() for a new entry.

        The kernel hashes the entry's slab address (``hash_ptr``) over the 32 zpools of
        6.6; the model cannot know it and takes them in turn.
        """
        z = self.zpools[self.next_zpool]
        self.next_zpool = (self.next_zpool + 1) % len(self.zpools)
        return z


@dataclass(eq=False, slots=True)
class ZswapEntry:
    """``struct zswap_entry``: the stored form of one swapped-out page."""

    offset: int
    length: int  # 1..4095 compressed, 4096 stored as-is; 0 same-filled (6.1, 6.6)
    pool: ZswapPool | None  # None for a same-filled entry
    handle: int
    memcg: MemCgroup
    referenced: bool = True
    zpool: Zpool | None = None  # the zpool holding the object


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
    """The zswap model of one kernel (``profile``; 6.18 by default).

    >>> z = Zswap(totalram_pages=1 << 18, params=ZswapParams(enabled=True))  # doctest: +SKIP
    >>> z.store(0, clen=1200); z.debugfs()["stored_pages"]                      # doctest: +SKIP
    1

    ``pool_factory`` makes the zsmalloc pools (tests inject one); zbud and z3fold pools
    come from :mod:`zsmalloc.zpool`.
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
        self.profile = profile
        self.rules: ZswapRules = zswap_rules(profile)
        # CONFIG_ZSWAP_ZPOOL_DEFAULT until the user writes the parameter.
        self.params = ZswapParams(zpool=self.rules.default_zpool if self.rules.zpool else None)
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
        self.cached_total_size = 0  # zswap_pool_total_size (6.1, 6.6), bytes
        self._clen_fns: dict[str, Callable[[bytes], int]] = {}
        self._nr_pools_created = 0
        given = params or ZswapParams()
        for name, value in given.as_sysfs(self.rules.params).items():
            if name != "enabled" and not (name == "zpool" and given.zpool is None):
                self.set_param(name, value)
        if params is not None and params.enabled:
            self.set_param("enabled", "Y")

    # -- parameters ----------------------------------------------------------------
    @serialized
    def set_param(self, name: str, value: str | int | bool) -> None:
        """Write ``/sys/module/zswap/parameters/NAME``; refused values change nothing."""
        r = self.rules
        new = self.params.with_value(
            as_str(name, "zswap parameter name"), value, r.params, r.version, r.allocators
        )
        if (
            name in ("compressor", "zpool")
            and self.ever_enabled
            and (new.compressor, new.zpool) != (self.current_compressor, self.current_zpool)
        ):
            self._switch_pool(new.zpool, new.compressor)
        if name == "enabled" and new.enabled and not self.ever_enabled:
            # zswap_setup(): the first pool is made with the parameters set by then.
            self._switch_pool(new.zpool, new.compressor)
            self.ever_enabled = True
        self.params = new

    @property
    def current_compressor(self) -> str:
        return self.pools[0].compressor if self.pools else self.params.compressor

    @property
    def current_zpool(self) -> str | None:
        """The current pool's allocator (None without a zpool layer: zsmalloc)."""
        if not self.rules.zpool:
            return None
        return self.pools[0].zpool_type if self.pools else self.params.zpool

    def _new_zpool(self, kind: str) -> Zpool:
        """zpool_create_pool() with zswap's ops (writeback through eviction in 6.1)."""
        lru = self.rules.zpool_lru
        if kind == "zsmalloc":
            zp = Zpool(kind, self.profile, pool=self.pool_factory())
        else:
            zp = Zpool(kind, self.profile, lru=lru)
        if lru:
            zp.set_evict(functools.partial(self._zswap_writeback_handle, zp))
        return zp

    def _switch_pool(self, zpool: str | None, compressor: str) -> None:
        """__zswap_param_set(): revive a draining pool of that kind, or create one."""
        kind = zpool or "zsmalloc"
        for p in self.pools:
            if p.compressor == compressor and p.zpool_type == kind:
                self.pools.remove(p)
                self.pools.insert(0, p)
                break
        else:
            zpools = [self._new_zpool(kind) for _ in range(self.rules.nr_zpools)]
            lru: ListLru[ZswapEntry] | None = (
                ListLru() if self.rules.writeback == "pool-lru" else None
            )
            pool = ZswapPool(
                f"zswap{self._nr_pools_created:x}", compressor, kind, zpools, lru=lru
            )
            self._nr_pools_created += 1
            self.pools.insert(0, pool)
        self._drop_drained_pools()

    def _drop_drained_pools(self) -> None:
        """A non-current pool goes when its last entry does (percpu_ref release)."""
        self.pools[1:] = [p for p in self.pools[1:] if p.nr_entries]

    # -- sizes ------------------------------------------------------------------------
    @serialized
    def total_pages(self) -> int:
        """Mirrors zswap_total_pages(): pages of every pool's allocator, draining ones too."""
        return sum(p.total_pages() for p in self.pools)

    def pool_total_size(self) -> int:
        """debugfs ``pool_total_size`` in bytes.

        6.12 on compute it when read; 6.1 and 6.6 read ``zswap_pool_total_size``, which
        zswap_update_total_size() refreshes after each store and each freed entry only,
        so a page an allocator frees later (zbud's reclaim) still counts until then.
        """
        if self.rules.limits == "check_limits":
            return self.total_pages() * self.page_size
        return self.cached_total_size

    def _update_total_size(self) -> None:
        """zswap_update_total_size() (6.1, 6.6)."""
        self.cached_total_size = self.total_pages() * self.page_size

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

    def _cached_pages(self) -> int:
        """DIV_ROUND_UP(zswap_pool_total_size, PAGE_SIZE) (6.1, 6.6)."""
        return -(-self.cached_total_size // self.page_size)

    @serialized
    def is_full(self) -> bool:
        """Mirrors zswap_is_full() (6.1, 6.6): strictly more pages than the limit."""
        return self.max_pages() < self._cached_pages()

    @serialized
    def can_accept(self) -> bool:
        """Mirrors zswap_can_accept() (6.1, 6.6): below accept_threshold_percent of the limit.

        The kernel computes ``totalram * accept / 100 * max / 100``, rounding twice.
        """
        p = self.params
        thr = self.totalram_pages * p.accept_threshold_percent // 100 * p.max_pool_percent // 100
        return thr > self._cached_pages()

    @serialized
    def writeback_enabled(self, memcg: MemCgroup) -> bool:
        """Mirrors mem_cgroup_zswap_writeback_enabled(): always true when zswap is off,
        and before memory.zswap.writeback existed (6.8)."""
        memcg = self.memcg(memcg)
        if self.rules.writeback != "memcg-lru":
            return True
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
        Exactly one of ``pages`` (PAGE_SIZE bytes each) and ``clens`` is given.  A
        ``clen`` is >= 1, or 0 for a page zswap never compresses: an all-zero page, and
        in 6.1 and 6.6 any same-filled page (then stored as its word).  All input is
        validated before any state changes.
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

        if zero and self.profile.swap_zero_map:
            # is_folio_zero_filled(): zero map, no I/O; zswap is not called at all.
            for k in range(n):
                self.slots[offset + k] = SwapSlot("zero", mc)
            return StoreResult(False, "zero")
        if self.rules.same_filled:
            if pages is not None:
                keep_word = self.params.same_filled_pages_enabled
                clens = [
                    0 if keep_word and is_same_filled(p) else self._clen(p, self.current_compressor)
                    for p in pages
                ]
            elif zero and not self.params.same_filled_pages_enabled:
                raise InputError(
                    "clen 0 with same_filled_pages_enabled=N: zswap would compress the "
                    "page; give its content or its compressed length"
                )
            ok = self._store_old(offset, clens, mc)  # type: ignore[arg-type]
        else:
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
        """Mirrors zswap_store() in mm/zswap.c (6.18; 6.12 on), for a folio of ``len(clens)``."""
        n = len(clens)
        if n > 1 and not self.rules.large_folios:
            return False  # "Large folios aren't supported" (6.12): before check_old
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

    def _compress_and_alloc(self, clen: int, pool: ZswapPool, mc: MemCgroup) -> ZswapEntry | None:
        """zswap_compress(): compress (by length), zpool_malloc; the reject counters."""
        outcome = zswap_compress_outcome(
            pool.compressor, clen, self.writeback_enabled(mc), self.page_size, self.rules
        )
        if outcome.length is None:
            if outcome.reject_counter is not None:
                self.counters.bump(outcome.reject_counter)
            return None
        zpool = pool.zpool_for()
        hlen = self.rules.zswap_header if zpool.evictable else 0
        handle = zpool.malloc(hlen + outcome.length)
        if handle == -errno.ENOSPC:
            self.counters.reject_compress_poor += 1
            return None
        if handle < 0:
            self.counters.reject_alloc_fail += 1
            return None
        return ZswapEntry(-1, outcome.length, pool, handle, mc, zpool=zpool)

    def _store_page(self, offset: int, clen: int, pool: ZswapPool, mc: MemCgroup) -> bool:
        """Mirrors zswap_store_page(): compress, zs_malloc, tree insert, charge, LRU add."""
        entry = self._compress_and_alloc(clen, pool, mc)
        if entry is None:
            return False
        entry.offset = offset
        old = self.tree.get(offset)
        self.tree[offset] = entry
        if old is not None:
            self._entry_free(old)
        pool.nr_entries += 1
        mc.charge(entry.length)
        self.counters.stored_pages += 1
        if entry.length == self.page_size and self.rules.store_incompressible:
            self.counters.stored_incompressible_pages += 1
        self._lru(mc).add(entry)
        return True

    def _store_old(self, offset: int, clens: Sequence[int], mc: MemCgroup) -> bool:
        """zswap_frontswap_store() (6.1) and zswap_store() of 6.6, per page.

        A large folio is refused whole (THPs were split before zswap saw them); its
        pages go to the swap device.
        """
        if len(clens) > 1:
            return False
        if self.rules.writeback == "zpool":
            # __frontswap_store(): an old copy at this offset is invalidated first,
            # whether or not the new one is stored (no counter).
            self._invalidate_entry(offset)
        if not self.params.enabled or not self.pools:
            return False
        if self.rules.writeback == "pool-lru" and offset in self.tree:
            self.counters.duplicate_entry += 1  # 6.6: removed before the store
            self._invalidate_entry(offset)
        if not mc.may_zswap():
            return False  # no shrinking for memory.zswap.max before 6.8
        if self.is_full():
            self.counters.pool_limit_hit += 1
            self.reached_full = True
            self._queue_shrink_work()
            return False
        if self.reached_full:
            if not self.can_accept():
                if self.rules.limits == "6.6":
                    self._queue_shrink_work()
                return False
            self.reached_full = False
        clen = clens[0]
        if clen == 0:
            entry = ZswapEntry(offset, 0, None, 0, mc)
            self.counters.same_filled_pages += 1
        else:
            if not self.params.non_same_filled_pages_enabled:
                return False
            pool = self.pools[0]
            made = self._compress_and_alloc(clen, pool, mc)
            if made is None:
                return False
            entry = made
            entry.offset = offset
            assert entry.zpool is not None
            if entry.zpool.evictable:  # struct zswap_header: the swap entry (type 0)
                entry.zpool.write(entry.handle, offset.to_bytes(8, "little"))
            pool.nr_entries += 1
        mc.charge(entry.length)
        mc.count_event("zswpout")
        self.tree[offset] = entry
        if entry.length and entry.pool is not None and entry.pool.lru is not None:
            entry.pool.lru.add(entry)
        self.counters.stored_pages += 1
        self._update_total_size()
        self.counters.zswpout += 1
        return True

    # -- free, load, invalidate -------------------------------------------------------
    def _entry_free(self, entry: ZswapEntry) -> None:
        """Mirrors zswap_entry_free() (spec §8); the caller took it out of the tree."""
        pool = entry.pool
        if pool is None:  # a same-filled entry (6.1, 6.6)
            self.counters.same_filled_pages -= 1
        else:
            if self.rules.writeback == "memcg-lru":
                self._lru(entry.memcg).delete(entry)
            elif pool.lru is not None:
                pool.lru.delete(entry)
            assert entry.zpool is not None
            entry.zpool.free(entry.handle)
            pool.nr_entries -= 1
            if pool is not self.pools[0] and not pool.nr_entries:
                self._drop_drained_pools()
        entry.memcg.uncharge(entry.length)
        if entry.length == self.page_size and self.rules.store_incompressible:
            self.counters.stored_incompressible_pages -= 1
        self.counters.stored_pages -= 1
        if self.rules.limits != "check_limits":
            self._update_total_size()

    def _invalidate_entry(self, offset: int) -> None:
        entry = self.tree.pop(offset, None)
        if entry is not None:
            self._entry_free(entry)

    def _exclusive_load(self, swapcache: bool) -> bool:
        """Does a load take the entry out of zswap (6.12 on: through the swap cache)?"""
        rule = self.rules.exclusive_loads
        if rule == "always":
            return swapcache
        return rule == "param" and self.params.exclusive_loads

    @serialized
    def load(self, offset: int, *, swapcache: bool = True) -> str:
        """Swap in ``offset``; returns where the page came from ("zswap", "zero", "disk", ...).

        Mirrors swap_read_folio() -> zswap_load() (spec §1, §7).  Through the swap
        cache (the normal case) the entry is freed; ``swapcache=False`` is the
        SWP_SYNCHRONOUS_IO fault that keeps it.  6.1 (frontswap) always keeps it, 6.6
        unless ``exclusive_loads``.  A disk read adds one to the memcg's
        ``nr_disk_swapins``.  The slot stays allocated until invalidated.
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
            if self._exclusive_load(swapcache):
                del self.tree[offset]
                self._entry_free(entry)
                # The page is now in memory (dirty); the slot still belongs to it.
                self.slots[offset] = SwapSlot("memory", entry.memcg)
            elif entry.pool is not None and entry.pool.lru is not None and entry.length:
                entry.pool.lru.move_tail(entry)  # 6.6: list_move to the LRU's head
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
        self._invalidate_entry(offset)

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
        if self.rules.shrinker:  # the ZSWPWB event exists since 6.8
            self.counters.zswpwb += 1
            entry.memcg.count_event("zswpwb")
        self._entry_free(entry)
        self.slots[entry.offset] = SwapSlot("disk", entry.memcg)
        return 0

    def _zswap_writeback_handle(self, zpool: Zpool, handle: int) -> int:
        """Mirrors 6.1's zswap_writeback_entry(zpool, handle), the allocator's evict op.

        The entry is found through the swap entry in the object's ``struct
        zswap_header``; one already invalidated is done (0).  Written back, it is
        counted in ``written_back_pages`` and freed (its object freed back into the
        page the allocator is reclaiming).
        """
        offset = int.from_bytes(zpool.read(handle, 8), "little")
        entry = self.tree.get(offset)
        if entry is None:
            return 0
        ret = self._writeback_entry(entry)
        if ret == 0:
            self.counters.written_back_pages += 1
        return ret

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
        """Run the pending shrink work: the kernel's shrink_worker() of this version."""
        self.shrink_work_pending = False
        if self.rules.writeback == "zpool":
            self._shrink_worker_61()
        elif self.rules.writeback == "pool-lru":
            self._shrink_worker_66()
        else:
            self._shrink_worker()

    def _shrink_worker_61(self) -> None:
        """6.1: the last pool's zpool reclaims one page (zpool_shrink(pool, 1))."""
        if not self.pools:
            return
        ret = 0
        for zp in self.pools[-1].zpools:
            ret, _ = zp.shrink(1)
        if ret:
            self.counters.reject_reclaim_fail += 1

    def _reclaim_entry_66(self, pool: ZswapPool) -> int:
        """Mirrors zswap_reclaim_entry() (6.6): write back the oldest entry of the pool."""
        assert pool.lru is not None
        entry = pool.lru.head()
        if entry is None:
            return -errno.EINVAL
        ret = self._writeback_entry(entry)
        if ret:
            pool.lru.move_tail(entry)  # back at the head of the kernel's list
            return -errno.EAGAIN
        self.counters.written_back_pages += 1
        return 0

    def _shrink_worker_66(self) -> None:
        """6.6: reclaim from the last pool's LRU until the pool can accept again."""
        if not self.pools:
            return
        pool = self.pools[-1]
        failures = 0
        while True:
            ret = self._reclaim_entry_66(pool)
            if ret:
                self.counters.reject_reclaim_fail += 1
                if ret != -errno.EAGAIN:
                    break
                failures += 1
                if failures == MAX_RECLAIM_RETRIES:
                    break
            if self.can_accept():
                break

    def _shrink_worker(self) -> None:
        """Mirrors shrink_worker(): round-robin over memcgs until total <= accept threshold."""
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
        """Mirrors zswap_shrinker_count() for one memcg (spec §9); consumes disk swap-ins.

        0 on kernels without the shrinker (before 6.8).
        """
        mc = self.memcg(memcg)
        if not self.rules.shrinker:
            return 0
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
        if not self.rules.shrinker:
            return 0
        if not self.params.shrinker_enabled or not self.writeback_enabled(mc):
            return 0
        shrunk, _ = self._walk(mc, nr_to_scan, stop_on_eexist=True)
        return shrunk

    # -- views ------------------------------------------------------------------------
    @serialized
    def debugfs(self) -> dict[str, int]:
        """``/sys/kernel/debug/zswap/*`` now, the kernel's files in its order."""
        return self.counters.debugfs(
            self.pool_total_size() // self.page_size, self.page_size, self.rules.debugfs
        )

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
            "params": self.params.as_sysfs(self.rules.params),
            "reached_full": self.reached_full,
        }
