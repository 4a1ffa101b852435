"""Post-processing candidate buckets shared by writeback and recompression.

Mirrors ``struct zram_pp_ctl``, ``place_pp_slot()``, ``select_pp_slot()`` and
``release_pp_slot()`` in drivers/block/zram/zram_drv.c (6.13+, as in 6.18).

Candidates are bucketed by object size, ``size / 64`` (65 buckets; a huge
slot of 4096 bytes lands in bucket 64).  A new candidate is added at the
*head* of its bucket and taken from the head, and the highest non-empty bucket
is served first: largest objects first, and within a bucket the slot scanned
last goes first.  ZRAM_PP_SLOT marks a slot as a candidate; any access or free
clears it, and the job then skips that slot.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from zsmalloc.zram.stats import PAGE_SIZE
from zsmalloc.zram.table import ZRAM_PP_SLOT, ZRAM_SIZE_MASK

PP_BUCKET_SIZE_RANGE = 64
NUM_PP_BUCKETS = PAGE_SIZE // PP_BUCKET_SIZE_RANGE + 1


class PpCtl:
    """Mirrors struct zram_pp_ctl: one list of slot indexes per size bucket."""

    def __init__(self) -> None:
        self.pp_buckets: list[deque[int]] = [deque() for _ in range(NUM_PP_BUCKETS)]

    def place_pp_slot(self, flags: np.ndarray, index: int) -> None:
        """Mirrors place_pp_slot(): head of bucket ``size / 64``, and set PP_SLOT."""
        bid = int(flags[index] & ZRAM_SIZE_MASK) // PP_BUCKET_SIZE_RANGE
        self.pp_buckets[bid].appendleft(index)
        flags[index] |= ZRAM_PP_SLOT

    def select_pp_slot(self) -> tuple[int, int] | None:
        """Mirrors select_pp_slot(): (bucket, slot) at the head of the highest non-empty bucket."""
        for bid in range(NUM_PP_BUCKETS - 1, -1, -1):
            if self.pp_buckets[bid]:
                return bid, self.pp_buckets[bid][0]
        return None

    def release_pp_slot(self, flags: np.ndarray, bid: int) -> None:
        """Mirrors release_pp_slot(): drop the head of bucket ``bid`` and clear its PP_SLOT."""
        index = self.pp_buckets[bid].popleft()
        flags[index] &= ~ZRAM_PP_SLOT

    def drain(self, flags: np.ndarray) -> None:
        """Mirrors release_pp_ctl(): release whatever is left."""
        for bucket in self.pp_buckets:
            while bucket:
                flags[bucket.popleft()] &= ~ZRAM_PP_SLOT
