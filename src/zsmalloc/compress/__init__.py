"""zram's compressors, kernel-exact on every kernel and page size.

zram's numbers (``mm_stat`` compr_data_size, the zsmalloc class of every object)
depend on the exact compressed length of every page, so ``lzo``, ``lzo-rle``, ``lz4``,
``lz4hc`` and ``deflate`` are re-implemented here as the kernel runs them (lib/lzo,
lib/lz4 with LZ4 1.7.3's HC, lib/zlib_deflate; ../shared/spec/compressors.md) and
produce the kernel's bytes on pages of 4, 16 and 64 KiB.  ``zstd`` goes through the
zstandard library built with the kernel's own zstd version (each kernel carries its
own; :attr:`zsmalloc.profile.KernelProfile.zstd_version` says which): exact where that version is
installed, otherwise approximate and saying so.  ``842`` is refused with
UnknownAlgorithmError.

API (``pages`` is bytes-like or a uint8 array of whole pages, shape (n, page_size) or
flat; anything else raises InvalidSizeError)::

    b = compress.get("lz4", level=None, kernel=None, page_size=4096, winbits=None)
        # level = zram's algorithm_params level (6.12 on), kernel = a profile row
        # ("6.1" ... "7.3") or a release; the row's zram rules (zsmalloc.profile)
    b.name, b.level, b.kernel, b.page_size
    b.kernel_exact, b.approximate, b.exact_command   # zstd without its kernel's version
    b.compress(page) -> bytes             # one page
    b.decompress(data, out_len=page_size) # -> bytes; CompressionError when corrupt
    b.compressed_len(page) -> int         # lengths only, same parse, no output
    compress_lengths(pages, "lzo") -> int32[n]           # batch, all cores
    compress_pages(pages, "lzo") -> list[bytes]          # batch, all cores
    is_same_filled(pages) -> (bool[n], uint64[n])        # zram's page_same_filled()
    stored_sizes(pages, "lzo", huge_class_size=None) -> int32[n]
        # zram's rule: 0 same-filled, PAGE_SIZE when len >= huge_class_size, else len;
        # huge_class_size defaults to the kernel's zs_huge_class_size() (3625 on 6.18)

Module map: ``lzo`` / ``lz4`` / ``lz4hc`` / ``deflate`` (numba kernels: compress,
lengths-only; lzo and lz4 decode), ``zstd`` (zstd versions side by side; how each
kernel configures it), ``batch`` (prange loops, same-filled, the
storage rule), ``registry`` (names, levels, backends).
"""

from __future__ import annotations

import numpy as np

from zsmalloc.compress.batch import as_pages, is_same_filled, stored_size
from zsmalloc.compress.registry import (
    ALGORITHMS,
    KERNEL_EXACT,
    Backend,
    KernelBackend,
    ZstdBackend,
    get,
)

__all__ = [
    "ALGORITHMS",
    "KERNEL_EXACT",
    "Backend",
    "KernelBackend",
    "ZstdBackend",
    "as_pages",
    "compress_lengths",
    "compress_pages",
    "get",
    "is_same_filled",
    "stored_size",
    "stored_sizes",
]


def compress_lengths(
    pages: object,
    algo: str,
    level: int | None = None,
    *,
    kernel: str | None = None,
    page_size: int = 4096,
) -> np.ndarray:
    """Compressed length of every page with ``algo`` (int32[n]), in parallel."""
    return get(algo, level, kernel=kernel, page_size=page_size).compress_lengths(pages)


def compress_pages(
    pages: object,
    algo: str,
    level: int | None = None,
    *,
    kernel: str | None = None,
    page_size: int = 4096,
) -> list[bytes]:
    """Compressed bytes of every page with ``algo``, in parallel."""
    return get(algo, level, kernel=kernel, page_size=page_size).compress_pages(pages)


def stored_sizes(
    pages: object,
    algo: str,
    huge_class_size: int | None = None,
    level: int | None = None,
    *,
    kernel: str | None = None,
    page_size: int = 4096,
) -> np.ndarray:
    """Bytes zram adds to compr_data_size for each page written alone (int32[n])."""
    backend = get(algo, level, kernel=kernel, page_size=page_size)
    return backend.stored_sizes(pages, huge_class_size)
