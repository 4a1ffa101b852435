"""A fresh zram device after one sequential write: zsmalloc's state from a size histogram.

``zsmalloc estimate`` answers one question: write these pages, in order, to
slots 0..n-1 of a newly configured zram device, then read ``mm_stat`` (and
``compact``, and read it again).  For that one workload the allocator's final
state does not depend on the order of the pages, only on how many objects of
each size it received, so it can be computed in closed form from a histogram of
compressed lengths.  Why that is exact (spec zram.md §2.2, zsmalloc.md §4-5):

* Nothing is ever freed: every slot is written once, so ``zs_free`` is never
  called and no zspage ever loses an object.
* ``zs_malloc`` fills a class's non-full zspage before it allocates a new one.
  Starting empty and never freeing, a class therefore holds only full zspages
  plus at most one partial one: ``zspages = ceil(objs / objs_per_zspage)`` and
  the partial one holds ``objs mod objs_per_zspage`` objects.
* ``zs_get_total_pages`` only grows, so ``mem_used_max`` (sampled after each
  ``zs_malloc``) ends equal to ``mem_used_total``.
* ``zs_compact`` moves objects from a sparse source zspage into a distinct
  destination zspage; both must be partial (fullness groups 1..10).  With at
  most one partial zspage per class there is never such a pair: compaction
  frees nothing and ``pages_compacted`` stays 0.  (``zs_can_compact`` agrees:
  the free slots of one partial zspage are fewer than objs_per_zspage.)
* Same-filled pages never reach zsmalloc; a page whose compressed length is at
  least ``huge_class_size`` is stored raw as a PAGE_SIZE object.

So every figure here is a sum over the real classes of the
:class:`~zsmalloc.zs.size_class.ClassTable`, which also makes "what if the
chain size were different" cheap: rebuild the table and sum again.  The full
allocator and zram models are the reference it is checked against
(tests/estimate/test_estimate_fill.py: the naive oracle, the numba Pool, the
zram replay); ``--compact`` and ``--verify`` run them on the user's own pages
(:mod:`~zsmalloc.estimate.pool_fill`, :mod:`~zsmalloc.estimate.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from zsmalloc.profile import VERSIONS, ZS_HANDLE_SIZE, KernelProfile
from zsmalloc.zram.stats import MmStat, build_mm_stat, new_stats
from zsmalloc.zs.size_class import (
    ClassTable,
    can_compact_pages_each,
    class_table,
    fullness_groups,
)

NR_FULLNESS_BANDS = 11  # the debugfs columns 10% .. 99%, 100% (groups 1..11)


def stored_size_histogram(len_hist: np.ndarray, page_size: int, huge_class_size: int) -> np.ndarray:
    """Counts of zram's stored sizes (index = size, 1..page_size) from compressed lengths.

    ``len_hist[L]`` counts non-same-filled pages that compress to L bytes (L may
    exceed the page size for incompressible data).  Mirrors the huge test of
    zram_write_page(): ``comp_len >= huge_class_size`` is stored as PAGE_SIZE.
    """
    out = np.zeros(page_size + 1, dtype=np.int64)
    normal = min(huge_class_size, len(len_hist))
    out[:normal] = len_hist[:normal]
    out[page_size] += int(len_hist[huge_class_size:].sum())
    return out


@dataclass(frozen=True)
class FillState:
    """zsmalloc and zram after the sequential fill, per real class and in total.

    Per-class arrays are indexed like ``index`` (the real classes, ascending).
    ``bands[k, g-1]`` counts class k's zspages in fullness group g (1..11).
    """

    table: ClassTable
    index: np.ndarray
    size: np.ndarray
    pages_per_zspage: np.ndarray
    objs_per_zspage: np.ndarray
    obj_used: np.ndarray
    obj_allocated: np.ndarray
    pages_used: np.ndarray
    stored_bytes: np.ndarray  # sum of the zs_malloc sizes (compr_data_size share)
    bands: np.ndarray
    pages_stored: int
    same_pages: int
    huge_pages: int

    # -- zram's mm_stat ----------------------------------------------------------
    @property
    def compr_data_size(self) -> int:
        return int(self.stored_bytes.sum())

    @property
    def total_pages(self) -> int:
        """zs_get_total_pages(): the pages of every zspage."""
        return int(self.pages_used.sum())

    @property
    def freeable(self) -> np.ndarray:
        """Mirrors zs_can_compact() per class: whole zspages' worth of free slots, in pages."""
        return can_compact_pages_each(
            self.obj_allocated, self.obj_used, self.objs_per_zspage, self.pages_per_zspage
        )

    def pages_compacted(self) -> int:
        """Pages ``zs_compact`` frees here: always 0 (see the module docstring)."""
        partial = self.bands[:, :10].sum(axis=1)
        # Compaction needs a partial source and a different partial destination.
        assert (partial <= 1).all() and (self.freeable == 0).all()
        return 0

    def zram_stats(self) -> np.ndarray:
        """zram's counters after the fill (a :data:`ZRAM_STATS_DTYPE` record)."""
        stats = new_stats()
        s = stats[0]
        s["pages_stored"] = self.pages_stored
        s["compr_data_size"] = self.compr_data_size
        s["same_pages"] = self.same_pages
        s["huge_pages"] = self.huge_pages
        s["huge_pages_since"] = self.huge_pages  # no overwrites
        s["max_used_pages"] = self.total_pages  # the total only grew
        return stats

    def mm_stat(self, *, compacted: bool = False) -> MmStat:
        """The nine mm_stat columns, before or after a ``compact`` (no mem_limit set)."""
        compacted_pages = self.pages_compacted() if compacted else 0
        return build_mm_stat(
            self.zram_stats(),
            limit_pages=0,
            total_pages=self.total_pages - compacted_pages,
            pages_compacted=compacted_pages,
            page_shift=self.table.profile.PAGE_SHIFT,
        )

    # -- where the memory goes ---------------------------------------------------
    def lost_bytes(self) -> dict[str, np.ndarray]:
        """Per class, the bytes of zspage memory not holding compressed data, by cause.

        ``header``: the 8-byte handle each non-huge object carries; ``rounding``:
        object size rounded up to the class size; ``tail``: the end of each zspage
        no object fits in; ``free_slots``: unused slots of the partial zspage.  They
        add up to ``pages_used * PAGE_SIZE - stored_bytes``.
        """
        ps = self.table.page_size
        huge = self.table.huge[self.index]
        header = np.where(huge, 0, self.obj_used * ZS_HANDLE_SIZE)
        rounding = self.obj_used * self.size - self.stored_bytes - header
        zspages = self.obj_allocated // np.maximum(self.objs_per_zspage, 1)
        tail = zspages * (self.pages_per_zspage * ps - self.objs_per_zspage * self.size)
        free_slots = (self.obj_allocated - self.obj_used) * self.size
        return {"header": header, "rounding": rounding, "tail": tail, "free_slots": free_slots}


def fill_state(len_hist: np.ndarray, same_pages: int, table: ClassTable) -> FillState:
    """The state after writing, in any order, pages with these compressed lengths.

    ``len_hist[L]`` counts the non-same-filled pages compressing to L bytes;
    ``same_pages`` counts same-filled ones.
    """
    ps = table.page_size
    sizes = stored_size_histogram(len_hist, ps, table.huge_class_size)
    cls = table.malloc_classes()
    nr = table.nr_size_classes
    obj_used_all = np.bincount(cls[1:], weights=sizes[1:], minlength=nr).astype(np.int64)
    bytes_all = np.bincount(cls[1:], weights=sizes[1:] * np.arange(1, ps + 1), minlength=nr).astype(
        np.int64
    )
    real = table.real_indices
    opz = table.objs_per_zspage[real].astype(np.int64)
    ppz = table.pages_per_zspage[real].astype(np.int64)
    used = obj_used_all[real]
    zspages = -(-used // opz)
    full, rest = used // opz, used % opz
    bands = np.zeros((len(real), NR_FULLNESS_BANDS), dtype=np.int64)
    bands[:, 10] = full
    group = fullness_groups(rest, opz)
    has_partial = rest > 0
    bands[np.flatnonzero(has_partial), group[has_partial] - 1] += 1
    return FillState(
        table=table,
        index=real,
        size=table.size[real].astype(np.int64),
        pages_per_zspage=ppz,
        objs_per_zspage=opz,
        obj_used=used,
        obj_allocated=zspages * opz,
        pages_used=zspages * ppz,
        stored_bytes=bytes_all[real],
        bands=bands,
        pages_stored=int(len_hist.sum()) + same_pages,
        same_pages=same_pages,
        huge_pages=int(sizes[ps]),
    )


def chain_size_totals(
    len_hist: np.ndarray, same_pages: int, page_size: int, chain_sizes: range | list[int]
) -> dict[int, int]:
    """mem_used_total (bytes) for each CONFIG_ZSMALLOC_CHAIN_SIZE, same pages, same kernel.

    The huge threshold moves with the chain size, so the stored sizes are
    recomputed from the compressed lengths for each.
    """
    out = {}
    for chain in chain_sizes:
        table = class_table(KernelProfile(page_size=page_size, chain_size=chain))
        out[chain] = fill_state(len_hist, same_pages, table).total_pages * page_size
    return out


def kernel_version_totals(
    len_hist: np.ndarray, same_pages: int, page_size: int, chain_size: int
) -> dict[str, int]:
    """mem_used_total (bytes) under each kernel's class table, same pages, same chain size.

    A fill depends only on the class table (module docstring; 6.1's allocator too
    fills its one non-full zspage before making another).  6.6, 6.12 and 6.18 build
    the same table (zsmalloc.md §10); 6.1 chains at most 4 pages chosen by whole-percent
    usage, so its classes and its huge threshold (3257) differ.
    """
    out = {}
    for v in VERSIONS:
        table = class_table(KernelProfile(v, page_size, chain_size))
        out[v] = fill_state(len_hist, same_pages, table).total_pages * page_size
    return out
