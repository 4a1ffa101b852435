"""Everything that talks to the running kernel: the model checked against the real thing.

The rest of the package never touches the machine; this package does, and
gives back everything it borrows (its own hot-added zram devices, a swap file
and cgroup of its own for zswap, every parameter restored).  Without root, zram,
zswap or debugfs each entry point raises
:class:`~zsmalloc.errors.KernelUnavailableError` with the precise reason
(tests skip on it, the CLI exits 2).

Module map, one concept each:

- ``zram``             :class:`LiveZram`: our own zram device (hot_add -> reset -> hot_remove)
- ``zswap``            :class:`LiveZswap`: the kernel's zswap borrowed (swap file, cgroup,
                       MADV_PAGEOUT holder), and its counters (debugfs, vmstat, meminfo)
- ``swap``             :class:`LiveZramSwap`: our own zram device as swap (mkswap, swapon
                       at the top priority, swapoff and removal whatever happens)
- ``cgroup``           :class:`MemoryCgroup`: a memory cgroup of our own (v1 or v2) and
                       the swap-out of what it holds (limit steps, force_empty/reclaim)
- ``memhog``           :class:`MemHog`: a real process with a known mix of memory
- ``workload``         the seeded workloads: zram operations, zswap pages and churn
- ``defaults``         what each check runs when not told otherwise (shared with the CLI)
- ``result``           :class:`VerifyResult`, :class:`Divergence`, :class:`Comparison`:
                       what every check returns (data only; ``zsmalloc.cli`` renders it)
- ``verify_zram``      :func:`verify_zram`: ``zsmalloc verify --kernel``
- ``verify_zswap``     :func:`verify_zswap`: ``zsmalloc verify --zswap`` (= ``zswap verify``)
- ``verify_estimate``  :func:`verify_estimate`: ``zsmalloc estimate``'s mm_stat on a device
- ``verify_swap``      :func:`verify_swap`: ``estimate --pid`` against a real swap-out of a
                       real process, into zram swap or through zswap

Nothing here prints: long runs report through a ``progress(what, done, total)``
callback, and results are returned.  Names are imported lazily.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "LiveZram": "zsmalloc.live.zram",
    "LiveZswap": "zsmalloc.live.zswap",
    "VerifyResult": "zsmalloc.live.result",
    "Divergence": "zsmalloc.live.result",
    "Comparison": "zsmalloc.live.result",
    "verify_zram": "zsmalloc.live.verify_zram",
    "verify_zswap": "zsmalloc.live.verify_zswap",
    "verify_estimate": "zsmalloc.live.verify_estimate",
    "verify_swap": "zsmalloc.live.verify_swap",
    "LiveZramSwap": "zsmalloc.live.swap",
    "MemoryCgroup": "zsmalloc.live.cgroup",
    "MemHog": "zsmalloc.live.memhog",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zsmalloc.live' has no attribute {name!r}")
