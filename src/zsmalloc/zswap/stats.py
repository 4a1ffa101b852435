"""zswap's counters: the debugfs files, the vmstat events and ``/proc/meminfo`` lines.

Mirrors the ``zswap_*`` statics and ``zswap_debugfs_init()`` in mm/zswap.c
(6.18), spec §10 and §11, and the two counters older kernels had
(``same_filled_pages`` and ``duplicate_entry``, 6.1 and 6.6).  The debugfs names are
the kernel's, in its order (each kernel's list: ``ZswapRules.debugfs``);
``pool_total_size`` is not stored here: 6.12 and later compute it when read
(``zswap_total_pages() * PAGE_SIZE``), 6.1 and 6.6 keep it in a variable the model
keeps (:class:`zsmalloc.zswap.zswap.Zswap`), so it is passed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from zsmalloc.zswap.rules import DEBUGFS_618

DEBUGFS_FILES = DEBUGFS_618
"""Every file of /sys/kernel/debug/zswap in 6.18, in zswap_debugfs_init() order."""


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
    same_filled_pages: int = 0  # 6.1, 6.6
    duplicate_entry: int = 0  # 6.1, 6.6
    # /proc/vmstat events (global; they only grow)
    zswpin: int = 0
    zswpout: int = 0
    zswpwb: int = 0

    def bump(self, name: str) -> None:
        """Add one to the counter called ``name`` (a debugfs file name)."""
        setattr(self, name, getattr(self, name) + 1)

    def debugfs(
        self, total_pages: int, page_size: int, files: tuple[str, ...] = DEBUGFS_FILES
    ) -> dict[str, int]:
        """What ``grep . /sys/kernel/debug/zswap/*`` would show, in the kernel's order.

        ``total_pages * page_size`` is ``pool_total_size``; ``files`` the kernel's list.
        """
        values = asdict(self)
        values["pool_total_size"] = total_pages * page_size
        return {name: values[name] for name in files}

    def vmstat(self) -> dict[str, int]:
        return {"zswpin": self.zswpin, "zswpout": self.zswpout, "zswpwb": self.zswpwb}

    def meminfo(self, total_pages: int, page_size: int) -> dict[str, int]:
        """``Zswap:`` and ``Zswapped:`` of /proc/meminfo, in kB."""
        return {
            "Zswap": total_pages * page_size // 1024,
            "Zswapped": self.stored_pages * page_size // 1024,
        }
