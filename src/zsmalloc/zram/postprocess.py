"""Post-processing candidate buckets shared by writeback and recompression.

Mirrors ``struct zram_pp_ctl``, ``place_pp_slot()``, ``select_pp_slot()`` and
``release_pp_slot()`` in drivers/block/zram/zram_drv.c (6.13+, as in 6.18).

Candidates are bucketed by object size, ``size / 64`` (``PAGE_SIZE / 64 + 1``
buckets: 65 with 4 KiB pages, a huge slot of 4096 bytes landing in bucket 64).
A new candidate is added at the *head* of its bucket and taken from the head,
and the highest non-empty bucket is served first: largest objects first, and
within a bucket the slot scanned last goes first.  ZRAM_PP_SLOT marks a slot
as a candidate; any access or free clears it, and the job then skips that slot.
"""

from __future__ import annotations

from collections import deque

from zsmalloc.zram.table import SlotLayout, ZramTable, zram_get_obj_size

PP_BUCKET_SIZE_RANGE = 64


class PpCtl:
    """Mirrors struct zram_pp_ctl: one list of slot indexes per size bucket of ``zt``."""

    def __init__(self, zt: ZramTable, lay: SlotLayout) -> None:
        self.zt = zt
        self.lay = lay
        nr_buckets = lay.PAGE_SIZE // PP_BUCKET_SIZE_RANGE + 1  # NUM_PP_BUCKETS
        self.pp_buckets: list[deque[int]] = [deque() for _ in range(nr_buckets)]

    def place_pp_slot(self, index: int) -> None:
        """Mirrors place_pp_slot(): head of bucket ``size / 64``, and set PP_SLOT."""
        bid = zram_get_obj_size(self.lay, self.zt.flags[index]) // PP_BUCKET_SIZE_RANGE
        self.pp_buckets[bid].appendleft(index)
        self.zt.flags[index] |= self.lay.ZRAM_PP_SLOT

    def select_pp_slot(self) -> tuple[int, int] | None:
        """Mirrors select_pp_slot(): (bucket, slot) at the head of the highest non-empty bucket."""
        for bid in range(len(self.pp_buckets) - 1, -1, -1):
            if self.pp_buckets[bid]:
                return bid, self.pp_buckets[bid][0]
        return None

    def release_pp_slot(self, bid: int) -> None:
        """Mirrors release_pp_slot(): drop the head of bucket ``bid`` and clear its PP_SLOT."""
        index = self.pp_buckets[bid].popleft()
        self.zt.flags[index] &= ~self.lay.ZRAM_PP_SLOT

    def drain(self) -> None:
        """Mirrors release_pp_ctl(): release whatever is left."""
        pp_slot = self.lay.ZRAM_PP_SLOT
        for bucket in self.pp_buckets:
            while bucket:
                self.zt.flags[bucket.popleft()] &= ~pp_slot
