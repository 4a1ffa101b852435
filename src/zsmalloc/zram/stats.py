"""zram's counters and the exact text of its statistics files.

Mirrors ``struct zram_stats`` (drivers/block/zram/zram_drv.h, 6.18) and the
show functions ``mm_stat_show``, ``io_stat_show``, ``debug_stat_show`` and
``bd_stat_show`` in drivers/block/zram/zram_drv.c (6.18).

All counters live in one ``int64`` array indexed by the constants below, so
numba hot loops (trace replay, the slot layer) update them in place and the
Python side reads the same array: one source of truth, as the kernel's atomic
counters are.  Derived values (``orig_data_size = pages_stored * PAGE``) are
computed when read, never stored.

Formats (spec zram.md §2.15, checked against the live 6.18.44 device):

========== ==========================================================
mm_stat    nine ``%8llu`` fields, single spaces, newline
io_stat    failed_reads, failed_writes, a literal ``0``, notify_free
debug_stat ``version: 1`` then a literal ``0`` and miss_free
bd_stat    bd_count, bd_reads, bd_writes (WRITEBACK builds only)
========== ==========================================================
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

PAGE_SIZE = 4096
PAGE_SHIFT = 12

# -- struct zram_stats (6.18 BTF order), then device fields kept beside them ----
COMPR_DATA_SIZE = 0
FAILED_READS = 1
FAILED_WRITES = 2
NOTIFY_FREE = 3
SAME_PAGES = 4
HUGE_PAGES = 5
HUGE_PAGES_SINCE = 6
PAGES_STORED = 7
MAX_USED_PAGES = 8
MISS_FREE = 9
BD_COUNT = 10  # WRITEBACK builds: backing blocks in use or reserved
BD_READS = 11
BD_WRITES = 12
LIMIT_PAGES = 13  # zram->limit_pages (not a stat, but read by the hot path)
NR_STATS = 14

class MmStat(NamedTuple):
    """The nine columns of ``/sys/block/zramN/mm_stat``, in the kernel's order.

    Mirrors mm_stat_show(): sizes in bytes except the page counts ``same_pages``,
    ``pages_compacted``, ``huge_pages`` and ``huge_pages_since``.  The one definition
    of the columns: :data:`MM_STAT_COLUMNS` and :data:`MM_STAT_DTYPE` (a record numba
    code fills) are derived from it.
    """

    orig_data_size: int
    compr_data_size: int
    mem_used_total: int
    mem_limit: int
    mem_used_max: int
    same_pages: int
    pages_compacted: int
    huge_pages: int
    huge_pages_since: int

    def format(self) -> str:
        """The file's text: ``%8llu`` fields joined by one space, then a newline."""
        return " ".join(f"{int(v):8d}" for v in self) + "\n"

    @classmethod
    def parse(cls, text: str) -> MmStat:
        """The columns of an mm_stat line (kernel or model); ValueError if malformed."""
        fields = text.split()
        if len(fields) != len(cls._fields):
            raise ValueError(
                f"mm_stat: expected {len(cls._fields)} fields, found {len(fields)}: {text!r}"
            )
        return cls(*(int(f) for f in fields))

    @classmethod
    def from_record(cls, rec: np.void | np.record) -> MmStat:
        """From one record of :data:`MM_STAT_DTYPE`."""
        return cls(*(int(rec[name]) for name in cls._fields))


MM_STAT_COLUMNS: tuple[str, ...] = MmStat._fields
MM_STAT_DTYPE = np.dtype([(name, np.int64) for name in MM_STAT_COLUMNS])


def new_stats() -> np.ndarray:
    """A zeroed counter array (what ``reset`` leaves behind)."""
    return np.zeros(NR_STATS, dtype=np.int64)


def mm_stat_values(stats: np.ndarray, total_pages: int, pages_compacted: int) -> list[int]:
    """The nine mm_stat columns, in bytes or pages as the kernel prints them.

    Mirrors mm_stat_show(): ``total_pages`` is zs_get_total_pages() and
    ``pages_compacted`` the pool's, both 0 when the device is not initialised.
    """
    return [
        int(stats[PAGES_STORED]) << PAGE_SHIFT,
        int(stats[COMPR_DATA_SIZE]),
        total_pages << PAGE_SHIFT,
        int(stats[LIMIT_PAGES]) << PAGE_SHIFT,
        int(stats[MAX_USED_PAGES]) << PAGE_SHIFT,
        int(stats[SAME_PAGES]),
        pages_compacted,
        int(stats[HUGE_PAGES]),
        int(stats[HUGE_PAGES_SINCE]),
    ]


def format_mm_stat(values: list[int] | tuple[int, ...] | np.ndarray) -> str:
    """Mirrors mm_stat_show(): ``%8llu`` fields joined by one space."""
    return " ".join(f"{int(v):8d}" for v in values) + "\n"


def parse_mm_stat(text: str) -> list[int]:
    """The nine integers of an mm_stat line (kernel or model)."""
    fields = text.split()
    if len(fields) != 9:
        raise ValueError(f"mm_stat: expected 9 fields, found {len(fields)}: {text!r}")
    return [int(f) for f in fields]


def format_io_stat(stats: np.ndarray) -> str:
    """Mirrors io_stat_show(): the third field has been a literal 0 since ~6.4."""
    return (
        f"{int(stats[FAILED_READS]):8d} {int(stats[FAILED_WRITES]):8d} 0 "
        f"{int(stats[NOTIFY_FREE]):8d}\n"
    )


def format_debug_stat(stats: np.ndarray) -> str:
    """Mirrors debug_stat_show(): line 2 starts with a literal 0 (writestall until 6.14)."""
    return f"version: 1\n0 {int(stats[MISS_FREE]):8d}\n"


def format_bd_stat(stats: np.ndarray) -> str:
    """Mirrors bd_stat_show(): counts scaled by PAGE_SIZE / 4096 (1 here)."""
    return f"{int(stats[BD_COUNT]):8d} {int(stats[BD_READS]):8d} {int(stats[BD_WRITES]):8d}\n"
