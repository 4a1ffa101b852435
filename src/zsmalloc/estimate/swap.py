"""What the swap layer does with a page before zram (or zswap) sees it.

``zsmalloc estimate`` models a zram device used in one of two ways:

* **as a block device** (files, disk images, a filesystem on zram): every page
  written reaches zram, and zram keeps a same-filled page (every word equal,
  zeros included) as a mark in its slot, storing nothing (``same_pages``);
* **as a swap device** (process memory being swapped out): pages reach zram
  through swap_writeout() (mm/page_io.c), which since 6.12 first tests the
  whole *folio*: a folio whose every byte is zero is marked in the swap
  device's zero map and never written (vmstat ``swpout_zero``).  zram sees
  only the rest.

The test is per folio, not per page.  An anonymous transparent huge page (THP)
is swapped out whole when the swap device can take a large entry (a block
device such as zram, with CONFIG_THP_SWAP: cluster_alloc_swap_entry() in
mm/swapfile.c), so the zero-filled pages of a THP that is not all zero go to
zram with the rest of it, as same-filled pages.  A swap *file* takes no large
entries: reclaim splits the THP first (shrink_folio_list() in mm/vmscan.c) and,
since 6.12, the split maps its zero-filled pages to the shared zero page
(remap_page() with RMP_USE_SHARED_ZEROPAGE): they are freed, not swapped.

A source that knows folios (:class:`~zsmalloc.estimate.process.ProcessSource`
learns them from /proc/kpageflags) drops zero-filled folios itself and counts
them: ``zero_map_pages`` for single pages, ``zero_thp_pages`` for all-zero
THPs.  For any other source in swap mode each page is its own folio and the
estimate's reader drops zero-filled pages with :func:`drop_zero_pages`.  What
is left is what the device receives:

=========================  ======================  =================================
page                       zram as swap (a block   zswap in front of a swap file
                           device: THPs whole)     (6.18: THPs split first)
=========================  ======================  =================================
zero-filled single page    swap zero map           swap zero map
all-zero THP               swap zero map           shared zero page (split)
zero page inside a THP     zram same-filled page   shared zero page (split)
other same-filled page     zram same-filled page   compressed into zswap
any other page             compressed into zram    compressed into zswap
=========================  ======================  =================================

Before 6.12 there is no zero map and a split THP keeps its zero-filled pages:
every page reaches the device, and the rules are block mode's.  The kernel
facts come from the profile (``swap_zero_map``, ``thp_split_maps_zero_page``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

from zsmalloc.errors import InputError
from zsmalloc.profile import DEFAULT_PROFILE, KernelProfile

SWAP: Final = "swap"
BLOCK: Final = "block"
MODES: Final = (SWAP, BLOCK)


@dataclass(frozen=True)
class SwapRules:
    """How pages reach zram: as swap (``mode="swap"``) or as block writes, on ``profile``."""

    mode: str = SWAP
    profile: KernelProfile = field(default=DEFAULT_PROFILE)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"zram used as {self.mode!r}: expected one of {', '.join(MODES)}")

    @property
    def zero_map(self) -> bool:
        """Do zero-filled folios stay in the swap zero map instead of reaching zram?"""
        return self.mode == SWAP and self.profile.swap_zero_map

    def describe(self) -> str:
        """One sentence for reports: which device, and which of the kernel's rules."""
        v = self.profile.version
        if self.mode == BLOCK:
            return (
                "zram as a block device: every page is written to zram; same-filled pages "
                "(zero-filled ones included) are zram same_pages"
            )
        if not self.zero_map:
            return (
                f"zram as a swap device, Linux {v} swap rules: no swap zero map before 6.12, "
                "so zero-filled pages reach zram as same-filled pages"
            )
        return (
            f"zram as a swap device, Linux {v} swap rules: zero-filled folios stay in the "
            "swap zero map and never reach zram; a THP is swapped whole, so the zero-filled "
            "pages of a THP that is not all zero reach zram as same-filled pages"
        )

    def to_json(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "kernel": self.profile.version,
            "swap_zero_map": self.zero_map,
            "rules": self.describe(),
        }


BLOCK_RULES: Final = SwapRules(BLOCK)
SWAP_RULES: Final = SwapRules(SWAP)


def zero_filled(pages: np.ndarray) -> np.ndarray:
    """Whether each page (a row of ``pages``) is all zero: is_folio_zero_filled() per page."""
    if pages.flags.c_contiguous and pages.shape[1] % 8 == 0:
        pages = pages.view(np.uint64)  # eight bytes a test, as the kernel reads words
    return np.logical_not(pages.any(axis=1))


def drop_zero_pages(pages: np.ndarray) -> int:
    """Keep the pages that are not zero-filled, moved to the front in order; return how many.

    The rest of ``pages`` is left as it was: the caller treats it as unused.
    """
    zero = zero_filled(pages)
    if not zero.any():
        return len(pages)
    keep = np.flatnonzero(~zero)
    pages[: len(keep)] = pages[keep]  # fancy indexing copies first: overlapping is safe
    return len(keep)
