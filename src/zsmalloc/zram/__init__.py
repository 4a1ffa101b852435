"""zram (drivers/block/zram, Linux 6.18) on the zsmalloc model.

``device`` is the block device with its sysfs attributes (:class:`~zsmalloc.zram.device.Zram`,
also ``zsmalloc.Zram``); ``table`` the slot table and store/free paths (numba);
``stats`` the counters and the exact text of the stat files; ``sysfs`` the kernel's
argument parsers; ``writeback``, ``recompress`` and ``postprocess`` the
post-processing jobs; ``trace`` and ``replay`` the size traces recorded on the
kernel and their replay.  See docs/zram.md.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``zsmalloc.zram.Zram``, imported on first use (numba compiles lazily)."""
    if name == "Zram":
        from zsmalloc.zram.device import Zram

        return Zram
    raise AttributeError(f"module 'zsmalloc.zram' has no attribute {name!r}")
