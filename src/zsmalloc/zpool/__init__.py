"""zpool: the allocators zswap could choose between, and the layer that chose (6.1 .. 6.17).

Until Linux 6.18 zswap did not call zsmalloc directly: it went through ``zpool``
(mm/zpool.c), a table of allocator drivers picked by the ``zswap.zpool`` parameter.
Three drivers existed: **zbud** (two objects a page), **z3fold** (three) and
**zsmalloc**.  z3fold was deprecated in 6.12; zbud and z3fold were removed in 6.15
(commit 6df8bae8e851 "mm: zbud: remove zbud", after z3fold's removal in the same
series), and the zpool layer in 6.18 ("mm: zswap: interact directly with zsmalloc",
"since zbud and z3fold were removed in 6.15, zsmalloc has been the only option").
Debian's builds agree: 6.1 has zbud (built in, the default), z3fold and zsmalloc
(modules); 6.12 zbud and zsmalloc; 6.16 and 6.17 zpool with zsmalloc alone; 6.18 none.

Module map, one concept each:

- ``list``    ``struct list_head`` over arrays: the kernel's list order, exactly
- ``zbud``    :class:`ZbudPool`: mm/zbud.c (6.1 with its LRU and reclaim; 6.5+ without)
- ``z3fold``  :class:`Z3foldPool`: mm/z3fold.c (the same two versions)
- ``driver``  :class:`ZpoolDriver`: the Python face zbud and z3fold share (argument
              checks, errors, read/write, the reclaim loop, ``shrink``)
- ``zpool``   :func:`zpool_create_pool`: the driver table, ``evictable``, ``shrink``,
              ``total_size`` and the zsmalloc driver over :class:`zsmalloc.Pool`

The allocators share the page-frame arena of :mod:`zsmalloc.mm.page` (each pool its
own), know nothing of kernel versions (a pool is made with or without its LRU), and
are driven by zswap's rules in :mod:`zsmalloc.zswap.rules`.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "ZbudPool": "zsmalloc.zpool.zbud",
    "Z3foldPool": "zsmalloc.zpool.z3fold",
    "Zpool": "zsmalloc.zpool.zpool",
    "zpool_create_pool": "zsmalloc.zpool.zpool",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zsmalloc.zpool' has no attribute {name!r}")
