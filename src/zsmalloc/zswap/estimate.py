"""The zswap view of a set of pages: what zswap would hold if they were all swapped out.

This is what ``zsmalloc estimate --zswap`` shows (the estimate command calls
:func:`estimate_zswap`, or :func:`estimate_zswap_pools` for every pool a kernel
offers).  It answers, for pages swapped out once each, in order, with no loads (a
store-only run), on the kernel of ``profile`` and its rules (:mod:`.rules`):

* how many reach zswap: from 6.12 all-zero pages go to the swap zero map instead; in
  6.1 and 6.6 every same-filled page is kept as its word (``same_filled_pages``,
  counted in ``stored_pages``, no pool memory);
* how many are stored as-is (``stored_incompressible_pages``, 6.18), or rejected:
  output that does not fit a page (before 6.18; 6.18 only when the memcg forbids
  writeback), an object the allocator refuses (zbud above 3968 bytes, z3fold and 6.1's
  8-byte ``zswap_header`` above a page: ``reject_compress_poor``);
* ``pool_total_size``: for zsmalloc, with only allocations each class fills a zspage
  before it opens another, so a class holding ``n`` objects takes
  ``ceil(n / objs_per_zspage) * pages_per_zspage`` pages (6.1's rules as well as 6.3's);
  for zbud and z3fold the pairing depends on the order, so the allocator itself
  (:mod:`zsmalloc.zpool`) takes the objects in order.  6.6 spreads entries over 32
  zsmalloc pools by a hash of their slab address: the estimate deals them out in turn
  and says it is approximate;
* when RAM is given and the pool would reach ``max_pool_percent``, the run is
  replayed through the full model (:class:`~zsmalloc.zswap.zswap.Zswap`, the shrink
  worker run right after each rejected store) to say how many pages the limit writes
  back to the swap device and how many stores it turns away.

Checked against guests of every Debian kernel (tests/zswap/test_estimate_kernels.py)
and, for 6.18, the live kernel (``zsmalloc verify --zswap``).
"""

from __future__ import annotations

import errno
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from zsmalloc.errors import InputError
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile
from zsmalloc.zpool.z3fold import Z3foldPool, z3fold_alloc_many
from zsmalloc.zpool.zbud import ZbudPool, zbud_alloc_many, zbud_geometry
from zsmalloc.zs.size_class import class_table
from zsmalloc.zswap.compression import page_clens
from zsmalloc.zswap.params import ZswapParams, check_compressor
from zsmalloc.zswap.rules import ZswapRules, zswap_rules


@dataclass(frozen=True)
class ZswapEstimate:
    compressor: str
    pages: int  # pages considered
    zero_pages: int  # swap zero map, never zswap (6.12 on)
    stored_pages: int  # debugfs stored_pages (6.1, 6.6: same-filled ones included)
    stored_incompressible_pages: int
    rejected_pages: int  # refused: to the swap device (or kept in memory)
    compressed_bytes: int  # sum of entry lengths (what memory.zswap.current charges)
    pool_total_size: int  # bytes, zswap_total_pages() * PAGE_SIZE
    page_size: int  # PAGE_SIZE of the kernel
    kernel: str = DEFAULT_PROFILE.version  # the profile row
    zpool: str = "zsmalloc"
    same_filled_pages: int = 0  # 6.1, 6.6: stored as one word
    reject_compress_fail: int = 0
    reject_compress_poor: int = 0
    approximate: bool = False  # 6.6's 32 zpools: see the module docstring
    # With a pool limit (totalram given) -- None when no RAM size was given:
    max_pool_pages: int | None = None
    written_back_pages: int | None = None
    pool_limit_hit: int | None = None
    final_pool_total_size: int | None = None
    final_stored_pages: int | None = None

    @property
    def saved_bytes(self) -> int:
        """RAM freed by zswap for the stored pages: their pages minus the pool."""
        return self.stored_pages * self.page_size - self.pool_total_size

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "saved_bytes": self.saved_bytes}


def pool_pages_for_lengths(lengths: np.ndarray, profile: KernelProfile = DEFAULT_PROFILE) -> int:
    """zsmalloc pages after ``zs_malloc(length)`` of each, with no frees."""
    t = class_table(profile)
    hist = np.bincount(np.asarray(lengths, np.int64), minlength=t.page_size + 1)
    return int((t.packed_zspages(t.objects_per_class(hist)) * t.pages_per_zspage).sum())


def allocate_in_order(sizes: np.ndarray, zpool: str, profile: KernelProfile) -> tuple[int, int]:
    """(pages, objects refused with -ENOSPC) after allocating ``sizes`` in order, no frees."""
    out = np.empty(len(sizes), np.int64)
    arr = np.ascontiguousarray(sizes, np.int64)
    pool: ZbudPool | Z3foldPool
    if zpool == "zbud":
        pool = ZbudPool(profile.page_size, max_pages=len(sizes) + 1)
        zbud_alloc_many(pool.state, arr, out)
    elif zpool == "z3fold":
        pool = Z3foldPool(profile.page_size, max_pages=len(sizes) + 1)
        z3fold_alloc_many(pool.state, arr, out)
    else:
        raise InputError(f"allocate_in_order: no order-dependent allocator {zpool!r}")
    return pool.total_pages(), int((out == -errno.ENOSPC).sum())


def _outcomes(
    c: np.ndarray, rules: ZswapRules, compressor: str, writeback: bool, page: int
) -> tuple[np.ndarray, dict[str, int]]:
    """Lengths zswap stores for non-zero ``c`` (in order) and the pages each rule took.

    Mirrors :func:`zsmalloc.zswap.compression.zswap_compress_outcome`, vectorised.
    """
    small = c < page
    exact = c == page
    over = c > page
    counts = {"incompressible": 0, "fail": 0, "poor": 0, "uncounted": 0}
    if rules.store_incompressible:  # 6.18: what does not compress is stored as-is
        if writeback:
            counts["incompressible"] = int((exact | over).sum())
            return np.where(small, c, page), counts
        keep = small
        if compressor in rules.overflow_enospc:
            counts["poor"] = int(over.sum())
            counts["fail"] = int(exact.sum())
        else:
            counts["fail"] = int((exact | over).sum())
        return c[keep], counts
    key = "uncounted"
    if rules.compress_fail_counted:
        key = "poor" if compressor in rules.overflow_enospc else "fail"
    counts[key] = int(over.sum())
    return c[~over], counts


def estimate_zswap(
    pages: object = None,
    *,
    clens: object = None,
    compressor: str = "lzo",
    writeback: bool = True,
    totalram_pages: int | None = None,
    max_pool_percent: int = 20,
    accept_threshold_percent: int = 90,
    pool_factory: Any = None,
    profile: KernelProfile = DEFAULT_PROFILE,
    zpool: str | None = None,
) -> ZswapEstimate:
    """The zswap view of ``pages`` (whole pages) or of their ``clens``, on ``profile``.

    ``clens`` are compressed lengths with unlimited room, in swap-out order; 0 marks a
    page zswap does not compress (all-zero; in 6.1 and 6.6 any same-filled page), as
    :func:`zsmalloc.zswap.compression.page_clens` gives them.  ``zpool`` is the
    allocator (default: the kernel's CONFIG_ZSWAP_ZPOOL_DEFAULT; zsmalloc from 6.18).
    ``writeback=False`` is a memcg with ``memory.zswap.writeback = 0`` (6.8 on).
    ``totalram_pages`` turns on the pool-limit part (``max_pool_percent`` and
    ``accept_threshold_percent``).
    """
    check_compressor(compressor)
    rules = zswap_rules(profile)
    if zpool is None:
        zpool = rules.default_zpool if rules.zpool else "zsmalloc"
    elif rules.zpool:
        rules.check_zpool(zpool)
    elif zpool != "zsmalloc":
        rules.check_zpool(zpool)  # raises: no zpool layer
    if (pages is None) == (clens is None):
        raise InputError("give exactly one of pages or clens=")
    if clens is None:
        clens = page_clens(pages, compressor, same_filled=rules.same_filled)
    c = np.asarray(clens, dtype=np.int64)
    if c.ndim != 1 or (c < 0).any():
        raise InputError("clens must be a flat sequence of lengths >= 0")
    if rules.writeback != "memcg-lru":
        writeback = True  # memory.zswap.writeback came with 6.8
    page = profile.page_size
    zero = c == 0
    if profile.swap_zero_map:
        zero_pages, same_filled = int(zero.sum()), 0
    else:
        zero_pages, same_filled = 0, int(zero.sum())
    lengths, counts = _outcomes(c[~zero], rules, compressor, writeback, page)
    poor = counts["poor"]
    # 6.6 deals entries over its zpools by a hash of their slab address: here in turn.
    n = rules.nr_zpools
    shares = [lengths[i::n] for i in range(n)]
    if zpool == "zsmalloc":
        total = sum(pool_pages_for_lengths(share, profile) for share in shares)
        kept = lengths
    else:
        hlen = rules.zswap_header if rules.zpool_lru else 0  # 6.1's evictable pools
        total = 0
        for share in shares:
            pages_, refused = allocate_in_order(share + hlen, zpool, profile)
            total += pages_
            poor += refused
        largest = zbud_geometry(page)["max_size"] if zpool == "zbud" else page
        kept = lengths[lengths + hlen <= largest]
    stored = len(kept) + same_filled
    est = ZswapEstimate(
        compressor=compressor,
        pages=len(c),
        zero_pages=zero_pages,
        stored_pages=stored,
        stored_incompressible_pages=counts["incompressible"],
        rejected_pages=len(c) - zero_pages - stored,
        compressed_bytes=int(kept.sum()),
        pool_total_size=total * page,
        page_size=page,
        kernel=profile.version,
        zpool=zpool,
        same_filled_pages=same_filled,
        reject_compress_fail=counts["fail"],
        reject_compress_poor=poor,
        approximate=n > 1,
    )
    if totalram_pages is None:
        return est
    return _with_limit(
        est, c, writeback, totalram_pages, max_pool_percent, accept_threshold_percent,
        pool_factory, profile,
    )


def estimate_zswap_pools(
    pages: object = None,
    *,
    clens: object = None,
    compressor: str = "lzo",
    profile: KernelProfile = DEFAULT_PROFILE,
    zpools: tuple[str, ...] | None = None,
    **kw: Any,
) -> list[ZswapEstimate]:
    """:func:`estimate_zswap` for each pool of ``zpools`` (default: every allocator the
    kernel offers, Debian's build where it has the row), the lengths computed once."""
    rules = zswap_rules(profile)
    if clens is None:
        if pages is None:
            raise InputError("give exactly one of pages or clens=")
        clens = page_clens(pages, compressor, same_filled=rules.same_filled)
    names = zpools if zpools is not None else (rules.pools() if rules.zpool else ("zsmalloc",))
    return [
        estimate_zswap(clens=clens, compressor=compressor, profile=profile, zpool=z, **kw)
        for z in names
    ]


def _with_limit(
    est: ZswapEstimate,
    clens: np.ndarray,
    writeback: bool,
    totalram_pages: int,
    max_pool_percent: int,
    accept_threshold_percent: int,
    pool_factory: Any,
    profile: KernelProfile,
) -> ZswapEstimate:
    from zsmalloc.zswap.zswap import Zswap

    rules = zswap_rules(profile)
    params = ZswapParams(
        enabled=True,
        compressor=est.compressor,
        max_pool_percent=max_pool_percent,
        accept_threshold_percent=accept_threshold_percent,
        zpool=est.zpool if rules.zpool else None,
    )
    z = Zswap(totalram_pages, params, worker="sync", pool_factory=pool_factory, profile=profile)
    max_pages = z.max_pages()
    if est.pool_total_size // est.page_size < max_pages:  # never reaches the limit: nothing changes
        return replace(
            est,
            max_pool_pages=max_pages,
            written_back_pages=0,
            pool_limit_hit=0,
            final_pool_total_size=est.pool_total_size,
            final_stored_pages=est.stored_pages,
        )
    if not writeback:
        z.mkdir_memcg("nowb")
        z.memcg("nowb").set_file("memory.zswap.writeback", "0")
    memcg = None if writeback else "nowb"
    for off, c in enumerate(clens.tolist()):
        z.store(off, clen=c, memcg=memcg)
    d = z.debugfs()
    return replace(
        est,
        max_pool_pages=max_pages,
        written_back_pages=d["written_back_pages"],
        pool_limit_hit=d["pool_limit_hit"],
        final_pool_total_size=d["pool_total_size"],
        final_stored_pages=d["stored_pages"],
    )
