"""zram's counters and the exact text of its statistics files.

Mirrors ``struct zram_stats`` (drivers/block/zram/zram_drv.h, 6.18) and the
show functions ``mm_stat_show``, ``io_stat_show``, ``debug_stat_show`` and
``bd_stat_show`` in drivers/block/zram/zram_drv.c (6.18).

The counters are one record of :data:`ZRAM_STATS_DTYPE` in a one-element array:
numba hot loops (trace replay, the slot table) update it in place by name
(``s = stats[0]; s["pages_stored"] += 1``, compiled to the same load and store as
indexing an int64 array) and the Python side reads the same record: one source of
truth, as the kernel's atomic counters are.  A plain structured array, not a
``np.recarray`` view: numba's dispatcher types an ndarray subclass the slow way,
about 2 µs on every call from Python.  Only counters live here;
``zram->limit_pages`` is device state (:data:`zsmalloc.zram.table.ZRAM_DEVICE_DTYPE`).
Derived values (``orig_data_size = pages_stored << PAGE_SHIFT``) are computed when
read, by :func:`mm_stat_show`, the one place that builds the nine mm_stat columns.

Formats (spec zram.md §2.15, checked against the live 6.18.44 device and, for the
older forms, guests of Debian's 6.1 and 6.12):

========== ==========================================================
mm_stat    nine ``%8llu`` fields, single spaces, newline
io_stat    failed_reads, failed_writes, a literal ``0`` (6.1: the
           ``invalid_io`` counter, ``%8llu``), notify_free
debug_stat ``version: 1`` then a literal ``0`` (to 6.14: ``writestall``,
           ``%8llu``) and miss_free
bd_stat    bd_count, bd_reads, bd_writes (WRITEBACK builds only)
========== ==========================================================
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from zsmalloc._jit import njit

# struct zram_stats, 6.18 BTF order.  Every field is an atomic64_t in the kernel.
ZRAM_STATS_DTYPE = np.dtype(
    [
        ("compr_data_size", np.int64),  # bytes of stored objects (huge ones count PAGE_SIZE)
        ("failed_reads", np.int64),
        ("failed_writes", np.int64),
        ("notify_free", np.int64),  # slots freed by swap_slot_free_notify or discard
        ("same_pages", np.int64),  # slots holding a same-filled word, no object
        ("huge_pages", np.int64),  # slots holding a raw PAGE_SIZE object
        ("huge_pages_since", np.int64),  # huge stores since init (never decremented)
        ("pages_stored", np.int64),  # slots holding anything (object, same, WB)
        ("max_used_pages", np.int64),  # mem_used_max, in pages
        ("miss_free", np.int64),  # slot_free_notify could not take the slot lock
        ("bd_count", np.int64),  # WRITEBACK: backing blocks in use or reserved
        ("bd_reads", np.int64),
        ("bd_writes", np.int64),
    ],
    align=True,
)


def new_stats() -> np.ndarray:
    """A zeroed counter record (what ``reset`` leaves behind), in a one-element array."""
    return np.zeros(1, ZRAM_STATS_DTYPE)


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
# Nine 8-byte words at offsets 0, 8, ... 64: an (n, 9) int64 row array views as n of
# these.  mem_limit is u64 (``limit_pages << PAGE_SHIFT`` reaches 2**64 - 4096); the
# others never leave int64.
MM_STAT_DTYPE = np.dtype(
    [(name, np.uint64 if name == "mem_limit" else np.int64) for name in MM_STAT_COLUMNS],
    align=True,
)


@njit(cold_python=True)  # the estimate's report calls it from Python
def mm_stat_show(
    out: np.ndarray,
    stats: np.ndarray,
    limit_pages: int,
    total_pages: int,
    pages_compacted: int,
    page_shift: int,
) -> None:
    """Fill ``out[0]`` (a :data:`MM_STAT_DTYPE` record) as mm_stat_show() prints it.

    Mirrors mm_stat_show() in drivers/block/zram/zram_drv.c (6.18): ``total_pages`` is
    zs_get_total_pages() and ``pages_compacted`` the pool's, both 0 when the device is
    not initialised; ``limit_pages`` is zram->limit_pages.  Compiled, so the trace
    replay loop calls the same code as :meth:`Zram.mm_stat`.
    """
    s = stats[0]
    m = out[0]
    m["orig_data_size"] = s["pages_stored"] << page_shift
    m["compr_data_size"] = s["compr_data_size"]
    m["mem_used_total"] = total_pages << page_shift
    m["mem_limit"] = np.uint64(limit_pages) << np.uint64(page_shift)
    m["mem_used_max"] = s["max_used_pages"] << page_shift
    m["same_pages"] = s["same_pages"]
    m["pages_compacted"] = pages_compacted
    m["huge_pages"] = s["huge_pages"]
    m["huge_pages_since"] = s["huge_pages_since"]


def build_mm_stat(
    stats: np.ndarray, limit_pages: int, total_pages: int, pages_compacted: int, page_shift: int
) -> MmStat:
    """The nine columns as an :class:`MmStat` (see :func:`mm_stat_show`)."""
    out = np.zeros(1, MM_STAT_DTYPE)
    mm_stat_show(out, stats, limit_pages, total_pages, pages_compacted, page_shift)
    return MmStat.from_record(out[0])


class IoStat(NamedTuple):
    """The four columns of ``/sys/block/zramN/io_stat``, in the kernel's order."""

    failed_reads: int
    failed_writes: int
    invalid_io: int  # a literal 0 since ~6.4 (the counter was removed)
    notify_free: int

    @classmethod
    def from_stats(cls, stats: np.ndarray) -> IoStat:
        """Mirrors io_stat_show()'s arguments."""
        s = stats[0]
        return cls(int(s["failed_reads"]), int(s["failed_writes"]), 0, int(s["notify_free"]))

    def format(self, invalid_io_counted: bool = False) -> str:
        """Mirrors io_stat_show(): ``"%8llu %8llu 0 %8llu\\n"``; 6.1 prints the
        ``invalid_io`` counter there as ``%8llu`` (``invalid_io_counted``)."""
        third = f"{self.invalid_io:8d}" if invalid_io_counted else "0"
        return f"{self.failed_reads:8d} {self.failed_writes:8d} {third} {self.notify_free:8d}\n"


def format_debug_stat(stats: np.ndarray, writestall_counted: bool = False) -> str:
    """Mirrors debug_stat_show(): line 2 starts with a literal 0, or until 6.14 with the
    ``writestall`` counter as ``%8llu`` (``writestall_counted``; the model's handle
    allocation never stalls, so it is 0)."""
    first = f"{0:8d}" if writestall_counted else "0"
    return f"version: 1\n{first} {int(stats[0]['miss_free']):8d}\n"


def format_bd_stat(stats: np.ndarray, page_shift: int) -> str:
    """Mirrors bd_stat_show(): counts in 4 KiB units, FOUR_K(x) = x << (PAGE_SHIFT - 12)."""
    s = stats[0]
    four_k = page_shift - 12
    return (
        f"{int(s['bd_count']) << four_k:8d} {int(s['bd_reads']) << four_k:8d} "
        f"{int(s['bd_writes']) << four_k:8d}\n"
    )
