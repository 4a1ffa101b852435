"""zswap (mm/zswap.c, Linux 6.18): the compressed swap cache, on zsmalloc pools.

Module map (docs/zswap.md has the details and the trace format):

- ``zswap``        :class:`Zswap`: store/load/invalidate, limit + hysteresis, LRU
                   writeback with second chance, shrink worker, dynamic shrinker
- ``params``       the module parameters, parsed as the kernel's setters do
- ``compression``  what zswap_compress() makes of a page
- ``lru``          the per-memcg list_lru
- ``memcg``        memory.zswap.{current,max,writeback} and the zswap events
- ``stats``        debugfs counters, vmstat events, meminfo lines
- ``trace``        the swap trace format and its replayer
- ``estimate``     :func:`estimate_zswap`: the zswap view of a set of pages

The live check against the running kernel's zswap (``zsmalloc verify --zswap``)
is in :mod:`zsmalloc.live` (``live.zswap``, ``live.verify_zswap``).

Names are imported lazily, so ``import zsmalloc.zswap`` stays cheap.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "Zswap": "zsmalloc.zswap.zswap",
    "ZswapParams": "zsmalloc.zswap.params",
    "estimate_zswap": "zsmalloc.zswap.estimate",
    "ZswapEstimate": "zsmalloc.zswap.estimate",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zsmalloc.zswap' has no attribute {name!r}")
