"""Size classes: which slot size, pages per zspage and objects per zspage serve a request.

Mirrors the class setup of ``zs_create_pool()`` and ``calculate_zspage_chain_size()``
in mm/zsmalloc.c (6.18), and ``get_pages_per_zspage()`` of 6.1 for the old table.

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

from dataclasses import dataclass, field

import numpy as np

from zsmalloc.errors import InvalidSizeError, ZsmallocError

# ---- fixed constants (x86_64) -------------------------------------------------
ZS_ALIGN = 8
ZS_HANDLE_SIZE = 8  # sizeof(unsigned long): the handle stored at the head of each object
BITS_PER_LONG = 64
MAX_POSSIBLE_PHYSMEM_BITS = 52  # arch/x86/include/asm/pgtable_64_types.h
CLASS_BITS = 8
MIN_CHAIN_SIZE, MAX_CHAIN_SIZE = 1, 16  # Kconfig ZSMALLOC_CHAIN_SIZE allows 4..16; 1..3 work too
PAGE_SIZES = (4096, 16384, 65536)
VERSIONS = ("6.1", "6.6", "6.12", "6.18")


def obj_index_bits(page_size: int, version: str = "6.18") -> int:
    """Bits of an ``obj`` that hold the zspage-wide object index.

    64 - _PFN_BITS since 6.12; 6.1 and 6.6 also spent one bit on the tag (23 bits on 4 KiB).
    """
    pfn_bits = MAX_POSSIBLE_PHYSMEM_BITS - (page_size.bit_length() - 1)
    tag_bits = 1 if version in ("6.1", "6.6") else 0
    return BITS_PER_LONG - pfn_bits - tag_bits


def chain_size_for(size: int, page_size: int, max_chain: int) -> int:
    """Pages per zspage for slot ``size``.

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


@dataclass(frozen=True)
class ClassTable:
    """The pool's ``size_class[]`` array, as parallel numpy arrays over every index.

    For a merged index ``i``, ``size[i]``, ``pages_per_zspage[i]`` and so on describe the
    real class it points to, and ``index[i]`` is that class's index (the kernel's
    ``pool->size_class[i]->index``).
    """

    version: str
    page_size: int
    chain_size: int
    min_alloc_size: int  # ZS_MIN_ALLOC_SIZE
    size_class_delta: int  # ZS_SIZE_CLASS_DELTA
    huge_class_size: int  # zs_huge_class_size(): requests of at least this size are huge
    size: np.ndarray = field(repr=False)
    index: np.ndarray = field(repr=False)
    pages_per_zspage: np.ndarray = field(repr=False)
    objs_per_zspage: np.ndarray = field(repr=False)
    huge: np.ndarray = field(repr=False)

    @property
    def nr_size_classes(self) -> int:
        """ZS_SIZE_CLASSES: the number of indices (255 on 4 KiB pages)."""
        return len(self.size)

    @property
    def max_alloc_size(self) -> int:
        """ZS_MAX_ALLOC_SIZE = PAGE_SIZE."""
        return self.page_size

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

    def get_size_class_index(self, size: int) -> int:
        """Mirrors get_size_class_index(): the index for a slot of ``size`` bytes (no header)."""
        idx = 0
        if size > self.min_alloc_size:
            idx = -(-(size - self.min_alloc_size) // self.size_class_delta)
        return min(self.nr_size_classes - 1, idx)

    def lookup_class_index(self, size: int) -> int:
        """Mirrors zs_lookup_class_index(): the real class for ``size``, without the header."""
        return int(self.index[self.get_size_class_index(size)])

    def class_index_for_malloc(self, size: int) -> int:
        """The real class ``zs_malloc(size)`` uses: size + ZS_HANDLE_SIZE, then the lookup.

        Raises InvalidSizeError for 0 (the kernel's -EINVAL) and above PAGE_SIZE
        (-ENOSPC since 6.12, -EINVAL before).
        """
        check_malloc_size(size, self.page_size, self.version)
        return self.lookup_class_index(size + ZS_HANDLE_SIZE)

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


def check_malloc_size(size: int, page_size: int, version: str = "6.18") -> None:
    """Refuse what zs_malloc() refuses, with the kernel's errno."""
    import errno

    if size <= 0:
        raise InvalidSizeError(f"zs_malloc size must be at least 1 byte, found {size}")
    if size > page_size:
        raise InvalidSizeError(
            f"zs_malloc size must be at most ZS_MAX_ALLOC_SIZE={page_size} bytes, found {size}",
            errno=errno.EINVAL if version in ("6.1", "6.6") else errno.ENOSPC,
        )


def build_class_table(
    chain_size: int = 8, page_size: int = 4096, version: str = "6.18"
) -> ClassTable:
    """Build ``size_class[]`` as zs_create_pool() does.

    ``chain_size`` is CONFIG_ZSMALLOC_CHAIN_SIZE (6.1 ignores it: always 4 pages and
    the usedpc rule).  ``page_size`` is 4 KiB, 16 KiB or 64 KiB.
    """
    if version not in VERSIONS:
        raise ZsmallocError(f"unknown kernel version {version!r}; known: {', '.join(VERSIONS)}")
    if page_size not in PAGE_SIZES:
        raise InvalidSizeError(
            f"page size must be one of {', '.join(map(str, PAGE_SIZES))}, found {page_size}"
        )
    if version == "6.1":
        chain_size = 4
    if not MIN_CHAIN_SIZE <= chain_size <= MAX_CHAIN_SIZE:
        raise InvalidSizeError(
            f"chain size must be {MIN_CHAIN_SIZE}..{MAX_CHAIN_SIZE} pages, found {chain_size}"
        )

    # ZS_MIN_ALLOC_SIZE: an obj must be able to name every object of the largest zspage.
    min_alloc = max(32, (chain_size * page_size) >> obj_index_bits(page_size, version))
    delta = page_size >> CLASS_BITS
    nr = -(-(page_size - min_alloc) // delta) + 1

    size = np.zeros(nr, np.int32)
    index = np.zeros(nr, np.int32)
    ppz = np.zeros(nr, np.int32)
    objs = np.zeros(nr, np.int32)
    huge_class_size = 0
    prev = -1  # the previously created (next larger) real class
    for i in range(nr - 1, -1, -1):
        s = min(min_alloc + i * delta, page_size)
        if version == "6.1":
            p = pages_per_zspage_61(s, page_size)
        else:
            p = chain_size_for(s, page_size, chain_size)
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
    for a in (size, index, ppz, objs, huge):
        a.setflags(write=False)
    return ClassTable(
        version=version,
        page_size=page_size,
        chain_size=chain_size,
        min_alloc_size=min_alloc,
        size_class_delta=delta,
        huge_class_size=huge_class_size,
        size=size,
        index=index,
        pages_per_zspage=ppz,
        objs_per_zspage=objs,
        huge=huge,
    )
