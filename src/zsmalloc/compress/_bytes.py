"""Little-endian loads shared by the kernel-exact compressors.

Every array read is wrapped in ``int()``: under numba that is free, and in the
plain-Python fallback (``NUMBA_DISABLE_JIT=1``) it keeps numpy's small unsigned
scalars from wrapping (``np.uint8(1) << 8`` is 0 under NEP 50), so both paths
compute on exact integers and give identical results.
"""

from __future__ import annotations

import numpy as np

from zsmalloc._jit import njit

PAGE_SIZE = 4096


@njit(inline="always")
def read32(buf: np.ndarray, p: int) -> int:
    """get_unaligned_le32(buf + p)."""
    return (
        int(buf[p])
        | (int(buf[p + 1]) << 8)
        | (int(buf[p + 2]) << 16)
        | (int(buf[p + 3]) << 24)
    )


@njit(inline="always")
def read64(buf: np.ndarray, p: int) -> int:
    """get_unaligned_le64(buf + p), as a (possibly negative) int64."""
    return read32(buf, p) | (read32(buf, p + 4) << 32)
