"""zram's compressors, kernel-exact where the reference kernel has them.

zram's numbers (``mm_stat`` compr_data_size, the zsmalloc class of every
object) depend on the exact compressed length of every page, so ``lzo``,
``lzo-rle`` and ``lz4`` are re-implemented here as Linux 6.18 runs them
(lib/lzo, lib/lz4; ../shared/spec/compressors.md) and produce the kernel's
bytes.  ``lz4hc``, ``zstd`` and ``deflate`` are format-compatible library
wrappers; ``842`` is refused with UnknownAlgorithmError.

API (``pages`` is bytes-like or a uint8 array of whole 4 KiB pages, shape
(n, 4096) or flat; anything else raises InvalidSizeError)::

    b = compress.get("lz4", level=None)   # backend; level = zram algorithm_params level
    b.name, b.level, b.kernel_exact
    b.compress(page) -> bytes             # one 4096-byte page
    b.decompress(data, out_len=4096)      # -> bytes; CompressionError when corrupt
    b.compressed_len(page) -> int         # lengths only, same parse, no output
    compress_lengths(pages, "lzo") -> int32[n]           # batch, all cores
    compress_pages(pages, "lzo") -> list[bytes]          # batch, all cores
    is_same_filled(pages) -> (bool[n], uint64[n])        # zram's page_same_filled()
    stored_sizes(pages, "lzo", huge_class_size=None) -> int32[n]
        # zram's rule: 0 same-filled, 4096 when len >= huge_class_size, else len;
        # huge_class_size defaults to the reference kernel's (class_table().huge_class_size)

Module map: ``lzo`` / ``lz4`` (numba kernels: compress, lengths-only, safe
decode), ``batch`` (prange loops, same-filled, the storage rule),
``registry`` (names, levels, library backends).
"""

from __future__ import annotations

import numpy as np

from zsmalloc.compress.batch import as_pages, is_same_filled, stored_size
from zsmalloc.compress.registry import (
    ALGORITHMS,
    KERNEL_EXACT,
    Backend,
    KernelBackend,
    LibraryBackend,
    get,
)

__all__ = [
    "ALGORITHMS",
    "KERNEL_EXACT",
    "Backend",
    "KernelBackend",
    "LibraryBackend",
    "as_pages",
    "compress_lengths",
    "compress_pages",
    "get",
    "is_same_filled",
    "stored_size",
    "stored_sizes",
]


def compress_lengths(pages: object, algo: str, level: int | None = None) -> np.ndarray:
    """Compressed length of every page with ``algo`` (int32[n]), in parallel."""
    return get(algo, level).compress_lengths(pages)


def compress_pages(pages: object, algo: str, level: int | None = None) -> list[bytes]:
    """Compressed bytes of every page with ``algo``, in parallel."""
    return get(algo, level).compress_pages(pages)


def stored_sizes(
    pages: object,
    algo: str,
    huge_class_size: int | None = None,
    level: int | None = None,
) -> np.ndarray:
    """Bytes zram adds to compr_data_size for each page written alone (int32[n])."""
    return get(algo, level).stored_sizes(pages, huge_class_size)
