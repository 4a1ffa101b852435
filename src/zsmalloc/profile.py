"""Kernel profiles: what differs between 6.1, 6.6, 6.12 and 6.18, as data.

Mirrors the version table of the spec (zsmalloc.md §10).  A :class:`KernelProfile`
names a kernel version and its configuration (PAGE_SIZE, CONFIG_ZSMALLOC_CHAIN_SIZE)
and derives every constant and behaviour flag the allocator needs, so the code never
tests ``version >= ...``; it reads a named flag.

The allocator implements the 6.3+ rules (12 fullness groups, head insertion, §5.3
compaction), which 6.6, 6.12 and 6.18 share; 6.1's four-group lists and its older
compaction are described here (``fullness_scheme``, ``compaction``) but not
implemented, and :func:`profile_for` refuses to build a pool for them rather than
give wrong numbers.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from zsmalloc.errors import ZsmallocError

MAX_POSSIBLE_PHYSMEM_BITS = 52  # x86_64
OBJ_TAG_BITS = 1
CLASS_BITS = 8
VERSIONS = ("6.1", "6.6", "6.12", "6.18")


@dataclass(frozen=True)
class KernelProfile:
    """One kernel version + configuration, with its derived ZS_* constants and flags."""

    version: str = "6.18"
    page_size: int = 4096
    chain_size: int = 8

    @property
    def page_shift(self) -> int:
        """PAGE_SHIFT."""
        return self.page_size.bit_length() - 1

    @property
    def obj_tag_shift(self) -> int:
        """6.1/6.6 shift obj left by OBJ_TAG_BITS; 6.12+ does not."""
        return OBJ_TAG_BITS if self.version in ("6.1", "6.6") else 0

    @property
    def OBJ_INDEX_BITS(self) -> int:
        """Bits of obj naming the object: 64 - _PFN_BITS (- OBJ_TAG_BITS before 6.12)."""
        return 64 - (MAX_POSSIBLE_PHYSMEM_BITS - self.page_shift) - self.obj_tag_shift

    @property
    def ZS_MAX_PAGES_PER_ZSPAGE(self) -> int:
        """Longest chain: 4 in 6.1, CONFIG_ZSMALLOC_CHAIN_SIZE since."""
        return 4 if self.version == "6.1" else self.chain_size

    @property
    def ZS_MIN_ALLOC_SIZE(self) -> int:
        """max(32, (max pages * PAGE_SIZE) >> OBJ_INDEX_BITS)."""
        return max(32, (self.ZS_MAX_PAGES_PER_ZSPAGE * self.page_size) >> self.OBJ_INDEX_BITS)

    @property
    def ZS_SIZE_CLASS_DELTA(self) -> int:
        """PAGE_SIZE >> CLASS_BITS."""
        return self.page_size >> CLASS_BITS

    @property
    def oversize_errno(self) -> int:
        """zs_malloc(size > PAGE_SIZE): -EINVAL up to 6.6, -ENOSPC since 6.12."""
        return errno.EINVAL if self.version in ("6.1", "6.6") else errno.ENOSPC

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
        return {"6.18": "sticky", "6.12": "cleared"}.get(self.version, "raw")

    @property
    def huge_handle_field(self) -> str:
        """Where a huge object's handle lives: zpdesc.handle (6.18) or page->index."""
        return "zpdesc.handle" if self.version == "6.18" else "page->index"

    @property
    def object_api(self) -> str:
        """zs_obj_read_begin/end + zs_obj_write (6.18) or zs_map_object/unmap."""
        return "zs_obj" if self.version == "6.18" else "zs_map_object"

    @property
    def allocator_implemented(self) -> bool:
        """Does :mod:`zsmalloc.zs` implement this version's allocation rules?"""
        return self.fullness_scheme == "ratio-12" and self.compaction == "6.5"


def profile_for(version: str = "6.18", page_size: int = 4096, chain_size: int = 8) -> KernelProfile:
    """A profile whose allocation rules :mod:`zsmalloc.zs` implements, or a clear error."""
    if version not in VERSIONS:
        raise ZsmallocError(f"unknown kernel version {version!r}; known: {', '.join(VERSIONS)}")
    prof = KernelProfile(version, page_size, chain_size)
    if not prof.allocator_implemented:
        raise ZsmallocError(
            f"Linux {version} allocation rules ({prof.fullness_scheme} fullness lists, "
            f"{prof.compaction} compaction) are not implemented; use 6.6, 6.12 or 6.18"
        )
    return prof
