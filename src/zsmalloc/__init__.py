"""zsmalloc: Linux 6.18's compressed-memory stack, exactly, in user space.

The allocator (mm/zsmalloc.c) with its zpdesc page descriptor (mm/zpdesc.h),
and its two users: zram (drivers/block/zram) and zswap (mm/zswap.c).  For the
same inputs it gives the same numbers as the running kernel, byte for byte.

The public surface is imported lazily so that ``import zsmalloc`` stays cheap
(numba compiles on first use, not at import).
"""

from __future__ import annotations

from typing import Any

from zsmalloc.errors import (
    BadHandleError,
    ClusterError,
    CompressionError,
    InputError,
    InvalidSizeError,
    InvalidTypeError,
    KernelUnavailableError,
    OutOfMemoryError,
    SysfsError,
    UnknownAlgorithmError,
    UnknownKernelError,
    UnknownVariantError,
    ZsmallocError,
)

__version__ = "0.1.0"

# name -> module that defines it; resolved on first attribute access.
_LAZY = {
    "Pool": "zsmalloc.zs.pool",
    "Zram": "zsmalloc.zram.device",
    "Zswap": "zsmalloc.zswap.zswap",
}

__all__ = [
    "BadHandleError",
    "ClusterError",
    "CompressionError",
    "InputError",
    "InvalidSizeError",
    "InvalidTypeError",
    "KernelUnavailableError",
    "OutOfMemoryError",
    "SysfsError",
    "UnknownAlgorithmError",
    "UnknownKernelError",
    "UnknownVariantError",
    "ZsmallocError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zsmalloc' has no attribute {name!r}")
