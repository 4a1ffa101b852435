"""The memdesc what-if: zsmalloc's page descriptors today and at the end of the zpdesc series.

Today every page zsmalloc holds is described by its ``struct page`` (64 bytes on x86-64,
spec zsmalloc.md §9.1), which ``struct zpdesc`` overlays (its first 56 bytes, §9.1 too): the
descriptor costs nothing beyond the memmap, and the memmap costs 64 bytes for every page.
zpdesc (6.14) is a step of the memdesc plan, whose end point shrinks ``struct page`` to
one word, a typed pointer to a descriptor the page's owner allocates (the 6.18 spec
already calls the first word ``memdesc_flags_t``).  zsmalloc would then allocate a
``struct zpdesc`` for each of its pages from a slab cache of its own, beside that word.

For a workload holding ``nr_pages`` zspage pages this module counts both:

==================  ==========================================================
struct_page_bytes   today: ``nr_pages * sizeof(struct page)`` (64)
memdesc_word_bytes  after: what stays in the memmap, ``nr_pages * 8``
zpdesc_slab_bytes   after: the zpdesc slab, ``ceil(nr_pages / objs_per_slab)`` slab
                    pages of PAGE_SIZE, ``objs_per_slab = PAGE_SIZE // 56`` (73 at 4 KiB)
memdesc_bytes       after, in total: memdesc_word_bytes + zpdesc_slab_bytes
==================  ==========================================================

The sizes are the spec's (§9.1: 64 and 56), taken from the checked layouts
(:data:`~zsmalloc.mm.page.STRUCT_PAGE`, :data:`~zsmalloc.mm.zpdesc.STRUCT_ZPDESC`); the
8-byte word and an order-0 slab with no per-slab metadata in the page are the plan's
shape, not a kernel anyone ships, so the figures are the what-if's, not a measurement.
"""

from __future__ import annotations

from typing import NamedTuple

from zsmalloc.mm.page import STRUCT_PAGE
from zsmalloc.mm.zpdesc import STRUCT_ZPDESC

MEMDESC_WORD_SIZE = 8  # what is left of struct page: one memdesc_t


class MemdescCost(NamedTuple):
    """Descriptor bytes for ``nr_pages`` zsmalloc pages, today and after memdesc."""

    nr_pages: int
    struct_page_bytes: int
    memdesc_word_bytes: int
    zpdesc_slab_bytes: int

    @property
    def memdesc_bytes(self) -> int:
        """Everything after memdesc: the words left in the memmap and the zpdesc slab."""
        return self.memdesc_word_bytes + self.zpdesc_slab_bytes

    @property
    def saved_bytes(self) -> int:
        """What memdesc saves on these pages (negative: it costs more)."""
        return self.struct_page_bytes - self.memdesc_bytes

    def as_dict(self) -> dict[str, int]:
        return {**self._asdict(), "memdesc_bytes": self.memdesc_bytes,
                "saved_bytes": self.saved_bytes}


def zpdesc_objs_per_slab(page_size: int) -> int:
    """``struct zpdesc`` objects in one order-0 slab page."""
    return page_size // STRUCT_ZPDESC.size


def memdesc_cost(nr_pages: int, page_size: int) -> MemdescCost:
    """The descriptor bytes of ``nr_pages`` zspage pages, today and after memdesc."""
    per_slab = zpdesc_objs_per_slab(page_size)
    slabs = -(-nr_pages // per_slab)
    return MemdescCost(
        nr_pages=nr_pages,
        struct_page_bytes=nr_pages * STRUCT_PAGE.size,
        memdesc_word_bytes=nr_pages * MEMDESC_WORD_SIZE,
        zpdesc_slab_bytes=slabs * page_size,
    )
