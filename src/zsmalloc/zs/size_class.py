"""Size classes: which slot size, pages per zspage and objects per zspage serve a request.

Mirrors the class setup of ``zs_create_pool()`` and ``calculate_zspage_chain_size()``
in mm/zsmalloc.c (6.18), ``get_pages_per_zspage()`` of 6.1 for the old table, the
class-table variants a profile may name (a class delta, the RFC's waste-threshold chain
rule; checked against the RFC author's simulator, tests/data/simulator), and the
class arithmetic every user of the table needs: ``get_size_class_index()``,
``get_fullness_group()`` and ``zs_can_compact()``.  Each formula is written once, as a
one-value ``@hot_njit`` function the allocator calls; the vectorised forms that
``estimate`` uses apply that same function over arrays.

The story, as the kernel tells it:

* Requests are rounded up to one of ``ZS_SIZE_CLASSES`` slot sizes, ``ZS_MIN_ALLOC_SIZE``
  + i * ``ZS_SIZE_CLASS_DELTA`` (32 + 16 i on 4 KiB pages), capped at PAGE_SIZE.
* Each class packs its slots into a *zspage*: a chain of 1..``chain_size`` order-0 pages,
  chosen to waste the least tail (ties to the shorter chain), so objects may straddle
  two pages.  Powers of two always take one page.
* Neighbouring indices with the same (pages_per_zspage, objs_per_zspage) would behave
  identically, so the kernel *merges* them: the table is built from the largest index
  down and an index whose geometry equals the previously created (larger) class points
  at it.  A class is real iff ``index[i] == i``.
* The first class met on the way down that is neither one page nor one object fixes
  ``huge_class_size`` (its size minus ``ZS_HANDLE_SIZE - 1``): zram stores any page
  compressing to at least that many bytes raw.  Every larger index is one object per
  page and merges into the top class, the *huge* class.
* ``zs_malloc(size)`` always adds the 8-byte handle header before the lookup, even
  when the object lands in the huge class, which keeps no header.

Request size -> class, 6.18, 4 KiB pages, chain 8 (see ``zsmalloc classes``)::

    user size   +8    index   class size  pages  objs
        1..24   ..32      0          32      1    128
       25..40   ..48      1          48      3    256
    3577..3624  ..3632  223..225   3632      8      9    <- largest normal class
    3625..4096  ..4104  226..254   4096      1      1    <- huge: one page per object
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from zsmalloc._jit import cold_call, njit
from zsmalloc.errors import InvalidSizeError
from zsmalloc.mm.hotpath import hot_njit
from zsmalloc.profile import DEFAULT_PROFILE, ZS_HANDLE_SIZE, KernelProfile

# ---- fullness groups (enum fullness_group, 6.3+) ----------------------------------------
ZS_INUSE_RATIO_0 = 0  # empty: freed at once
ZS_INUSE_RATIO_10 = 1  # 0 % < used < 10 %; groups 2..9 are 10 % wide and unnamed
ZS_INUSE_RATIO_99 = 10
ZS_INUSE_RATIO_100 = 11  # full: never allocated from
NR_FULLNESS_GROUPS = 12

# ---- fullness groups of 6.1 (enum fullness_group before 6.3) ------------------------------
# Stored in the same per-class arrays: groups 0..3 of the twelve, the rest stay empty.
ZS_EMPTY = 0
ZS_ALMOST_EMPTY = 1  # 0 < inuse <= 3 * objs // fullness_threshold_frac
ZS_ALMOST_FULL = 2
ZS_FULL = 3
NR_ZS_FULLNESS = 4
FULLNESS_THRESHOLD_FRAC = 4  # fullness_threshold_frac (6.1)


# ---- class arithmetic: one formula each ---------------------------------------------------
@hot_njit
def size_class_index(size: int, min_alloc_size: int, delta: int, nr_classes: int) -> int:
    """Mirrors get_size_class_index(): the size_class[] index for a slot of ``size`` bytes."""
    idx = 0
    if size > min_alloc_size:
        idx = (size - min_alloc_size + delta - 1) // delta
    return min(idx, nr_classes - 1)


@hot_njit
def fullness_group(inuse: int, objs_per_zspage: int) -> int:
    """Mirrors get_fullness_group(): 0 empty, 11 full, else floor(100*inuse/objs)//10 + 1."""
    if inuse == 0:
        return ZS_INUSE_RATIO_0
    if inuse == objs_per_zspage:
        return ZS_INUSE_RATIO_100
    return (100 * inuse // objs_per_zspage) // 10 + 1


@hot_njit
def fullness_group_61(inuse: int, objs_per_zspage: int) -> int:
    """Mirrors get_fullness_group() (6.1): EMPTY, ALMOST_EMPTY up to 3/4 in use, ALMOST_FULL, FULL.

    ``3 * objs // 4`` is integer arithmetic, as in the kernel: with 4 objects 3 in use is
    still almost empty; with 5, 3 in use is (3 <= 3) almost empty too, 4 almost full.
    """
    if inuse == 0:
        return ZS_EMPTY
    if inuse == objs_per_zspage:
        return ZS_FULL
    if inuse <= 3 * objs_per_zspage // FULLNESS_THRESHOLD_FRAC:
        return ZS_ALMOST_EMPTY
    return ZS_ALMOST_FULL


@hot_njit
def can_compact_pages(obj_allocated: int, obj_used: int, objs_per_zspage: int, ppz: int) -> int:
    """Mirrors zs_can_compact(): whole zspages' worth of free slots, in pages."""
    if obj_allocated <= obj_used:
        return 0
    return (obj_allocated - obj_used) // objs_per_zspage * ppz


@njit(cold_python=True)
def fullness_groups(inuse: np.ndarray, objs_per_zspage: np.ndarray) -> np.ndarray:
    """:func:`fullness_group` elementwise."""
    out = np.empty(inuse.shape[0], np.int64)
    for i in range(inuse.shape[0]):
        out[i] = fullness_group(inuse[i], objs_per_zspage[i])
    return out


@njit(cold_python=True)
def can_compact_pages_each(
    obj_allocated: np.ndarray, obj_used: np.ndarray, objs_per_zspage: np.ndarray, ppz: np.ndarray
) -> np.ndarray:
    """:func:`can_compact_pages` elementwise (one value per class)."""
    out = np.empty(obj_allocated.shape[0], np.int64)
    for i in range(obj_allocated.shape[0]):
        out[i] = can_compact_pages(obj_allocated[i], obj_used[i], objs_per_zspage[i], ppz[i])
    return out


# ---- chain rules ----------------------------------------------------------------------------
def chain_size_for(size: int, page_size: int, max_chain: int) -> int:
    """Pages per zspage for slot ``size``, the least-waste rule (6.3+).

    Mirrors calculate_zspage_chain_size() in mm/zsmalloc.c (6.18): the chain length
    1..max_chain with the strictly smallest tail waste, ties to the shortest; powers of
    two take one page (they never waste).
    """
    if size & (size - 1) == 0:
        return 1
    best, min_waste = 1, None
    for i in range(1, max_chain + 1):
        waste = (i * page_size) % size
        if min_waste is None or waste < min_waste:
            min_waste, best = waste, i
    return best


def pages_per_zspage_61(size: int, page_size: int, max_chain: int = 4) -> int:
    """Pages per zspage, 6.1 rule: the best whole-percent usage, first maximum wins.

    Mirrors get_pages_per_zspage() in mm/zsmalloc.c (6.1).  Truncating usage to whole
    percent makes it differ from the minimum-waste rule (208 B: 2 pages, not 3).
    """
    best, max_usedpc = 1, 0
    for i in range(1, max_chain + 1):
        zspage_size = i * page_size
        usedpc = (zspage_size - zspage_size % size) * 100 // zspage_size
        if usedpc > max_usedpc:
            max_usedpc, best = usedpc, i
    return best


def chain_size_waste_threshold(size: int, page_size: int, max_chain: int) -> int:
    """Pages per zspage for slot ``size``, the waste-threshold rule of the RFC.

    The RFC "zsmalloc: size-classes chain-length tunings" (Sergey Senozhatsky, January
    2026, patch 2/2; the rule of his simulator, github.com/sergey-senozhatsky/
    simulate-zsmalloc) weighs tail waste against objects that span pages: a longer chain
    wastes less but splits more objects across pages, and each split object costs two
    kmaps and a copy on every read.  So a longer chain is taken only for a large saving:

    * the first chain length is taken, then each longer one only if it saves: anything,
      while the best so far wastes more than 10 % of its zspage; at least a quarter of
      the waste (``4 * waste < 3 * best``), once the best is below that;
    * a chain with no tail waste at all ends the search, and so does a best that wastes at
      most 1/64 (about 1.5 %) of its zspage;
    * powers of two take one page, as with least waste.

    The simulator starts its minimum at INT_MAX, which overflows in ``min * 10``; the
    first length is taken either way, as here.
    """
    if size & (size - 1) == 0:
        return 1
    best, min_waste = 1, -1  # -1: nothing taken yet
    for i in range(1, max_chain + 1):
        waste = (i * page_size) % size
        if waste == 0:
            return i
        if min_waste < 0:
            take = True
        elif min_waste * 10 > best * page_size:  # the best so far wastes > 10 %
            take = waste < min_waste
        else:  # good already: only a saving of more than a quarter counts
            take = waste * 4 < min_waste * 3
        if take:
            best, min_waste = i, waste
        if min_waste * 64 <= best * page_size:  # <= 1/64 of the zspage: good enough
            break
    return best


CHAIN_RULES = {
    "least-waste": chain_size_for,
    "usedpc": pages_per_zspage_61,
    "waste-threshold": chain_size_waste_threshold,
}


def objs_spanning(size: int, objs: int, page_size: int) -> int:
    """How many of the first ``objs`` slots of ``size`` bytes straddle a page boundary.

    Slot k covers ``[k * size, (k + 1) * size)`` of the zspage; it spans two pages when
    ``offset_in_page(k * size) + size > PAGE_SIZE``, the test zs_obj_read_begin() (6.18)
    and zs_map_object() make with ``class->size``.  A slot is never larger than a page,
    so it straddles at most one boundary, and boundary ``b * PAGE_SIZE`` lies inside a
    slot unless a slot starts exactly there or the boundary is past the last slot: the
    count is the boundaries strictly inside the first ``objs`` slots that are not a
    multiple of ``size``.  (The simulator walks the slots one by one; same count.)
    """
    end = objs * size
    return sum(1 for b in range(page_size, end, page_size) if b % size)


@dataclass(frozen=True)
class ClassTable:
    """The pool's ``size_class[]`` array, as parallel numpy arrays over every index.

    For a merged index ``i``, ``size[i]``, ``pages_per_zspage[i]`` and so on describe the
    real class it points to, and ``index[i]`` is that class's index (the kernel's
    ``pool->size_class[i]->index``).  Every constant comes from ``profile``.
    """

    profile: KernelProfile
    huge_class_size: int  # zs_huge_class_size(): requests of at least this size are huge
    size: np.ndarray = field(repr=False)
    index: np.ndarray = field(repr=False)
    pages_per_zspage: np.ndarray = field(repr=False)
    objs_per_zspage: np.ndarray = field(repr=False)
    huge: np.ndarray = field(repr=False)
    span: np.ndarray = field(repr=False)  # objects of a full zspage that straddle two pages

    # ---- the profile's constants, for readers of the table -----------------------------
    @property
    def version(self) -> str:
        """Kernel version the table was built for."""
        return self.profile.version

    @property
    def page_size(self) -> int:
        """PAGE_SIZE."""
        return self.profile.page_size

    @property
    def chain_size(self) -> int:
        """ZS_MAX_PAGES_PER_ZSPAGE (CONFIG_ZSMALLOC_CHAIN_SIZE; 4 on 6.1)."""
        return self.profile.ZS_MAX_PAGES_PER_ZSPAGE

    @property
    def min_alloc_size(self) -> int:
        """ZS_MIN_ALLOC_SIZE."""
        return self.profile.ZS_MIN_ALLOC_SIZE

    @property
    def size_class_delta(self) -> int:
        """ZS_SIZE_CLASS_DELTA."""
        return self.profile.ZS_SIZE_CLASS_DELTA

    @property
    def nr_size_classes(self) -> int:
        """ZS_SIZE_CLASSES: the number of indices (255 on 4 KiB pages)."""
        return len(self.size)

    @property
    def max_alloc_size(self) -> int:
        """ZS_MAX_ALLOC_SIZE = PAGE_SIZE."""
        return self.profile.ZS_MAX_ALLOC_SIZE

    @property
    def real_indices(self) -> np.ndarray:
        """Indices of the real (unmerged) classes, ascending."""
        return np.flatnonzero(self.index == np.arange(self.nr_size_classes))

    def merged_range(self, idx: int) -> tuple[int, int]:
        """The first and last index that point to real class ``idx``."""
        members = np.flatnonzero(self.index == idx)
        return int(members[0]), int(members[-1])

    def waste(self, idx: int) -> int:
        """Unused tail bytes of one zspage of class ``idx``."""
        return int(
            self.pages_per_zspage[idx] * self.page_size
            - self.objs_per_zspage[idx] * self.size[idx]
        )

    def waste_pct(self, idx: int) -> float:
        """:meth:`waste` as a percentage of the zspage (the simulator's ``Waste (%)``,
        computed in its order so that it rounds the same)."""
        return self.waste(idx) / (int(self.pages_per_zspage[idx]) * self.page_size) * 100.0

    @property
    def chain_rule(self) -> str:
        """The rule that chose pages per zspage (:data:`CHAIN_RULES`)."""
        return self.profile.zspage_chain_rule

    # ---- the simulator's summary lines (simulate-zsmalloc's print_summary) --------------
    def total_span(self) -> int:
        """Spanning slots of one full zspage, summed over every index (merged ones count
        their real class again): the simulator's "Total Span (All Logicals)"."""
        return int(self.span.astype(np.int64).sum())

    def avg_effective_waste_pct(self) -> float:
        """The simulator's "Avg Effective Waste (User Requests)", in percent.

        For slot sizes 32, 48, .., PAGE_SIZE (every 16 bytes; the handle is not added),
        the bytes a slot of that size loses in its class (rounding up to the class size
        plus its share of the zspage tail) over the memory one object takes, averaged.
        Computed in the simulator's order of floating-point operations, so the printed
        value is the same to the last digit.
        """
        total, count = 0.0, 0
        ps = self.page_size
        for req in range(self.min_alloc_size, ps + 1, 16):
            i = int(self.index[self.get_size_class_index(req)])
            size, objs = int(self.size[i]), int(self.objs_per_zspage[i])
            zspage = int(self.pages_per_zspage[i]) * ps
            internal = size - req
            tail_per_obj = (zspage % size) / objs
            per_obj = zspage / objs
            total += ((internal + tail_per_obj) / per_obj) * 100.0
            count += 1
        return total / count

    # ---- request size -> class ------------------------------------------------------------
    def get_size_class_index(self, size: int) -> int:
        """Mirrors get_size_class_index(): the index for a slot of ``size`` bytes (no header)."""
        return int(
            cold_call(
                size_class_index,
                size,
                self.min_alloc_size,
                self.size_class_delta,
                self.nr_size_classes,
            )
        )

    def lookup_class_index(self, size: int) -> int:
        """Mirrors zs_lookup_class_index(): the real class for ``size``, without the header."""
        return int(self.index[self.get_size_class_index(size)])

    def class_index_for_malloc(self, size: int) -> int:
        """The real class ``zs_malloc(size)`` uses: size + ZS_HANDLE_SIZE, then the lookup.

        Raises InvalidSizeError for 0 (the kernel's -EINVAL) and above PAGE_SIZE
        (-ENOSPC since 6.12, -EINVAL before).
        """
        check_malloc_size(size, self.profile)
        return self.lookup_class_index(size + ZS_HANDLE_SIZE)

    def malloc_classes(self) -> np.ndarray:
        """The real class ``zs_malloc(s)`` uses for every s = 0..PAGE_SIZE (0 -> class 0).

        Vectorised :meth:`class_index_for_malloc` for histograms of object sizes.
        """
        idx = _slot_indices(
            self.page_size, self.min_alloc_size, self.size_class_delta, self.nr_size_classes
        )
        return self.index[idx].astype(np.int64)

    def objects_per_class(self, size_hist: np.ndarray) -> np.ndarray:
        """Objects each class index receives from ``size_hist[s]`` calls of zs_malloc(s).

        ``size_hist`` is indexed by request size 0..PAGE_SIZE (index 0 is ignored);
        merged aliases get 0, their objects counting for the real class.
        """
        sizes = np.asarray(size_hist)[1 : self.page_size + 1]
        return np.bincount(
            self.malloc_classes()[1 : len(sizes) + 1], weights=sizes, minlength=self.nr_size_classes
        ).astype(np.int64)

    def packed_zspages(self, objs: np.ndarray) -> np.ndarray:
        """zspages per class index holding ``objs[i]`` objects packed as a fill leaves them.

        zs_malloc fills a class's non-full zspage before it allocates a new one, so with
        no frees a class holds ceil(objs / objs_per_zspage) zspages, all full but the last.
        """
        return -(-np.asarray(objs, np.int64) // self.objs_per_zspage.astype(np.int64))

    def user_size_range(self, idx: int) -> tuple[int, int]:
        """The ``zs_malloc`` sizes that land in real class ``idx`` (after the +8 header)."""
        first, last = self.merged_range(idx)
        lo_slot = 1 if first == 0 else self.min_alloc_size + (first - 1) * self.size_class_delta + 1
        hi_slot = self.min_alloc_size + last * self.size_class_delta
        lo = max(1, lo_slot - ZS_HANDLE_SIZE)
        hi = min(self.page_size, hi_slot - ZS_HANDLE_SIZE)
        if last == self.nr_size_classes - 1:
            hi = self.page_size
        return lo, hi


@lru_cache(maxsize=16)
def _slot_indices(page_size: int, min_alloc: int, delta: int, nr: int) -> np.ndarray:
    """get_size_class_index() of every slot size zs_malloc(0..page_size) asks for (the
    same for every chain size: a what-if over chains computes it once)."""
    slots = np.arange(page_size + 1, dtype=np.int64) + ZS_HANDLE_SIZE
    idx = _size_class_indices(slots, min_alloc, delta, nr)
    idx.flags.writeable = False
    return idx


@njit(cold_python=True)
def _size_class_indices(sizes: np.ndarray, min_alloc: int, delta: int, nr: int) -> np.ndarray:
    out = np.empty(sizes.shape[0], np.int64)
    for i in range(sizes.shape[0]):
        out[i] = size_class_index(sizes[i], min_alloc, delta, nr)
    return out


def check_malloc_size(size: int, profile: KernelProfile = DEFAULT_PROFILE) -> None:
    """Refuse what zs_malloc() refuses, with the kernel's errno."""
    if size <= 0:
        raise InvalidSizeError(
            f"zs_malloc size must be at least 1 byte, found {size}", errno=errno.EINVAL
        )
    if size > profile.ZS_MAX_ALLOC_SIZE:
        raise InvalidSizeError(
            f"zs_malloc size must be at most ZS_MAX_ALLOC_SIZE={profile.ZS_MAX_ALLOC_SIZE} "
            f"bytes, found {size}",
            errno=profile.oversize_errno,
        )


@lru_cache(maxsize=64)
def class_table(profile: KernelProfile = DEFAULT_PROFILE) -> ClassTable:
    """Build ``size_class[]`` as zs_create_pool() does for ``profile`` (cached; read-only)."""
    page_size = profile.page_size
    chain = profile.ZS_MAX_PAGES_PER_ZSPAGE
    pages_for = CHAIN_RULES[profile.zspage_chain_rule]
    min_alloc = profile.ZS_MIN_ALLOC_SIZE
    delta = profile.ZS_SIZE_CLASS_DELTA
    nr = profile.ZS_SIZE_CLASSES

    size = np.zeros(nr, np.int32)
    index = np.zeros(nr, np.int32)
    ppz = np.zeros(nr, np.int32)
    objs = np.zeros(nr, np.int32)
    huge_class_size = 0
    prev = -1  # the previously created (next larger) real class
    for i in range(nr - 1, -1, -1):
        s = min(min_alloc + i * delta, page_size)
        p = pages_for(s, page_size, chain)
        o = p * page_size // s
        # The huge watermark: the largest class that is neither one page nor one object.
        if p != 1 and o != 1 and not huge_class_size:
            huge_class_size = s - (ZS_HANDLE_SIZE - 1)
        if prev >= 0 and ppz[prev] == p and objs[prev] == o:
            size[i], index[i], ppz[i], objs[i] = size[prev], prev, p, o
            continue
        size[i], index[i], ppz[i], objs[i] = s, i, p, o
        prev = i
    huge = (ppz == 1) & (objs == 1)
    span = np.zeros(nr, np.int32)
    for real in np.flatnonzero(index == np.arange(nr)):
        span[index == real] = objs_spanning(int(size[real]), int(objs[real]), page_size)
    for a in (size, index, ppz, objs, huge, span):
        a.setflags(write=False)
    return ClassTable(
        profile=profile,
        huge_class_size=huge_class_size,
        size=size,
        index=index,
        pages_per_zspage=ppz,
        objs_per_zspage=objs,
        huge=huge,
        span=span,
    )
