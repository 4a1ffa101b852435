"""zswap's counters: the debugfs files, the vmstat events and ``/proc/meminfo`` lines.

Mirrors the ``zswap_*`` statics and ``zswap_debugfs_init()`` in mm/zswap.c
(6.18), spec §10 and §11.  The debugfs names are the kernel's, in its order;
``pool_total_size`` is not stored but computed when read, as the kernel does
(``zswap_total_pages() * PAGE_SIZE``), and so is passed in, with PAGE_SIZE.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

# Every file of /sys/kernel/debug/zswap in 6.18, in zswap_debugfs_init() order.
DEBUGFS_FILES = (
    "pool_limit_hit",
    "reject_reclaim_fail",
    "reject_alloc_fail",
    "reject_kmemcache_fail",
    "reject_compress_fail",
    "reject_compress_poor",
    "decompress_fail",
    "written_back_pages",
    "pool_total_size",
    "stored_pages",
    "stored_incompressible_pages",
)


@dataclass
class ZswapCounters:
    """The stored counters (everything in debugfs except ``pool_total_size``) and events."""

    pool_limit_hit: int = 0
    reject_reclaim_fail: int = 0
    reject_alloc_fail: int = 0
    reject_kmemcache_fail: int = 0
    reject_compress_fail: int = 0
    reject_compress_poor: int = 0
    decompress_fail: int = 0
    written_back_pages: int = 0
    stored_pages: int = 0
    stored_incompressible_pages: int = 0
    # /proc/vmstat events (global; they only grow)
    zswpin: int = 0
    zswpout: int = 0
    zswpwb: int = 0

    def bump(self, name: str) -> None:
        """Add one to the counter called ``name`` (a debugfs file name)."""
        setattr(self, name, getattr(self, name) + 1)

    def debugfs(self, total_pages: int, page_size: int) -> dict[str, int]:
        """What ``grep . /sys/kernel/debug/zswap/*`` would show, in the kernel's order."""
        values = asdict(self)
        values["pool_total_size"] = total_pages * page_size
        return {name: values[name] for name in DEBUGFS_FILES}

    def vmstat(self) -> dict[str, int]:
        return {"zswpin": self.zswpin, "zswpout": self.zswpout, "zswpwb": self.zswpwb}

    def meminfo(self, total_pages: int, page_size: int) -> dict[str, int]:
        """``Zswap:`` and ``Zswapped:`` of /proc/meminfo, in kB."""
        return {
            "Zswap": total_pages * page_size // 1024,
            "Zswapped": self.stored_pages * page_size // 1024,
        }
