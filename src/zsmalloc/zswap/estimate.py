"""The zswap view of a set of pages: what zswap would hold if they were all swapped out.

This is what ``zsmalloc estimate --zswap`` shows (the estimate command calls
:func:`estimate_zswap`).  It answers, for pages swapped out once each, in order,
with no loads (a store-only run):

* how many reach zswap (all-zero pages go to the swap zero map instead);
* how many are stored as-is (``stored_incompressible_pages``), or rejected
  when the memcg forbids writeback (spec §5);
* ``pool_total_size``: with only allocations, zsmalloc fills each zspage
  before it opens another, so a class holding ``n`` objects takes
  ``ceil(n / objs_per_zspage) * pages_per_zspage`` pages; the total follows
  from the class counts alone (this is checked against the kernel live by
  ``zsmalloc verify --zswap``);
* when RAM is given and the pool would reach ``max_pool_percent``, the run is
  replayed through the full model (:class:`~zsmalloc.zswap.zswap.Zswap`, the
  shrink worker run right after each rejected store) to say how many pages the
  limit writes back to the swap device and how many stores it turns away.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from zsmalloc.errors import InputError
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile
from zsmalloc.zs.size_class import class_table
from zsmalloc.zswap.compression import page_clens
from zsmalloc.zswap.params import ZswapParams, check_compressor


@dataclass(frozen=True)
class ZswapEstimate:
    compressor: str
    pages: int  # pages considered
    zero_pages: int  # swap zero map, never zswap
    stored_pages: int
    stored_incompressible_pages: int
    rejected_pages: int  # writeback disabled: reject_compress_fail/poor
    compressed_bytes: int  # sum of entry lengths (what memory.zswap.current charges)
    pool_total_size: int  # bytes, zswap_total_pages() * PAGE_SIZE
    page_size: int  # PAGE_SIZE of the kernel
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
) -> ZswapEstimate:
    """The zswap view of ``pages`` (whole pages) or of their ``clens``, on ``profile``.

    ``clens`` are compressed lengths with unlimited room (0 = all-zero page), as
    :func:`zsmalloc.zswap.compression.page_clens` gives them.  ``writeback=False``
    is a memcg with ``memory.zswap.writeback = 0``.  ``totalram_pages`` turns on
    the pool-limit part (``max_pool_percent`` and ``accept_threshold_percent``).
    """
    check_compressor(compressor)
    if (pages is None) == (clens is None):
        raise InputError("give exactly one of pages or clens=")
    c = np.asarray(page_clens(pages, compressor) if clens is None else clens, dtype=np.int64)
    if c.ndim != 1 or (c < 0).any():
        raise InputError("clens must be a flat sequence of lengths >= 0")
    zero = c == 0
    page = profile.page_size
    small = (c > 0) & (c < page)
    big = c >= page
    lengths = np.concatenate([c[small], np.full(int(big.sum()) if writeback else 0, page)])
    est = ZswapEstimate(
        compressor=compressor,
        pages=len(c),
        zero_pages=int(zero.sum()),
        stored_pages=len(lengths),
        stored_incompressible_pages=int(big.sum()) if writeback else 0,
        rejected_pages=0 if writeback else int(big.sum()),
        compressed_bytes=int(lengths.sum()),
        pool_total_size=pool_pages_for_lengths(lengths, profile) * page,
        page_size=page,
    )
    if totalram_pages is None:
        return est
    return _with_limit(
        est,
        c,
        writeback,
        totalram_pages,
        max_pool_percent,
        accept_threshold_percent,
        pool_factory,
        profile,
    )


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
    from dataclasses import replace

    from zsmalloc.zswap.zswap import Zswap

    params = ZswapParams(
        enabled=True,
        compressor=est.compressor,
        max_pool_percent=max_pool_percent,
        accept_threshold_percent=accept_threshold_percent,
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
