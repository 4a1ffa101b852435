"""Kernel profiles: every constant and version rule, in one object per kernel.

Mirrors the constants block at the top of mm/zsmalloc.c and the version table of
the spec (zsmalloc.md §1 and §10).  A :class:`KernelProfile` names a kernel version
and its configuration (``PAGE_SIZE``, ``CONFIG_ZSMALLOC_CHAIN_SIZE``) and derives
every ``ZS_*`` constant and behaviour flag from a few base values, as obmalloc derives
its tunables: nothing else in the package tests ``version >= ...`` or defines
PAGE_SIZE, it asks the profile.  Adding a kernel, a page size or a class-table
variant means adding a row here, not editing the allocator.

======================  ==========================================================
base values             ``version``, ``page_size``, ``chain_size``; x86_64's
                        MAX_POSSIBLE_PHYSMEM_BITS (52) and BITS_PER_LONG (64)
derived (zsmalloc)      PAGE_SHIFT, OBJ_INDEX_BITS, ZS_MAX_PAGES_PER_ZSPAGE,
                        ZS_MIN_ALLOC_SIZE, ZS_MAX_ALLOC_SIZE, ZS_SIZE_CLASS_DELTA,
                        ZS_SIZE_CLASSES, the chain rule, errnos
derived (zram)          ZRAM_FLAG_SHIFT (PAGE_SHIFT + 1), SECTORS_PER_PAGE
version rules           fullness scheme, compaction, obj encoding (tag shift, 7.3's
                        class bits), isolated-page count, page_type use, huge handle
                        field, object API; zram: crypto API or backends,
                        algorithm_params, max_comp_streams, io_stat/debug_stat
                        forms, writeback batching
swap layer              the swap zero map; zero-filled pages of a split THP
======================  ==========================================================

Rows (:data:`VERSIONS`) are compared by (major, minor) (:attr:`KernelProfile.release`);
a rule names the version where it changed, and docs/kernels.md says which kernel showed
it.  :func:`kernel_version` maps any release to its row, :func:`profile_for_release`
builds the profile of a running kernel from its ``uname -r``.

Invariants checked whenever a profile is made (:func:`check_profile`; the ones the
kernel asserts with BUILD_BUG_ON or relies on silently):

1. OBJ_INDEX_BITS + the class bits (7.3) + _PFN_BITS + the tag shift fill one unsigned
   long exactly;
2. an obj can name every object of the longest zspage
   (ZS_MAX_PAGES_PER_ZSPAGE * PAGE_SIZE / ZS_MIN_ALLOC_SIZE <= 2^OBJ_INDEX_BITS);
3. ZS_MIN_ALLOC_SIZE and ZS_SIZE_CLASS_DELTA are multiples of ZS_ALIGN, so every
   class size is;
4. the class index fits the zspage's ``class`` bitfield (CLASS_BITS + 1 bits);
5. first_obj_offset fits the 24 low bits of page_type (PAGE_SIZE < 16 MiB);
6. the zram object size fits below ZRAM_FLAG_SHIFT.

The allocator implements both sets of allocation rules a row can name
(``fullness_scheme``, ``compaction``): 6.1's four fullness lists with the
insertion-second rule and its older compaction, and the 6.3+ rules (12 ratio groups,
head insertion, the §5.3 compaction of 6.5) that 6.6 and everything later share.  The
pool state's type carries the choice (:mod:`zsmalloc.zs.state`).  The class table is
built from a profile by :func:`zsmalloc.zs.size_class.class_table`.
"""

from __future__ import annotations

import errno
import re
from dataclasses import dataclass
from typing import Final

import numpy as np

from zsmalloc.errors import (
    InvalidSizeError,
    InvalidTypeError,
    UnknownKernelError,
    UnknownVariantError,
    ZsmallocError,
)

# ---- architecture (x86_64; arm64 with 4/16/64 KiB pages has the same values) -------------
BITS_PER_LONG: Final = 64
MAX_POSSIBLE_PHYSMEM_BITS: Final = 52  # arch/x86/include/asm/pgtable_64_types.h
SECTOR_SHIFT: Final = 9  # 512-byte block-layer sectors

# ---- zsmalloc constants that no configuration changes --------------------------------------
ZS_ALIGN: Final = 8  # every class size is a multiple of it
ZS_HANDLE_SIZE: Final = 8  # sizeof(unsigned long): the header of every non-huge object
OBJ_TAG_BITS: Final = 1  # bit 0 of an object's first word: OBJ_ALLOCATED_TAG
CLASS_BITS: Final = 8  # ZS_SIZE_CLASS_DELTA = PAGE_SIZE >> CLASS_BITS
MAX_CLASS_BITS: Final = 12  # the widest class field the model's zspages have (delta 8, 64 KiB)
FIRST_OBJ_OFFSET_BITS: Final = 24  # low bits of page_type that hold first_obj_offset

# ---- what may vary ----------------------------------------------------------------------
VERSIONS: Final = ("6.1", "6.6", "6.12", "6.16", "6.17", "6.18", "7.2", "7.3")
"""One row per kernel a distribution ships: Debian 12 and Android 14: 6.1; Android 15: 6.6;
Debian 13 and Android 16: 6.12; trixie-backports: 6.16, 6.17, 6.18, 7.3; the reference host:
6.18; Debian sid: 7.2; experimental: 7.3-rc.  6.16 and 6.17 have rows of their own because
their zram differs from 6.12's (``max_comp_streams`` and ``writestall`` gone in 6.15)."""
DEFAULT_VERSION: Final = "6.18"  # the reference kernel the model is checked against
PAGE_SIZES: Final = (4096, 16384, 65536)
MIN_CHAIN_SIZE, MAX_CHAIN_SIZE = 4, 16  # mm/Kconfig ZSMALLOC_CHAIN_SIZE: range 4 16
MIN_VARIANT_CHAIN_SIZE: Final = 1  # what-if tables only: 1..3 build and work, Kconfig refuses
DEFAULT_CHAIN_SIZE: Final = 8  # Kconfig default of CONFIG_ZSMALLOC_CHAIN_SIZE
CHAIN_SIZE_61: Final = 4  # 6.1: ZS_MAX_PAGES_PER_ZSPAGE was fixed (2^2)
CHAIN_RULES: Final = ("usedpc", "least-waste", "waste-threshold")
"""How pages per zspage are chosen (zsmalloc.zs.size_class): 6.1's whole-percent usage,
the least tail waste (6.3 on), and the RFC "zsmalloc: size-classes chain-length tunings"
(January 2026): a longer chain only for a large saving."""
MIN_CLASS_DELTA: Final = ZS_ALIGN  # the finest step: every class size stays 8-aligned


@dataclass(frozen=True)
class KernelProfile:
    """One kernel version + configuration, with its derived constants and rules.

    Construct it directly (checked: unknown version, page size or chain size raise
    :class:`~zsmalloc.errors.ZsmallocError`) or with :func:`profile_for` when a pool is
    to be built on it.  Profiles are values: equal arguments give equal profiles.
    """

    version: str = DEFAULT_VERSION
    page_size: int = 4096
    chain_size: int = DEFAULT_CHAIN_SIZE  # CONFIG_ZSMALLOC_CHAIN_SIZE (6.1 ignores it)
    # A class-table variant (what-if): None is the kernel's own value, and a value equal
    # to it is stored as None, so that equal tables give equal profiles and
    # ``dataclasses.replace`` of the page size or version keeps following the kernel.
    class_delta: int | None = None  # ZS_SIZE_CLASS_DELTA (kernel: PAGE_SIZE >> CLASS_BITS)
    chain_rule: str | None = None  # one of CHAIN_RULES (kernel: usedpc on 6.1, else least-waste)
    # True lets a what-if table chain 1..3 pages (the RFC simulator's range starts at 1;
    # the allocator works with them) although Kconfig's range is 4..16.
    variant_chain: bool = False

    def __post_init__(self) -> None:
        for name in ("page_size", "chain_size"):  # 4096.0 == 4096, but is not a size
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise InvalidTypeError(f"{name} must be an integer, found {value!r}")
            object.__setattr__(self, name, int(value))
        if not isinstance(self.version, str) or self.version not in VERSIONS:
            raise UnknownKernelError(
                f"unknown kernel version {self.version!r}; known: {', '.join(VERSIONS)}"
            )
        if self.page_size not in PAGE_SIZES:
            raise InvalidSizeError(
                f"page size must be one of {', '.join(map(str, PAGE_SIZES))}, "
                f"found {self.page_size}"
            )
        if self.version == "6.1":  # no CONFIG_ZSMALLOC_CHAIN_SIZE: always 4 pages
            object.__setattr__(self, "chain_size", CHAIN_SIZE_61)
        low = MIN_VARIANT_CHAIN_SIZE if self.variant_chain else MIN_CHAIN_SIZE
        if not low <= self.chain_size <= MAX_CHAIN_SIZE:
            raise InvalidSizeError(
                f"chain size must be {low}..{MAX_CHAIN_SIZE} pages, "
                f"found {self.chain_size}"
            )
        self._check_variant()
        check_profile(self)

    def _check_variant(self) -> None:
        """Validate the class-table variant and store kernel defaults as None."""
        if self.chain_rule is not None:
            if self.chain_rule not in CHAIN_RULES:
                raise UnknownVariantError(
                    f"unknown chain rule {self.chain_rule!r}; known: {', '.join(CHAIN_RULES)}"
                )
            if self.chain_rule == self.kernel_chain_rule:
                object.__setattr__(self, "chain_rule", None)
        if self.class_delta is not None:
            delta = self.class_delta
            top = self.page_size >> 4
            if isinstance(delta, bool) or not isinstance(delta, int):
                raise InvalidTypeError(f"class delta must be an integer, found {delta!r}")
            if not MIN_CLASS_DELTA <= delta <= top or delta % ZS_ALIGN:
                raise InvalidSizeError(
                    f"class delta must be a multiple of {ZS_ALIGN} from {MIN_CLASS_DELTA} to "
                    f"{top} (PAGE_SIZE / 16) bytes, found {delta}"
                )
            if delta == self.page_size >> CLASS_BITS:
                object.__setattr__(self, "class_delta", None)

    @property
    def release(self) -> tuple[int, int]:
        """(major, minor) of :attr:`version`, for ordering rows: (6, 1) < (6, 12) < (7, 2)."""
        return version_tuple(self.version)

    # ---- page ------------------------------------------------------------------------
    @property
    def PAGE_SHIFT(self) -> int:
        """log2(PAGE_SIZE)."""
        return self.page_size.bit_length() - 1

    @property
    def PFN_BITS(self) -> int:
        """_PFN_BITS: MAX_POSSIBLE_PHYSMEM_BITS - PAGE_SHIFT."""
        return MAX_POSSIBLE_PHYSMEM_BITS - self.PAGE_SHIFT

    # ---- obj encoding ------------------------------------------------------------------
    @property
    def obj_tag_shift(self) -> int:
        """6.1/6.6 shift obj left by OBJ_TAG_BITS; 6.12+ do not."""
        return OBJ_TAG_BITS if self.release < (6, 12) else 0

    @property
    def OBJ_PFN_SHIFT(self) -> int:
        """Where the pfn starts in obj: BITS_PER_LONG - _PFN_BITS (- OBJ_TAG_BITS < 6.12).

        (7.3 calls it ZS_OBJ_PFN_SHIFT; before, it was OBJ_INDEX_BITS, the index taking
        every bit below the pfn.)
        """
        return BITS_PER_LONG - self.PFN_BITS - self.obj_tag_shift

    @property
    def OBJ_CLASS_BITS(self) -> int:
        """ZS_OBJ_CLASS_BITS: 7.3 keeps the class index in obj, between pfn and index.

        CLASS_BITS + 1 bits when the room below the pfn also holds the widest index
        (ZS_PAGES_PER_ZSPAGE_BITS + PAGE_SHIFT - 5 bits), else 0; 0 before 7.3.
        """
        if self.release < (7, 3):
            return 0
        chain = self.ZS_MAX_PAGES_PER_ZSPAGE
        pages_bits = 2 if chain <= 4 else 3 if chain <= 8 else 4
        class_bits = self.class_bits + 1
        room = self.OBJ_PFN_SHIFT - (pages_bits + self.PAGE_SHIFT - 5)
        return class_bits if room >= class_bits else 0

    @property
    def OBJ_INDEX_BITS(self) -> int:
        """Bits of obj naming the object: the rest below the pfn (7.3: ZS_OBJ_IDX_BITS)."""
        return self.OBJ_PFN_SHIFT - self.OBJ_CLASS_BITS

    # ---- size classes ------------------------------------------------------------------
    @property
    def ZS_MAX_PAGES_PER_ZSPAGE(self) -> int:
        """Longest chain: 4 in 6.1, CONFIG_ZSMALLOC_CHAIN_SIZE since 6.3."""
        return CHAIN_SIZE_61 if self.version == "6.1" else self.chain_size

    @property
    def ZS_MIN_ALLOC_SIZE(self) -> int:
        """max(32, (ZS_MAX_PAGES_PER_ZSPAGE * PAGE_SIZE) >> OBJ_INDEX_BITS)."""
        return max(32, (self.ZS_MAX_PAGES_PER_ZSPAGE * self.page_size) >> self.OBJ_INDEX_BITS)

    @property
    def ZS_MAX_ALLOC_SIZE(self) -> int:
        """PAGE_SIZE: the largest zs_malloc request."""
        return self.page_size

    @property
    def ZS_SIZE_CLASS_DELTA(self) -> int:
        """The step between class sizes: PAGE_SIZE >> CLASS_BITS, or the variant's
        (the RFC's first patch makes it 16 bytes on every page size)."""
        if self.class_delta is not None:
            return self.class_delta
        return self.page_size >> CLASS_BITS

    @property
    def class_bits(self) -> int:
        """CLASS_BITS as a build of this table needs it: 8, or more when a finer class
        delta makes more than 512 indices (zspage->class is CLASS_BITS + 1 bits wide)."""
        # Counted with the smallest ZS_MIN_ALLOC_SIZE (32): the real one depends on
        # OBJ_INDEX_BITS, which on 7.3 depends on these bits.
        most = -(-(self.page_size - 32) // self.ZS_SIZE_CLASS_DELTA) + 1
        bits = CLASS_BITS
        while most > 1 << (bits + 1):
            bits += 1
        return bits

    @property
    def ZS_SIZE_CLASSES(self) -> int:
        """DIV_ROUND_UP(ZS_MAX_ALLOC_SIZE - ZS_MIN_ALLOC_SIZE, ZS_SIZE_CLASS_DELTA) + 1."""
        span = self.ZS_MAX_ALLOC_SIZE - self.ZS_MIN_ALLOC_SIZE
        return -(-span // self.ZS_SIZE_CLASS_DELTA) + 1

    @property
    def kernel_chain_rule(self) -> str:
        """How this kernel chooses pages per zspage: "usedpc" (6.1) or "least-waste" (6.3+)."""
        return "usedpc" if self.version == "6.1" else "least-waste"

    @property
    def zspage_chain_rule(self) -> str:
        """The rule the class table is built with: the variant's, else the kernel's."""
        return self.chain_rule or self.kernel_chain_rule

    @property
    def is_variant(self) -> bool:
        """Does the class table differ in its rules from the kernel's own (delta, rule)?"""
        return self.class_delta is not None or self.chain_rule is not None

    def variant_label(self) -> str:
        """The variant part of :meth:`describe`: ``class delta 16, waste-threshold`` ("" when
        the kernel's own)."""
        parts = []
        if self.class_delta is not None:
            parts.append(f"class delta {self.class_delta}")
        if self.chain_rule is not None:
            parts.append(self.chain_rule)
        return ", ".join(parts)

    # ---- errors ------------------------------------------------------------------------
    @property
    def oversize_errno(self) -> int:
        """zs_malloc(size > PAGE_SIZE): -EINVAL up to 6.6, -ENOSPC since 6.12."""
        return errno.EINVAL if self.release < (6, 12) else errno.ENOSPC

    # ---- allocator rules ---------------------------------------------------------------
    @property
    def fullness_scheme(self) -> str:
        """"4-group" (EMPTY/ALMOST_EMPTY/ALMOST_FULL/FULL, 6.1) or "ratio-12" (6.3+)."""
        return "4-group" if self.version == "6.1" else "ratio-12"

    @property
    def compaction(self) -> str:
        """"6.1" (source first, put back at the tail) or "6.5" (the §5.3 algorithm)."""
        return "6.1" if self.version == "6.1" else "6.5"

    @property
    def page_type_on_reset(self) -> str:
        """What reset_zpdesc/reset_page leaves in page_type.

        "sticky" (6.18: PGTY_zsmalloc until the buddy frees the page), "cleared" (6.12
        clears it), "raw" (6.1/6.6: no page type; the word is the raw offset).
        """
        if self.release >= (6, 18):
            return "sticky"
        return "cleared" if self.release >= (6, 12) else "raw"

    @property
    def huge_handle_field(self) -> str:
        """Where a huge object's handle lives: zpdesc.handle (6.18) or page->index."""
        return "zpdesc.handle" if self.release >= (6, 18) else "page->index"

    @property
    def object_api(self) -> str:
        """zs_obj_read_begin/end + zs_obj_write (6.18) or zs_map_object/unmap."""
        return "zs_obj" if self.release >= (6, 18) else "zs_map_object"

    @property
    def zspage_isolation(self) -> bool:
        """Does ``struct zspage`` count its pages isolated for migration (isolated:3)?

        6.1 and 6.6 do (inc_zspage_isolation in zs_page_isolate, dec on migrate or
        putback); 6.12 has no such field.  Bookkeeping only: no rule reads it.
        """
        return self.release < (6, 12)

    @property
    def allocator_implemented(self) -> bool:
        """Does :mod:`zsmalloc.zs` implement this version's allocation rules?

        The two combinations kernels have: 4-group lists with 6.1 compaction, and ratio
        groups with the §5.3 compaction (6.5 and later).
        """
        return (self.fullness_scheme, self.compaction) in (("4-group", "6.1"), ("ratio-12", "6.5"))

    # ---- the swap layer in front of zram and zswap ------------------------------------
    @property
    def swap_zero_map(self) -> bool:
        """Does swap keep zero-filled folios in its zero map instead of writing them (6.12+)?

        swap_writeout() (mm/page_io.c) marks a folio whose every byte is zero in the
        swap device's zero map and writes nothing: neither zram nor zswap sees it.
        Before 6.12 it went to the device like any page (zram: a same-filled page).
        """
        return self.release >= (6, 12)

    @property
    def thp_split_maps_zero_page(self) -> bool:
        """Does splitting an anonymous THP map its zero-filled pages to the shared
        zero page (6.12+, remap_page() with RMP_USE_SHARED_ZEROPAGE)?

        Reclaim splits a THP it cannot swap whole (a swap file takes no large
        entries): those zero-filled pages are then freed, not swapped.
        """
        return self.release >= (6, 12)

    # ---- zram ----------------------------------------------------------------------------
    @property
    def ZRAM_FLAG_SHIFT(self) -> int:
        """PAGE_SHIFT + 1: the slot's flag bits start above the object size."""
        return self.PAGE_SHIFT + 1

    @property
    def SECTORS_PER_PAGE(self) -> int:
        """PAGE_SIZE / 512."""
        return self.page_size >> SECTOR_SHIFT

    # zram's interface per version: read in each kernel's zram_drv.c (Debian's source
    # packages 6.1.176, 6.12.117, 7.2.13, 7.3.4) and seen in guests booting Debian's
    # 6.1, 6.12, 6.16, 6.17, 6.18, 7.2 and 7.3 (docs/kernels.md).
    @property
    def zram_compressors(self) -> str:
        """"crypto" (zcomp over the crypto API: any crypto compressor, no parameters; before
        6.12) or "backends" (zram's own backend table, ``algorithm_params``; 6.12 on)."""
        return "crypto" if self.release < (6, 12) else "backends"

    @property
    def zram_deflate_winbits(self) -> bool:
        """Does ``algorithm_params`` know ``deflate.winbits`` (about 6.16 on; 6.12 ignores
        it as an unknown key)?"""
        return self.release >= (6, 16)

    @property
    def zram_params_busy_after_init(self) -> bool:
        """Does ``algorithm_params`` refuse an initialised device with -EBUSY (7.2, 7.3)?

        6.12 and 6.18 accept it at any time (it takes effect at the next disksize).
        """
        return self.release >= (7, 2)

    @property
    def zram_max_comp_streams(self) -> bool:
        """The ``max_comp_streams`` attribute (shows the online CPUs, ignores writes): gone
        in 6.15 (absent on the 6.16 guest, present on 6.12)."""
        return self.release < (6, 15)

    @property
    def zram_invalid_io_counted(self) -> bool:
        """io_stat's third field: the ``invalid_io`` counter (6.1) or a literal 0 (about 6.4 on)."""
        return self.release < (6, 4)

    @property
    def zram_writestall_counted(self) -> bool:
        """debug_stat's second line starts with ``writestall`` (to 6.14) or a literal 0."""
        return self.release < (6, 15)

    @property
    def zram_writeback_batching(self) -> bool:
        """``writeback_batch_size`` and ``compressed_writeback`` (present on 7.2 and 7.3)."""
        return self.release >= (7, 2)

    def describe(self) -> str:
        """One line for reports: ``6.18, 4 KiB pages, chain 8`` (a variant adds its part:
        ``..., chain 8, class delta 16, waste-threshold``)."""
        chain = self.ZS_MAX_PAGES_PER_ZSPAGE
        out = f"{self.version}, {self.page_size // 1024} KiB pages, chain {chain}"
        variant = self.variant_label()
        return f"{out}, {variant}" if variant else out


def version_tuple(version: str) -> tuple[int, int]:
    """(major, minor) of a version row or a kernel release: "6.1.0-57-amd64" -> (6, 1)."""
    m = re.match(r"(\d+)\.(\d+)(?:$|[^0-9])", version.strip())
    if not m:
        raise UnknownKernelError(
            f"expected a kernel version such as 6.1 or 6.12.118, found {version!r}"
        )
    return int(m.group(1)), int(m.group(2))


def kernel_version(release: str) -> str:
    """The profile row for a kernel version or ``uname -r``: "7.2.13+deb14-amd64" -> "7.2".

    A release with no row of its own (6.8, 6.17) takes the newest row that is not newer
    than it: the rules rows describe changed no later than the row's version, and
    :data:`VERSIONS` has a row wherever the allocator or zram changed in a way the
    model knows.  Older than 6.1 is refused.
    """
    want = version_tuple(release)
    rows = [v for v in VERSIONS if version_tuple(v) <= want]
    if not rows:
        raise UnknownKernelError(
            f"kernel {release!r} is older than every known profile ({', '.join(VERSIONS)})"
        )
    return max(rows, key=version_tuple)


_FLAVOUR_PAGE = re.compile(r"-(16|64)k(?:$|[^0-9a-z])")


def profile_for_release(
    release: str,
    page_size: int | None = None,
    chain_size: int = DEFAULT_CHAIN_SIZE,
    class_delta: int | None = None,
    chain_rule: str | None = None,
) -> KernelProfile:
    """The profile of a running kernel named by its release (``uname -r``, a trace's
    ``kernel=``): the row from :func:`kernel_version`, and PAGE_SIZE as given, else from
    Debian's arm64 flavour suffix (``-16k``, ``-64k``), else 4 KiB; a class-table
    variant as given."""
    if page_size is None:
        m = _FLAVOUR_PAGE.search(release)
        page_size = int(m.group(1)) * 1024 if m else 4096
    return KernelProfile(kernel_version(release), page_size, chain_size, class_delta, chain_rule)


def check_profile(p: KernelProfile) -> None:
    """Check the relations between a profile's constants (the module docstring's list).

    A failure is a bug in this module, not a user error: it raises ``AssertionError``
    the way a BUILD_BUG_ON stops a kernel build.
    """
    words = p.OBJ_INDEX_BITS + p.OBJ_CLASS_BITS + p.PFN_BITS + p.obj_tag_shift
    if words != BITS_PER_LONG:
        raise AssertionError(f"{p}: obj fields take {words} bits, not {BITS_PER_LONG}")
    max_objs = p.ZS_MAX_PAGES_PER_ZSPAGE * p.page_size // p.ZS_MIN_ALLOC_SIZE
    if max_objs > 1 << p.OBJ_INDEX_BITS:
        raise AssertionError(f"{p}: {max_objs} objects per zspage exceed OBJ_INDEX_BITS")
    if p.ZS_MIN_ALLOC_SIZE % ZS_ALIGN or p.ZS_SIZE_CLASS_DELTA % ZS_ALIGN:
        raise AssertionError(f"{p}: class sizes are not multiples of ZS_ALIGN")
    nr_classes, class_field = p.ZS_SIZE_CLASSES, 1 << (p.class_bits + 1)
    if p.class_bits > MAX_CLASS_BITS or nr_classes > class_field:
        raise AssertionError(f"{p}: {nr_classes} classes overflow zspage->class")
    if p.page_size >= 1 << FIRST_OBJ_OFFSET_BITS:
        raise AssertionError(f"{p}: first_obj_offset does not fit page_type")
    if p.page_size >= 1 << p.ZRAM_FLAG_SHIFT:
        raise AssertionError(f"{p}: a PAGE_SIZE object does not fit below ZRAM_FLAG_SHIFT")


def require_allocator(prof: KernelProfile) -> KernelProfile:
    """``prof`` if :mod:`zsmalloc.zs` implements its allocation rules, else a clear error."""
    if not prof.allocator_implemented:
        raise ZsmallocError(
            f"Linux {prof.version} allocation rules ({prof.fullness_scheme} fullness lists, "
            f"{prof.compaction} compaction) are not implemented"
        )
    return prof


def profile_for(
    version: str = DEFAULT_VERSION,
    page_size: int = 4096,
    chain_size: int = DEFAULT_CHAIN_SIZE,
    class_delta: int | None = None,
    chain_rule: str | None = None,
) -> KernelProfile:
    """A profile whose allocation rules :mod:`zsmalloc.zs` implements, or a clear error."""
    return require_allocator(
        KernelProfile(version, page_size, chain_size, class_delta, chain_rule)
    )


DEFAULT_PROFILE: Final = KernelProfile()
"""6.18, 4 KiB pages, chain 8: the reference kernel of this package."""

# The build-time checks of every supported kernel and page size, at import.
for _v in VERSIONS:
    for _ps in PAGE_SIZES:
        KernelProfile(_v, _ps, MAX_CHAIN_SIZE)
del _v, _ps
